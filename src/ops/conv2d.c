/* conv2d: torch.nn.Conv2d's convolution (a cross-correlation) of images x [B, C, H, W] with
 * kernels w [O, C, kh, kw] and an optional bias b [O]; zero padding, any stride, dilation 1,
 * groups 1. y [B, O, Ho, Wo] with Ho = floor((H + 2 ph - kh) / sh) + 1, likewise Wo.
 *
 * As matrix products (im2col): the input patches of sample s are the columns of
 * col_s [K = C kh kw, P = Ho Wo], so that y_s [O, P] = W [O, K] · col_s. Every sample's columns
 * are kept in scratch from forward to backward (K·P floats a row):
 *   forward   col_s = im2col(x_s);  y_s = W · col_s (+ b)                     per sample
 *   backward  dW (=, or +=) sum over s of dy_s · col_sᵀ;  db = sums of dy      (1)
 *             col_s = Wᵀ · dy_s (over the no longer needed columns);
 *             dx_s (=, or +=) col2im(col_s)                                    (2) per sample
 * Each product is one cblas_sgemm call on one thread (OpenBLAS runs single-threaded inside the
 * library's pool). A 1x1 kernel with stride 1 and no padding needs no columns: col_s is x_s.
 *
 * Threads, and results that do not depend on their number: the per-sample work is split by
 * samples, each sample one call of the same shape whichever thread makes it. The weight
 * gradient is a sum over the samples: split by samples it would need a partial sum per thread,
 * added up in an order that depends on the thread count (and a copy of dW per thread). Instead
 * dW is cut into the fixed blocks of nb_sgemm_share (as many as the machine has cores, whatever
 * the thread count; pool.h): each thread computes its blocks over every sample in order, so
 * every element of dW is summed in the same order however many threads there are. The bias
 * gradient is split by output channels, each summed whole by one thread. Phase (2) waits for
 * (1) to finish with the columns. */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "graph_internal.h"
#include "simd.h"

enum { CONV_X, CONV_W, CONV_B };

/* The sizes of one conv2d node. */
typedef struct conv_geom {
    int channels, height, width;       /* of x's samples */
    int out_channels, out_height, out_width;
    nb_window2d win;
    int k;                             /* rows of col_s: C kh kw */
    int p;                             /* columns of col_s: Ho Wo */
    int direct;                        /* 1x1 kernel, stride 1, no padding: col_s is x_s */
} conv_geom;

static conv_geom geometry(const nb_node *n)
{
    const nb_node *x = n->in[CONV_X];
    conv_geom q;
    q.channels = x->shape[1];
    q.height = x->shape[2];
    q.width = x->shape[3];
    q.out_channels = n->shape[1];
    q.out_height = n->shape[2];
    q.out_width = n->shape[3];
    q.win = n->args.conv2d;
    q.k = q.channels * q.win.kernel[0] * q.win.kernel[1];
    q.p = q.out_height * q.out_width;
    q.direct = q.win.kernel[0] == 1 && q.win.kernel[1] == 1 && q.win.stride[0] == 1 &&
               q.win.stride[1] == 1 && q.win.padding[0] == 0 && q.win.padding[1] == 0;
    return q;
}

/* The output columns [*ow0, *ow1) whose input column ow * stride - padding + j is inside the
 * image, for kernel column j; the others read padding. */
static void columns_inside(const conv_geom *q, int j, int *ow0, int *ow1)
{
    long long off = (long long)j - q->win.padding[1], s = q->win.stride[1];
    long long first = off >= 0 ? 0 : (-off + s - 1) / s;
    long long end = q->width - off <= 0 ? 0 : (q->width - off + s - 1) / s;
    if (end > q->out_width)
        end = q->out_width;
    if (first > end)
        first = end;
    *ow0 = (int)first;
    *ow1 = (int)end;
}

/* col [K, P]: row (c, i, j), column (oh, ow) holds x[c, oh sh - ph + i, ow sw - pw + j], or 0
 * where that is outside the image. */
NB_HOT static void im2col(const conv_geom *q, const float *restrict x, float *restrict col)
{
    int kh = q->win.kernel[0], kw = q->win.kernel[1], sh = q->win.stride[0];
    int sw = q->win.stride[1], ph = q->win.padding[0], wo = q->out_width;
    for (int c = 0; c < q->channels; c++)
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                float *row = col + (size_t)((c * kh + i) * kw + j) * (size_t)q->p;
                int ow0, ow1, off = j - q->win.padding[1];
                columns_inside(q, j, &ow0, &ow1);
                for (int oh = 0; oh < q->out_height; oh++) {
                    float *dst = row + (size_t)oh * (size_t)wo;
                    int ih = oh * sh - ph + i;
                    if (ih < 0 || ih >= q->height) {
                        for (int ow = 0; ow < wo; ow++)
                            dst[ow] = 0.0f;
                        continue;
                    }
                    const float *src = x + ((size_t)c * (size_t)q->height + (size_t)ih) *
                                               (size_t)q->width;
                    for (int ow = 0; ow < ow0; ow++)
                        dst[ow] = 0.0f;
                    if (sw == 1)
                        for (int ow = ow0; ow < ow1; ow++)
                            dst[ow] = src[ow + off];
                    else
                        for (int ow = ow0; ow < ow1; ow++)
                            dst[ow] = src[ow * sw + off];
                    for (int ow = ow1; ow < wo; ow++)
                        dst[ow] = 0.0f;
                }
            }
}

/* dx [C, H, W] += col2im(col): every element of col back onto the input element it was read
 * from (padding reads go nowhere), in a fixed order. */
NB_HOT static void col2im(const conv_geom *q, const float *restrict col, float *restrict dx)
{
    int kh = q->win.kernel[0], kw = q->win.kernel[1], sh = q->win.stride[0];
    int sw = q->win.stride[1], ph = q->win.padding[0], wo = q->out_width;
    for (int c = 0; c < q->channels; c++)
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                const float *row = col + (size_t)((c * kh + i) * kw + j) * (size_t)q->p;
                int ow0, ow1, off = j - q->win.padding[1];
                columns_inside(q, j, &ow0, &ow1);
                for (int oh = 0; oh < q->out_height; oh++) {
                    int ih = oh * sh - ph + i;
                    if (ih < 0 || ih >= q->height)
                        continue;
                    const float *src = row + (size_t)oh * (size_t)wo;
                    float *dst = dx + ((size_t)c * (size_t)q->height + (size_t)ih) *
                                          (size_t)q->width;
                    if (sw == 1)
                        for (int ow = ow0; ow < ow1; ow++)
                            dst[ow + off] += src[ow];
                    else
                        for (int ow = ow0; ow < ow1; ow++)
                            dst[ow * sw + off] += src[ow];
                }
            }
}

NB_HOT static void add_bias(float *restrict y, const float *restrict bias, int rows, int cols)
{
    for (int o = 0; o < rows; o++) {
        float *row = y + (size_t)o * (size_t)cols;
        for (int j = 0; j < cols; j++)
            row[j] += bias[o];
    }
}

/* The sum of n floats in an order fixed by n alone: 8 float lanes, added up in double. */
NB_HOT static double row_sum(const float *x, size_t n)
{
    float lane[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            lane[l] += x[i + l];
    double total = 0.0;
    for (int l = 0; l < 8; l++)
        total += lane[l];
    for (; i < n; i++)
        total += x[i];
    return total;
}

/* Sample s's columns: its slot in scratch, or its input itself for a direct conv. */
static float *columns(const nb_node *n, const conv_geom *q, size_t s)
{
    if (q->direct)
        return n->in[CONV_X]->value + s * (size_t)q->k * (size_t)q->p;
    return n->scratch + s * (size_t)q->k * (size_t)q->p;
}

static void conv2d_forward(nb_node *n, int batch, const nb_exec *ex)
{
    conv_geom q = geometry(n);
    const float *x = n->in[CONV_X]->value, *w = n->in[CONV_W]->value;
    const float *bias = n->n_in > CONV_B ? n->in[CONV_B]->value : NULL;
    size_t in_row = n->in[CONV_X]->width, s0, s1;
    nb_split(ex, (size_t)batch, 1, &s0, &s1);
    for (size_t s = s0; s < s1; s++) {
        float *col = columns(n, &q, s), *y = n->value + s * n->width;
        if (!q.direct)
            im2col(&q, x + s * in_row, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q.out_channels, q.p, q.k, 1.0f,
                    w, q.k, col, q.p, 0.0f, y, q.p);
        if (bias)
            add_bias(y, bias, q.out_channels, q.p);
    }
}

/* (1): this thread's blocks of dW, and its output channels of db. */
static void weight_gradients(nb_node *n, const conv_geom *q, int batch, const nb_exec *ex)
{
    nb_node *w = n->in[CONV_W], *b = n->n_in > CONV_B ? n->in[CONV_B] : NULL;
    size_t out_row = n->width;
    if (w->grad) {
        int assign = n->assign[CONV_W];
        for (int s = 0; s < batch; s++)
            nb_sgemm_share(ex, 0, 1, q->out_channels, q->k, q->p, 1.0f,
                           n->grad + (size_t)s * out_row, q->p, columns(n, q, (size_t)s), q->p,
                           s == 0 && assign ? 0.0f : 1.0f, w->grad, q->k);
        if (batch == 0 && assign) { /* a rank holding no rows of a data-parallel step */
            size_t e0, e1;
            nb_split(ex, (size_t)q->out_channels * (size_t)q->k, 16, &e0, &e1);
            memset(w->grad + e0, 0, (e1 - e0) * sizeof(float));
        }
    }
    if (b && b->grad) {
        size_t o0, o1;
        nb_split(ex, (size_t)q->out_channels, 1, &o0, &o1);
        for (size_t o = o0; o < o1; o++) {
            double total = 0.0;
            for (int s = 0; s < batch; s++)
                total += row_sum(n->grad + (size_t)s * out_row + o * (size_t)q->p,
                                 (size_t)q->p);
            b->grad[o] = nb_grad_put(b->grad[o], (float)total, n->assign[CONV_B]);
        }
    }
}

/* (2): dx for this thread's samples. */
static void input_gradient(nb_node *n, const conv_geom *q, int batch, const nb_exec *ex)
{
    nb_node *x = n->in[CONV_X];
    const float *w = n->in[CONV_W]->value;
    int assign = n->assign[CONV_X];
    size_t s0, s1;
    nb_split(ex, (size_t)batch, 1, &s0, &s1);
    for (size_t s = s0; s < s1; s++) {
        const float *dy = n->grad + s * n->width;
        float *dx = x->grad + s * x->width;
        if (q->direct) { /* dx_s = Wᵀ · dy_s itself */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q->k, q->p, q->out_channels,
                        1.0f, w, q->k, dy, q->p, assign ? 0.0f : 1.0f, dx, q->p);
            continue;
        }
        float *col = columns(n, q, s);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q->k, q->p, q->out_channels, 1.0f,
                    w, q->k, dy, q->p, 0.0f, col, q->p);
        if (assign)
            memset(dx, 0, x->width * sizeof(float));
        col2im(q, col, dx);
    }
}

static void conv2d_backward(nb_node *n, int batch, const nb_exec *ex)
{
    conv_geom q = geometry(n);
    weight_gradients(n, &q, batch, ex);
    if (!n->in[CONV_X]->grad)
        return;
    /* (2) writes over the columns (1) reads; a direct conv's columns are x, never written. */
    if (!q.direct)
        nb_barrier(ex);
    input_gradient(n, &q, batch, ex);
}

static const nb_op conv2d_op = {"conv2d", conv2d_forward, conv2d_backward};

nb_node *nb_conv2d(nb_graph *g, nb_node *x, nb_node *w, nb_node *b, const int stride[2],
                   const int padding[2])
{
    if (!g || g->failed || !x || !w)
        return g ? nb_graph_fail(g, "conv2d: missing input") : NULL;
    if (w->batched || w->ndim != 4 || w->leaf == NB_LEAF_LABELS)
        return nb_graph_fail(g, "conv2d: w must be kernels [O, C, kh, kw], not a%s tensor of %d "
                             "dimension%s", w->batched ? " batched" : "", w->ndim,
                             w->ndim == 1 ? "" : "s");
    nb_window2d win = {{w->shape[2], w->shape[3]},
                       {stride ? stride[0] : 1, stride ? stride[1] : 1},
                       {padding ? padding[0] : 0, padding ? padding[1] : 0}};
    int out[2];
    if (nb_window2d_output(g, "conv2d", x, &win, out) != 0)
        return NULL;
    if (x->shape[1] != w->shape[1])
        return nb_graph_fail(g, "conv2d: x has %d channels but w [%d, %d, %d, %d] takes %d",
                             x->shape[1], w->shape[0], w->shape[1], w->shape[2], w->shape[3],
                             w->shape[1]);
    if (b && (b->batched || b->ndim != 1 || b->leaf == NB_LEAF_LABELS ||
              b->shape[0] != w->shape[0]))
        return nb_graph_fail(g, "conv2d: b must be a vector of %d, one per kernel of w",
                             w->shape[0]);
    long long k = (long long)w->shape[1] * w->shape[2] * w->shape[3];
    long long p = (long long)out[0] * out[1];
    if (k > INT_MAX || p > INT_MAX)
        return nb_graph_fail(g, "conv2d: kernels of %lld weights or outputs of %lld positions "
                             "are too large for a matrix product", k, p);
    nb_node *inputs[3] = {x, w, b};
    int shape[4] = {0, w->shape[0], out[0], out[1]};
    nb_node *n = nb_graph_add_op(g, &conv2d_op, inputs, b ? 3 : 2, 1, 4, shape);
    if (!n)
        return NULL;
    n->args.conv2d = win;
    if (!geometry(n).direct)
        n->scratch_per_row = (size_t)k * (size_t)p;
    return n;
}
