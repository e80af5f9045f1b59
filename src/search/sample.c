/* Random search: point number `index` of a study, drawn from its own generator so that it
 * depends on (seed, index, space) only. Trials can then be drawn in any order, by parallel
 * workers, or again after a restart, and always get the same values. */
#include <math.h>

#include "space_internal.h"

/* splitmix64's output function: a bijection of 64-bit words that mixes every input bit into
 * every output bit. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Mixing the seed before the index enters keeps (seed, index) pairs apart that a plain
 * seed ^ index would confuse (seed 1 index 0 against seed 0 index 1). */
uint64_t nb_search_point_seed(uint64_t seed, int64_t index)
{
    uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL);
    return mix64(h ^ ((uint64_t)index * 0xd1342543de82ef95ULL));
}

void nb_search_sample(const nb_search_space *s, uint64_t seed, int64_t index, nb_search_point *out)
{
    nb_rng rng;
    nb_rng_seed(&rng, nb_search_point_seed(seed, index));
    for (int i = 0; i < NB_SEARCH_MAX_PARAMS; i++)
        out->v[i] = 0;
    for (int i = 0; i < s->n; i++) {
        const nb_search_param *p = &s->p[i];
        switch (p->kind) {
        case NB_DIST_INT:
            out->v[i] = p->lo + nb_rng_below(&rng, (uint32_t)(p->hi - p->lo + 1));
            break;
        case NB_DIST_CHOICE:
            out->v[i] = nb_rng_below(&rng, (uint32_t)p->n_choices);
            break;
        default: {
            double tmin, tmax;
            nb_search_scale_range(p, &tmin, &tmax);
            double u = nb_rng_uniform(&rng);
            out->v[i] = nb_search_round(p, nb_search_from_scale(p, tmin + u * (tmax - tmin)));
        }
        }
    }
}
