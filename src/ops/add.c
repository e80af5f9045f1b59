/* a + b elementwise, for two nodes of the same shape (a residual connection). Backward passes
 * dy on to both; when a and b are one node, the graph has it zeroed and both add (see the
 * assign rule in graph_internal.h). */
#include <stdio.h>

#include "core/graph_internal.h"
#include "core/simd.h"

enum { ADD_A, ADD_B };

NB_HOT static void add_forward(nb_node *n, int batch, const nb_exec *ex)
{
    const float *a = n->in[ADD_A]->value, *b = n->in[ADD_B]->value;
    size_t begin, end;
    nb_split(ex, nb_node_size(n, batch), 16, &begin, &end);
    for (size_t i = begin; i < end; i++)
        n->value[i] = a[i] + b[i];
}

NB_HOT static void add_backward(nb_node *n, int batch, const nb_exec *ex)
{
    size_t begin, end;
    nb_split(ex, nb_node_size(n, batch), 16, &begin, &end);
    for (int k = ADD_A; k <= ADD_B; k++) {
        float *d = n->in[k]->grad;
        int assign = n->assign[k];
        if (d)
            for (size_t i = begin; i < end; i++)
                d[i] = nb_grad_put(d[i], n->grad[i], assign);
    }
}

static const nb_op add_op = {"add", add_forward, add_backward, NULL, NULL};

/* "[B, 3, 4]" or "[3, 4]". */
static void shape_text(const nb_node *x, char *buf, size_t cap)
{
    size_t used = 0;
    for (int d = 0; d < x->ndim && used < cap; d++) {
        int w = d == 0 && x->batched
                    ? snprintf(buf + used, cap - used, "[B")
                    : snprintf(buf + used, cap - used, "%s%d", d ? ", " : "[", x->shape[d]);
        used += w > 0 ? (size_t)w : 0;
    }
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

nb_node *nb_add(nb_graph *g, nb_node *a, nb_node *b)
{
    if (!g || g->failed || !a || !b)
        return g ? nb_graph_fail(g, "add: missing input") : NULL;
    if (a->leaf == NB_LEAF_LABELS || b->leaf == NB_LEAF_LABELS)
        return nb_graph_fail(g, "add: labels are not a float tensor");
    int same = a->batched == b->batched && a->ndim == b->ndim;
    for (int d = a->batched; same && d < a->ndim; d++)
        same = a->shape[d] == b->shape[d];
    if (!same) {
        char sa[96], sb[96];
        shape_text(a, sa, sizeof sa);
        shape_text(b, sb, sizeof sb);
        return nb_graph_fail(g, "add: a %s and b %s differ in shape", sa, sb);
    }
    nb_node *inputs[2] = {a, b};
    return nb_graph_add_op(g, &add_op, inputs, 2, a->batched, a->ndim, a->shape);
}
