/* The trials' configurations, round by round or by TPE, and when each is known (see
 * tune_plan.h). */
#include "tune_plan.h"

#include <math.h>
#include <stdlib.h>

#include "tune_objective.h"

/* Round q's space: round q-1's, narrowed to the best quarter of the finished trials of the
 * rounds before q (their results are final once round q may start). */
static int narrow_round(study *s, int q, nb_error *err)
{
    const tune_options *o = s->opt;
    int n = 0;
    nb_search_point *pts = malloc((size_t)o->trials * sizeof *pts);
    double *score = malloc((size_t)o->trials * sizeof *score);
    if (!pts || !score) {
        free(pts);
        free(score);
        return nb_fail(err, "out of memory");
    }
    for (int i = 0; i < o->trials; i++)
        if (s->trials[i].round < q && s->trials[i].has_point) {
            pts[n] = s->trials[i].point;
            score[n++] = s->trials[i].state == TRIAL_COMPLETE
                             ? objective_score(o->objective, s->trials[i].final_objective)
                             : NAN;
        }
    int rc = nb_search_narrow(&s->round_space[q - 1], pts, score, n, 0.25, &s->round_space[q],
                              err);
    free(pts);
    free(score);
    return rc;
}

/* The configurations of round r's trials (sampled, or taken from the journal); the space of
 * round r is narrowed from the finished trials of the rounds before it, so they must be done.
 * A round after the first writes its space to the journal. */
static int plan_round(study *s, int r, nb_error *err)
{
    const tune_options *o = s->opt;
    for (; s->rounds_known <= r; s->rounds_known++)
        if (narrow_round(s, s->rounds_known, err) != 0)
            return -1;
    int first, end;
    round_range(o->trials, o->rounds, r, &first, &end);
    nb_search_point *grid = NULL;
    if (o->sampler == SAMPLER_GRID) {
        grid = malloc((size_t)(end - first) * sizeof *grid);
        if (!grid)
            return nb_fail(err, "out of memory");
        if (nb_search_grid(&s->round_space[r], end - first, o->seed + (uint64_t)r, grid,
                           err) != 0) {
            free(grid);
            return -1;
        }
    }
    int news = 0;
    for (int i = first; i < end; i++) {
        trial *t = &s->trials[i];
        if (t->has_point)
            continue; /* started before: the journal holds what it ran with */
        news++;
        if (grid)
            t->point = grid[i - first];
        else
            nb_search_sample(&s->round_space[r], o->seed, i, &t->point);
        t->has_point = 1;
    }
    free(grid);
    /* The journal says where each round after the first searched. */
    if (news < end - first || r == 0)
        return 0;
    char *text = malloc(NB_SEARCH_FORMAT_MAX);
    if (!text || nb_search_space_format(&s->round_space[r], text, NB_SEARCH_FORMAT_MAX) != 0) {
        free(text);
        return nb_fail(err, "out of memory");
    }
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddNumberToObject(ev, "round", r);
    cJSON_AddStringToObject(ev, "space", text);
    free(text);
    return journal_append(s, ev, err);
}

int study_trial_ready(const study *s, int i)
{
    const trial *t = &s->trials[i];
    if (t->has_point)
        return 1;
    if (s->opt->sampler == SAMPLER_TPE) {
        for (int u = 0; u < tune_tpe_given(s->opt, i); u++)
            if (!trial_finished(&s->trials[u]))
                return 0;
        return 1;
    }
    for (int u = 0; u < i; u++)
        if (s->trials[u].round < t->round && !trial_finished(&s->trials[u]))
            return 0;
    return 1;
}

/* TPE's point for trial i, from the final results of the trials it learns from. */
static int tpe_point(study *s, int i, nb_error *err)
{
    const tune_options *o = s->opt;
    int n = tune_tpe_given(o, i);
    nb_tpe_trial *done = malloc((size_t)(n > 0 ? n : 1) * sizeof *done);
    if (!done)
        return nb_fail(err, "out of memory");
    for (int u = 0; u < n; u++) {
        const trial *t = &s->trials[u];
        done[u].point = t->point;
        done[u].score = t->state == TRIAL_FAILED ? NAN
                                                 : objective_score(o->objective, t->final_objective);
        done[u].pruned_epoch = t->state == TRIAL_PRUNED ? t->epochs : 0;
    }
    int rc = nb_tpe_suggest(&o->space, NULL, done, n, o->seed, i, &s->trials[i].point, err);
    free(done);
    if (rc == 0)
        s->trials[i].has_point = 1;
    return rc;
}

int study_plan_trial(study *s, int i, nb_error *err)
{
    if (s->trials[i].has_point)
        return 0;
    if (s->opt->sampler == SAMPLER_TPE)
        return tpe_point(s, i, err);
    return plan_round(s, s->trials[i].round, err);
}
