/* The trials' configurations (study.h: study_plan): sampled at random, laid on a grid, or
 * proposed by TPE from the results so far; round by round for coarse to fine, each round after
 * the first in a space narrowed around the best trials of the rounds before it. */
#include <math.h>
#include <stdlib.h>

#include "study/objective.h"
#include "study/study.h"

/* Round q's space: round q-1's, narrowed to the best quarter of the finished trials of the
 * rounds before q (their results are final once round q may start). */
static int narrow_round(nb_study *s, int q, nb_error *err)
{
    const nb_study_config *c = &s->cfg;
    int n = 0;
    nb_search_point *pts = malloc((size_t)c->trials * sizeof *pts);
    double *score = malloc((size_t)c->trials * sizeof *score);
    if (!pts || !score) {
        free(pts);
        free(score);
        return nb_fail(err, "out of memory");
    }
    for (int i = 0; i < c->trials; i++)
        if (s->trials[i].round < q && s->trials[i].has_point) {
            pts[n] = s->trials[i].point;
            score[n++] = s->trials[i].state == NB_TRIAL_COMPLETE
                             ? objective_score(c->objective, s->trials[i].final_objective)
                             : NAN;
        }
    int rc = nb_search_narrow(&s->round_space[q - 1], pts, score, n, 0.25, &s->round_space[q],
                              err);
    free(pts);
    free(score);
    return rc;
}

/* Round r's space, known from here on; the journal says where each round after the first
 * searched, unless a trial of the round has started (it was said then). */
static int round_space(nb_study *s, int r, nb_error *err)
{
    for (; s->rounds_known <= r; s->rounds_known++) {
        int q = s->rounds_known, first, end, started = 0;
        if (narrow_round(s, q, err) != 0)
            return -1;
        round_range(s->cfg.trials, s->cfg.rounds, q, &first, &end);
        for (int i = first; i < end; i++)
            started |= s->trials[i].has_point;
        if (!started && journal_round(&s->journal, q, &s->round_space[q], err) != 0)
            return -1;
    }
    return 0;
}

int study_tpe_given(const nb_study_config *cfg, int i)
{
    int n = i - cfg->tpe_lag;
    return cfg->sampler == NB_SAMPLER_TPE && n >= cfg->tpe.n_startup ? n : 0;
}

/* TPE's point for trial i, from the results of the trials it depends on (all finished). */
static int tpe_point(nb_study *s, int i, nb_search_point *out, nb_error *err)
{
    const nb_study_config *c = &s->cfg;
    int n = study_tpe_given(c, i);
    nb_tpe_trial *done = malloc((size_t)(n > 0 ? n : 1) * sizeof *done);
    if (!done)
        return nb_fail(err, "out of memory");
    for (int u = 0; u < n; u++) {
        const trial *t = &s->trials[u];
        done[u].point = t->point;
        /* A pruned trial counts with the epoch it reached, a failed one without a score. */
        done[u].score = t->state == NB_TRIAL_FAILED
                            ? NAN
                            : objective_score(c->objective, t->final_objective);
        done[u].pruned_epoch = t->state == NB_TRIAL_PRUNED ? t->epochs : 0;
    }
    int rc = nb_tpe_suggest(&s->round_space[s->trials[i].round], &c->tpe, done, n, c->seed, i,
                            out, err);
    free(done);
    return rc;
}

int study_plannable(const nb_study *s, int i)
{
    const trial *t = &s->trials[i];
    for (int u = 0; u < i; u++)
        if (s->trials[u].round < t->round && !trial_finished(&s->trials[u]))
            return 0;
    if (t->has_point)
        return 1;
    for (int u = 0; u < study_tpe_given(&s->cfg, i); u++)
        if (!trial_finished(&s->trials[u]))
            return 0;
    return 1;
}

int study_plan(nb_study *s, int i, nb_error *err)
{
    const nb_study_config *c = &s->cfg;
    trial *t = &s->trials[i];
    if (t->has_point)
        return 0; /* started before: the journal holds what it ran with */
    int r = t->round;
    if (round_space(s, r, err) != 0)
        return -1;
    if (c->sampler == NB_SAMPLER_TPE)
        return tpe_point(s, i, &t->point, err) == 0 ? (t->has_point = 1, 0) : -1;
    if (c->sampler == NB_SAMPLER_RANDOM) {
        nb_search_sample(&s->round_space[r], c->seed, i, &t->point);
        t->has_point = 1;
        return 0;
    }
    /* The grid is the round's whole: each trial takes its place in it. */
    int first, end;
    round_range(c->trials, c->rounds, r, &first, &end);
    nb_search_point *grid = malloc((size_t)(end - first) * sizeof *grid);
    if (!grid)
        return nb_fail(err, "out of memory");
    int rc = nb_search_grid(&s->round_space[r], end - first, c->seed + (uint64_t)r, grid, err);
    if (rc == 0) {
        t->point = grid[i - first];
        t->has_point = 1;
    }
    free(grid);
    return rc;
}
