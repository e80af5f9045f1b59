/* Batch normalization (Ioffe & Szegedy 2015) over the batch of x [B, n], as one fused op:
 * forward and backward side by side, statistics accumulated in double.
 *
 * Training:  mean, var = batch mean and biased variance of each feature
 *            xhat = (x - mean) / sqrt(var + eps);  y = gamma * xhat + beta
 *            running = (1 - momentum) * running + momentum * batch stat (unbiased variance)
 * Inference: the same with the running mean and variance in place of the batch's.
 *
 * Every statistic is per feature, so each thread of a job takes its own block of features
 * through the whole computation, with no barrier: the results do not depend on the number of
 * threads.
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
 * rank. Per feature that is 2 collectives of n doubles forward and 1 of 2n backward.
 *
 * Scratch layout (floats): [2n doubles: sums] [mean n] [invstd n] [xhat B*n]. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graph_internal.h"
#include "simd.h"

enum { BN_X, BN_GAMMA, BN_BETA, BN_RUNNING_MEAN, BN_RUNNING_VAR };

typedef struct bn_scratch {
    double *sum_a, *sum_b;
    float *mean, *invstd, *xhat;
} bn_scratch;

static bn_scratch scratch_of(const nb_node *n)
{
    size_t f = n->width;
    bn_scratch s;
    s.sum_a = (double *)(void *)n->scratch;
    s.sum_b = s.sum_a + f;
    s.mean = n->scratch + 4 * f;
    s.invstd = s.mean + f;
    s.xhat = s.invstd + f;
    return s;
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

NB_HOT static void batchnorm_forward(nb_node *n, int batch, const nb_exec *ex)
{
    const float *x = n->in[BN_X]->value;
    const float *gamma = n->in[BN_GAMMA]->value, *beta = n->in[BN_BETA]->value;
    float *running_mean = n->in[BN_RUNNING_MEAN]->value;
    float *running_var = n->in[BN_RUNNING_VAR]->value;
    float momentum = n->args.batchnorm.momentum, eps = n->args.batchnorm.eps;
    size_t f = n->width, j0, j1;
    feature_block(ex, f, &j0, &j1);
    bn_scratch s = scratch_of(n);
    int training = n->graph->training;
    if (ex->tid == 0)
        n->forward_was_training = training;

    if (training) {
        /* The rows the statistics are over: the global batch when synchronized (this rank
         * may hold none of them), else this pass's. */
        int sync = n->graph->dp.bn_comm != NULL;
        int count = sync ? n->graph->dp.global_batch : batch;
        for (size_t j = j0; j < j1; j++)
            s.sum_a[j] = s.sum_b[j] = 0.0;
        for (int r = 0; r < batch; r++)
            for (size_t j = j0; j < j1; j++)
                s.sum_a[j] += x[r * f + j];
        if (sync)
            sum_over_ranks(n, ex, s.sum_a, f);
        for (size_t j = j0; j < j1; j++)
            s.mean[j] = count > 0 ? (float)(s.sum_a[j] / count) : 0.0f;
        /* Two passes (mean, then squared deviations) for a variance that does not cancel. */
        for (int r = 0; r < batch; r++)
            for (size_t j = j0; j < j1; j++) {
                double d = (double)x[r * f + j] - s.mean[j];
                s.sum_b[j] += d * d;
            }
        if (sync)
            sum_over_ranks(n, ex, s.sum_b, f);
        for (size_t j = j0; j < j1; j++) {
            double var = count > 0 ? s.sum_b[j] / count : 0.0;
            s.invstd[j] = (float)(1.0 / sqrt(var + eps));
            /* A batch of one has no unbiased variance; PyTorch refuses it, we leave the
             * running statistics as they are. */
            if (count > 1) {
                running_mean[j] = (1.0f - momentum) * running_mean[j] + momentum * s.mean[j];
                running_var[j] = (1.0f - momentum) * running_var[j] +
                                 momentum * (float)(s.sum_b[j] / (count - 1));
            }
        }
        /* The counter comes from a file when weights are loaded, so it may already be at the
         * top of int64; it only counts (momentum is fixed), so it stops there. */
        if (ex->tid == 0 && n->counter < INT64_MAX)
            n->counter++;
    } else {
        for (size_t j = j0; j < j1; j++) {
            s.mean[j] = running_mean[j];
            s.invstd[j] = 1.0f / sqrtf(running_var[j] + eps);
        }
    }
    for (int r = 0; r < batch; r++)
        for (size_t j = j0; j < j1; j++) {
            float xhat = (x[r * f + j] - s.mean[j]) * s.invstd[j];
            s.xhat[r * f + j] = xhat;
            n->value[r * f + j] = gamma[j] * xhat + beta[j];
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
    nb_node *x = n->in[BN_X], *gamma = n->in[BN_GAMMA], *beta = n->in[BN_BETA];
    const float *dy = n->grad;
    size_t f = n->width, j0, j1;
    feature_block(ex, f, &j0, &j1);
    bn_scratch s = scratch_of(n);
    double *sum_dy = s.sum_a, *sum_dyx = s.sum_b;

    for (size_t j = j0; j < j1; j++)
        sum_dy[j] = sum_dyx[j] = 0.0;
    for (int r = 0; r < batch; r++)
        for (size_t j = j0; j < j1; j++) {
            sum_dy[j] += dy[r * f + j];
            sum_dyx[j] += (double)dy[r * f + j] * s.xhat[r * f + j];
        }
    if (gamma->grad)
        for (size_t j = j0; j < j1; j++)
            gamma->grad[j] = nb_grad_put(gamma->grad[j], (float)sum_dyx[j], n->assign[BN_GAMMA]);
    if (beta->grad)
        for (size_t j = j0; j < j1; j++)
            beta->grad[j] = nb_grad_put(beta->grad[j], (float)sum_dy[j], n->assign[BN_BETA]);
    if (!x->grad)
        return;
    int assign = n->assign[BN_X];
    if (n->forward_was_training) {
        int sync = n->graph->dp.bn_comm != NULL;
        int count = sync ? n->graph->dp.global_batch : batch;
        /* sum_dy and sum_dyx lie side by side: one collective for both. */
        if (sync)
            sum_over_ranks(n, ex, s.sum_a, 2 * f);
        if (count == 0)
            return;
        for (size_t j = j0; j < j1; j++) {
            /* Reuse the sums as per-feature coefficients: mean of dy and of dy·xhat. */
            sum_dy[j] /= count;
            sum_dyx[j] /= count;
        }
        for (int r = 0; r < batch; r++)
            for (size_t j = j0; j < j1; j++) {
                size_t i = r * f + j;
                float c = gamma->value[j] * s.invstd[j];
                float d = c * (dy[i] - (float)sum_dy[j] - s.xhat[i] * (float)sum_dyx[j]);
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

static const nb_op batchnorm_op = {"batchnorm", batchnorm_forward, batchnorm_backward};

nb_node *nb_batchnorm(nb_graph *g, nb_node *x, const char *prefix, float momentum, float eps)
{
    if (!g || g->failed || !x)
        return g ? nb_graph_fail(g, "batchnorm: missing input") : NULL;
    if (!x->batched || x->ndim != 2)
        return nb_graph_fail(g, "batchnorm: x must be a batch of vectors [B, n]");
    if (!(momentum >= 0.0f && momentum <= 1.0f) || !(eps > 0.0f))
        return nb_graph_fail(g, "batchnorm: momentum must be in [0, 1] and eps > 0");
    if (!prefix || strlen(prefix) > 200)
        return nb_graph_fail(g, "batchnorm: a name prefix of at most 200 characters is needed");
    int features[1] = {x->shape[1]};
    char name[256];
    nb_node *inputs[5] = {x, NULL, NULL, NULL, NULL};
    static const char *const suffix[5] = {"", "weight", "bias", "running_mean", "running_var"};
    for (int i = 1; i < 5; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, suffix[i]);
        inputs[i] = i <= BN_BETA ? nb_param(g, name, 1, features) : nb_state(g, name, 1, features);
        if (!inputs[i])
            return NULL;
    }
    inputs[BN_GAMMA]->init_fill = 1.0f;
    inputs[BN_RUNNING_VAR]->init_fill = 1.0f;
    nb_node *n = nb_graph_add_op(g, &batchnorm_op, inputs, 5, 1, 2, x->shape);
    if (!n)
        return NULL;
    n->args.batchnorm.momentum = momentum;
    n->args.batchnorm.eps = eps;
    n->scratch_fixed = 6 * x->width;
    n->scratch_per_row = x->width;
    snprintf(name, sizeof name, "%s.num_batches_tracked", prefix);
    if (nb_graph_add_counter(g, name, n) != 0)
        return NULL;
    return n;
}
