/* Optimizers: one flat loop over the parameter buffer per kind.
 *
 * Every trainable parameter lives in one contiguous float buffer w and its gradient in g, so an
 * optimizer step is a single pass over n floats. The kind is switched on once per step, outside
 * the loop, so each loop body is branch-free and the compiler can vectorize it.
 *
 * Notation: g' = g + wd*w (L2 weight decay folded into the gradient, as PyTorch does for every
 * optimizer but AdamW); t = number of steps taken, 1 at the first step.
 *
 *   sgd       w -= lr*g'
 *   momentum  v = beta*v + (1-beta)*g';  w -= lr*v            (bias_correction: lr*v/(1-beta^t))
 *             == torch SGD(momentum=beta, lr=lr*(1-beta)), whose buffer is v/(1-beta)
 *   nesterov  v = beta*v + (1-beta)*g';  w -= lr*((1-beta)*g' + beta*v)
 *             == torch SGD(momentum=beta, nesterov=True, lr=lr*(1-beta))
 *   rmsprop   s = beta2*s + (1-beta2)*g'^2;  w -= lr*g'/(sqrt(s)+eps)
 *             == torch RMSprop(alpha=beta2)
 *   adam      m = beta*m + (1-beta)*g';  s = beta2*s + (1-beta2)*g'^2;
 *             w -= lr*mhat/(sqrt(shat)+eps), mhat = m/(1-beta^t), shat = s/(1-beta2^t)
 *             == torch Adam (eps outside the square root)
 *   adamw     w -= lr*wd*w first, then the adam step on the plain gradient g
 *             == torch AdamW
 *
 * The step runs on the library's threads, each taking a share of the buffer; every element's
 * arithmetic is the same whatever the share, so the result does not depend on the threads.
 *
 * The Adam family is evaluated in the same order as torch (denom = sqrt(s)/sqrt(bc2) + eps,
 * w -= (lr/bc1)*m/denom) so that float results agree with PyTorch to rounding.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"
#include "train/optim_internal.h"
#include "core/pool.h"
#include "core/simd.h"

static const char *const optimizer_names[] = {
    [NB_SGD] = "sgd",         [NB_MOMENTUM] = "momentum", [NB_NESTEROV] = "nesterov",
    [NB_RMSPROP] = "rmsprop", [NB_ADAM] = "adam",         [NB_ADAMW] = "adamw",
};
#define N_OPTIMIZERS ((int)(sizeof optimizer_names / sizeof optimizer_names[0]))

const char *nb_optimizer_name(nb_optimizer_kind k)
{
    if ((int)k < 0 || (int)k >= N_OPTIMIZERS)
        return "unknown";
    return optimizer_names[k];
}

int nb_optimizer_parse(const char *s, nb_optimizer_kind *out)
{
    if (!s)
        return -1;
    for (int k = 0; k < N_OPTIMIZERS; k++) {
        if (strcmp(s, optimizer_names[k]) == 0) {
            *out = (nb_optimizer_kind)k;
            return 0;
        }
    }
    return -1;
}

static int needs_velocity(nb_optimizer_kind k)
{
    return k == NB_MOMENTUM || k == NB_NESTEROV || k == NB_ADAM || k == NB_ADAMW;
}

static int needs_second_moment(nb_optimizer_kind k)
{
    return k == NB_RMSPROP || k == NB_ADAM || k == NB_ADAMW;
}

int nb_optimizer_moments(nb_optimizer_kind kind)
{
    return needs_velocity(kind) + needs_second_moment(kind);
}

/* The comparisons are written so that NaN fails them. */
static int validate(const nb_optim_config *c, nb_error *err)
{
    const char *name = nb_optimizer_name(c->kind);
    if ((int)c->kind < 0 || (int)c->kind >= N_OPTIMIZERS)
        return nb_fail(err, "unknown optimizer kind %d", (int)c->kind);
    if (needs_velocity(c->kind) && !(c->beta >= 0.0f && c->beta < 1.0f))
        return nb_fail(err, "%s: beta must be in [0, 1), got %g", name, (double)c->beta);
    if (needs_second_moment(c->kind) && !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
        return nb_fail(err, "%s: beta2 must be in [0, 1), got %g", name, (double)c->beta2);
    if (needs_second_moment(c->kind) && !(c->eps > 0.0f && isfinite(c->eps)))
        return nb_fail(err, "%s: eps must be positive, got %g", name, (double)c->eps);
    if (!(c->weight_decay >= 0.0f && isfinite(c->weight_decay)))
        return nb_fail(err, "%s: weight decay must be >= 0, got %g", name,
                       (double)c->weight_decay);
    return 0;
}

int nb_optimizer_init(nb_optimizer *o, const nb_optim_config *cfg, size_t n, nb_error *err)
{
    memset(o, 0, sizeof *o);
    if (validate(cfg, err) != 0)
        return -1;
    o->cfg = *cfg;
    o->n = n;
    /* calloc(0) may return NULL; one spare float keeps "NULL means not needed" unambiguous. */
    size_t alloc = n ? n : 1;
    if (needs_velocity(cfg->kind) && !(o->v = calloc(alloc, sizeof *o->v)))
        goto oom;
    if (needs_second_moment(cfg->kind) && !(o->s = calloc(alloc, sizeof *o->s)))
        goto oom;
    return 0;
oom:
    nb_optimizer_free(o);
    return nb_fail(err, "%s: out of memory for %zu optimizer states",
                   nb_optimizer_name(cfg->kind), n);
}

void nb_optimizer_free(nb_optimizer *o)
{
    if (!o)
        return;
    free(o->v);
    free(o->s);
    o->v = NULL;
    o->s = NULL;
}

/* Each step reads the weights from w and writes the stepped ones to out, which may be w
 * itself (so w and out are not restrict). */
static void step_sgd(size_t n, const float *w, const float *restrict g, float *out, float lr,
                     float wd)
{
    for (size_t i = 0; i < n; i++)
        out[i] = w[i] - lr * (g[i] + wd * w[i]);
}

/* scale is lr, or lr/(1-beta^t) with bias correction. */
static void step_momentum(size_t n, const float *w, const float *restrict g, float *restrict v,
                          float *out, float scale, float beta, float wd)
{
    const float one_minus_beta = 1.0f - beta;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float vi = beta * v[i] + one_minus_beta * gi;
        v[i] = vi;
        out[i] = w[i] - scale * vi;
    }
}

static void step_nesterov(size_t n, const float *w, const float *restrict g, float *restrict v,
                          float *out, float lr, float beta, float wd)
{
    const float one_minus_beta = 1.0f - beta;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float vi = beta * v[i] + one_minus_beta * gi;
        v[i] = vi;
        out[i] = w[i] - lr * (one_minus_beta * gi + beta * vi);
    }
}

static void step_rmsprop(size_t n, const float *w, const float *restrict g, float *restrict s,
                         float *out, float lr, float beta2, float eps, float wd)
{
    const float one_minus_beta2 = 1.0f - beta2;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float si = beta2 * s[i] + one_minus_beta2 * gi * gi;
        s[i] = si;
        out[i] = w[i] - lr * gi / (sqrtf(si) + eps);
    }
}

/* step_size = lr/(1-beta^t), bc2_sqrt = sqrt(1-beta2^t); wd is the L2 term and decay the
 * decoupled factor the weights are first multiplied by (AdamW; 1 for Adam). The decayed
 * weight is rounded to float before the step, as torch's separate in-place ops do. */
static void step_adam(size_t n, const float *w, const float *restrict g, float *restrict m,
                      float *restrict s, float *out, float step_size, float bc2_sqrt,
                      float beta, float beta2, float eps, float wd, float decay)
{
    const float one_minus_beta = 1.0f - beta, one_minus_beta2 = 1.0f - beta2;
    for (size_t i = 0; i < n; i++) {
        float wi = w[i] * decay;
        float gi = g[i] + wd * wi;
        float mi = beta * m[i] + one_minus_beta * gi;
        float si = beta2 * s[i] + one_minus_beta2 * gi * gi;
        m[i] = mi;
        s[i] = si;
        out[i] = wi - step_size * mi / (sqrtf(si) / bc2_sqrt + eps);
    }
}

/* One step's constants, worked out once, and the buffers; each thread of the pool job steps
 * its own share of the parameters. */
typedef struct step_job {
    const nb_optimizer *o;
    const float *w, *g;
    float *out;
    float lr, scale, step_size, bc2_sqrt, decay_factor;
} step_job;

NB_HOT static void step_range(const step_job *j, size_t at, size_t n)
{
    const nb_optim_config *c = &j->o->cfg;
    const float *w = j->w + at, *g = j->g + at;
    float *v = j->o->v ? j->o->v + at : NULL, *s = j->o->s ? j->o->s + at : NULL;
    float *out = j->out + at;
    switch (c->kind) {
    case NB_SGD:
        step_sgd(n, w, g, out, j->lr, c->weight_decay);
        break;
    case NB_MOMENTUM:
        step_momentum(n, w, g, v, out, j->scale, c->beta, c->weight_decay);
        break;
    case NB_NESTEROV:
        step_nesterov(n, w, g, v, out, j->lr, c->beta, c->weight_decay);
        break;
    case NB_RMSPROP:
        step_rmsprop(n, w, g, s, out, j->lr, c->beta2, c->eps, c->weight_decay);
        break;
    case NB_ADAM:
        step_adam(n, w, g, v, s, out, j->step_size, j->bc2_sqrt, c->beta, c->beta2, c->eps,
                  c->weight_decay, 1.0f);
        break;
    case NB_ADAMW:
        /* Decoupled decay shrinks the weights before the gradient step, as torch.optim.AdamW. */
        step_adam(n, w, g, v, s, out, j->step_size, j->bc2_sqrt, c->beta, c->beta2, c->eps,
                  0.0f, j->decay_factor);
        break;
    }
}

static void step_share(const nb_exec *ex, void *arg)
{
    const step_job *j = arg;
    size_t begin, end;
    nb_split(ex, j->o->n, 16, &begin, &end);
    step_range(j, begin, end - begin);
}

void nb_optimizer_step_to(nb_optimizer *o, const float *w, const float *g, float lr, float *out)
{
    const nb_optim_config *c = &o->cfg;
    o->t++;
    /* Bias corrections in double: beta^t underflows gracefully and 1 - beta^t keeps its
     * precision for small t, where it matters most. */
    const double t = (double)o->t;
    const double bc1 = 1.0 - pow((double)c->beta, t);
    const double bc2 = 1.0 - pow((double)c->beta2, t);
    step_job j = {o, w, g, out, lr, lr, lr, 1.0f, 1.0f};
    if (c->kind == NB_MOMENTUM && c->bias_correction)
        j.scale = (float)((double)lr / bc1);
    j.step_size = (float)((double)lr / bc1);
    j.bc2_sqrt = (float)sqrt(bc2);
    j.decay_factor = (float)(1.0 - (double)lr * (double)c->weight_decay);
    nb_parallel(step_share, &j);
}

void nb_optimizer_step(nb_optimizer *o, float *w, const float *g, float lr)
{
    nb_optimizer_step_to(o, w, g, lr, w);
}
