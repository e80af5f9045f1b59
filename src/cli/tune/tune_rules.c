/* The study engine's view of a study of nabla tune (tune_rules.h). */
#include "cli/tune/tune_rules.h"

#include <string.h>

static int epochs_of(void *user, const nb_search_point *p)
{
    return tune_trial_epochs(((const tune_rules *)user)->opt, p);
}

/* Whether the trial's arguments hold the option --name (fixed or searched): 1, 0, or -1 when
 * out of memory. */
static int trains_with(const tune_options *o, const nb_search_point *p, const char *name)
{
    int argc, found = 0;
    char **args = tune_trial_args(o, p, &argc);
    if (!args)
        return -1;
    for (int k = 0; k < argc; k++)
        found |= strncmp(args[k], name, strlen(name)) == 0;
    tune_args_free(args);
    return found;
}

static int ends_early(void *user, const nb_search_point *p)
{
    const tune_options *o = ((const tune_rules *)user)->opt;
    int stop = trains_with(o, p, "--early-stop"), steps = trains_with(o, p, "--max-steps");
    if (stop < 0 || steps < 0)
        return -1;
    return (stop ? NB_ENDS_EARLY_STOP : 0) | (steps ? NB_ENDS_STEP_LIMIT : 0);
}

/* The arguments a trial started with: the ones its params and the study's settings give
 * (tune_trial_args), then the tuner's own (--out, --threads, ...); or, for a trial that found
 * a checkpoint in its directory, "train --resume DIR ...". */
static int check_command(void *user, const nb_search_point *p, const char *const *args,
                         int n_args, nb_error *err)
{
    if (n_args >= 2 && strcmp(args[1], "--resume") == 0)
        return 0;
    int argc;
    char **want = tune_trial_args(((const tune_rules *)user)->opt, p, &argc);
    if (!want)
        return nb_fail(err, "out of memory");
    int rc = 0;
    for (int k = 0; k < argc && rc == 0; k++)
        if (k >= n_args || strcmp(args[k], want[k]) != 0)
            rc = nb_fail(err, "are not those its params and the study's settings give: "
                              "argument %d is %s%.60s%s, not '%.60s'", k + 1,
                         k < n_args ? "'" : "", k < n_args ? args[k] : "missing",
                         k < n_args ? "'" : "", want[k]);
    tune_args_free(want);
    return rc;
}

static int check_files(void *user, nb_error *err)
{
    const tune_rules *r = user;
    return r->check_files ? r->check_files(r->study, err) : 0;
}

void tune_study_config(const tune_rules *r, nb_study_config *c)
{
    const tune_options *o = r->opt;
    *c = nb_study_defaults();
    c->space = o->space;
    c->trials = o->trials;
    c->rounds = o->rounds;
    c->sampler = o->sampler == SAMPLER_GRID  ? NB_SAMPLER_GRID
                 : o->sampler == SAMPLER_TPE ? NB_SAMPLER_TPE
                                             : NB_SAMPLER_RANDOM;
    c->tpe_lag = o->tpe_lag;
    c->prune = o->prune;
    c->seed = o->seed;
    c->task = o->task;
    c->objective = o->objective;
    c->hooks.user = (void *)r;
    c->hooks.epochs = epochs_of;
    c->hooks.ends_early = ends_early;
    c->hooks.check_command = check_command;
    c->hooks.check_files = check_files;
}
