/* A `nabla train` run as the commands that use its model find it (eval, predict, report):
 * from a run directory or its model file, the model file and the run's config.json; and the
 * data the run trained on, from config.json, read the way train read it. */
#ifndef NABLA_CLI_RUN_SOURCE_H
#define NABLA_CLI_RUN_SOURCE_H

#include <cjson/cJSON.h>

#include "cli/common/options.h"

/* Where a run's data files are from here (run_config_data). */
typedef struct run_paths {
    char data[CLI_MAX_PATH], test[CLI_MAX_PATH];
} run_paths;

typedef struct run_source {
    char model[CLI_MAX_PATH];   /* the model file */
    char dir[CLI_MAX_PATH];     /* the run directory; "" for a model file outside a run */
    cJSON *config;              /* the run's config.json (checked); NULL without a run */
    run_paths paths;            /* run_source_data's */
} run_source;

/* `given` is a run directory (its model.safetensors, which must be there) or a model file (a
 * run's when it is model.safetensors beside that run's config.json). */
int run_source_open(const char *given, run_source *s, nb_error *err);
void run_source_close(run_source *s);

/* The architecture of a model file without nabla's metadata (a PyTorch state_dict), as the
 * command line gives it: --layers, --input-shape, --task. layers NULL: none given. */
typedef struct model_arch {
    const char *layers;
    nb_shape input;             /* ndim 0: a vector, from the file's first linear layer */
    nb_task task;
    int given_shape_or_task;
} model_arch;

/* Their entries in a getopt_long table (each returning `code`) and their help lines. */
#define MODEL_ARCH_LONG_OPTIONS(code)                                                      \
    {"layers", required_argument, NULL, (code)},                                           \
        {"input-shape", required_argument, NULL, (code)},                                  \
        {"task", required_argument, NULL, (code)}
#define MODEL_ARCH_USAGE                                                                   \
    "  --layers L            for a model file without nabla's metadata (a PyTorch "        \
    "state_dict\n"                                                                         \
    "                        saved as safetensors): its layers, as nabla train --layers "  \
    "writes\n"                                                                             \
    "                        them [the file's own]\n"                                      \
    "  --input-shape S       with --layers: one sample's shape, N or C,H,W [the first "    \
    "linear\n"                                                                             \
    "                        layer's inputs]\n"                                            \
    "  --task T              with --layers: classification|regression|multilabel\n"       \
    "                        [classification]\n"
/* Parses --layers, --input-shape and --task for eval and predict: 1 when name is one of them
 * (then *rc is 0, or -1 after a usage error), else 0. */
int model_arch_option(const char *cmd, model_arch *a, const char *name, const char *value,
                      int *rc);
/* After the options: --input-shape and --task go with --layers (0, or -1 after a usage
 * error). */
int model_arch_check(const char *cmd, const model_arch *a);
/* The table a model without one (trained on a synthetic set or IDX images, or saved by an
 * older nabla) reads CSV rows with: its features as numbers, then its target columns, which
 * may be absent; classes named by their index ("0", "1", ...), so a label is its class. */
int model_table_of_features(const nb_model_spec *spec, nb_table *t, nb_error *err);
/* What reading data for the model in `path` needs before it is built: its task and the table
 * it reads a CSV file with: its training CSV's, or model_table_of_features (NULL with a
 * --layers architecture; else nb_table_free and free it). */
int model_arch_info(const char *path, const model_arch *a, nb_task *task, nb_table **columns,
                    nb_error *err);
/* The model in file `path`, as nabla saved it, or with a->layers the file's tensors in the
 * model a describes (nb_model_load_state_dict). */
int model_arch_load(const char *path, const model_arch *a, int max_batch, nb_model *m,
                    nb_error *err);

/* config.json's seed: a number, or a string for seeds beyond 2^53. 0, or -1. */
int run_config_seed(const cJSON *config, uint64_t *seed);
/* Where a data file of the run (config.json's data_path or test, relative to the directory
 * train ran in) is from here, into out. A relative path is relative to that directory; when
 * the run directory `dir` was given as config.json's "out" with a prefix, the prefix leads
 * there: run "x/runs/a" with out "runs/a" ran in "x/". */
void run_config_file(const cJSON *config, const char *dir, const char *path, char *out,
                     size_t cap);
/* The data_source train was given (--data, --test, --samples, --noise, --seed, the CSV
 * flags and its --dev-fraction), from the config.json of the run in `dir`; the paths point
 * into `paths`. */
int run_config_data(const cJSON *config, const char *dir, run_paths *paths, data_source *src,
                    double *dev_fraction, nb_error *err);
/* The same for s's run. */
int run_source_data(run_source *s, data_source *src, double *dev_fraction, nb_error *err);

/* The data of the run in `dir` (config.json), read as the run read it (its CSV flags, the
 * model m's table and task): its training set less the dev split, or its test set; as read,
 * not standardized. 1; 0 when it cannot be had (no test set, its file gone from here: why
 * says so); -1 on an error. */
typedef enum run_split { RUN_TRAIN, RUN_TEST } run_split;
int run_read_data(const cJSON *config, const char *dir, const nb_model *m, run_split split,
                  nb_dataset *out, char *why, size_t why_size, nb_error *err);

#endif /* NABLA_CLI_RUN_SOURCE_H */
