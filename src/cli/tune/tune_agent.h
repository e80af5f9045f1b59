/* `mpirun -np N nabla tune`: rank 0 runs the study as in a single process (tune_run.c: it
 * samples, prunes, writes the journal) and the other ranks are its agents. An agent starts the
 * trials rank 0 hands it, as `nabla train` processes on its own machine, exactly as rank 0
 * starts its own, relays what they report and says how they ended. Rank 0 treats each agent's
 * trials as it treats its own workers', so the study, its files and its resuming are the same
 * as with --workers on one machine. The study directory must be on a file system every rank
 * sees at the same path (the trials write there, rank 0 reads their results there).
 *
 * A message (job_send) is two 32-bit ints, a slot (rank 0's worker number) and a value, then
 * text. */
#ifndef NABLA_CLI_TUNE_AGENT_H
#define NABLA_CLI_TUNE_AGENT_H

#include <stddef.h>

#include "nabla.h"

enum {
    /* rank 0 to an agent */
    AGENT_START = 1, /* slot; text: rank 0's working directory, the trial's log, then the
                        process's arguments, each ending with a NUL */
    AGENT_KILL,      /* slot: the trial is pruned (SIGKILL); AGENT_ENDED follows */
    AGENT_STOP,      /* value: a signal every trial gets (they checkpoint and end); the agent
                        answers AGENT_STOPPED and says nothing more of them */
    AGENT_DONE,      /* value: the exit code the agent ends with */
    /* an agent to rank 0 */
    AGENT_REPORT,    /* slot; text: bytes the trial sent on its socket */
    AGENT_ENDED,     /* slot; value: the trial's wait status; text: why it could not start
                        (empty when it ran) */
    AGENT_STOPPED,   /* the answer to AGENT_STOP */
    AGENT_SIGNAL     /* value: a stop signal the agent got: the whole study stops */
};

/* What rank 0 says, under mpirun, after the other ranks stopped answering: the study survives
 * a lost rank like any other stop. */
#define TUNE_CONTINUE_LINE                                                                  \
    "nabla: the study directory is intact; the same command, under mpirun or not, continues " \
    "the study\n"

int agent_send(int to, int tag, int slot, int value, const char *text, size_t n, nb_error *err);
/* A message's parts: 0, or -1 when it is too short to be one. */
int agent_parse(const char *data, size_t n, int *slot, int *value, const char **text,
                size_t *text_n);

/* An agent's life, from rank 0's first message to its AGENT_DONE: returns the exit code. */
int tune_agent_run(void);

/* Rank 0: every agent ends with `code` (nothing in a single process). */
void tune_agents_done(int code);

#endif /* NABLA_CLI_TUNE_AGENT_H */
