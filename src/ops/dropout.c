/* Inverted dropout (Srivastava et al. 2014): in training mode y = x·mask/(1-p), each element of
 * the mask 0 with probability p, else 1; in inference mode, or with p = 0, y = x.
 *
 * The mask is not drawn from a sequential generator but computed. Element j of a sample is kept
 * iff the top 32 bits of
 *     mix(key + (j + 1)·γ),   key = mix(mix(mix(mix(seed ^ τ) + layer) + step) + row)
 * are at least p·2^32, where mix is splitmix64's finalizer (a bijection of 64 bits in which
 * every input bit changes about half the output bits), γ the golden-ratio increment splitmix64
 * adds to its counter, τ a constant that sets this use of the seed apart, and:
 *   seed, step  the graph's, set by nb_graph_set_step for the pass (the trainer: its seed and the
 *               optimizer steps taken so far);
 *   row         row0 + r for row r of the pass: the sample's position in the step's global batch;
 *   layer       which dropout of the graph this is, in creation order.
 * A pure function of those, so the mask does not depend on the thread count (each thread
 * computes its own elements), nor on how a batch is split into passes or between ranks, and a
 * resumed run (its step count comes from the checkpoint) draws the same masks as an
 * uninterrupted one.
 *
 * Backward recomputes the mask rather than keeping it: dx = dy·mask/(1-p) is the same loop as
 * the forward pass on other buffers, the hash costs a few vector instructions an element, and a
 * kept mask would cost memory (a byte an element at best, on top of y) and its traffic. */
#include <math.h>

#include "core/graph_internal.h"
#include "core/simd.h"

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ULL
#define DROPOUT_TAG 0xd50b0a7c3e1f2a95ULL

/* The key of the step for this dropout; the key of a row is mix64(step key + row). */
static uint64_t step_key(const nb_node *n)
{
    const nb_graph_step *s = &n->graph->step;
    uint64_t k = mix64(s->seed ^ DROPOUT_TAG);
    k = mix64(k + (uint64_t)n->args.dropout.layer);
    return mix64(k + (uint64_t)s->step);
}

/* d[j] (=, or += unless assign) s[j]·mask[j]/(1-p) for the units [j0, j1) of the row whose key
 * is `key`. The mask multiplies (by 0 or 1/(1-p)) rather than selects, so that a NaN or an
 * infinity in x stays a NaN where it is dropped, as in PyTorch, and is not hidden. */
NB_HOT static void mask_units(const float *s, float *d, size_t j0, size_t j1, uint64_t key,
                              uint64_t threshold, float scale, int assign)
{
    for (size_t j = j0; j < j1; j++) {
        uint64_t h = mix64(key + (uint64_t)(j + 1) * GOLDEN_GAMMA);
        float m = (h >> 32) >= threshold ? scale : 0.0f;
        d[j] = nb_grad_put(d[j], s[j] * m, assign);
    }
}

/* dst = src·mask/(1-p), or dst += it (assign 0), over this thread's elements: forward with
 * (x, y), backward with (dy, dx). Without a mask (inference, p = 0), dst = src. */
static void apply_mask(const nb_node *n, int batch, const nb_exec *ex, int masking,
                       const float *src, float *dst, int assign)
{
    size_t f = n->width, begin, end;
    nb_split(ex, (size_t)batch * f, 16, &begin, &end);
    if (!masking) {
        for (size_t i = begin; i < end; i++)
            dst[i] = nb_grad_put(dst[i], src[i], assign);
        return;
    }
    float p = n->args.dropout.p;
    float scale = 1.0f / (1.0f - p);
    /* Dropped iff the hash's top 32 bits are below p·2^32 (< 2^32 since p < 1). */
    uint64_t threshold = (uint64_t)((double)p * 4294967296.0);
    uint64_t key0 = step_key(n);
    int64_t row0 = n->graph->step.row0;
    /* The rows this thread's elements fall in, a piece of a row at a time. */
    for (size_t i = begin; i < end;) {
        size_t r = i / f, j0 = i % f;
        size_t j1 = end - i < f - j0 ? j0 + (end - i) : f;
        uint64_t key = mix64(key0 + (uint64_t)(row0 + (int64_t)r));
        mask_units(src + r * f, dst + r * f, j0, j1, key, threshold, scale, assign);
        i += j1 - j0;
    }
}

static void dropout_forward(nb_node *n, int batch, const nb_exec *ex)
{
    int masking = n->graph->training && n->args.dropout.p > 0.0f;
    if (ex->tid == 0)
        n->forward_was_training = n->graph->training;
    apply_mask(n, batch, ex, masking, n->in[0]->value, n->value, 1);
}

static void dropout_backward(nb_node *n, int batch, const nb_exec *ex)
{
    nb_node *x = n->in[0];
    if (!x->grad)
        return;
    int masking = n->forward_was_training && n->args.dropout.p > 0.0f;
    apply_mask(n, batch, ex, masking, n->grad, x->grad, n->assign[0]);
}

static const nb_op dropout_op = {"dropout", dropout_forward, dropout_backward, NULL, NULL};

nb_node *nb_dropout(nb_graph *g, nb_node *x, float p)
{
    if (!g || g->failed || !x)
        return g ? nb_graph_fail(g, "dropout: missing input") : NULL;
    if (!x->batched || x->leaf == NB_LEAF_LABELS)
        return nb_graph_fail(g, "dropout: x must be a batch of float samples [B, ...]");
    if (!(p >= 0.0f && p < 1.0f))
        return nb_graph_fail(g, "dropout: p must be in [0, 1), not %g", (double)p);
    nb_node *n = nb_graph_add_op(g, &dropout_op, &x, 1, 1, x->ndim, x->shape);
    if (!n)
        return NULL;
    n->args.dropout.p = p;
    n->args.dropout.layer = g->n_dropouts++;
    return n;
}
