/* The sense of a run directory's files (run_check.h). The writers are cmd_train.c with
 * run_files.c (metrics.jsonl), train_files.c (config.json, summary.json) and train_trace.c
 * (steps.jsonl, trace.jsonl); what they write, and what older versions of nabla wrote, is what
 * passes here. */
#include "cli/common/run_check.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/common/options.h"
#include "nn/layers.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- the tables ---- */

/* metrics.jsonl: null is a split the run does not have (dev, test), or a loss the run could not
 * compute (weights grown huge before a divergence). The training figures of an epoch are
 * always numbers: the epoch's finite losses and its count of right answers. The learning rate
 * may be 0: a decay that underflows the float ends there. */
static const table_column METRICS_COLUMNS[M_COLS] = {
    [M_EPOCH] = {"epoch", V_INT_1, 1},
    [M_LR] = {"lr", V_NON_NEG, 1},
    [M_TRAIN_LOSS] = {"train_loss", V_NON_NEG, 1},
    [M_TRAIN_ACC] = {"train_accuracy", V_UNIT, 0},   /* a number unless regression: below */
    [M_DEV_LOSS] = {"dev_loss", V_NON_NEG, 0},
    [M_DEV_ACC] = {"dev_accuracy", V_UNIT, 0},
    [M_TEST_LOSS] = {"test_loss", V_NON_NEG, 0},
    [M_TEST_ACC] = {"test_accuracy", V_UNIT, 0},
    [M_SECONDS] = {"seconds", V_NON_NEG, 1},
    [M_DEV_RMSE] = {"dev_rmse", V_NON_NEG, 0},
    [M_TEST_RMSE] = {"test_rmse", V_NON_NEG, 0},
    [M_DEV_R2] = {"dev_r2", V_FINITE, 0},
    [M_TEST_R2] = {"test_r2", V_FINITE, 0},
    [M_DEV_MACRO_F1] = {"dev_macro_f1", V_UNIT, 0},
    [M_TEST_MACRO_F1] = {"test_macro_f1", V_UNIT, 0},
};
static const table_column STEPS_COLUMNS[S_COLS] = {
    [S_STEP] = {"step", V_COUNT_1, 1},
    [S_EPOCH] = {"epoch", V_INT_1, 1},
    [S_LR] = {"lr", V_NON_NEG, 1},
    [S_DEV_LOSS] = {"dev_loss", V_NON_NEG, 0},
    [S_DEV_ACC] = {"dev_accuracy", V_UNIT, 0},
    [S_TEST_LOSS] = {"test_loss", V_NON_NEG, 0},
    [S_TEST_ACC] = {"test_accuracy", V_UNIT, 0},
};
/* A percentile is null when the pre-activations were not finite (a diverging step). */
static const table_column TRACE_COLUMNS[T_COLS] = {
    [T_STEP] = {"step", V_COUNT_1, 1},
    [T_LAYER] = {"layer", V_INT_1, 1},
    [T_UNIT] = {"unit", V_INT, 1},
    [T_EPOCH] = {"epoch", V_INT_1, 1},
    [T_UNIT_P15] = {"unit_p15", V_FINITE, 0},
    [T_UNIT_P50] = {"unit_p50", V_FINITE, 0},
    [T_UNIT_P85] = {"unit_p85", V_FINITE, 0},
    [T_LAYER_P15] = {"layer_p15", V_FINITE, 0},
    [T_LAYER_P50] = {"layer_p50", V_FINITE, 0},
    [T_LAYER_P85] = {"layer_p85", V_FINITE, 0},
};

/* The value of column c on the row just read and on the one before it. */
#define NOW(t, c) ((t)->col[c][(t)->n - 1])
#define BEFORE(t, c) ((t)->col[c][(t)->n - 2])

static const cJSON *config_of(const void *ctx)
{
    return ctx ? ((const run_context *)ctx)->config : NULL;
}

/* An epoch no later than the run's last (config.json's "epochs", when known). */
static int within_run(double epoch, const void *ctx, const char *where, nb_error *err)
{
    double last = config_of(ctx) ? json_number(config_of(ctx), "epochs") : NAN;
    if (epoch > last)
        return nb_fail(err, "%s: epoch %.0f, but the run has %.0f (config.json's \"epochs\")",
                       where, epoch, last);
    return 0;
}

/* Whether the run diverged, as its summary says (0 while it has none). */
static int diverged(const cJSON *summary)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(summary, "diverged"));
}

/* ---- the learning rate: the schedule config.json describes ---- */

/* The schedule as train_schedule builds it from the options config.json records: 0; 1 when
 * config.json cannot say (a cosine run of a version that did not record its horizon,
 * "decay_epochs"); -1 when it is not a schedule nabla trains with (why says how; may be NULL). */
static int config_schedule(const cJSON *config, nb_schedule *s, nb_error *why)
{
    nb_decay_kind kind;
    const char *name = json_string(config, "lr_decay");
    double horizon = json_number(config, "decay_epochs");
    if (!name || nb_decay_parse(name, &kind) != 0 || (kind == NB_DECAY_COSINE && isnan(horizon)))
        return 1;
    *s = (nb_schedule){kind, (float)json_number(config, "lr"),
                       (float)json_number(config, "decay_rate"),
                       (int)json_number(config, "decay_interval"),
                       (int)json_number(config, "warmup_epochs"), isnan(horizon) ? 0 : (int)horizon};
    nb_error ignored;
    return nb_schedule_validate(s, why ? why : &ignored);
}

/* A float in the fewest digits that read back as it (as metrics.jsonl writes rates). */
static void float_text(float v, char *buf, size_t size)
{
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, size, "%.*g", digits, (double)v);
        if ((float)strtod(buf, NULL) == v)
            return;
    }
}

/* The rate on the row just read (column lr, in epoch column epoch, counted from 1) is the one
 * config.json's schedule gives that epoch: nb_lr_at, as training took it, to the precision of
 * a float (another machine's libm may round pow or cos differently in the last bit). A decay
 * may underflow to denormals and 0, hence the absolute floor. */
static int lr_check(const table *t, int lr, int epoch, const char *where, const void *ctx,
                    nb_error *err)
{
    nb_schedule s;
    if (!config_of(ctx) || config_schedule(config_of(ctx), &s, NULL) != 0)
        return 0;
    double have = NOW(t, lr), want = nb_lr_at(&s, (int)NOW(t, epoch) - 1);
    if (fabs(have - want) <= 1e-5 * fmax(fabs(have), fabs(want)) + FLT_MIN)
        return 0;
    char a[40], b[40];
    json_number_text(have, a, sizeof a);
    float_text((float)want, b, sizeof b);
    return nb_fail(err, "%s: \"lr\" is %s, but config.json's schedule (\"lr\" %g, \"lr_decay\" "
                        "\"%s\", \"warmup_epochs\" %d) gives epoch %.0f the rate %s", where, a,
                   (double)s.lr, nb_decay_name(s.kind), s.warmup_epochs, NOW(t, epoch), b);
}

/* ---- accuracies: a count of right answers out of the samples ---- */

/* The answers an accuracy counts per sample, from config.json's "task" (runs from before
 * tasks are classifiers): 1 class, one answer per label (multilabel: "classes" is the
 * labels), or 0: a regression run has no accuracy, and its accuracies are null. */
static double answers_per_sample(const run_context *run)
{
    const char *task = run && run->config ? json_string(run->config, "task") : NULL;
    if (task && strcmp(task, "regression") == 0)
        return 0;
    if (task && strcmp(task, "multilabel") == 0)
        return json_number(run->config, "classes");
    return 1;
}

/* An accuracy must be null exactly when the task has none (where it would be a number). */
static int accuracy_presence(double x, double per_sample, const char *where, const char *name,
                             nb_error *err)
{
    if (per_sample == 0 && !isnan(x))
        return nb_fail(err, "%s: \"%s\" is a number, but a regression run has no accuracy "
                            "(config.json's \"task\")", where, name);
    if (per_sample != 0 && isnan(x))
        return nb_fail(err, "%s: \"%s\" must be a number", where, name);
    return 0;
}

/* Whether accuracy x is k/n for a whole k, as nabla writes it: a double to 15 significant
 * digits or more (cJSON's), so within a rounding of k/n; any digit beyond that is not k/n. */
static int count_of(double x, double n)
{
    return fabs(x * n - round(x * n)) <= 1e-12 * n;
}

/* "where: "name" is x, but ...": x is not a count out of n. */
static int not_count_of(const char *where, const char *name, double x, double n,
                        const char *samples, nb_error *err)
{
    char a[40];
    json_number_text(x, a, sizeof a);
    return nb_fail(err, "%s: \"%s\" is %s, but it was evaluated on %.0f samples (%s): no count "
                        "out of %.0f is %s", where, name, a, n, samples, n, a);
}

/* The dev or test split's loss and accuracy on the row just read: numbers exactly when
 * config.json gives the split samples; the loss null only in a run that diverged or has not
 * finished (weights grown huge overflow it before the training loss turns NaN). */
static int split_columns(const table *t, const table_column *cols, int loss, int accuracy,
                         const char *split, const char *where, const void *ctx, nb_error *err)
{
    const run_context *run = ctx;
    char samples[32];
    snprintf(samples, sizeof samples, "%s_samples", split);
    double n = run && run->config ? json_number(run->config, samples) : NAN;
    if (isnan(n))
        return 0;
    if (n == 0) {
        for (int c = loss; c <= accuracy; c += accuracy - loss)
            if (!isnan(NOW(t, c)))
                return nb_fail(err, "%s: \"%s\" is a number, but config.json's \"%s\" is 0 (the "
                                    "run has no %s split)", where, cols[c].name, samples, split);
        return 0;
    }
    double per_sample = answers_per_sample(run);
    if (isnan(NOW(t, accuracy)) && per_sample != 0)
        return nb_fail(err, "%s: \"%s\" is null, but the %s split has %.0f samples "
                            "(config.json's \"%s\")", where, cols[accuracy].name, split, n,
                       samples);
    if (accuracy_presence(NOW(t, accuracy), per_sample, where, cols[accuracy].name, err) != 0)
        return -1;
    if (isnan(NOW(t, loss)) && run->summary && !diverged(run->summary))
        return nb_fail(err, "%s: \"%s\" is null, but the %s split has %.0f samples and the run "
                            "did not diverge (summary.json)", where, cols[loss].name, split, n);
    /* The whole split, summed over the ranks' shares under mpirun too (evaluate.c). */
    char said[64];
    snprintf(said, sizeof said, "config.json's \"%s\"", samples);
    if (per_sample > 0 && !count_of(NOW(t, accuracy), n * per_sample))
        return not_count_of(where, cols[accuracy].name, NOW(t, accuracy), n * per_sample, said,
                            err);
    return 0;
}

/* "path:N" for the line before the one at where ("path:N+1"). */
static void line_before(const char *where, char *out, size_t size)
{
    const char *colon = strrchr(where, ':');
    snprintf(out, size, "%.*s:%d", colon ? (int)(colon - where) : (int)strlen(where), where,
             colon ? atoi(colon + 1) - 1 : 0);
}

/* The samples epoch (from 1) trained on, when known: every epoch but the run's last is the
 * whole training set (a resumed epoch keeps the counts of its first part); the last one, cut
 * short by --max-steps or a divergence, is what summary.json's samples leave for it. NaN
 * when not known (the last epoch of a run without summary.json yet). */
static double epoch_samples(const run_context *run, double epoch, int last)
{
    double n = json_number(run->config, "train_samples");
    if (!last)
        return n;
    double samples = run->summary ? json_number(run->summary, "samples") : NAN;
    double rest = samples - (epoch - 1) * n;
    if (!run->summary || json_number(run->summary, "epochs") != epoch || !(rest >= 1 && rest <= n))
        return NAN;   /* not the summary's last epoch, or its samples are wrong: checked there */
    return rest;
}

/* The training accuracy of metrics.jsonl's row (an epoch's correct answers over the samples it
 * trained on, summed over the ranks under mpirun). */
static int train_accuracy_check(const table *t, int row, int last, const char *where,
                                const run_context *run, nb_error *err)
{
    double epoch = t->col[M_EPOCH][row], x = t->col[M_TRAIN_ACC][row];
    double per_sample = answers_per_sample(run);
    if (accuracy_presence(x, per_sample, where, "train_accuracy", err) != 0)
        return -1;
    double n = epoch_samples(run, epoch, last) * per_sample;
    if (isnan(n) || per_sample == 0 || count_of(x, n))
        return 0;
    char said[96];
    if (n == json_number(run->config, "train_samples"))
        snprintf(said, sizeof said, "config.json's \"train_samples\", a whole epoch");
    else
        snprintf(said, sizeof said, "the last epoch's part of summary.json's \"samples\"");
    return not_count_of(where, "train_accuracy", x, n, said, err);
}

/* Epochs 1, 2, 3, ...: one line each, none repeated, skipped or going backwards. */
static int metrics_row(const table *t, const char *where, const void *ctx, nb_error *err)
{
    double epoch = NOW(t, M_EPOCH);
    if (t->n == 1 && epoch != 1)
        return nb_fail(err, "%s: epoch %.0f on the first line; epochs count from 1", where,
                       epoch);
    if (t->n > 1 && epoch != BEFORE(t, M_EPOCH) + 1) {
        double before = BEFORE(t, M_EPOCH);
        return nb_fail(err, "%s: epoch %.0f after epoch %.0f (%s)", where, epoch, before,
                       epoch == before  ? "a repeated epoch"
                       : epoch < before ? "epochs go backwards"
                                        : "an epoch is missing");
    }
    /* The row before this one was a whole epoch; this one, when summary.json says it is the
     * run's last, may have been cut short. */
    const run_context *run = ctx;
    char before[4200];
    line_before(where, before, sizeof before);
    int known = run && run->config, last = known && run->summary &&
                                           epoch == json_number(run->summary, "epochs");
    if ((known && accuracy_presence(NOW(t, M_TRAIN_ACC), answers_per_sample(run), where,
                                    "train_accuracy", err) != 0) ||
        within_run(epoch, ctx, where, err) != 0 ||
        lr_check(t, M_LR, M_EPOCH, where, ctx, err) != 0 ||
        (known && t->n > 1 && train_accuracy_check(t, t->n - 2, 0, before, run, err) != 0) ||
        (last && train_accuracy_check(t, t->n - 1, 1, where, run, err) != 0) ||
        split_columns(t, METRICS_COLUMNS, M_DEV_LOSS, M_DEV_ACC, "dev", where, ctx, err) != 0)
        return -1;
    return split_columns(t, METRICS_COLUMNS, M_TEST_LOSS, M_TEST_ACC, "test", where, ctx, err);
}

/* Steps that increase, in epochs that do not go backwards. */
static int step_order(const table *t, int step, int epoch, const char *where, const void *ctx,
                      nb_error *err)
{
    if (t->n > 1 && !(NOW(t, step) > BEFORE(t, step)))
        return nb_fail(err, "%s: step %.0f after step %.0f (steps must increase)", where,
                       NOW(t, step), BEFORE(t, step));
    if (t->n > 1 && NOW(t, epoch) < BEFORE(t, epoch))
        return nb_fail(err, "%s: epoch %.0f after epoch %.0f (epochs go backwards)", where,
                       NOW(t, epoch), BEFORE(t, epoch));
    return within_run(NOW(t, epoch), ctx, where, err);
}

static int steps_row(const table *t, const char *where, const void *ctx, nb_error *err)
{
    if (step_order(t, S_STEP, S_EPOCH, where, ctx, err) != 0 ||
        lr_check(t, S_LR, S_EPOCH, where, ctx, err) != 0 ||
        split_columns(t, STEPS_COLUMNS, S_DEV_LOSS, S_DEV_ACC, "dev", where, ctx, err) != 0)
        return -1;
    return split_columns(t, STEPS_COLUMNS, S_TEST_LOSS, S_TEST_ACC, "test", where, ctx, err);
}

/* p15 <= p50 <= p85, where both are known. */
static int percentiles_in_order(const table *t, int p15, const char *where, nb_error *err)
{
    for (int c = p15; c < p15 + 2; c++) {
        double lo = NOW(t, c), hi = NOW(t, c + 1);
        if (lo > hi)
            return nb_fail(err, "%s: \"%s\" %g is above \"%s\" %g (percentiles out of order)",
                           where, TRACE_COLUMNS[c].name, lo, TRACE_COLUMNS[c + 1].name, hi);
    }
    return 0;
}

/* One layer and unit for the whole run, steps in order, percentiles in order. */
static int trace_row(const table *t, const char *where, const void *ctx, nb_error *err)
{
    if (t->n > 1)
        for (int c = T_LAYER; c <= T_UNIT; c++)
            if (NOW(t, c) != t->col[c][0])
                return nb_fail(err, "%s: %s %.0f, but line 1 traces %s %.0f", where,
                               TRACE_COLUMNS[c].name, NOW(t, c), TRACE_COLUMNS[c].name,
                               t->col[c][0]);
    if (step_order(t, T_STEP, T_EPOCH, where, ctx, err) != 0 ||
        percentiles_in_order(t, T_UNIT_P15, where, err) != 0)
        return -1;
    return percentiles_in_order(t, T_LAYER_P15, where, err);
}

const table_spec METRICS_TABLE = {METRICS_COLUMNS, M_COLS, metrics_row};
const table_spec STEPS_TABLE = {STEPS_COLUMNS, S_COLS, steps_row};
const table_spec TRACE_TABLE = {TRACE_COLUMNS, T_COLS, trace_row};

/* ---- the strings nabla writes ---- */

static int is_train(const char *s) { return strcmp(s, "train") == 0; }
static int is_model_file(const char *s) { return strcmp(s, "model.safetensors") == 0; }
static int is_normalize(const char *s)
{
    return strcmp(s, "none") == 0 || strcmp(s, "standard") == 0;
}
static int is_task(const char *s)
{
    nb_task t;
    return nb_task_parse(s, &t) == 0;
}
static int is_loss(const char *s)
{
    nb_loss l;
    return nb_loss_parse(s, &l) == 0;
}
/* The CSV flags' values as config.json names them (options.c's data_*_name). */
static int is_header(const char *s)
{
    for (int h = 0; h <= 2; h++)
        if (strcmp(s, data_header_name(h)) == 0)
            return 1;
    return 0;
}
static int is_delimiter(const char *s)
{
    static const char delimiters[] = {0, ',', ';', '\t'};
    for (size_t i = 0; i < sizeof delimiters; i++)
        if (strcmp(s, data_delimiter_name(delimiters[i])) == 0)
            return 1;
    return 0;
}
static int is_missing(const char *s)
{
    for (int m = 0; m < NB_MISSING_KINDS; m++)
        if (strcmp(s, data_missing_name((nb_missing)m)) == 0)
            return 1;
    return 0;
}
static int is_data_kind(const char *s)
{
    for (data_kind k = DATA_IDX; k <= DATA_SYNTHETIC; k++)
        if (strcmp(s, data_kind_name(k)) == 0)
            return 1;
    return 0;
}
/* A name as the library writes it (its parser may take other spellings too). */
static int is_activation(const char *s)
{
    nb_activation a;
    return nb_activation_parse(s, &a) == 0 && strcmp(nb_activation_name(a), s) == 0;
}
/* A model's text as the library writes it: canonical. */
static int is_model_text(const char *s)
{
    nb_layers layers;
    char text[NB_LAYERS_TEXT_MAX];
    return nb_layers_parse(s, &layers, NULL) == 0 &&
           nb_layers_format(&layers, text, sizeof text) >= 0 && strcmp(text, s) == 0;
}
static int is_shape(const char *s)
{
    nb_shape shape;
    char text[48];
    return nb_shape_parse(s, &shape) == 0 && nb_shape_format(shape, text, sizeof text) > 0 &&
           strcmp(text, s) == 0;
}
static int is_optimizer(const char *s)
{
    nb_optimizer_kind k;
    return nb_optimizer_parse(s, &k) == 0 && strcmp(nb_optimizer_name(k), s) == 0;
}
static int is_monitor(const char *s)
{
    nb_metric m;
    return nb_metric_parse(s, &m) == 0;
}

static int is_decay(const char *s)
{
    nb_decay_kind k;
    return nb_decay_parse(s, &k) == 0 && strcmp(nb_decay_name(k), s) == 0;
}

/* ---- config.json ---- */

/* As train_write_config writes them; the option parsers set the ranges. Required: what every
 * version of nabla has written (the others came later: data_header, test_header,
 * sync_batchnorm, decay_epochs, ranks, blas_kernel, checkpoint_every, resumed_from, the trace
 * and evaluation settings, and how CSV files are read: target ... test_fraction). The model is "model" and "input_shape", or, before models had
 * a text form, "layers", "activation", "leaky_slope" and "batchnorm" (written since for
 * --layers widths too): run_check_config_spec needs one or the other. */
static const member_rule CONFIG_MEMBERS[] = {
    {"command", MT_STRING, 0, 0, NULL, 1, is_train},
    {"version", MT_STRING, 0, 0, NULL, 1, NULL},
    {"data", MT_STRING, 0, 0, NULL, 1, NULL},
    {"data_path", MT_STRING, 0, 0, NULL, 1, NULL},
    {"data_kind", MT_STRING, 0, 0, NULL, 1, is_data_kind},
    {"test", MT_STRING, 0, 1, NULL, 1, NULL},
    {"data_header", MT_BOOL, 0, 1, NULL, 0, NULL},
    {"test_header", MT_BOOL, 0, 1, NULL, 0, NULL},
    {"features", MT_NUMBER, V_INT_1, 0, NULL, 1, NULL},
    {"classes", MT_NUMBER, V_INT_1, 0, NULL, 1, NULL},
    {"train_samples", MT_NUMBER, V_INT_1, 0, NULL, 1, NULL},
    {"dev_samples", MT_NUMBER, V_INT, 0, NULL, 1, NULL},
    {"test_samples", MT_NUMBER, V_INT, 0, NULL, 1, NULL},
    {"samples", MT_NUMBER, V_INT_1, 1, NULL, 1, NULL},
    {"noise", MT_NUMBER, V_NON_NEG, 1, NULL, 1, NULL},
    {"dev_fraction", MT_NUMBER, V_FRACTION, 0, NULL, 1, NULL},
    {"normalize", MT_STRING, 0, 0, NULL, 1, is_normalize},
    {"task", MT_STRING, 0, 0, NULL, 0, is_task},
    {"loss", MT_STRING, 0, 0, NULL, 0, is_loss},
    {"target", MT_STRING, 0, 1, NULL, 0, NULL},
    {"header", MT_STRING, 0, 0, NULL, 0, is_header},
    {"delimiter", MT_STRING, 0, 0, NULL, 0, is_delimiter},
    {"missing", MT_STRING, 0, 0, NULL, 0, is_missing},
    {"allow_many_classes", MT_BOOL, 0, 0, NULL, 0, NULL},
    {"test_fraction", MT_NUMBER, V_FRACTION, 0, NULL, 0, NULL},
    {"model", MT_STRING, 0, 0, NULL, 0, is_model_text},
    {"input_shape", MT_STRING, 0, 0, NULL, 0, is_shape},
    {"layers", MT_NUMBERS, V_INT_1, 0, NULL, 0, NULL},
    {"activation", MT_STRING, 0, 0, NULL, 0, is_activation},
    {"leaky_slope", MT_NUMBER, V_FINITE, 0, NULL, 0, NULL},
    {"batchnorm", MT_BOOL, 0, 0, NULL, 0, NULL},
    {"sync_batchnorm", MT_BOOL, 0, 0, NULL, 0, NULL},
    {"parameters", MT_NUMBER, V_COUNT_1, 0, NULL, 1, NULL},
    {"init_weights", MT_STRING, 0, 1, NULL, 1, NULL},
    {"optimizer", MT_STRING, 0, 0, NULL, 1, is_optimizer},
    {"lr", MT_NUMBER, V_POSITIVE, 0, NULL, 1, NULL},
    {"beta", MT_NUMBER, V_FRACTION, 0, NULL, 1, NULL},
    {"beta2", MT_NUMBER, V_FRACTION, 0, NULL, 1, NULL},
    {"eps", MT_NUMBER, V_POSITIVE, 0, NULL, 1, NULL},
    {"weight_decay", MT_NUMBER, V_NON_NEG, 0, NULL, 1, NULL},
    {"bias_correction", MT_BOOL, 0, 0, NULL, 1, NULL},
    {"batch_size", MT_NUMBER, V_INT_1, 0, "full", 1, NULL},
    {"epochs", MT_NUMBER, V_INT, 0, NULL, 1, NULL},
    {"max_steps", MT_NUMBER, V_COUNT_1, 1, NULL, 1, NULL},
    {"shuffle", MT_BOOL, 0, 0, NULL, 1, NULL},
    {"lr_decay", MT_STRING, 0, 0, NULL, 1, is_decay},
    {"decay_rate", MT_NUMBER, V_NON_NEG, 0, NULL, 1, NULL},
    {"decay_interval", MT_NUMBER, V_INT_1, 0, NULL, 1, NULL},
    {"warmup_epochs", MT_NUMBER, V_INT, 0, NULL, 1, NULL},
    {"decay_epochs", MT_NUMBER, V_INT_1, 1, NULL, 0, NULL},
    {"threads", MT_NUMBER, V_INT_1, 0, NULL, 1, NULL},
    {"ranks", MT_NUMBER, V_INT_1, 0, NULL, 0, NULL},
    {"blas_kernel", MT_STRING, 0, 0, NULL, 0, NULL},
    {"out", MT_STRING, 0, 0, NULL, 1, NULL},
    {"checkpoint_every", MT_NUMBER, V_COUNT_1, 0, "epoch", 0, NULL},
    {"resumed_from", MT_STRING, 0, 1, NULL, 0, NULL},
    {"save_weights", MT_STRING, 0, 1, NULL, 1, NULL},
    {"trace_activations", MT_BOOL, 0, 0, NULL, 0, NULL},
    {"trace_layer", MT_NUMBER, V_INT_1, 1, NULL, 0, NULL},
    {"trace_unit", MT_NUMBER, V_INT, 1, NULL, 0, NULL},
    {"trace_every", MT_NUMBER, V_COUNT_1, 1, NULL, 0, NULL},
    {"eval_every", MT_NUMBER, V_COUNT_1, 1, NULL, 0, NULL},
    {"early_stop", MT_NUMBER, V_INT_1, 1, NULL, 0, NULL},
    {"monitor", MT_STRING, 0, 1, NULL, 0, is_monitor},
    {"min_delta", MT_NUMBER, V_NON_NEG, 1, NULL, 0, NULL},
};

/* config.json's seed: a whole number, or for seeds beyond 2^53 their digits as a string. */
static int seed_check(const cJSON *config, const char *text, const char *path, nb_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, "seed");
    if (!v)
        return nb_fail(err, "%s: \"seed\" is missing", path);
    char where[4200];
    json_member_where(text, path, "seed", where, sizeof where);
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (s[0] && strspn(s, "0123456789") == strlen(s))
            return 0;
        return nb_fail(err, "%s: \"seed\" must be a whole number", where);
    }
    if (!cJSON_IsNumber(v))
        return nb_fail(err, "%s: \"seed\" must be a whole number", where);
    return value_check(v->valuedouble, V_COUNT, 0, where, "seed", err);
}

int run_check_config_spec(const cJSON *config, const char *text, const char *path,
                          nb_model_spec *spec, nb_error *err)
{
    double features = json_number(config, "features"), classes = json_number(config, "classes");
    const char *model = json_string(config, "model"), *input = json_string(config, "input_shape");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(config, "layers");
    nb_error why;
    nb_model_spec legacy;
    int have_legacy = 0;
    if (layers) {
        nb_mlp mlp;
        memset(&mlp, 0, sizeof mlp);
        const char *activation = json_string(config, "activation");
        double slope = json_number(config, "leaky_slope");
        if (!activation || isnan(slope) ||
            !cJSON_GetObjectItemCaseSensitive(config, "batchnorm"))
            return json_member_fail(text, path, "layers", err, "\"layers\" needs \"activation\", "
                                    "\"leaky_slope\" and \"batchnorm\"");
        if (cJSON_GetArraySize(layers) > NB_MAX_LAYERS)
            return json_member_fail(text, path, "layers", err, "\"layers\" has more than %d "
                                    "hidden layers", NB_MAX_LAYERS);
        mlp.inputs = (int)features;
        mlp.classes = (int)classes;
        for (const cJSON *w = layers->child; w; w = w->next)
            mlp.hidden[mlp.n_hidden++] = (int)w->valuedouble;
        nb_activation_parse(activation, &mlp.activation);
        mlp.leaky_slope = (float)slope;
        mlp.batchnorm = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(config, "batchnorm"));
        if (nb_model_spec_mlp(&legacy, &mlp, &why) != 0)
            return json_member_fail(text, path, "layers", err, "\"layers\": %s", why.msg);
        have_legacy = 1;
    }
    if (!model) {
        if (!have_legacy)
            return nb_fail(err, "%s: \"model\" is missing", path);
        *spec = legacy;
        return 0;
    }
    nb_shape shape;
    if (!input || nb_shape_parse(input, &shape) != 0)
        return nb_fail(err, "%s: \"input_shape\" is missing", path);
    if ((double)nb_shape_numel(shape) != features)
        return json_member_fail(text, path, "input_shape", err, "\"input_shape\" %s has %lld "
                                "features, but \"features\" is %.0f", input,
                                (long long)nb_shape_numel(shape), features);
    if (nb_model_spec_parse(spec, model, shape, (int)classes, &why) != 0)
        return json_member_fail(text, path, "model", err, "\"model\": %s", why.msg);
    if (have_legacy) {
        char a[NB_LAYERS_TEXT_MAX], b[NB_LAYERS_TEXT_MAX];
        nb_layers_format(&spec->layers, a, sizeof a);
        nb_layers_format(&legacy.layers, b, sizeof b);
        if (strcmp(a, b) != 0 || shape.ndim != 1)
            return json_member_fail(text, path, "model", err, "\"model\" is %s, but \"layers\", "
                                    "\"activation\" and \"batchnorm\" make %s", a, b);
    }
    return 0;
}

/* The trainable parameters of a model: weights, biases, and the norms' weights and biases. */
static double parameter_count(const nb_model_spec *spec)
{
    nb_layer_param params[NB_LAYERS_MAX * NB_LAYER_PARAMS_MAX];
    int count;
    if (nb_layers_params(&spec->layers, spec->input, spec->classes, params,
                         NB_LAYERS_MAX * NB_LAYER_PARAMS_MAX, &count, NULL) != 0)
        return NAN;
    double total = 0;
    for (int i = 0; i < count; i++)
        if (params[i].kind == NB_KIND_PARAM)
            total += (double)nb_layer_param_numel(&params[i]);
    return total;
}

/* A synthetic set (moons, circles, spirals): its features and classes are the set's own, and
 * its samples are split between training and dev. */
static int synthetic_check(const cJSON *config, const char *text, const char *path,
                           nb_error *err)
{
    const char *name = json_string(config, "data_path");
    if (!nb_is_synthetic(name))
        return json_member_fail(text, path, "data_path", err, "\"data_path\" is \"%.80s\", but "
                                "\"data_kind\" is \"synthetic\" (moons, circles or spirals)", name);
    nb_dataset d;
    nb_error why;
    if (nb_make_synthetic(name, 3, 0.0f, 0, &d, &why) != 0)
        return nb_fail(err, "%s", why.msg);
    double features = d.features, classes = d.classes;
    nb_dataset_free(&d);
    const char *counts[2] = {"features", "classes"};
    double want[2] = {features, classes};
    for (int k = 0; k < 2; k++)
        if (json_number(config, counts[k]) != want[k])
            return json_member_fail(text, path, counts[k], err, "\"%s\" is %.0f, but %s has %.0f",
                                    counts[k], json_number(config, counts[k]), name, want[k]);
    double samples = json_number(config, "samples");
    double split = json_number(config, "train_samples") + json_number(config, "dev_samples");
    if (samples != split)
        return json_member_fail(text, path, "samples", err, "\"samples\" is %s, but "
                                "\"train_samples\" and \"dev_samples\" make %.0f",
                                isnan(samples) ? "null" : "not their sum", split);
    return 0;
}

/* The traced unit, when the run traces one, is in the model: an activation layer and a unit of
 * its input. */
static int trace_check(const cJSON *config, const nb_model_spec *spec, const char *text,
                       const char *path, nb_error *err)
{
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(config, "trace_activations")))
        return 0;
    double layer = json_number(config, "trace_layer"), unit = json_number(config, "trace_unit");
    nb_shape shapes[NB_LAYERS_MAX + 1];
    if (nb_layers_shapes(&spec->layers, spec->input, spec->classes, shapes, err) != 0)
        return -1;
    int depth = nb_layers_activations(&spec->layers);
    if (!(layer >= 1 && layer <= depth))
        return json_member_fail(text, path, "trace_layer", err, "\"trace_layer\" must be an "
                                "activation layer, 1 to %d, when \"trace_activations\" is true",
                                depth);
    double width = (double)nb_shape_numel(shapes[nb_layers_activation_at(&spec->layers,
                                                                         (int)layer)]);
    if (!(unit >= 0 && unit < width))
        return json_member_fail(text, path, "trace_unit", err, "\"trace_unit\" must be a unit of "
                                "layer %.0f, 0 to %.0f", layer, width - 1);
    return 0;
}

int run_check_config(const cJSON *config, const char *text, const char *path, nb_error *err)
{
    if (json_members_check(config, text, path, CONFIG_MEMBERS, N_OF(CONFIG_MEMBERS), err) != 0 ||
        seed_check(config, text, path, err) != 0)
        return -1;
    /* A dev split is held out exactly when a fraction is asked for (at least one sample). */
    double fraction = json_number(config, "dev_fraction"), dev = json_number(config, "dev_samples");
    if ((fraction > 0 && dev == 0) || (fraction == 0 && dev > 0))
        return json_member_fail(text, path, "dev_samples", err, "\"dev_samples\" is %.0f, but "
                                "\"dev_fraction\" is %g", dev, fraction);
    const char *kind = json_string(config, "data_kind");
    if (strcmp(kind, "synthetic") == 0 && synthetic_check(config, text, path, err) != 0)
        return -1;
    nb_model_spec spec;
    if (run_check_config_spec(config, text, path, &spec, err) != 0)
        return -1;
    nb_schedule schedule;
    nb_error why;
    if (config_schedule(config, &schedule, &why) < 0)
        return json_member_fail(text, path, "lr_decay", err, "\"lr_decay\" \"%s\" is not a "
                                "schedule nabla trains with: %s", nb_decay_name(schedule.kind),
                                why.msg);
    double parameters = json_number(config, "parameters"), made = parameter_count(&spec);
    if (parameters != made)
        return json_member_fail(text, path, "parameters", err,
                                "\"parameters\" is %.0f, but a model "
                                "of these features, layers and classes has %.0f", parameters, made);
    return trace_check(config, &spec, text, path, err);
}

/* ---- summary.json ---- */

/* As train_write_summary writes them; ranks and the all-reduce figures came with mpirun. */
static const member_rule SUMMARY_MEMBERS[] = {
    {"test_loss", MT_NUMBER, V_NON_NEG, 1, NULL, 1, NULL},
    {"test_accuracy", MT_NUMBER, V_UNIT, 1, NULL, 1, NULL},
    {"test_samples", MT_NUMBER, V_INT, 0, NULL, 1, NULL},
    {"dev_loss", MT_NUMBER, V_NON_NEG, 1, NULL, 1, NULL},
    {"dev_accuracy", MT_NUMBER, V_UNIT, 1, NULL, 1, NULL},
    {"dev_samples", MT_NUMBER, V_INT, 0, NULL, 1, NULL},
    {"train_loss", MT_NUMBER, V_NON_NEG, 1, NULL, 1, NULL},
    {"train_accuracy", MT_NUMBER, V_UNIT, 1, NULL, 1, NULL},
    {"epochs", MT_NUMBER, V_INT, 0, NULL, 1, NULL},
    {"steps", MT_NUMBER, V_COUNT, 0, NULL, 1, NULL},
    {"samples", MT_NUMBER, V_COUNT, 0, NULL, 1, NULL},
    {"train_seconds", MT_NUMBER, V_NON_NEG, 0, NULL, 1, NULL},
    {"samples_per_second", MT_NUMBER, V_NON_NEG, 1, NULL, 1, NULL},
    {"ranks", MT_NUMBER, V_INT_1, 0, NULL, 0, NULL},
    {"allreduce_seconds", MT_NUMBER, V_NON_NEG, 0, NULL, 0, NULL},
    {"allreduce_calls", MT_NUMBER, V_COUNT, 0, NULL, 0, NULL},
    {"diverged", MT_BOOL, 0, 0, NULL, 1, NULL},
    {"diverged_epoch", MT_NUMBER, V_INT_1, 1, NULL, 1, NULL},
    {"diverged_step", MT_NUMBER, V_COUNT_1, 1, NULL, 1, NULL},
    {"monitor", MT_STRING, 0, 1, NULL, 0, is_monitor},
    {"best_epoch", MT_NUMBER, V_INT_1, 1, NULL, 0, NULL},
    {"best_value", MT_NUMBER, V_FINITE, 1, NULL, 0, NULL},
    {"stopped_early", MT_BOOL, 0, 0, NULL, 0, NULL},
    {"model", MT_STRING, 0, 0, NULL, 1, is_model_file},
};

/* A split's accuracy is null exactly when it has no samples (or the run is a regression run,
 * whose summary has the split's rmse instead), and so is its loss, except that a loss that
 * overflowed (weights grown huge before a divergence) is null too. */
static int split_check(const cJSON *summary, const char *text, const char *path,
                       const char *split, nb_error *err)
{
    char samples[32], name[32], where[4200];
    snprintf(samples, sizeof samples, "%s_samples", split);
    double n = json_number(summary, samples);
    /* A regression model has no accuracy (its summary has the split's RMSE instead): null. */
    snprintf(name, sizeof name, "%s_rmse", split);
    int regression = cJSON_GetObjectItemCaseSensitive(summary, name) != NULL;
    for (int k = 0; k < 2; k++) {
        int accuracy = k == 1;
        snprintf(name, sizeof name, "%s_%s", split, accuracy ? "accuracy" : "loss");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(summary, name);
        if (!v || isnan(n) || cJSON_IsNull(v) == (n == 0 || (accuracy && regression)) ||
            (!accuracy && cJSON_IsNull(v)))
            continue;
        json_member_where(text, path, name, where, sizeof where);
        if (accuracy && regression)
            return nb_fail(err, "%s: \"%s\" is a number, but a regression model has no "
                                "accuracy", where, name);
        return nb_fail(err, "%s: \"%s\" is %s, but \"%s\" is %.0f", where, name,
                       cJSON_IsNull(v) ? "null" : "a number", samples, n);
    }
    return 0;
}

/* A count in summary.json that must be the same in config.json. */
static int same_as_config(const cJSON *summary, const char *text, const char *path,
                          const cJSON *config, const char *name, nb_error *err)
{
    double here = json_number(summary, name), there = json_number(config, name);
    if (isnan(here) || isnan(there) || here == there)
        return 0;
    char where[4200];
    json_member_where(text, path, name, where, sizeof where);
    return nb_fail(err, "%s: \"%s\" is %.0f, but config.json's is %.0f", where, name, here,
                   there);
}

/* The summary's figure `name` and that of metrics.jsonl's row `row` (column col): the same
 * evaluation of the same weights. Under one process they are equal; under mpirun the epoch's
 * evaluation was summed over the ranks' shares and the summary's made whole on rank 0, so
 * losses may differ in rounding (the floats of other batches), and an accuracy by a sample per
 * rank beyond the first (a sample whose two best classes tie within that rounding). */
static int same_as_epoch(const cJSON *summary, const char *text, const char *path,
                         const table *metrics, int row, const char *name, int col, int accuracy,
                         double samples, nb_error *err)
{
    if (!cJSON_GetObjectItemCaseSensitive(summary, name))
        return 0;
    double here = json_number(summary, name), there = metrics->col[col][row];
    double ranks = json_number(summary, "ranks");
    int same;
    if (isnan(here) || isnan(there))
        same = isnan(here) && isnan(there);
    else if (accuracy)
        same = here == there || (ranks > 1 && fabs(here - there) * samples <= ranks - 1 + 1e-9);
    else
        same = fabs(here - there) <= 1e-5 * fmax(fabs(here), fabs(there));
    if (same)
        return 0;
    char where[4200], a[40], b[40];
    json_member_where(text, path, name, where, sizeof where);
    json_number_text(here, a, sizeof a);
    json_number_text(there, b, sizeof b);
    return nb_fail(err, "%s: \"%s\" is %s, but metrics.jsonl's %s epoch (%d) has %s: the "
                        "summary evaluates the weights that epoch ended with", where, name, a,
                   row == metrics->n - 1 ? "last" : "best", (int)metrics->col[M_EPOCH][row], b);
}

/* "best_epoch" (early stopping): an epoch of metrics.jsonl, and the row whose weights the
 * summary evaluates for dev and test (else -1). Its "best_value" is that row's dev metric
 * watched, where metrics.jsonl has it; "stopped_early" only for a run that had epochs left. */
static int best_epoch_check(const cJSON *summary, const char *text, const char *path,
                            const cJSON *config, const table *metrics, int *row, nb_error *err)
{
    *row = -1;
    double best = json_number(summary, "best_epoch"), epochs = json_number(summary, "epochs");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(summary, "stopped_early")) && config &&
        !(epochs < json_number(config, "epochs")))
        return json_member_fail(text, path, "stopped_early", err, "\"stopped_early\" is true, "
                                "but the run trained its %.0f epochs", epochs);
    if (isnan(best))
        return 0;
    for (int i = 0; i < metrics->n; i++)
        if (metrics->col[M_EPOCH][i] == best)
            *row = i;
    if (*row < 0)
        return json_member_fail(text, path, "best_epoch", err, "\"best_epoch\" is %.0f, an "
                                "epoch metrics.jsonl does not have", best);
    const char *monitor = json_string(summary, "monitor");
    double value = json_number(summary, "best_value");
    int col = monitor && strcmp(monitor, "loss") == 0       ? M_DEV_LOSS
              : monitor && strcmp(monitor, "accuracy") == 0 ? M_DEV_ACC
                                                           : -1;
    if (col >= 0 && !isnan(value) && value != metrics->col[col][*row]) {
        char a[40], b[40];
        json_number_text(value, a, sizeof a);
        json_number_text(metrics->col[col][*row], b, sizeof b);
        return json_member_fail(text, path, "best_value", err, "\"best_value\" is %s, but "
                                "metrics.jsonl's epoch %.0f has dev %s %s", a, best, monitor, b);
    }
    return 0;
}

/* The training, dev and test figures of the summary are the last epoch's (but see below);
 * with early stopping, the dev and test figures are the best epoch's (row best, or -1). */
static int figures_check(const cJSON *summary, const char *text, const char *path,
                         const table *metrics, int best, nb_error *err)
{
    static const struct {
        const char *name;
        int col, accuracy;
        const char *samples;
    } figures[] = {
        {"train_loss", M_TRAIN_LOSS, 0, NULL},
        {"train_accuracy", M_TRAIN_ACC, 1, NULL},
        {"dev_loss", M_DEV_LOSS, 0, "dev_samples"},
        {"dev_accuracy", M_DEV_ACC, 1, "dev_samples"},
        {"test_loss", M_TEST_LOSS, 0, "test_samples"},
        {"test_accuracy", M_TEST_ACC, 1, "test_samples"},
    };
    if (metrics->n == 0) {
        /* No epoch finished (a NaN in the very first batch): no training figures. */
        for (int k = 0; k < 2; k++)
            if (!isnan(json_number(summary, figures[k].name))) {
                char where[4200];
                json_member_where(text, path, figures[k].name, where, sizeof where);
                return nb_fail(err, "%s: \"%s\" is a number, but metrics.jsonl has no epoch",
                               where, figures[k].name);
            }
        return 0;
    }
    /* A run whose loss turned NaN at the first step of an epoch keeps the weights before the
     * step that made it (the last that gave a finite loss): not the ones the last epoch, which
     * ended on that step, was evaluated with. Its training figures are still that epoch's. */
    int before_last_step = diverged(summary) && json_number(summary, "epochs") ==
                                                    json_number(summary, "diverged_epoch") - 1;
    size_t n_figures = before_last_step ? 2 : sizeof figures / sizeof figures[0];
    if (best >= 0)
        n_figures = sizeof figures / sizeof figures[0];
    for (size_t k = 0; k < n_figures; k++)
        if (same_as_epoch(summary, text, path, metrics,
                          best >= 0 && k >= 2 ? best : metrics->n - 1, figures[k].name,
                          figures[k].col, figures[k].accuracy,
                          figures[k].samples ? json_number(summary, figures[k].samples) : 0,
                          err) != 0)
            return -1;
    return 0;
}

/* "diverged": where it diverged is told exactly when it did, and the last epoch is the
 * diverging one (its steps before the NaN), or the one before when the first step of an
 * epoch diverged. */
static int divergence_check(const cJSON *summary, const char *text, const char *path,
                            nb_error *err)
{
    int yes = diverged(summary);
    const char *names[2] = {"diverged_epoch", "diverged_step"};
    for (int k = 0; k < 2; k++) {
        double v = json_number(summary, names[k]);
        if (isnan(v) == !yes)
            continue;
        char where[4200];
        json_member_where(text, path, names[k], where, sizeof where);
        return nb_fail(err, "%s: \"%s\" is %s, but \"diverged\" is %s", where, names[k],
                       yes ? "null" : "a number", yes ? "true" : "false");
    }
    double epoch = json_number(summary, "diverged_epoch"), epochs = json_number(summary, "epochs");
    if (yes && !isnan(epochs) && epochs != epoch && epochs != epoch - 1) {
        char where[4200];
        json_member_where(text, path, "epochs", where, sizeof where);
        return nb_fail(err, "%s: \"epochs\" is %.0f, but the run diverged in epoch %.0f", where,
                       epochs, epoch);
    }
    return 0;
}

/* Steps and samples as nb_train counts them (src/train/train.c): an epoch is ceil(n / B) steps of B
 * samples, its last step the remainder (B the batch size, the whole set when "full" or larger;
 * n the training samples); only steps that gave a finite loss count; resuming restores the
 * counts. So the samples follow from the steps, and the steps from the epochs: all of each
 * epoch's, except in the last one of a run that diverged (its steps before diverged_step) or
 * that --max-steps stopped (then steps is max_steps, within the last epoch). */
static int counts_check(const cJSON *summary, const char *text, const char *path,
                        const cJSON *config, nb_error *err)
{
    double n = json_number(config, "train_samples"), size = json_number(config, "batch_size");
    double batch = isnan(size) || size > n ? n : size;   /* NaN: "full" */
    double per_epoch = ceil(n / batch);
    double steps = json_number(summary, "steps"), samples = json_number(summary, "samples");
    double epochs = json_number(summary, "epochs"), max = json_number(config, "max_steps");
    const char *why = NULL;
    double want = epochs * per_epoch;
    if (diverged(summary)) {
        want = (json_number(summary, "diverged_epoch") - 1) * per_epoch +
               json_number(summary, "diverged_step") - 1;
        why = "the steps before diverged_epoch's diverged_step make";
    } else if (!isnan(max) && steps > max) {
        want = max;
        why = "config.json's \"max_steps\" is";
    } else if (!isnan(max) && steps == max) {
        if (steps > (epochs - 1) * per_epoch && steps <= want)
            want = steps;   /* --max-steps stops within the last epoch */
        why = "--max-steps stops within the last epoch; its epochs at most";
    } else {
        why = "its epochs of whole batches (config.json's sizes) make";
    }
    if (steps != want)
        return json_member_fail(text, path, "steps", err, "\"steps\" is %.0f, but %s %.0f "
                                "(%.0f epochs of %.0f steps of %.0f samples)", steps, why, want,
                                epochs, per_epoch, batch);
    double whole = floor(steps / per_epoch);
    double made = whole * n + (steps - whole * per_epoch) * batch;
    if (samples != made)
        return json_member_fail(text, path, "samples", err, "\"samples\" is %.0f, but %.0f steps "
                                "in batches of %.0f of config.json's %.0f training samples "
                                "train on %.0f", samples, steps, batch, n, made);
    return 0;
}

/* train_seconds counts the steps only, and an epoch's seconds are what it added to it
 * (src/train/train.c): they sum to it, but for a run resumed in the middle of an epoch, whose line
 * has only the time after the resume (config.json's "resumed_from" is null in a run never
 * resumed). Written with 15 or more digits: a rounding's worth of tolerance. */
static int seconds_check(const cJSON *summary, const char *text, const char *path,
                         const cJSON *config, const table *metrics, nb_error *err)
{
    double sum = 0, total = json_number(summary, "train_seconds");
    for (int i = 0; i < metrics->n; i++)
        sum += metrics->col[M_SECONDS][i];
    const cJSON *resumed = cJSON_GetObjectItemCaseSensitive(config, "resumed_from");
    double slack = 1e-9 * (total + sum + metrics->n);
    int never_resumed = cJSON_IsNull(resumed);
    if (sum <= total + slack && (!never_resumed || sum >= total - slack))
        return 0;
    char a[40], b[40];
    json_number_text(total, a, sizeof a);
    json_number_text(sum, b, sizeof b);
    return json_member_fail(text, path, "train_seconds", err, "\"train_seconds\" is %s, but "
                            "metrics.jsonl's epochs took %s seconds in all%s", a, b,
                            never_resumed ? "" : " (it can be more, by the part of an epoch "
                                                 "before a resume, never less)");
}

int run_check_summary(const cJSON *summary, const char *text, const char *path,
                      const cJSON *config, const table *metrics, nb_error *err)
{
    if (json_members_check(summary, text, path, SUMMARY_MEMBERS, N_OF(SUMMARY_MEMBERS), err) !=
            0 ||
        split_check(summary, text, path, "test", err) != 0 ||
        split_check(summary, text, path, "dev", err) != 0 ||
        divergence_check(summary, text, path, err) != 0)
        return -1;
    if (config && (same_as_config(summary, text, path, config, "test_samples", err) != 0 ||
                   same_as_config(summary, text, path, config, "dev_samples", err) != 0 ||
                   same_as_config(summary, text, path, config, "ranks", err) != 0))
        return -1;
    if (!metrics)
        return 0;
    /* The run's epochs, the last of them possibly cut short (a divergence, --max-steps). */
    double epochs = json_number(summary, "epochs");
    double last = metrics->n > 0 ? metrics->col[M_EPOCH][metrics->n - 1] : 0;
    if (epochs != last) {
        char where[4200];
        json_member_where(text, path, "epochs", where, sizeof where);
        return nb_fail(err, "%s: \"epochs\" is %.0f, but metrics.jsonl's last epoch is %.0f",
                       where, epochs, last);
    }
    if (config && (counts_check(summary, text, path, config, err) != 0 ||
                   seconds_check(summary, text, path, config, metrics, err) != 0))
        return -1;
    int best;
    if (best_epoch_check(summary, text, path, config, metrics, &best, err) != 0)
        return -1;
    return figures_check(summary, text, path, metrics, best, err);
}

/* ---- the model ---- */

int run_check_model(const nb_model *m, const char *path, const cJSON *config, nb_error *err)
{
    const nb_model_spec *spec = &m->spec;
    char have[NB_LAYERS_TEXT_MAX + 64] = "", want[NB_LAYERS_TEXT_MAX + 64] = "";
    const char *what = NULL;
    const char *normalize = json_string(config, "normalize");
    nb_model_spec run;
    nb_error why;
    if (run_check_config_spec(config, "", "config.json", &run, &why) != 0)
        return nb_fail(err, "%s: %s", path, why.msg);
    char shape_have[48], shape_want[48];
    nb_shape_format(spec->input, shape_have, sizeof shape_have);
    nb_shape_format(run.input, shape_want, sizeof shape_want);
    nb_layers_format(&spec->layers, have, sizeof have);
    nb_layers_format(&run.layers, want, sizeof want);
    if (strcmp(shape_have, shape_want) != 0) {
        what = "input shape";
        snprintf(have, sizeof have, "%s", shape_have);
        snprintf(want, sizeof want, "%s", shape_want);
    } else if (run.classes != spec->classes) {
        what = "classes";
        snprintf(have, sizeof have, "%d", spec->classes);
        snprintf(want, sizeof want, "%d", run.classes);
    } else if (strcmp(have, want) != 0) {
        what = "layers";
    } else if (normalize && (strcmp(normalize, "standard") == 0) != (m->norm_mean != NULL)) {
        what = "input standardization";
        snprintf(have, sizeof have, "%s", m->norm_mean ? "standard" : "none");
        snprintf(want, sizeof want, "%.80s (\"normalize\")", normalize);
    }
    if (!what)
        return 0;
    return nb_fail(err, "%s: the model's %s: %s; config.json's: %s (not this run's model)", path,
                   what, have, want);
}
