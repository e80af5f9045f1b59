/* A run as the commands that use its model find it (run_source.h). */
#include "cli/common/run_source.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/json_files.h"
#include "cli/common/run_check.h"
#include "nn/layers.h"

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* dir/config.json, read and checked, into s->config; a missing one is no error. */
static int read_config(run_source *s, const char *dir, nb_error *err)
{
    char path[CLI_MAX_PATH + 16];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = NULL;
    int rc = report_read_json_text(path, 1, &s->config, &text, err);
    if (rc == 0 && s->config)
        rc = run_check_config(s->config, text, path, err);
    free(text);
    if (rc != 0) {
        cJSON_Delete(s->config);
        s->config = NULL;
    }
    return rc;
}

int run_source_open(const char *given, run_source *s, nb_error *err)
{
    memset(s, 0, sizeof *s);
    size_t n = strlen(given);
    while (n > 1 && given[n - 1] == '/')
        n--;
    if (n >= sizeof s->dir - 32)
        return nb_fail(err, "%s: path too long", given);
    if (is_dir(given)) {
        snprintf(s->dir, sizeof s->dir, "%.*s", (int)n, given);
        snprintf(s->model, sizeof s->model, "%.*s/model.safetensors", (int)n, given);
        if (!exists(s->model))
            return nb_fail(err, "%s: a directory without model.safetensors (a run writes it "
                                "when it ends; --resume finishes a stopped run)", given);
        return read_config(s, s->dir, err);
    }
    snprintf(s->model, sizeof s->model, "%s", given);
    /* A run's own model file: its run's configuration comes with it. */
    const char *slash = strrchr(given, '/');
    const char *base = slash ? slash + 1 : given;
    if (strcmp(base, "model.safetensors") != 0)
        return 0;
    snprintf(s->dir, sizeof s->dir, "%.*s", slash ? (int)(slash - given) : 1,
             slash ? given : ".");
    if (slash == given)
        snprintf(s->dir, sizeof s->dir, "/");
    char config[CLI_MAX_PATH + 16];
    snprintf(config, sizeof config, "%s/config.json", s->dir);
    if (!exists(config)) {
        s->dir[0] = '\0';
        return 0;
    }
    return read_config(s, s->dir, err);
}

void run_source_close(run_source *s)
{
    cJSON_Delete(s->config);
    memset(s, 0, sizeof *s);
}

int run_config_seed(const cJSON *config, uint64_t *seed)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, "seed");
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 9007199254740992.0 &&
        v->valuedouble == floor(v->valuedouble)) {
        *seed = (uint64_t)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v) && v->valuestring[0] >= '0' && v->valuestring[0] <= '9') {
        char *end;
        *seed = strtoull(v->valuestring, &end, 10);
        return *end ? -1 : 0;
    }
    return -1;
}

void run_config_file(const cJSON *config, const char *dir, const char *path, char *out,
                     size_t cap)
{
    const char *run_out = json_string(config, "out");
    size_t n = strlen(dir), m = run_out ? strlen(run_out) : 0;
    if (path[0] == '/' || exists(path) || !run_out || m == 0 || run_out[0] == '/' || m >= n ||
        strcmp(dir + n - m, run_out) != 0 || dir[n - m - 1] != '/') {
        snprintf(out, cap, "%s", path);
        return;
    }
    snprintf(out, cap, "%.*s%s", (int)(n - m), dir, path);
}

/* The CSV flags the run was given (config.json's target, header, delimiter, missing,
 * allow_many_classes, test_fraction; absent in runs of older versions: the defaults). */
static int csv_options_of(const cJSON *c, const char *dir, data_source *src, nb_error *err)
{
    static const char *const strings[] = {"target", "header", "delimiter", "missing"};
    char flag[32];
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        const char *v = json_string(c, strings[i]);
        snprintf(flag, sizeof flag, "--%s", strings[i]);
        if (v && data_csv_option("eval", flag, v, src) != 0)
            return nb_fail(err, "%s/config.json: \"%s\" is '%.80s', not a value of %s", dir,
                           strings[i], v, flag);
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "allow_many_classes")))
        data_csv_option("eval", "--allow-many-classes", NULL, src);
    double fraction = json_number(c, "test_fraction");
    if (fraction > 0 && fraction < 1)
        src->test_fraction = fraction;
    return 0;
}

int run_config_data(const cJSON *c, const char *dir, run_paths *paths, data_source *src,
                    double *dev_fraction, nb_error *err)
{
    const char *kind = json_string(c, "data_kind"), *path = json_string(c, "data_path");
    const char *test = json_string(c, "test");
    double fraction = json_number(c, "dev_fraction");
    memset(src, 0, sizeof *src);
    if (!c || !kind || !path || run_config_seed(c, &src->seed) != 0 ||
        !(fraction >= 0 && fraction < 1))
        return nb_fail(err, "%s/config.json: no valid data_kind, data_path, seed and "
                            "dev_fraction", dir);
    *dev_fraction = fraction;
    if (strcmp(kind, "synthetic") == 0) {
        double samples = json_number(c, "samples"), noise = json_number(c, "noise");
        if (!(samples >= 1 && samples <= CLI_MAX_SAMPLES) || !(noise >= 0 && noise < 1e30))
            return nb_fail(err, "%s/config.json: no valid samples and noise for %s", dir, path);
        src->samples = (int)samples;
        src->noise = noise;
        snprintf(paths->data, sizeof paths->data, "%s", path);
    } else {
        run_config_file(c, dir, path, paths->data, sizeof paths->data);
    }
    src->data = paths->data;
    if (strcmp(kind, "csv") == 0 && csv_options_of(c, dir, src, err) != 0)
        return -1;
    if (test) {
        run_config_file(c, dir, test, paths->test, sizeof paths->test);
        src->test = paths->test;
    }
    return 0;
}

int run_source_data(run_source *s, data_source *src, double *dev_fraction, nb_error *err)
{
    return run_config_data(s->config, s->dir, &s->paths, src, dev_fraction, err);
}

int model_arch_option(const char *cmd, model_arch *a, const char *name, const char *value,
                      int *rc)
{
    *rc = 0;
    if (strcmp(name, "layers") == 0) {
        nb_layers parsed;
        nb_error why;
        if (nb_layers_parse(value, &parsed, &why) != 0) {
            cli_usage_error(cmd, "--layers: %s", why.msg);
            *rc = -1;
        }
        a->layers = value;
    } else if (strcmp(name, "input-shape") == 0) {
        a->given_shape_or_task = 1;
        if (nb_shape_parse(value, &a->input) != 0) {
            cli_usage_error(cmd, "--input-shape expects N or C,H,W (whole numbers from 1), "
                                 "got '%s'", value);
            *rc = -1;
        }
    } else if (strcmp(name, "task") == 0) {
        a->given_shape_or_task = 1;
        if (nb_task_parse(value, &a->task) != 0) {
            cli_usage_error(cmd, "unknown --task '%s' (classification, regression, "
                                 "multilabel)", value);
            *rc = -1;
        }
    } else {
        return 0;
    }
    return 1;
}

int model_arch_check(const char *cmd, const model_arch *a)
{
    if (a->layers || !a->given_shape_or_task)
        return 0;
    cli_usage_error(cmd, "--input-shape and --task describe a model file without nabla's "
                         "metadata, with its --layers");
    return -1;
}

/* A file without nabla's metadata: say how it can be read. Returns -1. */
static int hint_state_dict(nb_error *err)
{
    if (strstr(err->msg, "not a nabla model file"))
        snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg),
                 "; a PyTorch state_dict loads with its architecture given: --layers (and "
                 "--input-shape, --task)");
    return -1;
}

/* The table a model without one (trained on a synthetic set, or a CSV file before tables
 * were saved) reads CSV rows with: its features as numbers, then its target columns, which
 * may be absent. Classes are named by their index. */
int model_table_of_features(const nb_model_spec *spec, nb_table *t, nb_error *err)
{
    memset(t, 0, sizeof *t);
    int features = nb_model_features(spec);
    int targets = spec->task == NB_TASK_CLASSIFICATION ? 1 : spec->classes;
    t->n_columns = features + targets;
    t->delimiter = ',';
    t->columns = calloc((size_t)t->n_columns, sizeof *t->columns);
    if (!t->columns)
        return nb_fail(err, "out of memory");
    for (int i = features; i < t->n_columns; i++)
        t->columns[i].kind = NB_COLUMN_TARGET;
    if (spec->task != NB_TASK_CLASSIFICATION)
        return 0;
    t->n_classes = spec->classes;
    t->class_names = calloc((size_t)t->n_classes, sizeof *t->class_names);
    for (int c = 0; t->class_names && c < t->n_classes; c++) {
        char name[16];
        snprintf(name, sizeof name, "%d", c);
        if (!(t->class_names[c] = strdup(name))) {
            nb_table_free(t);
            return nb_fail(err, "out of memory");
        }
    }
    if (!t->class_names) {
        nb_table_free(t);
        return nb_fail(err, "out of memory");
    }
    return 0;
}

int model_arch_info(const char *path, const model_arch *a, nb_task *task, nb_table **columns,
                    nb_error *err)
{
    *columns = NULL;
    *task = a ? a->task : NB_TASK_CLASSIFICATION;
    if (a && a->layers)
        return 0;
    nb_model_spec spec;
    if (nb_model_load_info(path, &spec, columns, err) != 0)
        return hint_state_dict(err);
    *task = spec.task;
    if (*columns)
        return 0;
    /* A model not trained on a CSV file reads one as its features, then its targets. */
    *columns = calloc(1, sizeof **columns);
    if (!*columns)
        return nb_fail(err, "out of memory");
    if (model_table_of_features(&spec, *columns, err) != 0) {
        free(*columns);
        *columns = NULL;
        return -1;
    }
    return 0;
}

int model_arch_load(const char *path, const model_arch *a, int max_batch, nb_model *m,
                    nb_error *err)
{
    if (!a || !a->layers)
        return nb_model_load(m, path, max_batch, err) == 0 ? 0 : hint_state_dict(err);
    return nb_model_load_state_dict(m, path, a->layers, a->input, a->task, max_batch, err);
}

int run_read_data(const cJSON *config, const char *dir, const nb_model *m, run_split split,
                  nb_dataset *out, char *why, size_t why_size, nb_error *err)
{
    data_source src;
    run_paths paths;
    double fraction;
    memset(out, 0, sizeof *out);
    if (split == RUN_TEST && json_number(config, "test_samples") == 0) {
        snprintf(why, why_size, "the run has no test set");
        return 0;
    }
    if (run_config_data(config, dir, &paths, &src, &fraction, err) != 0)
        return -1;
    const char *kind = json_string(config, "data_kind");
    const char *file = split == RUN_TEST && src.test ? src.test : src.data;
    if (strcmp(kind, "synthetic") != 0 && !exists(file)) {
        snprintf(why, why_size, "its data %s is not there (from here)", file);
        return 0;
    }
    /* Read as the run read it: its CSV flags, the model's table and task. */
    nb_table own;
    const nb_table *like = m->table;
    if (!like && model_table_of_features(&m->spec, &own, err) != 0)
        return -1;
    src.csv.like = like ? like : &own;
    src.csv.task = m->spec.task;
    int rc;
    if (split == RUN_TEST) {
        rc = data_load_eval(&src, out, err);
    } else {
        nb_dataset none, dev = {0};
        src.no_test = 1;
        rc = data_load_train(&src, out, &none, err);
        nb_dataset_free(&none);
        if (rc == 0 && fraction > 0)
            rc = nb_dataset_split(out, (float)fraction, src.seed, &dev, err);
        nb_dataset_free(&dev);
        if (rc != 0)
            nb_dataset_free(out);
    }
    if (!like)
        nb_table_free(&own);
    return rc == 0 ? 1 : -1;
}
