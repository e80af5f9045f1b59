/* Losses of a prediction against a target of the same shape, element by element, averaged
 * over every element as PyTorch's reduction='mean' does: MSELoss, L1Loss, HuberLoss(delta=1)
 * and BCEWithLogitsLoss. One row of a table per loss: its value on one element and its slopes
 * with respect to the prediction and the target.
 *
 * One thread computes the whole loss, summing in double in one order (so it does not depend
 * on the thread count): regression and multi-label outputs are narrow. In a data-parallel
 * step the mean divides by the global batch's elements, as the cross-entropy does (loss.c). */
#include <math.h>

#include "core/graph_internal.h"

enum { LOSS_PRED, LOSS_TARGET };

typedef struct elementwise_loss {
    double (*value)(float p, float t);
    float (*d_pred)(float p, float t);     /* d value / d p */
    float (*d_target)(float p, float t);   /* d value / d t */
} elementwise_loss;

static float sign_of(float x) { return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : 0.0f; }

/* (p - t)^2 */
static double mse_value(float p, float t)
{
    double d = (double)p - t;
    return d * d;
}
static float mse_d_pred(float p, float t) { return 2.0f * (p - t); }
static float mse_d_target(float p, float t) { return -2.0f * (p - t); }

/* |p - t|; PyTorch's slope at 0 is 0 (sign) */
static double l1_value(float p, float t) { return fabs((double)p - t); }
static float l1_d_pred(float p, float t) { return sign_of(p - t); }
static float l1_d_target(float p, float t) { return -sign_of(p - t); }

/* delta = 1: 0.5 d^2 when |d| < 1, else |d| - 0.5 */
static double huber_value(float p, float t)
{
    double d = (double)p - t;
    return fabs(d) < 1.0 ? 0.5 * d * d : fabs(d) - 0.5;
}
static float huber_d_pred(float p, float t)
{
    float d = p - t;
    return fabsf(d) < 1.0f ? d : sign_of(d);
}
static float huber_d_target(float p, float t) { return -huber_d_pred(p, t); }

/* Binary cross-entropy of the logit p against the label t in [0, 1]:
 * -t log sigmoid(p) - (1 - t) log(1 - sigmoid(p)) = max(p, 0) - p t + log(1 + exp(-|p|)),
 * the form that neither overflows nor loses the small probabilities. */
static double bce_value(float p, float t)
{
    double x = p;
    return (x > 0.0 ? x : 0.0) - x * t + log1p(exp(-fabs(x)));
}
static float bce_d_pred(float p, float t)
{
    float s = p >= 0.0f ? 1.0f / (1.0f + expf(-p)) : expf(p) / (1.0f + expf(p));
    return s - t;
}
static float bce_d_target(float p, float t)
{
    (void)t;
    return -p;
}

static const elementwise_loss losses[NB_LOSSES] = {
    [NB_LOSS_MSE] = {mse_value, mse_d_pred, mse_d_target},
    [NB_LOSS_L1] = {l1_value, l1_d_pred, l1_d_target},
    [NB_LOSS_HUBER] = {huber_value, huber_d_pred, huber_d_target},
    [NB_LOSS_BCE] = {bce_value, bce_d_pred, bce_d_target},
};

/* The elements the mean divides by: those of the pass, or of the global batch. */
static size_t mean_count(const nb_node *pred, int batch)
{
    if (!pred->batched)
        return pred->width;
    return (size_t)nb_graph_mean_rows(pred->graph, batch) * pred->width;
}

static void elementwise_forward(nb_node *n, int batch, const nb_exec *ex)
{
    if (ex->tid != 0)
        return;
    const elementwise_loss *l = &losses[n->args.loss.kind];
    const float *p = n->in[LOSS_PRED]->value, *t = n->in[LOSS_TARGET]->value;
    size_t count = nb_node_size(n->in[LOSS_PRED], batch);
    double total = 0.0;
    for (size_t i = 0; i < count; i++)
        total += l->value(p[i], t[i]);
    size_t mean_over = mean_count(n->in[LOSS_PRED], batch);
    n->loss = mean_over ? total / (double)mean_over : 0.0;
    n->value[0] = (float)n->loss;
}

static void elementwise_backward(nb_node *n, int batch, const nb_exec *ex)
{
    if (ex->tid != 0)
        return;
    const elementwise_loss *l = &losses[n->args.loss.kind];
    nb_node *pred = n->in[LOSS_PRED], *target = n->in[LOSS_TARGET];
    size_t count = nb_node_size(pred, batch), mean_over = mean_count(pred, batch);
    if (mean_over == 0)
        return;
    float scale = n->grad[0] / (float)mean_over;
    for (size_t i = 0; i < count; i++) {
        float p = pred->value[i], t = target->value[i];
        if (pred->grad)
            pred->grad[i] = nb_grad_put(pred->grad[i], scale * l->d_pred(p, t),
                                        n->assign[LOSS_PRED]);
        if (target->grad)
            target->grad[i] = nb_grad_put(target->grad[i], scale * l->d_target(p, t),
                                          n->assign[LOSS_TARGET]);
    }
}

static const nb_op elementwise_op = {"elementwise_loss", elementwise_forward,
                                     elementwise_backward, NULL, NULL};

nb_node *nb_elementwise_loss(nb_graph *g, nb_loss kind, nb_node *pred, nb_node *target)
{
    if (!g || g->failed || !pred || !target)
        return g ? nb_graph_fail(g, "%s: missing input", nb_loss_name(kind)) : NULL;
    if ((unsigned)kind >= NB_LOSSES || !losses[kind].value)
        return nb_graph_fail(g, "%s: not an element-wise loss", nb_loss_name(kind));
    if (pred->leaf == NB_LEAF_LABELS || target->leaf == NB_LEAF_LABELS)
        return nb_graph_fail(g, "%s: needs float tensors, not labels", nb_loss_name(kind));
    if (pred->batched != target->batched || pred->width != target->width)
        return nb_graph_fail(g, "%s: pred and target must have the same shape",
                             nb_loss_name(kind));
    nb_node *inputs[2] = {pred, target};
    int shape[1] = {1};
    nb_node *n = nb_graph_add_op(g, &elementwise_op, inputs, 2, 0, 1, shape);
    if (n)
        n->args.loss.kind = kind;
    return n;
}

nb_node *nb_mse(nb_graph *g, nb_node *pred, nb_node *target)
{
    return nb_elementwise_loss(g, NB_LOSS_MSE, pred, target);
}
