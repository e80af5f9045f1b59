/* The inside of the autodiff graph, shared by graph.c and the op files in src/ops/.
 * Not part of the public API. */
#ifndef NABLA_GRAPH_INTERNAL_H
#define NABLA_GRAPH_INTERNAL_H

#include "nabla.h"
#include "core/memcheck.h"
#include "core/pool.h"

#define NB_MAX_INPUTS 5

/* What a node is. Leaves have no op; every other node has one. */
typedef enum nb_leaf_kind {
    NB_LEAF_NONE,     /* an op's output */
    NB_LEAF_INPUT,    /* batched float data set by the caller */
    NB_LEAF_LABELS,   /* batched int32 class labels set by the caller */
    NB_LEAF_PARAM,    /* trainable: value in the flat parameter buffer, gradient in the flat gradient buffer */
    NB_LEAF_STATE     /* saved but not trained: running statistics */
} nb_leaf_kind;

/* A 2-D window sliding over images (conv2d, the poolings). */
typedef struct nb_window2d {
    int kernel[2], stride[2], padding[2];   /* {height, width} each */
} nb_window2d;

/* An op is a name and a pair of functions. forward computes n->value from its inputs for the
 * first `batch` rows; backward passes n->grad on into the inputs' gradients. backward may be
 * NULL for ops that need none; a view (nb_graph_add_view) has neither.
 *
 * Both run on every thread of a pool job at once (ex says which thread of how many): each
 * thread computes its own share of the output, and a thread may wait for the others with
 * nb_barrier(ex) when one phase needs another's complete result. The graph puts a barrier
 * between consecutive ops.
 *
 * Gradients: a node may feed several consumers, so contributions normally add up (+=) into a
 * zeroed buffer. The first consumer to run backward (the last in creation order) instead sets
 * the gradient (=) when n->assign[i] is 1 for its input i, which spares the graph a pass
 * that zeroes the buffer. Every op honours assign. */
typedef struct nb_op {
    const char *name;
    void (*forward)(nb_node *n, int batch, const nb_exec *ex);
    void (*backward)(nb_node *n, int batch, const nb_exec *ex);
    /* Ops that can apply an activation to their output in their own passes (nb_activate):
     * returns 0 when this node takes act (then n->act is set, and whatever the op needs for
     * it, such as scratch, is asked for), -1 when it cannot. NULL: the op cannot. */
    int (*fuse)(nb_node *n, nb_activation act, float slope);
    /* Ops that can max-pool their own output (nb_maxpool2d_fused), window win giving out[0] x
     * out[1] values a plane: returns 0 when this node takes it (its shape is then the pooled
     * one), -1 when it cannot. NULL: the op cannot. */
    int (*fuse_pool)(nb_node *n, const nb_window2d *win, const int out[2]);
} nb_op;

/* An op's constants (kernel sizes, slopes, eps ...), set once by its builder. Each op reads
 * only its own member; a new op with constants adds a member here. */
typedef union nb_op_args {
    struct {
        float momentum, eps;
        int pooled;          /* the output is max-pooled with `pool` (nb_maxpool2d_fused) */
        nb_window2d pool;
    } batchnorm;
    struct { float eps; } layernorm;
    struct { float p; int layer; } dropout;   /* layer: its rank among the graph's dropouts */
    nb_window2d conv2d;                                      /* kernel: w's kh, kw */
    nb_window2d pool2d;                                      /* max and average; padding 0 */
    struct { nb_loss kind; } loss;                           /* element-wise losses */
} nb_op_args;

struct nb_node {
    nb_graph *graph;
    const nb_op *op;              /* NULL for leaves */
    nb_leaf_kind leaf;
    nb_node *in[NB_MAX_INPUTS];
    int n_in;
    int assign[NB_MAX_INPUTS];    /* backward sets (=) rather than adds to in[i]->grad */
    int zero_grad;                /* backward must zero this node's gradient first */

    int batched;                  /* leading dimension is the batch */
    int ndim;
    int shape[NB_MAX_DIMS];       /* shape[0] of a batched node is the current batch */
    size_t width;                 /* elements per batch row (batched) or in all (not batched) */
    int requires_grad;

    float *value;
    float *grad;                  /* NULL when no gradient flows here */
    /* A view (flatten) shares the value and gradient buffers of this node, the one that owns
     * them (never itself a view); NULL for a node with buffers of its own. */
    nb_node *view_of;
    int32_t *labels;              /* NB_LEAF_LABELS */

    /* Op-specific memory, allocated at compile time from the arena: scratch_per_row floats for
     * each batch row plus scratch_fixed floats (saved softmax probabilities, batch-norm
     * statistics). */
    size_t scratch_per_row, scratch_fixed;
    float *scratch;

    nb_op_args args;              /* the op's constants, set by its builder */
    /* The activation applied to the output: the whole job of an activation op, or the one a
     * dense, conv2d or batch-norm op computes in its own passes (nb_activate); NB_IDENTITY
     * when there is none. */
    struct { nb_activation act; float slope; } act;
    int64_t counter;              /* batch norm: num_batches_tracked */
    int forward_was_training;     /* batch norm: which statistics the last forward used;
                                     dropout: whether it masked */
    double loss;                  /* loss ops: the value in double, for gradient checks */

    char *name;                   /* params and states */
    float init_fill;              /* value params and states start with */
};

/* Data-parallel training (nb_train with a communicator of two or more ranks) sets this around
 * each training step and clears it after, so that evaluation and single-process use never see
 * it (zeroed: not data-parallel).
 *   global_batch  rows of the global mini-batch, of which this rank holds the batch of the
 *                 pass (possibly none): a mean loss divides its rows' sum by it, so that the
 *                 ranks' losses and gradients add up to those of the whole batch; a pass may
 *                 then have zero rows (every op runs, doing nothing but its collectives);
 *   bn_comm       synchronized batch norm: the communicator its statistics are summed over
 *                 (NULL: each rank normalizes with its own rows' statistics);
 *   failed, error the first collective of the pass that failed (later ones are skipped).
 * Collectives are called by thread 0 of a pool job only (the thread that called nb_train),
 * between barriers. */
typedef struct nb_graph_dp {
    int global_batch;
    const nb_comm *bn_comm;
    int failed;
    nb_error error;
} nb_graph_dp;

/* What the random ops (dropout) of a training pass are a pure function of, set by
 * nb_graph_set_step: the run's seed, the step the pass belongs to, and the position of the
 * pass's row 0 in the step's global batch (a batch split into passes or between ranks gives
 * each row the same randomness as the whole batch in one pass). */
typedef struct nb_graph_step {
    uint64_t seed;
    int64_t step;
    int64_t row0;
} nb_graph_step;

struct nb_graph {
    nb_node **nodes;              /* creation order, which is a topological order */
    int n_nodes, cap_nodes;

    nb_named *named;              /* params, states and counters, for files */
    int n_named, cap_named;

    int compiled;
    int max_batch;
    int batch;                    /* rows of the last forward pass */
    int training;
    int planned_root;             /* the node backward last started from (-1: none yet) */

    float *params, *grads;        /* the two flat buffers */
    float *spare_params;          /* the other parameter buffer of a trainer, or NULL */
    size_t n_params;
    float *states;
    size_t n_states;
    void *arena;                  /* values, gradients and scratch of every other node */
    size_t arena_bytes;

    nb_error error;               /* first builder error */
    int failed;

    nb_graph_dp dp;               /* data-parallel training step in progress, if any */

    /* next_step: as nb_graph_set_step last set it; step: what the last forward pass took from
     * it, which its backward pass uses too. */
    nb_graph_step next_step, step;
    int n_dropouts;               /* dropout ops so far, which numbers the next one */
};

/* What a graph compiled for batches of max_batch holds, in floats, before it is compiled:
 * nb_graph_compile checks it, and a trainer can check it with its own state before the graph
 * exists (nb_model_check_train_memory). rows: the most rows a matrix product's result can
 * have (nb_pool_memory_for). */
typedef struct nb_graph_sizes {
    uint64_t params, states, labels, arena, nodes, rows;
} nb_graph_sizes;
void nb_graph_measure(const nb_graph *g, int max_batch, nb_graph_sizes *z);
/* The two parts of a check: "weights and gradients" and "activations" (which grow with the
 * batch), in bytes. */
void nb_graph_memory_parts(const nb_graph_sizes *z, nb_memory_part parts[2]);

/* A model's graph built from its spec but not compiled (model.c): for measuring it before
 * anything is allocated. Free it with nb_model_free. */
int nb_model_construct(nb_model *m, const nb_model_spec *spec, nb_error *err);

/* Thread 0's collective for an op of a data-parallel step: sums n doubles over the ranks of
 * g->dp.bn_comm in place. After a failure (recorded in g->dp) it does nothing. */
void nb_graph_dp_sum(nb_graph *g, double *data, size_t n);

/* Rows a mean over the batch divides by: the global batch of a data-parallel step, else the
 * pass's own rows. */
static inline int nb_graph_mean_rows(const nb_graph *g, int batch)
{
    return g->dp.global_batch > 0 ? g->dp.global_batch : batch;
}

/* Records the first builder error; returns NULL so builders can `return nb_graph_fail(...)`. */
nb_node *nb_graph_fail(nb_graph *g, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Creates an op node with the given inputs and output shape (batched: shape[0] ignored). */
nb_node *nb_graph_add_op(nb_graph *g, const nb_op *op, nb_node **inputs, int n_in, int batched,
                         int ndim, const int *shape);

/* Creates a view of x: a node of another shape over the same elements, sharing x's value and
 * gradient buffers (no copy either way). op names it and has no functions. Gradients of the
 * view and of x are one buffer: every consumer of either contributes to it (plan_gradients in
 * graph.c). */
nb_node *nb_graph_add_view(nb_graph *g, const nb_op *op, nb_node *x, int ndim, const int *shape);
/* Whether x's op may change what x's values are (nb_activate, nb_maxpool2d_fused): x is an
 * op's output and the newest node of g, a graph that has not failed and is not compiled, so
 * nothing reads x's values yet. */
int nb_graph_newest_op(const nb_graph *g, const nb_node *x);

/* Registers an int64 counter kept inside node n (batch norm's num_batches_tracked). */
int nb_graph_add_counter(nb_graph *g, const char *name, nb_node *n);

/* dst = v or dst += v, as n->assign says; a helper for backward loops. The branch is the same
 * for a whole loop, which the compiler hoists out. */
static inline float nb_grad_put(float dst, float v, int assign) { return assign ? v : dst + v; }

/* Work cut into a fixed number of parts (nb_product_parts(), see pool.h) whatever the thread
 * count, so that results do not depend on it: thread ex->tid takes the consecutive parts
 * [*p0, *p1); part `part` of n items is [*begin, *end), as nb_split would give thread `part`
 * of `parts`. nb_sgemm_share and conv2d split their work this way. */
void nb_thread_parts(const nb_exec *ex, int parts, int *p0, int *p1);
void nb_part_range(int part, int parts, size_t n, size_t align, size_t *begin, size_t *end);

/* This thread's block of the product C = alpha op(A) op(B) + beta C (row-major, as
 * cblas_sgemm): the rows of C or its columns, whichever are more, split between the threads
 * of the job. Returns the block this thread computed. */
typedef struct nb_block {
    int row0, row1, col0, col1;
} nb_block;
nb_block nb_sgemm_share(const nb_exec *ex, int trans_a, int trans_b, int m, int n, int k,
                        float alpha, const float *a, int lda, const float *b, int ldb,
                        float beta, float *c, int ldc);

/* The geometry of a window op on images x [B, C, H, W] (conv2d, the poolings; window2d.c):
 * checks that x is a batch of images and that the window's kernel, stride and padding fit it,
 * and gives the output's height and width, floor((H + 2 padding - kernel) / stride) + 1 as
 * PyTorch's. On a problem, records "<op>: <what>" as the graph's error and returns -1. */
int nb_window2d_output(nb_graph *g, const char *op, const nb_node *x, const nb_window2d *win,
                       int out[2]);

/* Max pooling of one plane (pool2d.c), for the maxpool2d op and the ops that pool their own
 * output (nb_maxpool2d_fused): the plane's sizes and the window. nb_max_plane sets y to each
 * window's maximum, as PyTorch picks it, and at to where it is (its offset from the window's
 * first element); nb_max_plane_backward adds each dy to the element at says (dx += ...). */
typedef struct nb_pool_plane {
    int height, width, out_height, out_width;
    nb_window2d win;
} nb_pool_plane;
/* The offset of window (oh, ow)'s first element in its plane. */
static inline size_t nb_pool_window_start(const nb_pool_plane *q, int oh, int ow)
{
    return (size_t)oh * (size_t)q->win.stride[0] * (size_t)q->width +
           (size_t)ow * (size_t)q->win.stride[1];
}
void nb_max_plane(const nb_pool_plane *q, const float *x, float *y, int32_t *at);
void nb_max_plane_backward(const nb_pool_plane *q, const float *dy, const int32_t *at,
                           float *dx);

/* The activation functions (src/ops/activation.c), for the activation ops and the dense op.
 * backward: dx (=, or += unless assign) dy * act'(...), from y, or from x when
 * nb_activation_needs_input says y does not determine the derivative. */
int nb_activation_needs_input(nb_activation act, float slope);
void nb_activation_forward(nb_activation act, float slope, const float *x,
                           float *y, size_t n);
void nb_activation_backward(nb_activation act, float slope, const float *x,
                            const float *y, const float *dy,
                            float *dx, size_t n, int assign);
/* For an op that applies n->act to its output itself: y = act(y) over count values of its
 * output, in place; and dy = dy * act'(y) in place, the gradient with respect to the values
 * before the activation (only for activations whose derivative y determines; the op's fuse
 * function refuses the others). Both do nothing for NB_IDENTITY. */
void nb_fused_activation_forward(const nb_node *n, float *y, size_t count);
void nb_fused_activation_backward(const nb_node *n, const float *y, float *dy, size_t count);
/* The fuse function of ops whose activation's derivative must come from y (conv2d, batch
 * norm): takes act unless it needs the values before it. */
int nb_fuse_from_output(nb_node *n, nb_activation act, float slope);

/* Elements of a node's value for the current (or given) batch. */
static inline size_t nb_node_size(const nb_node *n, int batch)
{
    return n->batched ? (size_t)batch * n->width : n->width;
}

#endif
