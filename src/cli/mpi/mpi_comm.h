/* `nabla train` on several processes: `mpirun -np N nabla train ...` starts N copies ("ranks")
 * of the program with the same arguments. This is the program's side of it: starting and
 * stopping MPI, the communicator nb_train sums through (nb_comm), the votes that keep the
 * ranks' own decisions (stop on a signal, stop because rank 0 could not write a file) the same
 * on every rank, and the message when a rank is lost.
 *
 * mpi_comm.c implements it with MPI. A nabla built without MPI has mpi_none.c instead: one
 * process, which refuses to run as one of several. mpi_job.c, in both, reads the launcher's
 * environment and holds a rank's messages back. Every function works in a single process
 * (no launcher): the job is then rank 0 of 1 and a vote returns the caller's own values.
 *
 * MPI is called only from the thread that called job_start (MPI_THREAD_FUNNELED): the program's
 * main thread, which is the one that runs nb_train and its callbacks. */
#ifndef NABLA_CLI_MPI_COMM_H
#define NABLA_CLI_MPI_COMM_H

#include <signal.h>

#include "nabla.h"

/* ---- the launcher (mpi_job.c) ---- */

/* The number of processes an MPI launcher started this one among, read from its environment
 * before MPI starts (Open MPI's OMPI_COMM_WORLD_SIZE, MPICH's and Slurm's PMI_SIZE): 0 when
 * there is no launcher; -1 when a PMIx launcher started it without saying how many. */
int launcher_size(void);
/* This process's rank according to the launcher, or -1. */
int launcher_rank(void);
/* Removes from this process's environment what launcher_size and launcher_rank read: for the
 * child of a rank, which is not one of the job's processes (a trial of `nabla tune`). */
void launcher_forget(void);

/* A rank other than 0 keeps what it would print on stderr while it sets up (parsing the options,
 * loading the data): every rank runs the same setup, and N copies of one message help nobody.
 * release prints what was held, each line marked with the rank, when `show` (this rank failed
 * where rank 0 did not), and discards it otherwise. Both do nothing on rank 0. */
void job_hold_stderr(void);
void job_release_stderr(int show);

/* ---- the job (mpi_comm.c, or mpi_none.c) ---- */

/* Called by main before anything else but the BLAS restart (an exec must come before MPI
 * starts). Under a launcher with more than one process, starts MPI and sends the stdout of
 * ranks other than 0 to /dev/null. Returns 0, or an exit code after printing why (a nabla
 * built without MPI started as one of several: 2). */
int job_start(int *argc, char ***argv);
/* Called by main last, with the exit code, which it returns. Ends MPI: MPI_Finalize, or, after
 * a failed collective (the job cannot be finalized with a rank gone), MPI_Abort. */
int job_end(int code);

int job_rank(void);        /* 0 in a single process */
int job_size(void);        /* 1 in a single process */
int job_local_size(void);  /* ranks on this machine, this one included */
/* For nb_train_config.comm: NULL in a single process. */
const nb_comm *job_comm(void);
/* "Open MPI v4.1.4, ..." (the library's own first line), or NULL in a nabla without MPI. */
const char *job_mpi_library(void);

/* Time spent in the communicator's sums (the gradient sums and the statistics nb_train adds up
 * over the ranks), and their number: for summary.json. */
double job_sum_seconds(void);
long long job_sum_calls(void);

/* Votes: every rank calls at the same point with the same n (at most JOB_MAX_VOTES); each value
 * becomes its maximum over the ranks. Return 0, or -1 with err when the ranks lost touch. */
#define JOB_MAX_VOTES 4
int job_vote(int *values, int n, nb_error *err);
/* The same without waiting: returns in `agreed` the outcome of the previous call's vote (zeros
 * if none is pending) and starts a vote on `mine`. For decisions that may come a step late, at
 * no cost in latency per step. job_vote_settle waits for the pending vote, if any, and returns
 * its outcome (zeros if none). */
int job_vote_later(const int *mine, int *agreed, int n, nb_error *err);
int job_vote_settle(int *agreed, int n, nb_error *err);

/* Rank 0's broadcast of n bytes (for the configuration's fingerprint). */
int job_broadcast(void *data, size_t n, nb_error *err);

/* Messages from one rank to another (`nabla tune`'s rank 0 and its agents): a tag (0 to 99)
 * and bytes. job_send does not wait for the receiver: it copies the bytes and the message goes
 * out as MPI progresses (job_end sees every message out). Messages between two ranks arrive in
 * the order they were sent. Both return -1 with err when the ranks lost touch. */
int job_send(int to, int tag, const void *data, size_t n, nb_error *err);
/* The next message from any rank, without waiting: 1 with *from, *tag and *data (malloc'd, n
 * bytes followed by a NUL that n does not count; the caller frees it), 0 when none is there. */
int job_receive(int *from, int *tag, char **data, size_t *n, nb_error *err);

/* Whether an MPI call failed (a rank gone, under an MPI that reports it rather than ends the
 * job): the run cannot go on, and job_end aborts. */
int job_lost(void);

/* What a rank says when a stop signal finds it waiting for the other ranks: mpirun sends the
 * survivors SIGTERM when a rank dies (and SIGKILL a second later), and a rank waiting in a sum
 * (or for a message) from the dead one would otherwise end without a word. From the first call
 * (with the signal flag to watch) until job_end, a thread of each rank watches: once the flag
 * is set and the main thread has been waiting in an MPI call for JOB_STUCK_SECONDS since, the
 * rank prints a line saying who is gone, then `text` (what is intact and how to go on: one or
 * more lines, the last with its newline), on stderr, once. Which ranks are gone it can tell for
 * those on its own machine (their processes have ended); of ranks elsewhere it says only that
 * one of them is gone, as mpirun's message will say which. Rank 0 speaks, unless every other
 * rank is on its machine and still there (then none is gone: a slow step); another rank speaks
 * only when every rank below it is on its machine and gone. Later calls replace the text (after
 * each checkpoint). Does nothing in a single process. The wait is long next to a step (a
 * Ctrl-C, which mpirun also passes on as SIGTERM, finds the ranks waiting for each other only
 * briefly) and short next to the second before SIGKILL (0.6 s proved too close to it on a
 * loaded machine). */
#define JOB_STUCK_SECONDS 0.3
void job_watch_stops(volatile sig_atomic_t *signal_flag, const char *text);
/* The same at once, for a rank that does not wait inside MPI (`nabla tune`'s agents, which poll):
 * the line saying who is gone, then `text`, if this rank is the one to speak. Returns 1 if it
 * spoke. */
int job_say_lost(const char *text);
/* Whether `rank` is known to be gone: it ran on this machine and its process has ended. The
 * job then cannot be finalized, and job_end aborts it. 0 when it is there or cannot be seen. */
int job_rank_gone(int rank);

#endif /* NABLA_CLI_MPI_COMM_H */
