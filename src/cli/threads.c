/* How many threads a command runs (see threads.h). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "threads.h"

#include <sched.h>
#include <stdio.h>

#include "mpi_comm.h"
#include "options.h"

int cli_usable_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return cli_default_threads();
}

int cli_trial_cores(void)
{
    return job_size() > 1 ? cli_default_threads() : cli_usable_cores();
}

int cli_cap_threads(const char *cmd, int threads, int cores, const char *who, int say)
{
    if (cores < 1 || threads <= cores)
        return threads;
    if (say)
        fprintf(stderr, "nabla %s: note: --threads %d, but %s may run on %d core%s: using %d "
                        "thread%s (results do not depend on the thread count)\n",
                cmd, threads, who, cores, cores == 1 ? "" : "s", cores, cores == 1 ? "" : "s");
    return cores;
}
