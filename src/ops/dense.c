/* Dense ops: the matrix product of a torch.nn.Linear layer, its bias, and the two with the
 * activation fused into one op. Every product goes through cblas_sgemm, with transposes
 * expressed as flags, never as copies, each thread computing its own block (nb_sgemm_share). */
#include "core/graph_internal.h"
#include "core/simd.h"

/* ---- matmul: y [B,out] = x [B,in] · wᵀ, with w stored [out,in] as torch does ---- */

static void matmul_forward(nb_node *n, int batch, const nb_exec *ex)
{
    const nb_node *x = n->in[0], *w = n->in[1];
    int in = w->shape[1], out = w->shape[0];
    nb_sgemm_share(ex, 0, 1, batch, out, in, 1.0f, x->value, in, w->value, in, 0.0f, n->value,
                   out);
}

/* dx = dy · w;  dw = dyᵀ · x. The two products write different buffers, so they run in the
 * same phase. */
static void product_backward(const nb_exec *ex, int batch, int in, int out, const float *dy,
                             nb_node *x, nb_node *w, int assign_x, int assign_w)
{
    if (x->grad)
        nb_sgemm_share(ex, 0, 0, batch, in, out, 1.0f, dy, out, w->value, in,
                       assign_x ? 0.0f : 1.0f, x->grad, in);
    if (w->grad)
        nb_sgemm_share(ex, 1, 0, out, in, batch, 1.0f, dy, out, x->value, in,
                       assign_w ? 0.0f : 1.0f, w->grad, in);
}

static void matmul_backward(nb_node *n, int batch, const nb_exec *ex)
{
    nb_node *x = n->in[0], *w = n->in[1];
    product_backward(ex, batch, w->shape[1], w->shape[0], n->grad, x, w, n->assign[0],
                     n->assign[1]);
}

static const nb_op matmul_op = {"matmul", matmul_forward, matmul_backward, NULL, NULL};

static const char *check_product(const nb_node *x, const nb_node *w)
{
    if (!x->batched || x->ndim != 2 || x->leaf == NB_LEAF_LABELS)
        return "x must be a batch of vectors [B, in]";
    if (w->batched || w->ndim != 2)
        return "w must be a matrix [out, in]";
    if (x->shape[1] != w->shape[1])
        return "x and w differ in their number of inputs";
    return NULL;
}

nb_node *nb_matmul(nb_graph *g, nb_node *x, nb_node *w)
{
    if (!g || g->failed || !x || !w)
        return g ? nb_graph_fail(g, "matmul: missing input") : NULL;
    const char *problem = check_product(x, w);
    if (problem)
        return nb_graph_fail(g, "matmul: %s (x %d features, w [%d, %d])", problem,
                             x->ndim == 2 ? x->shape[1] : 0, w->shape[0],
                             w->ndim == 2 ? w->shape[1] : 0);
    nb_node *inputs[2] = {x, w};
    int shape[2] = {0, w->shape[0]};
    return nb_graph_add_op(g, &matmul_op, inputs, 2, 1, 2, shape);
}

/* ---- bias: y = x + b, b broadcast over the rows ---- */

/* db (=, or +=) the column sums of dy over the rows, for this thread's columns. */
NB_HOT static void column_sums(const nb_exec *ex, const float *dy, int batch, size_t width,
                               float *db, int assign)
{
    size_t c0, c1;
    nb_split(ex, width, 16, &c0, &c1);
    if (assign)
        for (size_t j = c0; j < c1; j++)
            db[j] = 0.0f;
    for (int r = 0; r < batch; r++) {
        const float *row = dy + (size_t)r * width;
        for (size_t j = c0; j < c1; j++)
            db[j] += row[j];
    }
}

NB_HOT static void bias_forward(nb_node *n, int batch, const nb_exec *ex)
{
    const float *x = n->in[0]->value, *b = n->in[1]->value;
    size_t width = n->width, r0, r1;
    nb_split(ex, (size_t)batch, 1, &r0, &r1);
    for (size_t r = r0; r < r1; r++)
        for (size_t j = 0; j < width; j++)
            n->value[r * width + j] = x[r * width + j] + b[j];
}

/* dx = dy (this thread's rows);  db = column sums of dy (this thread's columns). */
NB_HOT static void bias_backward(nb_node *n, int batch, const nb_exec *ex)
{
    nb_node *x = n->in[0], *b = n->in[1];
    size_t width = n->width;
    if (x->grad) {
        size_t r0, r1;
        nb_split(ex, (size_t)batch, 1, &r0, &r1);
        for (size_t i = r0 * width; i < r1 * width; i++)
            x->grad[i] = nb_grad_put(x->grad[i], n->grad[i], n->assign[0]);
    }
    if (b->grad)
        column_sums(ex, n->grad, batch, width, b->grad, n->assign[1]);
}

static const nb_op bias_op = {"bias_add", bias_forward, bias_backward, NULL, NULL};

static const char *check_bias(const nb_node *x, const nb_node *b)
{
    if (!x->batched || x->ndim != 2 || x->leaf == NB_LEAF_LABELS || b->batched || b->ndim != 1)
        return "needs x [B, n] and b [n]";
    if ((size_t)b->shape[0] != x->width)
        return "x and b differ in their number of features";
    return NULL;
}

nb_node *nb_bias_add(nb_graph *g, nb_node *x, nb_node *b)
{
    if (!g || g->failed || !x || !b)
        return g ? nb_graph_fail(g, "bias_add: missing input") : NULL;
    const char *problem = check_bias(x, b);
    if (problem)
        return nb_graph_fail(g, "bias_add: %s", problem);
    nb_node *inputs[2] = {x, b};
    return nb_graph_add_op(g, &bias_op, inputs, 2, 1, 2, x->shape);
}

/* ---- dense: y = act(x · wᵀ + b) ----
 *
 * Forward: each thread computes its block of the product and, while the block is in cache,
 * adds the bias and applies the activation to it. When the activation's derivative cannot be
 * read off y (leaky relu with slope <= 0), z = x·wᵀ + b is kept in scratch.
 *
 * Backward, two phases: (1) dz = dy * act'(.), written over dy in place (nothing else reads
 * this node's gradient), and db = column sums of dz, each thread for its columns; barrier;
 * (2) dw = dzᵀ · x and dx = dz · w. */

enum { DENSE_X, DENSE_W, DENSE_B };

NB_HOT static void dense_forward(nb_node *n, int batch, const nb_exec *ex)
{
    const nb_node *x = n->in[DENSE_X], *w = n->in[DENSE_W], *b = n->in[DENSE_B];
    int in = w->shape[1], out = w->shape[0];
    nb_activation act = n->act.act;
    float slope = n->act.slope;
    nb_block blk = nb_sgemm_share(ex, 0, 1, batch, out, in, 1.0f, x->value, in, w->value, in,
                                  0.0f, n->value, out);
    size_t cols = (size_t)(blk.col1 - blk.col0);
    if (cols == 0)
        return;
    for (int r = blk.row0; r < blk.row1; r++) {
        float *y = n->value + (size_t)r * out + blk.col0;
        if (b) {
            const float *bias = b->value + blk.col0;
            for (size_t j = 0; j < cols; j++)
                y[j] += bias[j];
        }
        if (n->scratch) {
            float *z = n->scratch + (size_t)r * out + blk.col0;
            for (size_t j = 0; j < cols; j++)
                z[j] = y[j];
        }
        if (act != NB_IDENTITY)
            nb_activation_forward(act, slope, y, y, cols);
    }
}

static void dense_backward(nb_node *n, int batch, const nb_exec *ex)
{
    nb_node *x = n->in[DENSE_X], *w = n->in[DENSE_W], *b = n->in[DENSE_B];
    int in = w->shape[1], out = w->shape[0];
    nb_activation act = n->act.act;
    float *dz = n->grad;
    if (act != NB_IDENTITY || (b && b->grad)) {
        size_t c0, c1;
        nb_split(ex, (size_t)out, 16, &c0, &c1);
        if (act != NB_IDENTITY)
            for (int r = 0; r < batch; r++) {
                size_t at = (size_t)r * out + c0;
                nb_activation_backward(act, n->act.slope, n->scratch ? n->scratch + at : NULL,
                                       n->value + at, dz + at, dz + at, c1 - c0, 1);
            }
        if (b && b->grad)
            column_sums(ex, dz, batch, (size_t)out, b->grad, n->assign[DENSE_B]);
        nb_barrier(ex);
    }
    product_backward(ex, batch, in, out, dz, x, w, n->assign[DENSE_X], n->assign[DENSE_W]);
}

/* Any activation: one whose derivative needs z keeps z in scratch. */
static int dense_fuse(nb_node *n, nb_activation act, float slope)
{
    n->act.act = act;
    n->act.slope = slope;
    if (nb_activation_needs_input(act, slope))
        n->scratch_per_row = n->width;
    return 0;
}

static const nb_op dense_op = {"dense", dense_forward, dense_backward, dense_fuse, NULL};

nb_node *nb_dense(nb_graph *g, nb_node *x, nb_node *w, nb_node *b, nb_activation act,
                  float slope)
{
    if (!g || g->failed || !x || !w)
        return g ? nb_graph_fail(g, "dense: missing input") : NULL;
    const char *problem = check_product(x, w);
    if (problem)
        return nb_graph_fail(g, "dense: %s", problem);
    if (b && b->graph != g)
        return nb_graph_fail(g, "dense: b belongs to another graph");
    if (b && (b->batched || b->ndim != 1 || b->shape[0] != w->shape[0]))
        return nb_graph_fail(g, "dense: b must be a vector of %d", w->shape[0]);
    if ((unsigned)act > NB_IDENTITY)
        return nb_graph_fail(g, "dense: unknown activation %d", (int)act);
    nb_node *inputs[3] = {x, w, b};
    int shape[2] = {0, w->shape[0]};
    nb_node *n = nb_graph_add_op(g, &dense_op, inputs, b ? 3 : 2, 1, 2, shape);
    if (!n)
        return NULL;
    if (act != NB_IDENTITY)
        dense_fuse(n, act, slope);
    return n;
}
