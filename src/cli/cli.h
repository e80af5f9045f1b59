/* The subcommands of the nabla program, their usage texts and its exit codes. */
#ifndef NABLA_CLI_CLI_H
#define NABLA_CLI_CLI_H

#include <stdio.h>

/* Exit codes of the program. A run or a study stopped part way (it continues with --resume or
 * the same command) exits 128 + the signal for SIGINT, SIGTERM and SIGHUP (130, 143, 129), and
 * EXIT_OUTPUT_LOST (141, 128 + SIGPIPE, as a shell reports a program a closed pipe killed) when
 * its standard output could no longer be written (output.h). EXIT_TRIAL_LOCKED (EX_TEMPFAIL of
 * sysexits.h) ends a trial of nabla tune whose run directory another process still held after
 * the trial waited for it: not the trial's failure, and not its result, but an interruption
 * (trial_channel.h). */
enum {
    EXIT_OK = 0,
    EXIT_RUNTIME = 1,
    EXIT_USAGE = 2,
    EXIT_TRIAL_LOCKED = 75,
    EXIT_OUTPUT_LOST = 141
};

/* Each takes the arguments after "nabla" (argv[0] is the subcommand's name) and returns the
 * exit code: EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, ... (above). */
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_report(int argc, char **argv);

void usage_train(FILE *out);
void usage_eval(FILE *out);
void usage_predict(FILE *out);
void usage_tune(FILE *out);
void usage_report(FILE *out);

#endif /* NABLA_CLI_CLI_H */
