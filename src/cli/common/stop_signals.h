/* Stopping a run or a study part way: SIGINT, SIGTERM, SIGHUP (the terminal went away), and
 * standard output that can no longer be written.
 *
 * The first stop signal, like a failed write to stdout (stop_for_output), only sets the stop
 * flag: `nabla train` stops at its next step and writes a checkpoint, `nabla tune` stops its
 * trials so (each checkpoints), and both say how to continue. A second signal stops the
 * process at once, from the handler itself, which may only make async-signal-safe calls: it
 * stops the trials this process started the same way (tracked here), removes the temporary
 * files being written and settles a checkpoint being saved (nb_abandon_writes), writes the
 * line prepared in advance (stop_note_set) and exits with 128 + the signal. */
#ifndef NABLA_CLI_STOP_SIGNALS_H
#define NABLA_CLI_STOP_SIGNALS_H

#include <signal.h>
#include <sys/types.h>

/* The stop flag's value when standard output could no longer be written: above every signal
 * number, so that under mpirun, where the ranks' largest value wins, all ranks agree on it. */
#define STOP_OUTPUT_LOST 256

/* Installs the handler for SIGINT, SIGTERM and SIGHUP. The thread that calls it is the one that
 * writes files (a second signal that reaches another thread is passed on to it). */
void stop_signals_install(void);
/* The stop flag: 0, the first stop signal's number, or STOP_OUTPUT_LOST (whichever came
 * first). For nb_train_config.stop. */
volatile sig_atomic_t *stop_signal_flag(void);
/* Standard output failed: stop as on a signal (unless a stop is under way already). */
void stop_for_output(void);

/* For a stop flag's value: the exit code (130, 143, 129, or EXIT_OUTPUT_LOST), and the signal
 * that passes the stop on to a trial (the signal itself; SIGTERM for a lost output). */
int stop_exit_code(int reason);
int stop_signal_to_pass_on(int reason);
/* "SIGINT", "SIGTERM", "SIGHUP", or for STOP_OUTPUT_LOST "its lost standard output". */
const char *stop_signal_name(int reason);

/* What a second signal says after "nabla: stopped at once by a second SIGINT" (one or more
 * lines, with their newlines): once this process has saved a checkpoint (nb_abandon_writes
 * says so, and which step), `before`, its step count and `after`; until then `kept`. Until
 * either is set, a second signal says nothing (a rank of an MPI job that writes no files).
 * Called from the installing thread. */
void stop_note_set(const char *kept);
void stop_note_checkpoint(const char *before, const char *after);

/* The processes this one started that a second signal must stop at once too (a study's
 * trials): each gets SIGINT and SIGTERM (two signals: it stops at once, whatever it got
 * before), and the handler waits for them (a few seconds at most, then SIGKILL). Tracked from
 * the fork until the process is reaped. */
void stop_signals_track(pid_t child);
/* The stop's checkpoint is written: what is left is to say so and exit, which a second signal
 * would only cut short. From now on stop signals are ignored. (Under mpirun this matters: when
 * one rank has exited, mpirun sends the others SIGTERM again, which must not turn rank 0's
 * "stopped by SIGTERM ... continue with" into a "stopped at once" of its own.) */
void stop_signals_finishing(void);
void stop_signals_untrack(pid_t child);

/* Passes a stop (or any signal) on to a process this one started: `sig`, then, if it is stopped
 * (SIGSTOP, Ctrl-Z), SIGCONT, so that it acts on it instead of leaving this one waiting for it
 * forever. Async-signal-safe. */
void stop_signals_send(pid_t child, int sig);
/* SIGCONT to child if it is stopped by a signal (not to one running, nor to one a tracer holds:
 * that would discard the tracer's stop on its way). Async-signal-safe. Whoever waits for a
 * process to end calls it as it waits: a process stopped after its stop signal came (a SIGSTOP
 * racing with it) would otherwise never end. */
void stop_signals_wake(pid_t child);

#endif /* NABLA_CLI_STOP_SIGNALS_H */
