/* A study directory read back and checked as a whole (study_files.h). best.json is written by
 * tune_report.c at the study's end, the journal by tune_run.c, trials/<n>/ by each trial. */
#include "cli/tune/study_files.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/tune/tune_rules.h"
#include "io/paths.h"
#include "study/leaderboard.h"
#include "io/json_files.h"
#include "cli/common/run_check.h"
#include "study/objective.h"
#include "cli/tune/refit_epochs.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* As nb_study_write_best writes them; the best trial's members only when there is one.
 * "objective" came with objectives: a best.json from before them names none (its study ranked
 * by dev accuracy); "waited_seconds" came with TPE. The objective's own members ("dev_rmse",
 * "test_rmse") are checked apart. */
static const member_rule BEST_MEMBERS[] = {
    {"trials", MT_NUMBER, V_INT_1, 0, NULL, 1, NULL},
    {"objective", MT_STRING, 0, 0, NULL, 0, NULL},
    {"complete", MT_NUMBER, V_INT, 0, NULL, 1, NULL},
    {"pruned", MT_NUMBER, V_INT, 0, NULL, 1, NULL},
    {"failed", MT_NUMBER, V_INT, 0, NULL, 1, NULL},
    {"trial_seconds", MT_NUMBER, V_NON_NEG, 0, NULL, 1, NULL},
    {"waited_seconds", MT_NUMBER, V_NON_NEG, 0, NULL, 0, NULL},
    {"trial", MT_NUMBER, V_INT, 1, NULL, 1, NULL},
    {"params", MT_OBJECT, 0, 0, NULL, 0, NULL},
    {"dev_accuracy", MT_NUMBER, V_UNIT, 1, NULL, 0, NULL},
    {"dev_loss", MT_NUMBER, V_NON_NEG, 1, NULL, 0, NULL},
    {"test_accuracy", MT_NUMBER, V_UNIT, 1, NULL, 0, NULL},
    {"test_loss", MT_NUMBER, V_NON_NEG, 1, NULL, 0, NULL},
    {"epochs", MT_NUMBER, V_INT_1, 0, NULL, 0, NULL},
    {"model", MT_STRING, 0, 0, NULL, 0, NULL},
    {"command", MT_STRING, 0, 0, NULL, 0, NULL},
    {"importance", MT_OBJECT, 0, 0, NULL, 1, NULL},
    {"refit", MT_OBJECT, 0, 0, NULL, 0, NULL},   /* tune --refit's only */
};
static const char *const BEST_TRIAL_MEMBERS[] = {"params", "dev_accuracy", "dev_loss",
                                                 "test_accuracy", "test_loss", "epochs",
                                                 "model", "command"};

/* The best complete trial, as the tuner ranks them; -1 when none is complete, -2 out of
 * memory. */
static int best_trial(const tune_options *opt, const trial *trials)
{
    int n;
    int *order = leaderboard_rank(trials, opt->trials, opt->objective, 1, &n);
    if (!order)
        return -2;
    int b = n > 0 && trials[order[0]].state == NB_TRIAL_COMPLETE ? order[0] : -1;
    free(order);
    return b;
}

/* Two numbers of the same result: equal, or both null. */
static int same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

/* best.json's best trial (b >= 0) and what it says of it: the journal's. */
static int best_trial_check(const cJSON *best, const char *text, const char *path,
                            const tune_options *opt, const trial *t, int b, nb_error *err)
{
    for (int k = 0; k < N_OF(BEST_TRIAL_MEMBERS); k++)
        if (!cJSON_GetObjectItemCaseSensitive(best, BEST_TRIAL_MEMBERS[k]))
            return nb_fail(err, "%s: \"%s\" is missing (\"trial\" is %d)", path,
                           BEST_TRIAL_MEMBERS[k], b);
    cJSON *params = params_json(&opt->space, &t->point);
    if (!params)
        return nb_fail(err, "out of memory");
    int same_params = cJSON_Compare(params, cJSON_GetObjectItemCaseSensitive(best, "params"), 1);
    cJSON_Delete(params);
    if (!same_params)
        return json_member_fail(text, path, "params", err,
                                "\"params\" are not those trial %d started "
                                "with (journal.jsonl)", b);
    char dev_key[64], test_key[64];
    objective_key(opt->objective, "dev", dev_key, sizeof dev_key);
    objective_key(opt->objective, "test", test_key, sizeof test_key);
    int extra = objective_is_extra(opt->objective);
    /* Another objective's members: its dev value (below), its test value or null. */
    for (int k = 0; extra && k < 2; k++) {
        const char *key = k == 0 ? dev_key : test_key;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(best, key);
        double lo, hi;
        objective_bounds(opt->objective, &lo, &hi);
        if (!v)
            return nb_fail(err, "%s: \"%s\" is missing (\"trial\" is %d, the objective %s)",
                           path, key, b, nb_metric_name(opt->objective));
        if (!cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble >= lo &&
                                  v->valuedouble <= hi))
            return json_member_fail(text, path, key, err, "\"%s\" must be a value of %s "
                                    "(in [%g, %g]) or null", key, nb_metric_name(opt->objective),
                                    lo, hi);
    }
    const char *figures[] = {"dev_accuracy", "dev_loss", "epochs", dev_key};
    double journal[] = {t->final_accuracy, t->final_loss, t->epochs, t->final_objective};
    for (int k = 0; k < 3 + extra; k++) {
        double v = json_number(best, figures[k]);
        if (same(v, journal[k]))
            continue;
        char here[40], there[40];
        json_number_text(v, here, sizeof here);
        json_number_text(journal[k], there, sizeof there);
        return json_member_fail(text, path, figures[k], err,
                                "\"%s\" is %s, but trial %d ended with %s "
                                "(journal.jsonl)", figures[k], here, b, there);
    }
    char model[64];
    snprintf(model, sizeof model, "trials/%d/model.safetensors", b);
    const char *given = json_string(best, "model");
    if (strcmp(given, model) != 0)
        return json_member_fail(text, path, "model", err,
                                "\"model\" is \"%.80s\", but the best trial's "
                                "is %s", given, model);
    return 0;
}

/* "refit" (tune --refit): its members as refit_json writes them; the objective's test value is
 * checked apart. */
static const member_rule REFIT_MEMBERS[] = {
    {"epochs", MT_NUMBER, V_INT, 0, NULL, 1, NULL},
    {"model", MT_STRING, 0, 0, NULL, 1, NULL},
    {"test_accuracy", MT_NUMBER, V_UNIT, 1, NULL, 1, NULL},
    {"test_loss", MT_NUMBER, V_NON_NEG, 1, NULL, 1, NULL},
    {"command", MT_STRING, 0, 0, NULL, 1, NULL},
};

/* best.json's "refit": the refit of the best trial b (its epochs by refit_epochs, from the
 * trial's own summary.json), in refit/. Messages name the line of "refit". */
static int refit_check(const cJSON *best, const char *text, const char *path, const char *dir,
                       const tune_options *opt, const trial *t, int b, nb_error *err)
{
    const cJSON *refit = cJSON_GetObjectItemCaseSensitive(best, "refit");
    char where[4200];
    json_member_where(text, path, "refit", where, sizeof where);
    if (b < 0)
        return nb_fail(err, "%s: \"refit\", but no trial of journal.jsonl is complete: there is "
                            "no best configuration to refit", where);
    char holder[4300];
    snprintf(holder, sizeof holder, "%s: \"refit\"", where);
    if (json_members_check(refit, NULL, holder, REFIT_MEMBERS, N_OF(REFIT_MEMBERS), err) != 0)
        return -1;
    if (objective_is_extra(opt->objective)) {
        char key[64];
        double lo, hi;
        objective_key(opt->objective, "test", key, sizeof key);
        objective_bounds(opt->objective, &lo, &hi);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(refit, key);
        if (!v || !(cJSON_IsNull(v) || (cJSON_IsNumber(v) && v->valuedouble >= lo &&
                                        v->valuedouble <= hi)))
            return nb_fail(err, "%s: \"%s\" %s: a value of %s (in [%g, %g]) or null", holder, key,
                           v ? "must be" : "is missing; it is", nb_metric_name(opt->objective),
                           lo, hi);
    }
    int epochs = refit_epochs(dir, b, t->epochs, err);
    if (epochs < 0)
        return -1;
    if (json_number(refit, "epochs") != epochs)
        return nb_fail(err, "%s: \"epochs\" is %g, but the refit of trial %d trains %d (the "
                            "epochs of its model: trials/%d/summary.json)", holder,
                       json_number(refit, "epochs"), b, epochs, b);
    if (strcmp(json_string(refit, "model"), REFIT_MODEL) != 0)
        return nb_fail(err, "%s: \"model\" is \"%.80s\", but the refit's is %s", holder,
                       json_string(refit, "model"), REFIT_MODEL);
    return 0;
}

/* "importance": a share of the variance for each parameter of the space, in [0, 1], or null
 * (too few complete trials to tell). */
static int importance_check(const cJSON *best, const char *text, const char *path,
                            const tune_options *opt, nb_error *err)
{
    const cJSON *imp = cJSON_GetObjectItemCaseSensitive(best, "importance");
    for (const cJSON *m = imp->child; m; m = m->next) {
        int known = 0;
        for (int k = 0; k < opt->space.n && !known; k++)
            known = strcmp(m->string, opt->space.p[k].name) == 0;
        if (!known)
            return json_member_fail(text, path, "importance", err,
                                    "\"importance\" has \"%.80s\", which "
                                    "is not a parameter of the study's space", m->string);
        if (!cJSON_IsNull(m) && !(cJSON_IsNumber(m) && m->valuedouble >= 0 &&
                                  m->valuedouble <= 1))
            return json_member_fail(text, path, "importance", err,
                                    "\"importance\": \"%.80s\" must be a "
                                    "share in [0, 1] or null", m->string);
    }
    for (int k = 0; k < opt->space.n; k++)
        if (!cJSON_GetObjectItemCaseSensitive(imp, opt->space.p[k].name))
            return json_member_fail(text, path, "importance", err, "\"importance\" lacks \"%s\", a "
                                    "parameter of the study's space", opt->space.p[k].name);
    return 0;
}

/* best.json against the journal, which it ends: written once every trial has finished. */
static int best_check(const cJSON *best, const char *text, const char *path, const char *dir,
                      const tune_options *opt, const trial *trials, nb_error *err)
{
    if (json_members_check(best, text, path, BEST_MEMBERS, N_OF(BEST_MEMBERS), err) != 0)
        return -1;
    const char *objective = json_string(best, "objective");
    const char *want = nb_metric_name(opt->objective);
    if (!objective && opt->objective != NB_METRIC_ACCURACY)
        return nb_fail(err, "%s: \"objective\" is missing, but the study's is %s (study.json)",
                       path, want);
    if (objective && strcmp(objective, want) != 0)
        return json_member_fail(text, path, "objective", err, "\"objective\" is \"%.40s\", but "
                                "the study's is %s (study.json)", objective, want);
    if (json_number(best, "trials") != opt->trials)
        return json_member_fail(text, path, "trials", err,
                                "\"trials\" is %.0f, but the study has %d "
                                "(study.json)", json_number(best, "trials"), opt->trials);
    int counts[NB_TRIAL_FAILED + 1] = {0};
    double seconds = 0, waited = 0;
    for (int i = 0; i < opt->trials; i++) {
        if (!trial_finished(&trials[i]))
            return nb_fail(err, "%s: the study's last word, but trial %d has not finished in "
                                "journal.jsonl (%s)", path, i,
                           trials[i].state == NB_TRIAL_PENDING ? "it never started"
                                                            : nb_trial_state_name(trials[i].state));
        counts[trials[i].state]++;
        seconds += trials[i].seconds;
        waited += trials[i].waited;
    }
    static const nb_trial_state states[] = {NB_TRIAL_COMPLETE, NB_TRIAL_PRUNED, NB_TRIAL_FAILED};
    for (int k = 0; k < 3; k++) {
        const char *name = nb_trial_state_name(states[k]);
        if (json_number(best, name) != counts[states[k]])
            return json_member_fail(text, path, name, err,
                                    "\"%s\" is %.0f, but journal.jsonl has %d %s trial%s",
                                    name, json_number(best, name), counts[states[k]], name,
                                    counts[states[k]] == 1 ? "" : "s");
    }
    double given = json_number(best, "trial_seconds");
    if (fabs(given - seconds) > 1e-9 * fmax(1, seconds))
        return json_member_fail(text, path, "trial_seconds", err,
                                "\"trial_seconds\" is %g, but the "
                                "trials of journal.jsonl ran %g s", given, seconds);
    const cJSON *given_wait = cJSON_GetObjectItemCaseSensitive(best, "waited_seconds");
    if (given_wait && fabs(given_wait->valuedouble - waited) > 1e-9 * fmax(1, waited))
        return json_member_fail(text, path, "waited_seconds", err,
                                "\"waited_seconds\" is %g, but the trials of journal.jsonl "
                                "waited %g s to start", given_wait->valuedouble, waited);
    int b = best_trial(opt, trials);
    if (b == -2)
        return nb_fail(err, "out of memory");
    double named = json_number(best, "trial");
    if (b < 0 && !isnan(named))
        return json_member_fail(text, path, "trial", err, "\"trial\" is %.0f, but no trial of "
                                "journal.jsonl is complete", named);
    if (b >= 0 && named != b) {
        char value[40], here[40], label[64];
        json_number_text(trials[b].final_objective, value, sizeof value);
        json_number_text(named, here, sizeof here);
        objective_label(opt->objective, label, sizeof label);
        return json_member_fail(text, path, "trial", err, "\"trial\" is %s, but the best complete "
                                "trial of journal.jsonl is %d (%s %s)", here, b, label, value);
    }
    if (b >= 0 && best_trial_check(best, text, path, opt, &trials[b], b, err) != 0)
        return -1;
    if (cJSON_GetObjectItemCaseSensitive(best, "refit") &&
        refit_check(best, text, path, dir, opt, b >= 0 ? &trials[b] : NULL, b, err) != 0)
        return -1;
    return importance_check(best, text, path, opt, err);
}

/* trials/: a directory whose numbered entries are trials of the study. (A trial's run there
 * may be ahead of the journal, whose last events a crash of the tuner can lose: the same
 * command then continues the trial from the run's checkpoint.) */
static int trials_check(const char *dir, const tune_options *opt, nb_error *err)
{
    char *path = path_join(dir, "trials");
    if (!path)
        return nb_fail(err, "out of memory");
    struct stat st;
    int rc = 0;
    DIR *d = NULL;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT)
            rc = nb_fail(err, "%s: %s", path, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        rc = nb_fail(err, "%s: is %s, but a study keeps its trials' run directories there",
                     path, S_ISREG(st.st_mode) ? "a regular file" : "not a directory");
    } else if (!(d = opendir(path))) {
        rc = nb_fail(err, "%s: %s", path, strerror(errno));
    }
    for (struct dirent *e; d && rc == 0 && (e = readdir(d)) != NULL;) {
        const char *name = e->d_name;
        size_t len = strlen(name);
        if (len == 0 || len > 9 || strspn(name, "0123456789") != len || (name[0] == '0' && len > 1))
            continue;   /* not a trial's: left alone */
        int i = atoi(name);
        if (i >= opt->trials)
            rc = nb_fail(err, "%s/%s: trial %d, but the study has %d trials (study.json)", path,
                         name, i, opt->trials);
    }
    if (d)
        closedir(d);
    free(path);
    return rc;
}

/* "path:line: "name" is x, but the journal ..." for a trial's file that disagrees with it. */
static int trial_disagrees(const char *where, const char *name, double here, double there,
                           const char *what, int i, nb_error *err)
{
    char a[40], b[40];
    json_number_text(here, a, sizeof a);
    json_number_text(there, b, sizeof b);
    return nb_fail(err, "%s: \"%s\" is %s, but journal.jsonl has %s for trial %d's %s (the "
                        "trial's own files and the journal tell one run)", where, name, a, b, i,
                   what);
}

/* Each epoch of a trial's metrics.jsonl that the journal reported has the objective reported,
 * where it is another metric than accuracy and loss (those are METRICS_TABLE's). */
static int objective_column_check(const char *metrics, const char *key, int finished, int i,
                                  const trial *t, nb_error *err)
{
    const table_column cols[] = {{"epoch", V_INT_1, 1}, {key, V_FINITE, 0}};
    const table_spec spec = {cols, 2, NULL};
    table m = {0};
    int rc = report_read_table(metrics, &spec, NULL, finished ? "summary.json" : NULL, &m, err);
    for (int row = 0; rc == 0 && row < m.n; row++) {
        int e = (int)m.col[0][row];
        if (e > t->n_reported || isnan(t->dev_objective[e - 1]) ||
            same(m.col[1][row], t->dev_objective[e - 1]))
            continue;
        char where[4200], what[40];
        snprintf(where, sizeof where, "%s:%d", metrics, row + 1);
        snprintf(what, sizeof what, "epoch %d", e);
        rc = trial_disagrees(where, key, m.col[1][row], t->dev_objective[e - 1], what, i, err);
    }
    table_free(&m);
    return rc;
}

/* Trial i's own run, trials/<i>/: each epoch of its metrics.jsonl that the journal reported
 * has the dev figures reported (the trial sent that very line to the tuner), and the
 * summary.json of a complete trial is the journal's end of it (which the tuner read from it). */
static int trial_run_check(const char *dir, const tune_options *opt, int i, const trial *t,
                           nb_error *err)
{
    char key[64];
    objective_key(opt->objective, "dev", key, sizeof key);
    int extra = objective_is_extra(opt->objective);
    char name[64];
    snprintf(name, sizeof name, "trials/%d/metrics.jsonl", i);
    char *metrics = path_join(dir, name);
    snprintf(name, sizeof name, "trials/%d/summary.json", i);
    char *summary = path_join(dir, name);
    int rc = !metrics || !summary ? nb_fail(err, "out of memory") : 0;
    int finished = rc == 0 && report_file_exists(summary);
    table m = {0};
    if (rc == 0 && report_file_exists(metrics) &&
        (rc = report_read_table(metrics, &METRICS_TABLE, NULL, finished ? "summary.json" : NULL,
                                &m, err)) == 0)
        for (int row = 0; row < m.n && rc == 0; row++) {
            int e = (int)m.col[M_EPOCH][row];
            if (e > t->n_reported || isnan(t->dev_objective[e - 1]))
                continue;
            char where[4200], what[40];
            snprintf(where, sizeof where, "%s:%d", metrics, row + 1);
            snprintf(what, sizeof what, "epoch %d", e);
            if (!same(m.col[M_DEV_ACC][row], t->dev_accuracy[e - 1]))
                rc = trial_disagrees(where, "dev_accuracy", m.col[M_DEV_ACC][row],
                                     t->dev_accuracy[e - 1], what, i, err);
            else if (!same(m.col[M_DEV_LOSS][row], t->dev_loss[e - 1]))
                rc = trial_disagrees(where, "dev_loss", m.col[M_DEV_LOSS][row],
                                     t->dev_loss[e - 1], what, i, err);
        }
    table_free(&m);
    if (rc == 0 && extra && report_file_exists(metrics))
        rc = objective_column_check(metrics, key, finished, i, t, err);
    cJSON *j = NULL;
    char *text = NULL;
    if (rc == 0 && finished && t->state == NB_TRIAL_COMPLETE &&
        (rc = report_read_json_text(summary, 0, &j, &text, err)) == 0) {
        const char *names[3] = {"dev_accuracy", "dev_loss", key};
        double journal[3] = {t->final_accuracy, t->final_loss, t->final_objective};
        for (int k = 0; k < 2 + extra && rc == 0; k++)
            if (!same(json_number(j, names[k]), journal[k])) {
                char where[4200];
                json_member_where(text, summary, names[k], where, sizeof where);
                rc = trial_disagrees(where, names[k], json_number(j, names[k]), journal[k],
                                     "end", i, err);
            }
    }
    cJSON_Delete(j);
    free(text);
    free(metrics);
    free(summary);
    return rc;
}

int study_files_check(const char *dir, const tune_options *opt, const trial *trials,
                      nb_error *err)
{
    int rc = trials_check(dir, opt, err);
    for (int i = 0; rc == 0 && i < opt->trials; i++)
        if (trials[i].has_point)
            rc = trial_run_check(dir, opt, i, &trials[i], err);
    return rc;
}

int study_read_back(const char *dir, const tune_options *opt, trial *trials, cJSON **best,
                    nb_error *err)
{
    char *best_path = path_join(dir, "best.json"), *journal = path_join(dir, "journal.jsonl");
    char *text = NULL;
    cJSON *none = NULL, **best_json = best ? best : &none;
    int rc = !best_path || !journal ? nb_fail(err, "out of memory")
             : best                 ? report_read_json_text(best_path, 1, best, &text, err)
                                    : 0;
    tune_rules rules = {opt, NULL, NULL};
    nb_study_config cfg;
    tune_study_config(&rules, &cfg);
    if (rc == 0 && report_file_exists(journal))
        rc = journal_read(journal, &cfg, trials, err);
    if (rc == 0)
        rc = study_files_check(dir, opt, trials, err);
    if (rc == 0 && *best_json)
        rc = best_check(*best_json, text, best_path, dir, opt, trials, err);
    free(text);
    free(best_path);
    free(journal);
    return rc;
}
