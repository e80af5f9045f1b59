/* flatten: x [B, ...] -> [B, the elements of a sample], as torch.nn.Flatten. Row-major order
 * is the same either way, so the result is a view of x (nb_graph_add_view): it shares x's value
 * and gradient buffers, and neither pass copies anything or runs at all. */
#include <limits.h>

#include "core/graph_internal.h"

static const nb_op flatten_op = {"flatten", NULL, NULL, NULL, NULL};

nb_node *nb_flatten(nb_graph *g, nb_node *x)
{
    if (!g || g->failed || !x)
        return g ? nb_graph_fail(g, "flatten: missing input") : NULL;
    if (!x->batched || x->leaf == NB_LEAF_LABELS)
        return nb_graph_fail(g, "flatten: x must be a batch of float tensors [B, ...]");
    if (x->width > INT_MAX)
        return nb_graph_fail(g, "flatten: a sample of %zu elements is too large", x->width);
    int shape[2] = {0, (int)x->width};
    return nb_graph_add_view(g, &flatten_op, x, 2, shape);
}
