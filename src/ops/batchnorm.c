/* Batch normalization (Ioffe & Szegedy 2015), as one fused op: forward and backward side by
 * side, statistics accumulated in double. Two layouts, one op each:
 *   x [B, n]        (BatchNorm1d) statistics per feature over the B rows;
 *   x [B, C, H, W]  (BatchNorm2d; [B, C, L] likewise) statistics per channel over the B·H·W
 *                   values of the channel.
 *
 * Training:  mean, var = batch mean and biased variance of each feature (channel)
 *            xhat = (x - mean) / sqrt(var + eps);  y = gamma * xhat + beta
 *            running = (1 - momentum) * running + momentum * batch stat (unbiased variance)
 * Inference: the same with the running mean and variance in place of the batch's.
 *
 * [B, n]: every statistic is per feature, so each thread of a job takes its own block of
 * features through the whole computation, with no barrier: the results do not depend on the
 * number of threads.
 *
 * [B, C, H, W]: a channel's values are B blocks of H·W contiguous floats, one per row ("units",
 * unit r·C + c). Each thread sums its share of the units (lane_sum.h, a fixed order), then,
 * after a barrier, each thread adds up its share of the channels over the rows in row order:
 * the sums, so the results, do not depend on the number of threads, and every thread has work
 * however few the channels. Forward reads x once for both statistics: a unit's sum and its
 * squared deviations from its own mean (the unit is then in the L1 cache), which give the
 * channel's squared deviations from the channel's mean exactly (see batchnorm2d_forward). The elementwise passes (normalize, dx) take units likewise. xhat
 * is not kept but recomputed from x in backward (the same float expression, so the same
 * bits): an image layer's activations are large, and this saves a copy of them.
 *
 * An activation applied by the op (nb_activate): forward applies it to the values it has just
 * written, backward first turns dy into the gradient before the activation, in place (nothing
 * else reads this node's gradient), in each thread's own share of the values.
 *
 * Synchronized batch norm (a data-parallel step with g->dp.bn_comm set): each rank holds a
 * shard of the global batch, and the statistics are those of the whole global batch, so the
 * result is one process's. Forward sums x over the rank's rows, then the ranks sum those sums
 * (the mean), then the squared deviations from that mean likewise (the variance: two passes,
 * as in one process, so the numbers match it and do not cancel); backward sums dy and dy·xhat
 * over the ranks for dx. Each such sum: every thread finishes its features, barrier, thread 0
 * sums all features over the ranks, barrier. gamma's and beta's gradients stay the rank's own
 * (its rows' part): the trainer sums them over the ranks with every other gradient. The running
 * statistics are then updated from the global mean and unbiased variance, the same on every
 * rank. Per feature that is 2 collectives of n doubles forward and 1 of 2n backward (n: the
 * features or channels; an image's count is global_batch·H·W).
 *
 * Scratch layout (floats), n features or channels:
 *   [2n doubles: sums] [mean n] [invstd n] (pooled: a plane buffer per part) then, per row of
 *   the batch, [B, n]: xhat, n floats;  [B, C, H, W]: the units' two partial sums, 2C doubles
 *   (pooled: then, after the max batch's sums, the maxima's places, an int32 per output). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/graph_internal.h"
#include "lane_sum.h"
#include "core/simd.h"

enum { BN_X, BN_GAMMA, BN_BETA, BN_RUNNING_MEAN, BN_RUNNING_VAR };

typedef struct bn_scratch {
    double *sum_a, *sum_b;
    float *mean, *invstd;
    float *xhat;              /* [B, n] */
    double *part_a, *part_b;  /* [B, C, H, W]: a sum for each unit (row, channel) */
} bn_scratch;

/* Features ([B, n]) or channels ([B, C, H, W]): the size of gamma. */
static size_t channels_of(const nb_node *n) { return n->in[BN_GAMMA]->width; }

static bn_scratch scratch_of(const nb_node *n, int batch)
{
    size_t f = channels_of(n);
    bn_scratch s;
    s.sum_a = (double *)(void *)n->scratch;
    s.sum_b = s.sum_a + f;
    s.mean = n->scratch + 4 * f;
    s.invstd = s.mean + f;
    s.xhat = n->scratch + n->scratch_fixed;   /* after the fixed part: see nb_batchnorm */
    s.part_a = (double *)(void *)s.xhat;
    s.part_b = s.part_a + (size_t)batch * f;
    return s;
}

/* The values each statistic is over: the rows of the global batch when synchronized (this
 * rank may hold none of them), else this pass's, times the values per row of one feature. */
static double count_of(const nb_node *n, int batch, size_t per_row)
{
    int sync = n->graph->dp.bn_comm != NULL;
    return (double)(sync ? n->graph->dp.global_batch : batch) * (double)per_row;
}

/* This thread's features, in multiples of 16 (a cache line of floats). */
static void feature_block(const nb_exec *ex, size_t f, size_t *j0, size_t *j1)
{
    nb_split(ex, f, 16, j0, j1);
}

/* Synchronized batch norm: replaces the per-feature sums (n doubles) with their sums over the
 * ranks, once every thread has finished its features. */
static void sum_over_ranks(nb_node *n, const nb_exec *ex, double *sums, size_t count)
{
    nb_barrier(ex);
    if (ex->tid == 0)
        nb_graph_dp_sum(n->graph, sums, count);
    nb_barrier(ex);
}

/* ---- the per-feature steps both layouts share, for features [j0, j1) ---- */

static void finish_mean(const bn_scratch *s, size_t j0, size_t j1, double count)
{
    for (size_t j = j0; j < j1; j++)
        s->mean[j] = count > 0 ? (float)(s->sum_a[j] / count) : 0.0f;
}

/* invstd from the sums of squared deviations, and the running statistics updated. */
static void finish_variance(nb_node *n, const bn_scratch *s, size_t j0, size_t j1, double count)
{
    float *running_mean = n->in[BN_RUNNING_MEAN]->value;
    float *running_var = n->in[BN_RUNNING_VAR]->value;
    float momentum = n->args.batchnorm.momentum, eps = n->args.batchnorm.eps;
    for (size_t j = j0; j < j1; j++) {
        double var = count > 0 ? s->sum_b[j] / count : 0.0;
        s->invstd[j] = (float)(1.0 / sqrt(var + eps));
        /* A single value has no unbiased variance; PyTorch refuses it, we leave the running
         * statistics as they are. */
        if (count > 1) {
            running_mean[j] = (1.0f - momentum) * running_mean[j] + momentum * s->mean[j];
            running_var[j] = (1.0f - momentum) * running_var[j] +
                             momentum * (float)(s->sum_b[j] / (count - 1));
        }
    }
}

/* Inference: the running statistics. */
static void use_running(const nb_node *n, const bn_scratch *s, size_t j0, size_t j1)
{
    const float *running_mean = n->in[BN_RUNNING_MEAN]->value;
    const float *running_var = n->in[BN_RUNNING_VAR]->value;
    for (size_t j = j0; j < j1; j++) {
        s->mean[j] = running_mean[j];
        s->invstd[j] = 1.0f / sqrtf(running_var[j] + n->args.batchnorm.eps);
    }
}

/* The counter comes from a file when weights are loaded, so it may already be at the top of
 * int64; it only counts (momentum is fixed), so it stops there. */
static void count_batch(nb_node *n, const nb_exec *ex)
{
    if (ex->tid == 0 && n->counter < INT64_MAX)
        n->counter++;
}

/* gamma's and beta's gradients from the sums (this rank's rows). */
static void put_param_grads(nb_node *n, const bn_scratch *s, size_t j0, size_t j1)
{
    nb_node *gamma = n->in[BN_GAMMA], *beta = n->in[BN_BETA];
    if (gamma->grad)
        for (size_t j = j0; j < j1; j++)
            gamma->grad[j] = nb_grad_put(gamma->grad[j], (float)s->sum_b[j], n->assign[BN_GAMMA]);
    if (beta->grad)
        for (size_t j = j0; j < j1; j++)
            beta->grad[j] = nb_grad_put(beta->grad[j], (float)s->sum_a[j], n->assign[BN_BETA]);
}

/* Training backward: the sums become per-feature coefficients, the means of dy and dy·xhat. */
static void finish_backward(const bn_scratch *s, size_t j0, size_t j1, double count)
{
    for (size_t j = j0; j < j1; j++) {
        s->sum_a[j] /= count;
        s->sum_b[j] /= count;
    }
}

/* dx of one element in training mode, c = gamma·invstd of its feature. */
static inline float train_dx(float c, float dy, float xhat, double mean_dy, double mean_dyx)
{
    return c * (dy - (float)mean_dy - xhat * (float)mean_dyx);
}

/* ---- [B, n]: BatchNorm1d ---- */

NB_HOT static void batchnorm_forward(nb_node *n, int batch, const nb_exec *ex)
{
    const float *x = n->in[BN_X]->value;
    const float *gamma = n->in[BN_GAMMA]->value, *beta = n->in[BN_BETA]->value;
    size_t f = n->width, j0, j1;
    feature_block(ex, f, &j0, &j1);
    bn_scratch s = scratch_of(n, batch);
    int training = n->graph->training;
    if (ex->tid == 0)
        n->forward_was_training = training;

    if (training) {
        int sync = n->graph->dp.bn_comm != NULL;
        double count = count_of(n, batch, 1);
        for (size_t j = j0; j < j1; j++)
            s.sum_a[j] = s.sum_b[j] = 0.0;
        for (int r = 0; r < batch; r++)
            for (size_t j = j0; j < j1; j++)
                s.sum_a[j] += x[r * f + j];
        if (sync)
            sum_over_ranks(n, ex, s.sum_a, f);
        finish_mean(&s, j0, j1, count);
        /* Two passes (mean, then squared deviations) for a variance that does not cancel. */
        for (int r = 0; r < batch; r++)
            for (size_t j = j0; j < j1; j++) {
                double d = (double)x[r * f + j] - s.mean[j];
                s.sum_b[j] += d * d;
            }
        if (sync)
            sum_over_ranks(n, ex, s.sum_b, f);
        finish_variance(n, &s, j0, j1, count);
        count_batch(n, ex);
    } else {
        use_running(n, &s, j0, j1);
    }
    for (int r = 0; r < batch; r++) {
        for (size_t j = j0; j < j1; j++) {
            float xhat = (x[r * f + j] - s.mean[j]) * s.invstd[j];
            s.xhat[r * f + j] = xhat;
            n->value[r * f + j] = gamma[j] * xhat + beta[j];
        }
        nb_fused_activation_forward(n, n->value + r * f + j0, j1 - j0);
    }
}

/* With sum_dy = Σ dy and sum_dyx = Σ dy·xhat over the batch (per feature):
 *   dgamma = sum_dyx,  dbeta = sum_dy
 *   training:  dx = gamma·invstd/B · (B·dy − sum_dy − xhat·sum_dyx)
 *   inference: dx = gamma·invstd · dy   (the statistics are constants)
 * Synchronized, B and the sums in dx are the global batch's (dy being the gradient of the
 * global loss, see loss.c), while dgamma and dbeta are this rank's rows' part. */
NB_HOT static void batchnorm_backward(nb_node *n, int batch, const nb_exec *ex)
{
    nb_node *x = n->in[BN_X], *gamma = n->in[BN_GAMMA];
    float *dy = n->grad;
    size_t f = n->width, j0, j1;
    feature_block(ex, f, &j0, &j1);
    bn_scratch s = scratch_of(n, batch);
    double *sum_dy = s.sum_a, *sum_dyx = s.sum_b;
    for (int r = 0; r < batch; r++)
        nb_fused_activation_backward(n, n->value + r * f + j0, dy + r * f + j0, j1 - j0);

    for (size_t j = j0; j < j1; j++)
        sum_dy[j] = sum_dyx[j] = 0.0;
    for (int r = 0; r < batch; r++)
        for (size_t j = j0; j < j1; j++) {
            sum_dy[j] += dy[r * f + j];
            sum_dyx[j] += (double)dy[r * f + j] * s.xhat[r * f + j];
        }
    put_param_grads(n, &s, j0, j1);
    if (!x->grad)
        return;
    int assign = n->assign[BN_X];
    if (n->forward_was_training) {
        double count = count_of(n, batch, 1);
        /* sum_dy and sum_dyx lie side by side: one collective for both. */
        if (n->graph->dp.bn_comm)
            sum_over_ranks(n, ex, s.sum_a, 2 * f);
        if (count == 0)
            return;
        finish_backward(&s, j0, j1, count);
        for (int r = 0; r < batch; r++)
            for (size_t j = j0; j < j1; j++) {
                size_t i = r * f + j;
                float d = train_dx(gamma->value[j] * s.invstd[j], dy[i], s.xhat[i], sum_dy[j],
                                   sum_dyx[j]);
                x->grad[i] = nb_grad_put(x->grad[i], d, assign);
            }
    } else {
        for (int r = 0; r < batch; r++)
            for (size_t j = j0; j < j1; j++) {
                size_t i = r * f + j;
                x->grad[i] = nb_grad_put(x->grad[i], gamma->value[j] * s.invstd[j] * dy[i],
                                         assign);
            }
    }
}

static const nb_op batchnorm_op = {"batchnorm", batchnorm_forward, batchnorm_backward,
                                   nb_fuse_from_output, NULL};

/* ---- [B, C, H, W]: BatchNorm2d ---- */

/* This thread's units (row, channel) and channels, and its parts of the units for the
 * elementwise passes (see "pooled" below). */
typedef struct bn_shares {
    size_t channels, spatial;   /* C and the values per unit of x, H·W */
    size_t out_spatial;         /* the values per unit of the output: H·W, or Ho·Wo pooled */
    size_t u0, u1, c0, c1;
    int parts, p0, p1;
} bn_shares;

static bn_shares shares_of(const nb_node *n, int batch, const nb_exec *ex)
{
    bn_shares h;
    h.channels = channels_of(n);
    h.spatial = n->in[BN_X]->width / h.channels;
    h.out_spatial = n->width / h.channels;
    nb_split(ex, (size_t)batch * h.channels, 1, &h.u0, &h.u1);
    nb_split(ex, h.channels, 1, &h.c0, &h.c1);
    h.parts = nb_product_parts();
    nb_thread_parts(ex, h.parts, &h.p0, &h.p1);
    return h;
}

/* The units [*u0, *u1) of part `part`. */
static void part_units(const bn_shares *h, int batch, int part, size_t *u0, size_t *u1)
{
    nb_part_range(part, h->parts, (size_t)batch * h->channels, 1, u0, u1);
}

/* out[c] = Σ over the rows, in row order, of part[r·C + c], for this thread's channels. */
static void add_rows(const bn_shares *h, int batch, const double *part, double *out)
{
    for (size_t c = h->c0; c < h->c1; c++) {
        double sum = 0.0;
        for (int r = 0; r < batch; r++)
            sum += part[(size_t)r * h->channels + c];
        out[c] = sum;
    }
}

/* ---- pooled: a batch norm on images that max-pools its own output ----
 *
 * nb_maxpool2d_fused on a batch norm of images (with or without its activation) makes the
 * node's output the pooled one: each unit is normalized (and activated) into its part's plane
 * buffer, in cache, and pooled from there, so the full-size output is never written, read back
 * or kept, nor its gradient. Backward turns the pooled gradient through the activation's
 * derivative at each window's maximum, in place; its sums (dgamma, dbeta) read each unit's
 * gradient before the pooling made in the plane buffer (zeros, and each window's dy where its
 * maximum was), and dx is written for every element with a dy of 0 and then again for the
 * maxima's elements with theirs (pooled_train_dx). Windows do not overlap (the builder fuses
 * only stride >= kernel), so every element gets at most one dy: the same numbers as the three
 * ops apart, wherever they are finite. The elementwise passes go
 * by parts (nb_product_parts), each part with its plane buffer; every result is per unit, so
 * it does not depend on who computes it. */

static int pooled(const nb_node *n) { return n->args.batchnorm.pooled; }

static nb_pool_plane pool_plane(const nb_node *n)
{
    const nb_node *x = n->in[BN_X];
    nb_pool_plane q = {x->shape[2], x->shape[3], n->shape[2], n->shape[3],
                       n->args.batchnorm.pool};
    return q;
}

static size_t aligned(size_t floats) { return (floats + 15) & ~(size_t)15; }

/* A part's plane buffer: a unit's values, or its gradient, before the pooling. */
static size_t plane_floats(size_t spatial) { return aligned(spatial); }

static float *part_plane(const nb_node *n, const bn_shares *h, int part)
{
    size_t f = channels_of(n);
    return n->scratch + 6 * f + (size_t)part * plane_floats(h->spatial);
}

/* Where each window's maximum is: an int32 per output value, after the partial sums. */
static int32_t *maxima_of(const nb_node *n, const bn_scratch *s)
{
    return (int32_t *)(void *)(s->part_a + 2 * channels_of(n) * (size_t)n->graph->max_batch);
}

/* The gradient of unit u before the activation (and the pooling). Unpooled: n->grad's own
 * values, turned in place on the first call. Pooled: the first call turns the pooled gradient
 * in n->grad in place (through the activation's derivative at each window's maximum); every
 * call then spreads it into the part's plane, zeros and each window's value where its maximum
 * was. */
static const float *unit_dz(nb_node *n, const bn_shares *h, const bn_scratch *s, size_t u,
                            float *plane, int first)
{
    size_t S = h->spatial, OS = h->out_spatial;
    size_t per_unit = pooled(n) ? OS : S;
    float *dy = n->grad + u * per_unit;
    if (first)
        nb_fused_activation_backward(n, n->value + u * per_unit, dy, per_unit);
    if (!pooled(n))
        return dy;
    nb_pool_plane q = pool_plane(n);
    memset(plane, 0, S * sizeof(float));
    nb_max_plane_backward(&q, dy, maxima_of(n, s) + u * OS, plane);
    return plane;
}

/* dx of a pooled unit in training mode, set (not added): the gradient before the pooling is 0
 * but where a window's maximum was, so every element takes train_dx with a dy of 0, and then
 * the maxima's elements take it again with their dy. Each element gets the expression the
 * unpooled pass gives it, on the same values: the same bits, without making the plane. */
NB_HOT static void pooled_train_dx(const nb_node *n, const bn_shares *h, const bn_scratch *s,
                                   size_t u, const float *xu, float *dxu, float k)
{
    size_t c = u % h->channels, S = h->spatial, OS = h->out_spatial;
    float mean = s->mean[c], invstd = s->invstd[c];
    double mean_dy = s->sum_a[c], mean_dyx = s->sum_b[c];
    for (size_t i = 0; i < S; i++)
        dxu[i] = train_dx(k, 0.0f, NB_XHAT(xu, i, mean, invstd), mean_dy, mean_dyx);
    nb_pool_plane q = pool_plane(n);
    const float *dz = n->grad + u * OS;
    const int32_t *at = maxima_of(n, s) + u * OS;
    for (int oh = 0; oh < q.out_height; oh++)
        for (int ow = 0; ow < q.out_width; ow++) {
            size_t e = (size_t)oh * (size_t)q.out_width + (size_t)ow;
            size_t i = nb_pool_window_start(&q, oh, ow) + (size_t)at[e];
            dxu[i] = train_dx(k, dz[e], NB_XHAT(xu, i, mean, invstd), mean_dy, mean_dyx);
        }
}

NB_HOT static void batchnorm2d_forward(nb_node *n, int batch, const nb_exec *ex)
{
    const float *x = n->in[BN_X]->value;
    const float *gamma = n->in[BN_GAMMA]->value, *beta = n->in[BN_BETA]->value;
    bn_shares h = shares_of(n, batch, ex);
    size_t C = h.channels, S = h.spatial, OS = h.out_spatial;
    bn_scratch s = scratch_of(n, batch);
    int training = n->graph->training;
    if (ex->tid == 0)
        n->forward_was_training = training;

    if (training) {
        int sync = n->graph->dp.bn_comm != NULL;
        double count = count_of(n, batch, S);
        /* One read of x for both statistics: each unit's sum and its squared deviations from
         * its own mean m_u, the second pass over the unit from the L1 cache. */
        for (size_t u = h.u0; u < h.u1; u++) {
            s.part_a[u] = nb_lane_sum(x + u * S, S);
            s.part_b[u] = nb_lane_sum_sq_dev(x + u * S, S, s.part_a[u] / (double)S);
        }
        nb_barrier(ex);
        add_rows(&h, batch, s.part_a, s.sum_a);
        if (sync)
            sum_over_ranks(n, ex, s.sum_a, C);
        finish_mean(&s, h.c0, h.c1, count);
        /* The channel's squared deviations from its mean m, unit by unit in row order:
         * Σ (x - m)² = Σ (x - m_u)² + S·(m_u - m)² over a unit (exact, whatever m). */
        for (size_t c = h.c0; c < h.c1; c++) {
            double sum = 0.0, m = s.mean[c];
            for (int r = 0; r < batch; r++) {
                size_t u = (size_t)r * C + c;
                double d = s.part_a[u] / (double)S - m;
                sum += s.part_b[u] + (double)S * (d * d);
            }
            s.sum_b[c] = sum;
        }
        if (sync)
            sum_over_ranks(n, ex, s.sum_b, C);
        finish_variance(n, &s, h.c0, h.c1, count);
        count_batch(n, ex);
    } else {
        use_running(n, &s, h.c0, h.c1);
    }
    nb_barrier(ex);
    nb_pool_plane q = pool_plane(n);
    for (int part = h.p0; part < h.p1; part++) {
        size_t u0, u1;
        part_units(&h, batch, part, &u0, &u1);
        float *plane = part_plane(n, &h, part);
        for (size_t u = u0; u < u1; u++) {
            size_t c = u % C;
            const float *xu = x + u * S;
            float *yu = pooled(n) ? plane : n->value + u * S;
            float mean = s.mean[c], invstd = s.invstd[c], gc = gamma[c], bc = beta[c];
            for (size_t i = 0; i < S; i++)
                yu[i] = gc * NB_XHAT(xu, i, mean, invstd) + bc;
            nb_fused_activation_forward(n, yu, S);
            if (pooled(n))
                nb_max_plane(&q, plane, n->value + u * OS, maxima_of(n, &s) + u * OS);
        }
    }
}

/* As batchnorm_backward, per channel, with xhat recomputed from x. */
NB_HOT static void batchnorm2d_backward(nb_node *n, int batch, const nb_exec *ex)
{
    nb_node *x = n->in[BN_X], *gamma = n->in[BN_GAMMA];
    bn_shares h = shares_of(n, batch, ex);
    size_t C = h.channels, S = h.spatial;
    bn_scratch s = scratch_of(n, batch);

    for (int part = h.p0; part < h.p1; part++) {
        size_t u0, u1;
        part_units(&h, batch, part, &u0, &u1);
        float *plane = part_plane(n, &h, part);
        for (size_t u = u0; u < u1; u++) {
            const float *dz = unit_dz(n, &h, &s, u, plane, 1);
            s.part_a[u] = nb_lane_sum(dz, S);
            s.part_b[u] = nb_lane_sum_dy_xhat(dz, x->value + u * S, S, s.mean[u % C],
                                              s.invstd[u % C]);
        }
    }
    nb_barrier(ex);
    add_rows(&h, batch, s.part_a, s.sum_a);
    add_rows(&h, batch, s.part_b, s.sum_b);
    put_param_grads(n, &s, h.c0, h.c1);
    if (!x->grad)
        return;
    int assign = n->assign[BN_X];
    int training = n->forward_was_training;
    if (training) {
        double count = count_of(n, batch, S);
        if (n->graph->dp.bn_comm)
            sum_over_ranks(n, ex, s.sum_a, 2 * C);
        if (count == 0)
            return;
        finish_backward(&s, h.c0, h.c1, count);
        nb_barrier(ex);
    }
    for (int part = h.p0; part < h.p1; part++) {
        size_t u0, u1;
        part_units(&h, batch, part, &u0, &u1);
        float *plane = part_plane(n, &h, part);
        for (size_t u = u0; u < u1; u++) {
            size_t c = u % C;
            const float *xu = x->value + u * S;
            float *dxu = x->grad + u * S;
            float mean = s.mean[c], invstd = s.invstd[c], k = gamma->value[c] * invstd;
            if (pooled(n) && training && assign) {
                pooled_train_dx(n, &h, &s, u, xu, dxu, k);
                continue;
            }
            const float *dyu = unit_dz(n, &h, &s, u, plane, 0);
            if (training) {
                double mean_dy = s.sum_a[c], mean_dyx = s.sum_b[c];
                for (size_t i = 0; i < S; i++) {
                    float xhat = NB_XHAT(xu, i, mean, invstd);
                    dxu[i] = nb_grad_put(dxu[i], train_dx(k, dyu[i], xhat, mean_dy, mean_dyx),
                                         assign);
                }
            } else {
                for (size_t i = 0; i < S; i++)
                    dxu[i] = nb_grad_put(dxu[i], k * dyu[i], assign);
            }
        }
    }
}

/* Takes a max pooling of its output when the windows do not overlap (see "pooled"): the
 * node's output becomes the pooled one, [B, C, Ho, Wo]. */
static int batchnorm2d_fuse_pool(nb_node *n, const nb_window2d *win, const int out[2])
{
    if (n->ndim != 4 || win->stride[0] < win->kernel[0] || win->stride[1] < win->kernel[1])
        return -1;
    size_t c = channels_of(n), spatial = (size_t)n->shape[2] * (size_t)n->shape[3];
    size_t out_spatial = (size_t)out[0] * (size_t)out[1];
    n->args.batchnorm.pooled = 1;
    n->args.batchnorm.pool = *win;
    n->shape[2] = out[0];
    n->shape[3] = out[1];
    n->width = c * out_spatial;
    n->scratch_fixed += (size_t)nb_product_parts() * plane_floats(spatial);
    n->scratch_per_row += c * out_spatial;   /* the maxima's places, an int32 each */
    return 0;
}

static const nb_op batchnorm2d_op = {"batchnorm2d", batchnorm2d_forward, batchnorm2d_backward,
                                     nb_fuse_from_output, batchnorm2d_fuse_pool};

nb_node *nb_batchnorm(nb_graph *g, nb_node *x, const char *prefix, float momentum, float eps)
{
    if (!g || g->failed || !x)
        return g ? nb_graph_fail(g, "batchnorm: missing input") : NULL;
    if (!x->batched || x->ndim < 2 || x->leaf == NB_LEAF_LABELS)
        return nb_graph_fail(g, "batchnorm: x must be a batch of vectors [B, n] or of images "
                                "[B, C, H, W]");
    if (!(momentum >= 0.0f && momentum <= 1.0f) || !(eps > 0.0f))
        return nb_graph_fail(g, "batchnorm: momentum must be in [0, 1] and eps > 0");
    if (!prefix || strlen(prefix) > 200)
        return nb_graph_fail(g, "batchnorm: a name prefix of at most 200 characters is needed");
    int channels[1] = {x->shape[1]};
    char name[256];
    nb_node *inputs[5] = {x, NULL, NULL, NULL, NULL};
    static const char *const suffix[5] = {"", "weight", "bias", "running_mean", "running_var"};
    for (int i = 1; i < 5; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, suffix[i]);
        inputs[i] = i <= BN_BETA ? nb_param(g, name, 1, channels) : nb_state(g, name, 1, channels);
        if (!inputs[i])
            return NULL;
    }
    inputs[BN_GAMMA]->init_fill = 1.0f;
    inputs[BN_RUNNING_VAR]->init_fill = 1.0f;
    int images = x->ndim > 2;
    nb_node *n = nb_graph_add_op(g, images ? &batchnorm2d_op : &batchnorm_op, inputs, 5, 1,
                                 x->ndim, x->shape);
    if (!n)
        return NULL;
    n->args.batchnorm.momentum = momentum;
    n->args.batchnorm.eps = eps;
    size_t c = (size_t)channels[0];
    n->scratch_fixed = 6 * c;
    /* A row's xhat ([B, n]), or its units' two partial sums in double ([B, C, H, W]). */
    n->scratch_per_row = images ? 4 * c : c;
    snprintf(name, sizeof name, "%s.num_batches_tracked", prefix);
    if (nb_graph_add_counter(g, name, n) != 0)
        return NULL;
    return n;
}
