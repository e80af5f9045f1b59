/* Early stopping (nb_train_config.early_stop): the run stops `patience` epochs after its best
 * dev epoch, ends with that epoch's weights and batch-norm statistics bit for bit, keeps them
 * through a checkpoint and a resume, and refuses what it cannot watch. Also: a run of 0 epochs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nabla.h"
#include "model_snapshot_for_tests.h"
#include "model_spec_for_tests.h"

enum { EPOCHS = 30, MAX_SNAPSHOT = 4096 };

/* A run: moons to train on, and a dev set of the same points with their labels swapped, whose
 * loss rises as the model learns the training set. */
typedef struct run {
    nb_dataset train, dev;
    nb_model model;
    nb_train_config cfg;
    double dev_values[EPOCHS];   /* the monitored dev metric of each epoch, from on_epoch */
    int best_seen[EPOCHS];       /* nb_epoch_metrics.best_epoch after each */
    int stops_seen[EPOCHS];
    int epochs_seen;
    const char *save_dir;        /* save a checkpoint here at the end of epoch save_at */
    int save_at;
    int checkpoints;
} run;

static int on_epoch(const nb_epoch_metrics *m, void *user)
{
    run *r = user;
    assert_int_equal(m->epoch, r->epochs_seen);
    r->dev_values[m->epoch] = nb_metric_value(r->cfg.monitor, &m->dev);
    r->best_seen[m->epoch] = m->best_epoch;
    r->stops_seen[m->epoch] = m->stops_early;
    r->epochs_seen++;
    return 0;
}

static int on_checkpoint(const nb_train_state *s, void *user, nb_error *err)
{
    run *r = user;
    r->checkpoints++;
    if (r->save_dir && s->batch == 0 && s->epoch == r->save_at)
        return nb_checkpoint_save(r->save_dir, &r->model, s, NULL, 0, err);
    return 0;
}

static void run_init(run *r, int batchnorm, int patience, nb_metric monitor, int epochs)
{
    memset(r, 0, sizeof *r);
    nb_error err;
    assert_int_equal(nb_make_synthetic("moons", 200, 0.2f, 1, &r->train, &err), 0);
    assert_int_equal(nb_make_synthetic("moons", 200, 0.2f, 1, &r->dev, &err), 0);
    for (int i = 0; i < r->dev.n; i++)
        r->dev.labels[i] = 1 - r->dev.labels[i];
    nb_model_spec spec = mlp_spec((nb_mlp){.inputs = 2, .classes = 2, .n_hidden = 2,
                                           .hidden = {16, 16}, .activation = NB_RELU,
                                           .batchnorm = batchnorm});
    assert_int_equal(nb_model_build(&r->model, &spec, 20, 7, &err), 0);
    nb_train_config c = {
        .optim = {.kind = NB_ADAM, .beta = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
        .schedule = {.kind = NB_DECAY_NONE, .lr = 0.02f, .epochs = epochs},
        .batch_size = 20, .epochs = epochs, .shuffle = 1, .seed = 3,
        .on_epoch = on_epoch, .on_checkpoint = on_checkpoint,
        .early_stop = patience, .monitor = monitor,
    };
    r->cfg = c;
    r->cfg.user = r;
}

static void run_free(run *r)
{
    nb_model_free(&r->model);
    nb_dataset_free(&r->train);
    nb_dataset_free(&r->dev);
}

/* The model after `epochs` epochs of the same run without early stopping. */
static size_t weights_after(int batchnorm, int epochs, float *out)
{
    run r;
    run_init(&r, batchnorm, 0, NB_METRIC_LOSS, epochs);
    nb_train_result res;
    nb_error err;
    assert_int_equal(nb_train(&r.model, &r.train, &r.dev, NULL, &r.cfg, &res, &err), 0);
    assert_int_equal(res.epochs, epochs);
    assert_int_equal(res.best_epoch, -1);
    assert_false(res.stopped_early);
    size_t n = model_snapshot(&r.model, out, MAX_SNAPSHOT);
    run_free(&r);
    return n;
}

/* The epoch early stopping must pick: the first with the best value, strictly. */
static int expected_best(const run *r, int epochs)
{
    int best = 0;
    int higher = nb_metric_higher_is_better(r->cfg.monitor);
    for (int e = 1; e < epochs; e++)
        if (higher ? r->dev_values[e] > r->dev_values[best]
                   : r->dev_values[e] < r->dev_values[best])
            best = e;
    return best;
}

static void stops_at_best(int batchnorm, nb_metric monitor, int patience)
{
    run r;
    run_init(&r, batchnorm, patience, monitor, EPOCHS);
    nb_train_result res;
    nb_error err;
    assert_int_equal(nb_train(&r.model, &r.train, &r.dev, NULL, &r.cfg, &res, &err), 0);
    assert_true(res.stopped_early);
    assert_int_equal(res.epochs, r.epochs_seen);
    int best = expected_best(&r, r.epochs_seen);
    assert_int_equal(res.best_epoch, best);
    assert_true(res.best_value == r.dev_values[best]);
    /* It stopped `patience` epochs after the best, said in the last epoch's metrics. */
    assert_int_equal(res.epochs, best + 1 + patience);
    assert_true(res.epochs < EPOCHS);
    for (int e = 0; e < res.epochs; e++) {
        assert_int_equal(r.best_seen[e], expected_best(&r, e + 1));
        assert_int_equal(r.stops_seen[e], e == res.epochs - 1);
    }
    /* The model is the best epoch's, bit for bit: weights, running statistics, counters. */
    float *have = malloc(MAX_SNAPSHOT * sizeof *have), *want = malloc(MAX_SNAPSHOT * sizeof *want);
    size_t n = model_snapshot(&r.model, have, MAX_SNAPSHOT);
    assert_int_equal(weights_after(batchnorm, best + 1, want), n);
    assert_memory_equal(have, want, n * sizeof *have);
    /* And it evaluates as that epoch did. */
    nb_eval_result dev;
    assert_int_equal(nb_evaluate(&r.model, &r.dev, &dev, &err), 0);
    assert_true(nb_metric_value(monitor, &dev) == r.dev_values[best]);
    free(have);
    free(want);
    run_free(&r);
}

static void test_stops_on_dev_loss(void **state)
{
    (void)state;
    stops_at_best(0, NB_METRIC_LOSS, 3);
}

static void test_stops_on_dev_loss_with_batchnorm(void **state)
{
    (void)state;
    stops_at_best(1, NB_METRIC_LOSS, 2);
}

static void test_stops_on_dev_accuracy(void **state)
{
    (void)state;
    stops_at_best(1, NB_METRIC_ACCURACY, 4);
}

static char *make_dir(void)
{
    char *dir = strdup("/tmp/nabla-early-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void remove_dir(const char *dir)
{
    static const char *const names[] = {"checkpoint.safetensors", "checkpoint.prev.safetensors",
                                        "checkpoint.next.safetensors"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* A checkpoint taken after epoch `at` (its best epoch and that epoch's model in it), restored
 * into a fresh model and state and trained on: the same stop and the same model, bit for bit. */
static void resume_from(int at)
{
    char *dir = make_dir();
    run whole;
    run_init(&whole, 1, 3, NB_METRIC_LOSS, EPOCHS);
    whole.save_dir = dir;
    whole.save_at = at;
    nb_train_result res;
    nb_error err;
    assert_int_equal(nb_train(&whole.model, &whole.train, &whole.dev, NULL, &whole.cfg, &res,
                              &err), 0);
    assert_true(res.stopped_early && at <= res.epochs);
    float *want = malloc(MAX_SNAPSHOT * sizeof *want), *have = malloc(MAX_SNAPSHOT * sizeof *have);
    size_t n = model_snapshot(&whole.model, want, MAX_SNAPSHOT);

    run part;
    run_init(&part, 1, 3, NB_METRIC_LOSS, EPOCHS);
    nb_st_file f;
    char path[512];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    assert_int_equal(nb_checkpoint_read(path, &f, &err), 0);
    nb_train_state s;
    size_t n_params;
    nb_graph_params(part.model.graph, &n_params);
    assert_int_equal(nb_train_state_init(&s, &part.cfg.optim, n_params, part.train.n, &err), 0);
    assert_int_equal(nb_checkpoint_restore(&f, &part.model, &s, &err), 0);
    nb_st_free(&f);
    assert_int_equal(s.epoch, at);
    assert_true(s.best_epoch >= 0 && s.best_epoch < at);
    assert_non_null(s.best_params);
    part.cfg.resume = &s;
    part.epochs_seen = at;
    nb_train_result again;
    assert_int_equal(nb_train(&part.model, &part.train, &part.dev, NULL, &part.cfg, &again, &err),
                     0);
    assert_true(again.stopped_early);
    assert_int_equal(again.epochs, res.epochs);
    assert_int_equal(again.best_epoch, res.best_epoch);
    assert_true(again.best_value == res.best_value);
    assert_int_equal(model_snapshot(&part.model, have, MAX_SNAPSHOT), n);
    assert_memory_equal(have, want, n * sizeof *have);
    nb_train_state_free(&s);
    free(want);
    free(have);
    run_free(&part);
    run_free(&whole);
    remove_dir(dir);
    free(dir);
}

static void test_resume_keeps_the_best(void **state)
{
    (void)state;
    resume_from(2);   /* in the middle */
}

static void test_resume_at_the_stop(void **state)
{
    (void)state;
    /* The stop's own checkpoint: the resumed run trains nothing and ends with the best. */
    run r;
    run_init(&r, 1, 3, NB_METRIC_LOSS, EPOCHS);
    nb_train_result res;
    nb_error err;
    assert_int_equal(nb_train(&r.model, &r.train, &r.dev, NULL, &r.cfg, &res, &err), 0);
    run_free(&r);
    resume_from(res.epochs);
}

/* A checkpoint of a run without early stopping has no best epoch: it restores none. */
static void test_checkpoint_without_early_stopping(void **state)
{
    (void)state;
    char *dir = make_dir();
    run r;
    run_init(&r, 0, 0, NB_METRIC_LOSS, 2);
    r.save_dir = dir;
    r.save_at = 1;
    nb_train_result res;
    nb_error err;
    assert_int_equal(nb_train(&r.model, &r.train, &r.dev, NULL, &r.cfg, &res, &err), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    nb_st_file f;
    assert_int_equal(nb_checkpoint_read(path, &f, &err), 0);
    assert_null(nb_st_meta_get(&f, "best_epoch"));
    nb_train_state s;
    size_t n_params;
    nb_graph_params(r.model.graph, &n_params);
    assert_int_equal(nb_train_state_init(&s, &r.cfg.optim, n_params, r.train.n, &err), 0);
    assert_int_equal(nb_checkpoint_restore(&f, &r.model, &s, &err), 0);
    assert_int_equal(s.best_epoch, -1);
    assert_null(s.best_params);
    nb_st_free(&f);
    nb_train_state_free(&s);
    run_free(&r);
    remove_dir(dir);
    free(dir);
}

static void expect_refusal(run *r, const nb_dataset *dev, const char *words)
{
    nb_train_result res;
    nb_error err = {{0}};
    assert_int_equal(nb_train(&r->model, &r->train, dev, NULL, &r->cfg, &res, &err), -1);
    if (!strstr(err.msg, words))
        fail_msg("expected '%s' in: %s", words, err.msg);
}

static void test_refusals(void **state)
{
    (void)state;
    run r;
    run_init(&r, 0, 3, NB_METRIC_LOSS, 5);
    expect_refusal(&r, NULL, "there is none");
    nb_dataset empty = {0};
    expect_refusal(&r, &empty, "there is none");
    r.cfg.monitor = NB_METRIC_R2;
    expect_refusal(&r, &r.dev, "a classification model has no r2 to monitor (it has: loss, "
                               "accuracy)");
    r.cfg.monitor = NB_METRICS;
    expect_refusal(&r, &r.dev, "unknown monitored metric");
    r.cfg.monitor = NB_METRIC_LOSS;
    r.cfg.min_delta = -1;
    expect_refusal(&r, &r.dev, "min_delta");
    r.cfg.min_delta = NAN;
    expect_refusal(&r, &r.dev, "min_delta");
    r.cfg.min_delta = 0;
    r.cfg.early_stop = -1;
    expect_refusal(&r, &r.dev, "patience");
    run_free(&r);
}

/* The table of metrics: names both ways, directions, the tasks that have them. */
static void test_monitor_table(void **state)
{
    (void)state;
    for (int i = 0; i < NB_METRICS; i++) {
        nb_metric m;
        assert_int_equal(nb_metric_parse(nb_metric_name((nb_metric)i), &m), 0);
        assert_int_equal(m, i);
        int tasks = 0;
        for (int t = 0; t < NB_TASKS; t++)
            tasks += nb_metric_applies((nb_metric)i, (nb_task)t);
        assert_true(tasks >= 1);
    }
    nb_metric m;
    assert_int_equal(nb_metric_parse("dev_los", &m), -1);
    assert_false(nb_metric_higher_is_better(NB_METRIC_LOSS));
    assert_true(nb_metric_higher_is_better(NB_METRIC_ACCURACY));
    assert_true(nb_metric_higher_is_better(NB_METRIC_R2));
    assert_false(nb_metric_higher_is_better(NB_METRIC_RMSE));
    assert_false(nb_metric_applies(NB_METRIC_ACCURACY, NB_TASK_REGRESSION));
    assert_true(nb_metric_applies(NB_METRIC_LOSS, NB_TASK_REGRESSION));
    nb_eval_result e = {.loss = 1, .accuracy = 2, .mse = 3, .rmse = 4, .mae = 5, .r2 = 6,
                        .micro_f1 = 7, .macro_f1 = 8};
    for (int i = 0; i < NB_METRICS; i++)
        assert_true(nb_metric_value((nb_metric)i, &e) == i + 1);
    char names[128];
    nb_metric_names(NB_TASK_REGRESSION, names, sizeof names);
    assert_string_equal(names, "loss, mse, rmse, mae, r2");
}

/* min_delta: an epoch better by no more than it is not better. */
static void test_min_delta(void **state)
{
    (void)state;
    run r;
    run_init(&r, 0, 2, NB_METRIC_ACCURACY, EPOCHS);
    r.cfg.min_delta = 1.0;   /* no accuracy beats another by more than 1 */
    nb_train_result res;
    nb_error err;
    assert_int_equal(nb_train(&r.model, &r.train, &r.dev, NULL, &r.cfg, &res, &err), 0);
    assert_int_equal(res.best_epoch, 0);
    assert_int_equal(res.epochs, 3);
    assert_true(res.stopped_early);
    run_free(&r);
}

/* 0 epochs: nothing trained, the initial model kept, one checkpoint of the start. */
static void test_zero_epochs(void **state)
{
    (void)state;
    run r;
    run_init(&r, 1, 0, NB_METRIC_LOSS, 0);
    float *before = malloc(MAX_SNAPSHOT * sizeof *before), *after = malloc(MAX_SNAPSHOT * sizeof *after);
    size_t n = model_snapshot(&r.model, before, MAX_SNAPSHOT);
    nb_train_result res;
    nb_error err;
    assert_int_equal(nb_train(&r.model, &r.train, &r.dev, NULL, &r.cfg, &res, &err), 0);
    assert_int_equal(res.epochs, 0);
    assert_int_equal(res.steps, 0);
    assert_int_equal(r.epochs_seen, 0);
    assert_int_equal(r.checkpoints, 1);
    assert_int_equal(model_snapshot(&r.model, after, MAX_SNAPSHOT), n);
    assert_memory_equal(before, after, n * sizeof *before);
    r.cfg.epochs = -1;
    expect_refusal(&r, &r.dev, "at least 0");
    free(before);
    free(after);
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stops_on_dev_loss),
        cmocka_unit_test(test_stops_on_dev_loss_with_batchnorm),
        cmocka_unit_test(test_stops_on_dev_accuracy),
        cmocka_unit_test(test_resume_keeps_the_best),
        cmocka_unit_test(test_resume_at_the_stop),
        cmocka_unit_test(test_checkpoint_without_early_stopping),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_monitor_table),
        cmocka_unit_test(test_min_delta),
        cmocka_unit_test(test_zero_epochs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
