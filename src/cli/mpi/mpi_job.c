/* The parts of running as one rank of several that need no MPI: what the launcher's environment
 * says, and holding a rank's messages back while every rank sets up the same run. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/mpi/mpi_comm.h"
#include "io/fileio.h"

/* A non-negative integer from the environment, or -1. */
static int env_int(const char *name)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < 0 || v > INT_MAX)
        return -1;
    return (int)v;
}

/* What launchers put in a rank's environment: Open MPI's mpirun; MPICH's Hydra and Slurm's srun
 * with PMI-1 or PMI-2; a PMIx launcher (srun --mpi=pmix, prterun), which names the rank only. */
static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
static const char *const ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int launcher_size(void)
{
    for (size_t i = 0; i < COUNT(sizes); i++) {
        int n = env_int(sizes[i]);
        if (n > 0)
            return n;
    }
    /* A PMIx launcher names the rank but not the size. */
    return env_int("PMIX_RANK") >= 0 ? -1 : 0;
}

int launcher_rank(void)
{
    for (size_t i = 0; i < COUNT(ranks); i++) {
        int r = env_int(ranks[i]);
        if (r >= 0)
            return r;
    }
    return -1;
}

void launcher_forget(void)
{
    for (size_t i = 0; i < COUNT(sizes); i++)
        unsetenv(sizes[i]);
    for (size_t i = 0; i < COUNT(ranks); i++)
        unsetenv(ranks[i]);
}

static FILE *held;        /* where stderr goes meanwhile */
static int saved_stderr = -1;

void job_hold_stderr(void)
{
    if (job_rank() == 0 || held)
        return;
    fflush(stderr);
    held = tmpfile();
    saved_stderr = held ? dup(STDERR_FILENO) : -1;
    if (saved_stderr < 0 || dup2(fileno(held), STDERR_FILENO) < 0) {
        /* Cannot hold it back: let the messages through rather than lose them. */
        if (saved_stderr >= 0)
            close(saved_stderr);
        saved_stderr = -1;
        if (held)
            fclose(held);
        held = NULL;
    }
}

void job_release_stderr(int show)
{
    if (!held)
        return;
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
    if (show) {
        /* "nabla: x" becomes "nabla: rank 1: x": which rank failed is the news. Each line
         * goes out in one write, or mpirun could splice another rank's line into it. */
        static const char prefix[] = "nabla: ";
        char line[1024], out[1100];
        int start = 1;   /* at the start of a line */
        rewind(held);
        while (fgets(line, sizeof line, held)) {
            const char *rest = line;
            if (start && strncmp(line, prefix, sizeof prefix - 1) == 0)
                rest += sizeof prefix - 1;
            if (start)
                snprintf(out, sizeof out, "nabla: rank %d: %s", job_rank(), rest);
            else
                snprintf(out, sizeof out, "%s", rest);
            (void)nb_write_all(STDERR_FILENO, out, strlen(out));
            start = strchr(line, '\n') != NULL;
        }
        fflush(stderr);
    }
    fclose(held);
    held = NULL;
}
