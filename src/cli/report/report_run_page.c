/* The report of one run, or of several overlaid: the summary, loss and accuracy per epoch
 * (train, dev, test; RMSE and R² for regression, macro F1 for multi-label), the learning rate, the curves every N steps and the activation
 * percentiles when the runs recorded them, the decision regions of two-feature data, and the
 * configuration. One run: a colour per split. Several: a colour per run (the same in every
 * chart) and a dash per split. */
#include "cli/report/report_pages.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/report/report_builder.h"
#include "cli/report/report_classes.h"
#include "cli/report/report_page.h"
#include "cli/report/report_regions.h"

typedef struct split {
    const char *name;
    int col;          /* its column in metrics.jsonl or steps.jsonl */
    dash_kind dash;
    int color;        /* its palette colour in a one-run report */
} split;

static const split LOSS[] = {{"train", M_TRAIN_LOSS, DASH_SOLID, 0},
                             {"dev", M_DEV_LOSS, DASH_DASHED, 1},
                             {"test", M_TEST_LOSS, DASH_DOTTED, 2}};
static const split ACCURACY[] = {{"train", M_TRAIN_ACC, DASH_SOLID, 0},
                                 {"dev", M_DEV_ACC, DASH_DASHED, 1},
                                 {"test", M_TEST_ACC, DASH_DOTTED, 2}};
static const split RMSE[] = {{"dev", M_DEV_RMSE, DASH_DASHED, 1},
                             {"test", M_TEST_RMSE, DASH_DOTTED, 2}};
static const split R2[] = {{"dev", M_DEV_R2, DASH_DASHED, 1}, {"test", M_TEST_R2, DASH_DOTTED, 2}};
static const split MACRO_F1[] = {{"dev", M_DEV_MACRO_F1, DASH_DASHED, 1},
                                 {"test", M_TEST_MACRO_F1, DASH_DOTTED, 2}};
static const split STEP_LOSS[] = {{"dev", S_DEV_LOSS, DASH_DASHED, 1},
                                  {"test", S_TEST_LOSS, DASH_DOTTED, 2}};
static const split STEP_ACCURACY[] = {{"dev", S_DEV_ACC, DASH_DASHED, 1},
                                      {"test", S_TEST_ACC, DASH_DOTTED, 2}};
#define N_SPLITS(a) ((int)(sizeof a / sizeof a[0]))

/* The learning rate's own colour in a one-run report. */
#define LR_COLOR 4

typedef struct runs {
    run_data *r;
    int n;
    builder bd;
} runs;

/* The legend of a chart of several runs: the runs by colour (clicking one hides it), then the
 * line styles by what they mean. */
static void legend_runs(runs *rs, const int *shown)
{
    for (int k = 0; k < rs->n; k++)
        if (shown[k])
            builder_legend(&rs->bd, &(legend_entry){builder_text(&rs->bd, "r%d", k),
                                                    rs->r[k].dir, palette_color(k), DASH_SOLID,
                                                    1, MARK_NONE});
}

static void legend_styles(runs *rs, const split *sp, const int *used, int n)
{
    for (int s = 0; s < n; s++)
        if (used[s])
            builder_legend(&rs->bd, &(legend_entry){NULL, sp[s].name, "#444", sp[s].dash, 1,
                                                    MARK_NONE});
}

/* Whether any run has a number in any of the splits' columns. */
static int any_split(const runs *rs, int steps, const split *sp, int n_splits)
{
    for (int k = 0; k < rs->n; k++) {
        const table *t = steps ? &rs->r[k].steps : &rs->r[k].metrics;
        for (int s = 0; s < n_splits; s++)
            if (any_finite(t->col[sp[s].col], t->n))
                return 1;
    }
    return 0;
}

/* A metric of every split of every run, per epoch or per step; no chart when no run has it
 * (accuracy of regression runs, RMSE of classifiers). */
static int split_chart(nb_strbuf *b, runs *rs, const char *id, const char *title,
                       const char *ylabel, int steps, const split *sp, int n_splits)
{
    if (!any_split(rs, steps, sp, n_splits) && strcmp(id, "loss") != 0)
        return 0;
    int used[3] = {0, 0, 0}, *shown = calloc((size_t)rs->n, sizeof *shown);
    if (!shown)
        return -1;
    for (int k = 0; k < rs->n; k++) {
        const table *t = steps ? &rs->r[k].steps : &rs->r[k].metrics;
        for (int s = 0; s < n_splits; s++) {
            if (!any_finite(t->col[sp[s].col], t->n))
                continue; /* no such split: no series, no legend entry */
            used[s] = shown[k] = 1;
            int one = rs->n == 1;
            builder_series(&rs->bd, &(chart_series){
                .key = one ? sp[s].name : builder_text(&rs->bd, "r%d", k),
                .name = builder_text(&rs->bd, "%s: %s %s", rs->r[k].dir, sp[s].name, ylabel),
                .color = palette_color(one ? sp[s].color : k), .dash = sp[s].dash,
                .width = 2, .n = t->n, .x = t->col[steps ? S_STEP : M_EPOCH],
                .y = t->col[sp[s].col]});
        }
    }
    if (rs->n == 1) {
        for (int s = 0; s < n_splits; s++)
            if (used[s])
                builder_legend(&rs->bd, &(legend_entry){sp[s].name, sp[s].name,
                                                        palette_color(sp[s].color), sp[s].dash,
                                                        1, MARK_NONE});
    } else {
        legend_runs(rs, shown);
        legend_styles(rs, sp, used, n_splits);
    }
    free(shown);
    chart c = {.id = id, .title = title, .x = {.label = steps ? "step" : "epoch", .integer = 1},
               .y = {.label = ylabel}};
    return builder_draw(&rs->bd, b, &c);
}

static int lr_chart(nb_strbuf *b, runs *rs)
{
    double lo = INFINITY, hi = -INFINITY;
    int *shown = calloc((size_t)rs->n, sizeof *shown);
    if (!shown)
        return -1;
    for (int k = 0; k < rs->n; k++) {
        const table *t = &rs->r[k].metrics;
        if (!any_finite(t->col[M_LR], t->n))
            continue;
        shown[k] = 1;
        for (int i = 0; i < t->n; i++)
            if (isfinite(t->col[M_LR][i])) {
                lo = fmin(lo, t->col[M_LR][i]);
                hi = fmax(hi, t->col[M_LR][i]);
            }
        builder_series(&rs->bd, &(chart_series){
            .key = builder_text(&rs->bd, "r%d", k),
            .name = builder_text(&rs->bd, "%s: learning rate", rs->r[k].dir),
            .color = palette_color(rs->n == 1 ? LR_COLOR : k), .width = 2, .n = t->n,
            .x = t->col[M_EPOCH], .y = t->col[M_LR]});
    }
    if (rs->n > 1)
        legend_runs(rs, shown);
    free(shown);
    /* Decays over orders of magnitude read better on a log axis. */
    scale_kind kind = lo > 0 && hi / lo >= 10 ? SCALE_LOG : SCALE_LINEAR;
    chart c = {.id = "lr", .title = "Learning rate per epoch",
               .x = {.label = "epoch", .integer = 1},
               .y = {.label = "learning rate", .kind = kind}};
    return builder_draw(&rs->bd, b, &c);
}

/* Ioffe and Szegedy's Figure 1 (b, c): the 15th, 50th and 85th percentiles of a hidden unit's
 * input over the batch, as training goes; and the same over all the layer's inputs. */
static int trace_chart(nb_strbuf *b, runs *rs, int layer_wide)
{
    const int cols[3] = {layer_wide ? T_LAYER_P15 : T_UNIT_P15,
                         layer_wide ? T_LAYER_P50 : T_UNIT_P50,
                         layer_wide ? T_LAYER_P85 : T_UNIT_P85};
    static const char *const pct[3] = {"15th", "50th", "85th"};
    int *shown = calloc((size_t)rs->n, sizeof *shown), first = -1;
    if (!shown)
        return -1;
    for (int k = 0; k < rs->n; k++) {
        const table *t = &rs->r[k].trace;
        if (!rs->r[k].has_trace || t->n == 0)
            continue;
        if (first < 0)
            first = k;
        for (int q = 0; q < 3; q++) {
            if (!any_finite(t->col[cols[q]], t->n))
                continue;
            shown[k] = 1;
            /* Several runs: a legend entry per run hides it; one: per line style. */
            builder_series(&rs->bd, &(chart_series){
                .key = rs->n > 1 ? builder_text(&rs->bd, "r%d", k) : q == 1 ? "median" : "spread",
                .name = builder_text(&rs->bd, "%s: %s percentile", rs->r[k].dir, pct[q]),
                .color = palette_color(k), .dash = q == 1 ? DASH_SOLID : DASH_DASHED,
                .width = q == 1 ? 2 : 1.5, .n = t->n, .x = t->col[T_STEP],
                .y = t->col[cols[q]]});
        }
    }
    if (first < 0) {
        free(shown);
        return 0;
    }
    if (rs->n > 1)
        legend_runs(rs, shown);
    free(shown);
    int one = rs->n == 1;
    const char *style = one ? palette_color(0) : "#444";
    builder_legend(&rs->bd, &(legend_entry){one ? "median" : NULL, "median", style, DASH_SOLID,
                                            1, MARK_NONE});
    builder_legend(&rs->bd, &(legend_entry){one ? "spread" : NULL, "15th and 85th percentiles",
                                            style, DASH_DASHED, 1, MARK_NONE});
    const table *t = &rs->r[first].trace;
    int layer = (int)t->col[T_LAYER][0], unit = (int)t->col[T_UNIT][0];
    const char *title = layer_wide
        ? builder_text(&rs->bd, "Inputs of layer %d, all units: percentiles over the batch",
                       layer)
        : builder_text(&rs->bd, "Input of layer %d, unit %d: percentiles over the batch", layer,
                       unit);
    chart c = {.id = layer_wide ? "trace-layer" : "trace-unit", .title = title,
               .note = "the activation's input: W x + b, or with batch norm its output",
               .x = {.label = "step", .integer = 1}, .y = {.label = "value"}};
    if (!title)
        c.title = "Activations";
    return builder_draw(&rs->bd, b, &c);
}

static int regions_section(nb_strbuf *b, runs *rs, nb_error *err)
{
    int any = 0;
    for (int k = 0; k < rs->n; k++)
        any |= regions_possible(&rs->r[k]);
    if (!any)
        return 0;
    page_section(b, "Decision regions");
    page_charts_begin(b);
    char why[512];
    for (int k = 0; k < rs->n; k++) {
        run_data *r = &rs->r[k];
        if (!regions_possible(r))
            continue;
        char title[256], note[256];
        snprintf(title, sizeof title, "%s%s", rs->n > 1 ? r->dir : "Decision regions",
                 rs->n > 1 ? "" : " and training points");
        char acc[64] = "";
        double test = r->summary ? json_number(r->summary, "test_accuracy") : NAN;
        if (isfinite(test))
            snprintf(acc, sizeof acc, "; test accuracy %.4f", test);
        /* The model's text (older runs: whether it had batch norm). */
        const char *model = json_string(r->config, "model");
        if (!model)
            model = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r->config, "batchnorm"))
                        ? "batch norm"
                        : "no batch norm";
        snprintf(note, sizeof note, "%s, lr %g, %.120s%s", json_string(r->config, "optimizer")
                                                               ? json_string(r->config, "optimizer")
                                                               : "?",
                 json_number(r->config, "lr"), model, acc);
        int rc = regions_chart(b, r, title, note, why, sizeof why, err);
        if (rc < 0)
            return -1;
        if (rc == 0)
            page_note(b, "%s: no decision regions: %s.", r->dir, why);
    }
    page_charts_end(b);
    page_section_end(b);
    return 0;
}

static void summary_section(nb_strbuf *b, runs *rs)
{
    page_section(b, rs->n > 1 ? "Runs" : "Summary");
    page_table_begin(b, NULL, "run", "status", "epochs", "steps", "train loss",
                     "train acc", "dev acc", "test acc", "train seconds", (const char *)NULL);
    for (int k = 0; k < rs->n; k++) {
        const run_data *r = &rs->r[k];
        const cJSON *s = r->summary;
        const table *t = &r->metrics;
        int last = t->n - 1;
        page_row_begin(b, NULL);
        page_cell(b, r->dir);
        const cJSON *div = s ? cJSON_GetObjectItemCaseSensitive(s, "diverged") : NULL;
        page_cell(b, !s ? "not finished (no summary.json)"
                        : cJSON_IsTrue(div) ? "diverged" : "finished");
        page_cell_num(b, "%.0f", s ? json_number(s, "epochs") : t->n);
        page_cell_num(b, "%.0f", s ? json_number(s, "steps") : NAN);
        page_cell_num(b, "%.4f", s ? json_number(s, "train_loss")
                                   : last >= 0 ? t->col[M_TRAIN_LOSS][last] : NAN);
        page_cell_num(b, "%.4f", s ? json_number(s, "train_accuracy")
                                   : last >= 0 ? t->col[M_TRAIN_ACC][last] : NAN);
        page_cell_num(b, "%.4f", s ? json_number(s, "dev_accuracy")
                                   : last >= 0 ? t->col[M_DEV_ACC][last] : NAN);
        page_cell_num(b, "%.4f", s ? json_number(s, "test_accuracy")
                                   : last >= 0 ? t->col[M_TEST_ACC][last] : NAN);
        page_cell_num(b, "%.2f", s ? json_number(s, "train_seconds") : NAN);
        page_row_end(b);
    }
    page_table_end(b);
    page_section_end(b);
}

/* Whether setting `key` reads the same in every run. */
static int same_everywhere(const runs *rs, const char *key)
{
    char first[4096], text[4096];
    json_value_text(cJSON_GetObjectItemCaseSensitive(rs->r[0].config, key), first, sizeof first);
    for (int j = 1; j < rs->n; j++) {
        json_value_text(cJSON_GetObjectItemCaseSensitive(rs->r[j].config, key), text,
                        sizeof text);
        if (strcmp(first, text) != 0)
            return 0;
    }
    return 1;
}

/* Whether key is first seen in run k (the keys of all runs, in the order first seen). */
static int first_seen(const runs *rs, int k, const char *key)
{
    for (int j = 0; j < k; j++)
        if (cJSON_GetObjectItemCaseSensitive(rs->r[j].config, key))
            return 0;
    return 1;
}

/* One run: its config.json. Several: the settings that differ, a column per run, then those
 * they share. */
static int config_section(nb_strbuf *b, runs *rs)
{
    page_section(b, "Configuration");
    if (rs->n == 1) {
        page_object_table(b, rs->r[0].config, 3);
        page_section_end(b);
        return 0;
    }
    cJSON *common = cJSON_CreateObject();
    if (!common)
        return -1;
    nb_sb_puts(b, "<table><thead><tr><th>setting</th>");
    for (int k = 0; k < rs->n; k++) {
        nb_sb_puts(b, "<th>");
        html_escape(b, rs->r[k].dir);
        nb_sb_puts(b, "</th>");
    }
    nb_sb_puts(b, "</tr></thead>\n<tbody>\n");
    for (int k = 0; k < rs->n; k++) {
        const cJSON *m;
        cJSON_ArrayForEach(m, rs->r[k].config) {
            if (!first_seen(rs, k, m->string))
                continue;
            if (same_everywhere(rs, m->string)) {
                cJSON *copy = cJSON_Duplicate(m, 1);
                if (!copy) {
                    cJSON_Delete(common);
                    return -1;
                }
                cJSON_AddItemToObject(common, m->string, copy);
                continue;
            }
            page_row_begin(b, "differs");
            page_cell(b, m->string);
            for (int j = 0; j < rs->n; j++) {
                char text[4096];
                json_value_text(cJSON_GetObjectItemCaseSensitive(rs->r[j].config, m->string),
                                text, sizeof text);
                page_cell(b, text);
            }
            page_row_end(b);
        }
    }
    page_table_end(b);
    page_note(b, "The same in every run:");
    page_object_table(b, common, 3);
    cJSON_Delete(common);
    page_section_end(b);
    return 0;
}

static int body(nb_strbuf *b, runs *rs, nb_error *err)
{
    summary_section(b, rs);
    page_section(b, "Training curves");
    page_charts_begin(b);
    if (split_chart(b, rs, "loss", "Loss per epoch", "loss", 0, LOSS, N_SPLITS(LOSS)) != 0 ||
        split_chart(b, rs, "accuracy", "Accuracy per epoch", "accuracy", 0, ACCURACY,
                    N_SPLITS(ACCURACY)) != 0 ||
        split_chart(b, rs, "rmse", "RMSE per epoch (the targets' units)", "rmse", 0, RMSE,
                    N_SPLITS(RMSE)) != 0 ||
        split_chart(b, rs, "r2", "R\xc2\xb2 per epoch", "r2", 0, R2, N_SPLITS(R2)) != 0 ||
        split_chart(b, rs, "macro-f1", "Macro F1 per epoch", "macro F1", 0, MACRO_F1,
                    N_SPLITS(MACRO_F1)) != 0 ||
        lr_chart(b, rs) != 0)
        return nb_fail(err, "out of memory");
    page_charts_end(b);
    page_section_end(b);

    int steps = 0, trace = 0;
    for (int k = 0; k < rs->n; k++) {
        steps |= rs->r[k].has_steps && rs->r[k].steps.n > 0;
        trace |= rs->r[k].has_trace && rs->r[k].trace.n > 0;
    }
    if (steps) {
        page_section(b, "Every N steps");
        page_charts_begin(b);
        if (split_chart(b, rs, "steps-loss", "Loss every N steps", "loss", 1, STEP_LOSS,
                        N_SPLITS(STEP_LOSS)) != 0 ||
            split_chart(b, rs, "steps-accuracy", "Accuracy every N steps", "accuracy", 1,
                        STEP_ACCURACY, N_SPLITS(STEP_ACCURACY)) != 0)
            return nb_fail(err, "out of memory");
        page_charts_end(b);
        page_section_end(b);
    }
    if (trace) {
        page_section(b, "Activations during training");
        page_charts_begin(b);
        if (trace_chart(b, rs, 0) != 0 || trace_chart(b, rs, 1) != 0)
            return nb_fail(err, "out of memory");
        page_charts_end(b);
        page_note(b, "As in Ioffe and Szegedy (2015), figure 1: without batch normalization "
                     "the distribution of a layer's inputs drifts while the network trains.");
        page_section_end(b);
    }
    if (regions_section(b, rs, err) != 0)
        return -1;
    if (rs->n == 1 && classes_section(b, &rs->r[0], err) != 0)
        return -1;
    return config_section(b, rs) == 0 ? 0 : nb_fail(err, "out of memory");
}

int report_runs_page(nb_strbuf *b, run_data *r, int n, const char *title, nb_error *err)
{
    char subtitle[512];
    if (n == 1)
        snprintf(subtitle, sizeof subtitle, "nabla %s report of the run in %s", NABLA_VERSION,
                 r[0].dir);
    else
        snprintf(subtitle, sizeof subtitle, "nabla %s report of %d runs, overlaid",
                 NABLA_VERSION, n);
    char default_title[512];
    if (n == 1)
        snprintf(default_title, sizeof default_title, "Run %s", r[0].dir);
    else
        snprintf(default_title, sizeof default_title, "%d runs", n);
    page_begin(b, title ? title : default_title, subtitle);
    runs rs = {r, n, {0}};
    int rc = body(b, &rs, err);
    builder_free(&rs.bd);
    page_end(b);
    return rc;
}
