/* Gradient checks for every op against central finite differences, and the graph's
 * bookkeeping: flat buffers, names, no allocation after compile, partial batches. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"
#include "model_spec_for_tests.h"

#define TOLERANCE 2e-2
#define STEP 1e-2

/* Fills a buffer with normal numbers; `margin` pushes them away from 0 (for relu's kink). */
static void fill(float *x, size_t n, nb_rng *r, double scale, double margin)
{
    for (size_t i = 0; i < n; i++) {
        double v = scale * nb_rng_normal(r);
        x[i] = (float)(v + (v >= 0 ? margin : -margin));
    }
}

static void fill_params(nb_graph *g, nb_rng *r, double scale)
{
    size_t n;
    float *p = nb_graph_params(g, &n);
    fill(p, n, r, scale, 0.0);
}

/* x -> matmul -> bias -> op -> mse against a random target; inputs checked too. Used for the
 * smooth activations; relu and leaky relu are checked directly on inputs kept off their kink. */
typedef nb_node *(*unary_op)(nb_graph *g, nb_node *x);

static nb_node *leaky(nb_graph *g, nb_node *x) { return nb_leaky_relu(g, x, 0.1f); }

static void check_unary(unary_op op)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, 4);
    nb_input_requires_grad(x);
    nb_node *t = nb_input(g, 3);
    int ws[2] = {3, 4}, bs[1] = {3};
    nb_node *h = nb_bias_add(g, nb_matmul(g, x, nb_param(g, "w", 2, ws)), nb_param(g, "b", 1, bs));
    nb_node *loss = nb_mse(g, op(g, h), t);
    nb_error err;
    assert_int_equal(nb_graph_compile(g, 5, &err), 0);
    nb_rng r;
    nb_rng_seed(&r, 1);
    fill_params(g, &r, 0.5);
    fill(nb_node_value(x).data, 5 * 4, &r, 1.0, 0.0);
    fill(nb_node_value(t).data, 5 * 3, &r, 1.0, 0.0);
    double e = nb_gradcheck(g, loss, 5, STEP);
    assert_true(e < TOLERANCE);
    nb_graph_free(g);
}

/* Direct op check without matmul, for relu with inputs bounded away from 0. */
static void check_elementwise(unary_op op)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, 6);
    nb_input_requires_grad(x);
    nb_node *t = nb_input(g, 6);
    nb_node *loss = nb_mse(g, op(g, x), t);
    nb_error err;
    assert_int_equal(nb_graph_compile(g, 4, &err), 0);
    nb_rng r;
    nb_rng_seed(&r, 2);
    fill(nb_node_value(x).data, 24, &r, 1.0, 0.1);
    fill(nb_node_value(t).data, 24, &r, 1.0, 0.0);
    assert_true(nb_gradcheck(g, loss, 4, 1e-3) < TOLERANCE);
    nb_graph_free(g);
}

static void test_relu(void **state) { (void)state; check_elementwise(nb_relu); }
static void test_leaky_relu(void **state) { (void)state; check_elementwise(leaky); }
static void test_tanh(void **state) { (void)state; check_elementwise(nb_tanh); check_unary(nb_tanh); }
static void test_sigmoid(void **state) { (void)state; check_elementwise(nb_sigmoid); check_unary(nb_sigmoid); }

static nb_node *identity(nb_graph *g, nb_node *x) { (void)g; return x; }

static void test_matmul_bias(void **state)
{
    (void)state;
    check_unary(identity);
}

static void test_forward_values(void **state)
{
    (void)state;
    /* Worked by hand: x = [1 2; 3 4], w = [1 0; 0.5 -1; 2 1] ([out=3, in=2]), b = [0, 1, -1].
     * x·wᵀ = [1 -1.5 4; 3 -2.5 10]; + b = [1 -0.5 3; 3 -1.5 9]; relu = [1 0 3; 3 0 9]. */
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, 2);
    int ws[2] = {3, 2}, bs[1] = {3};
    nb_node *w = nb_param(g, "w", 2, ws), *b = nb_param(g, "b", 1, bs);
    nb_node *y = nb_relu(g, nb_bias_add(g, nb_matmul(g, x, w), b));
    nb_error err;
    assert_int_equal(nb_graph_compile(g, 2, &err), 0);
    float xv[4] = {1, 2, 3, 4}, wv[6] = {1, 0, 0.5f, -1, 2, 1}, bv[3] = {0, 1, -1};
    memcpy(nb_node_value(x).data, xv, sizeof xv);
    memcpy(nb_node_value(w).data, wv, sizeof wv);
    memcpy(nb_node_value(b).data, bv, sizeof bv);
    nb_graph_forward(g, 2);
    float expect[6] = {1, 0, 3, 3, 0, 9};
    for (int i = 0; i < 6; i++)
        assert_float_equal(nb_node_value(y).data[i], expect[i], 1e-6);
    /* Parameters sit in one flat buffer in creation order. */
    size_t n;
    float *p = nb_graph_params(g, &n);
    assert_int_equal(n, 9);
    assert_ptr_equal(nb_node_value(w).data, p);
    assert_ptr_equal(nb_node_value(b).data, p + 6);
    nb_graph_free(g);
}

static void test_softmax_cross_entropy(void **state)
{
    (void)state;
    /* Value by hand: logits [0, ln 2, ln 3 ... ] -> softmax = [1, 2, 3]/6 for label 2: -ln(1/2). */
    nb_graph *g = nb_graph_new();
    nb_node *z = nb_input(g, 3);
    nb_input_requires_grad(z);
    nb_node *y = nb_labels(g);
    nb_node *loss = nb_softmax_cross_entropy(g, z, y);
    nb_error err;
    assert_int_equal(nb_graph_compile(g, 8, &err), 0);
    float *zv = nb_node_value(z).data;
    zv[0] = 0.0f;
    zv[1] = logf(2.0f);
    zv[2] = logf(3.0f);
    nb_node_labels(y)[0] = 2;
    nb_graph_forward(g, 1);
    assert_float_equal(nb_node_scalar(loss), logf(2.0f), 1e-6);
    /* Huge logits stay finite (log-sum-exp). */
    zv[0] = 1000.0f;
    zv[1] = 0.0f;
    zv[2] = -1000.0f;
    nb_node_labels(y)[0] = 0;
    nb_graph_forward(g, 1);
    assert_float_equal(nb_node_scalar(loss), 0.0f, 1e-6);
    /* Gradient check on a random batch of 8. */
    nb_rng r;
    nb_rng_seed(&r, 3);
    fill(zv, 24, &r, 2.0, 0.0);
    for (int i = 0; i < 8; i++)
        nb_node_labels(y)[i] = (int32_t)nb_rng_below(&r, 3);
    assert_true(nb_gradcheck(g, loss, 8, STEP) < TOLERANCE);
    nb_graph_free(g);
}

static nb_graph *batchnorm_graph(nb_node **loss_out, nb_node **bn_out, nb_node **x_out)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, 3);
    nb_input_requires_grad(x);
    nb_node *y = nb_labels(g);
    int ws[2] = {4, 3};
    nb_node *bn = nb_batchnorm(g, x, "1", 0.1f, 1e-5f);
    /* A non-symmetric loss downstream, so the gradient through the statistics matters. */
    nb_node *loss = nb_softmax_cross_entropy(g, nb_matmul(g, nb_tanh(g, bn), nb_param(g, "2.weight", 2, ws)), y);
    nb_error err;
    assert_int_equal(nb_graph_compile(g, 6, &err), 0);
    *loss_out = loss;
    *bn_out = bn;
    *x_out = x;
    nb_rng r;
    nb_rng_seed(&r, 4);
    fill(nb_node_value(x).data, 18, &r, 2.0, 0.0);
    fill_params(g, &r, 1.0);
    for (int i = 0; i < 6; i++)
        nb_node_labels(y)[i] = (int32_t)nb_rng_below(&r, 4);
    return g;
}

static void test_batchnorm_gradients(void **state)
{
    (void)state;
    nb_node *loss, *bn, *x;
    nb_graph *g = batchnorm_graph(&loss, &bn, &x);
    assert_true(nb_gradcheck(g, loss, 6, STEP) < TOLERANCE);
    nb_graph_set_training(g, 0);
    assert_true(nb_gradcheck(g, loss, 6, STEP) < TOLERANCE);
    nb_graph_free(g);
}

static void test_batchnorm_statistics(void **state)
{
    (void)state;
    /* One feature, batch [1, 2, 3, 6]: mean 3, biased var (4+1+0+9)/4 = 3.5, unbiased 14/3. */
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, 1);
    nb_node *bn = nb_batchnorm(g, x, "0", 0.1f, 1e-5f);
    nb_error err;
    assert_int_equal(nb_graph_compile(g, 4, &err), 0);
    float xv[4] = {1, 2, 3, 6};
    memcpy(nb_node_value(x).data, xv, sizeof xv);
    nb_graph_forward(g, 4);
    for (int i = 0; i < 4; i++)
        assert_float_equal(nb_node_value(bn).data[i], (xv[i] - 3.0) / sqrt(3.5 + 1e-5), 1e-5);
    nb_named named;
    assert_non_null(nb_graph_find(g, "0.running_mean", &named));
    assert_float_equal(nb_node_value(named.node).data[0], 0.9 * 0 + 0.1 * 3.0, 1e-6);
    assert_non_null(nb_graph_find(g, "0.running_var", &named));
    assert_float_equal(nb_node_value(named.node).data[0], 0.9 * 1 + 0.1 * 14.0 / 3.0, 1e-6);
    assert_non_null(nb_graph_find(g, "0.num_batches_tracked", &named));
    assert_int_equal(*named.counter, 1);
    /* Inference uses the running statistics: y = (x - 0.3) / sqrt(1.36667 + eps). */
    nb_graph_set_training(g, 0);
    nb_graph_forward(g, 4);
    double rv = 0.9 + 0.1 * 14.0 / 3.0;
    for (int i = 0; i < 4; i++)
        assert_float_equal(nb_node_value(bn).data[i], (xv[i] - 0.3) / sqrt(rv + 1e-5), 1e-5);
    assert_int_equal(*named.counter, 1);
    /* Names in torch's order: weight, bias, running_mean, running_var, num_batches_tracked. */
    const char *names[5] = {"0.weight", "0.bias", "0.running_mean", "0.running_var", "0.num_batches_tracked"};
    assert_int_equal(nb_graph_named_count(g), 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(nb_graph_named(g, i).name, names[i]);
    nb_graph_free(g);
}

static void test_mse(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_node *p = nb_input(g, 2), *t = nb_input(g, 2);
    nb_input_requires_grad(p);
    nb_input_requires_grad(t);
    nb_node *loss = nb_mse(g, p, t);
    nb_error err;
    assert_int_equal(nb_graph_compile(g, 3, &err), 0);
    float pv[4] = {1, 2, 3, 4}, tv[4] = {0, 2, 5, 4};
    memcpy(nb_node_value(p).data, pv, sizeof pv);
    memcpy(nb_node_value(t).data, tv, sizeof tv);
    nb_graph_forward(g, 2);
    assert_float_equal(nb_node_scalar(loss), (1.0 + 4.0) / 4.0, 1e-7);
    assert_true(nb_gradcheck(g, loss, 2, STEP) < TOLERANCE);
    nb_graph_free(g);
}

static void test_model_gradients(void **state)
{
    (void)state;
    for (int bn = 0; bn <= 1; bn++)
        for (int a = NB_TANH; a <= NB_SIGMOID; a++) {
            nb_model_spec spec = mlp_spec((nb_mlp){.inputs = 5, .classes = 3, .n_hidden = 2, .hidden = {4, 3},
                                  .activation = (nb_activation)a, .batchnorm = bn});
            nb_model m;
            nb_error err;
            assert_int_equal(nb_model_build(&m, &spec, 7, 42, &err), 0);
            nb_rng r;
            nb_rng_seed(&r, 5);
            fill(nb_node_value(m.x).data, 35, &r, 1.0, 0.0);
            for (int i = 0; i < 7; i++)
                nb_node_labels(m.y)[i] = (int32_t)nb_rng_below(&r, 3);
            assert_true(nb_gradcheck(m.graph, m.loss, 7, STEP) < TOLERANCE);
            nb_model_free(&m);
        }
}

static void test_model_layout(void **state)
{
    (void)state;
    /* torch.nn.Sequential(Linear(784,256), BatchNorm1d(256), ReLU(), Linear(256,128),
     * BatchNorm1d(128), ReLU(), Linear(128,10)). */
    nb_model_spec spec = mlp_spec((nb_mlp){.inputs = 784, .classes = 10, .n_hidden = 2, .hidden = {256, 128},
                          .activation = NB_RELU, .batchnorm = 1});
    nb_model m;
    nb_error err;
    assert_int_equal(nb_model_build(&m, &spec, 64, 0, &err), 0);
    const char *names[] = {"0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                           "1.num_batches_tracked", "3.weight", "4.weight", "4.bias",
                           "4.running_mean", "4.running_var", "4.num_batches_tracked",
                           "6.weight", "6.bias"};
    assert_int_equal(nb_graph_named_count(m.graph), 14);
    for (int i = 0; i < 14; i++)
        assert_string_equal(nb_graph_named(m.graph, i).name, names[i]);
    size_t n;
    nb_graph_params(m.graph, &n);
    assert_int_equal(n, 784 * 256 + 2 * 256 + 256 * 128 + 2 * 128 + 128 * 10 + 10);
    /* He init: the first layer's weights have std close to sqrt(2/784). */
    nb_tensor w = nb_node_value(nb_graph_named(m.graph, 0).node);
    double sq = 0;
    for (size_t i = 0; i < nb_tensor_numel(&w); i++)
        sq += (double)w.data[i] * w.data[i];
    assert_float_equal(sqrt(sq / nb_tensor_numel(&w)), sqrt(2.0 / 784), 0.002);
    nb_model_free(&m);
}

static void test_builder_errors(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, 4);
    int ws[2] = {3, 5};
    nb_node *h = nb_matmul(g, x, nb_param(g, "w", 2, ws));
    assert_null(h);
    assert_null(nb_relu(g, h));
    nb_error err;
    assert_int_equal(nb_graph_compile(g, 4, &err), -1);
    assert_non_null(strstr(err.msg, "matmul"));
    nb_graph_free(g);

    nb_mlp none = {.inputs = 0, .classes = 10};
    nb_model_spec spec;
    assert_int_equal(nb_model_spec_mlp(&spec, &none, &err), -1);
    assert_non_null(strstr(err.msg, "an input is a vector of at least 1 feature"));
    spec.input = nb_shape_vector(0);
    nb_model m;
    assert_int_equal(nb_model_build(&m, &spec, 4, 0, &err), -1);
    assert_non_null(strstr(err.msg, "an input is a vector of at least 1 feature"));
    assert_int_equal(nb_model_spec_parse(&spec, "linear(4),relu,linear", nb_shape_vector(3), 10,
                                         &err), 0);
    spec.classes = 1;
    assert_int_equal(nb_model_build(&m, &spec, 4, 0, &err), -1);
    assert_non_null(strstr(err.msg, "2 to 1000000 classes"));
}

/* Sizes come from options and files; what cannot be addressed or held is refused with a
 * message, never wrapped around or handed to the allocator. */
static void test_oversized_graphs(void **state)
{
    (void)state;
    nb_error err;
    /* (2^31 - 1)^4 elements overflow 64 bits. */
    nb_graph *g = nb_graph_new();
    int huge[4] = {2147483647, 2147483647, 2147483647, 2147483647};
    assert_null(nb_param(g, "w", 4, huge));
    assert_int_equal(nb_graph_compile(g, 1, &err), -1);
    assert_non_null(strstr(err.msg, "too large to address"));
    nb_graph_free(g);

    /* 10^6 features in batches of 2^31 - 1: 2^31 * 10^6 floats, 8 PB for the input alone. */
    g = nb_graph_new();
    nb_node *x = nb_input(g, 1000000);
    assert_non_null(nb_relu(g, x));
    assert_int_equal(nb_graph_compile(g, 2147483647, &err), -1);
    assert_non_null(strstr(err.msg, "out of memory: the graph for batches of 2147483647 needs"));
    nb_graph_free(g);
}

static void test_partial_batch(void **state)
{
    (void)state;
    /* The same row gives the same output whatever the batch it comes in (no batch norm). */
    nb_model_spec spec = mlp_spec((nb_mlp){.inputs = 3, .classes = 2, .n_hidden = 1, .hidden = {4}, .activation = NB_RELU});
    nb_model m;
    nb_error err;
    assert_int_equal(nb_model_build(&m, &spec, 5, 1, &err), 0);
    nb_rng r;
    nb_rng_seed(&r, 9);
    fill(nb_node_value(m.x).data, 15, &r, 1.0, 0.0);
    nb_graph_forward(m.graph, 5);
    float full[2];
    memcpy(full, nb_node_value(m.logits).data, sizeof full);
    nb_graph_forward(m.graph, 1);
    assert_int_equal(nb_node_value(m.logits).shape[0], 1);
    assert_float_equal(nb_node_value(m.logits).data[0], full[0], 1e-6);
    assert_float_equal(nb_node_value(m.logits).data[1], full[1], 1e-6);
    nb_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_values),     cmocka_unit_test(test_matmul_bias),
        cmocka_unit_test(test_relu),               cmocka_unit_test(test_leaky_relu),
        cmocka_unit_test(test_tanh),               cmocka_unit_test(test_sigmoid),
        cmocka_unit_test(test_softmax_cross_entropy), cmocka_unit_test(test_mse),
        cmocka_unit_test(test_batchnorm_statistics), cmocka_unit_test(test_batchnorm_gradients),
        cmocka_unit_test(test_model_gradients),    cmocka_unit_test(test_model_layout),
        cmocka_unit_test(test_builder_errors),     cmocka_unit_test(test_partial_batch),
        cmocka_unit_test(test_oversized_graphs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
