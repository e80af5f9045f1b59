/* Coarse to fine: after a round of trials, a narrower space around the best of them, to
 * sample more densely where the good values are. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "space_internal.h"

typedef struct ranked {
    double score;
    int index;
} ranked;

/* Best first; equal scores in point order, so the result never depends on qsort. */
static int better_first(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* The new [lo, hi] of a numeric parameter from the kept points' values; lo and hi stay as
 * they are when none of the kept points has a value for it (all NaN). */
static void narrow_param(const nb_search_param *p, const nb_search_point *pts, const ranked *kept,
                         int n_kept, int i, double *lo, double *hi)
{
    double tmin, tmax;
    nb_search_scale_range(p, &tmin, &tmax);
    double width = tmax - tmin;
    double smin = INFINITY, smax = -INFINITY;
    for (int k = 0; k < n_kept; k++) {
        double x = pts[kept[k].index].v[i];
        if (isnan(x))
            continue;
        /* A point outside the range (from an earlier, wider space) counts at its edge. */
        x = x < p->lo ? p->lo : x > p->hi ? p->hi : x;
        double t = nb_search_to_scale(p, x);
        smin = t < smin ? t : smin;
        smax = t > smax ? t : smax;
    }
    if (smin > smax)
        return;
    double a, b;
    if (smin == smax) {
        a = smin - 0.125 * width;
        b = smax + 0.125 * width;
    } else {
        a = smin - 0.1 * width;
        b = smax + 0.1 * width;
    }
    a = a < tmin ? tmin : a;
    b = b > tmax ? tmax : b;
    double x0 = nb_search_from_scale(p, a), x1 = nb_search_from_scale(p, b);
    double new_lo = x0 < x1 ? x0 : x1, new_hi = x0 < x1 ? x1 : x0;
    if (p->kind == NB_DIST_INT) {
        new_lo = floor(new_lo);
        new_hi = ceil(new_hi);
        new_lo = new_lo < p->lo ? p->lo : new_lo;
        new_hi = new_hi > p->hi ? p->hi : new_hi;
    } else {
        /* Short bounds that read well in the stored spec; rounding within the old range moves
         * them far less than the 10% margin. */
        new_lo = nb_search_round(p, new_lo);
        new_hi = nb_search_round(p, new_hi);
        /* A range already at the limit of double precision cannot shrink: keep it. */
        if (!(new_lo < new_hi) ||
            nb_search_to_scale(p, new_lo) == nb_search_to_scale(p, new_hi))
            return;
    }
    *lo = new_lo;
    *hi = new_hi;
}

int nb_search_narrow(const nb_search_space *s, const nb_search_point *pts, const double *score,
                     int n, double keep, nb_search_space *out, nb_error *err)
{
    if (n < 0)
        return nb_fail(err, "narrowing needs a count of points >= 0, not %d", n);
    if (!(keep > 0 && keep <= 1))
        return nb_fail(err, "the fraction of points kept must be in (0, 1], not %g", keep);
    if (s->n < 0 || s->n > NB_SEARCH_MAX_PARAMS)
        return nb_fail(err, "a search space has 0 to %d parameters, not %d", NB_SEARCH_MAX_PARAMS,
                       s->n);
    ranked *r = malloc((size_t)(n ? n : 1) * sizeof *r);
    if (!r)
        return nb_fail(err, "out of memory ranking %d points", n);
    int valid = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(score[i]))
            r[valid++] = (ranked){score[i], i};
    if (valid == 0) {
        free(r);
        return nb_fail(err, "no point has a score to narrow around (%d points, all NaN)", n);
    }
    qsort(r, (size_t)valid, sizeof *r, better_first);
    int n_kept = (int)ceil(keep * valid);
    n_kept = n_kept < 2 ? 2 : n_kept;
    n_kept = n_kept > valid ? valid : n_kept;

    /* The new bounds first, so that out may be s. */
    double lo[NB_SEARCH_MAX_PARAMS], hi[NB_SEARCH_MAX_PARAMS];
    for (int i = 0; i < s->n; i++) {
        lo[i] = s->p[i].lo;
        hi[i] = s->p[i].hi;
        if (s->p[i].kind != NB_DIST_CHOICE)
            narrow_param(&s->p[i], pts, r, n_kept, i, &lo[i], &hi[i]);
    }
    free(r);
    if (out != s)
        *out = *s;
    for (int i = 0; i < s->n; i++) {
        out->p[i].lo = lo[i];
        out->p[i].hi = hi[i];
    }
    return 0;
}
