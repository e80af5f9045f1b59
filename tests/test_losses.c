/* The element-wise losses (MSE, L1, Huber, BCE with logits): values by hand at the points
 * where their formulas change, gradient checks, and models of each task trained and scored
 * (nb_evaluate's regression and multi-label metrics against numbers worked out here).
 *
 * `test_losses --steps LOSS DIR` instead writes DIR/init.safetensors (a small model's initial
 * weights) and DIR/data.safetensors (inputs and targets), takes 20 plain gradient-descent steps
 * and prints each step's loss, for tests/losses_torch_check.py to replay in PyTorch. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"

/* The loss of pred against target, one batch row of n elements. */
static double loss_of(nb_loss kind, const float *pred, const float *target, int n)
{
    nb_graph *g = nb_graph_new();
    nb_node *p = nb_input(g, n), *t = nb_input(g, n);
    nb_node *loss = nb_elementwise_loss(g, kind, p, t);
    nb_error err;
    assert_int_equal(nb_graph_compile(g, 1, &err), 0);
    memcpy(nb_node_value(p).data, pred, (size_t)n * sizeof *pred);
    memcpy(nb_node_value(t).data, target, (size_t)n * sizeof *target);
    nb_graph_forward(g, 1);
    double v = nb_node_scalar(loss);
    nb_graph_free(g);
    return v;
}

static void test_values_by_hand(void **state)
{
    (void)state;
    float p[4] = {0.0f, 0.5f, -2.0f, 3.0f}, t[4] = {0.0f, 1.5f, 0.0f, 2.75f};
    /* differences 0, -1, -2, 0.25 */
    assert_true(fabs(loss_of(NB_LOSS_MSE, p, t, 4) - (0 + 1 + 4 + 0.0625) / 4) < 1e-7);
    assert_true(fabs(loss_of(NB_LOSS_L1, p, t, 4) - (0 + 1 + 2 + 0.25) / 4) < 1e-7);
    /* Huber: 0.5 d^2 inside |d| < 1, |d| - 0.5 outside; at |d| = 1 both give 0.5 */
    assert_true(fabs(loss_of(NB_LOSS_HUBER, p, t, 4) - (0 + 0.5 + 1.5 + 0.03125) / 4) < 1e-7);
    /* BCE with logits: log(2) at logit 0; very large logits stay finite */
    float z[4] = {0.0f, 100.0f, -100.0f, 100.0f}, y[4] = {1.0f, 1.0f, 0.0f, 0.0f};
    double bce = loss_of(NB_LOSS_BCE, z, y, 4);
    assert_true(isfinite(bce));
    assert_true(fabs(bce - (log(2.0) + 0 + 0 + 100.0) / 4) < 1e-6);
}

static void test_not_a_pair(void **state)
{
    (void)state;
    nb_graph *g = nb_graph_new();
    nb_node *p = nb_input(g, 3), *t = nb_input(g, 2);
    assert_null(nb_elementwise_loss(g, NB_LOSS_L1, p, t));
    nb_graph_free(g);
    g = nb_graph_new();
    p = nb_input(g, 3);
    assert_null(nb_elementwise_loss(g, NB_LOSS_CROSS_ENTROPY, p, nb_input(g, 3)));
    nb_graph_free(g);
}

/* x -> dense -> loss against a target that also takes gradients (a second input). Targets are
 * in [0, 1] for BCE; predictions are kept away from the kinks of L1 and Huber by the data. */
static void gradcheck_loss(nb_loss kind)
{
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, 4);
    nb_input_requires_grad(x);
    nb_node *t = nb_input(g, 3);
    nb_input_requires_grad(t);
    int ws[2] = {3, 4}, bs[1] = {3};
    nb_node *h = nb_bias_add(g, nb_matmul(g, x, nb_param(g, "w", 2, ws)), nb_param(g, "b", 1, bs));
    nb_node *loss = nb_elementwise_loss(g, kind, h, t);
    nb_error err;
    assert_int_equal(nb_graph_compile(g, 5, &err), 0);
    nb_rng r;
    nb_rng_seed(&r, 7 + (uint64_t)kind);
    size_t n;
    float *w = nb_graph_params(g, &n);
    for (size_t i = 0; i < n; i++)
        w[i] = (float)(0.5 * nb_rng_normal(&r));
    float *xv = nb_node_value(x).data, *tv = nb_node_value(t).data;
    for (int i = 0; i < 20; i++)
        xv[i] = (float)nb_rng_normal(&r);
    nb_graph_forward(g, 5);
    const float *hv = nb_node_value(h).data;
    for (int i = 0; i < 15; i++) {
        if (kind == NB_LOSS_BCE)
            tv[i] = (float)nb_rng_uniform(&r);
        else   /* |h - t| is 0.3 or 1.7: away from 0 and from Huber's 1 */
            tv[i] = hv[i] + (i % 2 ? 0.3f : -1.7f);
    }
    assert_true(nb_gradcheck(g, loss, 5, 1e-3) < 1e-2);
    nb_graph_free(g);
}

static void test_gradchecks(void **state)
{
    (void)state;
    gradcheck_loss(NB_LOSS_MSE);
    gradcheck_loss(NB_LOSS_L1);
    gradcheck_loss(NB_LOSS_HUBER);
    gradcheck_loss(NB_LOSS_BCE);
}

/* A model of `task` on 5 inputs and `outputs` outputs. */
static nb_model build(nb_task task, nb_loss loss, int outputs, int max_batch)
{
    nb_model_spec spec;
    nb_error err;
    if (nb_model_spec_parse(&spec, "linear(8),tanh,linear", nb_shape_vector(5), outputs, &err))
        fail_msg("%s", err.msg);
    spec.task = task;
    spec.loss = loss;
    nb_model m;
    if (nb_model_build(&m, &spec, max_batch, 3, &err) != 0)
        fail_msg("%s", err.msg);
    return m;
}

static void test_task_and_loss_must_agree(void **state)
{
    (void)state;
    nb_model_spec spec;
    nb_error err;
    assert_int_equal(nb_model_spec_parse(&spec, "linear", nb_shape_vector(2), 1, &err), 0);
    spec.task = NB_TASK_REGRESSION;
    spec.loss = NB_LOSS_BCE;
    nb_model m;
    assert_int_equal(nb_model_build(&m, &spec, 4, 1, &err), -1);
    assert_non_null(strstr(err.msg, "does not train a regression model"));
}

/* A data set of n samples: 5 features, and `targets` targets that are a smooth function of
 * them (regression) or its sign (multilabel). */
static nb_dataset make_set(nb_task task, int n, int targets, uint64_t seed)
{
    nb_dataset d = {.n = n, .features = 5, .task = task, .targets = targets};
    d.values = malloc((size_t)n * 5 * sizeof *d.values);
    d.target = malloc((size_t)n * targets * sizeof *d.target);
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        float *x = d.values + (size_t)i * 5;
        for (int j = 0; j < 5; j++)
            x[j] = (float)nb_rng_normal(&r);
        for (int k = 0; k < targets; k++) {
            float v = x[k] - 0.5f * x[(k + 1) % 5] + 0.25f * x[4] * x[4];
            d.target[(size_t)i * targets + k] = task == NB_TASK_MULTILABEL ? v > 0.2f
                                                                            : 10.0f * v + 40.0f;
        }
    }
    return d;
}

/* Training a regression model with target scaling lowers its error, and nb_evaluate's
 * metrics are those of nb_model_predict_values' outputs, worked out here. */
static void test_regression_metrics(void **state)
{
    (void)state;
    nb_dataset train = make_set(NB_TASK_REGRESSION, 200, 2, 1);
    nb_dataset dev = make_set(NB_TASK_REGRESSION, 50, 2, 2);
    nb_model m = build(NB_TASK_REGRESSION, NB_LOSS_HUBER, 2, 32);
    m.target_mean = malloc(2 * sizeof(float));
    m.target_std = malloc(2 * sizeof(float));
    for (int k = 0; k < 2; k++) {
        m.target_mean[k] = 40.0f;
        m.target_std[k] = 12.0f;
    }
    nb_error err;
    nb_eval_result before, after;
    assert_int_equal(nb_evaluate(&m, &dev, &before, &err), 0);
    nb_train_config cfg = {.optim = {.kind = NB_ADAM, .beta = 0.9f, .beta2 = 0.999f,
                                     .eps = 1e-8f},
                           .schedule = {.lr = 0.01f},
                           .batch_size = 32, .epochs = 30, .shuffle = 1, .seed = 5};
    nb_train_result res;
    assert_int_equal(nb_train(&m, &train, NULL, NULL, &cfg, &res, &err), 0);
    assert_int_equal(nb_evaluate(&m, &dev, &after, &err), 0);
    assert_true(after.rmse < 0.5 * before.rmse);
    assert_true(after.r2 > 0.8);

    float *pred = malloc((size_t)dev.n * 2 * sizeof *pred);
    assert_int_equal(nb_model_predict_dataset(&m, &dev, pred, &err), 0);
    double sse = 0, sae = 0, r2 = 0;
    for (int k = 0; k < 2; k++) {
        double mean = 0, sst = 0, sse_k = 0;
        for (int i = 0; i < dev.n; i++)
            mean += dev.target[i * 2 + k] / dev.n;
        for (int i = 0; i < dev.n; i++) {
            double e = pred[i * 2 + k] - dev.target[i * 2 + k];
            double c = dev.target[i * 2 + k] - mean;
            sse_k += e * e;
            sae += fabs(e);
            sst += c * c;
        }
        sse += sse_k;
        r2 += (1 - sse_k / sst) / 2;
    }
    assert_true(fabs(after.mse - sse / (dev.n * 2)) < 1e-4 * after.mse);
    assert_true(fabs(after.rmse - sqrt(sse / (dev.n * 2))) < 1e-4 * after.rmse);
    assert_true(fabs(after.mae - sae / (dev.n * 2)) < 1e-4 * after.mae);
    assert_true(fabs(after.r2 - r2) < 1e-4);
    assert_true(after.accuracy == 0.0);
    /* The same from raw rows */
    float *again = malloc((size_t)dev.n * 2 * sizeof *again);
    assert_int_equal(nb_model_predict_values(&m, dev.values, dev.n, again, &err), 0);
    assert_memory_equal(pred, again, (size_t)dev.n * 2 * sizeof *pred);
    free(again);
    free(pred);
    nb_model_free(&m);
    nb_dataset_free(&train);
    nb_dataset_free(&dev);
}

/* Multi-label: accuracy per label, micro and macro F1 from the predictions' signs. */
static void test_multilabel_metrics(void **state)
{
    (void)state;
    nb_dataset train = make_set(NB_TASK_MULTILABEL, 300, 3, 3);
    nb_dataset dev = make_set(NB_TASK_MULTILABEL, 80, 3, 4);
    nb_model m = build(NB_TASK_MULTILABEL, NB_LOSS_BCE, 3, 64);
    nb_error err;
    nb_train_config cfg = {.optim = {.kind = NB_ADAM, .beta = 0.9f, .beta2 = 0.999f,
                                     .eps = 1e-8f},
                           .schedule = {.lr = 0.02f},
                           .batch_size = 32, .epochs = 30, .shuffle = 1, .seed = 5};
    nb_train_result res;
    assert_int_equal(nb_train(&m, &train, NULL, NULL, &cfg, &res, &err), 0);
    nb_eval_result ev;
    assert_int_equal(nb_evaluate(&m, &dev, &ev, &err), 0);
    assert_true(ev.accuracy > 0.8);

    float *prob = malloc((size_t)dev.n * 3 * sizeof *prob);
    assert_int_equal(nb_model_predict_dataset(&m, &dev, prob, &err), 0);
    double tp[3] = {0}, fp[3] = {0}, fn[3] = {0}, correct = 0, macro = 0;
    for (int i = 0; i < dev.n * 3; i++) {
        assert_true(prob[i] >= 0.0f && prob[i] <= 1.0f);
        int p = prob[i] > 0.5f, a = dev.target[i] > 0.5f;
        correct += p == a;
        tp[i % 3] += p && a;
        fp[i % 3] += p && !a;
        fn[i % 3] += !p && a;
    }
    for (int k = 0; k < 3; k++)
        macro += 2 * tp[k] / (2 * tp[k] + fp[k] + fn[k]) / 3;
    double all_tp = tp[0] + tp[1] + tp[2], all = 2 * all_tp + fp[0] + fp[1] + fp[2] + fn[0] +
                                                  fn[1] + fn[2];
    assert_true(fabs(ev.accuracy - correct / (dev.n * 3)) < 1e-12);
    assert_true(fabs(ev.micro_f1 - 2 * all_tp / all) < 1e-12);
    assert_true(fabs(ev.macro_f1 - macro) < 1e-12);
    free(prob);
    nb_model_free(&m);
    nb_dataset_free(&train);
    nb_dataset_free(&dev);
}

/* A regression model saved and loaded keeps its task, loss and target scaling. */
static void test_save_load(void **state)
{
    (void)state;
    nb_model m = build(NB_TASK_REGRESSION, NB_LOSS_L1, 2, 8);
    m.target_mean = malloc(2 * sizeof(float));
    m.target_std = malloc(2 * sizeof(float));
    m.target_mean[0] = 1.5f, m.target_mean[1] = -3.0f;
    m.target_std[0] = 2.0f, m.target_std[1] = 0.25f;
    nb_error err;
    char path[] = "/tmp/nabla_losses_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(nb_model_save(&m, path, &err), 0);
    nb_model back;
    assert_int_equal(nb_model_load(&back, path, 8, &err), 0);
    assert_int_equal(back.spec.task, NB_TASK_REGRESSION);
    assert_int_equal(back.spec.loss, NB_LOSS_L1);
    assert_non_null(back.target_mean);
    assert_memory_equal(back.target_mean, m.target_mean, 2 * sizeof(float));
    assert_memory_equal(back.target_std, m.target_std, 2 * sizeof(float));
    nb_model_free(&back);
    nb_model_free(&m);
    remove(path);
}

/* --steps: the run losses_torch_check.py replays. */
static int steps(const char *loss_name, const char *dir)
{
    nb_loss loss;
    if (nb_loss_parse(loss_name, &loss) != 0 || loss == NB_LOSS_CROSS_ENTROPY) {
        fprintf(stderr, "unknown element-wise loss '%s'\n", loss_name);
        return 2;
    }
    enum { N = 32, BATCH = 8, OUT = 3, STEPS = 20 };
    nb_task task = nb_loss_task(loss);
    nb_dataset d = make_set(task, N, OUT, 11);
    nb_model_spec spec;
    nb_error err;
    if (nb_model_spec_parse(&spec, "linear(8),tanh,linear", nb_shape_vector(5), OUT, &err))
        return fprintf(stderr, "%s\n", err.msg), 1;
    spec.task = task;
    spec.loss = loss;
    nb_model m;
    if (nb_model_build(&m, &spec, BATCH, 3, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    if (task == NB_TASK_REGRESSION)   /* bring the targets near the outputs' scale */
        for (int i = 0; i < N * OUT; i++)
            d.target[i] = (d.target[i] - 40.0f) / 10.0f;
    char path[4096];
    snprintf(path, sizeof path, "%s/init.safetensors", dir);
    if (nb_model_save(&m, path, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    nb_st_tensor data[2] = {
        {.name = "x", .dtype = NB_F32, .ndim = 2, .shape = {N, 5}, .data = d.values,
         .nbytes = N * 5 * 4},
        {.name = "t", .dtype = NB_F32, .ndim = 2, .shape = {N, OUT}, .data = d.target,
         .nbytes = N * OUT * 4},
    };
    snprintf(path, sizeof path, "%s/data.safetensors", dir);
    if (nb_st_write(path, data, 2, NULL, 0, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    size_t n;
    float *w = nb_graph_params(m.graph, &n), *gw = nb_graph_grads(m.graph, &n);
    for (int s = 0; s < STEPS; s++) {
        int first = (s * BATCH) % N;
        memcpy(nb_node_value(m.x).data, d.values + first * 5, BATCH * 5 * sizeof(float));
        memcpy(nb_node_value(m.y).data, d.target + first * OUT, BATCH * OUT * sizeof(float));
        nb_graph_forward(m.graph, BATCH);
        printf("%.9g\n", (double)nb_node_scalar(m.loss));
        nb_graph_backward(m.graph, m.loss);
        for (size_t i = 0; i < n; i++)
            w[i] -= 0.1f * gw[i];
    }
    nb_model_free(&m);
    nb_dataset_free(&d);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--steps") == 0)
        return steps(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_by_hand),
        cmocka_unit_test(test_not_a_pair),
        cmocka_unit_test(test_gradchecks),
        cmocka_unit_test(test_task_and_loss_must_agree),
        cmocka_unit_test(test_regression_metrics),
        cmocka_unit_test(test_multilabel_metrics),
        cmocka_unit_test(test_save_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
