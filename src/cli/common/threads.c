/* How many threads a command runs (see threads.h). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "cli/common/threads.h"

#include <ctype.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/common/options.h"
#include "cli/mpi/mpi_comm.h"
#include "core/memcheck.h"

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

void cli_say_threads_lowered(const char *cmd, int *threads)
{
    nb_threads_lowered l;
    if (!nb_memory_threads_lowered(&l) || l.to >= *threads)
        return;
    if (job_rank() == 0)
        fprintf(stderr, "nabla %s: note: using %d thread%s, not %d: %s (results do not depend "
                        "on the thread count)\n",
                cmd, l.to, l.to == 1 ? "" : "s", *threads, l.why);
    *threads = l.to;
}

int cli_parse_threads(const char *cmd, const char *text, int *threads)
{
    /* Digits only, after an optional sign, read as text: a count too large for any integer
     * type gets the same answer as one that is merely too large. */
    const char *digits = text + (text[0] == '+' || text[0] == '-');
    size_t n = strlen(digits);
    int all_digits = n > 0;
    for (size_t i = 0; i < n; i++)
        all_digits = all_digits && isdigit((unsigned char)digits[i]);
    if (!all_digits) {
        cli_usage_error(cmd, "--threads expects a whole number, got '%s'", text);
        return -1;
    }
    while (n > 1 && digits[0] == '0') {   /* leading zeros do not make a number larger */
        digits++;
        n--;
    }
    long value = n <= 9 ? strtol(digits, NULL, 10) : CLI_MAX_THREADS + 1L;
    if (text[0] == '-' || value < 1) {
        cli_usage_error(cmd, "--threads must be > 0, got %s", text);
        return -1;
    }
    if (value > CLI_MAX_THREADS) {
        cli_usage_error(cmd, "--threads %s is more than any machine has cores (at most %d; "
                             "counts above the cores this process may use are cut down to "
                             "them)", text, CLI_MAX_THREADS);
        return -1;
    }
    *threads = (int)value;
    return 0;
}
