/* TPE: the tree-structured Parzen estimator (Bergstra et al. 2011) as Optuna's TPESampler does
 * it by default (independent per parameter, Optuna 3's bandwidths, weights and prior), so that
 * a search learns from its finished trials. The rule is written out in nabla.h (nb_tpe_suggest);
 * here is how it is computed.
 *
 * Every draw comes from a generator seeded by (seed, index, parameter), and nothing else enters
 * but the arguments: a trial's point is a pure function of the trials it is given. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "space_internal.h"

/* Kept apart from nb_search_sample's stream of the same point. */
#define TPE_STREAM 0x5450455f73747265ULL

/* A rejection sampler of a truncated Gaussian whose centre lies in its interval and whose
 * width is at most the interval's accepts at least a third of its draws (P(0 <= z <= 1));
 * this bound is only a guard against a broken invariant. */
#define MAX_REJECTIONS 10000

nb_tpe_config nb_tpe_defaults(void)
{
    return (nb_tpe_config){.n_startup = 10, .n_candidates = 24, .gamma = 0.1, .max_good = 25,
                           .prior_weight = 1.0};
}

/* ---- ranking the trials ------------------------------------------------------------------ */

typedef struct ranked {
    int group;      /* 0 completed, 1 pruned, 2 no score */
    int epoch;      /* pruned: the epoch reached */
    double score;
    int index;
} ranked;

static int rank_order(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    if (x->epoch != y->epoch)
        return x->epoch > y->epoch ? -1 : 1;
    if (x->group != 2 && x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Marks good[i] = 1 for the good trials (see nabla.h), 0 for the others. */
static void split_trials(const nb_tpe_trial *done, int n, const nb_tpe_config *cfg, ranked *r,
                         unsigned char *good)
{
    for (int i = 0; i < n; i++) {
        const nb_tpe_trial *t = &done[i];
        int group = isnan(t->score) ? 2 : t->pruned_epoch > 0 ? 1 : 0;
        r[i] = (ranked){group, group == 1 ? t->pruned_epoch : 0, t->score, i};
        good[i] = 0;
    }
    qsort(r, (size_t)n, sizeof *r, rank_order);
    /* The same expression as Optuna's default_gamma, rounding included. */
    double want = ceil(cfg->gamma * n);
    int n_good = want < cfg->max_good ? (int)want : cfg->max_good;
    for (int k = 0; k < n_good && k < n && r[k].group != 2; k++)
        good[r[k].index] = 1;
}

/* ---- Gaussian masses, in logs so that a far tail does not round to 0 --------------------- */

static const double LOG_SQRT_2PI = 0.91893853320467274178, SQRT2 = 1.41421356237309504880;

/* log Phi(z). Below -20, the asymptotic series of the Mills ratio (erfc would underflow near
 * -38; the first term left out is below 1e-10 of the sum there). */
static double log_ndtr(double z)
{
    if (z < -20) {
        double r = 1.0 / (z * z);
        double series = 1 - r * (1 - 3 * r * (1 - 5 * r * (1 - 7 * r)));
        return -0.5 * z * z - log(-z) - LOG_SQRT_2PI + log(series);
    }
    if (z > 5)
        return log1p(-0.5 * erfc(z / SQRT2));
    return log(0.5 * erfc(-z / SQRT2));
}

/* log(exp(a) - exp(b)), a >= b. */
static double log_diff(double a, double b)
{
    return a == b ? -INFINITY : a + log1p(-exp(b - a));
}

/* log(Phi(b) - Phi(a)), a <= b: in the left tail directly, the right tail by symmetry, and an
 * interval across 0 as 1 minus both tails (no cancellation near 1). */
static double log_gauss_mass(double a, double b)
{
    if (b <= 0)
        return log_diff(log_ndtr(b), log_ndtr(a));
    if (a > 0)
        return log_gauss_mass(-b, -a);
    return log1p(-0.5 * erfc(-a / SQRT2) - 0.5 * erfc(b / SQRT2));
}

/* log(sum exp(v[k])). */
static double log_sum_exp(const double *v, int n)
{
    double top = -INFINITY;
    for (int k = 0; k < n; k++)
        top = v[k] > top ? v[k] : top;
    if (top == -INFINITY)
        return -INFINITY;
    double sum = 0;
    for (int k = 0; k < n; k++)
        sum += exp(v[k] - top);
    return top + log(sum);
}

/* ---- one parameter's density: a Parzen estimator ------------------------------------------ */

/* Memory for the largest estimator of a call (n_done values plus the prior), reused. */
typedef struct parzen {
    int n;              /* components, the prior last */
    double *w;          /* their weights, summing to 1 */
    double *mu, *sigma; /* a number's components */
    double *log_mass;   /* log of each component's mass within [lo, hi] */
    double lo, hi;      /* the range on the parameter's scale; an int's widened by 0.5 */
    int discrete;       /* an int: each integer takes its unit cell's mass */
    double *p;          /* a choice: the mixture's probability of each value */
    int n_choices;
} parzen;

typedef struct sorted_mu {
    double mu;
    int at;
} sorted_mu;

static int by_mu(const void *a, const void *b)
{
    const sorted_mu *x = a, *y = b;
    if (x->mu != y->mu)
        return x->mu < y->mu ? -1 : 1;
    return (x->at > y->at) - (x->at < y->at);
}

/* Optuna's default_weights, then the prior's, normalized: m values in trial order weigh 1,
 * except that beyond 25 the older ones ramp up from 1/m (numpy's linspace(1/m, 1, m - 25)). */
static void set_weights(parzen *e, int m, double prior_weight)
{
    int ramp = m > 25 ? m - 25 : 0;
    double start = m > 0 ? 1.0 / m : 0, step = ramp > 1 ? (1 - start) / (ramp - 1) : 0;
    for (int k = 0; k < m; k++)
        e->w[k] = k >= ramp ? 1 : ramp > 1 && k == ramp - 1 ? 1 /* linspace ends on 1 exactly */
                                                            : start + k * step;
    e->w[m] = prior_weight;
    double sum = 0;
    for (int k = 0; k <= m; k++)
        sum += e->w[k];
    for (int k = 0; k <= m; k++)
        e->w[k] /= sum;
    e->n = m + 1;
}

/* A number's (or an int's) estimator from the m values t[] on its scale, within [lo, hi]. */
static void build_numeric(parzen *e, const double *t, int m, double lo, double hi,
                          double prior_weight, sorted_mu *order)
{
    set_weights(e, m, prior_weight);
    int n = m + 1;
    for (int k = 0; k < m; k++)
        e->mu[k] = t[k];
    e->mu[m] = 0.5 * (lo + hi);
    /* Each width is the larger gap to a neighbour among the sorted centres (the prior's among
     * them), the range's ends standing beyond the first and last; the first and last centres
     * take their inner gap (Optuna's consider_endpoints=False). */
    for (int k = 0; k < n; k++)
        order[k] = (sorted_mu){e->mu[k], k};
    qsort(order, (size_t)n, sizeof *order, by_mu);
    for (int j = 0; j < n; j++) {
        double left = order[j].mu - (j > 0 ? order[j - 1].mu : lo);
        double right = (j + 1 < n ? order[j + 1].mu : hi) - order[j].mu;
        if (n >= 2 && j == 0)
            left = right;
        if (n >= 2 && j == n - 1)
            right = left;
        e->sigma[order[j].at] = left > right ? left : right;
    }
    /* The magic clip: no narrower than the range over min(100, 1 + components). */
    double range = hi - lo, min_sigma = range / fmin(100.0, 1.0 + n);
    for (int k = 0; k < m; k++)
        e->sigma[k] = fmin(fmax(e->sigma[k], min_sigma), range);
    e->sigma[m] = range;
    for (int k = 0; k < n; k++)
        e->log_mass[k] = log_gauss_mass((lo - e->mu[k]) / e->sigma[k], (hi - e->mu[k]) / e->sigma[k]);
    e->lo = lo;
    e->hi = hi;
}

/* A choice's estimator from m value indices: each value's component puts 1 + prior_weight / n
 * on its value and prior_weight / n on each value, normalized (n = m + 1 components); the
 * prior's is uniform. What is kept is the mixture itself, p. */
static void build_choice(parzen *e, const double *v, int m, int n_choices, double prior_weight)
{
    set_weights(e, m, prior_weight);
    double fill = prior_weight / (m + 1), row_sum = 1 + fill * n_choices;
    for (int c = 0; c < n_choices; c++)
        e->p[c] = e->w[m] / n_choices;
    for (int k = 0; k < m; k++) {
        for (int c = 0; c < n_choices; c++)
            e->p[c] += e->w[k] * fill / row_sum;
        e->p[(int)v[k]] += e->w[k] / row_sum;
    }
    e->n_choices = n_choices;
}

/* Index k with probability w[k] / sum(w). */
static int draw_index(nb_rng *rng, const double *w, int n)
{
    double total = 0;
    for (int k = 0; k < n; k++)
        total += w[k];
    double u = nb_rng_uniform(rng) * total, cum = 0;
    for (int k = 0; k < n - 1; k++) {
        cum += w[k];
        if (u < cum)
            return k;
    }
    return n - 1;
}

/* A draw from a number's estimator, on its scale: a component, then its truncated Gaussian. */
static double draw_numeric(const parzen *e, nb_rng *rng)
{
    int k = draw_index(rng, e->w, e->n);
    for (int tries = 0; tries < MAX_REJECTIONS; tries++) {
        double t = e->mu[k] + e->sigma[k] * nb_rng_normal(rng);
        if (t >= e->lo && t <= e->hi)
            return t;
    }
    return e->mu[k];
}

/* log density of a number's estimator at t (an int's: log mass of t's unit cell). */
static double log_density(const parzen *e, double t, double *terms)
{
    for (int k = 0; k < e->n; k++) {
        double mu = e->mu[k], s = e->sigma[k], log_p;
        if (e->discrete) {
            double a = fmax(t - 0.5, e->lo), b = fmin(t + 0.5, e->hi);
            log_p = log_gauss_mass((a - mu) / s, (b - mu) / s);
        } else {
            double z = (t - mu) / s;
            log_p = -0.5 * z * z - log(s) - LOG_SQRT_2PI;
        }
        terms[k] = log(e->w[k]) + log_p - e->log_mass[k];
    }
    return log_sum_exp(terms, e->n);
}

/* ---- suggesting a point -------------------------------------------------------------------- */

/* Whether trial value x of p can enter p's densities, and on which scale value (clamped). */
static int observed_value(const nb_search_param *p, double x, double *t)
{
    if (isnan(x))
        return 0;
    if (p->kind == NB_DIST_CHOICE) {
        if (!(x >= 0 && x < p->n_choices && x == floor(x)))
            return 0;
        *t = x;
        return 1;
    }
    x = x < p->lo ? p->lo : x > p->hi ? p->hi : x;
    *t = nb_search_to_scale(p, x);
    return 1;
}

typedef struct workspace {
    parzen good, bad;
    double *values;     /* one group's values of one parameter */
    double *terms;      /* log_density's per-component terms */
    sorted_mu *order;
} workspace;

/* One group's estimator for parameter i. */
static void build_group(const nb_search_param *p, int i, const nb_tpe_trial *done, int n_done,
                        const unsigned char *good, int which, double prior_weight, workspace *ws,
                        parzen *e)
{
    int m = 0;
    for (int k = 0; k < n_done; k++)
        if (good[k] == which && observed_value(p, done[k].point.v[i], &ws->values[m]))
            m++;
    if (p->kind == NB_DIST_CHOICE) {
        build_choice(e, ws->values, m, p->n_choices, prior_weight);
        return;
    }
    double lo, hi;
    nb_search_scale_range(p, &lo, &hi);
    e->discrete = p->kind == NB_DIST_INT;
    if (e->discrete) {
        lo -= 0.5;
        hi += 0.5;
    }
    build_numeric(e, ws->values, m, lo, hi, prior_weight, ws->order);
}

/* The candidate with the largest log l - log g, as the value a trial receives. */
static double suggest_param(const nb_search_param *p, const workspace *ws, int n_candidates,
                            nb_rng *rng)
{
    const parzen *l = &ws->good, *g = &ws->bad;
    double best_value = 0, best = NAN;
    for (int c = 0; c < n_candidates; c++) {
        double value, score;
        if (p->kind == NB_DIST_CHOICE) {
            value = draw_index(rng, l->p, l->n_choices);
            score = log(l->p[(int)value]) - log(g->p[(int)value]);
        } else {
            double t = draw_numeric(l, rng);
            /* Scored at the value the trial will have, rounded as random points are. */
            value = nb_search_round(p, nb_search_from_scale(p, t));
            t = nb_search_to_scale(p, value);
            t = t < l->lo ? l->lo : t > l->hi ? l->hi : t;
            score = log_density(l, t, ws->terms) - log_density(g, t, ws->terms);
        }
        if (c == 0 || score > best || (isnan(best) && !isnan(score))) {
            best_value = value;
            best = score;
        }
    }
    return best_value;
}

static int check_config(const nb_tpe_config *c, nb_error *err)
{
    if (c->n_startup < 0)
        return nb_fail(err, "TPE: n_startup must be >= 0, not %d", c->n_startup);
    if (c->n_candidates < 1)
        return nb_fail(err, "TPE: n_candidates must be >= 1, not %d", c->n_candidates);
    if (!(c->gamma > 0 && c->gamma <= 1))
        return nb_fail(err, "TPE: gamma must be in (0, 1], not %g", c->gamma);
    if (c->max_good < 1)
        return nb_fail(err, "TPE: max_good must be >= 1, not %d", c->max_good);
    if (!(c->prior_weight > 0 && isfinite(c->prior_weight)))
        return nb_fail(err, "TPE: prior_weight must be a positive number, not %g", c->prior_weight);
    return 0;
}

int nb_tpe_suggest(const nb_search_space *s, const nb_tpe_config *cfg, const nb_tpe_trial *done,
                   int n_done, uint64_t seed, int64_t index, nb_search_point *out, nb_error *err)
{
    nb_tpe_config defaults = nb_tpe_defaults();
    if (!cfg)
        cfg = &defaults;
    if (check_config(cfg, err))
        return -1;
    if (s->n < 0 || s->n > NB_SEARCH_MAX_PARAMS)
        return nb_fail(err, "a search space has 0 to %d parameters, not %d", NB_SEARCH_MAX_PARAMS,
                       s->n);
    if (n_done < 0 || (n_done > 0 && !done))
        return nb_fail(err, "TPE needs a list of n >= 0 finished trials (n is %d)", n_done);
    for (int k = 0; k < n_done; k++)
        if (done[k].pruned_epoch < 0)
            return nb_fail(err, "TPE: trial %d of the list has pruned_epoch %d (0 if it completed, "
                           "else the epoch it reached)", k, done[k].pruned_epoch);
    if (n_done < cfg->n_startup) {
        nb_search_sample(s, seed, index, out);
        return 0;
    }

    /* One allocation for the split and the two estimators of the largest parameter. */
    size_t n1 = (size_t)n_done + 1;
    size_t doubles = 2 * (4 * n1 + NB_SEARCH_MAX_CHOICES) + 2 * n1;
    double *pool = malloc(doubles * sizeof(double));
    ranked *r = malloc(n1 * sizeof *r);
    unsigned char *good = malloc(n1);
    workspace ws;
    ws.order = malloc(n1 * sizeof *ws.order);
    if (!pool || !r || !good || !ws.order) {
        free(pool);
        free(r);
        free(good);
        free(ws.order);
        return nb_fail(err, "out of memory for TPE over %d trials", n_done);
    }
    double *next = pool;
    parzen *es[2] = {&ws.good, &ws.bad};
    for (int j = 0; j < 2; j++) {
        memset(es[j], 0, sizeof *es[j]);
        es[j]->w = next, next += n1;
        es[j]->mu = next, next += n1;
        es[j]->sigma = next, next += n1;
        es[j]->log_mass = next, next += n1;
        es[j]->p = next, next += NB_SEARCH_MAX_CHOICES;
    }
    ws.values = next, next += n1;
    ws.terms = next;

    split_trials(done, n_done, cfg, r, good);
    nb_search_point point;
    memset(&point, 0, sizeof point);
    uint64_t base = nb_search_point_seed(seed, index) ^ TPE_STREAM;
    for (int i = 0; i < s->n; i++) {
        const nb_search_param *p = &s->p[i];
        build_group(p, i, done, n_done, good, 1, cfg->prior_weight, &ws, &ws.good);
        build_group(p, i, done, n_done, good, 0, cfg->prior_weight, &ws, &ws.bad);
        nb_rng rng;
        nb_rng_seed(&rng, nb_search_point_seed(base, i));
        point.v[i] = suggest_param(p, &ws, cfg->n_candidates, &rng);
    }
    free(pool);
    free(r);
    free(good);
    free(ws.order);
    *out = point;
    return 0;
}
