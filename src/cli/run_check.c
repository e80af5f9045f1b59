/* The sense of a run directory's files (run_check.h). The writers are cmd_train.c with
 * run_files.c (metrics.jsonl), train_files.c (config.json, summary.json) and train_trace.c
 * (steps.jsonl, trace.jsonl); what they can write is what passes here. */
#include "run_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- the tables ---- */

/* metrics.jsonl: null is a split the run does not have (dev, test), or a loss and accuracy
 * the run could not compute (a diverged epoch). The learning rate may be 0: a decay that
 * underflows the float ends there. */
static const table_column METRICS_COLUMNS[M_COLS] = {
    [M_EPOCH] = {"epoch", V_INT_1, 1},
    [M_LR] = {"lr", V_NON_NEG, 1},
    [M_TRAIN_LOSS] = {"train_loss", V_NON_NEG, 0},
    [M_TRAIN_ACC] = {"train_accuracy", V_UNIT, 0},
    [M_DEV_LOSS] = {"dev_loss", V_NON_NEG, 0},
    [M_DEV_ACC] = {"dev_accuracy", V_UNIT, 0},
    [M_TEST_LOSS] = {"test_loss", V_NON_NEG, 0},
    [M_TEST_ACC] = {"test_accuracy", V_UNIT, 0},
    [M_SECONDS] = {"seconds", V_NON_NEG, 1},
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

/* An epoch no later than the run's last (config.json's "epochs", when known). */
static int within_run(double epoch, const void *config, const char *where, nb_error *err)
{
    double last = config ? json_number(config, "epochs") : NAN;
    if (epoch > last)
        return nb_fail(err, "%s: epoch %.0f, but the run has %.0f (config.json's \"epochs\")",
                       where, epoch, last);
    return 0;
}

/* Epochs 1, 2, 3, ...: one line each, none repeated, skipped or going backwards. */
static int metrics_row(const table *t, const char *where, const void *config, nb_error *err)
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
    return within_run(epoch, config, where, err);
}

/* Steps that increase, in epochs that do not go backwards. */
static int step_order(const table *t, int step, int epoch, const char *where, const void *config,
                      nb_error *err)
{
    if (t->n > 1 && !(NOW(t, step) > BEFORE(t, step)))
        return nb_fail(err, "%s: step %.0f after step %.0f (steps must increase)", where,
                       NOW(t, step), BEFORE(t, step));
    if (t->n > 1 && NOW(t, epoch) < BEFORE(t, epoch))
        return nb_fail(err, "%s: epoch %.0f after epoch %.0f (epochs go backwards)", where,
                       NOW(t, epoch), BEFORE(t, epoch));
    return within_run(NOW(t, epoch), config, where, err);
}

static int steps_row(const table *t, const char *where, const void *config, nb_error *err)
{
    return step_order(t, S_STEP, S_EPOCH, where, config, err);
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
static int trace_row(const table *t, const char *where, const void *config, nb_error *err)
{
    if (t->n > 1)
        for (int c = T_LAYER; c <= T_UNIT; c++)
            if (NOW(t, c) != t->col[c][0])
                return nb_fail(err, "%s: %s %.0f, but line 1 traces %s %.0f", where,
                               TRACE_COLUMNS[c].name, NOW(t, c), TRACE_COLUMNS[c].name,
                               t->col[c][0]);
    if (step_order(t, T_STEP, T_EPOCH, where, config, err) != 0 ||
        percentiles_in_order(t, T_UNIT_P15, where, err) != 0)
        return -1;
    return percentiles_in_order(t, T_LAYER_P15, where, err);
}

const table_spec METRICS_TABLE = {METRICS_COLUMNS, M_COLS, metrics_row};
const table_spec STEPS_TABLE = {STEPS_COLUMNS, S_COLS, steps_row};
const table_spec TRACE_TABLE = {TRACE_COLUMNS, T_COLS, trace_row};

/* ---- config.json and summary.json ---- */

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* As train_write_config writes them; the option parsers set the ranges. */
static const member_rule CONFIG_MEMBERS[] = {
    {"command", MT_STRING, 0, 0, NULL},
    {"version", MT_STRING, 0, 0, NULL},
    {"data", MT_STRING, 0, 0, NULL},
    {"data_path", MT_STRING, 0, 0, NULL},
    {"data_kind", MT_STRING, 0, 0, NULL},
    {"test", MT_STRING, 0, 1, NULL},
    {"data_header", MT_BOOL, 0, 1, NULL},
    {"test_header", MT_BOOL, 0, 1, NULL},
    {"features", MT_NUMBER, V_INT_1, 0, NULL},
    {"classes", MT_NUMBER, V_INT_1, 0, NULL},
    {"train_samples", MT_NUMBER, V_INT_1, 0, NULL},
    {"dev_samples", MT_NUMBER, V_INT, 0, NULL},
    {"test_samples", MT_NUMBER, V_INT, 0, NULL},
    {"samples", MT_NUMBER, V_INT_1, 1, NULL},
    {"noise", MT_NUMBER, V_NON_NEG, 1, NULL},
    {"dev_fraction", MT_NUMBER, V_FRACTION, 0, NULL},
    {"normalize", MT_STRING, 0, 0, NULL},
    {"layers", MT_NUMBERS, V_INT_1, 0, NULL},
    {"activation", MT_STRING, 0, 0, NULL},
    {"leaky_slope", MT_NUMBER, V_FINITE, 0, NULL},
    {"batchnorm", MT_BOOL, 0, 0, NULL},
    {"sync_batchnorm", MT_BOOL, 0, 0, NULL},
    {"parameters", MT_NUMBER, V_COUNT_1, 0, NULL},
    {"init_weights", MT_STRING, 0, 1, NULL},
    {"optimizer", MT_STRING, 0, 0, NULL},
    {"lr", MT_NUMBER, V_POSITIVE, 0, NULL},
    {"beta", MT_NUMBER, V_FRACTION, 0, NULL},
    {"beta2", MT_NUMBER, V_FRACTION, 0, NULL},
    {"eps", MT_NUMBER, V_POSITIVE, 0, NULL},
    {"weight_decay", MT_NUMBER, V_NON_NEG, 0, NULL},
    {"bias_correction", MT_BOOL, 0, 0, NULL},
    {"batch_size", MT_NUMBER, V_INT_1, 0, "full"},
    {"epochs", MT_NUMBER, V_INT_1, 0, NULL},
    {"max_steps", MT_NUMBER, V_COUNT_1, 1, NULL},
    {"shuffle", MT_BOOL, 0, 0, NULL},
    {"lr_decay", MT_STRING, 0, 0, NULL},
    {"decay_rate", MT_NUMBER, V_NON_NEG, 0, NULL},
    {"decay_interval", MT_NUMBER, V_INT_1, 0, NULL},
    {"warmup_epochs", MT_NUMBER, V_INT, 0, NULL},
    {"threads", MT_NUMBER, V_INT_1, 0, NULL},
    {"ranks", MT_NUMBER, V_INT_1, 0, NULL},
    {"blas_kernel", MT_STRING, 0, 0, NULL},
    {"out", MT_STRING, 0, 0, NULL},
    {"checkpoint_every", MT_NUMBER, V_COUNT_1, 0, "epoch"},
    {"resumed_from", MT_STRING, 0, 1, NULL},
    {"save_weights", MT_STRING, 0, 1, NULL},
    {"trace_activations", MT_BOOL, 0, 0, NULL},
    {"trace_layer", MT_NUMBER, V_INT_1, 1, NULL},
    {"trace_unit", MT_NUMBER, V_INT, 1, NULL},
    {"trace_every", MT_NUMBER, V_COUNT_1, 1, NULL},
    {"eval_every", MT_NUMBER, V_COUNT_1, 1, NULL},
};

/* As train_write_summary writes them. */
static const member_rule SUMMARY_MEMBERS[] = {
    {"test_loss", MT_NUMBER, V_NON_NEG, 1, NULL},
    {"test_accuracy", MT_NUMBER, V_UNIT, 1, NULL},
    {"test_samples", MT_NUMBER, V_INT, 0, NULL},
    {"dev_loss", MT_NUMBER, V_NON_NEG, 1, NULL},
    {"dev_accuracy", MT_NUMBER, V_UNIT, 1, NULL},
    {"dev_samples", MT_NUMBER, V_INT, 0, NULL},
    {"train_loss", MT_NUMBER, V_NON_NEG, 1, NULL},
    {"train_accuracy", MT_NUMBER, V_UNIT, 1, NULL},
    {"epochs", MT_NUMBER, V_INT, 0, NULL},
    {"steps", MT_NUMBER, V_COUNT, 0, NULL},
    {"samples", MT_NUMBER, V_COUNT, 0, NULL},
    {"train_seconds", MT_NUMBER, V_NON_NEG, 0, NULL},
    {"samples_per_second", MT_NUMBER, V_NON_NEG, 1, NULL},
    {"ranks", MT_NUMBER, V_INT_1, 0, NULL},
    {"allreduce_seconds", MT_NUMBER, V_NON_NEG, 0, NULL},
    {"allreduce_calls", MT_NUMBER, V_COUNT, 0, NULL},
    {"diverged", MT_BOOL, 0, 0, NULL},
    {"diverged_epoch", MT_NUMBER, V_INT_1, 1, NULL},
    {"diverged_step", MT_NUMBER, V_COUNT_1, 1, NULL},
    {"model", MT_STRING, 0, 0, NULL},
};

/* config.json's seed: a whole number, or for seeds beyond 2^53 their digits as a string. */
static int seed_check(const cJSON *config, const char *text, const char *path, nb_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, "seed");
    if (!v)
        return 0;
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

int run_check_config(const cJSON *config, const char *text, const char *path, nb_error *err)
{
    if (json_members_check(config, text, path, CONFIG_MEMBERS, N_OF(CONFIG_MEMBERS), err) != 0 ||
        seed_check(config, text, path, err) != 0)
        return -1;
    /* A dev split is held out exactly when a fraction is asked for (at least one sample). */
    double fraction = json_number(config, "dev_fraction"), dev = json_number(config, "dev_samples");
    if ((fraction > 0 && dev == 0) || (fraction == 0 && dev > 0)) {
        char where[4200];
        json_member_where(text, path, "dev_samples", where, sizeof where);
        return nb_fail(err, "%s: \"dev_samples\" is %.0f, but \"dev_fraction\" is %g", where, dev,
                       fraction);
    }
    return 0;
}

/* A split's accuracy is null exactly when it has no samples, and so is its loss, except that
 * a loss that overflowed (weights grown huge before a divergence) is null too. */
static int split_check(const cJSON *summary, const char *text, const char *path,
                       const char *split, nb_error *err)
{
    char samples[32], name[32], where[4200];
    snprintf(samples, sizeof samples, "%s_samples", split);
    double n = json_number(summary, samples);
    for (int k = 0; k < 2; k++) {
        int accuracy = k == 1;
        snprintf(name, sizeof name, "%s_%s", split, accuracy ? "accuracy" : "loss");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(summary, name);
        if (!v || isnan(n) || cJSON_IsNull(v) == (n == 0) || (!accuracy && cJSON_IsNull(v)))
            continue;
        json_member_where(text, path, name, where, sizeof where);
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

int run_check_summary(const cJSON *summary, const char *text, const char *path,
                      const cJSON *config, const table *metrics, nb_error *err)
{
    if (json_members_check(summary, text, path, SUMMARY_MEMBERS, N_OF(SUMMARY_MEMBERS), err) !=
            0 ||
        split_check(summary, text, path, "test", err) != 0 ||
        split_check(summary, text, path, "dev", err) != 0)
        return -1;
    if (config && (same_as_config(summary, text, path, config, "test_samples", err) != 0 ||
                   same_as_config(summary, text, path, config, "dev_samples", err) != 0))
        return -1;
    double epochs = json_number(summary, "epochs");
    if (metrics && !isnan(epochs)) {
        /* The run's epochs, the last of them possibly cut short (a divergence, --max-steps). */
        double last = metrics->n > 0 ? metrics->col[M_EPOCH][metrics->n - 1] : 0;
        if (epochs != last) {
            char where[4200];
            json_member_where(text, path, "epochs", where, sizeof where);
            return nb_fail(err, "%s: \"epochs\" is %.0f, but metrics.jsonl's last epoch is %.0f",
                           where, epochs, last);
        }
    }
    return 0;
}
