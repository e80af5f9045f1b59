/* The geometry of the window ops on images (conv2d, max and average pooling): one check of a
 * window's arguments against its input, and the output size PyTorch gives (padding on both
 * sides, no ceil mode, no dilation). */
#include <limits.h>

#include "core/graph_internal.h"

int nb_window2d_output(nb_graph *g, const char *op, const nb_node *x, const nb_window2d *win,
                       int out[2])
{
    if (!x->batched || x->ndim != 4 || x->leaf == NB_LEAF_LABELS) {
        nb_graph_fail(g, "%s: x must be a batch of images [B, C, H, W], not %s of %d dimension%s",
                      op, x->leaf == NB_LEAF_LABELS ? "labels" : "a tensor", x->ndim,
                      x->ndim == 1 ? "" : "s");
        return -1;
    }
    const int *k = win->kernel, *s = win->stride, *p = win->padding;
    if (k[0] < 1 || k[1] < 1) {
        nb_graph_fail(g, "%s: the kernel %dx%d must be positive", op, k[0], k[1]);
        return -1;
    }
    if (s[0] < 1 || s[1] < 1) {
        nb_graph_fail(g, "%s: the stride %dx%d must be positive", op, s[0], s[1]);
        return -1;
    }
    if (p[0] < 0 || p[1] < 0) {
        nb_graph_fail(g, "%s: the padding %dx%d must not be negative", op, p[0], p[1]);
        return -1;
    }
    for (int d = 0; d < 2; d++) {
        long long padded = (long long)x->shape[2 + d] + 2LL * p[d];
        if (padded > INT_MAX) {
            nb_graph_fail(g, "%s: the padding %dx%d makes the input too large", op, p[0], p[1]);
            return -1;
        }
        if (padded < k[d]) {
            if (p[0] || p[1])
                nb_graph_fail(g, "%s: the kernel %dx%d is larger than the input %dx%d padded "
                              "by %dx%d", op, k[0], k[1], x->shape[2], x->shape[3], p[0], p[1]);
            else
                nb_graph_fail(g, "%s: the kernel %dx%d is larger than the input %dx%d", op,
                              k[0], k[1], x->shape[2], x->shape[3]);
            return -1;
        }
        out[d] = (int)((padded - k[d]) / s[d] + 1);
    }
    return 0;
}
