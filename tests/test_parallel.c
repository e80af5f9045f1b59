/* The thread pool and the parallel ops: shares cover the work exactly once, barriers hold,
 * the fused dense op equals the ops it replaces and has the right gradients on any number of
 * threads, backward clears every gradient it must, and training gives the same weights on any
 * number of threads. Thread counts above the core count are used on purpose (uneven shares,
 * preempted threads). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"
#include "model_spec_for_tests.h"
#include "core/pool.h"

static const int thread_counts[] = {1, 2, 3};
#define N_THREAD_COUNTS 3

/* ---- the pool ---- */

static void test_split_covers_everything_once(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 5, 15, 16, 17, 100, 1000, 1023};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int threads = 1; threads <= 5; threads++)
            for (size_t align = 1; align <= 16; align += 15) {
                size_t expect = 0;
                for (int tid = 0; tid < threads; tid++) {
                    nb_exec ex = {NULL, tid, threads};
                    size_t b, e;
                    nb_split(&ex, sizes[s], align, &b, &e);
                    assert_true(b <= e);
                    if (b < e) {
                        assert_int_equal(b, expect); /* contiguous, in thread order */
                        assert_int_equal(b % align, 0);
                        expect = e;
                    }
                }
                assert_int_equal(expect, sizes[s]);
            }
}

enum { PHASES = 200, MAX_THREADS = 8 };

typedef struct phase_probe {
    int seen[PHASES][MAX_THREADS];
    atomic_int errors;
    atomic_int ran[MAX_THREADS];
    int nthreads;
} phase_probe;

/* In every phase each thread marks its slot, then all meet; after the barrier every slot of
 * the phase must be marked, whichever thread looks. */
static void phases_job(const nb_exec *ex, void *arg)
{
    phase_probe *p = arg;
    atomic_fetch_add(&p->ran[ex->tid], 1);
    p->nthreads = ex->nthreads;
    for (int phase = 0; phase < PHASES; phase++) {
        p->seen[phase][ex->tid] = 1;
        nb_barrier(ex);
        for (int t = 0; t < ex->nthreads; t++)
            if (!p->seen[phase][(ex->tid + t) % ex->nthreads])
                atomic_fetch_add(&p->errors, 1);
    }
}

static void test_jobs_and_barriers(void **state)
{
    (void)state;
    for (int i = 0; i < N_THREAD_COUNTS; i++) {
        nb_set_threads(thread_counts[i]);
        for (int rep = 0; rep < 20; rep++) {
            phase_probe *p = calloc(1, sizeof *p);
            assert_non_null(p);
            nb_parallel(phases_job, p);
            assert_int_equal(p->nthreads, thread_counts[i]);
            for (int t = 0; t < thread_counts[i]; t++)
                assert_int_equal(atomic_load(&p->ran[t]), 1);
            assert_int_equal(atomic_load(&p->errors), 0);
            free(p);
        }
    }
}

static void inner_job(const nb_exec *ex, void *arg)
{
    atomic_fetch_add((atomic_int *)arg, ex->nthreads);
}

static void outer_job(const nb_exec *ex, void *arg)
{
    if (ex->tid == 0)
        nb_parallel(inner_job, arg); /* the pool is busy: this runs on one thread */
}

static void test_nested_job_runs_alone(void **state)
{
    (void)state;
    nb_set_threads(2);
    atomic_int total = 0;
    nb_parallel(outer_job, &total);
    assert_int_equal(atomic_load(&total), 1);
}

/* ---- the fused dense op ---- */

static void fill(float *x, size_t n, nb_rng *r, double scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(scale * nb_rng_normal(r));
}

/* act(x·wᵀ + b) against a random target, as one op or as matmul -> bias -> activation. */
typedef struct dense_case {
    nb_graph *g;
    nb_node *x, *t, *w, *b, *out, *loss;
} dense_case;

static nb_node *activation_op(nb_graph *g, nb_node *h, nb_activation act, float slope)
{
    switch (act) {
    case NB_RELU: return nb_relu(g, h);
    case NB_LEAKY_RELU: return nb_leaky_relu(g, h, slope);
    case NB_TANH: return nb_tanh(g, h);
    case NB_SIGMOID: return nb_sigmoid(g, h);
    case NB_IDENTITY: break;
    }
    return h;
}

static dense_case build_dense(int fused, int batch, int in, int out, int bias, nb_activation act,
                              float slope)
{
    dense_case c;
    c.g = nb_graph_new();
    c.x = nb_input(c.g, in);
    nb_input_requires_grad(c.x);
    c.t = nb_input(c.g, out);
    int ws[2] = {out, in}, bs[1] = {out};
    c.w = nb_param(c.g, "w", 2, ws);
    c.b = bias ? nb_param(c.g, "b", 1, bs) : NULL;
    if (fused) {
        c.out = nb_dense(c.g, c.x, c.w, c.b, act, slope);
    } else {
        nb_node *h = nb_matmul(c.g, c.x, c.w);
        if (bias)
            h = nb_bias_add(c.g, h, c.b);
        c.out = activation_op(c.g, h, act, slope);
    }
    c.loss = nb_mse(c.g, c.out, c.t);
    nb_error err;
    assert_int_equal(nb_graph_compile(c.g, batch, &err), 0);
    nb_rng r;
    nb_rng_seed(&r, 11);
    size_t n;
    float *p = nb_graph_params(c.g, &n);
    fill(p, n, &r, 0.5);
    fill(nb_node_value(c.x).data, (size_t)batch * in, &r, 1.0);
    fill(nb_node_value(c.t).data, (size_t)batch * out, &r, 1.0);
    return c;
}

static const nb_activation all_acts[] = {NB_RELU, NB_LEAKY_RELU, NB_TANH, NB_SIGMOID,
                                         NB_IDENTITY};

/* Shapes where the product splits by columns (5 x 37) and by rows (9 x 3). */
static const int shapes[][3] = {{5, 7, 37}, {9, 4, 3}, {1, 3, 2}};

static void test_dense_equals_composition(void **state)
{
    (void)state;
    for (int ti = 0; ti < N_THREAD_COUNTS; ti++) {
        nb_set_threads(thread_counts[ti]);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int a = 0; a < 5; a++)
                for (int bias = 0; bias <= 1; bias++) {
                    const int *sh = shapes[s];
                    dense_case f = build_dense(1, sh[0], sh[1], sh[2], bias, all_acts[a], 0.1f);
                    dense_case u = build_dense(0, sh[0], sh[1], sh[2], bias, all_acts[a], 0.1f);
                    nb_graph_forward(f.g, sh[0]);
                    nb_graph_forward(u.g, sh[0]);
                    size_t out = (size_t)sh[0] * sh[2], np;
                    assert_memory_equal(nb_node_value(f.out).data, nb_node_value(u.out).data,
                                        out * sizeof(float));
                    nb_graph_backward(f.g, f.loss);
                    nb_graph_backward(u.g, u.loss);
                    float *gf = nb_graph_grads(f.g, &np), *gu = nb_graph_grads(u.g, NULL);
                    for (size_t i = 0; i < np; i++)
                        assert_float_equal(gf[i], gu[i], 1e-6f * (1.0f + fabsf(gu[i])));
                    float *dxf = nb_node_grad(f.x).data, *dxu = nb_node_grad(u.x).data;
                    for (size_t i = 0; i < (size_t)sh[0] * sh[1]; i++)
                        assert_float_equal(dxf[i], dxu[i], 1e-6f * (1.0f + fabsf(dxu[i])));
                    nb_graph_free(f.g);
                    nb_graph_free(u.g);
                }
    }
}

static void test_dense_gradients(void **state)
{
    (void)state;
    for (int ti = 0; ti < N_THREAD_COUNTS; ti++) {
        nb_set_threads(thread_counts[ti]);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int a = 0; a < 5; a++) {
                const int *sh = shapes[s];
                /* A negative slope: the derivative comes from the saved input. */
                float slope = all_acts[a] == NB_LEAKY_RELU && s == 0 ? -0.5f : 0.1f;
                dense_case c = build_dense(1, sh[0], sh[1], sh[2], s != 1, all_acts[a], slope);
                double e = nb_gradcheck(c.g, c.loss, sh[0], 1e-3);
                assert_true(e < 2e-2);
                nb_graph_free(c.g);
            }
    }
}

static void test_dense_builder_errors(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, 4);
    int ws[2] = {3, 4}, bad_bs[1] = {5};
    nb_node *w = nb_param(g, "w", 2, ws);
    assert_null(nb_dense(g, x, w, nb_param(g, "b", 1, bad_bs), NB_RELU, 0.0f));
    nb_error err;
    assert_int_equal(nb_graph_compile(g, 2, &err), -1);
    assert_non_null(strstr(err.msg, "dense"));
    nb_graph_free(g);
}

/* ---- gradient bookkeeping ---- */

/* h feeds two consumers (the first to run backward sets the gradient, the other adds); the
 * loss is not the last node (a second loss consumes it); a parameter the loss does not use
 * must come out of backward with a zero gradient, whatever its buffer held. */
static void test_gradients_are_cleared(void **state)
{
    (void)state;
    for (int ti = 0; ti < N_THREAD_COUNTS; ti++) {
        nb_set_threads(thread_counts[ti]);
        nb_graph *g = nb_graph_new();
        nb_node *x = nb_input(g, 6);
        nb_input_requires_grad(x);
        int ws[2] = {5, 6}, us[1] = {3}, one[1] = {1};
        nb_node *unused = nb_param(g, "unused", 1, us);
        nb_node *h = nb_matmul(g, x, nb_param(g, "w", 2, ws));
        nb_node *loss = nb_mse(g, nb_tanh(g, h), nb_sigmoid(g, h));
        nb_node *second = nb_mse(g, loss, nb_param(g, "target", 1, one));
        assert_non_null(second);
        nb_error err;
        assert_int_equal(nb_graph_compile(g, 4, &err), 0);
        nb_rng r;
        nb_rng_seed(&r, 5);
        size_t n;
        float *p = nb_graph_params(g, &n);
        fill(p, n, &r, 0.7);
        fill(nb_node_value(x).data, 24, &r, 1.0);
        float *grads = nb_graph_grads(g, NULL);
        for (size_t i = 0; i < n; i++)
            grads[i] = 7.0f;
        nb_graph_forward(g, 4);
        nb_graph_backward(g, loss);
        for (int i = 0; i < 3; i++)
            assert_true(nb_node_grad(unused).data[i] == 0.0f);
        assert_true(nb_gradcheck(g, loss, 4, 1e-3) < 2e-2);
        /* From the second loss as well, then from the first again. */
        assert_true(nb_gradcheck(g, second, 4, 1e-3) < 2e-2);
        assert_true(nb_gradcheck(g, loss, 4, 1e-3) < 2e-2);
        nb_graph_free(g);
    }
}

/* ---- training ---- */

static void train_once(int threads, int batchnorm, float *out, size_t *n)
{
    nb_set_threads(threads);
    nb_dataset train = {0};
    nb_error err;
    assert_int_equal(nb_make_synthetic("spirals", 600, 0.2f, 1, &train, &err), 0);
    nb_model_spec spec = mlp_spec((nb_mlp){.inputs = 2, .classes = 3, .n_hidden = 2, .hidden = {300, 24},
                          .activation = NB_RELU, .batchnorm = batchnorm});
    nb_model m;
    assert_int_equal(nb_model_build(&m, &spec, 100, 1, &err), 0);
    nb_train_config cfg = {
        .optim = {.kind = NB_ADAM, .beta = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
        .schedule = {.kind = NB_DECAY_NONE, .lr = 0.01f, .epochs = 3},
        .batch_size = 100, .epochs = 3, .shuffle = 1, .seed = 3,
    };
    nb_train_result res;
    assert_int_equal(nb_train(&m, &train, NULL, NULL, &cfg, &res, &err), 0);
    float *p = nb_graph_params(m.graph, n);
    memcpy(out, p, *n * sizeof *p);
    nb_model_free(&m);
    nb_dataset_free(&train);
}

/* Products are cut by the machine's cores, not the thread count (nb_product_parts), so a run
 * gives the same weights, bit for bit, on any number of threads; a batch of 100 and a layer of
 * 300 give OpenBLAS blocks of shapes whose sums it orders differently. */
static void test_training_identical_for_any_thread_count(void **state)
{
    (void)state;
    enum { CAP = 16384 };
    float *first = malloc(CAP * sizeof *first), *a = malloc(CAP * sizeof *a);
    for (int bn = 0; bn <= 1; bn++) {
        size_t n_first;
        train_once(thread_counts[0], bn, first, &n_first);
        assert_true(n_first <= CAP);
        for (int ti = 0; ti < N_THREAD_COUNTS; ti++) {
            size_t na;
            train_once(thread_counts[ti], bn, a, &na);
            assert_int_equal(na, n_first);
            assert_memory_equal(a, first, na * sizeof *a);
        }
    }
    free(first);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_covers_everything_once),
        cmocka_unit_test(test_jobs_and_barriers),
        cmocka_unit_test(test_nested_job_runs_alone),
        cmocka_unit_test(test_dense_equals_composition),
        cmocka_unit_test(test_dense_gradients),
        cmocka_unit_test(test_dense_builder_errors),
        cmocka_unit_test(test_gradients_are_cleared),
        cmocka_unit_test(test_training_identical_for_any_thread_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
