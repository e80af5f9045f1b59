/* The inside of the autodiff graph, shared by graph.c and the op files in src/ops/.
 * Not part of the public API. */
#ifndef NABLA_GRAPH_INTERNAL_H
#define NABLA_GRAPH_INTERNAL_H

#include "nabla.h"

#define NB_MAX_INPUTS 5

/* What a node is. Leaves have no op; every other node has one. */
typedef enum nb_leaf_kind {
    NB_LEAF_NONE,     /* an op's output */
    NB_LEAF_INPUT,    /* batched float data set by the caller */
    NB_LEAF_LABELS,   /* batched int32 class labels set by the caller */
    NB_LEAF_PARAM,    /* trainable: value in the flat parameter buffer, gradient in the flat gradient buffer */
    NB_LEAF_STATE     /* saved but not trained: running statistics */
} nb_leaf_kind;

/* An op is a name and a pair of functions. forward computes n->value from its inputs for the
 * first `batch` rows; backward adds n->grad's contribution into the inputs' gradients (+=,
 * since a node may feed several consumers). backward may be NULL for ops that need none. */
typedef struct nb_op {
    const char *name;
    void (*forward)(nb_node *n, int batch);
    void (*backward)(nb_node *n, int batch);
} nb_op;

struct nb_node {
    nb_graph *graph;
    const nb_op *op;              /* NULL for leaves */
    nb_leaf_kind leaf;
    nb_node *in[NB_MAX_INPUTS];
    int n_in;

    int batched;                  /* leading dimension is the batch */
    int ndim;
    int shape[NB_MAX_DIMS];       /* shape[0] of a batched node is the current batch */
    size_t width;                 /* elements per batch row (batched) or in all (not batched) */
    int requires_grad;

    float *value;
    float *grad;                  /* NULL when no gradient flows here */
    int32_t *labels;              /* NB_LEAF_LABELS */

    /* Op-specific memory, allocated at compile time from the arena: scratch_per_row floats for
     * each batch row plus scratch_fixed floats (saved softmax probabilities, batch-norm
     * statistics). */
    size_t scratch_per_row, scratch_fixed;
    float *scratch;

    float fparam[2];              /* op constants: leaky slope; batch-norm momentum and eps */
    int64_t counter;              /* batch norm: num_batches_tracked */
    int forward_was_training;     /* batch norm: which statistics the last forward used */
    double loss;                  /* loss ops: the value in double, for gradient checks */

    char *name;                   /* params and states */
    float init_fill;              /* value params and states start with */
};

struct nb_graph {
    nb_node **nodes;              /* creation order, which is a topological order */
    int n_nodes, cap_nodes;

    nb_named *named;              /* params, states and counters, for files */
    int n_named, cap_named;

    int compiled;
    int max_batch;
    int batch;                    /* rows of the last forward pass */
    int training;

    float *params, *grads;        /* the two flat buffers */
    size_t n_params;
    float *states;
    size_t n_states;
    void *arena;                  /* values, gradients and scratch of every other node */
    size_t arena_bytes;

    nb_error error;               /* first builder error */
    int failed;
};

/* Records the first builder error; returns NULL so builders can `return nb_graph_fail(...)`. */
nb_node *nb_graph_fail(nb_graph *g, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Creates an op node with the given inputs and output shape (batched: shape[0] ignored). */
nb_node *nb_graph_add_op(nb_graph *g, const nb_op *op, nb_node **inputs, int n_in, int batched,
                         int ndim, const int *shape);

/* Registers an int64 counter kept inside node n (batch norm's num_batches_tracked). */
int nb_graph_add_counter(nb_graph *g, const char *name, nb_node *n);

/* Elements of a node's value for the current (or given) batch. */
static inline size_t nb_node_size(const nb_node *n, int batch)
{
    return n->batched ? (size_t)batch * n->width : n->width;
}

#endif
