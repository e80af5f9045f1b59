/* Pruning: whether a trial of a search stops after an epoch, from its dev accuracy and the
 * accuracies other trials had at the same epoch.
 *
 * Which trials it is compared with is the caller's choice; `nabla tune` uses the
 * earlier-numbered trials that reached the epoch, and waits for them, so that a decision does
 * not depend on how many trials run at once or which finished first. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

const char *nb_prune_name(nb_prune_kind kind)
{
    switch (kind) {
    case NB_PRUNE_NONE: return "none";
    case NB_PRUNE_MEDIAN: return "median";
    case NB_PRUNE_ASHA: return "asha";
    }
    return "?";
}

int nb_prune_parse(const char *name, nb_prune_kind *kind)
{
    static const nb_prune_kind kinds[] = {NB_PRUNE_NONE, NB_PRUNE_MEDIAN, NB_PRUNE_ASHA};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(name, nb_prune_name(kinds[i])) == 0) {
            *kind = kinds[i];
            return 0;
        }
    return -1;
}

int nb_asha_is_rung(const nb_pruner *p, int epoch)
{
    if (epoch < p->min_epochs || p->min_epochs < 1 || p->eta < 2)
        return 0;
    /* Rungs are at min_epochs * eta^k. */
    long r = p->min_epochs;
    while (r < epoch)
        r *= p->eta;
    return r == epoch;
}

static int descending(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* The values, sorted from best to worst, in a buffer the caller frees; NaN values left out. */
static double *sorted_copy(const double *values, int n, double extra, int with_extra, int *count)
{
    double *s = malloc(((size_t)n + 1) * sizeof *s);
    if (!s)
        return NULL;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(values[i]))
            s[k++] = values[i];
    if (with_extra)
        s[k++] = extra;
    qsort(s, (size_t)k, sizeof *s, descending);
    *count = k;
    return s;
}

/* Median: worse than the median of the others at this epoch (once there are enough of them to
 * say). As Optuna's MedianPruner, but with the others fixed by the caller. */
static int median_says_stop(const nb_pruner *p, double value, const double *others, int n)
{
    int k;
    double *s = sorted_copy(others, n, 0.0, 0, &k);
    if (!s)
        return 0; /* out of memory: keep the trial, which is never wrong, only slower */
    int stop = 0;
    if (k >= p->min_trials && k > 0) {
        double median = k % 2 ? s[k / 2] : 0.5 * (s[k / 2 - 1] + s[k / 2]);
        stop = value < median;
    }
    free(s);
    return stop;
}

/* Successive halving at a rung (Li et al., "A System for Massively Parallel Hyperparameter
 * Tuning", 2020): among the trials that reached the rung, this one included, only the best
 * 1/eta go on; with fewer than eta of them, only the best. As Optuna's
 * SuccessiveHalvingPruner. */
static int asha_says_stop(const nb_pruner *p, int epoch, double value, const double *others,
                          int n)
{
    if (!nb_asha_is_rung(p, epoch))
        return 0;
    int k;
    double *s = sorted_copy(others, n, value, 1, &k);
    if (!s)
        return 0;
    int last_promoted = k / p->eta - 1;
    if (last_promoted < 0)
        last_promoted = 0;
    int stop = value < s[last_promoted];
    free(s);
    return stop;
}

int nb_prune_should_stop(const nb_pruner *p, int epoch, int epochs, double value,
                         const double *others, int n_others)
{
    /* The last epoch ends the trial anyway: it is complete, not pruned. */
    if (epoch >= epochs || isnan(value))
        return isnan(value) && epoch < epochs;
    switch (p->kind) {
    case NB_PRUNE_NONE: return 0;
    case NB_PRUNE_MEDIAN: return median_says_stop(p, value, others, n_others);
    case NB_PRUNE_ASHA: return asha_says_stop(p, epoch, value, others, n_others);
    }
    return 0;
}
