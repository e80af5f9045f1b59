/* The training loop: it learns, it stops where told, it survives divergence, it is
 * deterministic, and it allocates nothing once training has started. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/clock.h"
#include "nabla.h"
#include "model_spec_for_tests.h"

/* Every malloc/calloc/realloc of the library is counted: the test links with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (see CMakeLists.txt). */
static long allocations;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n) { allocations++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { allocations++; return __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { allocations++; return __real_realloc(p, n); }

static nb_train_config adam_config(int batch, int epochs)
{
    nb_train_config cfg = {
        .optim = {.kind = NB_ADAM, .beta = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
        .schedule = {.kind = NB_DECAY_NONE, .lr = 0.01f, .epochs = epochs},
        .batch_size = batch, .epochs = epochs, .shuffle = 1, .seed = 3,
    };
    return cfg;
}

static void make_model(nb_model *m, int batchnorm, int max_batch)
{
    nb_model_spec spec = mlp_spec((nb_mlp){.inputs = 2, .classes = 2, .n_hidden = 2, .hidden = {16, 16},
                          .activation = NB_RELU, .batchnorm = batchnorm});
    nb_error err;
    assert_int_equal(nb_model_build(m, &spec, max_batch, 7, &err), 0);
}

typedef struct alloc_probe {
    long at_first_batch, at_last_batch;
    int64_t batches;
} alloc_probe;

static int count_batch(const nb_progress *p, void *user)
{
    alloc_probe *probe = user;
    if (probe->batches++ == 0)
        probe->at_first_batch = allocations;
    probe->at_last_batch = allocations;
    (void)p;
    return 0;
}

static int count_epoch(const nb_epoch_metrics *m, void *user)
{
    (void)m;
    (void)user;
    return 0;
}

static void test_no_allocation_while_training(void **state)
{
    (void)state;
    nb_dataset train = {0};
    nb_error err;
    assert_int_equal(nb_make_synthetic("moons", 300, 0.2f, 1, &train, &err), 0);
    for (int bn = 0; bn <= 1; bn++) {
        nb_model m;
        make_model(&m, bn, 32);
        nb_train_config cfg = adam_config(32, 3);
        alloc_probe probe = {0};
        cfg.on_batch = count_batch;
        cfg.on_epoch = count_epoch;   /* no dev or test set: the epoch ends allocate nothing */
        cfg.user = &probe;
        nb_train_result res;
        assert_int_equal(nb_train(&m, &train, NULL, NULL, &cfg, &res, &err), 0);
        assert_int_equal(probe.batches, 3 * 10);   /* 300 / 32 -> 9 full batches + 1 of 12 */
        assert_int_equal(probe.at_last_batch, probe.at_first_batch);
        nb_model_free(&m);
    }
    nb_dataset_free(&train);
}

/* A slow progress callback (as --eval-every's evaluations are): its time is not training's. */
typedef struct slow_probe {
    double last_elapsed;
    int64_t last_batch;
} slow_probe;

enum { SLOW_CALLBACK_MS = 50 };

static int slow_batch(const nb_progress *p, void *user)
{
    slow_probe *probe = user;
    probe->last_elapsed = p->elapsed;
    probe->last_batch = p->batch;
    const struct timespec pause = {0, SLOW_CALLBACK_MS * 1000000L};
    nanosleep(&pause, NULL);
    return 0;
}

static void test_callback_time_is_not_training_time(void **state)
{
    (void)state;
    nb_dataset train = {0};
    nb_error err;
    assert_int_equal(nb_make_synthetic("moons", 100, 0.2f, 1, &train, &err), 0);
    nb_model m;
    make_model(&m, 0, 20);
    nb_train_config cfg = adam_config(20, 2);   /* 2 epochs of 5 batches: 10 pauses */
    slow_probe probe = {0};
    cfg.on_batch = slow_batch;
    cfg.user = &probe;
    nb_train_result res;
    double start = nb_monotonic_seconds();
    assert_int_equal(nb_train(&m, &train, NULL, NULL, &cfg, &res, &err), 0);
    double wall = nb_monotonic_seconds() - start;
    /* The progress's elapsed time is the wall clock's: the pauses before the last batch. */
    assert_int_equal(probe.last_batch, 5);
    assert_true(probe.last_elapsed >= 4 * SLOW_CALLBACK_MS / 1000.0);
    /* The training time leaves the 10 pauses out, each at least SLOW_CALLBACK_MS long however
     * loaded the machine is: it is at most the call's wall time less the pauses. */
    assert_true(res.train_seconds <= wall - 10 * SLOW_CALLBACK_MS / 1000.0 + 1e-3);
    nb_model_free(&m);
    nb_dataset_free(&train);
}

static void test_learns_moons(void **state)
{
    (void)state;
    nb_dataset train = {0}, test = {0};
    nb_error err;
    assert_int_equal(nb_make_synthetic("moons", 600, 0.15f, 1, &train, &err), 0);
    assert_int_equal(nb_make_synthetic("moons", 300, 0.15f, 2, &test, &err), 0);
    for (int bn = 0; bn <= 1; bn++) {
        nb_model m;
        make_model(&m, bn, 32);
        nb_train_config cfg = adam_config(32, 40);
        nb_train_result res;
        nb_eval_result before, after;
        assert_int_equal(nb_evaluate(&m, &test, &before, &err), 0);
        assert_int_equal(nb_train(&m, &train, NULL, &test, &cfg, &res, &err), 0);
        assert_int_equal(nb_evaluate(&m, &test, &after, &err), 0);
        assert_int_equal(res.epochs, 40);
        assert_int_equal(res.steps, 40 * 19);   /* 600 / 32 -> 18 full batches + 1 of 24 */
        assert_int_equal(res.samples, 40 * 600);
        assert_false(res.diverged);
        assert_true(after.loss < before.loss);
        assert_true(after.accuracy > 0.95);
        nb_model_free(&m);
    }
    nb_dataset_free(&train);
    nb_dataset_free(&test);
}

static void test_batch_sizes_and_max_steps(void **state)
{
    (void)state;
    nb_dataset train = {0};
    nb_error err;
    assert_int_equal(nb_make_synthetic("circles", 50, 0.1f, 1, &train, &err), 0);
    nb_model m;
    make_model(&m, 0, 50);
    nb_train_result res;
    nb_train_config cfg = adam_config(0, 3);          /* 0: the whole set, one step an epoch */
    assert_int_equal(nb_train(&m, &train, NULL, NULL, &cfg, &res, &err), 0);
    assert_int_equal(res.steps, 3);
    cfg = adam_config(1, 2);                          /* stochastic: one step a sample */
    assert_int_equal(nb_train(&m, &train, NULL, NULL, &cfg, &res, &err), 0);
    assert_int_equal(res.steps, 100);
    cfg = adam_config(8, 5);                          /* 7 steps an epoch, stopped after 10 */
    cfg.max_steps = 10;
    assert_int_equal(nb_train(&m, &train, NULL, NULL, &cfg, &res, &err), 0);
    assert_int_equal(res.steps, 10);
    assert_int_equal(res.epochs, 2);
    nb_model_free(&m);

    make_model(&m, 0, 16);                            /* batches larger than the graph */
    cfg = adam_config(32, 1);
    assert_int_equal(nb_train(&m, &train, NULL, NULL, &cfg, &res, &err), -1);
    assert_non_null(strstr(err.msg, "do not fit"));
    nb_model_free(&m);
    nb_dataset_free(&train);
}

static void test_deterministic(void **state)
{
    (void)state;
    nb_dataset train = {0};
    nb_error err;
    assert_int_equal(nb_make_synthetic("spirals", 300, 0.2f, 1, &train, &err), 0);
    float *first = NULL;
    size_t n = 0;
    for (int run = 0; run < 3; run++) {
        nb_model_spec spec = mlp_spec((nb_mlp){.inputs = 2, .classes = 3, .n_hidden = 1, .hidden = {20},
                              .activation = NB_TANH, .batchnorm = 1});
        nb_model m;
        assert_int_equal(nb_model_build(&m, &spec, 16, 1, &err), 0);
        nb_train_config cfg = adam_config(16, 2);
        cfg.seed = run == 2 ? 4 : 3;                  /* the third run shuffles differently */
        nb_train_result res;
        assert_int_equal(nb_train(&m, &train, NULL, NULL, &cfg, &res, &err), 0);
        float *p = nb_graph_params(m.graph, &n);
        if (run == 0) {
            first = malloc(n * sizeof *first);
            memcpy(first, p, n * sizeof *first);
        } else if (run == 1) {
            assert_memory_equal(first, p, n * sizeof *first);
        } else {
            assert_memory_not_equal(first, p, n * sizeof *first);
        }
        nb_model_free(&m);
    }
    free(first);
    nb_dataset_free(&train);
}

static void divergence_keeps_good_weights(int batchnorm)
{
    nb_dataset train = {0};
    nb_error err;
    assert_int_equal(nb_make_synthetic("moons", 200, 0.2f, 1, &train, &err), 0);
    nb_model m;
    make_model(&m, batchnorm, 20);
    nb_train_config cfg = adam_config(20, 5);
    cfg.optim.kind = NB_SGD;
    cfg.schedule.lr = 1e30f;
    nb_train_result res;
    assert_int_equal(nb_train(&m, &train, NULL, NULL, &cfg, &res, &err), 0);
    assert_true(res.diverged);
    assert_int_equal(res.diverged_epoch, 0);
    assert_true(res.diverged_step >= 1);
    /* The weights left behind are finite and give a finite loss (in inference mode, with
     * batch norm's running statistics: the diverging step's forward pass had already updated
     * them, and they are put back too). */
    size_t n;
    float *p = nb_graph_params(m.graph, &n);
    for (size_t i = 0; i < n; i++)
        assert_true(isfinite(p[i]));
    nb_eval_result eval;
    assert_int_equal(nb_evaluate(&m, &train, &eval, &err), 0);
    assert_true(isfinite(eval.loss));
    nb_model_free(&m);
    nb_dataset_free(&train);
}

static void test_divergence_keeps_good_weights(void **state)
{
    (void)state;
    divergence_keeps_good_weights(0);
}

static void test_divergence_keeps_good_statistics(void **state)
{
    (void)state;
    divergence_keeps_good_weights(1);
}

static void test_refuses_mismatched_data(void **state)
{
    (void)state;
    nb_dataset train = {0};
    nb_error err;
    assert_int_equal(nb_make_synthetic("spirals", 60, 0.2f, 1, &train, &err), 0);
    nb_model m;
    make_model(&m, 0, 8);   /* 2 classes, but spirals has labels up to 2 */
    nb_train_config cfg = adam_config(8, 1);
    nb_train_result res;
    assert_int_equal(nb_train(&m, &train, NULL, NULL, &cfg, &res, &err), -1);
    assert_non_null(strstr(err.msg, "label 2"));
    nb_model_free(&m);
    nb_dataset_free(&train);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_allocation_while_training),
        cmocka_unit_test(test_callback_time_is_not_training_time),
        cmocka_unit_test(test_learns_moons),
        cmocka_unit_test(test_batch_sizes_and_max_steps),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_divergence_keeps_good_weights),
        cmocka_unit_test(test_divergence_keeps_good_statistics),
        cmocka_unit_test(test_refuses_mismatched_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
