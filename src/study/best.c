/* A finished study's best.json (nabla.h: nb_study_write_best), and the importance of its
 * parameters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_write.h"
#include "study/journal.h"
#include "study/leaderboard.h"
#include "study/objective.h"
#include "study/study.h"

int nb_study_importance(const nb_study *s, double *explained)
{
    const nb_study_config *c = &s->cfg;
    int n = 0;
    nb_search_point *pts = malloc((size_t)c->trials * sizeof *pts);
    double *score = malloc((size_t)c->trials * sizeof *score);
    for (int i = 0; pts && score && i < c->trials; i++)
        if (s->trials[i].state == NB_TRIAL_COMPLETE) {
            pts[n] = s->trials[i].point;
            score[n++] = s->trials[i].final_objective;
        }
    for (int k = 0; k < c->space.n; k++)
        explained[k] = NAN;
    nb_error err;
    if (!pts || !score ||
        nb_search_importance(&c->space, pts, score, n, explained, &err) != 0)
        n = 0; /* said as "too few to say" */
    if (n < 3)
        for (int k = 0; k < c->space.n; k++)
            explained[k] = NAN;
    free(pts);
    free(score);
    return n;
}

static void add_figure(cJSON *j, const char *name, double v)
{
    cJSON_AddItemToObject(j, name, json_double(v));
}

/* The best trial's members: params, dev and test figures, epochs, the caller's notes. */
static int add_best(const nb_study *s, int b, const nb_study_notes *notes, cJSON *j,
                    nb_error *err)
{
    const nb_study_config *c = &s->cfg;
    const trial *t = &s->trials[b];
    nb_trial_figures none = {NAN, NAN, NAN};
    const nb_trial_figures *test = notes ? &notes->test : &none;
    cJSON_AddNumberToObject(j, "trial", b);
    cJSON_AddItemToObject(j, "params", params_json(&c->space, &t->point));
    add_figure(j, "dev_accuracy", t->final_accuracy);
    add_figure(j, "dev_loss", t->final_loss);
    add_figure(j, "test_accuracy", test->accuracy);
    add_figure(j, "test_loss", test->loss);
    if (objective_is_extra(c->objective)) {
        char key[64];
        objective_key(c->objective, "dev", key, sizeof key);
        add_figure(j, key, t->final_objective);
        objective_key(c->objective, "test", key, sizeof key);
        add_figure(j, key, test->objective);
    }
    cJSON_AddNumberToObject(j, "epochs", t->epochs);
    if (notes && notes->model)
        cJSON_AddStringToObject(j, "model", notes->model);
    if (notes && notes->command)
        cJSON_AddStringToObject(j, "command", notes->command);
    if (notes && notes->extra_json) {
        cJSON *extra = cJSON_Parse(notes->extra_json);
        if (!cJSON_IsObject(extra)) {
            cJSON_Delete(extra);
            return nb_fail(err, "best.json: the notes' extra members are not a JSON object");
        }
        while (extra->child) {
            cJSON *item = cJSON_DetachItemViaPointer(extra, extra->child);
            cJSON_AddItemToObject(j, item->string, item); /* the name is copied first */
        }
        cJSON_Delete(extra);
    }
    return 0;
}

int nb_study_write_best(nb_study *s, const nb_study_notes *notes, nb_error *err)
{
    const nb_study_config *c = &s->cfg;
    if (!s->dir)
        return nb_fail(err, "a study in memory has no best.json");
    if (nb_study_finished(s) < c->trials)
        return nb_fail(err, "best.json is written once every trial has finished (%d of %d)",
                       nb_study_finished(s), c->trials);
    int counts[NB_TRIAL_FAILED + 1] = {0};
    for (int i = 0; i < c->trials; i++)
        counts[s->trials[i].state]++;
    double seconds, waited;
    study_seconds(s, &seconds, &waited);
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return nb_fail(err, "out of memory");
    cJSON_AddNumberToObject(j, "trials", c->trials);
    cJSON_AddStringToObject(j, "objective", nb_metric_name(c->objective));
    cJSON_AddNumberToObject(j, "complete", counts[NB_TRIAL_COMPLETE]);
    cJSON_AddNumberToObject(j, "pruned", counts[NB_TRIAL_PRUNED]);
    cJSON_AddNumberToObject(j, "failed", counts[NB_TRIAL_FAILED]);
    cJSON_AddNumberToObject(j, "trial_seconds", seconds);
    cJSON_AddNumberToObject(j, "waited_seconds", waited);
    int b = nb_study_best(s), rc = 0;
    if (b < 0)
        cJSON_AddNullToObject(j, "trial");
    else
        rc = add_best(s, b, notes, j, err);
    double explained[NB_SEARCH_MAX_PARAMS];
    nb_study_importance(s, explained);
    cJSON *imp = cJSON_AddObjectToObject(j, "importance");
    for (int k = 0; imp && k < c->space.n; k++)
        add_figure(imp, c->space.p[k].name, explained[k]);
    /* Nothing is written for a study whose files someone else changed since its last event:
     * that is not the study the journal tells. */
    if (rc == 0)
        rc = journal_intact(&s->journal, err);
    if (rc == 0)
        rc = write_json_file(s->dir, "best.json", j, err);
    cJSON_Delete(j);
    return rc;
}
