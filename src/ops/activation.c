/* Elementwise activations. Each backward multiplies the incoming gradient by the derivative,
 * written in terms of whichever of x or y makes it cheapest. */
#include <math.h>

#include "graph_internal.h"

static void relu_forward(nb_node *n, int batch)
{
    const float *x = n->in[0]->value;
    for (size_t i = 0; i < nb_node_size(n, batch); i++)
        n->value[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* relu'(x) = 1 where y > 0 (the subgradient at 0 is taken as 0, as in PyTorch). */
static void relu_backward(nb_node *n, int batch)
{
    float *dx = n->in[0]->grad;
    for (size_t i = 0; i < nb_node_size(n, batch); i++)
        dx[i] += n->value[i] > 0.0f ? n->grad[i] : 0.0f;
}

static void leaky_forward(nb_node *n, int batch)
{
    const float *x = n->in[0]->value;
    float slope = n->fparam[0];
    for (size_t i = 0; i < nb_node_size(n, batch); i++)
        n->value[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}

static void leaky_backward(nb_node *n, int batch)
{
    const float *x = n->in[0]->value;
    float *dx = n->in[0]->grad, slope = n->fparam[0];
    for (size_t i = 0; i < nb_node_size(n, batch); i++)
        dx[i] += x[i] > 0.0f ? n->grad[i] : slope * n->grad[i];
}

static void tanh_forward(nb_node *n, int batch)
{
    const float *x = n->in[0]->value;
    for (size_t i = 0; i < nb_node_size(n, batch); i++)
        n->value[i] = tanhf(x[i]);
}

/* tanh'(x) = 1 - y². */
static void tanh_backward(nb_node *n, int batch)
{
    float *dx = n->in[0]->grad;
    for (size_t i = 0; i < nb_node_size(n, batch); i++)
        dx[i] += n->grad[i] * (1.0f - n->value[i] * n->value[i]);
}

/* 1/(1+e^-x), evaluated so that exp never overflows. */
static void sigmoid_forward(nb_node *n, int batch)
{
    const float *x = n->in[0]->value;
    for (size_t i = 0; i < nb_node_size(n, batch); i++) {
        if (x[i] >= 0.0f) {
            n->value[i] = 1.0f / (1.0f + expf(-x[i]));
        } else {
            float e = expf(x[i]);
            n->value[i] = e / (1.0f + e);
        }
    }
}

/* sigmoid'(x) = y (1 - y). */
static void sigmoid_backward(nb_node *n, int batch)
{
    float *dx = n->in[0]->grad;
    for (size_t i = 0; i < nb_node_size(n, batch); i++)
        dx[i] += n->grad[i] * n->value[i] * (1.0f - n->value[i]);
}

static const nb_op relu_op = {"relu", relu_forward, relu_backward};
static const nb_op leaky_op = {"leaky_relu", leaky_forward, leaky_backward};
static const nb_op tanh_op = {"tanh", tanh_forward, tanh_backward};
static const nb_op sigmoid_op = {"sigmoid", sigmoid_forward, sigmoid_backward};

static nb_node *elementwise(nb_graph *g, const nb_op *op, nb_node *x)
{
    if (!g || g->failed || !x)
        return g ? nb_graph_fail(g, "%s: missing input", op->name) : NULL;
    if (x->leaf == NB_LEAF_LABELS)
        return nb_graph_fail(g, "%s: labels are not a float tensor", op->name);
    return nb_graph_add_op(g, op, &x, 1, x->batched, x->ndim, x->shape);
}

nb_node *nb_relu(nb_graph *g, nb_node *x) { return elementwise(g, &relu_op, x); }
nb_node *nb_tanh(nb_graph *g, nb_node *x) { return elementwise(g, &tanh_op, x); }
nb_node *nb_sigmoid(nb_graph *g, nb_node *x) { return elementwise(g, &sigmoid_op, x); }

nb_node *nb_leaky_relu(nb_graph *g, nb_node *x, float slope)
{
    nb_node *n = elementwise(g, &leaky_op, x);
    if (n)
        n->fparam[0] = slope;
    return n;
}
