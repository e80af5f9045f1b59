/* The line from a trial to `nabla tune`. The tuner starts `nabla train` with one end of a socket
 * pair named by NABLA_TRIAL_FD; after every epoch (its metrics and its checkpoint written) the
 * trial sends "<epochs> <metrics line>\n" and goes on. The tuner decides about pruning when it
 * can (see tune_run.c) and kills a pruned trial, which may have run ahead meanwhile. */
#ifndef NABLA_CLI_TRIAL_CHANNEL_H
#define NABLA_CLI_TRIAL_CHANNEL_H

#include <stddef.h>

#define TRIAL_FD_ENV "NABLA_TRIAL_FD"

typedef struct trial_channel {
    int fd;        /* -1: not a trial */
    size_t sent;   /* bytes of the metrics log reported so far */
} trial_channel;

/* Takes the descriptor from the environment (and removes the variable, which is meant for this
 * process only). */
void trial_channel_open(trial_channel *ch);

/* Reports every whole line of the metrics log not reported yet (after a resume, the epochs
 * before the checkpoint too, which the tuner may have missed). Returns 0 to go on, 1 when the
 * tuner is gone: the trial stops, its checkpoint kept for the tuner's next run. */
int trial_channel_report(trial_channel *ch, const char *log, size_t len, int epochs);

void trial_channel_close(trial_channel *ch);

#endif /* NABLA_CLI_TRIAL_CHANNEL_H */
