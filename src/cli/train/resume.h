/* Checkpoints from the command line: what `nabla train` stores in them besides the training
 * state (its own arguments, working directory and metrics), and how `--resume DIR` gets the
 * run's configuration back. (What stops a run with a checkpoint: stop_signals.h.) */
#ifndef NABLA_CLI_RESUME_H
#define NABLA_CLI_RESUME_H

#include "cli/train/train_options.h"
#include "nabla.h"

/* The metadata keys `nabla train` adds to its checkpoints. */
#define META_ARGV "argv"        /* the train arguments, a JSON array of strings */
#define META_CWD "cwd"          /* the working directory they are relative to */
#define META_METRICS "metrics"  /* metrics.jsonl as it was at the checkpoint */
#define META_RANKS "ranks"      /* the processes the run had (under mpirun); 1 if absent */
#define META_RUN "run"          /* the run's name (run_name_new), also in its config.json */

/* A run's name: 32 random hex digits a run gets at its start and keeps through its resumes,
 * stored in its checkpoints and its config.json ("run"). A checkpoint of another run put in
 * the directory (copied, swapped) is told by it, even when both runs had the same arguments. */
#define RUN_NAME_SIZE 33
void run_name_new(char name[RUN_NAME_SIZE]);

/* The arguments after "nabla train" as a JSON array (malloc'd; NULL when out of memory). */
char *argv_json(int argc, char **argv);

/* A run to resume: its newest good checkpoint, open. */
typedef struct resume_point {
    nb_st_file file;
    int open;
    char dir[4096];       /* the run directory, absolute */
    char used[4096];      /* the checkpoint file read */
    const char *metrics;  /* inside file */
    int extended_from;    /* the run's own --epochs when --epochs extends it, else 0 */
    char run[RUN_NAME_SIZE]; /* the run's name (a new one for a run of an older version) */
} resume_point;

/* For `nabla train --resume DIR [overrides]` (already parsed into *o): opens DIR's newest
 * checkpoint that verifies and is the directory's run's (the run its config.json names; without
 * one, the run all its checkpoints agree on), saying on stderr when an older one had to be
 * used; refuses when none is the run's, naming the disagreement. Then moves to the
 * run's working directory, and replaces *o with the run's own options plus the overrides
 * (--epochs only upwards, --threads, --quiet, --checkpoint-every), --out being DIR.
 * Returns 0, or -1 with *exit_code set (1 for a missing or damaged checkpoint, 2 for an
 * override that is not allowed) and the message printed. The strings of *o point into
 * p->file, which must stay open while they are used. */
int resume_open(train_options *o, resume_point *p, int *exit_code);
/* The note of a cosine run that --epochs extends (the horizon it keeps): said by the caller
 * once every check has passed, so that a refused resume prints no note. */
void resume_say_extension(const train_options *o, const resume_point *p);
void resume_close(resume_point *p);

/* Whether the checkpoint f is one of the run that `expected` (options parsed in the working
 * directory cwd) describes: the arguments and working directory it stores give the same run
 * (train_options_same_run). Returns 1 if so, else 0 with what saying how it differs. */
int resume_same_run(const nb_st_file *f, const train_options *expected, const char *cwd,
                    char *what, size_t size);

/* Whether the checkpoint f is one of the run `nabla train` starts with args (args[0] "train",
 * argc of them) in this working directory: what a tuner asks before it continues a trial or the
 * refit from the checkpoint in its directory. Returns 1 if so, 0 if not (what says how it
 * differs), -1 with err when the arguments do not parse or the working directory is unknown. */
int resume_checkpoint_is_of(const nb_st_file *f, char **args, int argc, char *what,
                            size_t size, nb_error *err);

/* The arguments a resumed run's own checkpoints store: the run's, with its --epochs, --threads
 * and --checkpoint-every as they are now (later options win), so resuming again continues the
 * extended run. */
char *resume_argv_json(const train_options *o);

#endif /* NABLA_CLI_RESUME_H */
