/* nb_activate: an activation computed by the op before it (dense, conv2d, batch norm on vectors
 * and on images) gives the same bits as the activation as an op of its own, forward and
 * backward, in training and inference mode and on 1 and 3 threads; the fused graph's gradients
 * pass a check against central differences; and the activation stays an op of its own
 * whenever fusing would be wrong (another node already reads the op's output, the op already
 * has an activation, a leaky slope <= 0 on an op that cannot keep its input, a node that is
 * not an op). nb_maxpool2d_fused likewise: a batch norm on images that pools its own output
 * against batchnorm -> relu -> maxpool2d. */
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

#define BATCH 5

/* OP_CONV2D_3X3: a 3x3 kernel with stride 1 and 8 channels in, which conv2d computes by
 * Winograd's method; OP_CONV2D by im2col. */
typedef enum op_kind {
    OP_DENSE, OP_CONV2D, OP_CONV2D_3X3, OP_BATCHNORM, OP_BATCHNORM2D, OP_KINDS
} op_kind;
static const char *const op_names[OP_KINDS] = {"dense", "conv2d", "conv2d 3x3", "batchnorm",
                                               "batchnorm2d"};

typedef struct activation_case {
    nb_activation act;
    float slope;
    const char *name;
} activation_case;

static const activation_case activations[] = {
    {NB_RELU, 0.0f, "relu"},          {NB_LEAKY_RELU, 0.1f, "leaky_relu(0.1)"},
    {NB_TANH, 0.0f, "tanh"},          {NB_SIGMOID, 0.0f, "sigmoid"},
    {NB_LEAKY_RELU, 0.0f, "leaky_relu(0)"}, {NB_LEAKY_RELU, -0.5f, "leaky_relu(-0.5)"},
};
enum { ACTIVATIONS = sizeof activations / sizeof activations[0] };

typedef struct built {
    nb_graph *g;
    nb_node *x, *op, *y, *loss;
} built;

/* The loss (mse of b->y against a target), the graph compiled, and the same data and
 * parameters in any two graphs built alike (their tensors are made in the same order). */
static void finish(built *b, const char *what)
{
    nb_graph *g = b->g;
    nb_tensor yv = nb_node_value(b->y);
    int ts[3] = {yv.shape[1], yv.ndim > 2 ? yv.shape[2] : 0, yv.ndim > 3 ? yv.shape[3] : 0};
    nb_node *t = nb_input_shape(g, yv.ndim - 1, ts);
    b->loss = nb_mse(g, b->y, t);
    nb_error err;
    if (nb_graph_compile(g, BATCH, &err) != 0)
        fail_msg("%s: compile: %s", what, err.msg);
    nb_rng r;
    nb_rng_seed(&r, 5);
    size_t np;
    float *p = nb_graph_params(g, &np);
    for (size_t i = 0; i < np; i++)
        p[i] = (float)(0.7 * nb_rng_normal(&r));
    nb_tensor xv = nb_node_value(b->x), tv = nb_node_value(t);
    for (size_t i = 0; i < nb_tensor_numel(&xv); i++)
        xv.data[i] = (float)nb_rng_normal(&r);
    for (size_t i = 0; i < nb_tensor_numel(&tv); i++)
        tv.data[i] = (float)(0.5 * nb_rng_normal(&r));
}

/* x -> op -> act -> mse against a target; act by nb_activate (fuse) or as its own op. */
static built build(op_kind kind, const activation_case *a, int fuse)
{
    built b = {nb_graph_new(), NULL, NULL, NULL, NULL};
    nb_graph *g = b.g;
    int image[3] = {kind == OP_CONV2D_3X3 ? 8 : 3, 6, 5}, vector[1] = {7};
    int is_image = kind == OP_CONV2D || kind == OP_CONV2D_3X3 || kind == OP_BATCHNORM2D;
    b.x = is_image ? nb_input_shape(g, 3, image) : nb_input_shape(g, 1, vector);
    nb_input_requires_grad(b.x);
    if (kind == OP_DENSE) {
        int ws[2] = {4, 7}, bs[1] = {4};
        b.op = nb_dense(g, b.x, nb_param(g, "w", 2, ws), nb_param(g, "b", 1, bs), NB_IDENTITY,
                        0.0f);
    } else if (kind == OP_CONV2D) {
        int ws[4] = {4, 3, 3, 2}, bs[1] = {4}, stride[2] = {1, 2}, pad[2] = {1, 0};
        b.op = nb_conv2d(g, b.x, nb_param(g, "w", 4, ws), nb_param(g, "b", 1, bs), stride,
                         pad);
    } else if (kind == OP_CONV2D_3X3) {
        int ws[4] = {8, 8, 3, 3}, bs[1] = {8}, pad[2] = {1, 1};
        b.op = nb_conv2d(g, b.x, nb_param(g, "w", 4, ws), nb_param(g, "b", 1, bs), NULL, pad);
    } else {
        b.op = nb_batchnorm(g, b.x, "bn", 0.1f, 1e-5f);
    }
    if (fuse) {
        b.y = nb_activate(g, b.op, a->act, a->slope);
    } else {
        switch (a->act) {
        case NB_LEAKY_RELU: b.y = nb_leaky_relu(g, b.op, a->slope); break;
        case NB_TANH: b.y = nb_tanh(g, b.op); break;
        case NB_SIGMOID: b.y = nb_sigmoid(g, b.op); break;
        default: b.y = nb_relu(g, b.op); break;
        }
    }
    finish(&b, op_names[kind]);
    return b;
}

static size_t numel_of(nb_tensor t) { return nb_tensor_numel(&t); }

/* Every number a pass gives: the loss, the output, the parameter gradients and x's gradient. */
static float *pass(built *b, size_t *count)
{
    nb_graph_forward(b->g, BATCH);
    nb_graph_backward(b->g, b->loss);
    size_t np, ny = numel_of(nb_node_value(b->y)), nx = numel_of(nb_node_grad(b->x));
    const float *grads = nb_graph_grads(b->g, &np);
    *count = 1 + ny + np + nx;
    float *s = malloc(*count * sizeof *s);
    assert_non_null(s);
    s[0] = nb_node_scalar(b->loss);
    memcpy(s + 1, nb_node_value(b->y).data, ny * sizeof *s);
    memcpy(s + 1 + ny, grads, np * sizeof *s);
    memcpy(s + 1 + ny + np, nb_node_grad(b->x).data, nx * sizeof *s);
    return s;
}

/* The two graphs give the same bits in both modes, on 1 and 3 threads. */
static void assert_same_passes(built *fused, built *separate, const char *what)
{
    for (int training = 1; training >= 0; training--)
        for (int threads = 1; threads <= 3; threads += 2) {
            nb_set_threads(threads);
            nb_graph_set_training(fused->g, training);
            nb_graph_set_training(separate->g, training);
            size_t n1, n2;
            float *one = pass(fused, &n1), *two = pass(separate, &n2);
            assert_int_equal(n1, n2);
            for (size_t i = 0; i < n1; i++)
                if (memcmp(&one[i], &two[i], sizeof one[i]) != 0)
                    fail_msg("%s, %s, %d threads: number %zu is %.9g fused, %.9g apart", what,
                             training ? "training" : "inference", threads, i, (double)one[i],
                             (double)two[i]);
            free(one);
            free(two);
        }
    nb_set_threads(2);
}

/* Whether nb_activate may fuse a into an op of this kind: dense takes any activation; the
 * others need the derivative from the output. */
static int fusable(op_kind kind, const activation_case *a)
{
    return kind == OP_DENSE || !(a->act == NB_LEAKY_RELU && !(a->slope > 0.0f));
}

static void test_fused_equals_separate(void **state)
{
    (void)state;
    for (int kind = 0; kind < OP_KINDS; kind++)
        for (int ai = 0; ai < ACTIVATIONS; ai++) {
            const activation_case *a = &activations[ai];
            built fused = build((op_kind)kind, a, 1), separate = build((op_kind)kind, a, 0);
            if ((fused.y == fused.op) != fusable((op_kind)kind, a))
                fail_msg("%s + %s: nb_activate %s", op_names[kind], a->name,
                         fused.y == fused.op ? "fused an activation it cannot"
                                             : "made an op it could have fused");
            char what[64];
            snprintf(what, sizeof what, "%s + %s", op_names[kind], a->name);
            assert_same_passes(&fused, &separate, what);
            nb_graph_free(fused.g);
            nb_graph_free(separate.g);
        }
    nb_set_threads(2);
}

/* The fused graphs' gradients against central differences (tanh: smooth everywhere). */
static void test_fused_gradients(void **state)
{
    (void)state;
    const activation_case *a = &activations[2];
    for (int kind = 0; kind < OP_KINDS; kind++) {
        built b = build((op_kind)kind, a, 1);
        assert_ptr_equal(b.y, b.op);
        double e = nb_gradcheck(b.g, b.loss, BATCH, 1e-2);
        if (!(e < 2e-2))
            fail_msg("%s + tanh fused: gradient error %g", op_names[kind], e);
        nb_graph_free(b.g);
    }
}

/* x [B, 3, H, W] -> batchnorm -> act -> maxpool2d -> mse, the pooling by nb_maxpool2d_fused
 * (fuse) or as an op of its own; act NB_IDENTITY for none. */
static built build_pooled(const activation_case *a, int height, int width, const int kernel[2],
                          const int stride[2], int fuse, int shared)
{
    built b = {nb_graph_new(), NULL, NULL, NULL, NULL};
    nb_graph *g = b.g;
    int image[3] = {3, height, width};
    b.x = nb_input_shape(g, 3, image);
    nb_input_requires_grad(b.x);
    b.op = nb_batchnorm(g, b.x, "bn", 0.1f, 1e-5f);
    nb_node *h = b.op;
    if (a->act != NB_IDENTITY)
        h = fuse ? nb_activate(g, h, a->act, a->slope) : nb_relu(g, h);
    b.y = fuse ? nb_maxpool2d_fused(g, h, kernel, stride) : nb_maxpool2d(g, h, kernel, stride);
    if (shared) { /* x feeds a linear layer too, whose backward then sets dx first */
        nb_node *pooled = nb_flatten(g, b.y);
        int ws[2] = {nb_node_value(pooled).shape[1], 3 * height * width};
        nb_node *other = nb_dense(g, nb_flatten(g, b.x), nb_param(g, "w", 2, ws), NULL,
                                  NB_IDENTITY, 0.0f);
        b.y = nb_add(g, pooled, other);
    }
    finish(&b, "pooled batchnorm");
    return b;
}

/* The gradients of a pooled batch norm against central differences, in both modes, on a
 * shuffled ramp (values 0.1 apart, so that no step of the differences changes which element
 * of a window is its maximum). */
static void gradcheck_pooled(built *b, size_t ci)
{
    nb_tensor xv = nb_node_value(b->x);
    size_t n = nb_tensor_numel(&xv);
    nb_rng r;
    nb_rng_seed(&r, 3);
    int32_t *order = malloc(n * sizeof *order);
    assert_non_null(order);
    for (size_t i = 0; i < n; i++)
        order[i] = (int32_t)i;
    nb_shuffle(&r, order, (int)n);
    for (size_t i = 0; i < n; i++)
        xv.data[i] = 0.1f * (float)(order[i] - (int32_t)n / 2);
    free(order);
    /* gamma well away from 0: a step across it would turn the windows' maxima into minima */
    size_t np;
    float *p = nb_graph_params(b->g, &np);
    for (size_t i = 0; i < np; i++)
        p[i] = 0.5f + 0.25f * (float)i;
    for (int training = 1; training >= 0; training--) {
        nb_graph_set_training(b->g, training);
        double e = nb_gradcheck(b->g, b->loss, BATCH, 1e-2);
        if (!(e < 2e-2))
            fail_msg("pooled batchnorm, case %zu, %s: gradient error %g", ci,
                     training ? "training" : "inference", e);
    }
}

/* A batch norm that pools its own output gives the bits of batchnorm -> relu -> maxpool2d:
 * windows that tile the plane, leave rows and columns over, or leave gaps; with and without
 * the activation; in training and inference mode; on 1 and 3 threads. Overlapping windows
 * are not fused. */
static void test_pooled_batchnorm(void **state)
{
    (void)state;
    typedef struct pool_case {
        int height, width, kernel[2], stride[2], fuses;
    } pool_case;
    static const pool_case cases[] = {
        {8, 6, {2, 2}, {2, 2}, 1}, {7, 9, {2, 2}, {2, 2}, 1}, {9, 7, {3, 2}, {3, 2}, 1},
        {8, 9, {2, 3}, {3, 4}, 1}, {6, 6, {3, 3}, {2, 2}, 0}, {5, 6, {2, 2}, {1, 2}, 0},
    };
    const activation_case none = {NB_IDENTITY, 0.0f, "none"}, *acts[2] = {&activations[0], &none};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int ai = 0; ai < 2; ai++) {
            const pool_case *k = &cases[ci];
            int shared = ai == 0 && ci < 2;
            built fused = build_pooled(acts[ai], k->height, k->width, k->kernel, k->stride, 1,
                                       shared);
            built separate = build_pooled(acts[ai], k->height, k->width, k->kernel, k->stride, 0,
                                          shared);
            if (!shared && (fused.y == fused.op) != k->fuses)
                fail_msg("case %zu: nb_maxpool2d_fused %s", ci,
                         k->fuses ? "made an op of its own" : "fused overlapping windows");
            char what[64];
            snprintf(what, sizeof what, "pooling case %zu, %s%s", ci, acts[ai]->name,
                     shared ? ", x shared" : "");
            assert_same_passes(&fused, &separate, what);
            if (ai == 1 && ci == 3) /* no relu: its kink would fail a smooth check */
                gradcheck_pooled(&fused, ci);
            nb_graph_free(fused.g);
            nb_graph_free(separate.g);
        }
    nb_set_threads(2);
}

/* Fusing must never change a value somebody else reads. */
static void test_not_fused(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    int vector[1] = {4}, ws[2] = {3, 4}, ws2[2] = {3, 3};
    nb_node *x = nb_input_shape(g, 1, vector);
    nb_node *d = nb_dense(g, x, nb_param(g, "w", 2, ws), NULL, NB_IDENTITY, 0.0f);
    nb_node *other = nb_tanh(g, d);            /* d already has a reader */
    nb_node *y = nb_activate(g, d, NB_RELU, 0.0f);
    assert_ptr_not_equal(y, d);
    nb_node *e = nb_dense(g, other, nb_param(g, "w2", 2, ws2), NULL, NB_RELU, 0.0f);
    assert_ptr_not_equal(nb_activate(g, e, NB_TANH, 0.0f), e);   /* has one already */
    assert_ptr_not_equal(nb_activate(g, x, NB_RELU, 0.0f), x);   /* not an op */
    nb_node *r = nb_relu(g, x);
    assert_ptr_not_equal(nb_activate(g, r, NB_TANH, 0.0f), r);   /* an activation op */
    nb_node *bn = nb_batchnorm(g, x, "bn", 0.1f, 1e-5f);
    assert_ptr_equal(nb_activate(g, bn, NB_SIGMOID, 0.0f), bn);
    nb_error err;
    if (nb_graph_compile(g, 2, &err) != 0)
        fail_msg("compile: %s", err.msg);
    /* a compiled graph takes no new node, fused or not */
    nb_graph *h = nb_graph_new();
    nb_node *hx = nb_input_shape(h, 1, vector);
    nb_node *hd = nb_dense(h, hx, nb_param(h, "w", 2, ws), NULL, NB_IDENTITY, 0.0f);
    assert_int_equal(nb_graph_compile(h, 2, &err), 0);
    assert_null(nb_activate(h, hd, NB_RELU, 0.0f));
    nb_graph_free(g);
    nb_graph_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_equals_separate),
        cmocka_unit_test(test_fused_gradients),
        cmocka_unit_test(test_pooled_batchnorm),
        cmocka_unit_test(test_not_fused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
