/* Data-parallel training (nb_train with a communicator), without MPI: each "rank" is a thread
 * calling nb_train on its own model, and the communicator is a barrier and shared buffers,
 * summing in rank order so that every rank gets the same bits. The checks:
 *   - 2 and 3 ranks equal one process with the same global batch after 20 steps (Adam and
 *     momentum; batches that do not divide evenly, a partial last batch), every tensor within
 *     the tolerance below, and the ranks bitwise equal to each other after every step;
 *   - the same with synchronized batch norm (weights and running statistics);
 *   - per-rank batch norm: the ranks stay equal, with rank 0's running statistics, and the
 *     result differs from one process;
 *   - a global batch smaller than the ranks (ranks without rows), batch size 1, full batch;
 *   - a NaN on one rank stops every rank at the step where one process stops, and so does a
 *     callback's stop or the stop flag on one rank;
 *   - a run resumed from a checkpoint equals the same run uninterrupted, bit for bit;
 *   - one rank equals no communicator, bit for bit, with no collective called;
 *   - ranks that disagree about the configuration, or a failing collective, fail together.
 * Every run also checks that all ranks called the same collectives with the same sizes. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "nabla.h"
#include "core/graph_internal.h"   /* g->dp, for synchronized BatchNorm2d at the op level */
#include "model_spec_for_tests.h"

/* Parameters and running statistics of a run across ranks must match one process's within
 *     |a - b| <= REL_TOL * max(|a|, |b|) + ABS_TOL
 * (the sums over the batch are added in another order: per rank, then across ranks). */
#define REL_TOL 1e-5
#define ABS_TOL 1e-7

enum { MAX_RANKS = 3, MAX_STEPS = 64, MAX_EPOCHS = 32 };

/* ---- the in-process communicator ---- */

enum { OP_SUM_FLOATS = 1, OP_SUM_DOUBLES, OP_BROADCAST };

typedef struct hub {
    int size;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int arrived;
    unsigned generation;
    int broken;                  /* a barrier timed out: every later call fails */
    int op[MAX_RANKS];           /* the collective each rank is in, and its size */
    size_t count[MAX_RANKS];
    void *data[MAX_RANKS];
    long calls[MAX_RANKS];
    long fail_at;                /* the call (1-based) that fails on every rank; 0: none */
    int mismatched;              /* ranks called different collectives */
} hub;

typedef struct rank_comm {
    hub *hub;
    int rank;
} rank_comm;

static void hub_init(hub *h, int size)
{
    memset(h, 0, sizeof *h);
    h->size = size;
    pthread_mutex_init(&h->mutex, NULL);
    pthread_cond_init(&h->cond, NULL);
}

static void hub_destroy(hub *h)
{
    pthread_mutex_destroy(&h->mutex);
    pthread_cond_destroy(&h->cond);
}

/* Every rank waits for all; gives up after 30 s (a rank that stopped calling), so that a
 * wrong count of collectives fails the test rather than hanging it. */
static int hub_barrier(hub *h)
{
    pthread_mutex_lock(&h->mutex);
    if (h->broken) {
        pthread_mutex_unlock(&h->mutex);
        return -1;
    }
    unsigned gen = h->generation;
    if (++h->arrived == h->size) {
        h->arrived = 0;
        h->generation++;
        pthread_cond_broadcast(&h->cond);
        pthread_mutex_unlock(&h->mutex);
        return 0;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    while (h->generation == gen && !h->broken)
        if (pthread_cond_timedwait(&h->cond, &h->mutex, &deadline) == ETIMEDOUT) {
            h->broken = 1;
            pthread_cond_broadcast(&h->cond);
        }
    int rc = h->generation == gen ? -1 : 0;
    pthread_mutex_unlock(&h->mutex);
    return rc;
}

static size_t op_bytes(int op, size_t n)
{
    return op == OP_SUM_FLOATS ? n * sizeof(float) : op == OP_SUM_DOUBLES ? n * sizeof(double) : n;
}

/* Publish, barrier, each rank computes the result from every rank's input into its own
 * buffer (all in rank order, so every rank gets the same bits), barrier, copy it in. */
static int collective(void *user, int op, void *data, size_t n, nb_error *err)
{
    rank_comm *rc = user;
    hub *h = rc->hub;
    int r = rc->rank;
    h->op[r] = op;
    h->count[r] = n;
    h->data[r] = data;
    long call = ++h->calls[r];
    if (hub_barrier(h) != 0)
        return nb_fail(err, "rank %d: the other ranks did not come", r);
    int same = 1;
    for (int q = 0; q < h->size; q++)
        same &= h->op[q] == op && h->count[q] == n;
    size_t bytes = op_bytes(op, n);
    void *result = same ? malloc(bytes ? bytes : 1) : NULL;
    if (result) {
        if (op == OP_BROADCAST) {
            memcpy(result, h->data[0], bytes);
        } else if (op == OP_SUM_FLOATS) {
            float *out = result;
            for (size_t i = 0; i < n; i++) {
                float s = ((const float *)h->data[0])[i];
                for (int q = 1; q < h->size; q++)
                    s += ((const float *)h->data[q])[i];
                out[i] = s;
            }
        } else {
            double *out = result;
            for (size_t i = 0; i < n; i++) {
                double s = ((const double *)h->data[0])[i];
                for (int q = 1; q < h->size; q++)
                    s += ((const double *)h->data[q])[i];
                out[i] = s;
            }
        }
    }
    if (hub_barrier(h) != 0) {
        free(result);
        return nb_fail(err, "rank %d: the other ranks did not come", r);
    }
    if (!same) {
        pthread_mutex_lock(&h->mutex);
        h->mismatched = 1;
        pthread_mutex_unlock(&h->mutex);
        return nb_fail(err, "the ranks called different collectives");
    }
    if (!result)
        return nb_fail(err, "out of memory");
    memcpy(data, result, bytes);
    free(result);
    if (h->fail_at && call == h->fail_at)
        return nb_fail(err, "injected failure at call %ld", call);
    return 0;
}

static int sum_floats(void *user, float *data, size_t n, nb_error *err)
{
    return collective(user, OP_SUM_FLOATS, data, n, err);
}

static int sum_doubles(void *user, double *data, size_t n, nb_error *err)
{
    return collective(user, OP_SUM_DOUBLES, data, n, err);
}

static int broadcast(void *user, void *data, size_t n, nb_error *err)
{
    return collective(user, OP_BROADCAST, data, n, err);
}

/* ---- runs ---- */

typedef struct setup {
    int batchnorm, sync, batch, epochs, size;
    int64_t max_steps, checkpoint_every;
    nb_optimizer_kind kind;
    float lr;
    int dropout_model;   /* the model with dropout of rate `dropout` after its hidden layers */
    float dropout;
} setup;

/* A run: one process (comm NULL) or one rank of several. */
typedef struct run {
    nb_model model;
    nb_train_config cfg;
    rank_comm rc;
    nb_comm comm;
    const nb_dataset *train, *dev, *test;
    nb_train_result res;
    nb_error err;
    int rc_train;
    uint64_t hash[MAX_STEPS];        /* of the weights and statistics after each step */
    int64_t n_hash;
    nb_epoch_metrics metrics[MAX_EPOCHS];
    int n_metrics;
    /* checkpoint capture */
    int64_t capture_at;              /* the step whose checkpoint to keep (0: none) */
    nb_train_state saved;
    int have_saved;
    float *saved_tensors;
    int64_t saved_counters[NB_MAX_LAYERS];
    /* stopping one rank: on_batch asks to stop, or the stop flag goes up, after this step */
    int64_t ask_stop_at, flag_stop_at;
    volatile sig_atomic_t stop_flag;
    int checkpoints;
} run;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

/* A hash of every named tensor and counter of the model. */
static uint64_t model_hash(const nb_model *m)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < nb_graph_named_count(m->graph); i++) {
        nb_named t = nb_graph_named(m->graph, i);
        if (t.kind == NB_KIND_COUNTER) {
            h = fnv(h, t.counter, sizeof *t.counter);
        } else {
            nb_tensor v = nb_node_value(t.node);
            h = fnv(h, v.data, nb_tensor_numel(&v) * sizeof(float));
        }
    }
    return h;
}

static int on_batch(const nb_progress *p, void *user)
{
    (void)p;
    run *r = user;
    if (r->n_hash < MAX_STEPS)
        r->hash[r->n_hash++] = model_hash(&r->model);
    if (r->flag_stop_at && r->n_hash == r->flag_stop_at)
        r->stop_flag = 1;
    return r->ask_stop_at && r->n_hash == r->ask_stop_at;
}

static int on_epoch(const nb_epoch_metrics *m, void *user)
{
    run *r = user;
    if (r->n_metrics < MAX_EPOCHS)
        r->metrics[r->n_metrics++] = *m;
    return 0;
}

/* Every float of every named tensor, in order, into buf (NULL: just count). */
static size_t model_floats(const nb_model *m, float *buf)
{
    size_t k = 0;
    for (int i = 0; i < nb_graph_named_count(m->graph); i++) {
        nb_named t = nb_graph_named(m->graph, i);
        if (t.kind == NB_KIND_COUNTER)
            continue;
        nb_tensor v = nb_node_value(t.node);
        size_t n = nb_tensor_numel(&v);
        if (buf)
            memcpy(buf + k, v.data, n * sizeof(float));
        k += n;
    }
    return k;
}

static void model_set_floats(nb_model *m, const float *buf)
{
    size_t k = 0;
    for (int i = 0; i < nb_graph_named_count(m->graph); i++) {
        nb_named t = nb_graph_named(m->graph, i);
        if (t.kind == NB_KIND_COUNTER)
            continue;
        nb_tensor v = nb_node_value(t.node);
        size_t n = nb_tensor_numel(&v);
        memcpy(v.data, buf + k, n * sizeof(float));
        k += n;
    }
}

static void model_counters(const nb_model *m, int64_t *out)
{
    for (int i = 0, k = 0; i < nb_graph_named_count(m->graph); i++) {
        nb_named t = nb_graph_named(m->graph, i);
        if (t.kind == NB_KIND_COUNTER)
            out[k++] = *t.counter;
    }
}

static void model_set_counters(nb_model *m, const int64_t *in)
{
    for (int i = 0, k = 0; i < nb_graph_named_count(m->graph); i++) {
        nb_named t = nb_graph_named(m->graph, i);
        if (t.kind == NB_KIND_COUNTER)
            *t.counter = in[k++];
    }
}

/* Keeps a deep copy of the state and the model at step capture_at (what a checkpoint file
 * holds). */
static int on_checkpoint(const nb_train_state *s, void *user, nb_error *err)
{
    run *r = user;
    r->checkpoints++;
    if (r->capture_at == 0 || s->steps != r->capture_at || r->have_saved)
        return 0;
    size_t n_params;
    nb_graph_params(r->model.graph, &n_params);
    if (nb_train_state_init(&r->saved, &s->opt.cfg, n_params, s->n, err) != 0)
        return -1;
    int32_t *order = r->saved.order;
    nb_optimizer opt = r->saved.opt;
    r->saved = *s;
    r->saved.order = order;
    r->saved.opt = opt;
    r->saved.opt.t = s->opt.t;
    memcpy(order, s->order, (size_t)s->n * sizeof *order);
    if (opt.v)
        memcpy(opt.v, s->opt.v, n_params * sizeof(float));
    if (opt.s)
        memcpy(opt.s, s->opt.s, n_params * sizeof(float));
    r->saved_tensors = malloc(model_floats(&r->model, NULL) * sizeof(float));
    if (!r->saved_tensors)
        return nb_fail(err, "out of memory");
    model_floats(&r->model, r->saved_tensors);
    model_counters(&r->model, r->saved_counters);
    r->have_saved = 1;
    return 0;
}

static void run_free(run *r)
{
    nb_model_free(&r->model);
    if (r->have_saved)
        nb_train_state_free(&r->saved);
    free(r->saved_tensors);
}

typedef struct sets {
    nb_dataset train, dev, test;
} sets;

static void data_make(sets *d, int n)
{
    nb_error err;
    memset(d, 0, sizeof *d);
    assert_int_equal(nb_make_synthetic("spirals", n, 0.2f, 11, &d->train, &err), 0);
    assert_int_equal(nb_make_synthetic("spirals", 101, 0.2f, 12, &d->dev, &err), 0);
    assert_int_equal(nb_make_synthetic("spirals", 67, 0.2f, 13, &d->test, &err), 0);
}

static void data_free(sets *d)
{
    nb_dataset_free(&d->train);
    nb_dataset_free(&d->dev);
    nb_dataset_free(&d->test);
}

/* The model of the runs with dropout, built op by op: 2 -> linear(32), relu, dropout(p) ->
 * linear(16), relu, dropout(p) -> linear(3), weights drawn from init_seed. */
static void dropout_model_build(nb_model *m, float p, int max_batch, uint64_t init_seed)
{
    char text[128];
    snprintf(text, sizeof text, "linear(32),relu,dropout(%g),linear(16),relu,dropout(%g),linear",
             (double)p, (double)p);
    nb_model_spec spec;
    nb_error err;
    if (nb_model_spec_parse(&spec, text, nb_shape_vector(2), 3, &err) != 0 ||
        nb_model_build(m, &spec, max_batch, init_seed, &err) != 0)
        fail_msg("%s", err.msg);
    /* Larger weights than the model's own initialization, biases too: dropout then matters. */
    nb_rng rng;
    nb_rng_seed(&rng, init_seed);
    size_t n;
    float *params = nb_graph_params(m->graph, &n);
    for (size_t i = 0; i < n; i++)
        params[i] = (float)(0.5 * nb_rng_normal(&rng));
}

/* A run's model and configuration; init_seed chooses the initial weights. */
static void run_init(run *r, const setup *s, const sets *d, int max_batch, uint64_t init_seed)
{
    memset(r, 0, sizeof *r);
    nb_model_spec spec = mlp_spec((nb_mlp){.inputs = 2, .classes = 3, .n_hidden = 2,
                                           .hidden = {32, 16}, .activation = NB_RELU,
                                           .batchnorm = s->batchnorm});
    if (s->dropout_model)
        dropout_model_build(&r->model, s->dropout, max_batch, init_seed);
    else
        assert_int_equal(nb_model_build(&r->model, &spec, max_batch, init_seed, &r->err), 0);
    nb_train_config cfg = {
        .optim = {.kind = s->kind, .beta = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
        .schedule = {.kind = NB_DECAY_NONE, .lr = s->lr, .epochs = s->epochs},
        .batch_size = s->batch, .epochs = s->epochs, .max_steps = s->max_steps, .shuffle = 1,
        .seed = 5, .checkpoint_every = s->checkpoint_every,
        .on_batch = on_batch, .on_epoch = on_epoch, .on_checkpoint = on_checkpoint,
        .sync_batchnorm = s->sync, .user = r,
    };
    cfg.stop = &r->stop_flag;
    r->cfg = cfg;
    r->train = &d->train;
    r->dev = &d->dev;
    r->test = &d->test;
}

static void *rank_main(void *arg)
{
    run *r = arg;
    r->rc_train = nb_train(&r->model, r->train, r->dev, r->test, &r->cfg, &r->res, &r->err);
    return NULL;
}

/* The ranks of a run, each on a thread; ranks other than 0 start from other weights (rank 0's
 * are broadcast). */
static void ranks_init(run *ranks, hub *h, const setup *s, const sets *d)
{
    hub_init(h, s->size);
    int max_batch = s->batch > 0 ? s->batch : d->train.n;
    for (int r = 0; r < s->size; r++) {
        run_init(&ranks[r], s, d, max_batch, 7 + 1000 * (uint64_t)r);
        ranks[r].rc = (rank_comm){h, r};
        ranks[r].comm = (nb_comm){r, s->size, &ranks[r].rc, sum_floats, sum_doubles, broadcast};
        ranks[r].cfg.comm = &ranks[r].comm;
    }
}

static void ranks_train(run *ranks, int size)
{
    pthread_t threads[MAX_RANKS];
    for (int r = 0; r < size; r++)
        assert_int_equal(pthread_create(&threads[r], NULL, rank_main, &ranks[r]), 0);
    for (int r = 0; r < size; r++)
        pthread_join(threads[r], NULL);
}

/* Every rank's nb_train succeeded, and the ranks made the same collective calls. */
static void assert_all_trained(const run *ranks, const hub *h, int size)
{
    for (int r = 0; r < size; r++) {
        if (ranks[r].rc_train != 0)
            fail_msg("rank %d: %s", r, ranks[r].err.msg);
    }
    assert_false(h->mismatched);
}

static void ranks_free(run *ranks, hub *h, int size)
{
    for (int r = 0; r < size; r++)
        run_free(&ranks[r]);
    hub_destroy(h);
}

static void reference_train(run *ref, const setup *s, const sets *d)
{
    run_init(ref, s, d, s->batch > 0 ? s->batch : d->train.n, 7);
    rank_main(ref);
    assert_int_equal(ref->rc_train, 0);
}

/* Every rank equals rank 0 bit for bit: the weights, statistics and counters after every
 * step, the results and the metrics. */
static void assert_ranks_equal(const run *ranks, int size)
{
    size_t n = model_floats(&ranks[0].model, NULL);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    model_floats(&ranks[0].model, a);
    int64_t ca[NB_MAX_LAYERS] = {0}, cb[NB_MAX_LAYERS] = {0};
    model_counters(&ranks[0].model, ca);
    for (int r = 1; r < size; r++) {
        assert_int_equal(ranks[r].rc_train, ranks[0].rc_train);
        model_floats(&ranks[r].model, b);
        assert_memory_equal(a, b, n * sizeof *a);
        model_counters(&ranks[r].model, cb);
        assert_memory_equal(ca, cb, sizeof ca);
        assert_int_equal(ranks[r].n_hash, ranks[0].n_hash);
        for (int64_t k = 0; k < ranks[0].n_hash; k++)
            assert_true(ranks[r].hash[k] == ranks[0].hash[k]);
        assert_int_equal(ranks[r].res.steps, ranks[0].res.steps);
        assert_int_equal(ranks[r].res.epochs, ranks[0].res.epochs);
        assert_int_equal(ranks[r].res.samples, ranks[0].res.samples);
        assert_int_equal(ranks[r].res.diverged, ranks[0].res.diverged);
        assert_int_equal(ranks[r].res.diverged_epoch, ranks[0].res.diverged_epoch);
        assert_int_equal(ranks[r].res.diverged_step, ranks[0].res.diverged_step);
        assert_true(ranks[r].res.train_loss == ranks[0].res.train_loss);
        assert_int_equal(ranks[r].n_metrics, ranks[0].n_metrics);
        /* Bit for bit (a NaN too: see the NaN guard's test). */
        for (int e = 0; e < ranks[0].n_metrics; e++) {
            const nb_epoch_metrics *x = &ranks[0].metrics[e], *y = &ranks[r].metrics[e];
            assert_memory_equal(&x->train_loss, &y->train_loss, sizeof x->train_loss);
            assert_memory_equal(&x->train_accuracy, &y->train_accuracy, sizeof(double));
            assert_memory_equal(&x->dev.loss, &y->dev.loss, sizeof(double));
            assert_memory_equal(&x->dev.accuracy, &y->dev.accuracy, sizeof(double));
            assert_memory_equal(&x->test.loss, &y->test.loss, sizeof(double));
            assert_memory_equal(&x->test.accuracy, &y->test.accuracy, sizeof(double));
        }
    }
    free(a);
    free(b);
}

/* The largest |a-b| / (REL_TOL*max(|a|,|b|) + ABS_TOL) over every tensor (<= 1: within the
 * tolerance), and in *rel the largest relative difference |a-b| / max(|a|,|b|) of the values
 * of magnitude 1e-3 or more. */
static double model_distance(const nb_model *x, const nb_model *y, double *rel)
{
    size_t n = model_floats(x, NULL);
    assert_int_equal(model_floats(y, NULL), n);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    model_floats(x, a);
    model_floats(y, b);
    double worst = 0.0;
    *rel = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {   /* statistics a NaN loss left behind */
            worst = isnan(a[i]) && isnan(b[i]) ? worst : INFINITY;
            continue;
        }
        double big = fmax(fabs((double)a[i]), fabs((double)b[i]));
        double diff = fabs((double)a[i] - (double)b[i]);
        worst = fmax(worst, diff / (REL_TOL * big + ABS_TOL));
        if (big >= 1e-3)
            *rel = fmax(*rel, diff / big);
    }
    free(a);
    free(b);
    return worst;
}

static int print_measurements;

/* Within rel of each other (relative to b), or both NaN. */
static int close(double a, double b, double rel)
{
    return (isnan(a) && isnan(b)) || fabs(a - b) <= rel * fabs(b);
}

/* The ranks equal each other exactly and one process within the tolerance, metrics too. */
static void assert_matches_reference(const run *ranks, const run *ref, int size, const char *what)
{
    assert_ranks_equal(ranks, size);
    double rel;
    double worst = model_distance(&ranks[0].model, &ref->model, &rel);
    if (print_measurements)
        printf("  %-44s max relative difference %.3g, %.0f%% of the tolerance\n", what, rel,
               100 * worst);
    assert_true(worst <= 1.0);
    int64_t ca[NB_MAX_LAYERS] = {0}, cb[NB_MAX_LAYERS] = {0};
    model_counters(&ranks[0].model, ca);
    model_counters(&ref->model, cb);
    assert_memory_equal(ca, cb, sizeof ca);
    assert_int_equal(ranks[0].res.steps, ref->res.steps);
    assert_int_equal(ranks[0].res.epochs, ref->res.epochs);
    assert_int_equal(ranks[0].res.samples, ref->res.samples);
    assert_int_equal(ranks[0].res.diverged, ref->res.diverged);
    assert_int_equal(ranks[0].res.diverged_epoch, ref->res.diverged_epoch);
    assert_int_equal(ranks[0].res.diverged_step, ref->res.diverged_step);
    assert_int_equal(ranks[0].n_hash, ref->n_hash);
    assert_int_equal(ranks[0].n_metrics, ref->n_metrics);
    for (int e = 0; e < ref->n_metrics; e++) {
        const nb_epoch_metrics *x = &ranks[0].metrics[e], *y = &ref->metrics[e];
        assert_true(close(x->train_loss, y->train_loss, 1e-5));
        assert_true(close(x->dev.loss, y->dev.loss, 1e-5));
        assert_true(close(x->test.loss, y->test.loss, 1e-5));
        /* A prediction may flip where two logits are within rounding of each other. */
        assert_true(close(x->train_accuracy, y->train_accuracy, 0.01));
        assert_true(close(x->dev.accuracy, y->dev.accuracy, 1.5 / x->dev.n));
        assert_true(close(x->test.accuracy, y->test.accuracy, 1.5 / x->test.n));
        assert_int_equal(x->dev.n, y->dev.n);
    }
}

/* Trains s on `size` ranks and on one process and compares them. */
static void check_against_one_process(const setup *s, int n_train, const char *what)
{
    sets d;
    data_make(&d, n_train);
    run ref;
    reference_train(&ref, s, &d);
    run ranks[MAX_RANKS];
    hub h;
    ranks_init(ranks, &h, s, &d);
    ranks_train(ranks, s->size);
    assert_all_trained(ranks, &h, s->size);
    assert_matches_reference(ranks, &ref, s->size, what);
    ranks_free(ranks, &h, s->size);
    run_free(&ref);
    data_free(&d);
}

/* 230 samples in batches of 45: 5 full batches and one of 5 an epoch; 20 steps end in the
 * middle of the fourth epoch. 45 rows are 22 + 23 on 2 ranks, 15 each on 3; the last batch's
 * 5 are 2 + 3 and 1 + 2 + 2. */
static void test_no_batchnorm_equals_one_process(void **state)
{
    (void)state;
    for (int size = 2; size <= 3; size++) {
        setup adam = {.batch = 45, .epochs = 10, .max_steps = 20, .size = size,
                      .kind = NB_ADAM, .lr = 0.01f};
        setup momentum = adam;
        momentum.kind = NB_MOMENTUM;
        momentum.lr = 0.1f;
        char what[64];
        snprintf(what, sizeof what, "adam, %d ranks", size);
        check_against_one_process(&adam, 230, what);
        snprintf(what, sizeof what, "momentum, %d ranks", size);
        check_against_one_process(&momentum, 230, what);
    }
    /* 50 over 3 ranks: 16 + 17 + 17. */
    setup uneven = {.batch = 50, .epochs = 10, .max_steps = 20, .size = 3, .kind = NB_ADAM,
                    .lr = 0.01f};
    check_against_one_process(&uneven, 230, "adam, batch 50 over 3 ranks");
}

static void test_sync_batchnorm_equals_one_process(void **state)
{
    (void)state;
    for (int size = 2; size <= 3; size++) {
        setup adam = {.batchnorm = 1, .sync = 1, .batch = 45, .epochs = 10, .max_steps = 20,
                      .size = size, .kind = NB_ADAM, .lr = 0.01f};
        setup momentum = adam;
        momentum.kind = NB_MOMENTUM;
        momentum.lr = 0.1f;
        char what[64];
        snprintf(what, sizeof what, "sync bn, adam, %d ranks", size);
        check_against_one_process(&adam, 230, what);
        snprintf(what, sizeof what, "sync bn, momentum, %d ranks", size);
        check_against_one_process(&momentum, 230, what);
    }
}

/* Per-rank statistics normalize each shard on its own: the ranks agree with each other (rank
 * 0's running statistics), but not with one process. */
static void test_per_rank_batchnorm_differs_from_one_process(void **state)
{
    (void)state;
    sets d;
    data_make(&d, 230);
    setup s = {.batchnorm = 1, .sync = 0, .batch = 45, .epochs = 10, .max_steps = 20,
               .size = 2, .kind = NB_ADAM, .lr = 0.01f};
    run ref;
    reference_train(&ref, &s, &d);
    run ranks[MAX_RANKS];
    hub h;
    ranks_init(ranks, &h, &s, &d);
    ranks_train(ranks, s.size);
    assert_all_trained(ranks, &h, s.size);
    assert_ranks_equal(ranks, s.size);
    assert_int_equal(ranks[0].res.steps, 20);
    double rel;
    model_distance(&ranks[0].model, &ref.model, &rel);
    if (print_measurements)
        printf("  %-44s max relative difference %.3g (must be large)\n", "per-rank bn, adam",
               rel);
    assert_true(rel > 1e-2);
    /* Still training: the loss went down. */
    assert_true(ranks[0].metrics[ranks[0].n_metrics - 1].train_loss <
                ranks[0].metrics[0].train_loss);
    ranks_free(ranks, &h, s.size);
    run_free(&ref);
    data_free(&d);
}

/* Per-rank batch norm keeps rank 0's running statistics: with 2 rows over 3 ranks rank 0
 * never has a row, so they stay as they started (mean 0, variance 1) on every rank, while
 * the counters count every step. */
static void test_per_rank_batchnorm_keeps_rank_0s_statistics(void **state)
{
    (void)state;
    sets d;
    data_make(&d, 230);
    setup s = {.batchnorm = 1, .sync = 0, .batch = 2, .epochs = 10, .max_steps = 20,
               .size = 3, .kind = NB_MOMENTUM, .lr = 0.1f};
    run ranks[MAX_RANKS];
    hub h;
    ranks_init(ranks, &h, &s, &d);
    ranks_train(ranks, s.size);
    assert_all_trained(ranks, &h, s.size);
    assert_ranks_equal(ranks, s.size);
    nb_graph *g = ranks[2].model.graph;
    int checked = 0;
    for (int i = 0; i < nb_graph_named_count(g); i++) {
        nb_named t = nb_graph_named(g, i);
        if (t.kind == NB_KIND_COUNTER) {
            assert_int_equal(*t.counter, 20);
            continue;
        }
        int is_mean = strstr(t.name, "running_mean") != NULL;
        if (!is_mean && !strstr(t.name, "running_var"))
            continue;
        nb_tensor v = nb_node_value(t.node);
        for (size_t j = 0; j < nb_tensor_numel(&v); j++)
            assert_true(v.data[j] == (is_mean ? 0.0f : 1.0f));
        checked++;
    }
    assert_int_equal(checked, 4);
    /* The weights did train. */
    run fresh;
    run_init(&fresh, &s, &d, 2, 7);
    assert_true(model_hash(&fresh.model) != model_hash(&ranks[0].model));
    run_free(&fresh);
    ranks_free(ranks, &h, s.size);
    data_free(&d);
}

/* Fewer rows than ranks: 2 rows over 3 ranks (rank 0 has none), and stochastic gradient
 * descent over 2 ranks (one of them idle every step); with and without synchronized batch
 * norm. The full batch too. */
static void test_small_and_full_batches(void **state)
{
    (void)state;
    setup two = {.batch = 2, .epochs = 10, .max_steps = 20, .size = 3, .kind = NB_ADAM,
                 .lr = 0.01f};
    check_against_one_process(&two, 230, "batch 2 over 3 ranks");
    /* Batch norm over 2 rows makes xhat = +-1 whatever the input, so the gradient below it is
     * 0 in exact arithmetic and rounding noise in float; Adam would scale that noise up to
     * steps of lr, different noise in each run. Momentum keeps noise noise-sized. */
    two.batchnorm = two.sync = 1;
    two.kind = NB_MOMENTUM;
    two.lr = 0.1f;
    check_against_one_process(&two, 230, "sync bn, momentum, batch 2 over 3 ranks");
    setup one = {.batch = 1, .epochs = 10, .max_steps = 20, .size = 2, .kind = NB_MOMENTUM,
                 .lr = 0.1f};
    check_against_one_process(&one, 230, "batch 1 over 2 ranks");
    one.batchnorm = one.sync = 1;
    check_against_one_process(&one, 230, "sync bn, batch 1 over 2 ranks");
    setup full = {.batchnorm = 1, .sync = 1, .batch = 0, .epochs = 20, .size = 3,
                  .kind = NB_ADAM, .lr = 0.01f};
    check_against_one_process(&full, 230, "sync bn, full batch over 3 ranks");
}

/* Dropout's masks are a function of the row's position in the global batch: the ranks draw
 * those one process draws, so they train as it does (within the tolerance, as without
 * dropout), with batches split evenly or not, on any thread count. Dropout does train: the
 * result is far from the same run without it. */
static void test_dropout_equals_one_process(void **state)
{
    (void)state;
    for (int size = 2; size <= 3; size++) {
        setup s = {.batch = 45, .epochs = 10, .max_steps = 20, .size = size, .kind = NB_ADAM,
                   .lr = 0.01f, .dropout_model = 1, .dropout = 0.3f};
        char what[64];
        snprintf(what, sizeof what, "dropout 0.3, adam, %d ranks", size);
        check_against_one_process(&s, 230, what);
    }
    setup uneven = {.batch = 50, .epochs = 10, .max_steps = 20, .size = 3, .kind = NB_MOMENTUM,
                    .lr = 0.1f, .dropout_model = 1, .dropout = 0.5f};
    check_against_one_process(&uneven, 230, "dropout 0.5, momentum, batch 50 over 3 ranks");

    sets d;
    data_make(&d, 230);
    setup s = {.batch = 45, .epochs = 10, .max_steps = 20, .size = 1, .kind = NB_ADAM,
               .lr = 0.01f, .dropout_model = 1, .dropout = 0.3f};
    run threads[3];
    for (int t = 0; t < 3; t++) {
        nb_set_threads(t + 1);
        reference_train(&threads[t], &s, &d);
    }
    nb_set_threads(2);
    for (int t = 1; t < 3; t++)
        assert_int_equal(model_hash(&threads[t].model), model_hash(&threads[0].model));
    run none;
    s.dropout = 0.0f;
    reference_train(&none, &s, &d);
    double rel;
    model_distance(&threads[0].model, &none.model, &rel);
    assert_true(rel > 1e-2);
    run_free(&none);
    for (int t = 0; t < 3; t++)
        run_free(&threads[t]);
    data_free(&d);
}

/* Synchronized BatchNorm2d at the op level (the trainer's part is the same as for [B, n], tested
 * above): `size` ranks, each a graph x [rows, C, H, W] -> batchnorm -> tanh -> mse, given its
 * shard of a global batch as a data-parallel step gives it (g->dp), against one graph with the
 * whole batch: the outputs and input gradients of its rows, the parameter gradients summed
 * over the ranks, the running statistics and counters, after training steps and an inference
 * step. Statistics count global_batch·H·W values per channel. */
enum { BN2D_C = 3, BN2D_H = 4, BN2D_W = 5, BN2D_STEPS = 4 };
#define BN2D_ROW (BN2D_C * BN2D_H * BN2D_W)

typedef struct bn2d_rank {
    nb_graph *g;
    nb_node *x, *t, *y, *loss;
    int lo, hi, global;
    const float *data;   /* x then t of the global batch, for each step */
    rank_comm rc;
    nb_comm comm;
    float *out;          /* per step: y rows, dx rows, dgamma, dbeta, running mean and var */
} bn2d_rank;

static void bn2d_build(bn2d_rank *r, int rows)
{
    int sample[3] = {BN2D_C, BN2D_H, BN2D_W};
    r->g = nb_graph_new();
    r->x = nb_input_shape(r->g, 3, sample);
    nb_input_requires_grad(r->x);
    r->t = nb_input_shape(r->g, 3, sample);
    r->y = nb_batchnorm(r->g, r->x, "0", 0.1f, 1e-5f);
    r->loss = nb_mse(r->g, nb_tanh(r->g, r->y), r->t);
    nb_error err;
    if (nb_graph_compile(r->g, rows > 0 ? rows : 1, &err) != 0)
        fail_msg("%s", err.msg);
    float *p = nb_graph_params(r->g, NULL);
    for (int c = 0; c < BN2D_C; c++) {   /* gamma, then beta */
        p[c] = 1.0f + 0.25f * (float)c;
        p[BN2D_C + c] = 0.1f * (float)c - 0.1f;
    }
}

static size_t bn2d_out_floats(int rows)
{
    return (size_t)BN2D_STEPS * (2 * (size_t)rows * BN2D_ROW + 4 * BN2D_C);
}

static void *bn2d_rank_main(void *arg)
{
    bn2d_rank *r = arg;
    nb_graph *g = r->g;
    int rows = r->hi - r->lo;
    float *out = r->out;
    size_t x_floats = (size_t)r->global * BN2D_ROW;
    for (int step = 0; step < BN2D_STEPS; step++) {
        const float *x = r->data + 2 * step * x_floats, *t = x + x_floats;
        memcpy(nb_node_value(r->x).data, x + (size_t)r->lo * BN2D_ROW,
               (size_t)rows * BN2D_ROW * sizeof(float));
        memcpy(nb_node_value(r->t).data, t + (size_t)r->lo * BN2D_ROW,
               (size_t)rows * BN2D_ROW * sizeof(float));
        nb_graph_set_training(g, step < BN2D_STEPS - 1);
        g->dp.global_batch = r->comm.size > 1 ? r->global : 0;
        g->dp.bn_comm = r->comm.size > 1 ? &r->comm : NULL;
        nb_graph_forward(g, rows);
        nb_graph_backward(g, r->loss);
        size_t n = (size_t)rows * BN2D_ROW;
        memcpy(out, nb_node_value(r->y).data, n * sizeof(float));
        memcpy(out + n, nb_node_grad(r->x).data, n * sizeof(float));
        out += 2 * n;
        memcpy(out, nb_graph_grads(g, NULL), 2 * BN2D_C * sizeof(float));
        if (r->comm.size > 1)
            sum_floats(&r->rc, out, 2 * BN2D_C, &g->dp.error);
        memcpy(out + 2 * BN2D_C, g->states, 2 * BN2D_C * sizeof(float));
        out += 4 * BN2D_C;
    }
    return NULL;
}

static void bn2d_check(int size, int global)
{
    size_t x_floats = (size_t)global * BN2D_ROW;
    float *data = malloc(2 * BN2D_STEPS * x_floats * sizeof(float));
    assert_non_null(data);
    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)(size * 100 + global));
    for (size_t i = 0; i < 2 * BN2D_STEPS * x_floats; i++)
        data[i] = (float)(1.5 * nb_rng_normal(&rng) + 0.3);

    bn2d_rank one = {.lo = 0, .hi = global, .global = global, .data = data};
    one.comm.size = 1;
    bn2d_build(&one, global);
    one.out = malloc(bn2d_out_floats(global) * sizeof(float));
    assert_non_null(one.out);
    bn2d_rank_main(&one);

    hub h;
    hub_init(&h, size);
    bn2d_rank ranks[MAX_RANKS];
    pthread_t threads[MAX_RANKS];
    for (int q = 0; q < size; q++) {
        bn2d_rank *r = &ranks[q];
        *r = (bn2d_rank){.global = global, .data = data};
        r->lo = global * q / size;
        r->hi = global * (q + 1) / size;
        r->rc = (rank_comm){&h, q};
        r->comm = (nb_comm){q, size, &r->rc, sum_floats, sum_doubles, broadcast};
        bn2d_build(r, r->hi - r->lo);
        r->out = malloc(bn2d_out_floats(r->hi - r->lo) * sizeof(float) + 1);
        assert_non_null(r->out);
        assert_int_equal(pthread_create(&threads[q], NULL, bn2d_rank_main, r), 0);
    }
    for (int q = 0; q < size; q++)
        pthread_join(threads[q], NULL);
    assert_false(h.mismatched);

    /* Step by step, each rank's rows and the shared numbers against one process. */
    double worst = 0.0;
    size_t at_one = 0, at[MAX_RANKS] = {0};
    for (int step = 0; step < BN2D_STEPS; step++) {
        size_t n_one = x_floats;
        /* Where rank 0's shared numbers of this step are. */
        size_t shared0 = at[0] + 2 * (size_t)(ranks[0].hi - ranks[0].lo) * BN2D_ROW;
        for (int q = 0; q < size; q++) {
            bn2d_rank *r = &ranks[q];
            assert_false(r->g->dp.failed);
            size_t n = (size_t)(r->hi - r->lo) * BN2D_ROW;
            for (int part = 0; part < 2; part++)   /* y, then dx */
                for (size_t i = 0; i < n; i++) {
                    double a = r->out[at[q] + part * n + i];
                    double b = one.out[at_one + part * n_one + (size_t)r->lo * BN2D_ROW + i];
                    worst = fmax(worst, fabs(a - b) / (REL_TOL * fmax(fabs(a), fabs(b)) +
                                                       ABS_TOL));
                }
            at[q] += 2 * n;
            for (size_t i = 0; i < 4 * BN2D_C; i++) {   /* the same bits on every rank */
                assert_true(r->out[at[q] + i] == ranks[0].out[shared0 + i]);
                double a = r->out[at[q] + i], b = one.out[at_one + 2 * n_one + i];
                worst = fmax(worst, fabs(a - b) / (REL_TOL * fmax(fabs(a), fabs(b)) + ABS_TOL));
            }
            at[q] += 4 * BN2D_C;
        }
        at_one += 2 * n_one + 4 * BN2D_C;
    }
    if (print_measurements)
        printf("  sync BatchNorm2d, batch %d over %d ranks      %.0f%% of the tolerance\n", global,
               size, 100 * worst);
    assert_true(worst <= 1.0);
    for (int q = 0; q < size; q++)
        assert_int_equal(*ranks[q].g->named[ranks[q].g->n_named - 1].counter, BN2D_STEPS - 1);
    for (int q = 0; q < size; q++) {
        nb_graph_free(ranks[q].g);
        free(ranks[q].out);
    }
    hub_destroy(&h);
    nb_graph_free(one.g);
    free(one.out);
    free(data);
}

static void test_sync_batchnorm2d_equals_one_process(void **state)
{
    (void)state;
    bn2d_check(2, 7);
    bn2d_check(3, 8);
    bn2d_check(3, 2);   /* rank 0 holds no row */
}

/* One sample with infinite features, the 41st of the 5th batch (rank 2's rows 30..44): the
 * loss is NaN there, on that rank only. Every rank stops at that step, as one process does,
 * with the weights from before it. */
static void test_nan_on_one_rank_stops_all(void **state)
{
    (void)state;
    for (int bn = 0; bn <= 1; bn++) {
        sets d;
        data_make(&d, 230);
        setup s = {.batchnorm = bn, .sync = bn, .batch = 45, .epochs = 10, .max_steps = 40,
                   .size = 3, .kind = NB_ADAM, .lr = 0.01f};
        /* The first epoch's order, from the state at its end. */
        run probe;
        run_init(&probe, &s, &d, 45, 7);
        probe.cfg.epochs = 1;
        probe.capture_at = 6;
        rank_main(&probe);
        assert_true(probe.have_saved);
        int32_t poisoned = probe.saved.order[4 * 45 + 40];
        run_free(&probe);
        d.train.values[2 * poisoned] = INFINITY;
        d.train.values[2 * poisoned + 1] = INFINITY;
        run ref;
        reference_train(&ref, &s, &d);
        assert_true(ref.res.diverged);
        assert_int_equal(ref.res.diverged_epoch, 0);
        assert_int_equal(ref.res.diverged_step, 4);
        run ranks[MAX_RANKS];
        hub h;
        ranks_init(ranks, &h, &s, &d);
        ranks_train(ranks, s.size);
        assert_all_trained(ranks, &h, s.size);
        for (int r = 0; r < s.size; r++)
            assert_true(ranks[r].res.diverged);
        if (print_measurements)
            printf("  diverged at epoch %d, step %lld; dev loss then %g\n",
                   ref.res.diverged_epoch, (long long)ref.res.diverged_step,
                   ref.metrics[0].dev.loss);
        /* Without batch norm the sample's rows are the only NaN ones: only its rank saw it. */
        assert_matches_reference(ranks, &ref, s.size, bn ? "NaN guard, sync bn" : "NaN guard");
        ranks_free(ranks, &h, s.size);
        run_free(&ref);
        data_free(&d);
    }
}

/* A run of 2 ranks resumed from its checkpoint at step 8 (mid-epoch), as from the checkpoint
 * file, ends exactly as the run uninterrupted, step by step. */
static void test_resume_equals_uninterrupted(void **state)
{
    (void)state;
    for (int variant = 0; variant <= 3; variant++) {
        /* batch norm: none, synchronized, per rank; then dropout (which draws its masks from
         * the step count the state holds) */
        int bn = variant < 3 ? variant : 0;
        sets d;
        data_make(&d, 230);
        setup s = {.batchnorm = bn > 0, .sync = bn == 1, .batch = 45, .epochs = 10,
                   .max_steps = 20, .checkpoint_every = 8, .size = 2, .kind = NB_ADAM,
                   .lr = 0.01f, .dropout_model = variant == 3, .dropout = 0.3f};
        run whole[MAX_RANKS];
        hub h;
        ranks_init(whole, &h, &s, &d);
        for (int r = 0; r < s.size; r++)
            whole[r].capture_at = 8;
        ranks_train(whole, s.size);
        assert_all_trained(whole, &h, s.size);
        for (int r = 0; r < s.size; r++)
            assert_true(whole[r].have_saved);
        hub_destroy(&h);

        /* Rank 0 resumes from its checkpoint; rank 1 as from a spoiled one (its weights
         * off, its optimizer moments zero) or, without batch norm, from nothing at all (its
         * own initial weights, a fresh state): rank 0's run is what counts. */
        run resumed[MAX_RANKS];
        ranks_init(resumed, &h, &s, &d);
        model_set_floats(&resumed[0].model, whole[0].saved_tensors);
        model_set_counters(&resumed[0].model, whole[0].saved_counters);
        resumed[0].cfg.resume = &whole[0].saved;
        if (bn > 0) {
            model_set_floats(&resumed[1].model, whole[1].saved_tensors);
            model_set_counters(&resumed[1].model, whole[1].saved_counters);
            nb_graph_params(resumed[1].model.graph, NULL)[0] += 1.0f;
            size_t n_params;
            nb_graph_params(resumed[1].model.graph, &n_params);
            memset(whole[1].saved.opt.v, 0, n_params * sizeof(float));
            memset(whole[1].saved.opt.s, 0, n_params * sizeof(float));
            resumed[1].cfg.resume = &whole[1].saved;
        }
        ranks_train(resumed, s.size);
        assert_all_trained(resumed, &h, s.size);
        assert_ranks_equal(resumed, s.size);
        assert_int_equal(resumed[0].res.steps, 20);
        assert_int_equal(model_hash(&resumed[0].model), model_hash(&whole[0].model));
        /* The steps after the checkpoint, one by one. */
        assert_int_equal(resumed[0].n_hash, 12);
        for (int k = 0; k < 12; k++)
            assert_true(resumed[0].hash[k] == whole[0].hash[8 + k]);
        for (int r = 0; r < s.size; r++) {
            run_free(&whole[r]);
            run_free(&resumed[r]);
        }
        hub_destroy(&h);
        data_free(&d);
    }
}

/* Counts calls, and fails the test if any is made. */
static int solo_calls;
static int solo_sum_floats(void *user, float *data, size_t n, nb_error *err)
{
    (void)user, (void)data, (void)n, (void)err;
    solo_calls++;
    return 0;
}
static int solo_sum_doubles(void *user, double *data, size_t n, nb_error *err)
{
    (void)user, (void)data, (void)n, (void)err;
    solo_calls++;
    return 0;
}
static int solo_broadcast(void *user, void *data, size_t n, nb_error *err)
{
    (void)user, (void)data, (void)n, (void)err;
    solo_calls++;
    return 0;
}

static void test_one_rank_equals_no_communicator(void **state)
{
    (void)state;
    for (int bn = 0; bn <= 1; bn++) {
        sets d;
        data_make(&d, 230);
        setup s = {.batchnorm = bn, .sync = 1, .batch = 45, .epochs = 10, .max_steps = 20,
                   .size = 1, .kind = NB_ADAM, .lr = 0.01f};
        run ref, solo;
        reference_train(&ref, &s, &d);
        run_init(&solo, &s, &d, 45, 7);
        nb_comm comm = {0, 1, NULL, solo_sum_floats, solo_sum_doubles, solo_broadcast};
        solo.cfg.comm = &comm;
        solo_calls = 0;
        rank_main(&solo);
        assert_int_equal(solo.rc_train, 0);
        assert_int_equal(solo_calls, 0);
        assert_int_equal(model_hash(&solo.model), model_hash(&ref.model));
        assert_int_equal(solo.n_hash, ref.n_hash);
        assert_memory_equal(solo.hash, ref.hash, (size_t)ref.n_hash * sizeof *ref.hash);
        assert_int_equal(solo.n_metrics, ref.n_metrics);
        for (int e = 0; e < ref.n_metrics; e++) {
            const nb_epoch_metrics *x = &solo.metrics[e], *y = &ref.metrics[e];
            assert_true(x->train_loss == y->train_loss);
            assert_true(x->train_accuracy == y->train_accuracy);
            assert_true(x->dev.loss == y->dev.loss && x->test.loss == y->test.loss);
        }
        run_free(&solo);
        run_free(&ref);
        data_free(&d);
    }
}

/* A stop on one rank stops every rank after the same step: rank 2's on_batch asking to stop
 * after step 4, rank 1's stop flag (a signal) going up after step 9, which also makes every
 * rank checkpoint there and report the run interrupted. */
static void test_one_rank_stops_all(void **state)
{
    (void)state;
    sets d;
    data_make(&d, 230);
    setup s = {.batchnorm = 1, .sync = 1, .batch = 45, .epochs = 10, .max_steps = 20,
               .size = 3, .kind = NB_ADAM, .lr = 0.01f};
    run ranks[MAX_RANKS];
    hub h;
    ranks_init(ranks, &h, &s, &d);
    ranks[2].ask_stop_at = 4;
    ranks_train(ranks, s.size);
    assert_all_trained(ranks, &h, s.size);
    for (int r = 0; r < s.size; r++) {
        assert_int_equal(ranks[r].res.steps, 4);
        assert_false(ranks[r].res.interrupted);
    }
    assert_ranks_equal(ranks, s.size);
    ranks_free(ranks, &h, s.size);

    ranks_init(ranks, &h, &s, &d);
    ranks[1].flag_stop_at = 9;
    ranks_train(ranks, s.size);
    assert_all_trained(ranks, &h, s.size);
    for (int r = 0; r < s.size; r++) {
        assert_int_equal(ranks[r].res.steps, 9);
        assert_true(ranks[r].res.interrupted);
        /* at the end of the first epoch (step 6), and at the stop */
        assert_int_equal(ranks[r].checkpoints, 2);
    }
    assert_ranks_equal(ranks, s.size);
    ranks_free(ranks, &h, s.size);
    data_free(&d);
}

/* Rank 1 runs another learning rate: both ranks refuse to start (none hangs), rank 1 saying
 * what differs. A collective that fails on every rank mid-run fails every rank's nb_train. */
static void test_failures_are_shared(void **state)
{
    (void)state;
    sets d;
    data_make(&d, 230);
    setup s = {.batchnorm = 1, .sync = 1, .batch = 45, .epochs = 10, .max_steps = 20,
               .size = 2, .kind = NB_ADAM, .lr = 0.01f};
    run ranks[MAX_RANKS];
    hub h;
    ranks_init(ranks, &h, &s, &d);
    ranks[1].cfg.schedule.lr = 0.02f;
    ranks_train(ranks, s.size);
    assert_int_equal(ranks[0].rc_train, -1);
    assert_int_equal(ranks[1].rc_train, -1);
    assert_non_null(strstr(ranks[1].err.msg, "the learning rate is 0.02 here but 0.01 on rank 0"));
    assert_non_null(strstr(ranks[0].err.msg, "configuration"));
    assert_int_equal(ranks[0].res.steps, 0);
    ranks_free(ranks, &h, s.size);

    /* So does a cosine schedule with another horizon (it decides every epoch's rate). */
    ranks_init(ranks, &h, &s, &d);
    for (int r = 0; r < s.size; r++)
        ranks[r].cfg.schedule.kind = NB_DECAY_COSINE;
    ranks[1].cfg.schedule.epochs = 7;
    ranks_train(ranks, s.size);
    assert_int_equal(ranks[0].rc_train, -1);
    assert_int_equal(ranks[1].rc_train, -1);
    assert_non_null(strstr(ranks[1].err.msg, "the schedule's horizon is 7 here but 10 on rank 0"));
    ranks_free(ranks, &h, s.size);

    /* One rank's training set is not the model's: the other fails with it. */
    nb_dataset other = {0};
    nb_error err;
    assert_int_equal(nb_make_synthetic("moons", 230, 0.2f, 1, &other, &err), 0);
    other.features = 3;   /* a lie that validation catches before any data is read */
    ranks_init(ranks, &h, &s, &d);
    ranks[1].train = &other;
    ranks_train(ranks, s.size);
    assert_int_equal(ranks[0].rc_train, -1);
    assert_int_equal(ranks[1].rc_train, -1);
    assert_non_null(strstr(ranks[1].err.msg, "features"));
    assert_non_null(strstr(ranks[0].err.msg, "another rank"));
    other.features = 2;
    nb_dataset_free(&other);
    ranks_free(ranks, &h, s.size);

    ranks_init(ranks, &h, &s, &d);
    h.fail_at = 40;
    ranks_train(ranks, s.size);
    for (int r = 0; r < s.size; r++) {
        assert_int_equal(ranks[r].rc_train, -1);
        assert_non_null(strstr(ranks[r].err.msg, "injected failure at call 40"));
    }
    assert_false(h.mismatched);
    ranks_free(ranks, &h, s.size);
    data_free(&d);
}

int main(void)
{
    print_measurements = getenv("NABLA_DP_VERBOSE") != NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_batchnorm_equals_one_process),
        cmocka_unit_test(test_sync_batchnorm_equals_one_process),
        cmocka_unit_test(test_per_rank_batchnorm_differs_from_one_process),
        cmocka_unit_test(test_per_rank_batchnorm_keeps_rank_0s_statistics),
        cmocka_unit_test(test_small_and_full_batches),
        cmocka_unit_test(test_dropout_equals_one_process),
        cmocka_unit_test(test_sync_batchnorm2d_equals_one_process),
        cmocka_unit_test(test_nan_on_one_rank_stops_all),
        cmocka_unit_test(test_resume_equals_uninterrupted),
        cmocka_unit_test(test_one_rank_equals_no_communicator),
        cmocka_unit_test(test_one_rank_stops_all),
        cmocka_unit_test(test_failures_are_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
