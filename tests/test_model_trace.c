/* nb_model_spec.trace_layer: the model keeps a hidden layer's pre-activation as a node of its
 * own (W x + b, or the batch norm's output), and that changes nothing the model computes: the
 * traced layer's dense op is built without its fused activation, and training with and without
 * the trace gives the same weights, bit for bit, for every activation, with and without batch
 * norm, on one thread and on several. The kept values are checked against a forward pass
 * computed here in double from the model's own weights. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"
#include "model_spec_for_tests.h"

enum { BATCH = 50, INPUTS = 2, H1 = 12, H2 = 7, CLASSES = 3 };

typedef struct act_case {
    nb_activation act;
    float slope;
} act_case;

/* leaky relu with slope 0 derives from the input (kept in scratch by the fused op); with
 * slope 0.2 from the output. */
static const act_case acts[] = {
    {NB_RELU, 0.01f}, {NB_LEAKY_RELU, 0.2f}, {NB_LEAKY_RELU, 0.0f}, {NB_TANH, 0.01f},
    {NB_SIGMOID, 0.01f},
};
#define N_ACTS (sizeof acts / sizeof acts[0])

static nb_model_spec trace_spec(const act_case *a, int batchnorm, int trace_layer)
{
    nb_model_spec s = mlp_spec((nb_mlp){.inputs = INPUTS, .classes = CLASSES, .n_hidden = 2,
                                        .hidden = {H1, H2}, .activation = a->act,
                                        .leaky_slope = a->slope, .batchnorm = batchnorm});
    s.trace_layer = trace_layer;
    return s;
}

static float *param(const nb_model *m, const char *name)
{
    nb_named t;
    if (!nb_graph_find(m->graph, name, &t))
        fail_msg("no tensor %s", name);
    return nb_node_value(t.node).data;
}

static double act_of(const act_case *a, double z)
{
    switch (a->act) {
    case NB_RELU: return z > 0 ? z : 0;
    case NB_LEAKY_RELU: return z > 0 ? z : a->slope * z;
    case NB_TANH: return tanh(z);
    case NB_SIGMOID: return 1 / (1 + exp(-z));
    case NB_IDENTITY: break;
    }
    return z;
}

/* The pre-activation of hidden layer `layer` (1-based) for the batch x, in double, from the
 * model's weights: dense (Sequential index 0 and 2, or 0 and 3 with batch norm at 1 and 4),
 * then batch norm in training mode (batch mean, biased variance, eps 1e-5). */
static void reference_pre_activation(const nb_model *m, const act_case *a, int batchnorm,
                                     const float *x, int layer, double *out)
{
    static double h[BATCH * H1], z[BATCH * H1];
    int in = INPUTS;
    for (int r = 0; r < BATCH; r++)
        for (int i = 0; i < INPUTS; i++)
            h[r * INPUTS + i] = x[r * INPUTS + i];
    for (int l = 1; l <= layer; l++) {
        int width = l == 1 ? H1 : H2, dense = batchnorm ? 3 * (l - 1) : 2 * (l - 1);
        char name[32];
        snprintf(name, sizeof name, "%d.weight", dense);
        const float *w = param(m, name);
        const float *b = NULL;
        if (!batchnorm) {
            snprintf(name, sizeof name, "%d.bias", dense);
            b = param(m, name);
        }
        for (int r = 0; r < BATCH; r++)
            for (int j = 0; j < width; j++) {
                double s = b ? b[j] : 0.0;
                for (int i = 0; i < in; i++)
                    s += (double)w[j * in + i] * h[r * in + i];
                z[r * width + j] = s;
            }
        if (batchnorm) {
            snprintf(name, sizeof name, "%d.weight", dense + 1);
            const float *gamma = param(m, name);
            snprintf(name, sizeof name, "%d.bias", dense + 1);
            const float *beta = param(m, name);
            for (int j = 0; j < width; j++) {
                double mean = 0, var = 0;
                for (int r = 0; r < BATCH; r++)
                    mean += z[r * width + j];
                mean /= BATCH;
                for (int r = 0; r < BATCH; r++)
                    var += (z[r * width + j] - mean) * (z[r * width + j] - mean);
                var /= BATCH;
                for (int r = 0; r < BATCH; r++)
                    z[r * width + j] = gamma[j] * (z[r * width + j] - mean) / sqrt(var + 1e-5) +
                                       beta[j];
            }
        }
        if (l == layer) {
            memcpy(out, z, (size_t)BATCH * width * sizeof *out);
            return;
        }
        for (int k = 0; k < BATCH * width; k++)
            h[k] = act_of(a, z[k]);
        in = width;
    }
}

static void make_batch(nb_dataset *d)
{
    nb_error err;
    if (nb_make_synthetic("spirals", 200, 0.2f, 7, d, &err) != 0)
        fail_msg("%s", err.msg);
}

/* The kept node holds the reference pre-activation after a training-mode forward pass. */
static void test_pre_activation_values(void **state)
{
    (void)state;
    nb_dataset d = {0};
    make_batch(&d);
    for (size_t ai = 0; ai < N_ACTS; ai++)
        for (int bn = 0; bn <= 1; bn++)
            for (int layer = 1; layer <= 2; layer++) {
                nb_model_spec spec = trace_spec(&acts[ai], bn, layer);
                nb_model m;
                nb_error err;
                assert_int_equal(nb_model_build(&m, &spec, BATCH, 5, &err), 0);
                assert_non_null(m.pre_activation);
                int32_t index[BATCH];
                for (int i = 0; i < BATCH; i++)
                    index[i] = i;
                nb_dataset_batch(&d, index, BATCH, nb_node_value(m.x).data, nb_node_labels(m.y));
                nb_graph_set_training(m.graph, 1);
                nb_graph_forward(m.graph, BATCH);
                nb_tensor v = nb_node_value(m.pre_activation);
                int width = layer == 1 ? H1 : H2;
                assert_int_equal(v.shape[0], BATCH);
                assert_int_equal(v.shape[1], width);
                static double want[BATCH * H1];
                reference_pre_activation(&m, &acts[ai], bn, nb_node_value(m.x).data, layer, want);
                double spread = 0;
                for (int k = 0; k < BATCH * width; k++) {
                    if (fabs(v.data[k] - want[k]) > 1e-4 * (1 + fabs(want[k])))
                        fail_msg("%s bn %d layer %d: value %d is %g, expected %g",
                                 nb_activation_name(acts[ai].act), bn, layer, k,
                                 (double)v.data[k], want[k]);
                    spread += fabs(want[k]);
                }
                assert_true(spread > 0.1 * BATCH);   /* not all zeros: a real check */
                nb_model_free(&m);
            }
    nb_dataset_free(&d);
}

static void train_params(const act_case *a, int bn, int trace_layer, int threads, float *out,
                         size_t *n)
{
    nb_set_threads(threads);
    nb_dataset d = {0};
    make_batch(&d);
    nb_model_spec spec = trace_spec(a, bn, trace_layer);
    nb_model m;
    nb_error err;
    assert_int_equal(nb_model_build(&m, &spec, BATCH, 11, &err), 0);
    assert_true(trace_layer == 0 ? m.pre_activation == NULL : m.pre_activation != NULL);
    nb_train_config cfg = {
        .optim = {.kind = NB_ADAM, .beta = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
        .schedule = {.kind = NB_DECAY_NONE, .lr = 0.05f, .epochs = 3},
        .batch_size = BATCH, .epochs = 3, .shuffle = 1, .seed = 3,
    };
    nb_train_result res;
    if (nb_train(&m, &d, NULL, NULL, &cfg, &res, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(res.steps, 12);
    float *p = nb_graph_params(m.graph, n);
    memcpy(out, p, *n * sizeof *p);
    /* The batch-norm running statistics too (states, not parameters). */
    for (int i = 0; i < nb_graph_named_count(m.graph); i++) {
        nb_named t = nb_graph_named(m.graph, i);
        if (t.kind == NB_KIND_STATE) {
            nb_tensor v = nb_node_value(t.node);
            memcpy(out + *n, v.data, nb_tensor_numel(&v) * sizeof *v.data);
            *n += nb_tensor_numel(&v);
        }
    }
    nb_model_free(&m);
    nb_dataset_free(&d);
}

/* Training with a traced layer gives the weights and statistics of training without. */
static void test_trace_changes_nothing(void **state)
{
    (void)state;
    enum { CAP = 1024 };
    float plain[CAP], traced[CAP];
    for (size_t ai = 0; ai < N_ACTS; ai++)
        for (int bn = 0; bn <= 1; bn++)
            for (int threads = 1; threads <= 2; threads++) {
                size_t n_plain;
                train_params(&acts[ai], bn, 0, threads, plain, &n_plain);
                for (int layer = 1; layer <= 2; layer++) {
                    size_t n_traced;
                    train_params(&acts[ai], bn, layer, threads, traced, &n_traced);
                    assert_int_equal(n_traced, n_plain);
                    if (memcmp(plain, traced, n_plain * sizeof *plain) != 0)
                        fail_msg("%s (slope %g) bn %d threads %d: tracing layer %d changed the "
                                 "weights", nb_activation_name(acts[ai].act),
                                 (double)acts[ai].slope, bn, threads, layer);
                }
            }
    nb_set_threads(1);
}

static void test_trace_layer_checked(void **state)
{
    (void)state;
    nb_model m;
    nb_error err;
    nb_model_spec spec = trace_spec(&acts[0], 0, 3);
    assert_int_equal(nb_model_build(&m, &spec, BATCH, 1, &err), -1);
    assert_non_null(strstr(err.msg, "trace_layer 3"));
    spec.trace_layer = -1;
    assert_int_equal(nb_model_build(&m, &spec, BATCH, 1, &err), -1);
    nb_model_spec none = mlp_spec((nb_mlp){.inputs = 2, .classes = 2});
    none.trace_layer = 1;
    assert_int_equal(nb_model_build(&m, &none, BATCH, 1, &err), -1);
    none.trace_layer = 0;
    assert_int_equal(nb_model_build(&m, &none, BATCH, 1, &err), 0);
    assert_null(m.pre_activation);
    nb_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pre_activation_values),
        cmocka_unit_test(test_trace_changes_nothing),
        cmocka_unit_test(test_trace_layer_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
