/* Grid search: n points on a grid whose number of levels per parameter is as even as the
 * parameters allow. The course advises random points instead (a grid tries each value of an
 * important parameter only a few times); the grid is here to compare with, and for spaces of
 * few choices where it enumerates them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "space_internal.h"

/* How many levels a parameter can have at most: a choice its values, an int its integers, a
 * continuous parameter any number (n is the most the grid needs). */
static int64_t room(const nb_search_param *p, int n)
{
    if (p->kind == NB_DIST_CHOICE)
        return p->n_choices;
    if (p->kind == NB_DIST_INT)
        return (int64_t)(p->hi - p->lo) + 1;
    return n;
}

/* See nb_search_grid in nabla.h for the rule. Returns the product of the levels. */
static int64_t choose_levels(const nb_search_space *s, int n, int64_t *levels)
{
    int64_t product = 1;
    for (int i = 0; i < s->n; i++)
        levels[i] = 1;
    /* A choice on a grid should offer every value (a value left out is never tried), as long
     * as that fits in n points. */
    for (int i = 0; i < s->n; i++)
        if (s->p[i].kind == NB_DIST_CHOICE && product * room(&s->p[i], n) <= n) {
            levels[i] = room(&s->p[i], n);
            product *= levels[i];
        }
    while (product < n) {
        int best = -1;
        for (int i = 0; i < s->n; i++)
            if (levels[i] < room(&s->p[i], n) && (best < 0 || levels[i] < levels[best]))
                best = i;
        if (best < 0)
            break; /* every parameter has all its values: a finite space, smaller than n */
        /* product is a multiple of levels[best], and at most doubles: no overflow. */
        product = product / levels[best] * (levels[best] + 1);
        levels[best]++;
    }
    return product;
}

/* Level j of k, in increasing order of the value. Numbers: the centre of cell j of k equal
 * cells of the range on the parameter's scale. Integers and choice indices: the cell centres
 * of [0, m) rounded down, which are distinct since the cells are at least 1 wide. */
static double level_value(const nb_search_param *p, int64_t j, int64_t k)
{
    if (!nb_search_is_continuous(p->kind)) {
        int64_t m = room(p, 1);
        int64_t offset = (2 * j + 1) * m / (2 * k);
        return (p->kind == NB_DIST_INT ? p->lo : 0) + (double)offset;
    }
    double tmin, tmax;
    nb_search_scale_range(p, &tmin, &tmax);
    /* The 1-log scale decreases as x grows: count the cells from the other end. */
    int64_t cell = p->kind == NB_DIST_ONE_MINUS_LOG ? k - 1 - j : j;
    double t = tmin + ((double)cell + 0.5) / (double)k * (tmax - tmin);
    return nb_search_round(p, nb_search_from_scale(p, t));
}

/* Point g of the grid, the first parameter varying slowest (nested loops in spec order). */
static void grid_point(const nb_search_space *s, const int64_t *levels, double *const *values,
                       int64_t g, nb_search_point *out)
{
    memset(out, 0, sizeof *out);
    for (int i = s->n - 1; i >= 0; i--) {
        out->v[i] = values[i][g % levels[i]];
        g /= levels[i];
    }
}

int nb_search_grid(const nb_search_space *s, int n, uint64_t seed, nb_search_point *out,
                   nb_error *err)
{
    if (n < 1)
        return nb_fail(err, "a grid needs at least 1 point (asked for %d)", n);
    if (s->n < 0 || s->n > NB_SEARCH_MAX_PARAMS)
        return nb_fail(err, "a search space has 0 to %d parameters, not %d", NB_SEARCH_MAX_PARAMS,
                       s->n);
    int64_t levels[NB_SEARCH_MAX_PARAMS];
    int64_t size = choose_levels(s, n, levels);
    if (size > INT32_MAX)
        return nb_fail(err, "a grid of %d points is too large", n);

    int64_t total = 0;
    for (int i = 0; i < s->n; i++)
        total += levels[i];
    double *table = malloc((size_t)(total ? total : 1) * sizeof *table);
    double *values[NB_SEARCH_MAX_PARAMS];
    int32_t *order = NULL;
    unsigned char *taken = NULL;
    if (!table)
        goto oom;
    double *next = table;
    for (int i = 0; i < s->n; i++) {
        values[i] = next;
        for (int64_t j = 0; j < levels[i]; j++)
            values[i][j] = level_value(&s->p[i], j, levels[i]);
        next += levels[i];
    }

    if (size <= n) {
        /* The whole grid, repeated in order when the space has fewer points than n. */
        for (int i = 0; i < n; i++)
            grid_point(s, levels, values, i % size, &out[i]);
    } else {
        /* More grid points than asked: a seeded random n of them, in grid order. */
        order = malloc((size_t)size * sizeof *order);
        taken = calloc((size_t)size, 1);
        if (!order || !taken)
            goto oom;
        for (int32_t g = 0; g < (int32_t)size; g++)
            order[g] = g;
        nb_rng rng;
        nb_rng_seed(&rng, seed);
        nb_shuffle(&rng, order, (int)size);
        for (int i = 0; i < n; i++)
            taken[order[i]] = 1;
        int k = 0;
        for (int64_t g = 0; g < size; g++)
            if (taken[g])
                grid_point(s, levels, values, g, &out[k++]);
    }
    free(taken);
    free(order);
    free(table);
    return 0;
oom:
    free(taken);
    free(order);
    free(table);
    return nb_fail(err, "out of memory for a grid of %d points", n);
}
