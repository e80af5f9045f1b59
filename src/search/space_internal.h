/* What the search-space files (space.c, sample.c, grid.c, narrow.c, importance.c, tpe.c)
 * share: the scale each distribution is searched on, the rounding of values to the text a
 * trial receives, and each point's seed. Not part of the public API. */
#ifndef NABLA_SEARCH_SPACE_INTERNAL_H
#define NABLA_SEARCH_SPACE_INTERNAL_H

#include "nabla.h"

/* 1 for the distributions with a real-valued range (uniform, log, 1-log). */
int nb_search_is_continuous(nb_dist_kind kind);

/* The scale a parameter is uniform on: log10 x for log, log10(1 - x) for 1-log, x otherwise.
 * The 1-log scale runs the other way (a larger x is a smaller log10(1 - x)). */
double nb_search_to_scale(const nb_search_param *p, double x);
double nb_search_from_scale(const nb_search_param *p, double t);
/* The parameter's range on its scale, tmin < tmax (tmin <= tmax for int and choice). */
void nb_search_scale_range(const nb_search_param *p, double *tmin, double *tmax);

/* The seed of point number `index` of a study seeded with `seed` (sample.c): a 64-bit hash of
 * the pair, so that each point has a generator of its own. */
uint64_t nb_search_point_seed(uint64_t seed, int64_t index);

/* x clamped into [lo, hi] and rounded to the value nb_search_value_text prints for it: an
 * integer for int and choice, otherwise the number read back from the fewest significant
 * digits (6 or more) that keep it within the range and within the parameter's resolution (see
 * space.c). */
double nb_search_round(const nb_search_param *p, double x);

#endif
