/* Elementwise activations: the functions themselves (shared with the fused dense op) and the
 * standalone ops. Each derivative is written in terms of the output y where that is possible,
 * so backward needs no saved input:
 *   relu'   = [y > 0] (the subgradient at 0 is 0, as in PyTorch)
 *   leaky'  = [y > 0] + slope [y <= 0]   (from y only when slope > 0; otherwise from x)
 *   tanh'   = 1 - y²
 *   sigmoid'= y (1 - y)
 * The loops are branch-free so that they vectorize; they may run in place (x == y, dy == dx). */
#include <math.h>

#include "core/graph_internal.h"
#include "core/simd.h"

int nb_activation_needs_input(nb_activation act, float slope)
{
    return act == NB_LEAKY_RELU && !(slope > 0.0f);
}

NB_HOT void nb_activation_forward(nb_activation act, float slope, const float *x,
                           float *y, size_t n)
{
    switch (act) {
    case NB_IDENTITY:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i];
        break;
    case NB_RELU:
        /* x < 0 rather than x > 0: a NaN passes through, as in PyTorch, and is not hidden. */
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] < 0.0f ? 0.0f : x[i];
        break;
    case NB_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] < 0.0f ? slope * x[i] : x[i];
        break;
    case NB_TANH:
        for (size_t i = 0; i < n; i++)
            y[i] = tanhf(x[i]);
        break;
    case NB_SIGMOID:
        /* Evaluated so that exp never overflows. */
        for (size_t i = 0; i < n; i++) {
            if (x[i] >= 0.0f) {
                y[i] = 1.0f / (1.0f + expf(-x[i]));
            } else {
                float e = expf(x[i]);
                y[i] = e / (1.0f + e);
            }
        }
        break;
    }
}

/* dx = expr or dx += expr over the n elements, where expr reads si = src[i] and dyi = dy[i].
 * Both are loaded unconditionally first, so that the loop vectorizes with a select. */
#define PUT_EACH(src, expr)                                                                  \
    do {                                                                                     \
        const float *s_ = (src);                                                             \
        if (assign)                                                                          \
            for (size_t i = 0; i < n; i++) {                                                 \
                float si = s_[i], dyi = dy[i];                                               \
                (void)dyi;                                                                   \
                dx[i] = (expr);                                                              \
            }                                                                                \
        else                                                                                 \
            for (size_t i = 0; i < n; i++) {                                                 \
                float si = s_[i], dyi = dy[i];                                               \
                (void)dyi;                                                                   \
                dx[i] += (expr);                                                             \
            }                                                                                \
    } while (0)

NB_HOT void nb_activation_backward(nb_activation act, float slope, const float *x,
                                   const float *y, const float *dy, float *dx, size_t n,
                                   int assign)
{
    switch (act) {
    case NB_IDENTITY:
        PUT_EACH(dy, si);
        break;
    case NB_RELU:
        PUT_EACH(y, si > 0.0f ? dyi : 0.0f);
        break;
    case NB_LEAKY_RELU:
        /* x and y have the same sign when slope > 0; otherwise only x tells. */
        PUT_EACH(x ? x : y, si > 0.0f ? dyi : slope * dyi);
        break;
    case NB_TANH:
        PUT_EACH(y, dyi * (1.0f - si * si));
        break;
    case NB_SIGMOID:
        PUT_EACH(y, dyi * si * (1.0f - si));
        break;
    }
}

/* ---- applied by another op to its own output (dense, conv2d, batch norm) ---- */

void nb_fused_activation_forward(const nb_node *n, float *y, size_t count)
{
    if (n->act.act != NB_IDENTITY)
        nb_activation_forward(n->act.act, n->act.slope, y, y, count);
}

void nb_fused_activation_backward(const nb_node *n, const float *y, float *dy, size_t count)
{
    if (n->act.act != NB_IDENTITY)
        nb_activation_backward(n->act.act, n->act.slope, NULL, y, dy, dy, count, 1);
}

int nb_fuse_from_output(nb_node *n, nb_activation act, float slope)
{
    if (nb_activation_needs_input(act, slope))
        return -1;
    n->act.act = act;
    n->act.slope = slope;
    return 0;
}

/* ---- the standalone ops: each thread takes a share of the elements ---- */

enum { ELEMENT_ALIGN = 16 };

static void activation_forward(nb_node *n, int batch, const nb_exec *ex)
{
    size_t begin, end;
    nb_split(ex, nb_node_size(n, batch), ELEMENT_ALIGN, &begin, &end);
    nb_activation_forward(n->act.act, n->act.slope, n->in[0]->value + begin, n->value + begin,
                          end - begin);
}

static void activation_backward(nb_node *n, int batch, const nb_exec *ex)
{
    nb_node *x = n->in[0];
    if (!x->grad)
        return;
    size_t begin, end;
    nb_split(ex, nb_node_size(n, batch), ELEMENT_ALIGN, &begin, &end);
    nb_activation act = n->act.act;
    float slope = n->act.slope;
    const float *xv = nb_activation_needs_input(act, slope) ? x->value + begin : NULL;
    nb_activation_backward(act, slope, xv, n->value + begin, n->grad + begin, x->grad + begin,
                           end - begin, n->assign[0]);
}

static const nb_op relu_op = {"relu", activation_forward, activation_backward, NULL, NULL};
static const nb_op leaky_op = {"leaky_relu", activation_forward, activation_backward, NULL, NULL};
static const nb_op tanh_op = {"tanh", activation_forward, activation_backward, NULL, NULL};
static const nb_op sigmoid_op = {"sigmoid", activation_forward, activation_backward, NULL, NULL};

/* act of x as an op of its own. */
static nb_node *activation_op(nb_graph *g, nb_node *x, nb_activation act, float slope)
{
    static const nb_op *const ops[] = {[NB_RELU] = &relu_op, [NB_LEAKY_RELU] = &leaky_op,
                                       [NB_TANH] = &tanh_op, [NB_SIGMOID] = &sigmoid_op};
    if (!g || g->failed || !x)
        return g ? nb_graph_fail(g, "activation: missing input") : NULL;
    if ((unsigned)act >= NB_IDENTITY)
        return nb_graph_fail(g, "activation: unknown activation %d", (int)act);
    const nb_op *op = ops[act];
    if (x->leaf == NB_LEAF_LABELS)
        return nb_graph_fail(g, "%s: labels are not a float tensor", op->name);
    nb_node *n = nb_graph_add_op(g, op, &x, 1, x->batched, x->ndim, x->shape);
    if (n) {
        n->act.act = act;
        n->act.slope = slope;
    }
    return n;
}

nb_node *nb_relu(nb_graph *g, nb_node *x) { return activation_op(g, x, NB_RELU, 0.0f); }
nb_node *nb_tanh(nb_graph *g, nb_node *x) { return activation_op(g, x, NB_TANH, 0.0f); }
nb_node *nb_sigmoid(nb_graph *g, nb_node *x) { return activation_op(g, x, NB_SIGMOID, 0.0f); }

nb_node *nb_leaky_relu(nb_graph *g, nb_node *x, float slope)
{
    return activation_op(g, x, NB_LEAKY_RELU, slope);
}

/* x's op computes the activation in its own passes when it can: it has a fuse function that
 * takes act, it applies none yet, and nothing reads x's values (x is the newest node of an
 * uncompiled graph). That saves a pass over the values and one over the gradients, and the
 * memory of both; the numbers are the same (the same functions of the same values). */
nb_node *nb_activate(nb_graph *g, nb_node *x, nb_activation act, float slope)
{
    if (nb_graph_newest_op(g, x) && x->op->fuse && x->act.act == NB_IDENTITY &&
        (unsigned)act < NB_IDENTITY && x->op->fuse(x, act, slope) == 0)
        return x;
    return activation_op(g, x, act, slope);
}
