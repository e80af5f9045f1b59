/* The job in a nabla built without MPI (mpi_comm.h): always one process. Started by mpirun as
 * one of several, each copy would train alone on everything and all would write the same run
 * directory, so it says what is wrong and stops instead. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/mpi/mpi_comm.h"

int job_start(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    int size = launcher_size(), rank = launcher_rank();
    /* A PMIx launcher does not say how many; any rank but 0 shows there are several. */
    if (size > 1 || (size < 0 && rank > 0)) {
        if (rank <= 0 || size < 0) {
            char how_many[32] = "several";
            if (size > 1)
                snprintf(how_many, sizeof how_many, "%d", size);
            fprintf(stderr, "nabla: this nabla was built without MPI, but an MPI launcher "
                            "(mpirun) started it as one of %s processes; rebuild it with MPI "
                            "(install libopenmpi-dev and configure again: cmake finds it), or "
                            "run it without mpirun\n", how_many);
        }
        return EXIT_USAGE;
    }
    return 0;
}

int job_end(int code) { return code; }
int job_rank(void) { return 0; }
int job_size(void) { return 1; }
int job_local_size(void) { return 1; }
const nb_comm *job_comm(void) { return NULL; }
const char *job_mpi_library(void) { return NULL; }
double job_sum_seconds(void) { return 0; }
long long job_sum_calls(void) { return 0; }
int job_lost(void) { return 0; }

int job_vote(int *values, int n, nb_error *err)
{
    (void)values;
    (void)n;
    (void)err;
    return 0;
}

int job_vote_later(const int *mine, int *agreed, int n, nb_error *err)
{
    (void)mine;
    (void)err;
    memset(agreed, 0, (size_t)n * sizeof *agreed);
    return 0;
}

int job_vote_settle(int *agreed, int n, nb_error *err)
{
    (void)err;
    memset(agreed, 0, (size_t)n * sizeof *agreed);
    return 0;
}

int job_broadcast(void *data, size_t n, nb_error *err)
{
    (void)data;
    (void)n;
    (void)err;
    return 0;
}

void job_watch_stops(volatile sig_atomic_t *signal_flag, const char *text)
{
    (void)signal_flag;
    (void)text;
}

int job_say_lost(const char *text)
{
    (void)text;
    return 0;
}

int job_rank_gone(int rank)
{
    (void)rank;
    return 0;
}

int job_send(int to, int tag, const void *data, size_t n, nb_error *err)
{
    (void)to;
    (void)tag;
    (void)data;
    (void)n;
    return nb_fail(err, "no other rank to send to (a nabla without MPI)");
}

int job_receive(int *from, int *tag, char **data, size_t *n, nb_error *err)
{
    (void)from;
    (void)tag;
    (void)data;
    (void)n;
    (void)err;
    return 0;
}
