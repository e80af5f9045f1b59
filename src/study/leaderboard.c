/* The order of a study's leaderboard (see leaderboard.h). */
#include "study/leaderboard.h"

#include <math.h>
#include <stdlib.h>

#include "study/objective.h"

enum { RANK_COMPLETE, RANK_PRUNED, RANK_OTHER };

typedef struct ranked {
    int group;
    double score;      /* -inf for NaN: below every real score */
    double loss;       /* +inf for NaN: after every real loss */
    int trial;
} ranked;

static int best_first(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->group != y->group)
        return x->group - y->group;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->loss != y->loss)
        return x->loss < y->loss ? -1 : 1;
    return x->trial - y->trial;
}

int *leaderboard_rank(const trial *trials, int n, nb_metric objective, int with_pending,
                      int *count)
{
    ranked *r = malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
    int *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    *count = 0;
    if (!r || !order) {
        free(r);
        free(order);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const trial *t = &trials[i];
        if (t->state == NB_TRIAL_PENDING && !with_pending)
            continue;
        double score = objective_score(objective, t->final_objective);
        r[(*count)++] = (ranked){t->state == NB_TRIAL_COMPLETE  ? RANK_COMPLETE
                                 : t->state == NB_TRIAL_PRUNED ? RANK_PRUNED
                                                            : RANK_OTHER,
                                 isnan(score) ? -INFINITY : score,
                                 isnan(t->final_loss) ? INFINITY : t->final_loss, i};
    }
    qsort(r, (size_t)*count, sizeof *r, best_first);
    for (int k = 0; k < *count; k++)
        order[k] = r[k].trial;
    free(r);
    return order;
}
