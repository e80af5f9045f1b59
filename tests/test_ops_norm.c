/* BatchNorm2d (nb_batchnorm on images), layer norm, dropout and add: values worked by hand,
 * gradients against central differences, results bit-identical on 1, 2 and 3 threads,
 * dropout's mask statistics, scaling, gradient and determinism (threads, passes, steps,
 * layers), and the refusals of each builder.
 *
 * `test_ops_norm --torch ...` runs one op on data read from standard input instead and writes
 * its results, for tests/norm_torch_check.py to compare with PyTorch (see torch_mode below). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

#define TOLERANCE 2e-2
#define STEP 1e-2

static void fill(float *x, size_t n, nb_rng *r, double scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(scale * nb_rng_normal(r));
}

static void fill_node(nb_node *n, nb_rng *r, double scale)
{
    nb_tensor t = nb_node_value(n);
    fill(t.data, nb_tensor_numel(&t), r, scale);
}

static void fill_params(nb_graph *g, nb_rng *r, double scale)
{
    size_t n;
    float *p = nb_graph_params(g, &n);
    fill(p, n, r, scale);
}

static nb_node *images(nb_graph *g, int c, int h, int w)
{
    int shape[3] = {c, h, w};
    return nb_input_shape(g, 3, shape);
}

static void compile_ok(nb_graph *g, int max_batch)
{
    nb_error err;
    if (nb_graph_compile(g, max_batch, &err) != 0)
        fail_msg("compile: %s", err.msg);
}

/* The builder error a graph reports at compile time contains `want`. */
static void assert_refused(nb_graph *g, const char *want)
{
    nb_error err;
    assert_int_equal(nb_graph_compile(g, 4, &err), -1);
    if (!strstr(err.msg, want))
        fail_msg("expected an error with '%s', got '%s'", want, err.msg);
    assert_null(strchr(err.msg, '\n'));
    nb_graph_free(g);
}

static nb_named named(nb_graph *g, const char *name)
{
    nb_named t;
    if (!nb_graph_find(g, name, &t))
        fail_msg("no tensor named %s", name);
    return t;
}

/* ---- BatchNorm2d ---- */

static void test_batchnorm2d_values(void **state)
{
    (void)state;
    /* [B=2, C=2, H=1, W=2]. Channel 0 holds 1, 2 (row 0) and 3, 6 (row 1): mean 3, biased
     * variance (4+1+0+9)/4 = 3.5, unbiased 14/3. Channel 1 holds 0, 0, 2, 2: mean 1, variance
     * 1, unbiased 4/3. */
    nb_graph *g = nb_graph_new();
    nb_node *x = images(g, 2, 1, 2);
    nb_node *bn = nb_batchnorm(g, x, "0", 0.1f, 1e-5f);
    compile_ok(g, 2);
    float xv[8] = {1, 2, 0, 0, 3, 6, 2, 2};
    memcpy(nb_node_value(x).data, xv, sizeof xv);
    nb_graph_forward(g, 2);
    const float *y = nb_node_value(bn).data;
    float s0 = 1.0f / sqrtf(3.5f + 1e-5f), s1 = 1.0f / sqrtf(1.0f + 1e-5f);
    float want[8] = {-2 * s0, -1 * s0, -s1, -s1, 0, 3 * s0, s1, s1};
    for (int i = 0; i < 8; i++)
        assert_float_equal(y[i], want[i], 1e-6);
    const float *rm = nb_node_value(named(g, "0.running_mean").node).data;
    const float *rv = nb_node_value(named(g, "0.running_var").node).data;
    assert_float_equal(rm[0], 0.3, 1e-6);
    assert_float_equal(rm[1], 0.1, 1e-6);
    assert_float_equal(rv[0], 0.9 + 0.1 * 14.0 / 3.0, 1e-6);
    assert_float_equal(rv[1], 0.9 + 0.1 * 4.0 / 3.0, 1e-6);
    assert_int_equal(*named(g, "0.num_batches_tracked").counter, 1);
    /* A batch of one image still has H·W values per channel: the running statistics move. */
    nb_graph_forward(g, 1);
    assert_int_equal(*named(g, "0.num_batches_tracked").counter, 2);
    assert_float_equal(rm[0], 0.9 * 0.3 + 0.1 * 1.5, 1e-6);
    assert_float_equal(rv[0], 0.9 * (0.9 + 0.1 * 14.0 / 3.0) + 0.1 * 0.5, 1e-6);
    /* Inference: the running statistics, nothing updated. */
    nb_graph_set_training(g, 0);
    nb_graph_forward(g, 2);
    assert_float_equal(y[1], (2.0f - rm[0]) / sqrtf(rv[0] + 1e-5f), 1e-6);
    assert_int_equal(*named(g, "0.num_batches_tracked").counter, 2);
    nb_graph_free(g);
}

/* x -> batchnorm -> tanh -> mse against a random target, on a [B, C, H, W] or [B, C, L] input. */
static nb_graph *batchnorm2d_graph(int ndim, const int *sample, int batch, nb_node **loss)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input_shape(g, ndim, sample);
    nb_input_requires_grad(x);
    nb_node *t = nb_input_shape(g, ndim, sample);
    nb_node *bn = nb_batchnorm(g, x, "1", 0.1f, 1e-5f);
    *loss = nb_mse(g, nb_tanh(g, bn), t);
    compile_ok(g, batch);
    nb_rng r;
    nb_rng_seed(&r, 40 + (uint64_t)ndim);
    fill_node(x, &r, 2.0);
    fill_node(t, &r, 1.0);
    fill_params(g, &r, 1.0);
    return g;
}

static void test_batchnorm2d_gradients(void **state)
{
    (void)state;
    static const struct {
        int ndim, batch, sample[3];
    } cases[] = {{3, 3, {2, 3, 4}}, {3, 1, {2, 3, 3}}, {2, 4, {3, 5}}, {3, 2, {1, 1, 17}}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        nb_node *loss;
        nb_graph *g = batchnorm2d_graph(cases[k].ndim, cases[k].sample, cases[k].batch, &loss);
        double e = nb_gradcheck(g, loss, cases[k].batch, STEP);
        if (!(e < TOLERANCE))
            fail_msg("case %zu, training: relative error %g", k, e);
        nb_graph_set_training(g, 0);
        e = nb_gradcheck(g, loss, cases[k].batch, STEP);
        if (!(e < TOLERANCE))
            fail_msg("case %zu, inference: relative error %g", k, e);
        nb_graph_free(g);
    }
}

/* Everything a pass of the graph produces: every node's value and gradient, the parameters'
 * gradients, the states and counters, concatenated. */
typedef struct snapshot {
    unsigned char *bytes;
    size_t size;
} snapshot;

static void snap_add(snapshot *s, const void *p, size_t n)
{
    s->bytes = realloc(s->bytes, s->size + n);
    assert_non_null(s->bytes);
    memcpy(s->bytes + s->size, p, n);
    s->size += n;
}

static void snap_nodes(snapshot *s, nb_graph *g, nb_node **nodes, int n_nodes)
{
    for (int i = 0; i < n_nodes; i++) {
        nb_tensor v = nb_node_value(nodes[i]), d = nb_node_grad(nodes[i]);
        snap_add(s, v.data, nb_tensor_numel(&v) * sizeof(float));
        if (d.data)
            snap_add(s, d.data, nb_tensor_numel(&d) * sizeof(float));
    }
    size_t n;
    float *grads = nb_graph_grads(g, &n);
    snap_add(s, grads, n * sizeof *grads);
    for (int i = 0; i < nb_graph_named_count(g); i++) {
        nb_named t = nb_graph_named(g, i);
        if (t.kind == NB_KIND_COUNTER) {
            snap_add(s, t.counter, sizeof *t.counter);
        } else {
            nb_tensor v = nb_node_value(t.node);
            snap_add(s, v.data, nb_tensor_numel(&v) * sizeof(float));
        }
    }
}

static void test_batchnorm2d_equals_1d_on_single_pixels(void **state)
{
    (void)state;
    /* [B, C, 1, 1] is [B, C]: the image path sums the same numbers in the same order, so it
     * must give BatchNorm1d's results bit for bit, in training and inference, forward and
     * backward. */
    enum { B = 7, C = 5 };
    snapshot out[2] = {{0}};
    for (int images_path = 0; images_path <= 1; images_path++) {
        nb_graph *g = nb_graph_new();
        int sample[3] = {C, 1, 1};
        nb_node *x = nb_input_shape(g, images_path ? 3 : 1, sample);
        nb_input_requires_grad(x);
        nb_node *t = nb_input_shape(g, images_path ? 3 : 1, sample);
        nb_node *bn = nb_batchnorm(g, x, "0", 0.1f, 1e-5f);
        nb_node *loss = nb_mse(g, nb_tanh(g, bn), t);
        compile_ok(g, B);
        nb_rng r;
        nb_rng_seed(&r, 9);
        fill_node(x, &r, 3.0);
        fill_node(t, &r, 1.0);
        fill_params(g, &r, 1.0);
        nb_node *nodes[2] = {x, bn};
        for (int training = 1; training >= 0; training--) {
            nb_graph_set_training(g, training);
            nb_graph_forward(g, B);
            nb_graph_backward(g, loss);
            snap_nodes(&out[images_path], g, nodes, 2);
        }
        nb_graph_free(g);
    }
    assert_int_equal(out[0].size, out[1].size);
    assert_memory_equal(out[0].bytes, out[1].bytes, out[0].size);
    free(out[0].bytes);
    free(out[1].bytes);
}

/* Runs build() at 1, 2 and 3 threads: forward and backward in training mode, then in
 * inference mode, and checks that every number is the same, bit for bit. */
typedef nb_graph *(*graph_builder)(nb_node **loss, nb_node **nodes, int *n_nodes, int *batch);

static void assert_thread_independent(graph_builder build)
{
    snapshot out[3] = {{0}};
    for (int threads = 1; threads <= 3; threads++) {
        nb_set_threads(threads);
        nb_node *loss, *nodes[4];
        int n_nodes, batch;
        nb_graph *g = build(&loss, nodes, &n_nodes, &batch);
        for (int training = 1; training >= 0; training--) {
            nb_graph_set_training(g, training);
            nb_graph_forward(g, batch);
            nb_graph_backward(g, loss);
            snap_nodes(&out[threads - 1], g, nodes, n_nodes);
        }
        nb_graph_free(g);
    }
    nb_set_threads(2);
    for (int k = 1; k < 3; k++) {
        assert_int_equal(out[k].size, out[0].size);
        assert_memory_equal(out[k].bytes, out[0].bytes, out[0].size);
    }
    for (int k = 0; k < 3; k++)
        free(out[k].bytes);
}

/* Odd sizes, so that no split between threads falls on a round number; 3 channels. */
static nb_graph *batchnorm2d_threads_graph(nb_node **loss, nb_node **nodes, int *n_nodes,
                                           int *batch)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = images(g, 3, 7, 9);
    nb_input_requires_grad(x);
    nb_node *t = images(g, 3, 7, 9);
    nb_node *bn = nb_batchnorm(g, x, "0", 0.1f, 1e-5f);
    *loss = nb_mse(g, nb_tanh(g, bn), t);
    *batch = 5;
    compile_ok(g, *batch);
    nb_rng r;
    nb_rng_seed(&r, 17);
    fill_node(x, &r, 2.0);
    fill_node(t, &r, 1.0);
    fill_params(g, &r, 1.0);
    nodes[0] = x;
    nodes[1] = bn;
    *n_nodes = 2;
    return g;
}

static void test_batchnorm2d_threads(void **state)
{
    (void)state;
    assert_thread_independent(batchnorm2d_threads_graph);
}

/* ---- layer norm ---- */

static void test_layernorm_values(void **state)
{
    (void)state;
    /* Row 0: 1, 2, 3, 6: mean 3, biased variance 3.5. Row 1: all 5: variance 0, y = 0. */
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, 4);
    nb_node *ln = nb_layernorm(g, x, "3", 1e-5f);
    compile_ok(g, 2);
    float xv[8] = {1, 2, 3, 6, 5, 5, 5, 5};
    memcpy(nb_node_value(x).data, xv, sizeof xv);
    float *w = nb_node_value(named(g, "3.weight").node).data;
    float *b = nb_node_value(named(g, "3.bias").node).data;
    for (int j = 0; j < 4; j++) {
        assert_true(w[j] == 1.0f);
        assert_true(b[j] == 0.0f);
    }
    nb_graph_forward(g, 2);
    const float *y = nb_node_value(ln).data;
    float s = 1.0f / sqrtf(3.5f + 1e-5f);
    float want[8] = {-2 * s, -1 * s, 0, 3 * s, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++)
        assert_float_equal(y[i], want[i], 1e-6);
    /* weight and bias per feature; inference mode is the same. */
    w[3] = 2.0f;
    b[0] = 0.5f;
    nb_graph_set_training(g, 0);
    nb_graph_forward(g, 2);
    assert_float_equal(y[3], 6 * s, 1e-6);
    assert_float_equal(y[0], -2 * s + 0.5f, 1e-6);
    assert_float_equal(y[4], 0.5f, 1e-6);
    nb_graph_free(g);
}

static void test_layernorm_shapes(void **state)
{
    (void)state;
    /* The parameters have the sample's shape. */
    nb_graph *g = nb_graph_new();
    nb_node *x = images(g, 2, 3, 4);
    assert_non_null(nb_layernorm(g, x, "5", 1e-5f));
    compile_ok(g, 3);
    nb_tensor w = nb_node_value(named(g, "5.weight").node);
    nb_tensor b = nb_node_value(named(g, "5.bias").node);
    assert_int_equal(w.ndim, 3);
    assert_int_equal(b.ndim, 3);
    assert_int_equal(w.shape[0], 2);
    assert_int_equal(w.shape[1], 3);
    assert_int_equal(w.shape[2], 4);
    assert_int_equal(nb_tensor_numel(&b), 24);
    nb_graph_free(g);
}

/* x -> layernorm -> tanh -> mse against a random target; nodes (may be NULL) gets x and the
 * layer norm's output. */
static nb_graph *layernorm_graph(int ndim, const int *sample, int batch, nb_node **loss,
                                 nb_node **nodes)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input_shape(g, ndim, sample);
    nb_input_requires_grad(x);
    nb_node *t = nb_input_shape(g, ndim, sample);
    nb_node *ln = nb_layernorm(g, x, "2", 1e-5f);
    *loss = nb_mse(g, nb_tanh(g, ln), t);
    compile_ok(g, batch);
    nb_rng r;
    nb_rng_seed(&r, 50 + (uint64_t)ndim);
    fill_node(x, &r, 2.0);
    fill_node(t, &r, 1.0);
    fill_params(g, &r, 1.0);
    if (nodes) {
        nodes[0] = x;
        nodes[1] = ln;
    }
    return g;
}

static void test_layernorm_gradients(void **state)
{
    (void)state;
    static const struct {
        int ndim, batch, sample[3];
    } cases[] = {{1, 4, {7}}, {3, 3, {2, 3, 4}}, {2, 2, {3, 5}}, {1, 1, {19}}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        nb_node *loss;
        nb_graph *g = layernorm_graph(cases[k].ndim, cases[k].sample, cases[k].batch, &loss,
                                      NULL);
        double e = nb_gradcheck(g, loss, cases[k].batch, STEP);
        if (!(e < TOLERANCE))
            fail_msg("case %zu: relative error %g", k, e);
        nb_graph_free(g);
    }
}

static nb_graph *layernorm_threads_graph(nb_node **loss, nb_node **nodes, int *n_nodes,
                                         int *batch)
{
    int sample[3] = {3, 7, 9};
    *batch = 5;
    *n_nodes = 2;
    return layernorm_graph(3, sample, *batch, loss, nodes);
}

static void test_layernorm_threads(void **state)
{
    (void)state;
    assert_thread_independent(layernorm_threads_graph);
}

/* ---- dropout ---- */

/* x [B, n] -> dropout(p) [-> dropout(p)], compiled for `batch` rows, x filled with ones. */
static nb_graph *dropout_graph(int batch, int n, float p, int layers, nb_node **x,
                               nb_node **drop)
{
    nb_graph *g = nb_graph_new();
    *x = nb_input(g, n);
    nb_input_requires_grad(*x);
    for (int l = 0; l < layers; l++)
        drop[l] = nb_dropout(g, *x, p);
    compile_ok(g, batch);
    nb_tensor v = nb_node_value(*x);
    for (size_t i = 0; i < (size_t)batch * (size_t)n; i++)
        v.data[i] = 1.0f;
    return g;
}

static void test_dropout_statistics(void **state)
{
    (void)state;
    enum { B = 64, N = 4096 };
    static const float ps[] = {0.1f, 0.5f, 0.8f, 0.05f};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        float p = ps[k];
        nb_node *x, *d;
        nb_graph *g = dropout_graph(B, N, p, 1, &x, &d);
        nb_graph_set_step(g, 1234, 5, 0);
        nb_graph_forward(g, B);
        const float *y = nb_node_value(d).data;
        float scale = 1.0f / (1.0f - p);
        size_t zeros = 0, total = (size_t)B * N;
        for (size_t i = 0; i < total; i++) {
            if (y[i] == 0.0f)
                zeros++;
            else if (y[i] != scale)
                fail_msg("p %g: a kept element is %g, not 1/(1-p) = %g", p, y[i], scale);
        }
        /* Zeros are Binomial(total, p): within 5 standard deviations. */
        double sd = sqrt(total * p * (1.0 - p));
        double off = fabs((double)zeros - total * (double)p);
        if (off > 5 * sd)
            fail_msg("p %g: %zu zeros of %zu, %.1f sd from the expected %g", p, zeros, total,
                     off / sd, total * (double)p);
        /* Each row and each unit has its own draws: every row's and every column's count
         * within 6 sd too (a mask repeated across rows or units would not be). */
        double row_sd = sqrt(N * p * (1.0 - p)), col_sd = sqrt(B * p * (1.0 - p));
        for (int r = 0; r < B; r++) {
            size_t z = 0;
            for (int j = 0; j < N; j++)
                z += y[(size_t)r * N + j] == 0.0f;
            assert_true(fabs((double)z - N * (double)p) <= 6 * row_sd);
        }
        double worst_col = 0;
        for (int j = 0; j < N; j++) {
            size_t z = 0;
            for (int r = 0; r < B; r++)
                z += y[(size_t)r * N + j] == 0.0f;
            worst_col = fmax(worst_col, fabs((double)z - B * (double)p) / col_sd);
        }
        assert_true(worst_col <= 6.0);
        nb_graph_free(g);
    }
}

static void test_dropout_gradient_is_the_mask(void **state)
{
    (void)state;
    enum { B = 8, N = 300 };
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, N);
    nb_input_requires_grad(x);
    nb_node *t = nb_input(g, N);
    nb_node *d = nb_dropout(g, x, 0.3f);
    nb_node *loss = nb_mse(g, d, t);
    compile_ok(g, B);
    nb_rng r;
    nb_rng_seed(&r, 3);
    fill_node(x, &r, 1.0);
    fill_node(t, &r, 1.0);
    nb_graph_set_step(g, 7, 11, 100);
    nb_graph_forward(g, B);
    nb_graph_backward(g, loss);
    const float *xv = nb_node_value(x).data, *tv = nb_node_value(t).data;
    const float *y = nb_node_value(d).data, *dx = nb_node_grad(x).data;
    float scale = 1.0f / 0.7f, mse_scale = 2.0f / (B * N);
    size_t kept = 0;
    for (size_t i = 0; i < (size_t)B * N; i++) {
        int keep = y[i] != 0.0f;
        kept += keep;
        if (keep)
            assert_true(y[i] == xv[i] * scale);
        /* dy = 2 (y - t) / N; dx = dy·mask/(1-p). */
        float dy = mse_scale * (y[i] - tv[i]);
        float want = keep ? dy * scale : 0.0f;
        assert_true(dx[i] == want);
    }
    assert_true(kept > 0 && kept < (size_t)B * N);
    /* The finite differences agree (the mask is fixed by seed, step and rows). */
    assert_true(nb_gradcheck(g, loss, B, 1e-2) < TOLERANCE);
    nb_graph_free(g);
}

static void test_dropout_identity(void **state)
{
    (void)state;
    enum { B = 4, N = 50 };
    for (int mode = 0; mode < 2; mode++) {   /* inference with p 0.5; training with p 0 */
        nb_graph *g = nb_graph_new();
        nb_node *x = nb_input(g, N);
        nb_input_requires_grad(x);
        nb_node *t = nb_input(g, N);
        nb_node *d = nb_dropout(g, x, mode == 0 ? 0.5f : 0.0f);
        nb_node *loss = nb_mse(g, d, t);
        compile_ok(g, B);
        nb_rng r;
        nb_rng_seed(&r, 4);
        fill_node(x, &r, 1.0);
        fill_node(t, &r, 1.0);
        nb_graph_set_training(g, mode == 1);
        nb_graph_set_step(g, 1, 2, 3);
        nb_graph_forward(g, B);
        nb_graph_backward(g, loss);
        const float *xv = nb_node_value(x).data, *tv = nb_node_value(t).data;
        assert_memory_equal(nb_node_value(d).data, xv, B * N * sizeof(float));
        const float *dx = nb_node_grad(x).data;
        for (int i = 0; i < B * N; i++)
            assert_true(dx[i] == 2.0f / (B * N) * (xv[i] - tv[i]));
        nb_graph_free(g);
    }
    /* Backward uses the mode of its forward pass, whatever the mode is switched to between. */
    nb_node *x, *d[1];
    nb_graph *g = dropout_graph(4, 64, 0.5f, 1, &x, d);
    nb_graph_forward(g, 4);
    nb_graph_set_training(g, 0);
    nb_graph_backward(g, d[0]);
    const float *y = nb_node_value(d[0]).data, *dx = nb_node_grad(x).data;
    for (int i = 0; i < 4 * 64; i++)
        assert_true(dx[i] == y[i]);   /* dy = 1, x = 1: both are mask/(1-p) */
    nb_graph_free(g);
}

static void test_dropout_keeps_nan(void **state)
{
    (void)state;
    /* The mask multiplies, as PyTorch's does: a NaN stays NaN where it is dropped, and an
     * infinity becomes NaN there (inf·0), so the NaN guard still sees a diverged layer. */
    nb_node *x, *d[1];
    nb_graph *g = dropout_graph(2, 64, 0.5f, 1, &x, d);
    float *xv = nb_node_value(x).data;
    for (int i = 0; i < 128; i++)
        xv[i] = i % 2 ? NAN : INFINITY;
    nb_graph_forward(g, 2);
    const float *y = nb_node_value(d[0]).data;
    int dropped = 0;
    for (int i = 0; i < 128; i++) {
        if (i % 2)
            assert_true(isnan(y[i]));
        else if (isnan(y[i]))
            dropped++;
        else
            assert_true(y[i] == INFINITY);
    }
    assert_true(dropped > 0 && dropped < 64);
    nb_graph_free(g);
}

/* Forward and backward of two dropouts of one input at `threads` threads, into out. */
static void dropout_pass(int threads, snapshot *out)
{
    nb_set_threads(threads);
    enum { B = 13, N = 999 };
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, N);
    nb_input_requires_grad(x);
    nb_node *t = nb_input(g, N);
    nb_node *d1 = nb_dropout(g, x, 0.4f);
    nb_node *d2 = nb_dropout(g, d1, 0.25f);
    nb_node *loss = nb_mse(g, d2, t);
    compile_ok(g, B);
    nb_rng r;
    nb_rng_seed(&r, 5);
    fill_node(x, &r, 1.0);
    fill_node(t, &r, 1.0);
    nb_graph_set_step(g, 99, 3, 17);
    nb_graph_forward(g, B);
    nb_graph_backward(g, loss);
    nb_node *nodes[3] = {x, d1, d2};
    snap_nodes(out, g, nodes, 3);
    nb_graph_free(g);
}

static void test_dropout_threads(void **state)
{
    (void)state;
    snapshot out[4] = {{0}};
    for (int threads = 1; threads <= 4; threads++)
        dropout_pass(threads, &out[threads - 1]);
    nb_set_threads(2);
    for (int k = 1; k < 4; k++) {
        assert_int_equal(out[k].size, out[0].size);
        assert_memory_equal(out[k].bytes, out[0].bytes, out[0].size);
    }
    for (int k = 0; k < 4; k++)
        free(out[k].bytes);
}

static void test_dropout_split_passes(void **state)
{
    (void)state;
    /* Rows 0..63 in one pass equal the same rows in two or three passes, each told where its
     * rows start in the global batch (as ranks or micro-batches are), forward and backward. */
    enum { B = 64, N = 257 };
    nb_node *x, *d[1];
    nb_graph *g = dropout_graph(B, N, 0.5f, 1, &x, d);
    nb_rng r;
    nb_rng_seed(&r, 6);
    float *whole_x = malloc(B * N * sizeof(float));
    float *whole_y = malloc(B * N * sizeof(float));
    float *whole_dx = malloc(B * N * sizeof(float));
    assert_non_null(whole_x);
    assert_non_null(whole_y);
    assert_non_null(whole_dx);
    fill(whole_x, B * N, &r, 1.0);
    float *xv = nb_node_value(x).data;
    memcpy(xv, whole_x, B * N * sizeof(float));
    nb_graph_set_step(g, 42, 8, 0);
    nb_graph_forward(g, B);
    nb_graph_backward(g, d[0]);
    memcpy(whole_y, nb_node_value(d[0]).data, B * N * sizeof(float));
    memcpy(whole_dx, nb_node_grad(x).data, B * N * sizeof(float));
    static const int splits[][4] = {{0, 32, 64, -1}, {0, 21, 43, 64}, {0, 1, 64, -1}};
    for (size_t k = 0; k < sizeof splits / sizeof splits[0]; k++) {
        for (int part = 0; part < 3 && splits[k][part + 1] > 0; part++) {
            int lo = splits[k][part], hi = splits[k][part + 1];
            memcpy(xv, whole_x + lo * N, (size_t)(hi - lo) * N * sizeof(float));
            nb_graph_set_step(g, 42, 8, lo);
            nb_graph_forward(g, hi - lo);
            nb_graph_backward(g, d[0]);
            assert_memory_equal(nb_node_value(d[0]).data, whole_y + lo * N,
                                (size_t)(hi - lo) * N * sizeof(float));
            assert_memory_equal(nb_node_grad(x).data, whole_dx + lo * N,
                                (size_t)(hi - lo) * N * sizeof(float));
        }
    }
    /* Without the offset, the second half would get the first half's masks, not its own. */
    memcpy(xv, whole_x + 32 * N, 32 * N * sizeof(float));
    nb_graph_set_step(g, 42, 8, 0);
    nb_graph_forward(g, 32);
    assert_memory_not_equal(nb_node_value(d[0]).data, whole_y + 32 * N, 32 * N * sizeof(float));
    free(whole_x);
    free(whole_y);
    free(whole_dx);
    nb_graph_free(g);
}

/* The fraction of elements where two masks differ. */
static double mask_difference(const float *a, const float *b, size_t n)
{
    size_t differ = 0;
    for (size_t i = 0; i < n; i++)
        differ += (a[i] == 0.0f) != (b[i] == 0.0f);
    return (double)differ / (double)n;
}

static void test_dropout_masks_differ(void **state)
{
    (void)state;
    /* Two independent masks of rate p differ at a fraction 2p(1-p) = 0.5 of the elements for
     * p = 0.5: steps, seeds, layers and rows each give other masks; the same (seed, step, row)
     * gives the same one. */
    enum { B = 16, N = 1024 };
    const size_t total = (size_t)B * N;
    nb_node *x, *d[2];
    nb_graph *g = dropout_graph(B, N, 0.5f, 2, &x, d);
    float *first = malloc(total * sizeof(float)), *again = malloc(total * sizeof(float));
    assert_non_null(first);
    assert_non_null(again);
    nb_graph_set_step(g, 1, 10, 0);
    nb_graph_forward(g, B);
    memcpy(first, nb_node_value(d[0]).data, total * sizeof(float));
    /* The second layer, in the same pass. */
    double layers = mask_difference(first, nb_node_value(d[1]).data, total);
    nb_graph_forward(g, B);
    assert_memory_equal(first, nb_node_value(d[0]).data, total * sizeof(float));
    nb_graph_set_step(g, 1, 11, 0);
    nb_graph_forward(g, B);
    double steps = mask_difference(first, nb_node_value(d[0]).data, total);
    nb_graph_set_step(g, 2, 10, 0);
    nb_graph_forward(g, B);
    double seeds = mask_difference(first, nb_node_value(d[0]).data, total);
    /* Row 1 is not row 0 shifted or repeated. */
    double rows = mask_difference(first, first + N, (size_t)N);
    double sd = sqrt(0.25 / total), row_sd = sqrt(0.25 / N);
    assert_true(fabs(layers - 0.5) < 6 * sd);
    assert_true(fabs(steps - 0.5) < 6 * sd);
    assert_true(fabs(seeds - 0.5) < 6 * sd);
    assert_true(fabs(rows - 0.5) < 6 * row_sd);
    nb_graph_set_step(g, 1, 10, 0);
    nb_graph_forward(g, B);
    memcpy(again, nb_node_value(d[0]).data, total * sizeof(float));
    assert_memory_equal(first, again, total * sizeof(float));
    free(first);
    free(again);
    nb_graph_free(g);
}

static void test_dropout_on_images(void **state)
{
    (void)state;
    /* Any batched shape: units are the flattened sample's elements. */
    nb_graph *g = nb_graph_new();
    nb_node *x = images(g, 2, 3, 5);
    nb_input_requires_grad(x);
    nb_node *t = images(g, 2, 3, 5);
    nb_node *d = nb_dropout(g, x, 0.5f);
    nb_node *loss = nb_mse(g, nb_tanh(g, d), t);
    compile_ok(g, 3);
    nb_tensor v = nb_node_value(d);
    assert_int_equal(v.ndim, 4);
    assert_int_equal(v.shape[3], 5);
    nb_rng r;
    nb_rng_seed(&r, 8);
    fill_node(x, &r, 1.0);
    fill_node(t, &r, 1.0);
    nb_graph_set_step(g, 3, 4, 5);
    assert_true(nb_gradcheck(g, loss, 3, STEP) < TOLERANCE);
    nb_graph_free(g);
}

/* ---- add ---- */

static void test_add(void **state)
{
    (void)state;
    /* Values, and the gradient into both sides: add(tanh(x), x) (x feeds two ops), add(h, h)
     * (one node in both slots), and a residual block on images. */
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, 6);
    nb_input_requires_grad(x);
    nb_node *t = nb_input(g, 6);
    nb_node *h = nb_add(g, nb_tanh(g, x), x);
    nb_node *twice = nb_add(g, h, h);
    int ws[2] = {6, 6};
    nb_node *w = nb_param(g, "w", 2, ws);
    nb_node *res = nb_add(g, twice, nb_matmul(g, twice, w));
    nb_node *loss = nb_mse(g, res, t);
    compile_ok(g, 4);
    nb_rng r;
    nb_rng_seed(&r, 10);
    fill_node(x, &r, 1.0);
    fill_node(t, &r, 1.0);
    fill_params(g, &r, 0.3);
    nb_graph_forward(g, 4);
    const float *xv = nb_node_value(x).data, *tw = nb_node_value(twice).data;
    for (int i = 0; i < 24; i++) {
        float hv = tanhf(xv[i]) + xv[i];
        assert_true(nb_node_value(h).data[i] == hv);
        assert_true(tw[i] == hv + hv);
    }
    assert_true(nb_gradcheck(g, loss, 4, STEP) < TOLERANCE);
    nb_graph_free(g);

    g = nb_graph_new();
    nb_node *im = images(g, 2, 3, 3);
    nb_input_requires_grad(im);
    nb_node *target = images(g, 2, 3, 3);
    nb_node *block = nb_add(g, im, nb_tanh(g, nb_batchnorm(g, nb_add(g, im, im), "1", 0.1f,
                                                              1e-5f)));
    loss = nb_mse(g, block, target);
    compile_ok(g, 3);
    fill_node(im, &r, 1.0);
    fill_node(target, &r, 1.0);
    fill_params(g, &r, 1.0);
    assert_true(nb_gradcheck(g, loss, 3, STEP) < TOLERANCE);
    nb_graph_free(g);
}

/* ---- refusals ---- */

static void test_refusals(void **state)
{
    (void)state;
    nb_graph *g;
    int bad[3] = {2, 0, 3}, ok[3] = {2, 3, 3}, ws[2] = {3, 3};

    g = nb_graph_new();
    nb_input_shape(g, 4, ok);
    assert_refused(g, "an input's sample has 1 to 3 dimensions, not 4");
    g = nb_graph_new();
    nb_input_shape(g, 0, ok);
    assert_refused(g, "an input's sample has 1 to 3 dimensions, not 0");
    g = nb_graph_new();
    nb_input_shape(g, 3, bad);
    assert_refused(g, "dimension 2 has size 0");

    /* batchnorm */
    g = nb_graph_new();
    nb_batchnorm(g, nb_labels(g), "0", 0.1f, 1e-5f);
    assert_refused(g, "batchnorm: x must be a batch of vectors [B, n] or of images");
    g = nb_graph_new();
    nb_batchnorm(g, nb_param(g, "w", 2, ws), "0", 0.1f, 1e-5f);
    assert_refused(g, "batchnorm: x must be a batch");
    g = nb_graph_new();
    nb_batchnorm(g, nb_input_shape(g, 3, ok), "0", 0.1f, 0.0f);
    assert_refused(g, "batchnorm: momentum must be in [0, 1] and eps > 0");
    g = nb_graph_new();
    nb_batchnorm(g, nb_input_shape(g, 3, ok), "0", NAN, 1e-5f);
    assert_refused(g, "batchnorm: momentum must be in [0, 1] and eps > 0");
    g = nb_graph_new();
    nb_batchnorm(g, nb_input_shape(g, 3, ok), NULL, 0.1f, 1e-5f);
    assert_refused(g, "batchnorm: a name prefix");
    g = nb_graph_new();
    nb_batchnorm(g, nb_input_shape(g, 3, ok), "0", 0.1f, 1e-5f);
    nb_batchnorm(g, nb_input_shape(g, 3, ok), "0", 0.1f, 1e-5f);
    assert_refused(g, "two tensors are named '0.weight'");

    /* layernorm */
    g = nb_graph_new();
    nb_layernorm(g, nb_labels(g), "0", 1e-5f);
    assert_refused(g, "layernorm: x must be a batch of samples");
    g = nb_graph_new();
    nb_layernorm(g, nb_param(g, "w", 2, ws), "0", 1e-5f);
    assert_refused(g, "layernorm: x must be a batch of samples");
    static const float bad_eps[] = {0.0f, -1e-5f, NAN, INFINITY};
    for (size_t k = 0; k < sizeof bad_eps / sizeof bad_eps[0]; k++) {
        g = nb_graph_new();
        nb_layernorm(g, nb_input(g, 3), "0", bad_eps[k]);
        assert_refused(g, "layernorm: eps must be a positive number");
    }
    g = nb_graph_new();
    nb_layernorm(g, nb_input(g, 3), NULL, 1e-5f);
    assert_refused(g, "layernorm: a name prefix");
    g = nb_graph_new();
    nb_layernorm(g, NULL, "0", 1e-5f);
    assert_refused(g, "layernorm: missing input");

    /* dropout */
    static const float bad_p[] = {1.0f, -0.1f, 1.5f, NAN, INFINITY};
    for (size_t k = 0; k < sizeof bad_p / sizeof bad_p[0]; k++) {
        g = nb_graph_new();
        nb_dropout(g, nb_input(g, 3), bad_p[k]);
        assert_refused(g, "dropout: p must be in [0, 1), not");
    }
    g = nb_graph_new();
    nb_dropout(g, nb_labels(g), 0.5f);
    assert_refused(g, "dropout: x must be a batch of float samples");
    g = nb_graph_new();
    nb_dropout(g, nb_param(g, "w", 2, ws), 0.5f);
    assert_refused(g, "dropout: x must be a batch of float samples");
    g = nb_graph_new();
    nb_dropout(g, NULL, 0.5f);
    assert_refused(g, "dropout: missing input");

    /* add */
    g = nb_graph_new();
    nb_add(g, nb_input_shape(g, 3, ok), nb_input(g, 18));
    assert_refused(g, "add: a [B, 2, 3, 3] and b [B, 18] differ in shape");
    g = nb_graph_new();
    int transposed[3] = {3, 2, 3};
    nb_add(g, nb_input_shape(g, 3, ok), nb_input_shape(g, 3, transposed));
    assert_refused(g, "add: a [B, 2, 3, 3] and b [B, 3, 2, 3] differ in shape");
    g = nb_graph_new();
    nb_add(g, nb_input(g, 3), nb_param(g, "b", 1, ws));
    assert_refused(g, "add: a [B, 3] and b [3] differ in shape");
    g = nb_graph_new();
    nb_add(g, nb_input(g, 3), nb_labels(g));
    assert_refused(g, "add: labels are not a float tensor");
    g = nb_graph_new();
    nb_add(g, nb_input(g, 3), NULL);
    assert_refused(g, "add: missing input");
}

/* ---- against PyTorch: tests/norm_torch_check.py ----
 *
 *   test_ops_norm --torch batchnorm MOMENTUM EPS TRAIN_STEPS INFER_STEPS B C [H [W]]
 *   test_ops_norm --torch layernorm EPS STEPS B D1 [D2 [D3]]
 *
 * Builds x -> op -> mse(., t), named "0". Reads float32 from standard input: the op's weight
 * and bias, then for each step x and t; the steps run in training mode, then (batch norm) the
 * inference steps (layer norm: every other step in inference mode, which must not matter).
 * Writes float32 for each step: y, the loss, dx, dweight, dbias, and for batch norm the running
 * mean and variance and num_batches_tracked. */

static int read_floats(float *dst, size_t n)
{
    return fread(dst, sizeof *dst, n, stdin) == n ? 0 : -1;
}

static void write_floats(const float *src, size_t n) { fwrite(src, sizeof *src, n, stdout); }

static int torch_mode(int argc, char **argv)
{
    if (argc < 6)
        return fprintf(stderr, "usage: see tests/test_ops_norm.c\n"), 2;
    int bn = strcmp(argv[2], "batchnorm") == 0;
    int at = 3;
    float momentum = bn ? strtof(argv[at++], NULL) : 0.0f;
    float eps = strtof(argv[at++], NULL);
    int train_steps = atoi(argv[at++]);
    int infer_steps = bn ? atoi(argv[at++]) : 0;
    int ndim = argc - at;
    if (ndim < 2 || ndim > NB_MAX_DIMS)
        return fprintf(stderr, "a shape of 2 to %d dimensions\n", NB_MAX_DIMS), 2;
    int shape[NB_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        shape[d] = atoi(argv[at + d]);
    int batch = shape[0];
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input_shape(g, ndim - 1, shape + 1);
    nb_input_requires_grad(x);
    nb_node *t = nb_input_shape(g, ndim - 1, shape + 1);
    nb_node *y = bn ? nb_batchnorm(g, x, "0", momentum, eps) : nb_layernorm(g, x, "0", eps);
    nb_node *loss = nb_mse(g, y, t);
    nb_error err;
    if (nb_graph_compile(g, batch, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    nb_tensor w = nb_node_value(named(g, "0.weight").node);
    nb_tensor b = nb_node_value(named(g, "0.bias").node);
    size_t n_param = nb_tensor_numel(&w);
    size_t n_x = 1;
    for (int d = 0; d < ndim; d++)
        n_x *= (size_t)shape[d];
    if (read_floats(w.data, n_param) || read_floats(b.data, n_param))
        return fprintf(stderr, "short input\n"), 1;
    for (int step = 0; step < train_steps + infer_steps; step++) {
        if (read_floats(nb_node_value(x).data, n_x) || read_floats(nb_node_value(t).data, n_x))
            return fprintf(stderr, "short input\n"), 1;
        nb_graph_set_training(g, bn ? step < train_steps : step % 2 == 0);
        nb_graph_forward(g, batch);
        nb_graph_backward(g, loss);
        write_floats(nb_node_value(y).data, n_x);
        float l = nb_node_scalar(loss);
        write_floats(&l, 1);
        write_floats(nb_node_grad(x).data, n_x);
        write_floats(nb_node_grad(named(g, "0.weight").node).data, n_param);
        write_floats(nb_node_grad(named(g, "0.bias").node).data, n_param);
        if (bn) {
            write_floats(nb_node_value(named(g, "0.running_mean").node).data, n_param);
            write_floats(nb_node_value(named(g, "0.running_var").node).data, n_param);
            float count = (float)*named(g, "0.num_batches_tracked").counter;
            write_floats(&count, 1);
        }
    }
    nb_graph_free(g);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--torch") == 0)
        return torch_mode(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batchnorm2d_values),
        cmocka_unit_test(test_batchnorm2d_gradients),
        cmocka_unit_test(test_batchnorm2d_equals_1d_on_single_pixels),
        cmocka_unit_test(test_batchnorm2d_threads),
        cmocka_unit_test(test_layernorm_values),
        cmocka_unit_test(test_layernorm_shapes),
        cmocka_unit_test(test_layernorm_gradients),
        cmocka_unit_test(test_layernorm_threads),
        cmocka_unit_test(test_dropout_statistics),
        cmocka_unit_test(test_dropout_gradient_is_the_mask),
        cmocka_unit_test(test_dropout_identity),
        cmocka_unit_test(test_dropout_keeps_nan),
        cmocka_unit_test(test_dropout_threads),
        cmocka_unit_test(test_dropout_split_passes),
        cmocka_unit_test(test_dropout_masks_differ),
        cmocka_unit_test(test_dropout_on_images),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
