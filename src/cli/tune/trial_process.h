/* Starting a trial of `nabla tune`: a `nabla train` process with its output in the trial's log
 * and one end of a socket pair named by NABLA_TRIAL_FD (trial_channel.h), on the tuner's
 * machine or on another rank's (tune_agent.h). */
#ifndef NABLA_CLI_TRIAL_PROCESS_H
#define NABLA_CLI_TRIAL_PROCESS_H

#include <sys/types.h>

#include "nabla.h"

/* Forks and execs `args` (argv, args[0] "nabla") with its stdout and stderr appended to
 * log_path (opened here by the output rule, fileio.h); returns its pid and the caller's end of
 * the socket in *fd, or -1 with err (naming the log when that is what cannot be opened). The
 * child has its own process group (a Ctrl-C reaches the tuner, which passes it on once), dies
 * with its parent, and is not one of an MPI job's processes. */
pid_t trial_spawn(char **args, const char *log_path, int *fd, nb_error *err);

/* Waits for a trial trial_spawn started to end, and reaps it; its status goes to *status (if
 * not NULL). Until it is reaped, a second stop signal stops it at once with this process
 * (stop_signals.h). */
void trial_reap(pid_t pid, int *status);

/* In a child of the program: becomes `nabla args...` (this same program), a process of its
 * own even when its parent is a rank of an MPI job; exits 127 when it cannot. */
_Noreturn void exec_nabla(char *const *args);

#endif /* NABLA_CLI_TRIAL_PROCESS_H */
