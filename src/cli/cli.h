/* The subcommands of the nabla program and their usage texts. */
#ifndef NABLA_CLI_CLI_H
#define NABLA_CLI_CLI_H

#include <stdio.h>

/* Each takes the arguments after "nabla" (argv[0] is the subcommand's name) and returns the
 * exit code: 0 success, 1 runtime failure, 2 bad usage. */
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
