/* Gradient check: the analytic gradient of every parameter and every input that requires a
 * gradient, against central finite differences (f(x+h) - f(x-h)) / 2h of the loss. The loss
 * is read in double (loss ops keep it), so float rounding of the scalar does not swamp the
 * difference. Used by the tests of every op. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph_internal.h"

static double loss_at(nb_graph *g, nb_node *loss, int batch)
{
    nb_graph_forward(g, batch);
    return loss->op && isfinite(loss->loss) ? loss->loss : (double)loss->value[0];
}

/* Compares the analytic gradient of `count` values at x with finite differences. */
static double check_buffer(nb_graph *g, nb_node *loss, int batch, double step, float *x,
                           const float *analytic, size_t count)
{
    double worst = 0.0;
    for (size_t j = 0; j < count; j++) {
        float saved = x[j];
        x[j] = (float)(saved + step);
        double up = loss_at(g, loss, batch);
        x[j] = (float)(saved - step);
        double down = loss_at(g, loss, batch);
        x[j] = saved;
        /* The step actually taken in float, not the one asked for. */
        double h = ((double)(float)(saved + step) - (double)(float)(saved - step));
        double numeric = (up - down) / h;
        double a = analytic[j];
        double denom = fabs(a) + fabs(numeric);
        double rel = fabs(a - numeric) / (denom > 1e-3 ? denom : 1e-3);
        if (rel > worst)
            worst = rel;
    }
    return worst;
}

double nb_gradcheck(nb_graph *g, nb_node *loss, int batch, double step)
{
    /* Analytic gradients first, copied out because the finite differences overwrite them. */
    nb_graph_forward(g, batch);
    nb_graph_backward(g, loss);
    size_t total = g->n_params;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->leaf == NB_LEAF_INPUT && g->nodes[i]->grad)
            total += nb_node_size(g->nodes[i], batch);
    float *analytic = malloc((total ? total : 1) * sizeof(float));
    if (!analytic)
        return INFINITY;
    memcpy(analytic, g->grads, g->n_params * sizeof(float));
    size_t at = g->n_params;
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node *n = g->nodes[i];
        if (n->leaf == NB_LEAF_INPUT && n->grad) {
            memcpy(analytic + at, n->grad, nb_node_size(n, batch) * sizeof(float));
            at += nb_node_size(n, batch);
        }
    }

    double worst = check_buffer(g, loss, batch, step, g->params, analytic, g->n_params);
    at = g->n_params;
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node *n = g->nodes[i];
        if (n->leaf == NB_LEAF_INPUT && n->grad) {
            size_t size = nb_node_size(n, batch);
            double e = check_buffer(g, loss, batch, step, n->value, analytic + at, size);
            worst = e > worst ? e : worst;
            at += size;
        }
    }
    free(analytic);
    return worst;
}
