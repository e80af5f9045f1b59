/* nb_model_predict: the class of each sample, by hand on a linear model, and in agreement with
 * nb_evaluate on a trained batch-norm model (inference mode: running statistics). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla.h"
#include "model_spec_for_tests.h"

static void set_param(nb_model *m, const char *name, const float *values, size_t n)
{
    nb_named found;
    assert_non_null(nb_graph_find(m->graph, name, &found));
    nb_tensor t = nb_node_value(found.node);
    assert_int_equal(nb_tensor_numel(&t), n);
    memcpy(t.data, values, n * sizeof *values);
}

/* No hidden layer: logits = W x + b, whose argmax is worked out here by hand. */
static void test_linear_model_by_hand(void **state)
{
    (void)state;
    nb_model_spec spec = mlp_spec((nb_mlp){.inputs = 2, .classes = 3, .n_hidden = 0, .activation = NB_RELU});
    nb_model m;
    nb_error err;
    assert_int_equal(nb_model_build(&m, &spec, 2, 0, &err), 0);
    const float w[6] = {1, 0, 0, 1, -1, -1};   /* rows: class 0 = x0, 1 = x1, 2 = -x0-x1 */
    const float b[3] = {0, 0, 0.5f};
    set_param(&m, "0.weight", w, 6);
    set_param(&m, "0.bias", b, 3);
    /* (2,1): logits (2, 1, -2.5) -> 0; (-1,3): (-1, 3, -1.5) -> 1; (-1,-1): (-1, -1, 2.5) -> 2;
     * (1,1): (1, 1, -1.5), a tie -> the lower class, 0; (0,-4): (0, -4, 4.5) -> 2. Five
     * samples on a graph compiled for 2: three batches, the last one partial. */
    const float x[10] = {2, 1, -1, 3, -1, -1, 1, 1, 0, -4};
    const int32_t want[5] = {0, 1, 2, 0, 2};
    int32_t got[5] = {-1, -1, -1, -1, -1};
    assert_int_equal(nb_model_predict(&m, x, 5, got, &err), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(got[i], want[i]);
    /* Nothing to do, and nothing written. */
    got[0] = -7;
    assert_int_equal(nb_model_predict(&m, x, 0, got, &err), 0);
    assert_int_equal(got[0], -7);
    assert_int_equal(nb_model_predict(&m, x, -1, got, &err), -1);
    assert_non_null(strstr(err.msg, "-1 samples"));
    nb_model_free(&m);
}

/* A trained model with batch norm: the predictions score exactly nb_evaluate's accuracy, and a
 * sample's class does not depend on the batch it is in (running statistics, not the batch's:
 * in training mode a batch of one would normalize every feature to 0). */
static void test_agrees_with_evaluate_batchnorm(void **state)
{
    (void)state;
    nb_error err;
    nb_dataset train = {0}, test = {0};
    assert_int_equal(nb_make_synthetic("moons", 400, 0.25f, 5, &train, &err), 0);
    assert_int_equal(nb_make_synthetic("moons", 301, 0.25f, 6, &test, &err), 0);
    nb_model_spec spec = mlp_spec((nb_mlp){.inputs = 2, .classes = 2, .n_hidden = 2, .hidden = {12, 12},
                          .activation = NB_TANH, .batchnorm = 1});
    nb_model m;
    assert_int_equal(nb_model_build(&m, &spec, 32, 3, &err), 0);
    nb_train_config cfg = {
        .optim = {.kind = NB_ADAM, .beta = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
        .schedule = {.kind = NB_DECAY_NONE, .lr = 0.01f, .epochs = 2},
        .batch_size = 32, .epochs = 2, .shuffle = 1, .seed = 1,
    };
    nb_train_result res;
    assert_int_equal(nb_train(&m, &train, NULL, NULL, &cfg, &res, &err), 0);

    nb_eval_result eval;
    assert_int_equal(nb_evaluate(&m, &test, &eval, &err), 0);
    int32_t *pred = malloc((size_t)test.n * sizeof *pred);
    assert_non_null(pred);
    assert_int_equal(nb_model_predict(&m, test.values, test.n, pred, &err), 0);
    int correct = 0, ones = 0;
    for (int i = 0; i < test.n; i++) {
        assert_true(pred[i] == 0 || pred[i] == 1);
        correct += pred[i] == test.labels[i];
        ones += pred[i];
    }
    assert_true(fabs((double)correct / test.n - eval.accuracy) < 1e-12);
    /* Trained, so not a constant answer (else the comparison above proves little). */
    assert_true(ones > 30 && ones < test.n - 30);
    assert_true(eval.accuracy > 0.7);

    /* One at a time, each the only sample of its batch. */
    for (int i = 0; i < test.n; i += 7) {
        int32_t alone;
        assert_int_equal(nb_model_predict(&m, test.values + 2 * i, 1, &alone, &err), 0);
        assert_int_equal(alone, pred[i]);
    }
    free(pred);
    nb_model_free(&m);
    nb_dataset_free(&train);
    nb_dataset_free(&test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_model_by_hand),
        cmocka_unit_test(test_agrees_with_evaluate_batchnorm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
