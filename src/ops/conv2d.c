/* conv2d: torch.nn.Conv2d's convolution (a cross-correlation) of images x [B, C, H, W] with
 * kernels w [O, C, kh, kw] and an optional bias b [O]; zero padding, any stride, dilation 1,
 * groups 1. y [B, O, Ho, Wo] with Ho = floor((H + 2 ph - kh) / sh) + 1, likewise Wo.
 *
 * As matrix products (im2col): the input patches of sample s are the columns of
 * col_s [K = C kh kw, P = Ho Wo], so that y_s [O, P] = W [O, K] · col_s. Sample by sample:
 *   forward   col = im2col(x_s);  y_s = W · col (+ b)
 *   backward  col = im2col(x_s);  dW += dy_s · colᵀ;  db += the row sums of dy_s;
 *             col = Wᵀ · dy_s;  dx_s (=, or +=) col2im(col)
 * Each product is one cblas_sgemm call on one thread (OpenBLAS runs single-threaded inside the
 * library's pool). The columns are made again in backward rather than kept: one buffer of K·P
 * floats serves every sample a thread takes, so it stays in the core's cache, and the memory
 * does not grow with the batch (measured on the reference CNN's second conv: keeping the
 * whole batch's columns was slower, its 14 MB going through memory each pass). A 1x1 kernel
 * with stride 1 and no padding needs no columns: col is x_s.
 *
 * A 3x3 kernel with stride 1 and 8 channels or more in is computed instead by
 * Winograd's method (conv2d_winograd.c: 2.25 times fewer multiplications, on a part's samples
 * at once); the threads, the parts and their sums below are the same for both.
 *
 * Threads, and results that do not depend on their number: the batch is cut into parts
 * (nb_product_parts(): as many as the machine has cores, whatever the thread count; pool.h),
 * consecutive samples each, and each thread takes whole parts (nb_thread_parts). A part has
 * its own column buffer and its own partial sums of dW and db over its samples, in their
 * order; after a barrier the threads add the parts' partial sums in part order, each thread
 * its share of the elements. Every number is thus computed in the same order however many
 * threads there are. (Split by threads instead, the partial sums and the order they are added
 * in would follow the thread count; and split by the elements of dW, every thread would make
 * or read every sample's columns.)
 *
 * An activation applied by the op (nb_activate) is applied to each sample's output right after
 * its product, while it is in cache; backward first turns the sample's dy into the gradient
 * before the activation, in place (nothing else reads this node's gradient).
 *
 * Scratch, per part: [O doubles: db] [O K floats: dW] [K P floats: columns, or Winograd's
 * scratch]. */
#include <cblas.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "core/graph_internal.h"
#include "core/simd.h"
#include "ops/conv2d_winograd.h"

enum { CONV_X, CONV_W, CONV_B };

/* The sizes of one conv2d node. */
typedef struct conv_geom {
    int channels, height, width;       /* of x's samples */
    int out_channels, out_height, out_width;
    nb_window2d win;
    int k;                             /* rows of col: C kh kw */
    int p;                             /* columns of col: Ho Wo */
    int direct;                        /* 1x1 kernel, stride 1, no padding: col is x_s */
    /* Stride 1 and as many output columns as input columns (kw = 2 pw + 1): a row of col is
     * then one contiguous run of the input plane, shifted, with a few elements that cross a
     * row's end (padding) set apart. */
    int contiguous;
    int winograd;                      /* done by conv2d_winograd.c, in the sizes of wq */
    winograd_shape wq;
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
    q.contiguous = q.win.stride[0] == 1 && q.win.stride[1] == 1 && q.out_width == q.width;
    q.winograd = conv2d_winograd_fits(q.channels, q.out_channels, q.win.kernel, q.win.stride);
    q.wq = conv2d_winograd_shape(q.channels, q.height, q.width, q.out_channels, q.out_height,
                                 q.out_width, q.win.padding);
    return q;
}

/* The output positions [*first, *end) (rows or columns) whose input position
 * out * stride - pad + k, for kernel offset k, is inside [0, in); the others read padding. */
static void inside(int in, int out, int pad, int stride, int k, int *first, int *end)
{
    long long off = (long long)k - pad;
    long long a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    long long e = in - off <= 0 ? 0 : (in - off + stride - 1) / stride;
    if (e > out)
        e = out;
    if (a > e)
        a = e;
    *first = (int)a;
    *end = (int)e;
}

/* Where kernel element (i, j) reads: output rows [oh0, oh1) and columns [ow0, ow1) read the
 * image, the rest padding; output (oh, ow) reads input (oh sh + di, ow sw + dj). */
typedef struct tap {
    int oh0, oh1, ow0, ow1, di, dj;
} tap;

static tap tap_at(const conv_geom *q, int i, int j)
{
    tap t;
    inside(q->height, q->out_height, q->win.padding[0], q->win.stride[0], i, &t.oh0, &t.oh1);
    inside(q->width, q->out_width, q->win.padding[1], q->win.stride[1], j, &t.ow0, &t.ow1);
    t.di = i - q->win.padding[0];
    t.dj = j - q->win.padding[1];
    return t;
}

/* dst[e] += src[e]: a run of col added onto the image it came from. */
static inline void add_run(float *restrict dst, const float *restrict src, size_t n)
{
    for (size_t e = 0; e < n; e++)
        dst[e] += src[e];
}

/* memset to 0 of n floats, without a call when there are none (most rows of a padded conv
 * have a few padding elements or none). */
static inline void zero(float *p, size_t n)
{
    if (n)
        memset(p, 0, n * sizeof(float));
}

/* In a contiguous row of col (output positions oh Wo + ow), sets the elements in the image's
 * rows but outside its columns to 0. */
static void zero_row_edges(const conv_geom *q, const tap *t, float *row)
{
    size_t wo = (size_t)q->out_width;
    for (int oh = t->oh0; oh < t->oh1; oh++) {
        for (int ow = 0; ow < t->ow0; ow++)
            row[(size_t)oh * wo + (size_t)ow] = 0.0f;
        for (int ow = t->ow1; ow < q->out_width; ow++)
            row[(size_t)oh * wo + (size_t)ow] = 0.0f;
    }
}

/* Row (c, i, j) of col, for tap t of (i, j) and image = x's channel c: column (oh, ow) holds
 * image[oh sh + di, ow sw + dj], or 0 where that is outside the image. */
static inline void im2col_row(const conv_geom *q, const tap *t, const float *restrict image,
                              float *restrict row)
{
    size_t wo = (size_t)q->out_width, p = (size_t)q->p;
    int sh = q->win.stride[0], sw = q->win.stride[1];
    if (t->oh0 >= t->oh1 || t->ow0 >= t->ow1) {
        zero(row, p);
        return;
    }
    if (q->contiguous) {
        /* output e = oh W + ow reads input e + di W + dj: one run from the first element read
         * to the last, then its padding elements set apart */
        size_t first = (size_t)t->oh0 * wo + (size_t)t->ow0;
        size_t end = (size_t)(t->oh1 - 1) * wo + (size_t)t->ow1;
        ptrdiff_t shift = (ptrdiff_t)t->di * q->width + t->dj;
        zero(row, first);
        memcpy(row + first, image + ((ptrdiff_t)first + shift), (end - first) * sizeof(float));
        zero(row + end, p - end);
        zero_row_edges(q, t, row);
        return;
    }
    zero(row, (size_t)t->oh0 * wo);
    for (int oh = t->oh0; oh < t->oh1; oh++) {
        float *dst = row + (size_t)oh * wo;
        const float *src = image + (size_t)(oh * sh + t->di) * (size_t)q->width;
        zero(dst, (size_t)t->ow0);
        if (sw == 1)
            memcpy(dst + t->ow0, src + (t->ow0 + t->dj), (size_t)(t->ow1 - t->ow0) * sizeof(float));
        else
            for (int ow = t->ow0; ow < t->ow1; ow++)
                dst[ow] = src[ow * sw + t->dj];
        zero(dst + t->ow1, (size_t)(q->out_width - t->ow1));
    }
    zero(row + (size_t)t->oh1 * wo, (size_t)(q->out_height - t->oh1) * wo);
}

/* image += row (c, i, j) of col put back where im2col_row read it from (padding reads go
 * nowhere). row's padding elements are overwritten. */
static inline void col2im_row(const conv_geom *q, const tap *t, float *restrict row,
                              float *restrict image)
{
    size_t wo = (size_t)q->out_width;
    int sh = q->win.stride[0], sw = q->win.stride[1];
    if (t->oh0 >= t->oh1 || t->ow0 >= t->ow1)
        return;
    if (q->contiguous) {
        /* The run between the first and the last element read crosses the ends of image rows;
         * its padding elements, set to 0, add nothing there. */
        zero_row_edges(q, t, row);
        size_t first = (size_t)t->oh0 * wo + (size_t)t->ow0;
        size_t end = (size_t)(t->oh1 - 1) * wo + (size_t)t->ow1;
        ptrdiff_t shift = (ptrdiff_t)t->di * q->width + t->dj;
        add_run(image + ((ptrdiff_t)first + shift), row + first, end - first);
        return;
    }
    for (int oh = t->oh0; oh < t->oh1; oh++) {
        const float *src = row + (size_t)oh * wo;
        float *dst = image + (size_t)(oh * sh + t->di) * (size_t)q->width;
        if (sw == 1)
            add_run(dst + (t->ow0 + t->dj), src + t->ow0, (size_t)(t->ow1 - t->ow0));
        else
            for (int ow = t->ow0; ow < t->ow1; ow++)
                dst[ow * sw + t->dj] += src[ow];
    }
}

/* col [K, P] = im2col(x): row (c, i, j), column (oh, ow) holds x[c, oh sh - ph + i,
 * ow sw - pw + j], or 0 where that is outside the image. */
NB_HOT static void im2col(const conv_geom *q, const float *restrict x, float *restrict col)
{
    int kh = q->win.kernel[0], kw = q->win.kernel[1];
    size_t plane = (size_t)q->height * (size_t)q->width;
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++) {
            tap t = tap_at(q, i, j);
            for (int c = 0; c < q->channels; c++)
                im2col_row(q, &t, x + (size_t)c * plane,
                           col + (size_t)((c * kh + i) * kw + j) * (size_t)q->p);
        }
}

/* dx [C, H, W] += col2im(col): every element of col back onto the input element it was read
 * from. Each element of dx gets its terms in the order of (i, j). */
NB_HOT static void col2im(const conv_geom *q, float *restrict col, float *restrict dx)
{
    int kh = q->win.kernel[0], kw = q->win.kernel[1];
    size_t plane = (size_t)q->height * (size_t)q->width;
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++) {
            tap t = tap_at(q, i, j);
            for (int c = 0; c < q->channels; c++)
                col2im_row(q, &t, col + (size_t)((c * kh + i) * kw + j) * (size_t)q->p,
                           dx + (size_t)c * plane);
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

/* ---- a part's scratch ---- */

static size_t aligned(size_t floats) { return (floats + 15) & ~(size_t)15; }

/* The columns, or Winograd's scratch in their place. */
static size_t column_floats(const conv_geom *q)
{
    if (q->winograd)
        return conv2d_winograd_scratch(&q->wq);
    return q->direct ? 0 : aligned((size_t)q->k * (size_t)q->p);
}

static size_t part_floats(const conv_geom *q)
{
    size_t o = (size_t)q->out_channels;
    return aligned(2 * o) + aligned(o * (size_t)q->k) + column_floats(q);
}

typedef struct part_scratch {
    double *db;
    float *dw, *col; /* col: the columns, or Winograd's scratch */
} part_scratch;

static part_scratch scratch_of(const nb_node *n, const conv_geom *q, int part)
{
    float *base = n->scratch + (size_t)part * part_floats(q);
    size_t o = (size_t)q->out_channels;
    part_scratch s;
    s.db = (double *)(void *)base;
    s.dw = base + aligned(2 * o);
    s.col = column_floats(q) ? s.dw + aligned(o * (size_t)q->k) : NULL;
    return s;
}

/* Sample s's columns, made in the part's buffer (or x_s itself for a direct conv). */
static const float *columns(const nb_node *n, const conv_geom *q, const part_scratch *ps,
                            size_t s)
{
    const float *x = n->in[CONV_X]->value + s * n->in[CONV_X]->width;
    if (q->direct)
        return x;
    im2col(q, x, ps->col);
    return ps->col;
}

/* ---- the passes ---- */

static void conv2d_forward(nb_node *n, int batch, const nb_exec *ex)
{
    conv_geom q = geometry(n);
    const float *w = n->in[CONV_W]->value;
    const float *bias = n->n_in > CONV_B ? n->in[CONV_B]->value : NULL;
    int parts = nb_product_parts(), p0, p1;
    nb_thread_parts(ex, parts, &p0, &p1);
    for (int part = p0; part < p1; part++) {
        part_scratch ps = scratch_of(n, &q, part);
        size_t s0, s1;
        nb_part_range(part, parts, (size_t)batch, 1, &s0, &s1);
        if (q.winograd && s0 < s1) {
            conv2d_winograd_kernels(&q.wq, w, ps.col);
            conv2d_winograd_forward(&q.wq, n->in[CONV_X]->value + s0 * n->in[CONV_X]->width,
                                    bias, n->value + s0 * n->width, s1 - s0, ps.col);
            for (size_t s = s0; s < s1; s++)
                nb_fused_activation_forward(n, n->value + s * n->width, n->width);
            continue;
        }
        for (size_t s = s0; s < s1; s++) {
            float *y = n->value + s * n->width;
            /* With a bias, y starts as the bias and the product adds to it. */
            if (bias)
                for (int o = 0; o < q.out_channels; o++)
                    for (int e = 0; e < q.p; e++)
                        y[(size_t)o * (size_t)q.p + (size_t)e] = bias[o];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q.out_channels, q.p, q.k,
                        1.0f, w, q.k, columns(n, &q, &ps, s), q.p, bias ? 1.0f : 0.0f, y, q.p);
            nb_fused_activation_forward(n, y, n->width);
        }
    }
}

/* Samples [s0, s1) of a part, by Winograd's method: dy turned into the gradient before the
 * activation and db summed sample by sample, then the products over all of them. */
static void winograd_backward_part(nb_node *n, const conv_geom *q, const part_scratch *ps,
                                   size_t s0, size_t s1)
{
    nb_node *x = n->in[CONV_X], *w = n->in[CONV_W];
    nb_node *b = n->n_in > CONV_B ? n->in[CONV_B] : NULL;
    if (s0 >= s1)
        return;
    for (size_t s = s0; s < s1; s++) {
        float *dy = n->grad + s * n->width;
        nb_fused_activation_backward(n, n->value + s * n->width, dy, n->width);
        if (b && b->grad)
            for (int o = 0; o < q->out_channels; o++)
                ps->db[o] += row_sum(dy + (size_t)o * (size_t)q->p, (size_t)q->p);
    }
    if (!x->grad && !w->grad)
        return;
    if (x->grad)
        conv2d_winograd_kernels(&q->wq, w->value, ps->col);
    conv2d_winograd_backward(&q->wq, x->value + s0 * x->width, n->grad + s0 * n->width,
                             x->grad ? x->grad + s0 * x->width : NULL, n->assign[CONV_X],
                             w->grad != NULL, 1, s1 - s0, ps->col);
    if (w->grad)
        conv2d_winograd_kernel_grad(&q->wq, ps->col, ps->dw);
}

/* This thread's parts: their partial sums of dW and db, and dx for their samples. */
static void backward_parts(nb_node *n, const conv_geom *q, int batch, const nb_exec *ex)
{
    nb_node *x = n->in[CONV_X], *w = n->in[CONV_W];
    nb_node *b = n->n_in > CONV_B ? n->in[CONV_B] : NULL;
    int parts = nb_product_parts(), p0, p1, assign_x = n->assign[CONV_X];
    nb_thread_parts(ex, parts, &p0, &p1);
    for (int part = p0; part < p1; part++) {
        part_scratch ps = scratch_of(n, q, part);
        size_t s0, s1;
        nb_part_range(part, parts, (size_t)batch, 1, &s0, &s1);
        if (b && b->grad)
            for (int o = 0; o < q->out_channels; o++)
                ps.db[o] = 0.0;
        if (q->winograd) {
            winograd_backward_part(n, q, &ps, s0, s1);
            continue;
        }
        for (size_t s = s0; s < s1; s++) {
            float *dy = n->grad + s * n->width;
            nb_fused_activation_backward(n, n->value + s * n->width, dy, n->width);
            if (w->grad)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q->out_channels, q->k, q->p,
                            1.0f, dy, q->p, columns(n, q, &ps, s), q->p, s == s0 ? 0.0f : 1.0f,
                            ps.dw, q->k);
            if (b && b->grad)
                for (int o = 0; o < q->out_channels; o++)
                    ps.db[o] += row_sum(dy + (size_t)o * (size_t)q->p, (size_t)q->p);
            if (!x->grad)
                continue;
            float *dx = x->grad + s * x->width;
            if (q->direct) { /* dx_s = Wᵀ · dy_s itself */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q->k, q->p,
                            q->out_channels, 1.0f, w->value, q->k, dy, q->p,
                            assign_x ? 0.0f : 1.0f, dx, q->p);
                continue;
            }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q->k, q->p, q->out_channels,
                        1.0f, w->value, q->k, dy, q->p, 0.0f, ps.col, q->p);
            if (assign_x)
                memset(dx, 0, x->width * sizeof(float));
            col2im(q, ps.col, dx);
        }
    }
}

/* dW and db (=, or +=) the parts' partial sums in part order, this thread's share of them.
 * Parts without samples (a batch smaller than the parts) have none. */
static void add_up_parts(nb_node *n, const conv_geom *q, int batch, const nb_exec *ex)
{
    nb_node *w = n->in[CONV_W], *b = n->n_in > CONV_B ? n->in[CONV_B] : NULL;
    int parts = nb_product_parts(), used = 0;
    /* The parts with samples are the first ones: nb_split gives the last parts the rest. */
    for (int part = 0; part < parts; part++) {
        size_t s0, s1;
        nb_part_range(part, parts, (size_t)batch, 1, &s0, &s1);
        used += s0 < s1;
    }
    if (w->grad) {
        size_t e0, e1;
        nb_split(ex, (size_t)q->out_channels * (size_t)q->k, 16, &e0, &e1);
        const float *dw = scratch_of(n, q, 0).dw;
        size_t stride = part_floats(q); /* from one part's dW to the next one's */
        for (size_t e = e0; e < e1; e++) {
            float total = used ? dw[e] : 0.0f;
            for (int part = 1; part < used; part++)
                total += dw[(size_t)part * stride + e];
            w->grad[e] = nb_grad_put(w->grad[e], total, n->assign[CONV_W]);
        }
    }
    if (b && b->grad) {
        size_t o0, o1;
        nb_split(ex, (size_t)q->out_channels, 1, &o0, &o1);
        for (size_t o = o0; o < o1; o++) {
            double total = 0.0;
            for (int part = 0; part < used; part++)
                total += scratch_of(n, q, part).db[o];
            b->grad[o] = nb_grad_put(b->grad[o], (float)total, n->assign[CONV_B]);
        }
    }
}

static void conv2d_backward(nb_node *n, int batch, const nb_exec *ex)
{
    conv_geom q = geometry(n);
    backward_parts(n, &q, batch, ex);
    nb_node *w = n->in[CONV_W], *b = n->n_in > CONV_B ? n->in[CONV_B] : NULL;
    if (w->grad || (b && b->grad)) {
        nb_barrier(ex);
        add_up_parts(n, &q, batch, ex);
    }
}

static const nb_op conv2d_op = {"conv2d", conv2d_forward, conv2d_backward, nb_fuse_from_output,
                                NULL};

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
    conv_geom q = geometry(n);
    n->scratch_fixed = (size_t)nb_product_parts() * part_floats(&q);
    return n;
}
