/* Which hyperparameters mattered: for each, the share of the variance of the score that its
 * value explains, the correlation ratio eta^2 = between-group / total sum of squares.
 *
 * The groups are the values of a choice, and for numbers the quartiles by rank (or each value
 * when there are 4 or fewer). Four groups, not more, because eta^2 grows by chance with the
 * number of groups (about (groups - 1) / (points - 1) for a parameter that does nothing), and
 * a study has tens to hundreds of points, not thousands. */
#include <math.h>
#include <stdlib.h>

#include "space_internal.h"

#define RANK_GROUPS 4

typedef struct pair {
    double value, score;
} pair;

static int by_value(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    return (x->value > y->value) - (x->value < y->value);
}

/* The points of parameter i that count: a score, and a value (a valid index for a choice). */
static int collect(const nb_search_param *p, int i, const nb_search_point *pts,
                   const double *score, int n, pair *out)
{
    int m = 0;
    for (int k = 0; k < n; k++) {
        double v = pts[k].v[i];
        if (isnan(score[k]) || isnan(v))
            continue;
        if (p->kind == NB_DIST_CHOICE && !(v >= 0 && v < p->n_choices && v == floor(v)))
            continue;
        out[m++] = (pair){v, score[k]};
    }
    return m;
}

/* eta^2 of pairs[0..m) sorted by group; group_of[k] numbers the groups in increasing order. */
static double eta_squared(const pair *pairs, const int *group_of, int m)
{
    double mean = 0;
    for (int k = 0; k < m; k++)
        mean += pairs[k].score;
    mean /= m;
    double total = 0, between = 0;
    for (int k = 0; k < m; k++)
        total += (pairs[k].score - mean) * (pairs[k].score - mean);
    for (int start = 0; start < m;) {
        int end = start;
        double sum = 0;
        while (end < m && group_of[end] == group_of[start])
            sum += pairs[end++].score;
        double group_mean = sum / (end - start);
        between += (end - start) * (group_mean - mean) * (group_mean - mean);
        start = end;
    }
    if (!(total > 0))
        return 0;
    double e = between / total;
    return e < 0 ? 0 : e > 1 ? 1 : e;
}

int nb_search_importance(const nb_search_space *s, const nb_search_point *pts,
                         const double *score, int n, double *explained, nb_error *err)
{
    if (n < 0)
        return nb_fail(err, "importance needs a count of points >= 0, not %d", n);
    if (s->n < 0 || s->n > NB_SEARCH_MAX_PARAMS)
        return nb_fail(err, "a search space has 0 to %d parameters, not %d", NB_SEARCH_MAX_PARAMS,
                       s->n);
    pair *pairs = malloc((size_t)(n ? n : 1) * sizeof *pairs);
    int *group_of = malloc((size_t)(n ? n : 1) * sizeof *group_of);
    if (!pairs || !group_of) {
        free(pairs);
        free(group_of);
        return nb_fail(err, "out of memory for the importance of %d points", n);
    }
    for (int i = 0; i < s->n; i++) {
        const nb_search_param *p = &s->p[i];
        explained[i] = 0;
        int m = collect(p, i, pts, score, n, pairs);
        if (m < 3)
            continue;
        /* Sorted by value, every group is a run: a choice's groups are its values, and so are
         * a number's when it has few distinct values; else quartiles by the rank of each run's
         * first point, so that equal values always share a group. */
        qsort(pairs, (size_t)m, sizeof *pairs, by_value);
        int distinct = 1;
        for (int k = 1; k < m; k++)
            distinct += pairs[k].value != pairs[k - 1].value;
        int by_run = p->kind == NB_DIST_CHOICE || distinct <= RANK_GROUPS;
        int run = 0, run_start = 0;
        for (int k = 0; k < m; k++) {
            if (k > 0 && pairs[k].value != pairs[k - 1].value) {
                run++;
                run_start = k;
            }
            group_of[k] = by_run ? run : (int)((int64_t)RANK_GROUPS * run_start / m);
        }
        explained[i] = eta_squared(pairs, group_of, m);
    }
    free(pairs);
    free(group_of);
    return 0;
}
