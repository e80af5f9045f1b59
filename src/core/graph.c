/* The autodiff graph: nodes in creation order (a topological order), one arena for every
 * activation and gradient, one flat buffer for the parameters and one for their gradients.
 * Forward runs the ops front to back; backward runs their backward functions back to front. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph_internal.h"
#include "core/memcheck.h"

nb_graph *nb_graph_new(void)
{
    nb_graph *g = calloc(1, sizeof *g);
    if (g)
        g->training = 1;
    return g;
}

void nb_graph_free(nb_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_nodes; i++) {
        free(g->nodes[i]->name);
        free(g->nodes[i]->labels);
        free(g->nodes[i]);
    }
    for (int i = 0; i < g->n_named; i++)
        if (g->named[i].kind == NB_KIND_COUNTER)
            free((char *)g->named[i].name);
    free(g->nodes);
    free(g->named);
    free(g->params);
    free(g->spare_params);
    free(g->grads);
    free(g->states);
    free(g->arena);
    free(g);
}

nb_node *nb_graph_fail(nb_graph *g, const char *fmt, ...)
{
    if (!g->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->error.msg, sizeof g->error.msg, fmt, ap);
        va_end(ap);
        g->failed = 1;
    }
    return NULL;
}

static int push_named(nb_graph *g, nb_named entry)
{
    if (g->n_named == g->cap_named) {
        int cap = g->cap_named ? 2 * g->cap_named : 16;
        nb_named *p = realloc(g->named, (size_t)cap * sizeof *p);
        if (!p)
            return -1;
        g->named = p;
        g->cap_named = cap;
    }
    g->named[g->n_named++] = entry;
    return 0;
}

static nb_node *new_node(nb_graph *g, int batched, int ndim, const int *shape)
{
    if (g->compiled)
        return nb_graph_fail(g, "cannot add nodes to a compiled graph");
    if (ndim < 1 || ndim > NB_MAX_DIMS)
        return nb_graph_fail(g, "a tensor has 1 to %d dimensions, not %d", NB_MAX_DIMS, ndim);
    size_t width = 1;
    for (int d = batched ? 1 : 0; d < ndim; d++) {
        if (shape[d] <= 0)
            return nb_graph_fail(g, "dimension %d has size %d; sizes must be positive", d, shape[d]);
        if (width > SIZE_MAX / (size_t)shape[d])
            return nb_graph_fail(g, "a tensor of %d dimensions is too large to address", ndim);
        width *= (size_t)shape[d];
    }
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 32;
        nb_node **p = realloc(g->nodes, (size_t)cap * sizeof *p);
        if (!p)
            return nb_graph_fail(g, "out of memory");
        g->nodes = p;
        g->cap_nodes = cap;
    }
    nb_node *n = calloc(1, sizeof *n);
    if (!n)
        return nb_graph_fail(g, "out of memory");
    n->graph = g;
    n->act.act = NB_IDENTITY;
    n->batched = batched;
    n->ndim = ndim;
    memcpy(n->shape, shape, (size_t)ndim * sizeof *shape);
    if (batched)
        n->shape[0] = 0;
    n->width = width;
    g->nodes[g->n_nodes++] = n;
    return n;
}

nb_node *nb_input_shape(nb_graph *g, int ndim, const int *sample_shape)
{
    if (!g || g->failed)
        return NULL;
    if (ndim < 1 || ndim > NB_MAX_DIMS - 1 || !sample_shape)
        return nb_graph_fail(g, "an input's sample has 1 to %d dimensions, not %d",
                             NB_MAX_DIMS - 1, sample_shape ? ndim : 0);
    int shape[NB_MAX_DIMS] = {0};
    memcpy(shape + 1, sample_shape, (size_t)ndim * sizeof *shape);
    nb_node *n = new_node(g, 1, ndim + 1, shape);
    if (n)
        n->leaf = NB_LEAF_INPUT;
    return n;
}

nb_node *nb_input(nb_graph *g, int features) { return nb_input_shape(g, 1, &features); }

void nb_input_requires_grad(nb_node *x)
{
    if (x && x->leaf == NB_LEAF_INPUT && !x->graph->compiled)
        x->requires_grad = 1;
}

nb_node *nb_labels(nb_graph *g)
{
    if (!g || g->failed)
        return NULL;
    int shape[1] = {0};
    nb_node *n = new_node(g, 1, 1, shape);
    if (n)
        n->leaf = NB_LEAF_LABELS;
    return n;
}

static nb_node *named_leaf(nb_graph *g, const char *name, int ndim, const int *shape,
                           nb_leaf_kind leaf)
{
    if (!g || g->failed)
        return NULL;
    if (!name || !*name)
        return nb_graph_fail(g, "parameters and states need a name");
    for (int i = 0; i < g->n_named; i++)
        if (strcmp(g->named[i].name, name) == 0)
            return nb_graph_fail(g, "two tensors are named '%s'", name);
    nb_node *n = new_node(g, 0, ndim, shape);
    if (!n)
        return NULL;
    n->leaf = leaf;
    n->requires_grad = leaf == NB_LEAF_PARAM;
    n->name = malloc(strlen(name) + 1);
    if (!n->name)
        return nb_graph_fail(g, "out of memory");
    strcpy(n->name, name);
    nb_named entry = {n->name, leaf == NB_LEAF_PARAM ? NB_KIND_PARAM : NB_KIND_STATE, n, NULL};
    if (push_named(g, entry) != 0)
        return nb_graph_fail(g, "out of memory");
    return n;
}

nb_node *nb_param(nb_graph *g, const char *name, int ndim, const int *shape)
{
    return named_leaf(g, name, ndim, shape, NB_LEAF_PARAM);
}

nb_node *nb_state(nb_graph *g, const char *name, int ndim, const int *shape)
{
    return named_leaf(g, name, ndim, shape, NB_LEAF_STATE);
}

int nb_graph_add_counter(nb_graph *g, const char *name, nb_node *n)
{
    char *copy = malloc(strlen(name) + 1);
    if (!copy) {
        nb_graph_fail(g, "out of memory");
        return -1;
    }
    strcpy(copy, name);
    nb_named entry = {copy, NB_KIND_COUNTER, NULL, &n->counter};
    if (push_named(g, entry) != 0) {
        free(copy);
        nb_graph_fail(g, "out of memory");
        return -1;
    }
    return 0;
}

nb_node *nb_graph_add_op(nb_graph *g, const nb_op *op, nb_node **inputs, int n_in, int batched,
                         int ndim, const int *shape)
{
    if (!g || g->failed)
        return NULL;
    for (int i = 0; i < n_in; i++)
        if (!inputs[i])
            return nb_graph_fail(g, "%s: input %d is missing", op->name, i);
        else if (inputs[i]->graph != g)
            return nb_graph_fail(g, "%s: input %d belongs to another graph", op->name, i);
    nb_node *n = new_node(g, batched, ndim, shape);
    if (!n)
        return NULL;
    n->op = op;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        n->in[i] = inputs[i];
        n->requires_grad |= inputs[i]->requires_grad;
    }
    return n;
}

nb_node *nb_graph_add_view(nb_graph *g, const nb_op *op, nb_node *x, int ndim, const int *shape)
{
    if (!g || g->failed)
        return NULL;
    if (!x)
        return nb_graph_fail(g, "%s: input 0 is missing", op->name);
    if (x->leaf == NB_LEAF_LABELS || x->leaf == NB_LEAF_PARAM || x->leaf == NB_LEAF_STATE)
        return nb_graph_fail(g, "%s: views are of float data and op outputs, not of labels, "
                             "parameters or states", op->name);
    nb_node *n = nb_graph_add_op(g, op, &x, 1, x->batched, ndim, shape);
    if (!n)
        return NULL;
    if (n->width != x->width)
        return nb_graph_fail(g, "%s: a view of %zu elements a row cannot have %zu", op->name,
                             x->width, n->width);
    n->view_of = x->view_of ? x->view_of : x;
    return n;
}

int nb_graph_newest_op(const nb_graph *g, const nb_node *x)
{
    return g && x && !g->failed && !g->compiled && x->graph == g && g->n_nodes > 0 &&
           g->nodes[g->n_nodes - 1] == x && x->op != NULL;
}

/* ---- compile: lay out every buffer once ---- */

/* Arena offsets are kept 64-byte aligned, so every buffer starts on its own cache line. */
static uint64_t round_up(uint64_t floats) { return nb_sat_add(floats, 15) & ~(uint64_t)15; }

/* The node that owns n's gradient buffer: n, or the node n is a view of. */
static const nb_node *buffer_owner(const nb_node *n) { return n->view_of ? n->view_of : n; }

/* Decides, for every gradient buffer, who clears it, for a backward pass from the node at
 * index `root`. Backward runs the ops from the root to the first, so the first op to write a
 * buffer is the last consumer (up to the root) whose backward runs of its owner or of a view of
 * it. If that op takes the buffer in one input slot only, it sets the gradient (assign) and
 * nobody needs to zero it; otherwise (the buffer in two slots of one op, or no consumer writing
 * it at all, like a parameter the loss does not depend on) backward zeroes it first. The root's
 * buffer is seeded with ones, so its consumers all add. Nodes after the root do not take part;
 * their gradients are zeroed. A view is never zeroed or seeded itself: its owner's buffer is. */
static void plan_gradients(nb_graph *g, int root)
{
    const nb_node *seeded = buffer_owner(g->nodes[root]);
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node *n = g->nodes[i];
        memset(n->assign, 0, sizeof n->assign);
        n->zero_grad = n->grad != NULL && !n->view_of && n != seeded;
    }
    for (int i = 0; i < root; i++) {
        nb_node *n = g->nodes[i];
        if (!n->grad || n->view_of || n == seeded)
            continue;
        for (int j = root; j > i; j--) {
            nb_node *c = g->nodes[j];
            if (!c->op || !c->op->backward || !c->requires_grad)
                continue;
            int slots = 0, slot = -1;
            for (int k = 0; k < c->n_in; k++)
                if (buffer_owner(c->in[k]) == n) {
                    slots++;
                    slot = k;
                }
            if (slots == 0)
                continue;
            if (slots == 1) {
                c->assign[slot] = 1;
                n->zero_grad = 0;
            }
            break;
        }
    }
    g->planned_root = root;
}

void nb_graph_measure(const nb_graph *g, int max_batch, nb_graph_sizes *z)
{
    memset(z, 0, sizeof *z);
    z->rows = (uint64_t)max_batch;
    for (int i = 0; i < g->n_nodes; i++) {
        const nb_node *n = g->nodes[i];
        uint64_t size = n->batched ? nb_sat_mul((uint64_t)max_batch, n->width) : n->width;
        uint64_t scratch = nb_sat_add(nb_sat_mul(n->scratch_per_row, (uint64_t)max_batch),
                                      n->scratch_fixed);
        if (n->view_of)
            continue; /* its owner's buffers; no scratch */
        if (n->leaf == NB_LEAF_PARAM)
            z->params = nb_sat_add(z->params, size);
        else if (n->leaf == NB_LEAF_STATE)
            z->states = nb_sat_add(z->states, size);
        else if (n->leaf == NB_LEAF_LABELS)
            z->labels = nb_sat_add(z->labels, size);
        else
            z->arena = nb_sat_add(z->arena, nb_sat_mul(round_up(size), n->requires_grad ? 2 : 1));
        z->arena = nb_sat_add(z->arena, round_up(scratch));
        /* A product's result has the batch's rows, or (a weight gradient) as many as a layer
         * has units: the width of a batched node. */
        if (n->batched && n->width > z->rows)
            z->rows = n->width;
    }
    z->nodes = (uint64_t)g->n_nodes;
}

void nb_graph_memory_parts(const nb_graph_sizes *z, nb_memory_part parts[2])
{
    /* params and their gradients, states; labels (int32, the size of a float) and the arena */
    parts[0] = (nb_memory_part){"weights and gradients",
                                nb_sat_mul(nb_sat_add(nb_sat_mul(z->params, 2), z->states),
                                           sizeof(float)),
                                0};
    parts[1] = (nb_memory_part){"activations", nb_sat_mul(nb_sat_add(z->labels, z->arena),
                                                          sizeof(float)),
                                1};
}

int nb_graph_compile(nb_graph *g, int max_batch, nb_error *err)
{
    if (!g)
        return nb_fail(err, "no graph");
    if (g->failed)
        return nb_fail(err, "%s", g->error.msg);
    if (g->compiled)
        return nb_fail(err, "the graph is compiled already");
    if (max_batch < 1)
        return nb_fail(err, "the largest batch must be at least 1, not %d", max_batch);

    /* The sizes come from options and files (layer widths, the batch size), so they are
     * checked against what the process may use, with what running the graph will add
     * (memcheck.h): a graph that cannot fit fails here with its size rather than in the
     * allocator, or in OpenBLAS's. */
    nb_graph_sizes z;
    nb_graph_measure(g, max_batch, &z);
    char what[64];
    snprintf(what, sizeof what, "the graph for batches of %d", max_batch);
    nb_memory_part parts[2];
    nb_graph_memory_parts(&z, parts);
    if (nb_check_run_memory(what, parts, 2, z.rows, err) != 0)
        return -1;
    uint64_t n_params = z.params, n_states = z.states, arena = z.arena;
    uint64_t total = nb_sat_add(parts[0].bytes, parts[1].bytes) / sizeof(float);

    g->params = calloc(n_params ? n_params : 1, sizeof(float));
    g->grads = malloc((n_params ? n_params : 1) * sizeof(float));
    g->states = calloc(n_states ? n_states : 1, sizeof(float));
    if (posix_memalign(&g->arena, 64, (arena ? arena : 1) * sizeof(float)) != 0)
        g->arena = NULL;
    if (!g->params || !g->grads || !g->states || !g->arena)
        return nb_fail(err, "out of memory: the graph needs %llu MB for batches of %d",
                       (unsigned long long)(total * sizeof(float) >> 20), max_batch);
    /* Zeroed by writing, not left to the kernel's zero pages: what the check counted is then
     * resident, and a cgroup's usage (which counts only what is) says so to the next check. */
    memset(g->grads, 0, n_params * sizeof(float));
    memset(g->arena, 0, arena * sizeof(float));
    g->arena_bytes = arena * sizeof(float);

    float *p = g->params, *gr = g->grads, *s = g->states, *a = g->arena;
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node *n = g->nodes[i];
        size_t size = nb_node_size(n, max_batch);
        if (n->view_of) {
            n->value = n->view_of->value;
            n->grad = n->requires_grad ? n->view_of->grad : NULL;
        } else if (n->leaf == NB_LEAF_PARAM) {
            n->value = p;
            n->grad = gr;
            p += size;
            gr += size;
        } else if (n->leaf == NB_LEAF_STATE) {
            n->value = s;
            s += size;
        } else if (n->leaf == NB_LEAF_LABELS) {
            n->labels = calloc((size_t)max_batch, sizeof(int32_t));
            if (!n->labels)
                return nb_fail(err, "out of memory");
        } else {
            n->value = a;
            a += round_up(size);
            if (n->requires_grad) {
                n->grad = a;
                a += round_up(size);
            }
        }
        if (n->leaf == NB_LEAF_PARAM || n->leaf == NB_LEAF_STATE)
            for (size_t j = 0; j < size; j++)
                n->value[j] = n->init_fill;
        if (n->scratch_per_row || n->scratch_fixed) {
            n->scratch = a;
            a += round_up(n->scratch_per_row * (size_t)max_batch + n->scratch_fixed);
        }
        if (n->batched)
            n->shape[0] = max_batch;
    }
    g->planned_root = -1;
    g->n_params = n_params;
    g->n_states = n_states;
    g->max_batch = max_batch;
    g->batch = max_batch;
    g->compiled = 1;
    return 0;
}

int nb_graph_max_batch(const nb_graph *g) { return g->max_batch; }

float *nb_graph_params(nb_graph *g, size_t *count)
{
    if (count)
        *count = g->n_params;
    return g->params;
}

int nb_graph_reserve_spare_params(nb_graph *g, nb_error *err)
{
    if (!g->compiled)
        return nb_fail(err, "compile the graph before reserving a second parameter buffer");
    if (g->spare_params)
        return 0;
    if (nb_check_memory(nb_sat_mul(g->n_params, sizeof(float)), "a second parameter buffer",
                        err) != 0)
        return -1;
    g->spare_params = malloc((g->n_params ? g->n_params : 1) * sizeof(float));
    if (!g->spare_params)
        return nb_fail(err, "out of memory for a second parameter buffer");
    memcpy(g->spare_params, g->params, g->n_params * sizeof(float));
    return 0;
}

float *nb_graph_spare_params(nb_graph *g) { return g->spare_params; }

void nb_graph_swap_params(nb_graph *g)
{
    if (!g->spare_params)
        return;
    float *old = g->params;
    g->params = g->spare_params;
    g->spare_params = old;
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node *n = g->nodes[i];
        if (n->leaf == NB_LEAF_PARAM)
            n->value = g->params + (n->value - old);
    }
}

float *nb_graph_grads(nb_graph *g, size_t *count)
{
    if (count)
        *count = g->n_params;
    return g->grads;
}

void nb_graph_set_training(nb_graph *g, int training) { g->training = training != 0; }

void nb_graph_set_step(nb_graph *g, uint64_t seed, int64_t step, int64_t row0)
{
    g->next_step = (nb_graph_step){seed, step, row0};
}

/* ---- running the graph ---- */

/* One pool job per pass: every thread walks the ops in order, each computing its share, with
 * a barrier after each op. */
typedef struct pass {
    nb_graph *g;
    int batch;
} pass;

static void forward_job(const nb_exec *ex, void *arg)
{
    const pass *p = arg;
    for (int i = 0; i < p->g->n_nodes; i++) {
        nb_node *n = p->g->nodes[i];
        if (n->op && n->op->forward) {
            n->op->forward(n, p->batch, ex);
            nb_barrier(ex);
        }
    }
}

void nb_graph_forward(nb_graph *g, int batch)
{
    /* A rank of a data-parallel step may hold no rows of the global batch; it runs the pass
     * all the same, for the collectives in it. */
    int least = g->dp.global_batch > 0 ? 0 : 1;
    if (batch < least)
        batch = least;
    if (batch > g->max_batch)
        batch = g->max_batch;
    g->batch = batch;
    g->step = g->next_step;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->batched)
            g->nodes[i]->shape[0] = batch;
    pass p = {g, batch};
    nb_parallel(forward_job, &p);
}

void nb_graph_dp_sum(nb_graph *g, double *data, size_t n)
{
    const nb_comm *c = g->dp.bn_comm;
    if (!c || g->dp.failed)
        return;
    if (c->sum_doubles(c->user, data, n, &g->dp.error) != 0) {
        if (!g->dp.error.msg[0])
            nb_fail(&g->dp.error, "summing batch-norm statistics over the ranks failed");
        g->dp.failed = 1;
    }
}

/* This thread's share of a buffer set to one value. */
static void fill_share(const nb_exec *ex, float *x, size_t n, float value)
{
    size_t begin, end;
    nb_split(ex, n, 16, &begin, &end);
    for (size_t i = begin; i < end; i++)
        x[i] = value;
}

static void backward_job(const nb_exec *ex, void *arg)
{
    const pass *p = arg;
    nb_graph *g = p->g;
    int root = g->planned_root;
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node *n = g->nodes[i];
        if (i == root)
            fill_share(ex, n->grad, nb_node_size(n, p->batch), 1.0f);
        else if (n->zero_grad)
            fill_share(ex, n->grad, nb_node_size(n, p->batch), 0.0f);
    }
    nb_barrier(ex);
    for (int i = root; i >= 0; i--) {
        nb_node *n = g->nodes[i];
        if (n->op && n->op->backward && n->requires_grad) {
            n->op->backward(n, p->batch, ex);
            nb_barrier(ex);
        }
    }
}

void nb_graph_backward(nb_graph *g, nb_node *loss)
{
    if (!loss || !loss->grad || loss->graph != g) {
        memset(g->grads, 0, g->n_params * sizeof(float));
        return;
    }
    if (g->planned_root < 0 || g->nodes[g->planned_root] != loss) {
        int root = 0;
        while (g->nodes[root] != loss)
            root++;
        plan_gradients(g, root);
    }
    pass p = {g, g->batch};
    nb_parallel(backward_job, &p);
}

/* ---- access ---- */

size_t nb_tensor_numel(const nb_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= (size_t)t->shape[d];
    return n;
}

static nb_tensor view(const nb_node *n, float *data)
{
    nb_tensor t = {n->ndim, {0}, data};
    memcpy(t.shape, n->shape, sizeof t.shape);
    return t;
}

nb_tensor nb_node_value(const nb_node *n) { return view(n, n->value); }
nb_tensor nb_node_grad(const nb_node *n) { return view(n, n->grad); }
int32_t *nb_node_labels(const nb_node *n) { return n->labels; }
float nb_node_scalar(const nb_node *n) { return n->value ? n->value[0] : NAN; }

int nb_graph_named_count(const nb_graph *g) { return g->n_named; }

nb_named nb_graph_named(const nb_graph *g, int i) { return g->named[i]; }

nb_named *nb_graph_find(const nb_graph *g, const char *name, nb_named *out)
{
    for (int i = 0; i < g->n_named; i++)
        if (strcmp(g->named[i].name, name) == 0) {
            *out = g->named[i];
            return out;
        }
    return NULL;
}
