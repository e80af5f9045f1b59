/* nabla predict: a saved model's answer for each row of new data, as CSV or JSON Lines. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/common/metrics_text.h"
#include "cli/common/options.h"
#include "cli/common/output.h"
#include "cli/common/run_source.h"
#include "cli/common/threads.h"
#include "core/strbuf.h"
#include "io/fileio.h"

static const char *const CMD = "predict";

void usage_predict(FILE *out)
{
    fprintf(out,
"usage: nabla predict --model M --data FILE|- [options]\n"
"\n"
"Writes a model's prediction for every sample of FILE, one line per sample in order, after\n"
"a header line naming the columns: the class (named as the training data named it), the\n"
"value of each target (regression, in the targets' units) or 0/1 for each label\n"
"(multilabel). The model's input standardization is applied to the rows.\n"
"A model trained on a CSV file reads FILE as it read its training data: the same columns\n"
"(matched by header name when both have a header, else by position), with or without the\n"
"target columns, the same categories and missing-value rule. A model trained on IDX images\n"
"reads an IDX image file (gzip'd or not) or a directory's t10k images; other models read a\n"
"CSV of their features (an extra last column, a label, is ignored).\n"
"\n"
"  --model M             a run directory or a .safetensors model file (required)\n"
"  --data FILE           the samples; - for standard input (required)\n"
"  --out FILE            where to write; - for standard output [-]\n"
"  --proba               add the probability of each class (or label) [off]\n"
"  --format F            csv|jsonl [csv]\n"
MODEL_ARCH_USAGE
"  --batch-size N        samples per forward pass [256]\n"
"  --threads N           threads for matrix products, at most the cores this process may\n"
"                        use [those cores: %d]\n"
"  -h, --help            this text\n",
            cli_usable_cores());
}

enum { OPT_MODEL = 256, OPT_DATA, OPT_OUT, OPT_PROBA, OPT_FORMAT, OPT_BATCH_SIZE, OPT_THREADS };

static const struct option long_options[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"data", required_argument, NULL, OPT_DATA},
    {"out", required_argument, NULL, OPT_OUT},
    {"proba", no_argument, NULL, OPT_PROBA},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"batch-size", required_argument, NULL, OPT_BATCH_SIZE},
    {"threads", required_argument, NULL, OPT_THREADS},
    MODEL_ARCH_LONG_OPTIONS('A'),
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct predict_options {
    const char *model, *data, *out;
    int proba, jsonl;
    int batch_size, threads;
    model_arch arch;
} predict_options;

/* Returns 0 to go on, or -1 with *exit_code set (0 after --help, 2 on bad usage). */
static int parse_options(predict_options *o, int argc, char **argv, int *exit_code)
{
    memset(o, 0, sizeof *o);
    o->out = "-";
    o->batch_size = 256;
    o->threads = cli_usable_cores();
    opterr = 0;
    optind = 1;
    int c;
    *exit_code = EXIT_USAGE;
    int index;
    while ((c = getopt_long(argc, argv, ":h", long_options, &index)) != -1) {
        int rc = 0;
        switch (c) {
        case 'A': /* the architecture of a state_dict */
            model_arch_option(CMD, &o->arch, long_options[index].name, optarg, &rc);
            break;
        case OPT_MODEL: rc = cli_parse_path(CMD, "--model", optarg, &o->model); break;
        case OPT_DATA: rc = cli_parse_path(CMD, "--data", optarg, &o->data); break;
        case OPT_OUT: rc = cli_parse_path(CMD, "--out", optarg, &o->out); break;
        case OPT_PROBA: o->proba = 1; break;
        case OPT_FORMAT:
            if (strcmp(optarg, "csv") == 0 || strcmp(optarg, "jsonl") == 0)
                o->jsonl = strcmp(optarg, "jsonl") == 0;
            else
                rc = -1, cli_usage_error(CMD, "--format must be csv or jsonl, got '%s'", optarg);
            break;
        case OPT_BATCH_SIZE:
            rc = cli_parse_int(CMD, "--batch-size", optarg, &o->batch_size);
            if (rc == 0 && o->batch_size <= 0)
                rc = -1, cli_usage_error(CMD, "--batch-size must be > 0, got %s", optarg);
            break;
        case OPT_THREADS: rc = cli_parse_threads(CMD, optarg, &o->threads); break;
        case 'h':
            usage_predict(stdout);
            *exit_code = EXIT_OK;
            return -1;
        default: /* ':' or '?' */
            cli_option_error(CMD, c, argv);
            return -1;
        }
        if (rc != 0)
            return -1;
    }
    if (optind < argc) {
        cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (!o->model || !o->data) {
        cli_usage_error(CMD, "--model M and --data FILE (or - for standard input) are required");
        return -1;
    }
    if (model_arch_check(CMD, &o->arch) != 0)
        return -1;
    if (strcmp(o->out, "-") != 0 && strcmp(o->out, o->data) == 0) {
        cli_usage_error(CMD, "--out %s is the --data file: predictions would replace the data",
                        o->out);
        return -1;
    }
    return 0;
}

/* An IDX image file, or a directory's t10k images. */
static int load_images(const char *path, nb_dataset *d, nb_error *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        char file[CLI_MAX_PATH + 40];
        data_idx_file(path, "t10k-images-idx3-ubyte", file, sizeof file);
        return nb_load_idx_images(file, d, err);
    }
    return nb_load_idx_images(path, d, err);
}

/* The samples of --data, read as the model's training data was. */
static int load_samples(const predict_options *o, const nb_model *m, nb_dataset *d,
                        nb_error *err)
{
    if (!m->table && m->spec.input.ndim == 3 && strcmp(o->data, "-") != 0)
        return load_images(o->data, d, err);
    nb_table own;
    const nb_table *like = m->table;
    if (!like) {
        if (model_table_of_features(&m->spec, &own, err) != 0)
            return -1;
        like = &own;
    }
    nb_csv_options csv = {.task = m->spec.task, .like = like};
    int rc = nb_read_csv(o->data, &csv, d, err);
    if (like == &own)
        nb_table_free(&own);
    return rc;
}

/* A CSV field: as it is, or quoted (RFC 4180: quotes doubled) when it holds a delimiter, a
 * quote or a line break, or has blanks at its ends that a reader would trim. */
static void csv_field(nb_strbuf *b, const char *s)
{
    size_t n = strlen(s);
    int quote = n == 0 || strchr(" \t", s[0]) || strchr(" \t", s[n - 1]) ||
                strpbrk(s, ",;\t\"\r\n") != NULL;
    if (!quote) {
        nb_sb_puts(b, s);
        return;
    }
    nb_sb_puts(b, "\"");
    for (const char *p = s; *p; p++)
        nb_sb_puts(b, *p == '"' ? "\"\"" : (char[]){*p, '\0'});
    nb_sb_puts(b, "\"");
}

/* The name of output j of a regression or multilabel model: its target column's header name,
 * else "target_j" or "label_j" (from 0); and of a classifier's prediction, its target
 * column's name, else "class". */
static const char *output_name(const nb_model *m, int j, char *buf, size_t cap)
{
    int seen = 0;
    for (int c = 0; m->table && c < m->table->n_columns; c++) {
        const nb_column *col = &m->table->columns[c];
        if (col->kind == NB_COLUMN_TARGET && seen++ == j && col->name)
            return col->name;
    }
    if (m->spec.task == NB_TASK_CLASSIFICATION)
        return "class";
    snprintf(buf, cap, "%s_%d", m->spec.task == NB_TASK_REGRESSION ? "target" : "label", j);
    return buf;
}

/* The name of probability column j: "p(<class>)" or "p(<label>)". */
static void proba_name(const nb_model *m, int j, char *out, size_t cap)
{
    char buf[64];
    const char *name = m->spec.task == NB_TASK_CLASSIFICATION ? class_name(m, j, buf, sizeof buf)
                                                              : output_name(m, j, buf, sizeof buf);
    snprintf(out, cap, "p(%s)", name);
}

/* The class of a row of probabilities: the largest, ties to the lower class. */
static int best_class(const float *p, int k)
{
    int best = 0;
    for (int c = 1; c < k; c++)
        if (p[c] > p[best])
            best = c;
    return best;
}

/* A number as briefly as it reads back as the same float. */
static void put_number(nb_strbuf *b, float v)
{
    char text[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)v);
        if (strtof(text, NULL) == v)
            break;
    }
    nb_sb_puts(b, text);
}

static void write_csv(nb_strbuf *b, const nb_model *m, const float *out, int n, int proba)
{
    int k = m->spec.classes;
    int values = m->spec.task == NB_TASK_CLASSIFICATION ? 1 : k;
    char buf[64];
    for (int j = 0; j < values; j++) {
        nb_sb_puts(b, j ? "," : "");
        csv_field(b, output_name(m, j, buf, sizeof buf));
    }
    for (int j = 0; proba && m->spec.task != NB_TASK_REGRESSION && j < k; j++) {
        char name[96];
        proba_name(m, j, name, sizeof name);
        nb_sb_puts(b, ",");
        csv_field(b, name);
    }
    nb_sb_puts(b, "\n");
    for (int i = 0; i < n; i++) {
        const float *row = out + (size_t)i * k;
        for (int j = 0; j < values; j++) {
            nb_sb_puts(b, j ? "," : "");
            if (m->spec.task == NB_TASK_CLASSIFICATION)
                csv_field(b, class_name(m, best_class(row, k), buf, sizeof buf));
            else if (m->spec.task == NB_TASK_MULTILABEL)
                nb_sb_puts(b, row[j] > 0.5f ? "1" : "0");
            else
                put_number(b, row[j]);
        }
        for (int j = 0; proba && m->spec.task != NB_TASK_REGRESSION && j < k; j++) {
            nb_sb_puts(b, ",");
            put_number(b, row[j]);
        }
        nb_sb_puts(b, "\n");
    }
}

/* {"prediction": class} or {"prediction": {name: value, ...}}, and with --proba
 * "proba": {class or label: p, ...}. */
static int write_jsonl(nb_strbuf *b, const nb_model *m, const float *out, int n, int proba)
{
    int k = m->spec.classes;
    char buf[64];
    for (int i = 0; i < n; i++) {
        const float *row = out + (size_t)i * k;
        cJSON *j = cJSON_CreateObject();
        if (!j)
            return -1;
        if (m->spec.task == NB_TASK_CLASSIFICATION) {
            cJSON_AddStringToObject(j, "prediction",
                                    class_name(m, best_class(row, k), buf, sizeof buf));
        } else {
            cJSON *p = cJSON_AddObjectToObject(j, "prediction");
            for (int c = 0; p && c < k; c++)
                cJSON_AddItemToObject(p, output_name(m, c, buf, sizeof buf),
                                      m->spec.task == NB_TASK_MULTILABEL
                                          ? cJSON_CreateNumber(row[c] > 0.5f)
                                          : cJSON_CreateNumber(row[c]));
        }
        if (proba && m->spec.task != NB_TASK_REGRESSION) {
            cJSON *p = cJSON_AddObjectToObject(j, "proba");
            for (int c = 0; p && c < k; c++)
                cJSON_AddItemToObject(p,
                                      m->spec.task == NB_TASK_CLASSIFICATION
                                          ? class_name(m, c, buf, sizeof buf)
                                          : output_name(m, c, buf, sizeof buf),
                                      cJSON_CreateNumber(row[c]));
        }
        char *text = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (!text)
            return -1;
        nb_sb_puts(b, text);
        nb_sb_puts(b, "\n");
        cJSON_free(text);
    }
    return 0;
}

/* The text to standard output, or to the file by the output rule (atomically). */
static int write_out(const char *path, const nb_strbuf *b, nb_error *err)
{
    if (strcmp(path, "-") == 0) {
        fwrite(b->data ? b->data : "", 1, b->len, stdout);
        if (output_flush() == 0)
            return 0;
        output_failure_told();
        return nb_fail(err, "cannot write standard output: %s", output_error());
    }
    return nb_write_file_atomic(path, b->data ? b->data : "", b->len, err);
}

static int predict(const predict_options *o, nb_error *err)
{
    run_source run;
    if (run_source_open(o->model, &run, err) != 0)
        return -1;
    nb_model m;
    nb_dataset d;
    memset(&m, 0, sizeof m);
    memset(&d, 0, sizeof d);
    nb_strbuf text = {0};
    float *out = NULL;
    int rc = model_arch_load(run.model, &o->arch, o->batch_size, &m, err);
    /* A flag that would do nothing is bad usage (the caller exits 2 on -2). */
    if (rc == 0 && o->proba && m.spec.task == NB_TASK_REGRESSION) {
        nb_fail(err, "--proba: a regression model predicts values, not probabilities");
        rc = -2;
    }
    if (rc == 0 && strcmp(o->out, "-") != 0)
        rc = nb_output_check(o->out, err);   /* before the work, not after */
    if (rc == 0)
        rc = load_samples(o, &m, &d, err);
    if (rc == 0 && d.features != nb_model_features(&m.spec))
        rc = nb_fail(err, "%s: %d features, but the model takes %d", o->data, d.features,
                     nb_model_features(&m.spec));
    if (rc == 0 && d.values)
        rc = nb_dataset_check_finite(&d, o->data, err);
    if (rc == 0 && !(out = malloc(((size_t)d.n * m.spec.classes + 1) * sizeof *out)))
        rc = nb_fail(err, "out of memory");
    if (rc == 0)
        rc = nb_model_predict_dataset(&m, &d, out, err);
    for (size_t i = 0; rc == 0 && i < (size_t)d.n * m.spec.classes; i++)
        if (!isfinite(out[i]))
            rc = nb_fail(err, "%s: the model's output for sample %zu is not finite (its weights "
                              "or its input standardization overflow float)", o->model,
                         i / (size_t)m.spec.classes + 1);
    if (rc == 0) {
        if (o->jsonl)
            rc = write_jsonl(&text, &m, out, d.n, o->proba) != 0 ? nb_fail(err, "out of memory")
                                                                   : 0;
        else
            write_csv(&text, &m, out, d.n, o->proba);
    }
    if (rc == 0 && text.failed)
        rc = nb_fail(err, "out of memory");
    if (rc == 0)
        rc = write_out(o->out, &text, err);
    nb_sb_free(&text);
    free(out);
    nb_dataset_free(&d);
    nb_model_free(&m);
    run_source_close(&run);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    predict_options o;
    int code;
    if (parse_options(&o, argc, argv, &code) != 0)
        return code;
    int threads = cli_cap_threads(CMD, o.threads, cli_usable_cores(), "this process", 1);
    nb_set_threads(threads);
    nb_error err = {{0}};
    int rc = predict(&o, &err);
    cli_say_threads_lowered(CMD, &threads);
    if (rc == -2)
        return cli_usage_error(CMD, "%s", err.msg);
    return rc != 0 ? cli_error("%s", err.msg) : EXIT_OK;
}
