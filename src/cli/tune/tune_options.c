/* The options of `nabla tune`: the usage text, the split between the search's own options and
 * the train options held fixed, and the checks of the space against `nabla train`. */
#include "cli/tune/tune_options.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/mpi/mpi_comm.h"
#include "cli/common/options.h"
#include "cli/common/threads.h"
#include "cli/train/train_options.h"
#include "cli/tune/model_arguments.h"
#include "study/objective.h"

static const char *const CMD = "tune";

void usage_tune(FILE *out)
{
    fprintf(out,
"usage: nabla tune [train options, held fixed] --space SPEC --trials N --out STUDY [options]\n"
"\n"
"Searches hyperparameters the way the course teaches: random values rather than a grid, the\n"
"learning rate on a log scale, momentum's beta through 1-beta on a log scale, coarse to fine.\n"
"Each trial is a `nabla train` run in STUDY/trials/<n>/, scored on a dev split held out from\n"
"the training set; the test set is used once, for the best model. Running the same command\n"
"again continues a study that was stopped or killed.\n"
"\n"
"Search:\n"
"  --space SPEC          the train options to search and their distributions, ';'-separated:\n"
"                          name=uniform(a,b)  uniform on [a,b]\n"
"                          name=log(a,b)      log-uniform: as likely in [1e-4,1e-3] as in\n"
"                                             [1e-2,1e-1]; for learning rates, weight decay\n"
"                          name=1-log(a,b)    1-x log-uniform: dense near 1; for betas\n"
"                          name=int(a,b)      an integer in [a,b]\n"
"                          name=choice(v,...) one of the values, separated by the commas\n"
"                                             outside parentheses; '|' stands for ',' inside\n"
"                                             a value (layers=choice(128|64,256)); flags take\n"
"                                             on/off (batchnorm=choice(on,off))\n"
"                        a model's text is a layers value: its layers are separated by '|',\n"
"                        a layer's own arguments keep their commas, e.g.\n"
"                          layers=choice(linear(64)|relu|linear, conv2d(16,3,padding=1)|relu|\n"
"                                        maxpool2d(2)|flatten|linear)\n"
"                        (on one line, no blanks inside a value); each trial gets\n"
"                        --layers with ',' for every '|'\n"
"                        names are train options (lr, beta, batch-size, layers, ...), or\n"
"                        units and depth, which make --layers (units repeated depth times),\n"
"                        or a model's arguments: {name} where a layer of a model's text\n"
"                        (--layers or a layers value) takes a value, e.g.\n"
"                          --layers 'conv2d({width},3,padding=1),relu,flatten,\n"
"                                    dropout({p}),linear'\n"
"                          --space 'width=choice(16,32); p=uniform(0.1,0.6)'\n"
"                        [the default space below]\n"
"  --trials N            trials in all [20]\n"
"  --sampler S           random|grid|tpe: grid spreads the same number of trials on a grid;\n"
"                        tpe (Optuna's default sampler) draws each trial where the best\n"
"                        trials so far were, after 10 random ones [random]\n"
"  --tpe-lag L           with tpe: trial i learns from the results of trials 0..i-1-L, and\n"
"                        waits for them; L >= 0. The same trials whatever --workers and\n"
"                        timing; a small L learns sooner, a large one waits less [2]\n"
"  --rounds R            coarse to fine: after each round, narrow every numeric range to the\n"
"                        best quarter of the trials so far and sample again; not with tpe,\n"
"                        which narrows by itself [1]\n"
"  --prune P             none|median|asha: stop a trial after an epoch when its objective is\n"
"                        worse than the median of the earlier trials at that epoch (median,\n"
"                        after 5 of them), or not in the best third of its rung at epochs 1,\n"
"                        3, 9, ... (asha: asynchronous successive halving) [none]\n"
"  --objective M         the dev metric trials are ranked, pruned and narrowed by: one the\n"
"                        task has (loss, accuracy; regression: mse, rmse, mae, r2;\n"
"                        multilabel: micro_f1, macro_f1), also written dev_loss, ...; lower\n"
"                        is better for loss and the errors [accuracy for classification,\n"
"                        loss otherwise]\n"
"  --seed S              seed of the sampler; every trial trains with --seed S too [0]\n"
"  --dev-fraction F      the dev split trials are scored on, 0 < F < 1 [0.1]\n"
"\n"
"Run:\n"
"  --workers W           trials at once, the cores split between them; 1 gives one trial\n"
"                        all cores. Results do not depend on W [1]. Under mpirun -np N,\n"
"                        W trials on each rank (STUDY on a file system they all share)\n"
"  --out STUDY           the study directory: new, empty or this study's; one tuner at a\n"
"                        time (required unless --dry-run)\n"
"  --refit               at the end, train the best configuration again on the whole training\n"
"                        set, its dev split included, for the best trial's epochs (its best\n"
"                        epoch's with --early-stop), into STUDY/refit, and measure it once on\n"
"                        the test set beside the best trial; one more training. Not one of\n"
"                        the study's settings: give it to a finished study to refit it [off]\n"
"  --dry-run             print the trials' configurations and train nothing\n"
"  --quiet               print only the leaderboard and the result\n"
"  -h, --help            this text\n"
"\n"
"Every other option is a `nabla train` option held fixed for all trials (see nabla train\n"
"--help), e.g. --data, --epochs, --optimizer; --test names a CSV test set for the best model.\n"
"\n"
"Default space (the course's order of importance; with it, --lr-decay is inverse unless given):\n"
"  %s\n"
"\n"
"STUDY holds journal.jsonl (one line per event: trial, state running|complete|pruned|failed,\n"
"params, dev_accuracy, dev_loss (and dev_M for another objective M), epochs, seconds),\n"
"study.json (the settings), trials/<n>/ and, at the end, best.json (the objective, params, dev\n"
"and test figures, the command that trains the best model again, how much each\n"
"hyperparameter mattered, the worker-seconds trials waited for earlier results, and with\n"
"--refit the refit's epochs, test figures and command); STUDY/refit is the refit's run\n"
"directory; for gzip'd IDX data, data/ holds the training files decompressed once for the\n"
"trials.\n",
            TUNE_DEFAULT_SPACE);
}

/* Train options that a study sets itself, or that would make trials clash. */
static const char *const NOT_FIXED[] = {"resume", "save-weights"};
/* Train options that cannot be searched: they change the data the trials are compared on, or
 * how a run is executed rather than what it learns. */
static const char *const NOT_SEARCHED[] = {
    "data", "test", "dev-fraction", "seed", "out", "resume", "threads", "quiet",
    "save-weights", "checkpoint-every", "samples", "noise",
};

static int in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

#define IN_LIST(name, list) in_list(name, list, sizeof list / sizeof list[0])

const char *tune_sampler_name(tune_sampler s)
{
    static const char *const names[] = {[SAMPLER_RANDOM] = "random", [SAMPLER_GRID] = "grid",
                                        [SAMPLER_TPE] = "tpe"};
    return names[s];
}

void tune_options_init(tune_options *o)
{
    memset(o, 0, sizeof *o);
    o->space_text = TUNE_DEFAULT_SPACE;
    o->default_space = 1;
    o->trials = 20;
    o->workers = 1;
    o->rounds = 1;
    o->sampler = SAMPLER_RANDOM;
    o->tpe_lag = TUNE_DEFAULT_TPE_LAG;
    o->prune = NB_PRUNE_NONE;
    o->dev_fraction = "0.1";
}

const char *tune_fixed_value(const tune_options *o, const char *name)
{
    const char *found = NULL;
    for (int i = 0; i < o->n_fixed; i++)
        if (strcmp(o->fixed[i].flag + 2, name) == 0)
            found = o->fixed[i].value ? o->fixed[i].value : "";
    return found;
}

static int add_fixed(tune_options *o, const char *name, const char *value)
{
    tune_fixed *f = realloc(o->fixed, ((size_t)o->n_fixed + 1) * sizeof *f);
    if (!f)
        return -1;
    o->fixed = f;
    size_t len = strlen(name) + 3;
    char *flag = malloc(len);
    if (!flag)
        return -1;
    snprintf(flag, len, "--%s", name);
    o->fixed[o->n_fixed].flag = flag;
    o->fixed[o->n_fixed].value = value;
    o->n_fixed++;
    return 0;
}

/* An integer option in [lo, hi] (hi INT_MAX: no upper bound) into *out; -1 (message printed)
 * otherwise. */
static int int_option(const char *flag, const char *value, int lo, int hi, int *out,
                      int *exit_code)
{
    int n;
    if (cli_parse_int(CMD, flag, value, &n) != 0)
        return -1;
    if (n < lo || n > hi) {
        *exit_code = hi == INT_MAX
                         ? cli_usage_error(CMD, "%s must be at least %d, got %d", flag, lo, n)
                         : cli_usage_error(CMD, "%s must be in [%d, %d], got %d", flag, lo, hi,
                                           n);
        return -1;
    }
    *out = n;
    return 0;
}

/* One option of tune's own: 1 handled, 0 not one of them, -1 bad (message printed). */
static int apply_own(tune_options *o, const char *name, const char *value, int *exit_code)
{
    double f;
    if (strcmp(name, "space") == 0) {
        o->space_text = value;
        o->default_space = 0;
    } else if (strcmp(name, "trials") == 0) {
        if (int_option("--trials", value, 1, 100000, &o->trials, exit_code) != 0)
            return -1;
    } else if (strcmp(name, "workers") == 0) {
        if (int_option("--workers", value, 1, 1024, &o->workers, exit_code) != 0)
            return -1;
    } else if (strcmp(name, "rounds") == 0) {
        if (int_option("--rounds", value, 1, INT_MAX, &o->rounds, exit_code) != 0)
            return -1;
    } else if (strcmp(name, "sampler") == 0) {
        int known = 0;
        for (tune_sampler k = SAMPLER_RANDOM; k <= SAMPLER_TPE && !known; k++)
            if (strcmp(value, tune_sampler_name(k)) == 0) {
                o->sampler = k;
                known = 1;
            }
        if (!known)
            return *exit_code = cli_usage_error(CMD, "--sampler expects random, grid or tpe, "
                                                     "got '%s'", value), -1;
    } else if (strcmp(name, "tpe-lag") == 0) {
        if (int_option("--tpe-lag", value, 0, INT_MAX, &o->tpe_lag, exit_code) != 0)
            return -1;
        o->tpe_lag_given = 1;
    } else if (strcmp(name, "prune") == 0) {
        if (nb_prune_parse(value, &o->prune) != 0)
            return *exit_code = cli_usage_error(CMD, "--prune expects none, median or asha, "
                                                     "got '%s'", value), -1;
    } else if (strcmp(name, "objective") == 0) {
        nb_metric m;
        if (objective_parse(value, &m) != 0) {
            char names[256] = "";
            for (int i = 0; i < NB_METRICS; i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                         i ? ", " : "", nb_metric_name((nb_metric)i));
            return *exit_code = cli_usage_error(CMD, "--objective expects a dev metric (%s; "
                                                     "or dev_loss, dev_accuracy, ...), got '%s'",
                                                names, value), -1;
        }
        o->objective_text = value;
    } else if (strcmp(name, "seed") == 0) {
        if (cli_parse_u64(CMD, "--seed", value, &o->seed) != 0)
            return -1;
    } else if (strcmp(name, "dev-fraction") == 0) {
        if (cli_parse_double(CMD, "--dev-fraction", value, &f) != 0)
            return -1;
        if (!(f > 0 && f < 1))
            return *exit_code = cli_usage_error(CMD, "--dev-fraction must be in (0, 1): trials "
                                                     "are scored on the dev split, got %s",
                                                value), -1;
        o->dev_fraction = value;
    } else if (strcmp(name, "out") == 0) {
        if (cli_parse_path(CMD, "--out", value, &o->out) != 0)
            return -1;
    } else {
        return 0;
    }
    return 1;
}

static int own_flag(tune_options *o, const char *name)
{
    if (strcmp(name, "dry-run") == 0)
        o->dry_run = 1;
    else if (strcmp(name, "quiet") == 0)
        o->quiet = 1;
    else if (strcmp(name, "refit") == 0)
        o->refit = 1;
    else
        return 0;
    return 1;
}

static const char *const OWN_WITH_VALUE[] = {"space",     "trials",    "workers", "rounds",
                                             "sampler",   "tpe-lag",   "prune",   "objective",
                                             "seed",      "dev-fraction", "out"};

/* Walks the arguments: tune's own options are applied, train options are kept as fixed. With
 * fixed_only, the arguments are the train options a study holds fixed (study.json's "fixed"),
 * and anything else among them is refused. */
static int split_arguments(tune_options *o, int argc, char **argv, int fixed_only,
                           int *exit_code)
{
    *exit_code = EXIT_USAGE;
    for (int i = fixed_only ? 0 : 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!fixed_only && (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)) {
            usage_tune(stdout);
            *exit_code = EXIT_OK;
            return -1;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            cli_usage_error(CMD, "unexpected argument '%s'", arg);
            return -1;
        }
        /* --name value, or --name=value */
        char name[64];
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (len >= sizeof name) {
            cli_usage_error(CMD, "unknown option '%s'", arg);
            return -1;
        }
        memcpy(name, arg + 2, len);
        name[len] = '\0';
        int own_value = IN_LIST(name, OWN_WITH_VALUE);
        int train_arity = train_option_arity(name);
        int own_without_value = strcmp(name, "dry-run") == 0 || strcmp(name, "quiet") == 0 ||
                                strcmp(name, "refit") == 0;
        if (fixed_only && (own_value || own_without_value || strcmp(name, "test") == 0)) {
            cli_usage_error(CMD, "'%s' is not a train option held fixed", arg);
            return -1;
        }
        int takes_value = own_value || (!own_flag(o, name) && train_arity == 1);
        if (!own_value && !takes_value && eq) {
            cli_usage_error(CMD, "option '--%s' takes no value", name);
            return -1;
        }
        const char *value = NULL;
        if (takes_value) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                cli_usage_error(CMD, "option '--%s' needs a value", name);
                return -1;
            }
        }
        if (own_value) {
            if (apply_own(o, name, value, exit_code) < 0)
                return -1;
            continue;
        }
        if (own_without_value)
            continue;
        if (train_arity < 0) {
            cli_usage_error(CMD, "unknown option '--%s' (neither a tune nor a train option; "
                                 "see nabla tune --help)", name);
            return -1;
        }
        if (IN_LIST(name, NOT_FIXED)) {
            cli_usage_error(CMD, "--%s cannot be given to tune: %s", name,
                            strcmp(name, "resume") == 0
                                ? "a study resumes when the same command is run again"
                                : "every trial would write the same file; the best model is "
                                  "STUDY/trials/<n>/model.safetensors");
            return -1;
        }
        if (strcmp(name, "test") == 0) {
            o->test = value;
            continue;
        }
        /* How a trial runs, not what it learns: not one of the study's settings (a study goes
         * on with another --threads, as with another --workers), and each trial gets it. */
        if (strcmp(name, "threads") == 0) {
            if (cli_parse_threads(CMD, value, &o->threads) != 0)
                return -1;
            continue;
        }
        /* Kept as "--name" "value", whichever way it was written. */
        if (add_fixed(o, name, value) != 0) {
            cli_usage_error(CMD, "out of memory");
            return -1;
        }
    }
    return 0;
}

int tune_option_set(tune_options *o, const char *name, const char *value, int *exit_code)
{
    *exit_code = EXIT_USAGE;
    int rc = apply_own(o, name, value, exit_code);
    if (rc == 0)
        cli_usage_error(CMD, "'%s' is not an option of tune", name);
    return rc == 1 ? 0 : -1;
}

int tune_options_fix(tune_options *o, int argc, char **argv, int *exit_code)
{
    return split_arguments(o, argc, argv, 1, exit_code);
}

/* ---- the space against nabla train ------------------------------------------------------- */

int tune_is_layer_part(const char *name)
{
    return strcmp(name, "units") == 0 || strcmp(name, "depth") == 0;
}

/* Appends the arguments that set parameter p to v. units and depth are left to the caller. */
static int add_param_args(char ***args, int *n, const nb_search_param *p, double v);

int tune_args_push(char ***args, int *n, const char *s)
{
    char *copy = strdup(s);
    char **a = realloc(*args, ((size_t)*n + 2) * sizeof *a);
    if (!copy || !a) {
        free(copy);
        if (a)
            *args = a;
        return -1;
    }
    *args = a;
    a[(*n)++] = copy;
    a[*n] = NULL;
    return 0;
}

void tune_value_text(const nb_search_param *p, double v, char *text, size_t cap)
{
    nb_search_value_text(p, v, text, cap);
    for (char *c = text; *c; c++)
        if (*c == '|')
            *c = ',';
}

static int add_param_args(char ***args, int *n, const nb_search_param *p, double v)
{
    char text[NB_SEARCH_VALUE_MAX], flag[NB_SEARCH_NAME_MAX + 3];
    tune_value_text(p, v, text, sizeof text);
    snprintf(flag, sizeof flag, "--%s", p->name);
    if (train_option_arity(p->name) == 0) /* a flag: on or off */
        return strcmp(text, "on") == 0 ? tune_args_push(args, n, flag) : 0;
    return tune_args_push(args, n, flag) == 0 && tune_args_push(args, n, text) == 0 ? 0 : -1;
}

/* --layers from units and depth: searched values where searched, else the fixed (or default)
 * --layers' first width and count. */
static int add_layers_args(const tune_options *o, const nb_search_point *pt, char ***args,
                           int *n)
{
    int searched = 0;
    for (int i = 0; i < o->space.n; i++)
        searched |= tune_is_layer_part(o->space.p[i].name);
    if (!searched)
        return 0;
    /* Widths, as check_layers made sure. */
    const char *layers = tune_fixed_value(o, "layers");
    nb_mlp mlp;
    nb_error err;
    memset(&mlp, 0, sizeof mlp);
    if (nb_parse_layers(layers ? layers : "256,128", &mlp, &err) != 0)
        return -1;
    long units = mlp.n_hidden > 0 ? mlp.hidden[0] : 256, depth = mlp.n_hidden;
    for (int i = 0; i < o->space.n; i++) {
        const nb_search_param *p = &o->space.p[i];
        if (!tune_is_layer_part(p->name))
            continue;
        char text[NB_SEARCH_VALUE_MAX];
        nb_search_value_text(p, pt->v[i], text, sizeof text);
        long value = strtol(text, NULL, 10);
        if (strcmp(p->name, "units") == 0)
            units = value;
        else
            depth = value;
    }
    char buf[4096] = "none";
    size_t used = 0;
    for (long d = 0; d < depth && used + 32 < sizeof buf; d++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%ld", d ? "," : "", units);
    return tune_args_push(args, n, "--layers") == 0 && tune_args_push(args, n, buf) == 0 ? 0 : -1;
}

void tune_args_free(char **args)
{
    if (!args)
        return;
    for (char **a = args; *a; a++)
        free(*a);
    free(args);
}

char **tune_trial_args(const tune_options *o, const nb_search_point *pt, int *argc)
{
    char **args = NULL;
    int n = 0;
    int ok = tune_args_push(&args, &n, "train") == 0, layer_parts = 0;
    for (int i = 0; i < o->space.n; i++)
        layer_parts |= tune_is_layer_part(o->space.p[i].name);
    for (int i = 0; ok && i < o->n_fixed; i++) {
        /* A fixed --layers only lends its width or depth to units and depth (below). */
        if (layer_parts && strcmp(o->fixed[i].flag, "--layers") == 0)
            continue;
        ok = tune_args_push(&args, &n, o->fixed[i].flag) == 0 &&
             (!o->fixed[i].value || tune_args_push(&args, &n, o->fixed[i].value) == 0);
    }
    for (int i = 0; ok && i < o->space.n; i++)
        if (!tune_is_layer_part(o->space.p[i].name) && !tune_is_model_argument(o, o->space.p[i].name))
            ok = add_param_args(&args, &n, &o->space.p[i], pt->v[i]) == 0;
    if (ok)
        ok = add_layers_args(o, pt, &args, &n) == 0;
    /* The model's searched arguments in their places. */
    for (int i = 0; ok && i + 1 < n; i++)
        if (strcmp(args[i], "--layers") == 0) {
            char *filled = tune_fill_model_arguments(o, pt, args[i + 1]);
            ok = filled != NULL;
            if (ok) {
                free(args[i + 1]);
                args[i + 1] = filled;
            }
        }
    if (ok && o->adds_lr_decay)
        ok = tune_args_push(&args, &n, "--lr-decay") == 0 &&
             tune_args_push(&args, &n, "inverse") == 0;
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    if (ok)
        ok = tune_args_push(&args, &n, "--dev-fraction") == 0 &&
             tune_args_push(&args, &n, o->dev_fraction) == 0 &&
             tune_args_push(&args, &n, "--seed") == 0 && tune_args_push(&args, &n, seed) == 0;
    if (!ok) {
        tune_args_free(args);
        return NULL;
    }
    *argc = n;
    return args;
}

/* Whether `nabla train` takes these arguments (into *t, which may be NULL); if not, train has
 * said why in its own line (cli_last_error, when errors are quiet). */
static int train_accepts(char **args, int argc, train_options *t)
{
    train_options scratch;
    int code;
    return train_options_parse(t ? t : &scratch, argc, args, &code) == 0;
}

/* The name of every searched parameter must be something a trial can be given. */
static int check_names(tune_options *o)
{
    int has_layers = 0, has_parts = 0;
    for (int i = 0; i < o->space.n; i++) {
        const nb_search_param *p = &o->space.p[i];
        has_layers |= strcmp(p->name, "layers") == 0;
        has_parts |= tune_is_layer_part(p->name);
        if (tune_is_layer_part(p->name)) {
            if (p->kind != NB_DIST_INT && p->kind != NB_DIST_CHOICE) {
                cli_usage_error(CMD, "--space: %s must be int(a,b) or choice(...) of whole "
                                     "numbers", p->name);
                return -1;
            }
            continue;
        }
        int arity = train_option_arity(p->name);
        if (arity < 0 && tune_is_model_argument(o, p->name))
            continue;   /* {name} in a model's text: any law (tune_check_model_arguments) */
        if (arity < 0) {
            cli_usage_error(CMD, "--space: '%s' is not an option of nabla train (see nabla "
                                 "train --help; units and depth make --layers; a model's "
                                 "argument is written {%s} in the model's text)", p->name,
                            p->name);
            return -1;
        }
        if (strcmp(p->name, "task") == 0) {
            cli_usage_error(CMD, "--space: task cannot be searched: a study ranks its trials by "
                                 "a dev metric of one task (hold --task fixed)");
            return -1;
        }
        if (IN_LIST(p->name, NOT_SEARCHED)) {
            cli_usage_error(CMD, "--space: %s cannot be searched: trials must share the data, "
                                 "the dev split and the way they run", p->name);
            return -1;
        }
        if (arity == 0 && p->kind != NB_DIST_CHOICE) {
            cli_usage_error(CMD, "--space: --%s is a flag: search it with choice(on,off)",
                            p->name);
            return -1;
        }
        for (int c = 0; arity == 0 && c < p->n_choices; c++)
            if (strcmp(p->choices[c], "on") != 0 && strcmp(p->choices[c], "off") != 0) {
                cli_usage_error(CMD, "--space: --%s is a flag: its choices are on and off, "
                                     "not '%s'", p->name, p->choices[c]);
                return -1;
            }
        if (tune_fixed_value(o, p->name)) {
            cli_usage_error(CMD, "--%s is both held fixed and searched in --space; drop one",
                            p->name);
            return -1;
        }
    }
    if (has_layers && has_parts) {
        cli_usage_error(CMD, "--space: search layers, or units and depth, not both");
        return -1;
    }
    return 0;
}

/* The model's two forms do not mix: units and depth make --layers widths, so the --layers they
 * take their defaults from cannot be a model's text; and a model's text writes its own
 * activations and batch norms, so the widths form's options (--activation, --leaky-slope,
 * --batchnorm) cannot be searched beside a layers choice that holds one. (Held fixed beside
 * such a choice, train refuses each such value in check_values, with its own message.) */
static int check_layers(const tune_options *o)
{
    const char *fixed_layers = tune_fixed_value(o, "layers");
    const nb_search_param *layers = NULL, *widths_option = NULL, *layer_part = NULL;
    for (int i = 0; i < o->space.n; i++) {
        const nb_search_param *p = &o->space.p[i];
        if (strcmp(p->name, "layers") == 0)
            layers = p;
        else if (tune_is_layer_part(p->name) && !layer_part)
            layer_part = p;
        else if (train_option_goes_with_widths(p->name) && !widths_option)
            widths_option = p;
    }
    if (layer_part && fixed_layers && train_layers_is_text(fixed_layers)) {
        if (o->default_space)
            cli_usage_error(CMD, "the default space searches units and depth, which make "
                                 "--layers widths, but --layers '%s' is a model's text: give "
                                 "--space with what to search (see nabla tune --help)",
                            fixed_layers);
        else
            cli_usage_error(CMD, "--space: %s makes --layers widths, but --layers '%s' is a "
                                 "model's text: search layers=choice(...) of model texts, or "
                                 "give --layers widths", layer_part->name, fixed_layers);
        return -1;
    }
    for (int c = 0; layers && widths_option && c < layers->n_choices; c++) {
        char text[NB_SEARCH_VALUE_MAX];
        tune_value_text(layers, c, text, sizeof text);
        if (train_layers_is_text(text)) {
            cli_usage_error(CMD, "--space: %s goes with --layers widths, but layers=%s is a "
                                 "model's text, which writes its own layers: drop %s from the "
                                 "space, or write it into the texts", widths_option->name,
                            layers->choices[c], widths_option->name);
            return -1;
        }
    }
    return 0;
}

char **tune_value_args(const tune_options *o, int i, double v, int *argc)
{
    tune_options *one = malloc(sizeof *one);
    if (!one)
        return NULL;
    *one = *o;
    one->space.n = 0;
    nb_search_point pt = {{0}};
    if (i >= 0) {
        one->space.n = 1;
        one->space.p[0] = o->space.p[i];
        pt.v[0] = v;
        /* --lr-decay inverse comes with the default space's decay-rate. */
        if (strcmp(o->space.p[i].name, "decay-rate") != 0)
            one->adds_lr_decay = 0;
    }
    /* A searched model stands in for train's default one beside any other value: the fixed
     * options may go with it only (--input-shape with a model's text). Its first value, and
     * the first value of each of the model's searched arguments ({name} in its text). */
    for (int k = 0; k < o->space.n; k++)
        if (k != i && tune_shapes_model(o, &o->space.p[k])) {
            one->space.p[one->space.n] = o->space.p[k];
            pt.v[one->space.n++] = o->space.p[k].lo;
        }
    char **args = tune_trial_args(one, &pt, argc);
    free(one);
    return args;
}

int tune_edge_count(const nb_search_param *p)
{
    return p->kind == NB_DIST_CHOICE ? p->n_choices : 2;
}

double tune_edge_value(const nb_search_param *p, int k)
{
    return p->kind == NB_DIST_CHOICE ? k : k == 0 ? p->lo : p->hi;
}

/* Each end of every range and every choice must be accepted by nabla train, with the fixed
 * options and nothing else searched (a combination of values that train refuses, such as
 * --batchnorm with --batch-size 1, only fails the trials that draw it). */
static int check_values(const tune_options *o)
{
    for (int i = 0; i < o->space.n; i++) {
        const nb_search_param *p = &o->space.p[i];
        for (int k = 0; k < tune_edge_count(p); k++) {
            double v = tune_edge_value(p, k);
            int argc;
            char **args = tune_value_args(o, i, v, &argc);
            if (!args) {
                cli_usage_error(CMD, "out of memory");
                return -1;
            }
            int ok = train_accepts(args, argc, NULL);
            tune_args_free(args);
            if (!ok) {
                char text[NB_SEARCH_VALUE_MAX], why[1024];
                nb_search_value_text(p, v, text, sizeof text);
                /* Train's reason is on the line above, or when quiet, given here. */
                snprintf(why, sizeof why, "%s", cli_last_error());
                if (cli_errors_quieted())
                    cli_usage_error(CMD, "--space: %s=%s is refused by nabla train: %s", p->name,
                                    text, why);
                else
                    cli_usage_error(CMD, "--space: %s=%s is refused by nabla train (above)",
                                    p->name, text);
                return -1;
            }
        }
    }
    return 0;
}

/* The objective: a metric the trials' task has, or the task's default. Dev loss does not
 * compare trials that train with different losses (mse against l1): with loss searched, it is
 * refused. */
static int check_objective(tune_options *o, nb_task task)
{
    o->task = task;
    if (o->objective_text)
        objective_parse(o->objective_text, &o->objective); /* apply_own checked the name */
    else
        o->objective = objective_default(task, o->legacy_objective);
    char names[256];
    nb_metric_names(task, names, sizeof names);
    if (!nb_metric_applies(o->objective, task)) {
        cli_usage_error(CMD, "--objective %s: a %s model has no dev %s; its dev metrics: %s",
                        o->objective_text, nb_task_name(task), nb_metric_name(o->objective),
                        names);
        return -1;
    }
    for (int i = 0; o->objective == NB_METRIC_LOSS && i < o->space.n; i++)
        if (strcmp(o->space.p[i].name, "loss") == 0) {
            cli_usage_error(CMD, "--space searches loss, but the objective is dev loss, which "
                                 "differs from one loss to another: give --objective, one of "
                                 "%s", names);
            return -1;
        }
    return 0;
}

/* After train refused the fixed options with the searched model standing in: which values
 * stood in, when any did (a model's text with w=0 reads as a refused linear(0) above). */
static void say_stand_ins(const tune_options *o)
{
    char list[512] = "", text[NB_SEARCH_VALUE_MAX];
    size_t used = 0;
    for (int i = 0; i < o->space.n && used < sizeof list; i++) {
        const nb_search_param *p = &o->space.p[i];
        if (!tune_shapes_model(o, p))
            continue;
        nb_search_value_text(p, p->lo, text, sizeof text);
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s=%s", used ? " " : "",
                                 p->name, text);
    }
    if (used > 0 && !cli_errors_quieted())
        cli_usage_error(CMD, "(nabla train was given the searched model at its first values: "
                             "%s)", list);
}

int tune_options_check(tune_options *o, tune_setting *bad, int *exit_code)
{
    *exit_code = EXIT_USAGE;
    *bad = TUNE_ROUNDS;
    if (o->rounds > o->trials / 2 && o->rounds > 1) {
        cli_usage_error(CMD, "--rounds %d needs at least 2 trials a round, but --trials is %d",
                        o->rounds, o->trials);
        return -1;
    }
    if (o->sampler == SAMPLER_TPE && o->rounds > 1) {
        cli_usage_error(CMD, "--rounds %d with --sampler tpe: TPE narrows the search by itself, "
                             "from every result so far; give one or the other", o->rounds);
        return -1;
    }
    *bad = TUNE_TPE_LAG;
    if (o->tpe_lag_given && o->sampler != SAMPLER_TPE) {
        cli_usage_error(CMD, "--tpe-lag goes with --sampler tpe (the %s sampler learns from no "
                             "result)", tune_sampler_name(o->sampler));
        return -1;
    }
    *bad = TUNE_SPACE;
    nb_error err;
    if (nb_search_space_parse(&o->space, o->space_text, &err) != 0) {
        cli_usage_error(CMD, "--space: %s", err.msg);
        return -1;
    }
    if (tune_check_model_arguments(o) != 0 || check_names(o) != 0)
        return -1;
    for (int i = 0; i < o->space.n; i++)
        if (strcmp(o->space.p[i].name, "decay-rate") == 0 && !tune_fixed_value(o, "lr-decay")) {
            if (!o->default_space) {
                cli_usage_error(CMD, "--space searches decay-rate, but --lr-decay is none: "
                                     "give --lr-decay (e.g. inverse)");
                return -1;
            }
            o->adds_lr_decay = 1;
        }
    /* The fixed options on their own (a bad --lr fails here, with train's message), then the
     * searched values. A searched model stands in for train's default one from the start: the
     * fixed options may go with it only (--input-shape with a model's text). */
    *bad = TUNE_FIXED;
    int n;
    char **args = tune_value_args(o, -1, 0, &n);
    if (!args) {
        cli_usage_error(CMD, "out of memory");
        return -1;
    }
    train_options fixed;
    int ok = train_accepts(args, n, &fixed);
    tune_args_free(args);
    if (!ok) {
        say_stand_ins(o);
        return -1;   /* train said why */
    }
    /* Every trial reads the data itself: standard input can be read once. */
    const char *data = tune_fixed_value(o, "data"), *test = tune_fixed_value(o, "test");
    if ((data && strcmp(data, "-") == 0) || (test && strcmp(test, "-") == 0)) {
        cli_usage_error(CMD, "--%s -: every trial reads the data itself, and standard input "
                             "can be read only once: save it to a file",
                        data && strcmp(data, "-") == 0 ? "data" : "test");
        return -1;
    }
    *bad = TUNE_OBJECTIVE;
    if (check_objective(o, fixed.task) != 0)
        return -1;
    *bad = TUNE_SPACE;
    if (check_layers(o) != 0 || check_values(o) != 0)
        return -1;
    *exit_code = EXIT_OK;
    return 0;
}

int tune_options_parse(tune_options *o, int argc, char **argv, int *exit_code)
{
    tune_options_init(o);
    if (split_arguments(o, argc, argv, 0, exit_code) != 0)
        return -1;
    if (!o->out && !o->dry_run) {
        cli_usage_error(CMD, "--out STUDY is required: the study directory, where running the "
                             "same command again continues");
        return -1;
    }
    tune_setting bad;
    if (tune_options_check(o, &bad, exit_code) != 0)
        return -1;
    /* Threads beyond the cores a trial may use only take turns (threads.h). */
    if (o->threads > 0)
        o->threads = cli_cap_threads(CMD, o->threads, cli_trial_cores(), "a trial",
                                     job_rank() == 0);
    return 0;
}

int tune_trial_epochs(const tune_options *o, const nb_search_point *p)
{
    int argc, epochs = TRAIN_DEFAULT_EPOCHS;
    char **args = tune_trial_args(o, p, &argc);
    if (!args)
        return -1;
    /* The last --epochs counts, as getopt reads them; tune checked its value. */
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(args[i], "--epochs") == 0)
            epochs = atoi(args[i + 1]);
    tune_args_free(args);
    return epochs;
}

void tune_options_free(tune_options *o)
{
    for (int i = 0; i < o->n_fixed; i++)
        free(o->fixed[i].flag);
    free(o->fixed);
    o->fixed = NULL;
    o->n_fixed = 0;
}
