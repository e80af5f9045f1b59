/* The report of a study: its outcome, its objective (dev accuracy, or the metric of --objective:
 * tune_objective.h) against each hyperparameter (on the scale it was searched on), the best so
 * far trial by trial, every trial's learning curve, parallel coordinates, which
 * hyperparameters mattered, the leaderboard and the settings. Complete trials are blue dots,
 * pruned ones orange triangles (their value is from the epoch they were stopped at), failed
 * ones red crosses along the bottom (they have none). */
#include "cli/report/report_pages.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_files.h"
#include "cli/report/report_builder.h"
#include "cli/report/report_figures.h"
#include "cli/report/report_page.h"
#include "study/objective.h"

typedef struct state_style {
    nb_trial_state state;
    const char *name;
    int color;
    mark_kind mark;
} state_style;

/* The states that have a point, in drawing order (the complete ones on top). */
static const state_style STYLES[] = {{NB_TRIAL_FAILED, "failed", 3, MARK_CROSS},
                                     {NB_TRIAL_PRUNED, "pruned", 1, MARK_TRIANGLE},
                                     {NB_TRIAL_COMPLETE, "complete", 0, MARK_CIRCLE}};
#define N_STYLES 3
#define RUNNING_COLOR 7

typedef struct study_view {
    const study_data *s;
    int n;                    /* trials */
    double *number;           /* trial numbers, as doubles */
    double *value;            /* value[k * n + i]: parameter k of trial i (choice: index) */
    double *jittered;         /* the same, choices spread around their index */
    char **tips;              /* a tooltip per trial */
    char label[64];           /* the objective: "dev accuracy", "dev rmse" */
    char title[64];           /* the same with a capital: "Dev rmse" */
    builder bd;
} study_view;

static double *param_values(study_view *v, int k) { return v->value + (size_t)k * v->n; }

/* A spread in [-0.25, 0.25] that depends on the trial only, so points of one choice do not
 * hide each other and the picture is the same each time. */
static double jitter(int i)
{
    uint32_t h = (uint32_t)i * 2654435761u;
    return ((h >> 8) % 1000) / 1000.0 * 0.5 - 0.25;
}

static void params_text(const study_data *s, const trial *t, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < s->space.n && used < cap; k++) {
        char text[NB_SEARCH_VALUE_MAX];
        nb_search_value_text(&s->space.p[k], t->point.v[k], text, sizeof text);
        int w = snprintf(buf + used, cap - used, "%s%s=%s", k ? " " : "", s->space.p[k].name,
                         text);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static int view_init(study_view *v, const study_data *s)
{
    memset(v, 0, sizeof *v);
    v->s = s;
    v->n = s->n_trials;
    size_t cells = (size_t)(s->space.n ? s->space.n : 1) * v->n;
    v->number = malloc((size_t)v->n * sizeof *v->number);
    v->value = malloc(cells * sizeof *v->value);
    v->jittered = malloc(cells * sizeof *v->jittered);
    v->tips = calloc((size_t)v->n, sizeof *v->tips);
    if (!v->number || !v->value || !v->jittered || !v->tips)
        return -1;
    objective_label(s->opt.objective, v->label, sizeof v->label);
    snprintf(v->title, sizeof v->title, "D%s", v->label + 1);
    for (int i = 0; i < v->n; i++) {
        const trial *t = &s->trials[i];
        v->number[i] = i;
        for (int k = 0; k < s->space.n; k++) {
            double x = t->state == NB_TRIAL_PENDING ? NAN : t->point.v[k];
            param_values(v, k)[i] = x;
            v->jittered[(size_t)k * v->n + i] =
                s->space.p[k].kind == NB_DIST_CHOICE ? x + jitter(i) : x;
        }
        char params[PARAMS_TEXT_MAX], tip[PARAMS_TEXT_MAX + 100];
        params_text(s, t, params, sizeof params);
        if (isnan(t->final_objective))
            snprintf(tip, sizeof tip, "trial %d (%s): %s", i, nb_trial_state_name(t->state), params);
        else
            snprintf(tip, sizeof tip, "trial %d (%s): %s %.4f; %s", i,
                     nb_trial_state_name(t->state), v->label, t->final_objective, params);
        if (!(v->tips[i] = strdup(tip)))
            return -1;
    }
    return 0;
}

static void view_free(study_view *v)
{
    for (int i = 0; v->tips && i < v->n; i++)
        free(v->tips[i]);
    free(v->tips);
    free(v->number);
    free(v->value);
    free(v->jittered);
    builder_free(&v->bd);
}

/* The y values of the trials in one state (NaN for the others). */
static double *state_mask(const study_view *v, nb_trial_state st, const double *y)
{
    double *out = malloc((size_t)v->n * sizeof *out);
    if (!out)
        return NULL;
    for (int i = 0; i < v->n; i++)
        out[i] = v->s->trials[i].state == st ? (y ? y[i] : 0) : NAN;
    return out;
}

/* The objective of every trial (NaN when it has none). */
static double *objectives(const study_view *v)
{
    double *a = malloc((size_t)v->n * sizeof *a);
    for (int i = 0; a && i < v->n; i++)
        a[i] = v->s->trials[i].final_objective;
    return a;
}

/* A series per state of trials (x, objective), and their legend entries. masks[] keeps the
 * arrays until the chart is drawn. */
static int add_state_series(study_view *v, const double *x, const double *acc, double **masks)
{
    for (int s = 0; s < N_STYLES; s++) {
        const state_style *st = &STYLES[s];
        masks[s] = state_mask(v, st->state, st->state == NB_TRIAL_FAILED ? NULL : acc);
        if (!masks[s])
            return -1;
        int any = 0;
        for (int i = 0; i < v->n && !any; i++)
            any = !isnan(masks[s][i]) && !isnan(x[i]);
        if (!any)
            continue;
        builder_series(&v->bd, &(chart_series){
            .key = st->name, .name = st->name, .color = palette_color(st->color),
            .mark = st->mark, .pin_bottom = st->state == NB_TRIAL_FAILED, .n = v->n, .x = x,
            .y = masks[s], .tips = (const char *const *)v->tips});
        builder_legend(&v->bd, &(legend_entry){st->name, st->state == NB_TRIAL_FAILED
                                                             ? "failed (no score)"
                                                             : st->name,
                                                palette_color(st->color), DASH_SOLID, 0,
                                                st->mark});
    }
    return 0;
}

static scale_kind kind_of(nb_dist_kind d)
{
    switch (d) {
    case NB_DIST_LOG: return SCALE_LOG;
    case NB_DIST_ONE_MINUS_LOG: return SCALE_ONE_MINUS_LOG;
    case NB_DIST_CHOICE: return SCALE_CATEGORY;
    default: return SCALE_LINEAR;
    }
}

/* The axis of parameter k: the space's bounds on its scale, widened to any value outside
 * them (a trial of an earlier, wider space). */
static axis_spec param_axis(const study_view *v, int k, const char **choice_texts)
{
    const nb_search_param *p = &v->s->space.p[k];
    axis_spec a = {.label = p->name, .kind = kind_of(p->kind), .exact = 1, .lo = p->lo,
                   .hi = p->hi};
    if (p->kind == NB_DIST_CHOICE) {
        for (int c = 0; c < p->n_choices; c++)
            choice_texts[c] = p->choices[c];
        a.n_categories = p->n_choices;
        a.categories = choice_texts;
        return a;
    }
    const double *x = param_values((study_view *)v, k);
    for (int i = 0; i < v->n; i++)
        if (!isnan(scale_t(a.kind, x[i]))) {
            a.lo = fmin(a.lo, x[i]);
            a.hi = fmax(a.hi, x[i]);
        }
    if (p->kind == NB_DIST_INT) {
        a.lo -= 0.5;
        a.hi += 0.5;
        a.integer = 1;
    }
    return a;
}

static int scatter_charts(nb_strbuf *b, study_view *v)
{
    double *acc = objectives(v);
    if (!acc)
        return -1;
    int rc = 0;
    for (int k = 0; k < v->s->space.n && rc == 0; k++) {
        const nb_search_param *p = &v->s->space.p[k];
        const char *texts[NB_SEARCH_MAX_CHOICES];
        double *masks[N_STYLES] = {NULL, NULL, NULL};
        rc = add_state_series(v, v->jittered + (size_t)k * v->n, acc, masks);
        const char *note = p->kind == NB_DIST_LOG ? "searched log-uniformly: log axis"
                           : p->kind == NB_DIST_ONE_MINUS_LOG
                               ? "searched as 1-x log-uniformly: 1-x on a log axis"
                           : p->kind == NB_DIST_CHOICE ? "a choice: points spread around "
                                                         "each value"
                                                       : NULL;
        chart c = {.id = builder_text(&v->bd, "param-%s", p->name),
                   .title = builder_text(&v->bd, "%s against %s", v->title, p->name),
                   .note = note, .x = param_axis(v, k, texts), .y = {.label = v->label},
                   .width = 460, .plot_height = 220};
        if (rc == 0 && builder_draw(&v->bd, b, &c) != 0)
            rc = -1;
        for (int s = 0; s < N_STYLES; s++)
            free(masks[s]);
    }
    free(acc);
    return rc;
}

/* Trial by trial, the best objective of the complete trials so far (the highest, or the
 * lowest where lower is better). */
static int best_so_far_chart(nb_strbuf *b, study_view *v)
{
    nb_metric m = v->s->opt.objective;
    double *acc = objectives(v), *best = malloc((size_t)v->n * sizeof *best);
    double *masks[N_STYLES] = {NULL, NULL, NULL};
    int rc = -1;
    if (acc && best) {
        double so_far = NAN;
        for (int i = 0; i < v->n; i++) {
            const trial *t = &v->s->trials[i];
            if (t->state == NB_TRIAL_COMPLETE && !isnan(t->final_objective) &&
                (isnan(so_far) ||
                 objective_score(m, t->final_objective) > objective_score(m, so_far)))
                so_far = t->final_objective;
            best[i] = so_far;
        }
        if (any_finite(best, v->n)) {
            builder_series(&v->bd, &(chart_series){
                .key = "best", .name = "best so far", .color = palette_color(2), .width = 2,
                .plain = 1, .n = v->n, .x = v->number, .y = best});
            builder_legend(&v->bd, &(legend_entry){"best", "best so far (complete trials)",
                                                    palette_color(2), DASH_SOLID, 1,
                                                    MARK_NONE});
        }
        rc = add_state_series(v, v->number, acc, masks);
        chart c = {.id = "best-so-far",
                   .title = builder_text(&v->bd, "Best %s so far", v->label),
                   .x = {.label = "trial", .integer = 1}, .y = {.label = v->label}};
        if (rc == 0)
            rc = builder_draw(&v->bd, b, &c);
    }
    for (int s = 0; s < N_STYLES; s++)
        free(masks[s]);
    free(acc);
    free(best);
    return rc;
}

/* Every trial's objective after each epoch, as the journal recorded it. */
static int learning_curves_chart(nb_strbuf *b, study_view *v)
{
    int most = 0;
    for (int i = 0; i < v->n; i++)
        most = v->s->trials[i].n_reported > most ? v->s->trials[i].n_reported : most;
    double *epochs = malloc(((size_t)most + 1) * sizeof *epochs);
    if (!epochs)
        return -1;
    for (int e = 0; e < most; e++)
        epochs[e] = e + 1;
    int present[NB_TRIAL_FAILED + 1] = {0};
    for (int pass = 0; pass < N_STYLES + 1; pass++) {
        /* Running trials first, then failed, pruned, complete: the complete ones on top. */
        nb_trial_state st = pass == 0 ? NB_TRIAL_RUNNING : STYLES[pass - 1].state;
        int color = pass == 0 ? RUNNING_COLOR : STYLES[pass - 1].color;
        for (int i = 0; i < v->n; i++) {
            const trial *t = &v->s->trials[i];
            /* An interrupted trial is unfinished, as a running one: the study resumes it. */
            nb_trial_state drawn = t->state == NB_TRIAL_INTERRUPTED ? NB_TRIAL_RUNNING : t->state;
            if (drawn != st || !any_finite(t->dev_objective, t->n_reported))
                continue;
            present[st] = 1;
            builder_series(&v->bd, &(chart_series){
                .key = nb_trial_state_name(st), .name = v->tips[i], .color = palette_color(color),
                .width = st == NB_TRIAL_COMPLETE ? 1.6 : 1.1, .plain = 1, .n = t->n_reported,
                .x = epochs, .y = t->dev_objective});
        }
        if (present[st])
            builder_legend(&v->bd, &(legend_entry){nb_trial_state_name(st), nb_trial_state_name(st),
                                                    palette_color(color), DASH_SOLID, 1,
                                                    MARK_NONE});
    }
    chart c = {.id = "learning-curves",
               .title = builder_text(&v->bd, "%s per epoch, every trial", v->title),
               .x = {.label = "epoch", .integer = 1}, .y = {.label = v->label}};
    int rc = builder_draw(&v->bd, b, &c);
    free(epochs);
    return rc;
}

static int parallel_chart(nb_strbuf *b, study_view *v)
{
    int n_axes = v->s->space.n + 1;
    parallel_axis *axes = calloc((size_t)n_axes, sizeof *axes);
    double *acc = objectives(v), *color = malloc((size_t)v->n * sizeof *color);
    double *shown = malloc((size_t)v->n * sizeof *shown);
    const char *texts[NB_SEARCH_MAX_PARAMS][NB_SEARCH_MAX_CHOICES];
    int rc = -1;
    if (axes && acc && color && shown) {
        /* Complete trials coloured by their score; pruned ones grey; failed ones and those
         * still running have no score to place. */
        double lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < v->n; i++) {
            nb_trial_state st = v->s->trials[i].state;
            shown[i] = st == NB_TRIAL_COMPLETE || st == NB_TRIAL_PRUNED ? acc[i] : NAN;
            color[i] = st == NB_TRIAL_COMPLETE ? acc[i] : NAN;
            if (!isnan(shown[i])) {
                lo = fmin(lo, shown[i]);
                hi = fmax(hi, shown[i]);
            }
        }
        if (!(lo <= hi))
            lo = 0, hi = 1;
        if (hi - lo < 1e-9)
            lo -= 0.01, hi += 0.01;
        for (int k = 0; k < v->s->space.n; k++) {
            axis_spec a = param_axis(v, k, texts[k]);
            axes[k] = (parallel_axis){a.label, a.kind, a.lo, a.hi, a.integer, a.n_categories,
                                      a.categories, v->jittered + (size_t)k * v->n};
        }
        axes[n_axes - 1] = (parallel_axis){v->label, SCALE_LINEAR, lo, hi, 0, 0, NULL, shown};
        svg_parallel(b, "parallel", "Parallel coordinates",
                     builder_text(&v->bd, "each trial a line through its values; complete "
                                          "trials coloured by %s", v->label),
                     axes, n_axes, v->n, color, v->label, (const char *const *)v->tips);
        rc = 0;
    }
    free(axes);
    free(acc);
    free(color);
    free(shown);
    return rc;
}

static void importance_chart(nb_strbuf *b, const study_view *v)
{
    const study_data *s = v->s;
    const cJSON *imp = s->best ? cJSON_GetObjectItemCaseSensitive(s->best, "importance") : NULL;
    if (!cJSON_IsObject(imp)) {
        page_note(b, "No importance ranking: %s.", s->best ? "best.json has none"
                                                           : "best.json is missing (the study "
                                                             "has not finished)");
        return;
    }
    int n = cJSON_GetArraySize(imp);
    const char **names = calloc((size_t)n + 1, sizeof *names);
    double *values = calloc((size_t)n + 1, sizeof *values);
    if (!names || !values) {
        b->failed = 1;
        free(names);
        free(values);
        return;
    }
    int m = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, imp) {
        /* Largest first, those without a value (null) last; insertion keeps it simple. */
        double x = cJSON_IsNumber(e) ? e->valuedouble : NAN;
        int at = m;
        while (at > 0 && (isnan(values[at - 1]) ? !isnan(x) : !isnan(x) && x > values[at - 1])) {
            names[at] = names[at - 1];
            values[at] = values[at - 1];
            at--;
        }
        names[at] = e->string;
        values[at] = x;
        m++;
    }
    char note[128];
    snprintf(note, sizeof note, "share of the variance of %s each hyperparameter explains",
             v->label);
    svg_bars(b, "importance", "What mattered", note, names, values, m, 1,
             "eta squared over the complete trials");
    free(names);
    free(values);
}

static void summary_section(nb_strbuf *b, const study_view *v)
{
    const study_data *s = v->s;
    int count[NB_TRIAL_FAILED + 1] = {0};
    for (int i = 0; i < s->n_trials; i++)
        count[s->trials[i].state]++;
    page_section(b, "Outcome");
    page_note(b, "%d trials: %d complete, %d pruned, %d failed, %d running or interrupted, %d "
                 "not started.", s->n_trials, count[NB_TRIAL_COMPLETE], count[NB_TRIAL_PRUNED],
              count[NB_TRIAL_FAILED], count[NB_TRIAL_RUNNING] + count[NB_TRIAL_INTERRUPTED],
              count[NB_TRIAL_PENDING]);
    if (!s->best) {
        page_note(b, "best.json is missing: the study has not finished, or no trial completed; "
                     "the best model has not been measured on the test set.");
        page_section_end(b);
        return;
    }
    /* The objective on the dev and the test set: best.json's dev_M and test_M. */
    char dev_key[64], test_key[64], test_label[64];
    objective_key(s->opt.objective, "dev", dev_key, sizeof dev_key);
    objective_key(s->opt.objective, "test", test_key, sizeof test_key);
    snprintf(test_label, sizeof test_label, "test %s", v->label + strlen("dev "));
    page_table_begin(b, NULL, "best trial", v->label, test_label, "epochs", "params",
                     (const char *)NULL);
    char params[PARAMS_TEXT_MAX];
    params_object_text(cJSON_GetObjectItemCaseSensitive(s->best, "params"), params,
                       sizeof params);
    page_row_begin(b, "best");
    page_cell_num(b, "%.0f", json_number(s->best, "trial"));
    page_cell_num(b, "%.4f", json_number(s->best, dev_key));
    page_cell_num(b, "%.4f", json_number(s->best, test_key));
    page_cell_num(b, "%.0f", json_number(s->best, "epochs"));
    page_cell_wrapped(b, params);
    page_row_end(b);
    /* tune --refit: the best configuration trained again on train + dev (no dev figure). */
    const cJSON *refit = cJSON_GetObjectItemCaseSensitive(s->best, "refit");
    if (refit) {
        page_row_begin(b, NULL);
        page_cell(b, "refit");
        page_cell_num(b, "%.4f", NAN);
        page_cell_num(b, "%.4f", json_number(refit, test_key));
        page_cell_num(b, "%.0f", json_number(refit, "epochs"));
        page_cell_wrapped(b, "the best trial's, on the whole training set (its dev split "
                             "included)");
        page_row_end(b);
    }
    page_table_end(b);
    const char *command = json_string(s->best, "command");
    if (command) {
        nb_sb_puts(b, "<p class=\"note\">Train it again: <code>");
        html_escape(b, command);
        nb_sb_puts(b, "</code></p>\n");
    }
    if (refit) {
        nb_sb_puts(b, "<p class=\"note\">The refit, ");
        html_escape(b, json_string(refit, "model"));
        nb_sb_puts(b, ", was trained by <code>");
        html_escape(b, json_string(refit, "command"));
        nb_sb_puts(b, "</code>");
        if (isnan(json_number(refit, test_key)))
            nb_sb_puts(b, " (no test figure: the study has no test set, or the task no such "
                       "metric)");
        nb_sb_puts(b, ".</p>\n");
    }
    page_section_end(b);
}

static void leaderboard(nb_strbuf *b, const study_view *v, const int *order, int n)
{
    const study_data *s = v->s;
    page_section(b, "Leaderboard");
    nb_sb_puts(b, "<table><thead><tr><th>rank</th><th>trial</th><th>state</th><th>");
    html_escape(b, s->opt.objective == NB_METRIC_ACCURACY ? "dev acc" : v->label);
    nb_sb_puts(b, "</th><th>epochs</th><th>seconds</th>");
    for (int k = 0; k < s->space.n; k++) {
        nb_sb_puts(b, "<th>");
        html_escape(b, s->space.p[k].name);
        nb_sb_puts(b, "</th>");
    }
    nb_sb_puts(b, "<th>note</th></tr></thead>\n<tbody>\n");
    for (int r = 0; r < n; r++) {
        const trial *t = &s->trials[order[r]];
        page_row_begin(b, r == 0 && t->state == NB_TRIAL_COMPLETE ? "best" : NULL);
        page_cell_num(b, "%.0f", r + 1);
        page_cell_num(b, "%.0f", order[r]);
        page_cell(b, nb_trial_state_name(t->state));
        page_cell_num(b, "%.4f", t->final_objective);
        page_cell_num(b, "%.0f", t->state >= NB_TRIAL_COMPLETE ? t->epochs : NAN);
        page_cell_num(b, "%.1f", t->seconds);
        for (int k = 0; k < s->space.n; k++) {
            char text[NB_SEARCH_VALUE_MAX];
            nb_search_value_text(&s->space.p[k], t->point.v[k], text, sizeof text);
            page_cell_wrapped(b, text);
        }
        page_cell(b, t->reason);
        page_row_end(b);
    }
    page_table_end(b);
    page_section_end(b);
}

static int body(nb_strbuf *b, study_view *v, nb_error *err)
{
    const study_data *s = v->s;
    summary_section(b, v);
    char title[128];
    snprintf(title, sizeof title, "%s against each hyperparameter", v->title);
    page_section(b, title);
    page_charts_begin(b);
    if (scatter_charts(b, v) != 0)
        return nb_fail(err, "out of memory");
    page_charts_end(b);
    page_section_end(b);

    page_section(b, "Search");
    page_charts_begin(b);
    if (best_so_far_chart(b, v) != 0 || learning_curves_chart(b, v) != 0)
        return nb_fail(err, "out of memory");
    page_charts_end(b);
    page_section_end(b);

    page_section(b, "Parallel coordinates");
    if (parallel_chart(b, v) != 0)
        return nb_fail(err, "out of memory");
    page_section_end(b);

    page_section(b, "What mattered");
    importance_chart(b, v);
    page_section_end(b);

    int n = 0;
    int *order = study_rank(s, &n);
    if (!order)
        return nb_fail(err, "out of memory");
    leaderboard(b, v, order, n);
    free(order);

    page_section(b, "Settings");
    page_object_table(b, s->settings, 1);
    page_section_end(b);
    return 0;
}

int report_study_page(nb_strbuf *b, const study_data *s, const char *title, nb_error *err)
{
    char default_title[512], subtitle[512];
    snprintf(default_title, sizeof default_title, "Study %s", s->dir);
    snprintf(subtitle, sizeof subtitle, "nabla %s report of the hyperparameter search in %s",
             NABLA_VERSION, s->dir);
    page_begin(b, title ? title : default_title, subtitle);
    study_view v;
    int rc = view_init(&v, s) == 0 ? body(b, &v, err) : nb_fail(err, "out of memory");
    view_free(&v);
    page_end(b);
    return rc;
}
