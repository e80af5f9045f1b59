/* The order of a study's leaderboard (see leaderboard.h). */
#include "leaderboard.h"

#include <math.h>
#include <stdlib.h>

typedef struct ranked {
    int group;
    double score;      /* -inf for NaN: below every real score */
    int trial;
} ranked;

static int best_first(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->group != y->group)
        return x->group - y->group;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->trial - y->trial;
}

int *leaderboard_rank(int n, leaderboard_fn *entry, const void *ctx, int *count)
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
        leaderboard_entry e;
        if (entry(ctx, i, &e))
            r[(*count)++] = (ranked){e.group, isnan(e.score) ? -INFINITY : e.score, i};
    }
    qsort(r, (size_t)*count, sizeof *r, best_first);
    for (int k = 0; k < *count; k++)
        order[k] = r[k].trial;
    free(r);
    return order;
}
