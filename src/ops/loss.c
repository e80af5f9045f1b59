/* Losses: scalars averaged over the batch, each kept in double as well for gradient checks.
 *
 * In a data-parallel step a rank holds only its shard of the global batch; the mean then
 * divides by the global batch's rows (nb_graph_mean_rows), so each rank's loss is its share of
 * the global loss, and its gradients its share of the global gradient: summing over the ranks
 * gives exactly what one process computes on the whole batch, each row scaled by the same
 * 1/B. A rank without rows has loss 0. */
#include <math.h>

#include "core/graph_internal.h"

enum { LOSS_PRED, LOSS_TARGET };

/* Softmax cross-entropy, fused: loss_i = logsumexp(z_i) - z_i[y_i], computed after subtracting
 * the row maximum so exp never overflows. The softmax probabilities are kept for backward.
 *
 * Each thread takes a share of the rows; the per-row losses (in double) are then added by one
 * thread in row order, so the loss does not depend on the number of threads.
 * Scratch: [row losses, max_batch doubles] [probabilities, B * classes floats]. */
static double *row_losses(const nb_node *n) { return (double *)(void *)n->scratch; }

static float *probabilities(const nb_node *n)
{
    return n->scratch + 2 * (size_t)n->graph->max_batch;
}

static void xent_forward(nb_node *n, int batch, const nb_exec *ex)
{
    const float *z = n->in[LOSS_PRED]->value;
    const int32_t *y = n->in[LOSS_TARGET]->labels;
    int classes = n->in[LOSS_PRED]->shape[1];
    double *loss = row_losses(n);
    size_t r0, r1;
    nb_split(ex, (size_t)batch, 1, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        const float *zr = z + r * classes;
        float *pr = probabilities(n) + r * classes;
        float max = zr[0];
        for (int c = 1; c < classes; c++)
            max = zr[c] > max ? zr[c] : max;
        float sum = 0.0f;
        for (int c = 0; c < classes; c++) {
            pr[c] = expf(zr[c] - max);
            sum += pr[c];
        }
        float inv = 1.0f / sum;
        for (int c = 0; c < classes; c++)
            pr[c] *= inv;
        /* A label outside the classes makes the loss NaN rather than reading out of bounds. */
        if (y[r] < 0 || y[r] >= classes)
            loss[r] = NAN;
        else
            loss[r] = (double)logf(sum) + max - zr[y[r]];
    }
    nb_barrier(ex);
    if (ex->tid != 0)
        return;
    double total = 0.0;
    for (int r = 0; r < batch; r++)
        total += loss[r];
    n->loss = total / nb_graph_mean_rows(n->graph, batch);
    n->value[0] = (float)n->loss;
}

/* d loss / d z_ic = (p_ic - [c == y_i]) / B. */
static void xent_backward(nb_node *n, int batch, const nb_exec *ex)
{
    nb_node *logits = n->in[LOSS_PRED];
    const int32_t *y = n->in[LOSS_TARGET]->labels;
    int classes = logits->shape[1], assign = n->assign[LOSS_PRED];
    float scale = n->grad[0] / (float)nb_graph_mean_rows(n->graph, batch);
    size_t r0, r1;
    nb_split(ex, (size_t)batch, 1, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        const float *pr = probabilities(n) + r * classes;
        float *dz = logits->grad + r * classes;
        for (int c = 0; c < classes; c++)
            dz[c] = nb_grad_put(dz[c], scale * (pr[c] - (c == y[r] ? 1.0f : 0.0f)), assign);
    }
}

static const nb_op xent_op = {"softmax_cross_entropy", xent_forward, xent_backward, NULL, NULL};

nb_node *nb_softmax_cross_entropy(nb_graph *g, nb_node *logits, nb_node *labels)
{
    if (!g || g->failed || !logits || !labels)
        return g ? nb_graph_fail(g, "softmax_cross_entropy: missing input") : NULL;
    if (!logits->batched || logits->ndim != 2 || logits->leaf == NB_LEAF_LABELS)
        return nb_graph_fail(g, "softmax_cross_entropy: logits must be [B, classes]");
    if (labels->leaf != NB_LEAF_LABELS)
        return nb_graph_fail(g, "softmax_cross_entropy: labels must come from nb_labels");
    nb_node *inputs[2] = {logits, labels};
    int shape[1] = {1};
    nb_node *n = nb_graph_add_op(g, &xent_op, inputs, 2, 0, 1, shape);
    if (n)
        n->scratch_per_row = (size_t)logits->shape[1] + 2;
    return n;
}
