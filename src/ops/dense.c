/* Dense ops: the matrix product of a torch.nn.Linear layer and its bias. Every product goes
 * through cblas_sgemm, with transposes expressed as flags, never as copies. */
#include <cblas.h>

#include "graph_internal.h"

/* y [B,out] = x [B,in] · wᵀ, with w stored [out,in] as torch does. */
static void matmul_forward(nb_node *n, int batch)
{
    const nb_node *x = n->in[0], *w = n->in[1];
    int in = w->shape[1], out = w->shape[0];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, out, in, 1.0f, x->value, in,
                w->value, in, 0.0f, n->value, out);
}

/* dx [B,in] += dy · w;  dw [out,in] += dyᵀ · x. */
static void matmul_backward(nb_node *n, int batch)
{
    nb_node *x = n->in[0], *w = n->in[1];
    int in = w->shape[1], out = w->shape[0];
    if (x->grad)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, in, out, 1.0f, n->grad, out,
                    w->value, in, 1.0f, x->grad, in);
    if (w->grad)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, batch, 1.0f, n->grad, out,
                    x->value, in, 1.0f, w->grad, in);
}

static const nb_op matmul_op = {"matmul", matmul_forward, matmul_backward};

nb_node *nb_matmul(nb_graph *g, nb_node *x, nb_node *w)
{
    if (!g || g->failed || !x || !w)
        return g ? nb_graph_fail(g, "matmul: missing input") : NULL;
    if (!x->batched || x->ndim != 2)
        return nb_graph_fail(g, "matmul: x must be a batch of vectors [B, in]");
    if (w->batched || w->ndim != 2)
        return nb_graph_fail(g, "matmul: w must be a matrix [out, in]");
    if (x->shape[1] != w->shape[1])
        return nb_graph_fail(g, "matmul: x has %d features but w expects %d", x->shape[1],
                             w->shape[1]);
    nb_node *inputs[2] = {x, w};
    int shape[2] = {0, w->shape[0]};
    return nb_graph_add_op(g, &matmul_op, inputs, 2, 1, 2, shape);
}

/* y = x + b, b broadcast over the rows. */
static void bias_forward(nb_node *n, int batch)
{
    const float *x = n->in[0]->value, *b = n->in[1]->value;
    float *y = n->value;
    size_t width = n->width;
    for (int r = 0; r < batch; r++)
        for (size_t j = 0; j < width; j++)
            y[r * width + j] = x[r * width + j] + b[j];
}

/* dx += dy;  db += column sums of dy. */
static void bias_backward(nb_node *n, int batch)
{
    nb_node *x = n->in[0], *b = n->in[1];
    const float *dy = n->grad;
    size_t width = n->width;
    if (x->grad)
        for (size_t j = 0; j < (size_t)batch * width; j++)
            x->grad[j] += dy[j];
    if (b->grad)
        for (int r = 0; r < batch; r++)
            for (size_t j = 0; j < width; j++)
                b->grad[j] += dy[r * width + j];
}

static const nb_op bias_op = {"bias_add", bias_forward, bias_backward};

nb_node *nb_bias_add(nb_graph *g, nb_node *x, nb_node *b)
{
    if (!g || g->failed || !x || !b)
        return g ? nb_graph_fail(g, "bias_add: missing input") : NULL;
    if (!x->batched || x->ndim != 2 || b->batched || b->ndim != 1)
        return nb_graph_fail(g, "bias_add: needs x [B, n] and b [n]");
    if ((size_t)b->shape[0] != x->width)
        return nb_graph_fail(g, "bias_add: x has %zu features but b has %d", x->width, b->shape[0]);
    nb_node *inputs[2] = {x, b};
    return nb_graph_add_op(g, &bias_op, inputs, 2, 1, 2, x->shape);
}
