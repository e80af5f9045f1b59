/* The ops on images (src/ops/conv2d.c, pool2d.c, flatten.c, window2d.c) and image inputs:
 * gradient checks against central differences over many shapes (strides, paddings, odd sizes,
 * non-square kernels, a kernel the size of the input, 1x1 kernels, batches of 1 and of more
 * rows than a thread's share, with and without bias); max pooling's ties; flatten as a view
 * (shared buffers, gradients of a buffer with consumers both of it and of its view); results
 * bit-identical for 1 to 4 threads; and every builder refusal with its message.
 *
 * `test_ops_image --torch` reads one case from stdin and prints the op's output and gradients,
 * for tests/ops_image_torch_check.py to compare with PyTorch. */
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

static void fill_normal(float *x, size_t n, nb_rng *r, double scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(scale * nb_rng_normal(r));
}

static void compile_ok(nb_graph *g, int max_batch)
{
    nb_error err;
    if (nb_graph_compile(g, max_batch, &err) != 0)
        fail_msg("compile: %s", err.msg);
}

static size_t numel(const nb_node *n)
{
    nb_tensor t = nb_node_value(n);
    return nb_tensor_numel(&t);
}

/* ---- conv2d ---- */

typedef struct conv_case {
    int batch, channels, height, width, out, kh, kw, sh, sw, ph, pw, bias;
} conv_case;

static int out_size(int in, int pad, int kernel, int stride)
{
    return (in + 2 * pad - kernel) / stride + 1;
}

/* x -> conv2d -> mse against a random target, every parameter and x checked. */
static void gradcheck_conv(const conv_case *k)
{
    nb_graph *g = nb_graph_new();
    int sample[3] = {k->channels, k->height, k->width};
    nb_node *x = nb_input_shape(g, 3, sample);
    nb_input_requires_grad(x);
    int ws[4] = {k->out, k->channels, k->kh, k->kw}, bs[1] = {k->out};
    nb_node *w = nb_param(g, "w", 4, ws), *b = k->bias ? nb_param(g, "b", 1, bs) : NULL;
    int stride[2] = {k->sh, k->sw}, pad[2] = {k->ph, k->pw};
    nb_node *y = nb_conv2d(g, x, w, b, stride, pad);
    int ho = out_size(k->height, k->ph, k->kh, k->sh), wo = out_size(k->width, k->pw, k->kw, k->sw);
    int target_shape[3] = {k->out, ho, wo};
    nb_node *t = nb_input_shape(g, 3, target_shape);
    nb_node *loss = nb_mse(g, y, t);
    compile_ok(g, k->batch);
    nb_tensor yv = nb_node_value(y);
    assert_int_equal(yv.ndim, 4);
    assert_int_equal(yv.shape[1], k->out);
    assert_int_equal(yv.shape[2], ho);
    assert_int_equal(yv.shape[3], wo);
    nb_rng r;
    nb_rng_seed(&r, 7);
    size_t np;
    float *p = nb_graph_params(g, &np);
    fill_normal(p, np, &r, 0.5);
    fill_normal(nb_node_value(x).data, numel(x), &r, 1.0);
    fill_normal(nb_node_value(t).data, numel(t), &r, 1.0);
    double e = nb_gradcheck(g, loss, k->batch, STEP);
    if (!(e < TOLERANCE))
        fail_msg("conv2d B%d C%d %dx%d O%d k%dx%d s%dx%d p%dx%d bias %d: gradient error %g",
                 k->batch, k->channels, k->height, k->width, k->out, k->kh, k->kw, k->sh,
                 k->sw, k->ph, k->pw, k->bias, e);
    nb_graph_free(g);
}

static void test_conv2d_gradients(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        /* B  C  H  W  O kh kw sh sw ph pw bias */
        {2, 1, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1},   /* the reference CNN's "same" conv */
        {3, 2, 7, 6, 3, 3, 5, 2, 1, 1, 2, 1},   /* non-square kernel, stride and padding */
        {1, 3, 6, 7, 2, 2, 2, 2, 2, 0, 0, 0},   /* batch 1, no bias */
        {5, 2, 9, 8, 2, 3, 2, 3, 2, 0, 1, 1},   /* odd sizes, stride 3: the last rows unused */
        {2, 2, 4, 3, 3, 4, 3, 1, 1, 0, 0, 1},   /* kernel == input: a 1x1 output */
        {2, 3, 5, 4, 4, 1, 1, 1, 1, 0, 0, 1},   /* 1x1, stride 1, no padding: no columns */
        {2, 3, 5, 4, 2, 1, 1, 2, 1, 0, 0, 0},   /* 1x1 with a stride: columns */
        {2, 2, 3, 3, 2, 3, 3, 1, 1, 3, 2, 1},   /* padding larger than the kernel */
        {7, 1, 4, 5, 2, 2, 3, 1, 2, 1, 0, 1},   /* more rows than a thread's share */
        {2, 1, 1, 6, 2, 1, 3, 1, 1, 0, 1, 0},   /* a one-row image */
        /* 3x3, stride 1, 8 channels or more in: Winograd's method */
        {2, 8, 5, 6, 8, 3, 3, 1, 1, 1, 1, 1},   /* "same", an odd height */
        {3, 8, 7, 5, 9, 3, 3, 1, 1, 0, 0, 0},   /* no padding, odd sizes */
        {2, 9, 4, 4, 8, 3, 3, 1, 1, 2, 1, 1},   /* padding 2x1 */
        {1, 8, 3, 3, 8, 3, 3, 1, 1, 0, 0, 1},   /* a 1x1 output: one tile, half of it unused */
        {2, 8, 2, 3, 8, 3, 3, 1, 1, 3, 3, 0},   /* padding larger than the kernel */
        {2, 8, 4, 5, 1, 3, 3, 1, 1, 1, 1, 1},   /* one channel out */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        gradcheck_conv(&cases[i]);
}

/* Worked by hand: one 3x3 image, one 2x2 kernel, stride 1, padding 1, bias 0.5. */
static void test_conv2d_values(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    int sample[3] = {1, 3, 3}, ws[4] = {1, 1, 2, 2}, bs[1] = {1}, pad[2] = {1, 1};
    nb_node *x = nb_input_shape(g, 3, sample);
    nb_node *w = nb_param(g, "w", 4, ws), *b = nb_param(g, "b", 1, bs);
    nb_node *y = nb_conv2d(g, x, w, b, NULL, pad);
    compile_ok(g, 1);
    float xv[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, wv[4] = {1, 0, 0, -1}, bv[1] = {0.5f};
    memcpy(nb_node_value(x).data, xv, sizeof xv);
    memcpy(nb_node_value(w).data, wv, sizeof wv);
    memcpy(nb_node_value(b).data, bv, sizeof bv);
    nb_graph_forward(g, 1);
    /* y[i][j] = xp[i][j] - xp[i+1][j+1] + 0.5 over x padded by zeros: 4x4 */
    float expect[16] = {-0.5f, -1.5f, -2.5f, 0.5f, -3.5f, -3.5f, -3.5f, 3.5f,
                        -6.5f, -3.5f, -3.5f, 6.5f, 0.5f, 7.5f, 8.5f, 9.5f};
    nb_tensor t = nb_node_value(y);
    assert_int_equal(t.shape[2], 4);
    assert_int_equal(t.shape[3], 4);
    for (int i = 0; i < 16; i++)
        assert_float_equal(t.data[i], expect[i], 1e-6);
    nb_graph_free(g);
}

/* ---- pooling ---- */

typedef nb_node *(*pool_fn)(nb_graph *g, nb_node *x, const int kernel[2], const int stride[2]);

/* x -> pool -> mse; x holds distinct values 0.1 apart (a shuffled ramp), so that the
 * differences' steps never change which element of a window is its maximum. */
static void gradcheck_pool(pool_fn pool, int batch, int channels, int height, int width, int kh,
                           int kw, int sh, int sw)
{
    nb_graph *g = nb_graph_new();
    int sample[3] = {channels, height, width}, kernel[2] = {kh, kw}, stride[2] = {sh, sw};
    nb_node *x = nb_input_shape(g, 3, sample);
    nb_input_requires_grad(x);
    nb_node *y = pool(g, x, kernel, stride);
    int ho = out_size(height, 0, kh, sh), wo = out_size(width, 0, kw, sw);
    int ts[3] = {channels, ho, wo};
    nb_node *t = nb_input_shape(g, 3, ts);
    nb_node *loss = nb_mse(g, y, t);
    compile_ok(g, batch);
    assert_int_equal(nb_node_value(y).shape[2], ho);
    assert_int_equal(nb_node_value(y).shape[3], wo);
    nb_rng r;
    nb_rng_seed(&r, 11);
    size_t n = numel(x);
    int32_t *order = malloc(n * sizeof *order);
    assert_non_null(order);
    for (size_t i = 0; i < n; i++)
        order[i] = (int32_t)i;
    nb_shuffle(&r, order, (int)n);
    float *xv = nb_node_value(x).data;
    for (size_t i = 0; i < n; i++)
        xv[i] = 0.1f * (float)(order[i] - (int32_t)n / 2);
    free(order);
    fill_normal(nb_node_value(t).data, numel(t), &r, 1.0);
    double e = nb_gradcheck(g, loss, batch, STEP);
    if (!(e < TOLERANCE))
        fail_msg("pool B%d C%d %dx%d k%dx%d s%dx%d: gradient error %g", batch, channels, height,
                 width, kh, kw, sh, sw, e);
    nb_graph_free(g);
}

static void test_pool_gradients(void **state)
{
    (void)state;
    pool_fn pools[2] = {nb_maxpool2d, nb_avgpool2d};
    for (int i = 0; i < 2; i++) {
        gradcheck_pool(pools[i], 2, 3, 4, 4, 2, 2, 2, 2);   /* the reference CNN's */
        gradcheck_pool(pools[i], 1, 2, 7, 5, 3, 2, 2, 1);   /* odd, non-square, batch 1 */
        gradcheck_pool(pools[i], 7, 1, 5, 6, 2, 3, 1, 1);   /* overlapping windows, batch 7 */
        gradcheck_pool(pools[i], 2, 2, 3, 5, 3, 5, 1, 1);   /* kernel == input */
        gradcheck_pool(pools[i], 3, 2, 9, 7, 2, 2, 3, 4);   /* stride > kernel: gaps */
    }
}

/* Ties go to the first maximum in row-major order, as PyTorch's; overlapping windows add up;
 * a NaN is the maximum. One 3x3 plane, kernel 2, stride 1. */
static void test_maxpool_ties(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    int sample[3] = {1, 3, 3}, kernel[2] = {2, 2}, stride[2] = {1, 1};
    nb_node *x = nb_input_shape(g, 3, sample);
    nb_input_requires_grad(x);
    nb_node *y = nb_maxpool2d(g, x, kernel, stride);
    compile_ok(g, 2);
    float xv[18] = {5, 5, 1,
                    5, 2, 2,
                    0, 2, 2,
                    1, 2, 3,
                    4, NAN, 6,
                    7, 8, 9};
    memcpy(nb_node_value(x).data, xv, sizeof xv);
    nb_graph_forward(g, 2);
    nb_graph_backward(g, y); /* dy = 1 everywhere */
    const float *yv = nb_node_value(y).data, *dx = nb_node_grad(x).data;
    float expect_y[4] = {5, 5, 5, 2};
    for (int i = 0; i < 4; i++)
        assert_float_equal(yv[i], expect_y[i], 0);
    for (int i = 4; i < 8; i++)
        assert_true(isnan(yv[i]));
    float expect_dx[18] = {1, 1, 0,
                           1, 1, 0,
                           0, 0, 0,
                           0, 0, 0,
                           0, 4, 0,
                           0, 0, 0};
    for (int i = 0; i < 18; i++)
        assert_float_equal(dx[i], expect_dx[i], 0);
    nb_graph_free(g);
}

/* Max pooling against a plain reference (every window scanned in row-major order, a later
 * element taking over when greater or NaN; backward adding dy where the maximum was), on
 * planes of few distinct values and NaNs, so that most windows tie: the 2x2 path over whole
 * shares of planes (even heights) and plane by plane (odd heights), and the general loop.
 * x feeds one pool (backward sets dx) or two (the second adds to it). */
static void check_maxpool_against_reference(int height, int width, int k, int stride, int twice)
{
    nb_graph *g = nb_graph_new();
    int sample[3] = {2, height, width}, kernel[2] = {k, k}, strides[2] = {stride, stride};
    nb_node *x = nb_input_shape(g, 3, sample);
    nb_input_requires_grad(x);
    nb_node *y = nb_maxpool2d(g, x, kernel, strides);
    nb_node *top = twice ? nb_add(g, y, nb_maxpool2d(g, x, kernel, strides)) : y;
    int batch = 3;
    compile_ok(g, batch);
    nb_rng r;
    nb_rng_seed(&r, (uint64_t)(height * 100 + width * 10 + k + twice));
    float *xv = nb_node_value(x).data;
    size_t n = numel(x);
    for (size_t i = 0; i < n; i++) {
        uint64_t v = nb_rng_next(&r) % 9;
        xv[i] = v == 8 ? NAN : (float)(v % 3);
    }
    nb_graph_forward(g, batch);
    nb_graph_backward(g, top); /* dy = 1 everywhere */
    int ho = out_size(height, 0, k, stride), wo = out_size(width, 0, k, stride);
    float *dx = calloc(n, sizeof *dx);
    assert_non_null(dx);
    const float *yv = nb_node_value(y).data, *got = nb_node_grad(x).data;
    for (int plane = 0; plane < batch * 2; plane++) {
        const float *xp = xv + (size_t)plane * (size_t)(height * width);
        for (int oh = 0; oh < ho; oh++)
            for (int ow = 0; ow < wo; ow++) {
                int at = oh * stride * width + ow * stride;
                float best = xp[at];
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) {
                        int e = (oh * stride + i) * width + ow * stride + j;
                        if (xp[e] > best || isnan(xp[e])) {
                            best = xp[e];
                            at = e;
                        }
                    }
                float y_got = yv[(size_t)plane * (size_t)(ho * wo) + (size_t)(oh * wo + ow)];
                if (!(y_got == best || (isnan(y_got) && isnan(best))))
                    fail_msg("maxpool %dx%d k%d s%d: plane %d output (%d, %d) is %g, not %g",
                             height, width, k, stride, plane, oh, ow, (double)y_got,
                             (double)best);
                dx[(size_t)plane * (size_t)(height * width) + (size_t)at] += twice ? 2.0f : 1.0f;
            }
    }
    for (size_t i = 0; i < n; i++)
        if (got[i] != dx[i])
            fail_msg("maxpool %dx%d k%d s%d%s: dx[%zu] is %g, not %g", height, width, k, stride,
                     twice ? " (two consumers)" : "", i, (double)got[i], (double)dx[i]);
    free(dx);
    nb_graph_free(g);
}

static void test_maxpool_reference(void **state)
{
    (void)state;
    for (int twice = 0; twice < 2; twice++) {
        check_maxpool_against_reference(4, 6, 2, 2, twice);   /* 2x2, planes one after another */
        check_maxpool_against_reference(5, 7, 2, 2, twice);   /* 2x2, a row and column left */
        check_maxpool_against_reference(6, 9, 3, 3, twice);   /* 3x3 windows side by side */
        check_maxpool_against_reference(5, 5, 2, 1, twice);   /* overlapping */
        check_maxpool_against_reference(7, 8, 3, 2, twice);   /* overlapping, odd */
        check_maxpool_against_reference(6, 6, 2, 3, twice);   /* gaps */
    }
}

/* ---- flatten ---- */

static void test_flatten_is_a_view(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    int sample[3] = {2, 3, 4};
    nb_node *x = nb_input_shape(g, 3, sample);
    nb_input_requires_grad(x);
    nb_node *f = nb_flatten(g, x);
    nb_node *t = nb_input(g, 24);
    nb_node *loss = nb_mse(g, f, t);
    compile_ok(g, 3);
    nb_tensor fv = nb_node_value(f), xv = nb_node_value(x);
    assert_int_equal(fv.ndim, 2);
    assert_int_equal(fv.shape[0], 3);
    assert_int_equal(fv.shape[1], 24);
    assert_ptr_equal(fv.data, xv.data);
    assert_ptr_equal(nb_node_grad(f).data, nb_node_grad(x).data);
    nb_rng r;
    nb_rng_seed(&r, 3);
    fill_normal(xv.data, 72, &r, 1.0);
    fill_normal(nb_node_value(t).data, 72, &r, 1.0);
    nb_graph_forward(g, 3);
    nb_graph_backward(g, loss);
    const float *dx = nb_node_grad(x).data, *tv = nb_node_value(t).data;
    for (int i = 0; i < 72; i++)
        assert_float_equal(dx[i], 2.0f * (xv.data[i] - tv[i]) / 72.0f, 1e-6);
    /* Flattening a vector is the vector; a flatten of a flatten is still x's buffers. */
    nb_graph_free(g);
    g = nb_graph_new();
    x = nb_input_shape(g, 2, sample);
    nb_node *f2 = nb_flatten(g, nb_flatten(g, x));
    compile_ok(g, 2);
    assert_ptr_equal(nb_node_value(f2).data, nb_node_value(x).data);
    assert_int_equal(nb_node_value(f2).shape[1], 6);
    nb_graph_free(g);
}

/* One gradient buffer, two routes into it: h feeds relu (before the view) and its view feeds
 * the loss. loss = mean((h - relu(h))^2) = mean(min(h, 0)^2): dh = 2 min(h, 0) / n, which
 * both consumers must add up to (neither may overwrite the other). */
static void test_view_and_owner_consumers(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    int sample[3] = {2, 4, 3}, ws[4] = {3, 2, 3, 3}, pad[2] = {1, 1};
    nb_node *x = nb_input_shape(g, 3, sample);
    nb_input_requires_grad(x);
    nb_node *h = nb_conv2d(g, x, nb_param(g, "w", 4, ws), NULL, NULL, pad);
    nb_node *u = nb_relu(g, h);
    nb_node *loss = nb_mse(g, nb_flatten(g, h), nb_flatten(g, u));
    compile_ok(g, 3);
    nb_rng r;
    nb_rng_seed(&r, 5);
    size_t np;
    float *p = nb_graph_params(g, &np);
    fill_normal(p, np, &r, 0.5);
    fill_normal(nb_node_value(x).data, numel(x), &r, 1.0);
    nb_graph_forward(g, 3);
    nb_graph_backward(g, loss);
    const float *hv = nb_node_value(h).data, *dh = nb_node_grad(h).data;
    size_t n = numel(h);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(dh[i], 2.0f * fminf(hv[i], 0.0f) / (float)n, 1e-7);
    assert_true(nb_gradcheck(g, loss, 3, 1e-3) < TOLERANCE);
    nb_graph_free(g);
}

/* Backward from a view: its owner's buffer is seeded with ones, and an earlier consumer of the
 * owner that the root does not depend on adds nothing to it. */
static void test_backward_from_a_view(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    int sample[3] = {1, 3, 3};
    nb_node *x = nb_input_shape(g, 3, sample);
    nb_input_requires_grad(x);
    nb_node *a = nb_relu(g, x);
    nb_node *h = nb_tanh(g, a);
    (void)nb_sigmoid(g, h); /* a consumer of h that the root below does not depend on */
    nb_node *v = nb_flatten(g, h);
    compile_ok(g, 2);
    float *xv = nb_node_value(x).data;
    for (int i = 0; i < 18; i++)
        xv[i] = 0.1f * (float)(i + 1);
    nb_graph_forward(g, 2);
    nb_graph_backward(g, v);
    const float *dx = nb_node_grad(x).data, *hv = nb_node_value(h).data;
    for (int i = 0; i < 18; i++)
        assert_float_equal(dx[i], 1.0f - hv[i] * hv[i], 1e-6);
    nb_graph_free(g);
}

/* ---- a small CNN end to end: gradients through every op, and thread counts ---- */

typedef struct cnn {
    nb_graph *g;
    nb_node *x, *t, *loss, *nodes[8];
    int n_nodes;
} cnn;

/* x [C=3, 11, 10] -> conv 3x3 pad 1 + bias -> relu -> maxpool 3 stride 2 (smooth: tanh ->
 * avgpool) -> conv 3x2 stride 2x1 pad 0x1 -> avgpool 2 stride 1 -> conv 1x1 + bias -> flatten
 * -> dense -> mse. */
static cnn build_cnn(int max_batch, int smooth)
{
    cnn c;
    memset(&c, 0, sizeof c);
    nb_graph *g = c.g = nb_graph_new();
    int sample[3] = {3, 11, 10};
    c.x = nb_input_shape(g, 3, sample);
    nb_input_requires_grad(c.x);
    int w1[4] = {8, 3, 3, 3}, b1[1] = {8}, w2[4] = {6, 8, 3, 2}, w3[4] = {5, 6, 1, 1};
    int b3[1] = {5}, pad1[2] = {1, 1}, k3[2] = {3, 3}, s2[2] = {2, 2}, s21[2] = {2, 1};
    int pad01[2] = {0, 1}, k2[2] = {2, 2}, s1[2] = {1, 1};
    nb_node *h = nb_conv2d(g, c.x, nb_param(g, "c1.w", 4, w1), nb_param(g, "c1.b", 1, b1),
                           NULL, pad1);
    c.nodes[c.n_nodes++] = h;
    h = smooth ? nb_avgpool2d(g, nb_tanh(g, h), k3, s2) : nb_maxpool2d(g, nb_relu(g, h), k3, s2);
    c.nodes[c.n_nodes++] = h;
    h = nb_conv2d(g, h, nb_param(g, "c2.w", 4, w2), NULL, s21, pad01);
    c.nodes[c.n_nodes++] = h;
    h = nb_avgpool2d(g, h, k2, s1);
    c.nodes[c.n_nodes++] = h;
    h = nb_conv2d(g, h, nb_param(g, "c3.w", 4, w3), nb_param(g, "c3.b", 1, b3), NULL, NULL);
    c.nodes[c.n_nodes++] = h;
    h = nb_flatten(g, h);
    int features = nb_node_value(h).shape[1];
    int wd[2] = {4, features};
    nb_node *d = nb_dense(g, h, nb_param(g, "d.w", 2, wd), NULL, NB_IDENTITY, 0.0f);
    c.nodes[c.n_nodes++] = d;
    c.t = nb_input(g, 4);
    c.loss = nb_mse(g, d, c.t);
    compile_ok(g, max_batch);
    nb_rng r;
    nb_rng_seed(&r, 13);
    size_t np;
    float *p = nb_graph_params(g, &np);
    fill_normal(p, np, &r, 0.3);
    fill_normal(nb_node_value(c.x).data, numel(c.x), &r, 1.0);
    fill_normal(nb_node_value(c.t).data, numel(c.t), &r, 1.0);
    return c;
}

static void test_cnn_gradients(void **state)
{
    (void)state;
    cnn c = build_cnn(2, 1);
    double e = nb_gradcheck(c.g, c.loss, 2, STEP);
    if (!(e < TOLERANCE))
        fail_msg("cnn gradient error %g", e);
    nb_graph_free(c.g);
}

/* Everything a pass computes, in one buffer: the loss, every op's output, every parameter
 * gradient and x's gradient. */
static float *snapshot(cnn *c, int batch, size_t *count)
{
    nb_graph_forward(c->g, batch);
    nb_graph_backward(c->g, c->loss);
    size_t np, total = 1 + numel(c->x); /* numel: of this pass's batch */
    nb_graph_grads(c->g, &np);
    total += np;
    for (int i = 0; i < c->n_nodes; i++)
        total += numel(c->nodes[i]);
    float *s = malloc(total * sizeof *s), *at = s;
    assert_non_null(s);
    *at++ = nb_node_scalar(c->loss);
    for (int i = 0; i < c->n_nodes; i++) {
        memcpy(at, nb_node_value(c->nodes[i]).data, numel(c->nodes[i]) * sizeof *s);
        at += numel(c->nodes[i]);
    }
    memcpy(at, nb_graph_grads(c->g, &np), np * sizeof *s);
    at += np;
    memcpy(at, nb_node_grad(c->x).data, numel(c->x) * sizeof *s);
    *count = total;
    return s;
}

static void test_thread_counts_bit_identical(void **state)
{
    (void)state;
    int batches[3] = {7, 3, 1};
    for (int smooth = 0; smooth < 2; smooth++) {
        cnn c = build_cnn(7, smooth);
        for (int bi = 0; bi < 3; bi++) {
            nb_set_threads(1);
            size_t n1, n;
            float *one = snapshot(&c, batches[bi], &n1);
            for (int threads = 2; threads <= 4; threads++) {
                nb_set_threads(threads);
                float *other = snapshot(&c, batches[bi], &n);
                assert_int_equal(n, n1);
                if (memcmp(one, other, n * sizeof *one) != 0)
                    fail_msg("batch %d, %s pooling: %d threads differ from 1", batches[bi],
                             smooth ? "average" : "max", threads);
                free(other);
            }
            free(one);
        }
        nb_graph_free(c.g);
    }
    nb_set_threads(2);
}

/* ---- builder refusals ---- */

static void expect_error(nb_graph *g, const char *part)
{
    nb_error err;
    assert_int_not_equal(nb_graph_compile(g, 2, &err), 0);
    if (!strstr(err.msg, part))
        fail_msg("expected an error with \"%s\", got \"%s\"", part, err.msg);
    nb_graph_free(g);
}

typedef enum { X_IMAGE, X_VECTOR, X_LABELS } x_kind;

/* A graph with x [B, 2, 5, 4] (or a vector, or labels) and w [3, 2, 3, 3], for refusals. */
static nb_graph *image_graph(x_kind kind, nb_node **x, nb_node **w)
{
    nb_graph *g = nb_graph_new();
    int sample[3] = {2, 5, 4}, ws[4] = {3, 2, 3, 3};
    *x = kind == X_IMAGE ? nb_input_shape(g, 3, sample)
         : kind == X_VECTOR ? nb_input(g, 40) : nb_labels(g);
    *w = nb_param(g, "w", 4, ws);
    return g;
}

static void test_conv2d_refusals(void **state)
{
    (void)state;
    nb_node *x, *w;
    nb_graph *g = image_graph(X_VECTOR, &x, &w);
    nb_conv2d(g, x, w, NULL, NULL, NULL);
    expect_error(g, "conv2d: x must be a batch of images [B, C, H, W], not a tensor of 2 dimensions");
    g = image_graph(X_LABELS, &x, &w);
    nb_conv2d(g, x, w, NULL, NULL, NULL);
    expect_error(g, "conv2d: x must be a batch of images [B, C, H, W], not labels");
    g = image_graph(X_IMAGE, &x, &w);
    int ws3[3] = {3, 2, 3};
    nb_conv2d(g, x, nb_param(g, "w3", 3, ws3), NULL, NULL, NULL);
    expect_error(g, "conv2d: w must be kernels [O, C, kh, kw], not a tensor of 3 dimensions");
    g = image_graph(X_IMAGE, &x, &w);
    nb_conv2d(g, x, x, NULL, NULL, NULL);
    expect_error(g, "conv2d: w must be kernels [O, C, kh, kw], not a batched tensor");
    g = image_graph(X_IMAGE, &x, &w);
    int ws1[4] = {3, 1, 3, 3};
    nb_conv2d(g, x, nb_param(g, "w1", 4, ws1), NULL, NULL, NULL);
    expect_error(g, "conv2d: x has 2 channels but w [3, 1, 3, 3] takes 1");
    g = image_graph(X_IMAGE, &x, &w);
    int bs[1] = {4};
    nb_conv2d(g, x, w, nb_param(g, "b", 1, bs), NULL, NULL);
    expect_error(g, "conv2d: b must be a vector of 3, one per kernel of w");
    int strides[3][2] = {{0, 1}, {1, -2}, {0, 0}};
    for (int i = 0; i < 3; i++) {
        g = image_graph(X_IMAGE, &x, &w);
        nb_conv2d(g, x, w, NULL, strides[i], NULL);
        char msg[80];
        snprintf(msg, sizeof msg, "conv2d: the stride %dx%d must be positive", strides[i][0],
                 strides[i][1]);
        expect_error(g, msg);
    }
    g = image_graph(X_IMAGE, &x, &w);
    int negative[2] = {1, -1};
    nb_conv2d(g, x, w, NULL, NULL, negative);
    expect_error(g, "conv2d: the padding 1x-1 must not be negative");
    /* x is 5x4: a 5x5 kernel does not fit unpadded, fits padded by 1 */
    int big[4] = {3, 2, 5, 5}, one[2] = {1, 1};
    g = image_graph(X_IMAGE, &x, &w);
    nb_conv2d(g, x, nb_param(g, "w5", 4, big), NULL, NULL, NULL);
    expect_error(g, "conv2d: the kernel 5x5 is larger than the input 5x4");
    int huge[4] = {3, 2, 8, 3};
    g = image_graph(X_IMAGE, &x, &w);
    nb_conv2d(g, x, nb_param(g, "w8", 4, huge), NULL, NULL, one);
    expect_error(g, "conv2d: the kernel 8x3 is larger than the input 5x4 padded by 1x1");
    g = image_graph(X_IMAGE, &x, &w);
    assert_non_null(nb_conv2d(g, x, nb_param(g, "w5", 4, big), NULL, NULL, one));
    nb_graph_free(g);
    g = image_graph(X_IMAGE, &x, &w);
    nb_conv2d(g, x, NULL, NULL, NULL, NULL);
    expect_error(g, "conv2d: missing input");
}

static void test_pool_and_flatten_refusals(void **state)
{
    (void)state;
    pool_fn pools[2] = {nb_maxpool2d, nb_avgpool2d};
    const char *names[2] = {"maxpool2d", "avgpool2d"};
    nb_node *x, *w;
    char msg[120];
    for (int i = 0; i < 2; i++) {
        int k2[2] = {2, 2}, k0[2] = {0, 2}, k6[2] = {6, 1}, s0[2] = {1, 0};
        nb_graph *g = image_graph(X_VECTOR, &x, &w);
        pools[i](g, x, k2, NULL);
        snprintf(msg, sizeof msg, "%s: x must be a batch of images [B, C, H, W], not a tensor "
                 "of 2 dimensions", names[i]);
        expect_error(g, msg);
        g = image_graph(X_IMAGE, &x, &w);
        pools[i](g, x, k0, NULL);
        snprintf(msg, sizeof msg, "%s: the kernel 0x2 must be positive", names[i]);
        expect_error(g, msg);
        g = image_graph(X_IMAGE, &x, &w);
        pools[i](g, x, k2, s0);
        snprintf(msg, sizeof msg, "%s: the stride 1x0 must be positive", names[i]);
        expect_error(g, msg);
        g = image_graph(X_IMAGE, &x, &w);
        pools[i](g, x, k6, NULL);
        snprintf(msg, sizeof msg, "%s: the kernel 6x1 is larger than the input 5x4", names[i]);
        expect_error(g, msg);
        g = image_graph(X_IMAGE, &x, &w);
        pools[i](g, x, NULL, NULL);
        snprintf(msg, sizeof msg, "%s: no kernel size", names[i]);
        expect_error(g, msg);
        /* stride NULL is the kernel: 5x4 by 2x2 windows -> 2x2 */
        g = image_graph(X_IMAGE, &x, &w);
        nb_node *y = pools[i](g, x, k2, NULL);
        compile_ok(g, 1);
        assert_int_equal(nb_node_value(y).shape[2], 2);
        assert_int_equal(nb_node_value(y).shape[3], 2);
        nb_graph_free(g);
    }
    nb_graph *g = image_graph(X_LABELS, &x, &w);
    nb_flatten(g, x);
    expect_error(g, "flatten: x must be a batch of float tensors [B, ...]");
    g = image_graph(X_IMAGE, &x, &w);
    nb_flatten(g, w);
    expect_error(g, "flatten: x must be a batch of float tensors [B, ...]");
    g = image_graph(X_IMAGE, &x, &w);
    nb_flatten(g, NULL);
    expect_error(g, "flatten: missing input");
}

static void test_input_shapes(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    int chw[3] = {3, 4, 5}, hw[2] = {6, 7};
    nb_node *img = nb_input_shape(g, 3, chw), *mat = nb_input_shape(g, 2, hw);
    nb_node *vec = nb_input(g, 9), *same = nb_input_shape(g, 1, chw);
    compile_ok(g, 4);
    nb_tensor t = nb_node_value(img);
    assert_int_equal(t.ndim, 4);
    assert_int_equal(t.shape[0], 4);
    assert_int_equal(t.shape[1], 3);
    assert_int_equal(t.shape[3], 5);
    assert_int_equal(nb_node_value(mat).ndim, 3);
    assert_int_equal(nb_node_value(vec).ndim, 2);
    assert_int_equal(nb_node_value(vec).shape[1], 9);
    assert_int_equal(nb_node_value(same).shape[1], 3);
    /* the batch dimension follows the pass */
    nb_graph_forward(g, 2);
    assert_int_equal(nb_node_value(img).shape[0], 2);
    nb_graph_free(g);

    int four[4] = {1, 2, 3, 4}, bad[3] = {3, 0, 5};
    g = nb_graph_new();
    nb_input_shape(g, 4, four);
    expect_error(g, "an input's sample has 1 to 3 dimensions, not 4");
    g = nb_graph_new();
    nb_input_shape(g, 0, four);
    expect_error(g, "an input's sample has 1 to 3 dimensions, not 0");
    g = nb_graph_new();
    nb_input_shape(g, 3, bad);
    expect_error(g, "dimension 2 has size 0; sizes must be positive");
    g = nb_graph_new();
    nb_input(g, -3);
    expect_error(g, "dimension 1 has size -3; sizes must be positive");
}

/* ---- `--torch`: one case from stdin, its output and gradients on stdout ---- */

static int read_floats(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (scanf("%f", &x[i]) != 1)
            return -1;
    return 0;
}

static void print_floats(const char *name, const float *x, size_t n)
{
    printf("%s", name);
    for (size_t i = 0; i < n; i++)
        printf(" %.9g", x[i]);
    printf("\n");
}

/* Input, first line: one of
 *   conv2d B C H W O kh kw sh sw ph pw bias
 *   maxpool2d B C H W kh kw sh sw          (likewise avgpool2d)
 *   chain B C H W O kh kw sh sw ph pw pool_k pool_s classes
 *       conv2d (with bias) -> relu -> maxpool2d -> flatten -> matmul [classes, features]
 * then the numbers of x, the parameters in that order, and the target of the mse loss.
 * Output: "y ...", "dx ...", then each parameter's gradient ("dw", "db", "dw2"). Runs on
 * THREADS threads (the second argument, default 2). */
static int torch_case(int threads)
{
    char op[16];
    int v[15] = {0};
    if (scanf("%15s", op) != 1)
        return 2;
    int n_ints = strcmp(op, "conv2d") == 0 ? 12 : strcmp(op, "chain") == 0 ? 14 : 8;
    for (int i = 0; i < n_ints; i++)
        if (scanf("%d", &v[i]) != 1)
            return 2;
    nb_graph *g = nb_graph_new();
    int sample[3] = {v[1], v[2], v[3]};
    nb_node *x = nb_input_shape(g, 3, sample), *y, *params[3] = {NULL, NULL, NULL};
    nb_input_requires_grad(x);
    const char *names[3] = {"dw", "db", "dw2"};
    if (strcmp(op, "conv2d") == 0 || strcmp(op, "chain") == 0) {
        int ws[4] = {v[4], v[1], v[5], v[6]}, bs[1] = {v[4]};
        int stride[2] = {v[7], v[8]}, pad[2] = {v[9], v[10]};
        params[0] = nb_param(g, "w", 4, ws);
        int bias = strcmp(op, "chain") == 0 || v[11];
        params[1] = bias ? nb_param(g, "b", 1, bs) : NULL;
        y = nb_conv2d(g, x, params[0], params[1], stride, pad);
        if (strcmp(op, "chain") == 0) {
            int k[2] = {v[11], v[11]}, s[2] = {v[12], v[12]};
            y = nb_flatten(g, nb_maxpool2d(g, nb_relu(g, y), k, s));
            int wd[2] = {v[13], y ? nb_node_value(y).shape[1] : 1};
            params[2] = nb_param(g, "w2", 2, wd);
            y = nb_matmul(g, y, params[2]);
        }
    } else {
        int k[2] = {v[4], v[5]}, s[2] = {v[6], v[7]};
        if (strcmp(op, "maxpool2d") != 0 && strcmp(op, "avgpool2d") != 0) {
            fprintf(stderr, "test_ops_image: unknown op '%s'\n", op);
            nb_graph_free(g);
            return 2;
        }
        y = op[0] == 'm' ? nb_maxpool2d(g, x, k, s) : nb_avgpool2d(g, x, k, s);
    }
    nb_node *t = NULL, *loss = NULL;
    if (y) {
        nb_tensor yv = nb_node_value(y);
        int ts[3] = {yv.shape[1], yv.shape[2], yv.shape[3]};
        t = nb_input_shape(g, yv.ndim - 1, ts);
        loss = nb_mse(g, y, t);
    }
    nb_error err;
    if (nb_graph_compile(g, v[0], &err) != 0) {
        fprintf(stderr, "test_ops_image: %s\n", err.msg);
        nb_graph_free(g);
        return 1;
    }
    int bad = read_floats(nb_node_value(x).data, numel(x));
    for (int i = 0; i < 3; i++)
        if (params[i])
            bad |= read_floats(nb_node_value(params[i]).data, numel(params[i]));
    bad |= read_floats(nb_node_value(t).data, numel(t));
    if (bad) {
        fprintf(stderr, "test_ops_image: too few numbers on stdin\n");
        nb_graph_free(g);
        return 2;
    }
    nb_set_threads(threads);
    nb_graph_forward(g, v[0]);
    nb_graph_backward(g, loss);
    print_floats("y", nb_node_value(y).data, numel(y));
    print_floats("dx", nb_node_grad(x).data, numel(x));
    for (int i = 0; i < 3; i++)
        if (params[i])
            print_floats(names[i], nb_node_grad(params[i]).data, numel(params[i]));
    nb_graph_free(g);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--torch") == 0)
        return torch_case(argc >= 3 ? atoi(argv[2]) : 2);
    nb_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_shapes),
        cmocka_unit_test(test_conv2d_values),
        cmocka_unit_test(test_conv2d_gradients),
        cmocka_unit_test(test_pool_gradients),
        cmocka_unit_test(test_maxpool_ties),
        cmocka_unit_test(test_maxpool_reference),
        cmocka_unit_test(test_flatten_is_a_view),
        cmocka_unit_test(test_view_and_owner_consumers),
        cmocka_unit_test(test_backward_from_a_view),
        cmocka_unit_test(test_cnn_gradients),
        cmocka_unit_test(test_thread_counts_bit_identical),
        cmocka_unit_test(test_conv2d_refusals),
        cmocka_unit_test(test_pool_and_flatten_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
