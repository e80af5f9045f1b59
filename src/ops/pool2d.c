/* Max and average pooling of images x [B, C, H, W], as torch.nn.MaxPool2d and AvgPool2d with
 * padding 0 and ceil_mode False: y [B, C, Ho, Wo], each output the maximum or the mean of its
 * kh x kw window. The two share the builder and the walk over windows; every plane (one
 * channel of one sample) is independent, so each thread takes whole planes and the results do
 * not depend on the thread count.
 *
 * Max pooling keeps no indices: backward finds each window's maximum again (the input is still
 * there), in the same scan as forward and as PyTorch's: the first maximum in row-major order
 * wins a tie, and a NaN counts as the maximum (the last NaN, as PyTorch's `val > max ||
 * isnan(val)`). Average pooling sums in float and divides, and spreads dy / (kh kw) back, as
 * PyTorch's kernels do. */
#include <math.h>
#include <string.h>

#include "graph_internal.h"
#include "simd.h"

/* The sizes of one pooling node's planes. */
typedef struct pool_geom {
    int height, width, out_height, out_width;
    nb_window2d win;
} pool_geom;

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

/* The offset, from the window's first element, of its maximum as PyTorch picks it. */
static inline size_t window_argmax(const float *window, const pool_geom *q)
{
    float best = -INFINITY;
    size_t at = 0;
    for (int i = 0; i < q->win.kernel[0]; i++)
        for (int j = 0; j < q->win.kernel[1]; j++) {
            size_t k = (size_t)i * (size_t)q->width + (size_t)j;
            float v = window[k];
            if (v > best || isnan(v)) {
                best = v;
                at = k;
            }
        }
    return at;
}

/* The offset of window (oh, ow)'s first element in its plane. */
static inline size_t window_start(const pool_geom *q, int oh, int ow)
{
    return (size_t)oh * (size_t)q->win.stride[0] * (size_t)q->width +
           (size_t)ow * (size_t)q->win.stride[1];
}

static void maxpool_forward(nb_node *n, int batch, const nb_exec *ex)
{
    pool_geom q = geometry(n);
    size_t in_plane = (size_t)q.height * (size_t)q.width;
    size_t out_plane = (size_t)q.out_height * (size_t)q.out_width, p0, p1;
    plane_share(n, batch, ex, &p0, &p1);
    for (size_t p = p0; p < p1; p++) {
        const float *x = n->in[0]->value + p * in_plane;
        float *y = n->value + p * out_plane;
        for (int oh = 0; oh < q.out_height; oh++)
            for (int ow = 0; ow < q.out_width; ow++) {
                const float *window = x + window_start(&q, oh, ow);
                y[(size_t)oh * (size_t)q.out_width + (size_t)ow] = window[window_argmax(window, &q)];
            }
    }
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
        const float *xv = x->value + p * in_plane, *dy = n->grad + p * out_plane;
        float *dx = x->grad + p * in_plane;
        if (n->assign[0])
            memset(dx, 0, in_plane * sizeof(float));
        for (int oh = 0; oh < q.out_height; oh++)
            for (int ow = 0; ow < q.out_width; ow++) {
                size_t start = window_start(&q, oh, ow);
                dx[start + window_argmax(xv + start, &q)] +=
                    dy[(size_t)oh * (size_t)q.out_width + (size_t)ow];
            }
    }
}

NB_HOT static void avgpool_forward(nb_node *n, int batch, const nb_exec *ex)
{
    pool_geom q = geometry(n);
    size_t in_plane = (size_t)q.height * (size_t)q.width;
    size_t out_plane = (size_t)q.out_height * (size_t)q.out_width, p0, p1;
    float count = (float)(q.win.kernel[0] * q.win.kernel[1]);
    plane_share(n, batch, ex, &p0, &p1);
    for (size_t p = p0; p < p1; p++) {
        const float *x = n->in[0]->value + p * in_plane;
        float *y = n->value + p * out_plane;
        for (int oh = 0; oh < q.out_height; oh++)
            for (int ow = 0; ow < q.out_width; ow++) {
                const float *window = x + window_start(&q, oh, ow);
                float sum = 0.0f;
                for (int i = 0; i < q.win.kernel[0]; i++)
                    for (int j = 0; j < q.win.kernel[1]; j++)
                        sum += window[(size_t)i * (size_t)q.width + (size_t)j];
                y[(size_t)oh * (size_t)q.out_width + (size_t)ow] = sum / count;
            }
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
                float *window = dx + window_start(&q, oh, ow);
                float share = dy[(size_t)oh * (size_t)q.out_width + (size_t)ow] / count;
                for (int i = 0; i < q.win.kernel[0]; i++)
                    for (int j = 0; j < q.win.kernel[1]; j++)
                        window[(size_t)i * (size_t)q.width + (size_t)j] += share;
            }
    }
}

static const nb_op maxpool_op = {"maxpool2d", maxpool_forward, maxpool_backward};
static const nb_op avgpool_op = {"avgpool2d", avgpool_forward, avgpool_backward};

static nb_node *pool2d(nb_graph *g, const nb_op *op, nb_node *x, const int kernel[2],
                       const int stride[2])
{
    if (!g || g->failed || !x)
        return g ? nb_graph_fail(g, "%s: missing input", op->name) : NULL;
    if (!kernel)
        return nb_graph_fail(g, "%s: no kernel size", op->name);
    nb_window2d win = {{kernel[0], kernel[1]},
                       {stride ? stride[0] : kernel[0], stride ? stride[1] : kernel[1]},
                       {0, 0}};
    int out[2];
    if (nb_window2d_output(g, op->name, x, &win, out) != 0)
        return NULL;
    int shape[4] = {0, x->shape[1], out[0], out[1]};
    nb_node *n = nb_graph_add_op(g, op, &x, 1, 1, 4, shape);
    if (n)
        n->args.pool2d = win;
    return n;
}

nb_node *nb_maxpool2d(nb_graph *g, nb_node *x, const int kernel[2], const int stride[2])
{
    return pool2d(g, &maxpool_op, x, kernel, stride);
}

nb_node *nb_avgpool2d(nb_graph *g, nb_node *x, const int kernel[2], const int stride[2])
{
    return pool2d(g, &avgpool_op, x, kernel, stride);
}
