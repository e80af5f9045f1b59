/* The order of a study's leaderboard (see leaderboard.h). */
#include "leaderboard.h"

#include <math.h>
#include <stdlib.h>

typedef struct entry {
    int group;
    double accuracy;   /* -1 for NaN: below every real accuracy */
    int trial;
} entry;

static int best_first(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->group != y->group)
        return x->group - y->group;
    if (x->accuracy != y->accuracy)
        return x->accuracy > y->accuracy ? -1 : 1;
    return x->trial - y->trial;
}

int leaderboard_order(const int *group, const double *accuracy, int *order, int n)
{
    entry *e = malloc((size_t)(n > 0 ? n : 1) * sizeof *e);
    if (!e)
        return -1;
    for (int i = 0; i < n; i++) {
        int t = order[i];
        e[i] = (entry){group[t], isnan(accuracy[t]) ? -1.0 : accuracy[t], t};
    }
    qsort(e, (size_t)n, sizeof *e, best_first);
    for (int i = 0; i < n; i++)
        order[i] = e[i].trial;
    free(e);
    return 0;
}
