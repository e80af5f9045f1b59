/* A `nabla train` run as the commands that use its model find it (eval, predict, report):
 * from a run directory or its model file, the model file and the run's config.json; and the
 * data the run trained on, from config.json, read the way train read it. */
#ifndef NABLA_CLI_RUN_SOURCE_H
#define NABLA_CLI_RUN_SOURCE_H

#include <cjson/cJSON.h>

#include "options.h"

typedef struct run_source {
    char model[CLI_MAX_PATH];   /* the model file */
    char dir[CLI_MAX_PATH];     /* the run directory; "" for a model file outside a run */
    cJSON *config;              /* the run's config.json (checked); NULL without a run */
    /* Where the run's data files are from here (run_source_data). */
    char data_path[CLI_MAX_PATH], test_path[CLI_MAX_PATH];
} run_source;

/* `given` is a run directory (its model.safetensors, which must be there) or a model file (a
 * run's when it is model.safetensors beside that run's config.json). */
int run_source_open(const char *given, run_source *s, nb_error *err);
void run_source_close(run_source *s);

/* config.json's seed: a number, or a string for seeds beyond 2^53. 0, or -1. */
int run_config_seed(const cJSON *config, uint64_t *seed);
/* Where a data file of the run (config.json's data_path or test, relative to the directory
 * train ran in) is from here, into out. A relative path is relative to that directory; when
 * the run directory `dir` was given as config.json's "out" with a prefix, the prefix leads
 * there: run "x/runs/a" with out "runs/a" ran in "x/". */
void run_config_file(const cJSON *config, const char *dir, const char *path, char *out,
                     size_t cap);
/* The data_source train was given (--data, --test, --samples, --noise, --seed, and its
 * --dev-fraction), from the run's config.json; the paths point into s. */
int run_source_data(run_source *s, data_source *src, double *dev_fraction, nb_error *err);

#endif /* NABLA_CLI_RUN_SOURCE_H */
