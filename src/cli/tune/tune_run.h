/* Running a study's trials: `nabla train` processes, at most --workers at once (on each rank,
 * under mpirun: tune_agent.h), each reporting its epochs over a socket and killed when the
 * pruner says so. */
#ifndef NABLA_CLI_TUNE_RUN_H
#define NABLA_CLI_TUNE_RUN_H

#include "cli/tune/tune_study.h"

/* Runs every trial not finished yet (the stop signals installed: stop_signals.h). Returns 0
 * when all are finished, the exit code of the stop (stop_exit_code: 130, 143, 141) when
 * SIGINT or SIGTERM stopped the study, or its standard output could no longer be written (the
 * running trials checkpoint and stop; the same command continues), STUDY_INTERRUPTED with err
 * saying which trial and why when an accident stopped a trial (a signal the tuner did not
 * send, a full disk, the data gone: trial_channel.h; the study stops likewise, and the same
 * command resumes it), or -1 with err on a failure of the tuner itself (a file of the study
 * cannot be written, a process cannot be started). */
#define STUDY_INTERRUPTED 1
int study_run(study *s, nb_error *err);

/* Threads each trial's process gets: --threads, or the machine's cores shared among the
 * trials that run on it at once. */
int tune_threads_per_trial(const tune_options *o);

#endif /* NABLA_CLI_TUNE_RUN_H */
