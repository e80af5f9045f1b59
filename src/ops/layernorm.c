/* Layer normalization (Ba, Kiros & Hinton 2016) of each sample over all its features, as one
 * fused op, torch.nn.LayerNorm with normalized_shape the sample's shape:
 *   mean, var = the sample's mean and biased variance (in double, two passes)
 *   xhat = (x - mean) / sqrt(var + eps);  y = weight * xhat + bias   (weight, bias per feature)
 * The same in training and inference mode.
 *
 * Backward, for a sample of F features, with g = dy·weight:
 *   dx = invstd · (g − mean(g) − xhat · mean(g·xhat))
 *   dweight = Σ over the rows of dy·xhat,  dbias = Σ over the rows of dy
 *
 * Threads: forward and dx take rows, each row's sums added in a fixed lane order (lane_sum.h);
 * dweight and dbias take features, each added over the rows in row order. No result depends on
 * the number of threads, and backward needs no barrier: its two parts write different buffers.
 * xhat is recomputed from x with the row's mean and invstd (the same float expression as in
 * forward, so the same bits), which are all forward keeps.
 *
 * Scratch (floats): [mean, max_batch] [invstd, max_batch] [2 doubles a feature: the sums of
 * dweight and dbias]. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/graph_internal.h"
#include "lane_sum.h"
#include "core/simd.h"

enum { LN_X, LN_WEIGHT, LN_BIAS };

static float *row_mean(const nb_node *n) { return n->scratch; }
static float *row_invstd(const nb_node *n) { return n->scratch + n->graph->max_batch; }
static double *feature_sums(const nb_node *n)
{
    return (double *)(void *)(n->scratch + 2 * (size_t)n->graph->max_batch);
}

NB_HOT static void layernorm_forward(nb_node *n, int batch, const nb_exec *ex)
{
    const float *x = n->in[LN_X]->value;
    const float *w = n->in[LN_WEIGHT]->value, *b = n->in[LN_BIAS]->value;
    float eps = n->args.layernorm.eps;
    size_t f = n->width, r0, r1;
    nb_split(ex, (size_t)batch, 1, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * f;
        float *yr = n->value + r * f;
        float mean = (float)(nb_lane_sum(xr, f) / (double)f);
        double var = nb_lane_sum_sq_dev(xr, f, mean) / (double)f;
        float invstd = (float)(1.0 / sqrt(var + eps));
        row_mean(n)[r] = mean;
        row_invstd(n)[r] = invstd;
        for (size_t j = 0; j < f; j++)
            yr[j] = w[j] * NB_XHAT(xr, j, mean, invstd) + b[j];
    }
}

/* dweight and dbias, this thread's features. */
NB_HOT static void layernorm_param_grads(nb_node *n, int batch, const nb_exec *ex)
{
    nb_node *weight = n->in[LN_WEIGHT], *bias = n->in[LN_BIAS];
    const float *x = n->in[LN_X]->value, *dy = n->grad;
    const float *mean = row_mean(n), *invstd = row_invstd(n);
    size_t f = n->width, j0, j1;
    nb_split(ex, f, 16, &j0, &j1);
    double *sum_dyx = feature_sums(n), *sum_dy = sum_dyx + f;
    /* A tile of features at a time through all the rows, so that its sums stay in the L1
     * cache; each feature's sum is still over the rows in row order. */
    enum { TILE = 256 };
    for (size_t t0 = j0; t0 < j1; t0 += TILE) {
        size_t t1 = j1 - t0 < TILE ? j1 : t0 + TILE;
        for (size_t j = t0; j < t1; j++)
            sum_dyx[j] = sum_dy[j] = 0.0;
        for (int r = 0; r < batch; r++) {
            const float *xr = x + (size_t)r * f, *dyr = dy + (size_t)r * f;
            float m = mean[r], s = invstd[r];
            for (size_t j = t0; j < t1; j++) {
                float xhat = NB_XHAT(xr, j, m, s);
                sum_dyx[j] += (double)dyr[j] * xhat;
                sum_dy[j] += dyr[j];
            }
        }
    }
    if (weight->grad)
        for (size_t j = j0; j < j1; j++)
            weight->grad[j] = nb_grad_put(weight->grad[j], (float)sum_dyx[j], n->assign[LN_WEIGHT]);
    if (bias->grad)
        for (size_t j = j0; j < j1; j++)
            bias->grad[j] = nb_grad_put(bias->grad[j], (float)sum_dy[j], n->assign[LN_BIAS]);
}

/* dx, this thread's rows. */
NB_HOT static void layernorm_input_grad(nb_node *n, int batch, const nb_exec *ex)
{
    nb_node *x = n->in[LN_X];
    const float *w = n->in[LN_WEIGHT]->value, *dy = n->grad;
    int assign = n->assign[LN_X];
    size_t f = n->width, r0, r1;
    nb_split(ex, (size_t)batch, 1, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x->value + r * f, *dyr = dy + r * f;
        float *dxr = x->grad + r * f;
        float m = row_mean(n)[r], s = row_invstd(n)[r];
        float mean_g = (float)(nb_lane_sum_product(dyr, w, f) / (double)f);
        float mean_gx = (float)(nb_lane_sum_g_xhat(dyr, w, xr, f, m, s) / (double)f);
        for (size_t j = 0; j < f; j++) {
            float xhat = NB_XHAT(xr, j, m, s);
            float d = s * (dyr[j] * w[j] - mean_g - xhat * mean_gx);
            dxr[j] = nb_grad_put(dxr[j], d, assign);
        }
    }
}

static void layernorm_backward(nb_node *n, int batch, const nb_exec *ex)
{
    if (n->in[LN_WEIGHT]->grad || n->in[LN_BIAS]->grad)
        layernorm_param_grads(n, batch, ex);
    if (n->in[LN_X]->grad)
        layernorm_input_grad(n, batch, ex);
}

static const nb_op layernorm_op = {"layernorm", layernorm_forward, layernorm_backward, NULL, NULL};

nb_node *nb_layernorm(nb_graph *g, nb_node *x, const char *prefix, float eps)
{
    if (!g || g->failed || !x)
        return g ? nb_graph_fail(g, "layernorm: missing input") : NULL;
    if (!x->batched || x->ndim < 2 || x->leaf == NB_LEAF_LABELS)
        return nb_graph_fail(g, "layernorm: x must be a batch of samples [B, ...]");
    if (!(eps > 0.0f) || isinf(eps))
        return nb_graph_fail(g, "layernorm: eps must be a positive number, not %g", (double)eps);
    if (!prefix || strlen(prefix) > 200)
        return nb_graph_fail(g, "layernorm: a name prefix of at most 200 characters is needed");
    char name[256];
    nb_node *inputs[3] = {x, NULL, NULL};
    static const char *const suffix[3] = {"", "weight", "bias"};
    for (int i = 1; i < 3; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, suffix[i]);
        inputs[i] = nb_param(g, name, x->ndim - 1, x->shape + 1);
        if (!inputs[i])
            return NULL;
    }
    inputs[LN_WEIGHT]->init_fill = 1.0f;
    nb_node *n = nb_graph_add_op(g, &layernorm_op, inputs, 3, 1, x->ndim, x->shape);
    if (!n)
        return NULL;
    n->args.layernorm.eps = eps;
    n->scratch_per_row = 2;
    n->scratch_fixed = 4 * x->width;
    return n;
}
