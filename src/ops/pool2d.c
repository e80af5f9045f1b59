/* Max and average pooling of images x [B, C, H, W], as torch.nn.MaxPool2d and AvgPool2d with
 * padding 0 and ceil_mode False: y [B, C, Ho, Wo], each output the maximum or the mean of its
 * kh x kw window. The two share the builder and the walk over windows; every plane (one
 * channel of one sample) is independent, so each thread takes whole planes and the results do
 * not depend on the thread count.
 *
 * Max pooling scans each window as PyTorch's does: the first maximum in row-major order wins a
 * tie, and a NaN counts as the maximum (the last NaN, as PyTorch's `val > max || isnan(val)`);
 * backward sends the gradient to the element forward kept. Average pooling sums in float and
 * divides, and spreads dy / (kh kw) back, as PyTorch's kernels do. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/graph_internal.h"
#include "core/simd.h"

typedef nb_pool_plane pool_geom;

static pool_geom geometry(const nb_node *n)
{
    const nb_node *x = n->in[0];
    pool_geom q = {x->shape[2], x->shape[3], n->shape[2], n->shape[3], n->args.pool2d};
    return q;
}

/* This thread's planes [*p0, *p1) of the batch's. */
static void plane_share(const nb_node *n, int batch, const nb_exec *ex, size_t *p0, size_t *p1)
{
    nb_split(ex, (size_t)batch * (size_t)n->shape[1], 1, p0, p1);
}


/* Forward keeps, for every window, the offset of its maximum from the window's first element
 * (scratch, an int32 per output) for backward to send the gradient there. The loops take the
 * same element (i, j) of every window of an output row at once, so that they run along the
 * row without branches and vectorize: on random data the branch of "is this element the new
 * maximum" is mispredicted half the time, which made a window at a time several times slower.
 * Each window still sees its elements in row-major order. */

/* y = the maximum of each window of a plane, as PyTorch picks it: a later element replaces the
 * maximum if it is greater or NaN; at = where it is. sw is the column stride, a constant where
 * the caller can make it one (the compiler then loads pairs of vectors and shuffles them
 * rather than loading one float at a time). */
static inline void max_plane_strided(const pool_geom *q, const float *restrict x,
                                     float *restrict y, int32_t *restrict at, size_t sw)
{
    /* Sizes in locals: the int32 stores could otherwise alias q's ints for the compiler. */
    int kh = q->win.kernel[0], kw = q->win.kernel[1], ho = q->out_height, wo = q->out_width;
    size_t width = (size_t)q->width, out = (size_t)ho * (size_t)wo;
    for (size_t e = 0; e < out; e++) {
        y[e] = -INFINITY;
        at[e] = 0;
    }
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++) {
            int32_t k = (int32_t)((size_t)i * width + (size_t)j);
            for (int oh = 0; oh < ho; oh++) {
                const float *xr = x + nb_pool_window_start(q, oh, 0) + (size_t)i * width + (size_t)j;
                float *best = y + (size_t)oh * (size_t)wo;
                int32_t *where = at + (size_t)oh * (size_t)wo;
                for (int ow = 0; ow < wo; ow++) {
                    float v = xr[(size_t)ow * sw];
                    int take = (v > best[ow]) | (v != v);
                    best[ow] = take ? v : best[ow];
                    where[ow] = take ? k : where[ow];
                }
            }
        }
}

/* The same for the common 2x2 window with stride 2, on `rows` output rows of wo maxima each,
 * output row r from input rows 2r and 2r + 1 (of `width` floats): all four elements of a
 * window in one pass (the loop above makes four passes over y and at, which for a 2x2 window
 * cost more than the maxima themselves). When the planes have an even height, every plane's
 * rows follow the last one's without a gap, so a whole share of planes is one call.
 * (Scalar on purpose: rows of 7 or 14 maxima are too short for vectors to pay; measured.) */
static void max_rows_2x2(size_t rows, int wo, size_t width, const float *restrict x,
                         float *restrict y, int32_t *restrict at)
{
    int32_t below = (int32_t)width;
    for (size_t r = 0; r < rows; r++) {
        const float *r0 = x + 2 * r * width, *r1 = r0 + width;
        float *best = y + r * (size_t)wo;
        int32_t *where = at + r * (size_t)wo;
        for (int ow = 0; ow < wo; ow++) {
            float m = r0[2 * ow], v = r0[2 * ow + 1];
            int32_t k = 0;
            int take = (v > m) | (v != v);
            m = take ? v : m;
            k = take ? 1 : k;
            v = r1[2 * ow];
            take = (v > m) | (v != v);
            m = take ? v : m;
            k = take ? below : k;
            v = r1[2 * ow + 1];
            take = (v > m) | (v != v);
            best[ow] = take ? v : m;
            where[ow] = take ? below + 1 : k;
        }
    }
}

static int window_2x2(const pool_geom *q)
{
    return q->win.kernel[0] == 2 && q->win.kernel[1] == 2 && q->win.stride[0] == 2 &&
           q->win.stride[1] == 2;
}

NB_HOT void nb_max_plane(const nb_pool_plane *q, const float *x, float *y, int32_t *at)
{
    if (window_2x2(q))
        max_rows_2x2((size_t)q->out_height, q->out_width, (size_t)q->width, x, y, at);
    else if (q->win.stride[1] == 2)
        max_plane_strided(q, x, y, at, 2);
    else if (q->win.stride[1] == 1)
        max_plane_strided(q, x, y, at, 1);
    else
        max_plane_strided(q, x, y, at, (size_t)q->win.stride[1]);
}

/* The offsets of a maxpool node's maxima: its scratch, an int32 per output. */
static int32_t *maxima_of(const nb_node *n) { return (int32_t *)(void *)n->scratch; }

static void maxpool_forward(nb_node *n, int batch, const nb_exec *ex)
{
    pool_geom q = geometry(n);
    size_t in_plane = (size_t)q.height * (size_t)q.width;
    size_t out_plane = (size_t)q.out_height * (size_t)q.out_width, p0, p1;
    plane_share(n, batch, ex, &p0, &p1);
    if (window_2x2(&q) && q.height == 2 * q.out_height) {
        max_rows_2x2((p1 - p0) * (size_t)q.out_height, q.out_width, (size_t)q.width,
                     n->in[0]->value + p0 * in_plane, n->value + p0 * out_plane,
                     maxima_of(n) + p0 * out_plane);
        return;
    }
    for (size_t p = p0; p < p1; p++)
        nb_max_plane(&q, n->in[0]->value + p * in_plane, n->value + p * out_plane,
                  maxima_of(n) + p * out_plane);
}

static void maxpool_backward(nb_node *n, int batch, const nb_exec *ex)
{
    nb_node *x = n->in[0];
    if (!x->grad)
        return;
    pool_geom q = geometry(n);
    size_t in_plane = (size_t)q.height * (size_t)q.width;
    size_t out_plane = (size_t)q.out_height * (size_t)q.out_width, p0, p1;
    plane_share(n, batch, ex, &p0, &p1);
    for (size_t p = p0; p < p1; p++) {
        const float *dy = n->grad + p * out_plane;
        const int32_t *at = maxima_of(n) + p * out_plane;
        float *dx = x->grad + p * in_plane;
        if (n->assign[0])
            memset(dx, 0, in_plane * sizeof(float));
        nb_max_plane_backward(&q, dy, at, dx);
    }
}

void nb_max_plane_backward(const nb_pool_plane *q, const float *dy, const int32_t *at,
                           float *dx)
{
    for (int oh = 0; oh < q->out_height; oh++)
        for (int ow = 0; ow < q->out_width; ow++) {
            size_t e = (size_t)oh * (size_t)q->out_width + (size_t)ow;
            dx[nb_pool_window_start(q, oh, ow) + (size_t)at[e]] += dy[e];
        }
}

/* y = the mean of each window: its sum in row-major order divided by its size, as PyTorch's. */
NB_HOT static void avgpool_forward(nb_node *n, int batch, const nb_exec *ex)
{
    pool_geom q = geometry(n);
    size_t in_plane = (size_t)q.height * (size_t)q.width;
    size_t out_plane = (size_t)q.out_height * (size_t)q.out_width, p0, p1;
    size_t sw = (size_t)q.win.stride[1];
    float count = (float)(q.win.kernel[0] * q.win.kernel[1]);
    plane_share(n, batch, ex, &p0, &p1);
    for (size_t p = p0; p < p1; p++) {
        const float *x = n->in[0]->value + p * in_plane;
        float *y = n->value + p * out_plane;
        for (size_t e = 0; e < out_plane; e++)
            y[e] = 0.0f;
        for (int i = 0; i < q.win.kernel[0]; i++)
            for (int j = 0; j < q.win.kernel[1]; j++)
                for (int oh = 0; oh < q.out_height; oh++) {
                    const float *xr = x + nb_pool_window_start(&q, oh, 0) +
                                      (size_t)i * (size_t)q.width + (size_t)j;
                    float *sum = y + (size_t)oh * (size_t)q.out_width;
                    for (int ow = 0; ow < q.out_width; ow++)
                        sum[ow] += xr[(size_t)ow * sw];
                }
        for (size_t e = 0; e < out_plane; e++)
            y[e] /= count;
    }
}

NB_HOT static void avgpool_backward(nb_node *n, int batch, const nb_exec *ex)
{
    nb_node *x = n->in[0];
    if (!x->grad)
        return;
    pool_geom q = geometry(n);
    size_t in_plane = (size_t)q.height * (size_t)q.width;
    size_t out_plane = (size_t)q.out_height * (size_t)q.out_width, p0, p1;
    float count = (float)(q.win.kernel[0] * q.win.kernel[1]);
    plane_share(n, batch, ex, &p0, &p1);
    for (size_t p = p0; p < p1; p++) {
        const float *dy = n->grad + p * out_plane;
        float *dx = x->grad + p * in_plane;
        if (n->assign[0])
            memset(dx, 0, in_plane * sizeof(float));
        for (int oh = 0; oh < q.out_height; oh++)
            for (int ow = 0; ow < q.out_width; ow++) {
                float *window = dx + nb_pool_window_start(&q, oh, ow);
                float share = dy[(size_t)oh * (size_t)q.out_width + (size_t)ow] / count;
                for (int i = 0; i < q.win.kernel[0]; i++)
                    for (int j = 0; j < q.win.kernel[1]; j++)
                        window[(size_t)i * (size_t)q.width + (size_t)j] += share;
            }
    }
}

static const nb_op maxpool_op = {"maxpool2d", maxpool_forward, maxpool_backward, NULL, NULL};
static const nb_op avgpool_op = {"avgpool2d", avgpool_forward, avgpool_backward, NULL, NULL};

/* The window of a pooling of x and its output's height and width; -1 with the graph's error
 * set when it does not fit x. */
static int pool_window(nb_graph *g, const nb_op *op, const nb_node *x, const int kernel[2],
                       const int stride[2], nb_window2d *win, int out[2])
{
    if (!g || g->failed || !x) {
        if (g)
            nb_graph_fail(g, "%s: missing input", op->name);
        return -1;
    }
    if (!kernel) {
        nb_graph_fail(g, "%s: no kernel size", op->name);
        return -1;
    }
    nb_window2d w = {{kernel[0], kernel[1]},
                     {stride ? stride[0] : kernel[0], stride ? stride[1] : kernel[1]},
                     {0, 0}};
    *win = w;
    if (nb_window2d_output(g, op->name, x, win, out) != 0)
        return -1;
    /* where a maximum is, as an int32 offset from its window's first element */
    if ((long long)(kernel[0] - 1) * x->shape[3] + kernel[1] > INT32_MAX) {
        nb_graph_fail(g, "%s: the kernel %dx%d is too large", op->name, kernel[0], kernel[1]);
        return -1;
    }
    return 0;
}

static nb_node *pool2d(nb_graph *g, const nb_op *op, nb_node *x, const int kernel[2],
                       const int stride[2])
{
    nb_window2d win;
    int out[2];
    if (pool_window(g, op, x, kernel, stride, &win, out) != 0)
        return NULL;
    int shape[4] = {0, x->shape[1], out[0], out[1]};
    nb_node *n = nb_graph_add_op(g, op, &x, 1, 1, 4, shape);
    if (!n)
        return NULL;
    n->args.pool2d = win;
    if (op == &maxpool_op) /* where each maximum is, an int32 per output */
        n->scratch_per_row = n->width;
    return n;
}

nb_node *nb_maxpool2d(nb_graph *g, nb_node *x, const int kernel[2], const int stride[2])
{
    return pool2d(g, &maxpool_op, x, kernel, stride);
}

/* x's op pools its own output when it can: it has a fuse_pool function that takes the
 * window, and nothing reads x's values (x is the newest node of an uncompiled graph). */
nb_node *nb_maxpool2d_fused(nb_graph *g, nb_node *x, const int kernel[2], const int stride[2])
{
    nb_window2d win;
    int out[2];
    if (pool_window(g, &maxpool_op, x, kernel, stride, &win, out) != 0)
        return NULL;
    if (nb_graph_newest_op(g, x) && x->op->fuse_pool && x->op->fuse_pool(x, &win, out) == 0)
        return x;
    return pool2d(g, &maxpool_op, x, kernel, stride);
}

nb_node *nb_avgpool2d(nb_graph *g, nb_node *x, const int kernel[2], const int stride[2])
{
    return pool2d(g, &avgpool_op, x, kernel, stride);
}
