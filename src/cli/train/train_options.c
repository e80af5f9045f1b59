/* The options of `nabla train`: defaults, the usage text, strict parsing and range checks.
 * Checks that need the data (--test with IDX, --normalize on pixels) are in cmd_train.c. */
#include "cli/train/train_options.h"

#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common/threads.h"
#include "nn/layers.h"

static const char *const CMD = "train";

void usage_train(FILE *out)
{
    fprintf(out,
"usage: nabla train [options]\n"
"\n"
"Trains a model (the layers of --layers, for the task of --task) and writes config.json,\n"
"metrics.jsonl, model.safetensors and summary.json to the run directory, and keeps\n"
"checkpoint.safetensors (and checkpoint.prev.safetensors) there while it trains.\n"
"Ctrl-C (or SIGTERM, or SIGHUP from a terminal that went away) stops at the next step with\n"
"a checkpoint; --resume continues, ending with the weights an uninterrupted run would have\n"
"(on any number of threads).\n"
"\n"
"Data:\n"
"  --data D              fashion-mnist, a directory of IDX files, a CSV file (plain or\n"
"                        gzip'd; - for standard input), or moons|circles|spirals\n"
"                        [fashion-mnist] (fashion-mnist is read from %s)\n"
"  --test T              a CSV test set for a CSV training set (read like it: columns by\n"
"                        name, its categories and classes), or none: no test set even\n"
"                        where the data has one [IDX: t10k files; synthetic: made]\n"
"  --dev-fraction F      hold out this fraction of the training set as a dev set, 0 <= F < 1 [0]\n"
"  --normalize M         none|standard: standardize CSV/synthetic features with the training\n"
"                        set's mean and std (saved with the model); images stay in [0,1]\n"
"                        [standard for CSV and synthetic data; none for images: IDX, or\n"
"                        a CSV read with --input-shape]\n"
"  --samples N           training samples of a synthetic set, at most 10000000; its test set\n"
"                        has max(200, N/4) [1000]\n"
"  --noise X             noise of a synthetic set [0.2]\n"
"%s"
"\n"
"Task:\n"
"  --task T              classification|regression|multilabel: a class per sample\n"
"                        (softmax cross-entropy), real values (one linear output per\n"
"                        target, targets standardized for training), or 0/1 labels (one\n"
"                        sigmoid output per label) [classification]\n"
"  --loss L              cross_entropy (classification); mse|l1|huber (regression:\n"
"                        PyTorch's MSELoss, L1Loss, HuberLoss with delta 1); bce\n"
"                        (multilabel: BCEWithLogitsLoss) [the task's first]\n"
"\n"
"Model:\n"
"  --layers L            the model: hidden layer widths (256,128, or none), with the\n"
"                        three options below; or the model's layers, as PyTorch names\n"
"                        them: conv2d(32,3,padding=1),batchnorm,relu,maxpool2d(2),\n"
"                        flatten,linear(128),relu,dropout(0.5),linear (see README) [256,128]\n"
"  --activation A        relu|leaky_relu|tanh|sigmoid, with widths [relu]\n"
"  --leaky-slope X       negative slope of leaky_relu, with widths [0.01]\n"
"  --batchnorm           batch normalization after each hidden layer, with widths [off]\n"
"  --input-shape C,H,W   a CSV row is this image (C*H*W features) [IDX: 1,H,W; else a\n"
"                        vector]\n"
"  --sync-batchnorm      under mpirun: batch norm takes its statistics over the whole\n"
"                        global mini-batch, all ranks together, so that N processes\n"
"                        train as one does; needs --batchnorm [each rank its own shard's]\n"
"  --init-weights F      start from the weights in F.safetensors [random init]\n"
"\n"
"Optimization:\n"
"  --optimizer O         sgd|momentum|nesterov|rmsprop|adam|adamw [adam]\n"
"  --lr X                learning rate [0.001]\n"
"  --beta X              momentum / Adam beta1, 0 <= X < 1 [0.9]\n"
"  --beta2 X             RMSprop / Adam beta2, 0 <= X < 1 [0.999]\n"
"  --eps X               RMSprop / Adam epsilon [1e-8]\n"
"  --weight-decay X      L2 penalty (decoupled for adamw) [0]\n"
"  --bias-correction     bias-correct the momentum velocity [off]\n"
"  --batch-size N        mini-batch size, 1 for stochastic, or full for batch GD [64]\n"
"  --epochs N            passes over the training set; 0 trains nothing and saves (and\n"
"                        evaluates) the initial weights [10]\n"
"  --max-steps N         stop after N optimizer steps in all [no limit]\n"
"  --no-shuffle          keep the training set in order [shuffle every epoch]\n"
"  --lr-decay K          none|inverse|exp|inverse-sqrt|interval|step|cosine [none]\n"
"  --decay-rate K        decay rate of --lr-decay [1]\n"
"  --decay-interval N    epochs per step of interval/step decay [1]\n"
"  --warmup-epochs N     linear learning-rate warm-up epochs [0]\n"
"  --decay-epochs N      the horizon of cosine decay: it falls over epochs 1..N (warm-up\n"
"                        included), then holds epoch N's rate (not 0, not rising again);\n"
"                        the other kinds do not depend on the run's length [--epochs]\n"
"  --early-stop N        stop once N epochs in a row brought no better dev metric than\n"
"                        the best epoch's; model.safetensors then holds the best epoch's\n"
"                        weights. Needs --dev-fraction [off]\n"
"  --monitor M           the dev metric --early-stop watches: loss; accuracy\n"
"                        (classification, multilabel); mse, rmse, mae, r2 (regression);\n"
"                        micro_f1, macro_f1 (multilabel) [loss]\n"
"  --min-delta X         with --early-stop: an epoch is better only by more than X [0]\n"
"\n"
"Run:\n"
"  --seed N              seed for initialization, shuffling, splits and synthetic data [0]\n"
"  --threads N           threads for matrix products, at most the cores this process may\n"
"                        use [those cores: %d]\n"
"  --save-weights F      also write the final weights to F.safetensors [none]\n"
"  --out DIR             run directory: new, empty or an earlier run's; one run writes\n"
"                        there at a time [runs/YYYYmmdd-HHMMSS]\n"
"  --checkpoint-every N  also checkpoint every N steps; every epoch's end always is\n"
"                        [epoch ends only]\n"
"  --resume DIR          continue the run in DIR from its newest good checkpoint, with the\n"
"                        configuration it was started with; only --epochs (to extend it),\n"
"                        --threads, --quiet and --checkpoint-every may be given with it.\n"
"                        An extended run equals a fresh run with the new --epochs; a\n"
"                        cosine schedule keeps its horizon (--decay-epochs) and says so\n"
"  --quiet               print only the final result\n"
"  -h, --help            this text\n"
"\n"
"Watching training:\n"
"  --trace-activations   record percentiles (15th, 50th, 85th) of a hidden layer's\n"
"                        pre-activation (W x + b, or the batch norm's output) over each\n"
"                        traced mini-batch, for one unit and for the whole layer, in\n"
"                        trace.jsonl [off]\n"
"  --trace-layer K       the hidden layer traced, 1-based [the last]\n"
"  --trace-unit U        its unit traced, 0-based [0]\n"
"  --trace-every N       steps between records (and step 1) [about 20 an epoch]\n"
"  --eval-every N        every N steps, evaluate on the dev and test sets into\n"
"                        steps.jsonl [off]\n",
            NB_FASHION_MNIST_DIR, data_csv_usage(), cli_usable_cores());
}

enum {
    OPT_DATA = 256, OPT_TEST, OPT_LAYERS, OPT_ACTIVATION, OPT_BATCHNORM, OPT_INPUT_SHAPE, OPT_OPTIMIZER, OPT_LR,
    OPT_BETA, OPT_BETA2, OPT_EPS, OPT_WEIGHT_DECAY, OPT_BIAS_CORRECTION, OPT_BATCH_SIZE,
    OPT_EPOCHS, OPT_MAX_STEPS, OPT_NO_SHUFFLE, OPT_LR_DECAY, OPT_DECAY_RATE, OPT_DECAY_INTERVAL,
    OPT_WARMUP_EPOCHS, OPT_SEED, OPT_THREADS, OPT_DEV_FRACTION, OPT_NORMALIZE, OPT_SAMPLES,
    OPT_NOISE, OPT_LEAKY_SLOPE, OPT_INIT_WEIGHTS, OPT_SAVE_WEIGHTS, OPT_OUT, OPT_QUIET,
    OPT_CHECKPOINT_EVERY, OPT_RESUME, OPT_TRACE_ACTIVATIONS, OPT_TRACE_LAYER, OPT_TRACE_UNIT,
    OPT_TRACE_EVERY, OPT_EVAL_EVERY, OPT_SYNC_BATCHNORM, OPT_DECAY_EPOCHS, OPT_TASK, OPT_LOSS,
    OPT_EARLY_STOP, OPT_MONITOR, OPT_MIN_DELTA, OPT_CSV
};

static const struct option long_options[] = {
    {"data", required_argument, NULL, OPT_DATA},
    {"test", required_argument, NULL, OPT_TEST},
    {"layers", required_argument, NULL, OPT_LAYERS},
    {"activation", required_argument, NULL, OPT_ACTIVATION},
    {"batchnorm", no_argument, NULL, OPT_BATCHNORM},
    {"input-shape", required_argument, NULL, OPT_INPUT_SHAPE},
    {"sync-batchnorm", no_argument, NULL, OPT_SYNC_BATCHNORM},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"lr", required_argument, NULL, OPT_LR},
    {"beta", required_argument, NULL, OPT_BETA},
    {"beta2", required_argument, NULL, OPT_BETA2},
    {"eps", required_argument, NULL, OPT_EPS},
    {"weight-decay", required_argument, NULL, OPT_WEIGHT_DECAY},
    {"bias-correction", no_argument, NULL, OPT_BIAS_CORRECTION},
    {"batch-size", required_argument, NULL, OPT_BATCH_SIZE},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"max-steps", required_argument, NULL, OPT_MAX_STEPS},
    {"no-shuffle", no_argument, NULL, OPT_NO_SHUFFLE},
    {"lr-decay", required_argument, NULL, OPT_LR_DECAY},
    {"decay-rate", required_argument, NULL, OPT_DECAY_RATE},
    {"decay-interval", required_argument, NULL, OPT_DECAY_INTERVAL},
    {"warmup-epochs", required_argument, NULL, OPT_WARMUP_EPOCHS},
    {"decay-epochs", required_argument, NULL, OPT_DECAY_EPOCHS},
    {"early-stop", required_argument, NULL, OPT_EARLY_STOP},
    {"monitor", required_argument, NULL, OPT_MONITOR},
    {"min-delta", required_argument, NULL, OPT_MIN_DELTA},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"dev-fraction", required_argument, NULL, OPT_DEV_FRACTION},
    {"normalize", required_argument, NULL, OPT_NORMALIZE},
    {"task", required_argument, NULL, OPT_TASK},
    {"loss", required_argument, NULL, OPT_LOSS},
    {"samples", required_argument, NULL, OPT_SAMPLES},
    {"noise", required_argument, NULL, OPT_NOISE},
    {"leaky-slope", required_argument, NULL, OPT_LEAKY_SLOPE},
    {"init-weights", required_argument, NULL, OPT_INIT_WEIGHTS},
    {"save-weights", required_argument, NULL, OPT_SAVE_WEIGHTS},
    {"out", required_argument, NULL, OPT_OUT},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"checkpoint-every", required_argument, NULL, OPT_CHECKPOINT_EVERY},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"trace-activations", no_argument, NULL, OPT_TRACE_ACTIVATIONS},
    {"trace-layer", required_argument, NULL, OPT_TRACE_LAYER},
    {"trace-unit", required_argument, NULL, OPT_TRACE_UNIT},
    {"trace-every", required_argument, NULL, OPT_TRACE_EVERY},
    {"eval-every", required_argument, NULL, OPT_EVAL_EVERY},
    DATA_CSV_LONG_OPTIONS(OPT_CSV),
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int train_option_arity(const char *name)
{
    for (const struct option *opt = long_options; opt->name; opt++)
        if (strcmp(opt->name, name) == 0 && strcmp(name, "help") != 0)
            return opt->has_arg == required_argument ? 1 : 0;
    return -1;
}

int train_layers_is_text(const char *layers)
{
    /* Widths in digits, or none: the short form; anything else is a model's text. */
    return strcmp(layers, "none") != 0 &&
           (!layers[0] || strspn(layers, "0123456789, ") != strlen(layers));
}

int train_option_goes_with_widths(const char *name)
{
    static const char *const widths_options[] = {"activation", "leaky-slope", "batchnorm"};
    for (size_t i = 0; i < sizeof widths_options / sizeof widths_options[0]; i++)
        if (strcmp(name, widths_options[i]) == 0)
            return 1;
    return 0;
}

static void set_defaults(train_options *o)
{
    memset(o, 0, sizeof *o);
    o->src.data = "fashion-mnist";
    o->src.samples = 1000;
    o->src.noise = 0.2;
    o->src.seed = 0;
    o->normalize = -1;   /* standard for float data, none for images: cmd_train decides */
    o->layers = "256,128";
    o->mlp.activation = NB_RELU;
    o->optimizer = NB_ADAM;
    o->lr = 0.001;
    o->beta = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->leaky_slope = 0.01;
    o->batch_size = 64;
    o->epochs = TRAIN_DEFAULT_EPOCHS;
    o->shuffle = 1;
    o->decay = NB_DECAY_NONE;
    o->decay_rate = 1;
    o->decay_interval = 1;
    o->threads = cli_usable_cores();
}

/* Integer options that must be >= min. */
static int parse_int_min(const char *opt, const char *s, int min, int *out)
{
    if (cli_parse_int(CMD, opt, s, out) != 0)
        return -1;
    if (*out < min) {
        cli_usage_error(CMD, "%s must be %s, got %s", opt, min == 1 ? "> 0" : ">= 0", s);
        return -1;
    }
    return 0;
}

/* The ranges are checked on the 32-bit float the library gets: 0.999999999 rounds to 1 and
 * 1e-50 to 0, which the optimizer would refuse only after the run directory was written. */
static const char *as_float_note(double v, char *buf, size_t cap)
{
    if ((double)(float)v == v)
        return "";
    snprintf(buf, cap, " (%g as a 32-bit float)", (double)(float)v);
    return buf;
}

/* A value in [0, 1): momentum and Adam betas, the dev fraction. */
static int parse_unit(const char *opt, const char *s, double *out)
{
    if (cli_parse_double(CMD, opt, s, out) != 0)
        return -1;
    float f = (float)*out;
    if (f < 0 || f >= 1) {
        char note[64];
        cli_usage_error(CMD, "%s must be in [0, 1), got %s%s", opt, s,
                        *out < 0 || *out >= 1 ? "" : as_float_note(*out, note, sizeof note));
        return -1;
    }
    return 0;
}

static int parse_positive(const char *opt, const char *s, double *out)
{
    if (cli_parse_double(CMD, opt, s, out) != 0)
        return -1;
    if (!((float)*out > 0)) {
        char note[64];
        cli_usage_error(CMD, "%s must be > 0, got %s%s", opt, s,
                        *out > 0 ? as_float_note(*out, note, sizeof note) : "");
        return -1;
    }
    return 0;
}

static int parse_non_negative(const char *opt, const char *s, double *out)
{
    if (cli_parse_double(CMD, opt, s, out) != 0)
        return -1;
    if (*out < 0) {
        cli_usage_error(CMD, "%s must be >= 0, got %s", opt, s);
        return -1;
    }
    return 0;
}

/* A number of steps, >= 1. */
static int parse_every(const char *opt, const char *s, int64_t *out)
{
    if (cli_parse_i64(CMD, opt, s, out) != 0)
        return -1;
    if (*out <= 0) {
        cli_usage_error(CMD, "%s must be > 0, got %s", opt, s);
        return -1;
    }
    return 0;
}

/* One option; returns 0, -1 after a usage message, or 1 for --help. */
static int apply_option(train_options *o, int c, const char *arg)
{
    nb_error err = {{0}};
    switch (c) {
    case OPT_DATA: return cli_parse_path(CMD, "--data", arg, &o->src.data);
    case OPT_TEST:
        /* "none" turns off the test set that IDX and synthetic data bring (`nabla tune`'s
         * trials never look at it); a CSV file of that name is ./none. */
        o->src.no_test = strcmp(arg, "none") == 0;
        if (o->src.no_test) {
            o->src.test = NULL;
            return 0;
        }
        return cli_parse_path(CMD, "--test", arg, &o->src.test);
    case OPT_LAYERS:
        o->layers = arg;
        o->layers_text = train_layers_is_text(arg);
        if (o->layers_text) {
            if (nb_layers_parse(arg, &o->model, &err) != 0) {
                cli_usage_error(CMD, "--layers: %s", err.msg);
                return -1;
            }
            return 0;
        }
        if (nb_parse_layers(arg, &o->mlp, &err) != 0) {
            /* The parser's message starts "layers '0': ..."; make it name the option. */
            if (strncmp(err.msg, "layers ", 7) == 0)
                cli_usage_error(CMD, "--%s", err.msg);
            else
                cli_usage_error(CMD, "--layers: %s", err.msg);
            return -1;
        }
        return 0;
    case OPT_ACTIVATION:
        o->given_activation = 1;
        if (nb_activation_parse(arg, &o->mlp.activation) != 0) {
            cli_usage_error(CMD, "unknown --activation '%s' (relu, leaky_relu, tanh, sigmoid)",
                            arg);
            return -1;
        }
        return 0;
    case OPT_BATCHNORM: o->mlp.batchnorm = o->given_batchnorm = 1; return 0;
    case OPT_INPUT_SHAPE:
        if (nb_shape_parse(arg, &o->input_shape) != 0 || o->input_shape.ndim != 3) {
            cli_usage_error(CMD, "--input-shape '%s': expected C,H,W, three whole numbers from 1 "
                                 "(channels, height, width)", arg);
            return -1;
        }
        return 0;
    case OPT_SYNC_BATCHNORM: o->sync_batchnorm = 1; return 0;
    case OPT_OPTIMIZER:
        if (nb_optimizer_parse(arg, &o->optimizer) != 0) {
            cli_usage_error(CMD, "unknown --optimizer '%s' (sgd, momentum, nesterov, rmsprop, "
                                 "adam, adamw)", arg);
            return -1;
        }
        return 0;
    case OPT_LR: return parse_positive("--lr", arg, &o->lr);
    case OPT_BETA: return parse_unit("--beta", arg, &o->beta);
    case OPT_BETA2: return parse_unit("--beta2", arg, &o->beta2);
    case OPT_EPS: return parse_positive("--eps", arg, &o->eps);
    case OPT_WEIGHT_DECAY: return parse_non_negative("--weight-decay", arg, &o->weight_decay);
    case OPT_BIAS_CORRECTION: o->bias_correction = 1; return 0;
    case OPT_BATCH_SIZE:
        if (strcmp(arg, "full") == 0) {
            o->batch_size = 0;
            return 0;
        }
        return parse_int_min("--batch-size", arg, 1, &o->batch_size);
    case OPT_EPOCHS:
        o->given_epochs = 1;
        return parse_int_min("--epochs", arg, 0, &o->epochs);
    case OPT_MAX_STEPS:
        if (cli_parse_i64(CMD, "--max-steps", arg, &o->max_steps) != 0)
            return -1;
        if (o->max_steps <= 0) {
            cli_usage_error(CMD, "--max-steps must be > 0, got %s", arg);
            return -1;
        }
        return 0;
    case OPT_NO_SHUFFLE: o->shuffle = 0; return 0;
    case OPT_LR_DECAY:
        if (nb_decay_parse(arg, &o->decay) != 0) {
            cli_usage_error(CMD, "unknown --lr-decay '%s' (none, inverse, exp, inverse-sqrt, "
                                 "interval, step, cosine)", arg);
            return -1;
        }
        return 0;
    case OPT_DECAY_RATE: return parse_non_negative("--decay-rate", arg, &o->decay_rate);
    case OPT_DECAY_INTERVAL: return parse_int_min("--decay-interval", arg, 1, &o->decay_interval);
    case OPT_WARMUP_EPOCHS: return parse_int_min("--warmup-epochs", arg, 0, &o->warmup_epochs);
    case OPT_DECAY_EPOCHS:
        o->given_decay_epochs = 1;
        return parse_int_min("--decay-epochs", arg, 1, &o->decay_epochs);
    case OPT_SEED: return cli_parse_u64(CMD, "--seed", arg, &o->src.seed);
    case OPT_THREADS:
        o->given_threads = 1;
        return cli_parse_threads(CMD, arg, &o->threads);
    case OPT_DEV_FRACTION: return parse_unit("--dev-fraction", arg, &o->dev_fraction);
    case OPT_NORMALIZE:
        if (strcmp(arg, "none") == 0 || strcmp(arg, "standard") == 0) {
            o->normalize = strcmp(arg, "standard") == 0;
            return 0;
        }
        cli_usage_error(CMD, "unknown --normalize '%s' (none, standard)", arg);
        return -1;
    case OPT_TASK:
        if (nb_task_parse(arg, &o->task) == 0)
            return 0;
        cli_usage_error(CMD, "unknown --task '%s' (classification, regression, multilabel)", arg);
        return -1;
    case OPT_LOSS:
        o->given_loss = 1;
        if (nb_loss_parse(arg, &o->loss) == 0)
            return 0;
        cli_usage_error(CMD, "unknown --loss '%s' (cross_entropy, mse, l1, huber, bce)", arg);
        return -1;
    case OPT_SAMPLES:
        if (parse_int_min("--samples", arg, 1, &o->src.samples) != 0)
            return -1;
        if (o->src.samples > CLI_MAX_SAMPLES) {
            cli_usage_error(CMD, "--samples must be at most %d, got %s", CLI_MAX_SAMPLES, arg);
            return -1;
        }
        return 0;
    case OPT_NOISE: return parse_non_negative("--noise", arg, &o->src.noise);
    case OPT_LEAKY_SLOPE:
        o->given_leaky_slope = 1;
        return cli_parse_double(CMD, "--leaky-slope", arg, &o->leaky_slope);
    case OPT_INIT_WEIGHTS: return cli_parse_path(CMD, "--init-weights", arg, &o->init_weights);
    case OPT_SAVE_WEIGHTS: return cli_parse_path(CMD, "--save-weights", arg, &o->save_weights);
    case OPT_OUT:
        if (strlen(arg) >= CLI_MAX_PATH) {
            cli_usage_error(CMD, "--out is longer than %d bytes", CLI_MAX_PATH - 1);
            return -1;
        }
        return cli_parse_path(CMD, "--out", arg, &o->out);
    case OPT_QUIET: o->quiet = 1; return 0;
    case OPT_CHECKPOINT_EVERY:
        o->given_checkpoint_every = 1;
        if (cli_parse_i64(CMD, "--checkpoint-every", arg, &o->checkpoint_every) != 0)
            return -1;
        if (o->checkpoint_every <= 0) {
            cli_usage_error(CMD, "--checkpoint-every must be > 0, got %s", arg);
            return -1;
        }
        return 0;
    case OPT_RESUME:
        if (strlen(arg) >= CLI_MAX_PATH) {
            cli_usage_error(CMD, "--resume is longer than %d bytes", CLI_MAX_PATH - 1);
            return -1;
        }
        return cli_parse_path(CMD, "--resume", arg, &o->resume);
    case OPT_TRACE_ACTIVATIONS: o->trace = 1; return 0;
    case OPT_TRACE_LAYER:
        o->given_trace_layer = 1;
        return parse_int_min("--trace-layer", arg, 1, &o->trace_layer);
    case OPT_TRACE_UNIT:
        o->given_trace_unit = 1;
        return parse_int_min("--trace-unit", arg, 0, &o->trace_unit);
    case OPT_TRACE_EVERY:
        o->given_trace_every = 1;
        return parse_every("--trace-every", arg, &o->trace_every);
    case OPT_EVAL_EVERY: return parse_every("--eval-every", arg, &o->eval_every);
    case OPT_EARLY_STOP: return parse_int_min("--early-stop", arg, 1, &o->early_stop);
    case OPT_MONITOR:
        o->given_monitor = 1;
        if (nb_metric_parse(arg, &o->monitor) != 0) {
            char names[160] = "";
            for (int i = 0; i < NB_METRICS; i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                         i ? ", " : "", nb_metric_name((nb_metric)i));
            cli_usage_error(CMD, "unknown --monitor '%s' (%s)", arg, names);
            return -1;
        }
        return 0;
    case OPT_MIN_DELTA:
        o->given_min_delta = 1;
        if (parse_non_negative("--min-delta", arg, &o->min_delta) != 0)
            return -1;
        if (!isfinite(o->min_delta)) {
            cli_usage_error(CMD, "--min-delta must be a finite number, got %s", arg);
            return -1;
        }
        return 0;
    case 'h': return 1;
    }
    return -1;
}

nb_loss train_options_loss(const train_options *o)
{
    return o->given_loss ? o->loss : nb_task_default_loss(o->task);
}

int train_options_batchnorm(const train_options *o)
{
    for (int i = 0; i < o->model.n; i++)
        if (o->model.layer[i].kind == NB_LAYER_BATCHNORM)
            return 1;
    return 0;
}

/* o->model from --layers: the text as parsed, or the widths form expanded with --activation,
 * --leaky-slope and --batchnorm, which a model's text writes itself. */
static int set_model(train_options *o, int *exit_code)
{
    if (o->layers_text) {
        const char *given = o->given_activation    ? "--activation"
                            : o->given_leaky_slope ? "--leaky-slope"
                            : o->given_batchnorm   ? "--batchnorm"
                                                   : NULL;
        if (given) {
            *exit_code = cli_usage_error(CMD, "%s goes with --layers widths (256,128); a model's "
                                              "text writes its own layers (relu, leaky_relu(0.1), "
                                              "batchnorm)", given);
            return -1;
        }
        return 0;
    }
    if (o->input_shape.ndim) {
        *exit_code = cli_usage_error(CMD, "--input-shape goes with a model's text in --layers "
                                          "(conv2d(...),...,flatten,linear); --layers widths make "
                                          "an MLP on the vector of features");
        return -1;
    }
    nb_error err;
    o->mlp.leaky_slope = (float)o->leaky_slope;
    if (nb_layers_from_mlp(&o->mlp, &o->model, &err) != 0) {
        *exit_code = cli_usage_error(CMD, "--layers %s: %s", o->layers, err.msg);
        return -1;
    }
    return 0;
}

int train_model_spec(const train_options *o, const nb_dataset *train, nb_model_spec *spec,
                     nb_shape *shapes, nb_error *err)
{
    /* The widths form is an MLP on the vector of features, as it always was (its tensors keep
     * their names: an image would need a flatten at index 0). */
    nb_shape input = train->image.ndim == 3 && o->layers_text ? train->image
                                                               : nb_shape_vector(train->features);
    char shape[48];
    if (o->input_shape.ndim) {
        nb_shape_format(o->input_shape, shape, sizeof shape);
        if (nb_shape_numel(o->input_shape) != train->features)
            return nb_fail(err, "--input-shape %s has %lld features, but the data has %d", shape,
                           (long long)nb_shape_numel(o->input_shape), train->features);
        input = o->input_shape;
    }
    memset(spec, 0, sizeof *spec);
    spec->input = input;
    spec->classes = o->task == NB_TASK_CLASSIFICATION ? train->classes : train->targets;
    spec->task = o->task;
    spec->loss = train_options_loss(o);
    spec->layers = o->model;
    spec->trace_layer = o->trace ? o->trace_layer : 0;
    nb_error why;
    if (nb_layers_shapes(&spec->layers, input, spec->classes, shapes, &why) != 0) {
        nb_shape_format(input, shape, sizeof shape);
        return nb_fail(err, "--layers: %s (the input is %s, the %s %d)", why.msg, shape,
                       o->task == NB_TASK_CLASSIFICATION ? "classes" : "outputs", spec->classes);
    }
    return 0;
}

/* What --trace-layer points at must exist; the three need --trace-activations. */
static int check_trace(train_options *o, int *exit_code)
{
    const char *given = o->given_trace_layer   ? "--trace-layer"
                        : o->given_trace_unit  ? "--trace-unit"
                        : o->given_trace_every ? "--trace-every"
                                               : NULL;
    if (!o->trace) {
        if (given) {
            *exit_code = cli_usage_error(CMD, "%s needs --trace-activations", given);
            return -1;
        }
        return 0;
    }
    int n = nb_layers_activations(&o->model);
    if (n == 0) {
        *exit_code = cli_usage_error(CMD, "--trace-activations needs an activation layer, but "
                                          "--layers is %s", o->layers);
        return -1;
    }
    if (!o->given_trace_layer)
        o->trace_layer = n;
    if (o->trace_layer > n) {
        *exit_code = cli_usage_error(CMD, "--trace-layer %d: the model has activation layers 1 "
                                          "to %d", o->trace_layer, n);
        return -1;
    }
    /* Whether --trace-unit is a unit of that layer depends on the input's shape: checked with
     * the model (train_model_spec). */
    return 0;
}

nb_schedule train_schedule(const train_options *o)
{
    nb_schedule s = {o->decay, (float)o->lr, (float)o->decay_rate, o->decay_interval,
                     o->warmup_epochs, o->decay_epochs};
    return s;
}

/* Checks that need several options at once. */
static int check_combinations(const train_options *o, int *exit_code)
{
    /* A horizon given to a schedule that has none would be a flag that does nothing. */
    if (o->given_decay_epochs && o->decay != NB_DECAY_COSINE) {
        *exit_code = cli_usage_error(CMD, "--decay-epochs is the horizon of --lr-decay cosine, "
                                          "but --lr-decay is %s, which does not depend on the "
                                          "run's length", nb_decay_name(o->decay));
        return -1;
    }
    /* --epochs 0 gives cosine decay no horizon of its own. */
    if (o->decay == NB_DECAY_COSINE && o->epochs == 0 && !o->given_decay_epochs) {
        *exit_code = cli_usage_error(CMD, "--epochs 0 gives --lr-decay cosine no horizon: give "
                                          "--decay-epochs N (the epochs a --resume with more "
                                          "--epochs decays over)");
        return -1;
    }
    nb_schedule sched = train_schedule(o);
    nb_error err;
    if (nb_schedule_validate(&sched, &err) != 0) {
        *exit_code = cli_usage_error(CMD, "--lr-decay %s: %s", nb_decay_name(o->decay), err.msg);
        return -1;
    }
    if (o->sync_batchnorm && !train_options_batchnorm(o)) {
        *exit_code = cli_usage_error(CMD, "--sync-batchnorm needs batch norm in the model (it is "
                                          "how batch norm takes its statistics under mpirun)");
        return -1;
    }
    if (o->given_loss && nb_loss_task(o->loss) != o->task) {
        *exit_code = cli_usage_error(CMD, "--loss %s trains a %s model, but --task is %s (its "
                                          "default loss is %s)", nb_loss_name(o->loss),
                                     nb_task_name(nb_loss_task(o->loss)), nb_task_name(o->task),
                                     nb_loss_name(nb_task_default_loss(o->task)));
        return -1;
    }
    /* Early stopping watches the dev set; its settings without it would do nothing. */
    if (!o->early_stop && (o->given_monitor || o->given_min_delta)) {
        *exit_code = cli_usage_error(CMD, "%s goes with --early-stop N (the dev metric it "
                                          "watches)", o->given_monitor ? "--monitor"
                                                                       : "--min-delta");
        return -1;
    }
    if (o->early_stop && !((float)o->dev_fraction > 0)) {
        *exit_code = cli_usage_error(CMD, "--early-stop watches the dev set, and this run has "
                                          "none: give --dev-fraction F (0 < F < 1)");
        return -1;
    }
    if (o->src.test_fraction > 0 && (o->src.test || o->src.no_test)) {
        *exit_code = cli_usage_error(CMD, "--test-fraction holds out a test set from --data, but "
                                          "--test %s", o->src.test ? "names another" : "none asks "
                                          "for none");
        return -1;
    }
    /* One sample has no batch statistics (PyTorch refuses it too). */
    if (train_options_batchnorm(o) && o->batch_size == 1) {
        *exit_code = cli_usage_error(CMD, "--batchnorm needs batches of at least 2 samples; "
                                          "--batch-size 1 normalizes every value to beta");
        return -1;
    }
    return 0;
}

int train_args_without_length(int argc, char **argv, char **kept)
{
    opterr = 0;
    optind = 1;
    int n = 0, from = 1, c;
    kept[n++] = argv[0];
    /* Each option spans argv[from .. optind): "--epochs 8", "--epochs=8" or an abbreviation. */
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        if (c != OPT_EPOCHS && c != OPT_DECAY_EPOCHS && c != OPT_OUT)
            for (int i = from; i < optind; i++)
                kept[n++] = argv[i];
        from = optind;
    }
    for (int i = from; i < argc; i++)
        kept[n++] = argv[i];
    return n;
}

int train_options_parse(train_options *o, int argc, char **argv, int *exit_code)
{
    nb_error err = {{0}};
    set_defaults(o);
    if (nb_parse_layers(o->layers, &o->mlp, &err) != 0) {
        fprintf(stderr, "nabla: default --layers: %s\n", err.msg);
        *exit_code = EXIT_RUNTIME;
        return -1;
    }
    opterr = 0;   /* the messages below say which command, and use the program's format */
    optind = 1;
    int c, index = -1;
    const char *fixed = NULL;   /* the first option given that --resume may not change */
    while ((c = getopt_long(argc, argv, ":h", long_options, &index)) != -1) {
        if (!fixed && c != OPT_RESUME && c != OPT_EPOCHS && c != OPT_THREADS && c != OPT_QUIET &&
            c != OPT_CHECKPOINT_EVERY && c != 'h' && c != '?' && c != ':')
            fixed = argv[optind - 1 - (optarg && optarg == argv[optind - 1])];
        if (c == '?' || c == ':') {
            *exit_code = cli_option_error(CMD, c, argv);
            return -1;
        }
        int rc;
        if (c == OPT_CSV) {
            char flag[40];
            snprintf(flag, sizeof flag, "--%s", long_options[index].name);
            rc = data_csv_option(CMD, flag, optarg, &o->src);
        } else {
            rc = apply_option(o, c, optarg);
        }
        if (rc == 1) {
            usage_train(stdout);
            *exit_code = EXIT_OK;
            return -1;
        }
        if (rc != 0) {
            *exit_code = EXIT_USAGE;
            return -1;
        }
    }
    if (optind < argc) {
        *exit_code = cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (o->resume && fixed) {
        *exit_code = cli_usage_error(CMD, "%s cannot be given with --resume: a resumed run keeps "
                                          "the configuration it was started with (only --epochs, "
                                          "--threads, --quiet and --checkpoint-every may be given)",
                                     fixed);
        return -1;
    }
    if (set_model(o, exit_code) != 0)
        return -1;
    if (!o->given_decay_epochs)
        o->decay_epochs = o->epochs;   /* the horizon is the run's own length */
    if (check_trace(o, exit_code) != 0)
        return -1;
    o->src.csv.task = o->task;   /* a CSV file's target columns are read for the task */
    return check_combinations(o, exit_code);
}

/* ---- the same run? ---- */

/* The real path of a path option given in cwd, or NULL when it leads to nothing that exists
 * (or is not given). A new string. */
static char *real_path_in(const char *path, const char *cwd)
{
    if (!path)
        return NULL;
    size_t n = strlen(cwd) + strlen(path) + 2;
    char *joined = malloc(n);
    if (!joined)
        return NULL;
    snprintf(joined, n, "%s%s%s", path[0] == '/' ? "" : cwd, path[0] == '/' ? "" : "/", path);
    char *real = realpath(joined, NULL);
    free(joined);
    return real;
}

/* The same path option: both absent, both leading to the same file, or the same words for
 * what is no file (a synthetic set's name). */
static int same_path(const char *a, const char *cwd_a, const char *b, const char *cwd_b)
{
    if (!a || !b)
        return !a && !b;
    char *ra = real_path_in(a, cwd_a), *rb = real_path_in(b, cwd_b);
    int same = ra && rb ? strcmp(ra, rb) == 0 : !ra && !rb && strcmp(a, b) == 0;
    free(ra);
    free(rb);
    return same;
}

int train_options_same_run(const train_options *a, const char *cwd_a, const train_options *b,
                           const char *cwd_b, char *what, size_t size)
{
#define DIFFERS(name, fmt, x, y)                                                            \
    do {                                                                                    \
        snprintf(what, size, "%s is " fmt ", not " fmt, name, x, y);                          \
        return 0;                                                                           \
    } while (0)
#define SAME_NUMBER(name, field)                                                            \
    if (a->field != b->field)                                                               \
    DIFFERS(name, "%g", (double)a->field, (double)b->field)
#define SAME_FLAG(name, field)                                                              \
    if (!a->field != !b->field)                                                             \
    DIFFERS(name, "%s", a->field ? "on" : "off", b->field ? "on" : "off")
#define SAME_PATH(name, field)                                                              \
    if (!same_path(a->field, cwd_a, b->field, cwd_b))                                       \
    DIFFERS(name, "%s", a->field ? a->field : "absent", b->field ? b->field : "absent")

    SAME_PATH("--data", src.data);
    SAME_PATH("--test", src.test);
    SAME_FLAG("--test none", src.no_test);
    SAME_NUMBER("--samples", src.samples);
    SAME_NUMBER("--noise", src.noise);
    if (a->src.seed != b->src.seed)
        DIFFERS("--seed", "%llu", (unsigned long long)a->src.seed,
                (unsigned long long)b->src.seed);
    SAME_NUMBER("--dev-fraction", dev_fraction);
    SAME_NUMBER("--test-fraction", src.test_fraction);
    if (!a->src.csv.target != !b->src.csv.target ||
        (a->src.csv.target && strcmp(a->src.csv.target, b->src.csv.target) != 0))
        DIFFERS("--target", "%s", a->src.csv.target ? a->src.csv.target : "absent",
                b->src.csv.target ? b->src.csv.target : "absent");
    if (a->src.csv.header != b->src.csv.header)
        DIFFERS("--header", "%s", data_header_name(a->src.csv.header),
                data_header_name(b->src.csv.header));
    if (a->src.csv.delimiter != b->src.csv.delimiter)
        DIFFERS("--delimiter", "%s", data_delimiter_name(a->src.csv.delimiter),
                data_delimiter_name(b->src.csv.delimiter));
    if (a->src.csv.missing != b->src.csv.missing)
        DIFFERS("--missing", "%s", data_missing_name(a->src.csv.missing),
                data_missing_name(b->src.csv.missing));
    SAME_FLAG("--allow-many-classes", src.csv.allow_many_classes);
    if (a->normalize != b->normalize)
        DIFFERS("--normalize", "%s", a->normalize > 0 ? "standard" : a->normalize ? "default" : "none",
                b->normalize > 0 ? "standard" : b->normalize ? "default" : "none");
    if (a->task != b->task)
        DIFFERS("--task", "%s", nb_task_name(a->task), nb_task_name(b->task));
    if (train_options_loss(a) != train_options_loss(b))
        DIFFERS("--loss", "%s", nb_loss_name(train_options_loss(a)),
                nb_loss_name(train_options_loss(b)));
    /* The same model, however written: the canonical texts. */
    char text_a[NB_LAYERS_TEXT_MAX], text_b[NB_LAYERS_TEXT_MAX];
    if (nb_layers_format(&a->model, text_a, sizeof text_a) < 0 ||
        nb_layers_format(&b->model, text_b, sizeof text_b) < 0 || strcmp(text_a, text_b) != 0)
        DIFFERS("--layers", "%s", text_a, text_b);
    char shape_a[48] = "absent", shape_b[48] = "absent";
    if (a->input_shape.ndim)
        nb_shape_format(a->input_shape, shape_a, sizeof shape_a);
    if (b->input_shape.ndim)
        nb_shape_format(b->input_shape, shape_b, sizeof shape_b);
    if (strcmp(shape_a, shape_b) != 0)
        DIFFERS("--input-shape", "%s", shape_a, shape_b);
    SAME_FLAG("--sync-batchnorm", sync_batchnorm);
    SAME_PATH("--init-weights", init_weights);
    if (a->optimizer != b->optimizer)
        DIFFERS("--optimizer", "%s", nb_optimizer_name(a->optimizer),
                nb_optimizer_name(b->optimizer));
    SAME_NUMBER("--lr", lr);
    SAME_NUMBER("--beta", beta);
    SAME_NUMBER("--beta2", beta2);
    SAME_NUMBER("--eps", eps);
    SAME_NUMBER("--weight-decay", weight_decay);
    SAME_FLAG("--bias-correction", bias_correction);
    SAME_NUMBER("--batch-size", batch_size);
    SAME_NUMBER("--epochs", epochs);
    SAME_NUMBER("--max-steps", max_steps);
    if (!a->shuffle != !b->shuffle)
        DIFFERS("--no-shuffle", "%s", a->shuffle ? "off" : "on", b->shuffle ? "off" : "on");
    if (a->decay != b->decay)
        DIFFERS("--lr-decay", "%s", nb_decay_name(a->decay), nb_decay_name(b->decay));
    SAME_NUMBER("--decay-rate", decay_rate);
    SAME_NUMBER("--decay-interval", decay_interval);
    SAME_NUMBER("--warmup-epochs", warmup_epochs);
    SAME_NUMBER("--decay-epochs", decay_epochs);
    SAME_PATH("--save-weights", save_weights);
    SAME_FLAG("--trace-activations", trace);
    SAME_NUMBER("--trace-layer", trace_layer);
    SAME_NUMBER("--trace-unit", trace_unit);
    SAME_NUMBER("--trace-every", trace_every);
    SAME_NUMBER("--eval-every", eval_every);
    SAME_NUMBER("--early-stop", early_stop);
    if (a->monitor != b->monitor)
        DIFFERS("--monitor", "%s", nb_metric_name(a->monitor), nb_metric_name(b->monitor));
    SAME_NUMBER("--min-delta", min_delta);
    return 1;
#undef DIFFERS
#undef SAME_NUMBER
#undef SAME_FLAG
#undef SAME_PATH
}
