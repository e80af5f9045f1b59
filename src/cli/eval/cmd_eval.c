/* nabla eval: loss and accuracy of a saved model on a split of a data set (test by default). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/common/metrics_json.h"
#include "cli/common/metrics_text.h"
#include "cli/common/options.h"
#include "cli/common/run_source.h"
#include "cli/common/threads.h"

static const char *const CMD = "eval";

void usage_eval(FILE *out)
{
    fprintf(out,
"usage: nabla eval --model M [options]\n"
"\n"
"Evaluates a model written by `nabla train` (or --save-weights) on the test split of a data\n"
"set: the t10k files of an IDX directory, the CSV file itself (or the run's --test file),\n"
"or the synthetic test set; or, with --split, on the training data as `nabla train` read it\n"
"(its dev split held out as train did it). Prints the task's metrics, and for a classifier\n"
"each class's precision, recall and F1 and the confusion matrix. A model trained with\n"
"--normalize standard applies its saved mean and std to the data.\n"
"Given a run (its directory, or its model.safetensors beside its config.json) and no --data\n"
"or --test, the data is the run's, read as the run read it, with its --seed, --samples,\n"
"--noise and --dev-fraction (another --dev-fraction is refused, but --split train\n"
"--dev-fraction 0 gives all the training data).\n"
"\n"
"  --model M             a run directory or a .safetensors model file (required)\n"
"  --split S             test|train|dev: which data [test]; train and dev are the training\n"
"                        set without and with only the dev split of --dev-fraction\n"
"  --dev-fraction F      the dev split train held out, 0 <= F < 1 (dev needs F > 0) [0]\n"
"  --data D              fashion-mnist, a directory of IDX files, a CSV file, or\n"
"                        moons|circles|spirals [fashion-mnist]\n"
"                        (fashion-mnist is read from %s)\n"
"  --test T              evaluate on this CSV file instead [none]\n"
"%s"
"  --samples N           synthetic sets: the training size given to train (at most\n"
"                        10000000); the test set has max(200, N/4) samples [1000]\n"
"  --noise X             synthetic sets: noise [0.2]\n"
"  --seed N              the seed given to train: synthetic sets (test set: seed + 1) and\n"
"                        the dev split [0]\n"
MODEL_ARCH_USAGE
"  --batch-size N        samples per forward pass [256]\n"
"  --threads N           threads for matrix products, at most the cores this process may\n"
"                        use [those cores: %d]\n"
"  --json                print one JSON object: task, loss, accuracy, the task's metrics,\n"
"                        samples; a classifier's classes, per_class and confusion\n"
"  -h, --help            this text\n",
            NB_FASHION_MNIST_DIR, data_csv_usage(), cli_usable_cores());
}

enum {
    OPT_MODEL = 256, OPT_DATA, OPT_TEST, OPT_SAMPLES, OPT_NOISE, OPT_SEED, OPT_BATCH_SIZE,
    OPT_THREADS, OPT_JSON, OPT_SPLIT, OPT_DEV_FRACTION, OPT_CSV
};

static const struct option long_options[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"data", required_argument, NULL, OPT_DATA},
    {"test", required_argument, NULL, OPT_TEST},
    {"samples", required_argument, NULL, OPT_SAMPLES},
    {"noise", required_argument, NULL, OPT_NOISE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"batch-size", required_argument, NULL, OPT_BATCH_SIZE},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"json", no_argument, NULL, OPT_JSON},
    {"split", required_argument, NULL, OPT_SPLIT},
    {"dev-fraction", required_argument, NULL, OPT_DEV_FRACTION},
    MODEL_ARCH_LONG_OPTIONS('A'),
    DATA_CSV_LONG_OPTIONS(OPT_CSV),
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

enum split { SPLIT_TEST, SPLIT_TRAIN, SPLIT_DEV };

typedef struct eval_options {
    const char *model;
    data_source src;
    enum split split;
    double dev_fraction;
    int data_given;     /* --data was on the command line, not the default */
    int given_seed, given_samples, given_noise, given_dev_fraction;
    int batch_size;
    int threads;
    int json;
    model_arch arch;
} eval_options;

static int positive_int(const char *opt, const char *s, int *out)
{
    if (cli_parse_int(CMD, opt, s, out) != 0)
        return -1;
    if (*out <= 0) {
        cli_usage_error(CMD, "%s must be > 0, got %s", opt, s);
        return -1;
    }
    return 0;
}

/* Returns 0 to go on, or -1 with *exit_code set (0 after --help, 2 on bad usage). */
static int parse_options(eval_options *o, int argc, char **argv, int *exit_code)
{
    memset(o, 0, sizeof *o);
    o->src.data = "fashion-mnist";
    o->src.samples = 1000;
    o->src.noise = 0.2;
    o->batch_size = 256;
    o->threads = cli_usable_cores();

    opterr = 0;
    optind = 1;
    int c, index = -1;
    *exit_code = EXIT_USAGE;
    while ((c = getopt_long(argc, argv, ":h", long_options, &index)) != -1) {
        int rc = 0;
        char flag[40];
        switch (c) {
        case 'A': /* the architecture of a state_dict */
            model_arch_option(CMD, &o->arch, long_options[index].name, optarg, &rc);
            break;
        case OPT_CSV:
            snprintf(flag, sizeof flag, "--%s", long_options[index].name);
            rc = data_csv_option(CMD, flag, optarg, &o->src);
            break;
        case OPT_MODEL: rc = cli_parse_path(CMD, "--model", optarg, &o->model); break;
        case OPT_DATA:
            rc = cli_parse_path(CMD, "--data", optarg, &o->src.data);
            o->data_given = 1;
            break;
        case OPT_TEST: rc = cli_parse_path(CMD, "--test", optarg, &o->src.test); break;
        case OPT_SAMPLES:
            o->given_samples = 1;
            rc = positive_int("--samples", optarg, &o->src.samples);
            if (rc == 0 && o->src.samples > CLI_MAX_SAMPLES)
                rc = -1, cli_usage_error(CMD, "--samples must be at most %d, got %s",
                                         CLI_MAX_SAMPLES, optarg);
            break;
        case OPT_NOISE:
            o->given_noise = 1;
            rc = cli_parse_double(CMD, "--noise", optarg, &o->src.noise);
            if (rc == 0 && o->src.noise < 0)
                rc = -1, cli_usage_error(CMD, "--noise must be >= 0, got %s", optarg);
            break;
        case OPT_SEED:
            o->given_seed = 1;
            rc = cli_parse_u64(CMD, "--seed", optarg, &o->src.seed);
            break;
        case OPT_BATCH_SIZE: rc = positive_int("--batch-size", optarg, &o->batch_size); break;
        case OPT_THREADS: rc = cli_parse_threads(CMD, optarg, &o->threads); break;
        case OPT_JSON: o->json = 1; break;
        case OPT_SPLIT:
            if (strcmp(optarg, "test") == 0)
                o->split = SPLIT_TEST;
            else if (strcmp(optarg, "train") == 0)
                o->split = SPLIT_TRAIN;
            else if (strcmp(optarg, "dev") == 0)
                o->split = SPLIT_DEV;
            else
                rc = -1, cli_usage_error(CMD, "--split must be test, train or dev, got '%s'",
                                         optarg);
            break;
        case OPT_DEV_FRACTION:
            o->given_dev_fraction = 1;
            rc = cli_parse_double(CMD, "--dev-fraction", optarg, &o->dev_fraction);
            if (rc == 0 && !(o->dev_fraction >= 0 && o->dev_fraction < 1))
                rc = -1, cli_usage_error(CMD, "--dev-fraction must be in [0, 1), got %s", optarg);
            break;
        case 'h':
            usage_eval(stdout);
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
    if (!o->model) {
        cli_usage_error(CMD, "--model F.safetensors is required (a model file, or a run directory)");
        return -1;
    }
    if (model_arch_check(CMD, &o->arch) != 0)
        return -1;
    return 0;
}

/* What the run of the model (when it is a run's) says of the data: the options not given
 * default to it, and a --dev-fraction that is not the run's would evaluate another split. */
static int take_run_defaults(eval_options *o, run_source *run, int *exit_code)
{
    *exit_code = EXIT_USAGE;
    /* Data named on the command line is evaluated as the options say, the run's or not. */
    if (run->config && !o->data_given && !o->src.test) {
        data_source src;
        double fraction;
        nb_error err;
        if (run_source_data(run, &src, &fraction, &err) != 0) {
            fprintf(stderr, "nabla: %s\n", err.msg);
            *exit_code = EXIT_RUNTIME;
            return -1;
        }
        /* The whole training data, asked for in so many words, is no other split. */
        int whole = o->split == SPLIT_TRAIN && o->given_dev_fraction && o->dev_fraction == 0;
        if (o->given_dev_fraction && o->dev_fraction != fraction && !whole) {
            cli_usage_error(CMD, "--dev-fraction %g, but the run held out %g (%s/config.json): "
                                 "its dev split is that one", o->dev_fraction, fraction,
                            run->dir);
            return -1;
        }
        if (!whole)
            o->dev_fraction = fraction;
        /* The run's data, read as the run read it. */
        o->src.data = src.data;
        if (o->split == SPLIT_TEST)
            o->src.test = src.test;
        if (!data_csv_options_given(&o->src)) {
            o->src.csv = src.csv;
            o->src.test_fraction = src.test_fraction;
        }
        if (!o->given_seed)
            o->src.seed = src.seed;
        if (!o->given_samples && src.samples)
            o->src.samples = src.samples;
        if (!o->given_noise && src.samples)
            o->src.noise = src.noise;
    }
    if (o->split == SPLIT_DEV && o->dev_fraction == 0) {
        cli_usage_error(CMD, run->config ? "--split dev: the run has no dev split (its "
                                           "dev_fraction is 0)"
                                         : "--split dev needs the --dev-fraction the model was "
                                           "trained with (or the run directory as --model)");
        return -1;
    }
    if (o->src.test_fraction > 0 && o->src.test) {
        cli_usage_error(CMD, "--test-fraction names the test part of --data, but --test names "
                             "another test set");
        return -1;
    }
    if (o->split != SPLIT_TEST && o->src.test) {
        cli_usage_error(CMD, "--test names a test set, but --split %s evaluates the training "
                             "data", o->split == SPLIT_TRAIN ? "train" : "dev");
        return -1;
    }
    return 0;
}

static int runtime_error(const nb_error *err)
{
    fprintf(stderr, "nabla: %s\n", err->msg);
    return EXIT_RUNTIME;
}

/* A classifier's confusion matrix and what it says of each class, with the classes' names. */
typedef struct class_report {
    int classes;
    int64_t *counts;            /* [true class][predicted class] */
    const nb_model *model;
} class_report;

/* {"task":..,"loss":..,"accuracy":..,<the task's metrics>,..,"samples":..} on one line, for a
 * classifier with "classes", "per_class" and "confusion" before "samples"; cJSON prints every double so that it
 * reads back exactly, and null for a NaN loss or a metric the task does not have. */
static int print_json(const nb_eval_result *res, const class_report *cr)
{
    cJSON *j = cJSON_CreateObject();
    char *text = NULL;
    if (j) {
        cJSON_AddStringToObject(j, "task", nb_task_name(res->task));
        json_add_split(j, NULL, res);
        if (cr->counts) {
            cJSON *names = cJSON_AddArrayToObject(j, "classes");
            cJSON *per = cJSON_AddArrayToObject(j, "per_class");
            cJSON *matrix = cJSON_AddArrayToObject(j, "confusion");
            for (int c = 0; c < cr->classes; c++) {
                char buf[32];
                cJSON_AddItemToArray(names, cJSON_CreateString(class_name(cr->model, c, buf,
                                                                          sizeof buf)));
                nb_class_scores s = nb_class_scores_of(cr->counts, cr->classes, c);
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "precision", s.precision);
                cJSON_AddNumberToObject(o, "recall", s.recall);
                cJSON_AddNumberToObject(o, "f1", s.f1);
                cJSON_AddNumberToObject(o, "support", (double)s.support);
                cJSON_AddItemToArray(per, o);
                cJSON *row = cJSON_CreateArray();
                for (int p = 0; p < cr->classes; p++)
                    cJSON_AddItemToArray(row, cJSON_CreateNumber(
                                                  (double)cr->counts[(size_t)c * cr->classes + p]));
                cJSON_AddItemToArray(matrix, row);
            }
        }
        cJSON_AddNumberToObject(j, "samples", res->n);   /* last, as it always was */
        text = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
    }
    if (!text) {
        fprintf(stderr, "nabla: out of memory\n");
        return EXIT_RUNTIME;
    }
    printf("%s\n", text);
    cJSON_free(text);
    return EXIT_OK;
}

/* The training data as `nabla train` read it, and the part --split asks for: all of it less
 * the dev split, or the dev split alone. */
static int load_training_split(const eval_options *o, nb_dataset *d, nb_error *err)
{
    data_source src = o->src;
    src.no_test = 1;
    nb_dataset none, dev;
    memset(&dev, 0, sizeof dev);
    if (data_load_train(&src, d, &none, err) != 0)
        return -1;
    nb_dataset_free(&none);
    if (o->dev_fraction > 0 &&
        nb_dataset_split(d, (float)o->dev_fraction, o->src.seed, &dev, err) != 0)
        return -1;
    if (o->split == SPLIT_DEV) {
        int header = d->header;   /* the file's, which describe_csv reports */
        nb_dataset_free(d);
        *d = dev;
        d->header = header;
    } else {
        nb_dataset_free(&dev);
    }
    return 0;
}

/* Loads the model and the data, applies the model's input standardization, evaluates. */
static int evaluate(const eval_options *opt, nb_model *m, nb_dataset *d, nb_eval_result *res,
                    nb_error *err)
{
    /* A CSV file is read as the model's training data was: its task, and its table (from the
     * model file's header). */
    eval_options copy = *opt;
    eval_options *o = &copy;
    nb_table *table;
    if (model_arch_info(o->model, &o->arch, &o->src.csv.task, &table, err) != 0)
        return -1;
    o->src.csv.like = table;
    /* The data first: its size bounds the batch the model is compiled for, so that a large
     * --batch-size costs no more memory than the whole data. */
    int rc = o->split == SPLIT_TEST ? data_load_eval(&o->src, d, err)
                                    : load_training_split(o, d, err);
    nb_table_free(table);
    free(table);
    if (rc != 0)
        return -1;
    if (model_arch_load(o->model, &o->arch, o->batch_size < d->n ? o->batch_size : d->n, m,
                        err) != 0)
        return -1;
    const char *what = o->src.test ? o->src.test : o->src.data;
    /* A CSV file evaluated as read has its samples on its lines, in order, after the header. */
    data_kind kind = DATA_CSV;
    const char *path;
    nb_error ignored;
    int whole_csv = o->split == SPLIT_TEST &&
                    (o->src.test || (data_classify(o->src.data, &kind, &path, &ignored) == 0 &&
                                     kind == DATA_CSV));
    if (data_check_fits(d, what, whole_csv ? 1 + d->header : 0, "the model", nb_model_features(&m->spec),
                        m->spec.classes, err) != 0)
        return -1;
    if (m->norm_mean && m->norm_std) {
        if (!d->values)
            return nb_fail(err, "%s: the model standardizes its inputs, which works on CSV and "
                                "synthetic data, not on pixels", o->model);
        nb_dataset_normalize(d, m->norm_mean, m->norm_std);
    }
    if (nb_evaluate(m, d, res, err) != 0)
        return -1;
    /* Outputs that overflow (weights, or a standardization, that make an infinity or a NaN)
     * have no loss, and an accuracy taken over NaNs would mean nothing: an error, not a
     * result. */
    if (res->n > 0 && !isfinite(res->loss))
        return nb_fail(err, "%s: the model's outputs on %s are not finite (the loss is %s): its "
                            "weights or its input standardization overflow float, so it has "
                            "no loss or accuracy", o->model, what,
                       isnan(res->loss) ? "NaN" : "infinite");
    return 0;
}

/* The result as text: the metrics on one line; for a classifier, then each class's precision,
 * recall, F1 and support, and the confusion matrix. */
static void print_text(const nb_eval_result *res, const class_report *cr)
{
    char text[256];
    metrics_text(res, 0, text, sizeof text);
    printf("loss %.4f %s (%d samples)\n", res->loss, text, res->n);
    if (!cr->counts)
        return;
    char buf[32];
    int width = 5;   /* "class" */
    for (int c = 0; c < cr->classes; c++) {
        int len = (int)strlen(class_name(cr->model, c, buf, sizeof buf));
        width = len > width ? len : width;
    }
    width = width > 40 ? 40 : width;
    printf("\n%-*s  precision  recall  f1      support\n", width, "class");
    for (int c = 0; c < cr->classes; c++) {
        nb_class_scores s = nb_class_scores_of(cr->counts, cr->classes, c);
        printf("%-*.*s  %-9.4f  %-6.4f  %-6.4f  %lld\n", width, width,
               class_name(cr->model, c, buf, sizeof buf), s.precision, s.recall, s.f1,
               (long long)s.support);
    }
    printf("\nconfusion matrix (a row per true class, a column per predicted class, in the "
           "order above):\n");
    for (int c = 0; c < cr->classes; c++) {
        for (int p = 0; p < cr->classes; p++)
            printf("%s%lld", p ? " " : "", (long long)cr->counts[(size_t)c * cr->classes + p]);
        printf("\n");
    }
}

/* For a CSV file, whether its line 1 was a header (the text output only: --json stays one
 * object). The result's line counts the samples (of the split evaluated). */
static void describe_csv(const eval_options *o, const nb_dataset *d)
{
    data_kind kind = DATA_CSV;
    const char *path = o->src.test;
    nb_error err;
    if ((path || data_classify(o->src.data, &kind, &path, &err) == 0) && kind == DATA_CSV)
        data_describe_csv(stdout, o->src.test ? "test" : "data", path, d, -1, &o->src.csv);
}

static int eval_run(const eval_options *opt);

/* Whether the model file says it was trained on a CSV file (it has a table): the default
 * data, Fashion-MNIST, cannot be its. */
static int trained_on_csv(const char *model)
{
    nb_model_spec spec;
    nb_table *table = NULL;
    nb_error ignored;
    if (nb_model_load_info(model, &spec, &table, &ignored) != 0 || !table)
        return 0;
    nb_table_free(table);
    free(table);
    return 1;
}

int cmd_eval(int argc, char **argv)
{
    eval_options o;
    int code;
    if (parse_options(&o, argc, argv, &code) != 0)
        return code;

    nb_error err = {{0}};
    run_source run;
    if (run_source_open(o.model, &run, &err) != 0)
        return runtime_error(&err);
    o.model = run.model;
    if (take_run_defaults(&o, &run, &code) != 0) {
        run_source_close(&run);
        return code;
    }
    if (!run.config && !o.data_given && !o.src.test && !o.arch.layers &&
        trained_on_csv(o.model)) {
        code = cli_usage_error(CMD, "%s was trained on a CSV file: give it with --data (or "
                                    "the run directory as --model)", o.model);
        run_source_close(&run);
        return code;
    }
    code = eval_run(&o);
    run_source_close(&run);
    return code;
}

/* Evaluates and prints, the options complete. */
static int eval_run(const eval_options *opt)
{
    eval_options o = *opt;
    nb_error err = {{0}};
    int code;
    if (o.src.test && o.data_given) {
        /* Same rule as train: --test goes with a CSV --data (here it may also stand alone). */
        data_kind kind;
        const char *path;
        if (data_classify(o.src.data, &kind, &path, &err) != 0)
            return runtime_error(&err);
        if (kind != DATA_CSV)
            return cli_usage_error(CMD, "--test needs a CSV --data, but %s is %s", o.src.data,
                                   kind == DATA_IDX ? "an IDX data set" : "a synthetic set");
    }

    int threads = cli_cap_threads(CMD, o.threads, cli_usable_cores(), "this process", 1);
    nb_set_threads(threads);
    nb_model m;
    nb_dataset d;
    nb_eval_result res = {0};
    memset(&m, 0, sizeof m);
    memset(&d, 0, sizeof d);
    class_report cr = {0};
    int failed = evaluate(&o, &m, &d, &res, &err) != 0;
    if (!failed && m.spec.task == NB_TASK_CLASSIFICATION) {
        cr.classes = m.spec.classes;
        cr.model = &m;
        cr.counts = calloc((size_t)cr.classes * (size_t)cr.classes, sizeof *cr.counts);
        failed = !cr.counts ? nb_fail(&err, "out of memory")
                            : nb_evaluate_confusion(&m, &d, cr.counts, &err);
    }
    cli_say_threads_lowered(CMD, &threads);
    if (failed) {
        code = runtime_error(&err);
    } else {
        code = EXIT_OK;
        if (o.json) {
            code = print_json(&res, &cr);
        } else {
            describe_csv(&o, &d);
            print_text(&res, &cr);
        }
    }
    free(cr.counts);
    nb_model_free(&m);   /* safe on a zeroed model, after a failed load too */
    nb_dataset_free(&d);
    return code;
}
