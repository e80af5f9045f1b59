/* The options of `nabla tune`: its own (the search) and the `nabla train` options it holds
 * fixed for every trial. */
#ifndef NABLA_CLI_TUNE_OPTIONS_H
#define NABLA_CLI_TUNE_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "nabla.h"

/* The space searched when --space is not given: the course's order of importance. */
#define TUNE_DEFAULT_SPACE                                                                     \
    "lr=log(1e-4,1e-1); batch-size=choice(32,64,128,256); units=choice(64,128,256,512); "     \
    "beta=1-log(0.9,0.999); depth=int(1,3); decay-rate=log(0.01,1)"

typedef enum tune_sampler { SAMPLER_RANDOM, SAMPLER_GRID, SAMPLER_TPE } tune_sampler;

/* --tpe-lag when not given: each TPE trial may start while the 2 trials before it run. */
#define TUNE_DEFAULT_TPE_LAG 2

/* The sampler's name, as --sampler and study.json spell it. */
const char *tune_sampler_name(tune_sampler s);

typedef struct tune_fixed {
    char *flag;                  /* "--name" */
    const char *value;           /* NULL for a flag */
} tune_fixed;

typedef struct tune_options {
    const char *space_text;      /* as given, or TUNE_DEFAULT_SPACE */
    nb_search_space space;
    int trials, workers, rounds;
    tune_sampler sampler;
    /* --sampler tpe: trial i learns from the results of trials 0 .. i-1-tpe_lag (nb_study_ask);
     * tpe_lag_given: --tpe-lag was given (it goes with tpe only). */
    int tpe_lag, tpe_lag_given;
    nb_prune_kind prune;
    uint64_t seed;
    const char *dev_fraction;    /* as given: it goes to every trial as text */
    int dry_run, quiet;
    /* --refit: the best configuration trained again on train + dev at the end (tune_refit.h).
     * What the study's end does, not what its trials are: not one of its settings. */
    int refit;
    const char *out;             /* the study directory (NULL only with --dry-run) */
    /* The train options held fixed, in order. --test is kept apart: trials run without a test
     * set, only the best model meets it. */
    tune_fixed *fixed;
    int n_fixed;
    int default_space;           /* no --space given */
    const char *test;            /* --test as given, or NULL */
    int threads;                 /* --threads if given (every trial gets it), else 0 */
    int adds_lr_decay;           /* the default space searches decay-rate: --lr-decay inverse */
    /* What trials are ranked by (tune_objective.h): --objective as given (NULL: the task's
     * default; legacy: a study.json from before objectives, which names none), and, once
     * tune_options_check has run, the trials' --task and the objective's metric. */
    const char *objective_text;
    int legacy_objective;
    nb_task task;
    nb_metric objective;
} tune_options;

/* Fills o from the arguments after "nabla" (argv[0] is "tune"), checks the space against what
 * `nabla train` accepts, and returns 0 to go on, or -1 with *exit_code set (0 after --help, 2
 * after a usage error on stderr). It is tune_options_init, then each option by the functions
 * below, then tune_options_check: the checks a study's settings read back from study.json go
 * through too (study_settings.h). */
int tune_options_parse(tune_options *o, int argc, char **argv, int *exit_code);
void tune_options_free(tune_options *o);
/* The value of the fixed train option --name ("" for a flag), or NULL when it is not fixed. */
const char *tune_fixed_value(const tune_options *o, const char *name);
/* Value v of parameter p as a trial's option takes it: the value's text, each '|' turned into
 * ',' ("linear(64)|relu|linear" is --layers linear(64),relu,linear). */
void tune_value_text(const nb_search_param *p, double v, char *text, size_t cap);
/* Whether name is units or depth, which make --layers widths. */
int tune_is_layer_part(const char *name);
/* The values of p checked before a study starts: each choice, or both ends of a range
 * (tune_edge_count of them; the k-th is tune_edge_value). */
int tune_edge_count(const nb_search_param *p);
double tune_edge_value(const nb_search_param *p, int k);

/* The defaults, nothing fixed. */
void tune_options_init(tune_options *o);
/* One of tune's own options that take a value ("trials", "seed", "space", ...) set to value
 * (kept, not copied): 0, or -1 with a usage error (cli_usage_error). */
int tune_option_set(tune_options *o, const char *name, const char *value, int *exit_code);
/* The train options held fixed, as "--name" ["value"] words (kept, not copied); anything else
 * among them is refused. 0, or -1 with a usage error. */
int tune_options_fix(tune_options *o, int argc, char **argv, int *exit_code);
/* The settings, together: the rounds against the trials and the sampler, --tpe-lag against
 * the sampler, the space (names, values nabla train
 * accepts with the fixed options), the fixed options on their own, the objective against the
 * task (a metric the task has; not dev loss when the loss is searched). 0, or -1 with a usage
 * error and in *bad the setting it concerns. */
typedef enum tune_setting {
    TUNE_ROUNDS,
    TUNE_SPACE,
    TUNE_FIXED,
    TUNE_OBJECTIVE,
    TUNE_TPE_LAG
} tune_setting;
int tune_options_check(tune_options *o, tune_setting *bad, int *exit_code);

/* The --epochs of the trial at point p (its arguments', or train's default); -1 when out of
 * memory. */
int tune_trial_epochs(const tune_options *o, const nb_search_point *p);

/* The `nabla train` arguments of a trial at point p (without the program name and "train"):
 * the fixed ones, then the searched ones. A NULL-terminated array the caller frees with
 * tune_args_free, or NULL when out of memory. */
char **tune_trial_args(const tune_options *o, const nb_search_point *p, int *argc);
void tune_args_free(char **args);
/* Appends a copy of s to the NULL-terminated array *args of *n strings: 0, or -1 when out of
 * memory (the array is then as it was). */
int tune_args_push(char ***args, int *n, const char *s);
/* The same with the fixed options and only parameter i searched, at value v (for a choice, the
 * index of the value); i = -1: the fixed options alone. A searched layers stays in, at its first
 * value, since the fixed options may need a model's text. To try each value on its own. */
char **tune_value_args(const tune_options *o, int i, double v, int *argc);

void usage_tune(FILE *out);

#endif /* NABLA_CLI_TUNE_OPTIONS_H */
