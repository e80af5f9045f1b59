/* Before a study starts, the models its trials would train, checked against the data (see
 * tune_models.h). */
#include "cli/tune/tune_models.h"

#include <stdio.h>
#include <string.h>

#include "cli/common/options.h"
#include "cli/train/train_options.h"
#include "cli/tune/model_arguments.h"

static const char *const CMD = "tune";

/* The training set the trials share, loaded once the first model's text needs it. */
typedef struct shared_data {
    int loaded;
    nb_dataset train;
} shared_data;

/* Whether the trial with parameter i at value v (i = -1: the fixed options alone) trains a
 * model that fits the data. A model given by widths always does (an MLP on the vector of
 * features): the data is loaded for the first model's text only. 0 when it fits; -1 with a
 * message, *exit_code 2 when it does not, 1 when the data cannot be loaded. */
static int check_one(const tune_options *o, int i, double v, shared_data *d, int *exit_code)
{
    int argc, code;
    char **args = tune_value_args(o, i, v, &argc);
    if (!args) {
        *exit_code = cli_error("out of memory");
        return -1;
    }
    train_options t;
    int rc = train_options_parse(&t, argc, args, &code);   /* as tune_options_check did */
    if (rc != 0) {
        tune_args_free(args);
        *exit_code = code;
        return -1;
    }
    nb_error err;
    if (t.layers_text && !d->loaded) {
        /* Only the training set: the trials run without a test set. */
        nb_dataset test;
        t.src.test = NULL;
        t.src.no_test = 1;
        if (data_load_train(&t.src, &d->train, &test, &err) != 0) {
            tune_args_free(args);
            *exit_code = cli_error("%s", err.msg);
            return -1;
        }
        d->loaded = 1;
    }
    nb_model_spec spec;
    if (t.layers_text && train_model_spec(&t, &d->train, &spec, NULL, &err) != 0) {
        if (i < 0) {
            *exit_code = cli_usage_error(CMD, "%s", err.msg);
        } else {
            char text[NB_SEARCH_VALUE_MAX];
            nb_search_value_text(&o->space.p[i], v, text, sizeof text);
            *exit_code = cli_usage_error(CMD, "--space: %s=%s does not fit the data: %s",
                                         o->space.p[i].name, text, err.msg);
        }
        rc = -1;
    }
    tune_args_free(args);
    return rc;
}

int tune_check_models(const tune_options *o, int *exit_code)
{
    shared_data d;
    memset(&d, 0, sizeof d);
    int searched = 0;
    for (int i = 0; i < o->space.n; i++)
        searched |= tune_shapes_model(o, &o->space.p[i]);
    /* Each value of a layers choice, each end or choice of a model's argument, the others at
     * their first (as tune_value_args sets them). */
    int rc = searched ? 0 : check_one(o, -1, 0, &d, exit_code);
    for (int i = 0; rc == 0 && i < o->space.n; i++) {
        const nb_search_param *p = &o->space.p[i];
        if (!tune_shapes_model(o, p))
            continue;
        for (int k = 0; rc == 0 && k < tune_edge_count(p); k++)
            rc = check_one(o, i, tune_edge_value(p, k), &d, exit_code);
    }
    if (d.loaded)
        nb_dataset_free(&d.train);
    return rc;
}
