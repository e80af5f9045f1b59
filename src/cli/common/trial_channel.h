/* The line from a trial to `nabla tune`. The tuner starts `nabla train` with one end of a socket
 * pair named by NABLA_TRIAL_FD; after every epoch (its metrics and its checkpoint written) the
 * trial sends "<epochs> <metrics line>\n" and goes on. The tuner decides about pruning when it
 * can (see tune_run.c) and kills a pruned trial, which may have run ahead meanwhile.
 *
 * The trial's last word, just before it exits, says how it ends and why:
 *
 *   "end complete\n"             it trained to its end (exit 0)
 *   "end failed <why>\n"         for what it is responsible for: its configuration (a usage
 *                                error, exit 2; a model too large for the memory) or its loss
 *                                diverged. The tuner records it failed, for good.
 *   "end interrupted <why>\n"    anything else: a file it could not read or write (a full disk,
 *                                the data gone), a signal, its directory in use (locked by
 *                                another process: exit 75, EXIT_TRIAL_LOCKED). The tuner
 *                                concludes nothing from it and the study's next run resumes it.
 *
 * <why> is one line. A trial that says nothing (killed by a signal, or a crash) was
 * interrupted. */
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

typedef enum trial_end {
    TRIAL_END_COMPLETE,
    TRIAL_END_FAILED,
    TRIAL_END_INTERRUPTED,
} trial_end;

/* How a trial that exits with `exit_code` ends: complete on 0, failed on a usage error or when
 * own_fault says the rest of the failure was its own (a model too large, a loss that diverged),
 * interrupted otherwise. The one place that says what a trial is responsible for. */
trial_end trial_end_of(int exit_code, int own_fault);

/* Sends the last word (nothing when the process is not a trial): trial_end_of(exit_code,
 * own_fault) and why (the reason the command gives; ignored when it completes). */
void trial_channel_end(trial_channel *ch, int exit_code, int own_fault, const char *why);

/* The tuner's side: whether `line` (without its newline) is a last word; fills *end and why. */
int trial_channel_parse_end(const char *line, trial_end *end, char *why, size_t cap);

void trial_channel_close(trial_channel *ch);

#endif /* NABLA_CLI_TRIAL_CHANNEL_H */
