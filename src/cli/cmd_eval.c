/* nabla eval: loss and accuracy of a saved model on a split of a data set (test by default). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "options.h"
#include "threads.h"

static const char *const CMD = "eval";

void usage_eval(FILE *out)
{
    fprintf(out,
"usage: nabla eval --model F.safetensors [options]\n"
"\n"
"Evaluates a model written by `nabla train` (or --save-weights) on the test split of a data\n"
"set: the t10k files of an IDX directory, the CSV file itself, or the synthetic test set;\n"
"or, with --split, on the training data as `nabla train` read it (its dev split held out\n"
"as train did it, given the same --dev-fraction and --seed). A model trained with\n"
"--normalize standard applies its saved mean and std to the data.\n"
"\n"
"  --model F             the model, a .safetensors file (required)\n"
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
"  --batch-size N        samples per forward pass [256]\n"
"  --threads N           threads for matrix products, at most the cores this process may\n"
"                        use [those cores: %d]\n"
"  --json                print {\"loss\":..,\"accuracy\":..,\"samples\":..}\n"
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
    {"target", required_argument, NULL, OPT_CSV},
    {"header", required_argument, NULL, OPT_CSV},
    {"delimiter", required_argument, NULL, OPT_CSV},
    {"missing", required_argument, NULL, OPT_CSV},
    {"allow-many-classes", no_argument, NULL, OPT_CSV},
    {"test-fraction", required_argument, NULL, OPT_CSV},
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
    int batch_size;
    int threads;
    int json;
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
            rc = positive_int("--samples", optarg, &o->src.samples);
            if (rc == 0 && o->src.samples > CLI_MAX_SAMPLES)
                rc = -1, cli_usage_error(CMD, "--samples must be at most %d, got %s",
                                         CLI_MAX_SAMPLES, optarg);
            break;
        case OPT_NOISE:
            rc = cli_parse_double(CMD, "--noise", optarg, &o->src.noise);
            if (rc == 0 && o->src.noise < 0)
                rc = -1, cli_usage_error(CMD, "--noise must be >= 0, got %s", optarg);
            break;
        case OPT_SEED: rc = cli_parse_u64(CMD, "--seed", optarg, &o->src.seed); break;
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
        cli_usage_error(CMD, "--model F.safetensors is required");
        return -1;
    }
    if (o->split == SPLIT_DEV && o->dev_fraction == 0) {
        cli_usage_error(CMD, "--split dev needs the --dev-fraction the model was trained with");
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

/* {"loss":..,"accuracy":..,"samples":..} on one line; cJSON prints every double so that it
 * reads back exactly, and null for a NaN loss. */
static int print_json(const nb_eval_result *res)
{
    cJSON *j = cJSON_CreateObject();
    char *text = NULL;
    if (j) {
        cJSON_AddNumberToObject(j, "loss", res->loss);
        cJSON_AddNumberToObject(j, "accuracy", res->accuracy);
        cJSON_AddNumberToObject(j, "samples", res->n);
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
static int evaluate(const eval_options *o, nb_model *m, nb_dataset *d, nb_eval_result *res,
                    nb_error *err)
{
    /* The data first: its size bounds the batch the model is compiled for, so that a large
     * --batch-size costs no more memory than the whole data. */
    if ((o->split == SPLIT_TEST ? data_load_eval(&o->src, d, err)
                                : load_training_split(o, d, err)) != 0)
        return -1;
    if (nb_model_load(m, o->model, o->batch_size < d->n ? o->batch_size : d->n, err) != 0)
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

int cmd_eval(int argc, char **argv)
{
    eval_options o;
    int code;
    if (parse_options(&o, argc, argv, &code) != 0)
        return code;

    nb_error err = {{0}};
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
    int failed = evaluate(&o, &m, &d, &res, &err) != 0;
    cli_say_threads_lowered(CMD, &threads);
    if (failed) {
        code = runtime_error(&err);
    } else {
        code = EXIT_OK;
        if (o.json) {
            code = print_json(&res);
        } else {
            describe_csv(&o, &d);
            printf("loss %.4f accuracy %.4f (%d samples)\n", res.loss, res.accuracy, res.n);
        }
    }
    nb_model_free(&m);   /* safe on a zeroed model, after a failed load too */
    nb_dataset_free(&d);
    return code;
}
