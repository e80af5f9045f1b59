/* Checkpoints: the checksum, bit-identical resume (mid-epoch and at an epoch's end, with and
 * without batch norm, for optimizers with zero, one and two moments), damaged files refused
 * with the older checkpoint used instead, and a checkpoint read back as a model. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "nabla.h"
#include "model_snapshot_for_tests.h"
#include "model_spec_for_tests.h"

static void test_crc32c_known_values(void **state)
{
    (void)state;
    assert_int_equal(nb_crc32c(0, "123456789", 9), 0xE3069283u); /* the standard check value */
    assert_int_equal(nb_crc32c(0, "", 0), 0u);
    unsigned char zeros[32] = {0};
    assert_int_equal(nb_crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720, B.4 */
    /* In pieces, the same as in one go. */
    assert_int_equal(nb_crc32c(nb_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

/* ---- a small run to interrupt ---- */

typedef struct run {
    nb_dataset train, dev;
    nb_model model;
    nb_train_config cfg;
    char dir[256];
    volatile sig_atomic_t stop;
    int64_t stop_after;     /* steps, counted over this call */
    int64_t calls;
    int checkpoints;
    int64_t first_untimed;  /* batches of the first epoch of this call its progress did not time */
    int64_t untimed;        /* the same for the epoch in progress */
    int epoch;
} run;

static int on_batch(const nb_progress *p, void *user)
{
    run *r = user;
    /* The progress times the batches of this call only: all of an epoch's but the first
     * epoch's after a resume in its middle, whose earlier batches ran in another call. */
    assert_true(p->timed_batches >= 1 && p->timed_batches <= p->batch);
    if (r->calls == 0 || p->epoch != r->epoch) {
        r->untimed = p->batch - p->timed_batches;
        if (r->calls == 0)
            r->first_untimed = r->untimed;
        else
            assert_int_equal(r->untimed, 0);
        r->epoch = p->epoch;
    }
    assert_int_equal(p->batch - p->timed_batches, r->untimed);
    if (++r->calls >= r->stop_after && r->stop_after > 0)
        r->stop = 1;
    return 0;
}

static int on_checkpoint(const nb_train_state *s, void *user, nb_error *err)
{
    run *r = user;
    r->checkpoints++;
    nb_st_meta meta[1] = {{"note", "from the test"}};
    return nb_checkpoint_save(r->dir, &r->model, s, meta, 1, err);
}

static void run_init(run *r, nb_optimizer_kind kind, int batchnorm, const char *dir)
{
    memset(r, 0, sizeof *r);
    nb_error err;
    assert_int_equal(nb_make_synthetic("spirals", 330, 0.2f, 1, &r->train, &err), 0);
    assert_int_equal(nb_dataset_split(&r->train, 0.1f, 1, &r->dev, &err), 0);
    nb_model_spec spec = mlp_spec((nb_mlp){.inputs = 2, .classes = 3, .n_hidden = 2, .hidden = {16, 12},
                          .activation = NB_RELU, .batchnorm = batchnorm});
    assert_int_equal(nb_model_build(&r->model, &spec, 32, 5, &err), 0);
    nb_train_config c = {
        .optim = {.kind = kind, .beta = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                  .weight_decay = 1e-3f},
        .schedule = {.kind = NB_DECAY_INVERSE, .lr = 0.01f, .rate = 0.5f, .epochs = 4},
        .batch_size = 32, .epochs = 4, .shuffle = 1, .seed = 9,
        .on_batch = on_batch, .on_checkpoint = on_checkpoint, .checkpoint_every = 4,
    };
    r->cfg = c;
    r->cfg.user = r;
    r->cfg.stop = &r->stop;
    snprintf(r->dir, sizeof r->dir, "%s", dir);
}

static void run_free(run *r)
{
    nb_model_free(&r->model);
    nb_dataset_free(&r->train);
    nb_dataset_free(&r->dev);
}

static char *make_dir(void)
{
    char *dir = strdup("/tmp/nabla-ckpt-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void remove_dir(const char *dir)
{
    static const char *const names[] = {"checkpoint.safetensors", "checkpoint.prev.safetensors",
                                        "checkpoint.next.safetensors"};
    char path[512];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

enum { CAP = 8192 };

/* Trains uninterrupted; then again, stopped after `stop_after` steps and resumed from the
 * checkpoint into a fresh model: both end with the same bytes. */
static void check_resume(nb_optimizer_kind kind, int batchnorm, int64_t stop_after)
{
    char *dir = make_dir();
    float *want = malloc(CAP * sizeof *want), *got = malloc(CAP * sizeof *got);
    nb_error err;
    run a;
    run_init(&a, kind, batchnorm, dir);
    a.cfg.on_checkpoint = NULL;
    nb_train_result ra;
    assert_int_equal(nb_train(&a.model, &a.train, &a.dev, NULL, &a.cfg, &ra, &err), 0);
    size_t n_want = model_snapshot(&a.model, want, CAP);

    run b;
    run_init(&b, kind, batchnorm, dir);
    b.stop_after = stop_after;
    nb_train_result rb;
    assert_int_equal(nb_train(&b.model, &b.train, &b.dev, NULL, &b.cfg, &rb, &err), 0);
    assert_true(rb.interrupted);
    assert_int_equal(rb.steps, stop_after);
    assert_true(b.checkpoints >= 1);

    run c;
    run_init(&c, kind, batchnorm, dir);
    nb_st_file f;
    char used[512], note[512];
    assert_int_equal(nb_checkpoint_open(dir, &f, used, sizeof used, note, sizeof note, &err), 0);
    assert_string_equal(note, "");
    assert_string_equal(nb_st_meta_get(&f, "note"), "from the test");
    size_t n_params;
    nb_graph_params(c.model.graph, &n_params);
    nb_train_state s;
    assert_int_equal(nb_train_state_init(&s, &c.cfg.optim, n_params, c.train.n, &err), 0);
    assert_int_equal(nb_checkpoint_restore(&f, &c.model, &s, &err), 0);
    nb_st_free(&f);
    assert_int_equal(s.steps, stop_after);
    c.cfg.resume = &s;
    c.cfg.on_checkpoint = NULL;
    nb_train_result rc;
    assert_int_equal(nb_train(&c.model, &c.train, &c.dev, NULL, &c.cfg, &rc, &err), 0);
    assert_int_equal(rc.steps, ra.steps);
    assert_int_equal(rc.epochs, ra.epochs);
    assert_int_equal(c.first_untimed, stop_after % 10);   /* 10 steps an epoch */
    size_t n_got = model_snapshot(&c.model, got, CAP);
    assert_int_equal(n_got, n_want);
    assert_memory_equal(got, want, n_want * sizeof *want);

    nb_train_state_free(&s);
    run_free(&a);
    run_free(&b);
    run_free(&c);
    free(want);
    free(got);
    remove_dir(dir);
    free(dir);
}

/* 297 training samples in batches of 32: 10 steps an epoch. */
static void test_resume_mid_epoch_adam(void **state)
{
    (void)state;
    check_resume(NB_ADAM, 0, 13);
}

static void test_resume_mid_epoch_momentum_batchnorm(void **state)
{
    (void)state;
    check_resume(NB_MOMENTUM, 1, 27);
}

static void test_resume_at_epoch_end_sgd(void **state)
{
    (void)state;
    check_resume(NB_SGD, 1, 20);
}

static void test_resume_after_first_step_rmsprop(void **state)
{
    (void)state;
    check_resume(NB_RMSPROP, 0, 1);
}

/* ---- damaged files ---- */

static void flip_byte(const char *path, long from_end)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, -from_end, SEEK_END), 0);
    int c = fgetc(fp);
    assert_int_equal(fseek(fp, -from_end, SEEK_END), 0);
    fputc(c ^ 0x20, fp);
    fclose(fp);
}

/* Changes the first digit of the value of metadata key `key` in the header. */
static void change_meta_digit(const char *path, const char *key)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    char *at = memmem(buf, n, pattern, strlen(pattern));
    assert_non_null(at);
    long offset = (long)(at - buf + (long)strlen(pattern));
    assert_true(buf[offset] >= '0' && buf[offset] <= '9');
    char digit = buf[offset] == '9' ? '8' : (char)(buf[offset] + 1);
    assert_int_equal(fseek(fp, offset, SEEK_SET), 0);
    fputc(digit, fp);
    fclose(fp);
}

/* A run trained for `epochs` epochs into a new directory, with its checkpoints there. */
static char *trained_run(run *r, nb_optimizer_kind kind, int batchnorm, int epochs)
{
    char *dir = make_dir();
    run_init(r, kind, batchnorm, dir);
    r->cfg.epochs = epochs;
    nb_error err;
    nb_train_result res;
    assert_int_equal(nb_train(&r->model, &r->train, &r->dev, NULL, &r->cfg, &res, &err), 0);
    return dir;
}

static void test_damaged_header_value_is_caught(void **state)
{
    (void)state;
    run r;
    char *dir = trained_run(&r, NB_ADAM, 0, 1);
    nb_error err;
    char path[512];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    nb_st_file f;
    assert_int_equal(nb_checkpoint_read(path, &f, &err), 0);
    nb_st_free(&f);
    /* A digit of a stored number: the file still parses, only the checksum can tell. */
    change_meta_digit(path, "steps");
    assert_int_equal(nb_checkpoint_read(path, &f, &err), -1);
    assert_non_null(strstr(err.msg, "damaged"));
    run_free(&r);
    remove_dir(dir);
    free(dir);
}

static void test_damaged_checkpoint_falls_back(void **state)
{
    (void)state;
    run r;
    char *dir = trained_run(&r, NB_ADAM, 1, 2);
    nb_error err;
    assert_true(r.checkpoints >= 2);

    char current[512], previous[512], used[512], note[512];
    snprintf(current, sizeof current, "%s/checkpoint.safetensors", dir);
    snprintf(previous, sizeof previous, "%s/checkpoint.prev.safetensors", dir);
    nb_st_file f;
    assert_int_equal(nb_checkpoint_read(current, &f, &err), 0);
    nb_st_free(&f);

    flip_byte(current, 100); /* inside the data: only the checksum can tell */
    assert_int_equal(nb_checkpoint_read(current, &f, &err), -1);
    assert_non_null(strstr(err.msg, "damaged"));
    assert_int_equal(nb_checkpoint_open(dir, &f, used, sizeof used, note, sizeof note, &err), 0);
    assert_string_equal(used, previous);
    assert_non_null(strstr(note, "damaged"));
    nb_st_free(&f);

    /* Both damaged: nothing usable, and the message says why. */
    truncate(previous, 64);
    assert_int_equal(nb_checkpoint_open(dir, &f, used, sizeof used, note, sizeof note, &err), -1);
    assert_non_null(strstr(err.msg, "no usable checkpoint"));

    run_free(&r);
    remove_dir(dir);
    free(dir);
}

static void test_restore_checks_before_copying(void **state)
{
    (void)state;
    run r;
    char *dir = trained_run(&r, NB_ADAM, 0, 1);
    nb_error err;

    char path[512];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    nb_st_file f;
    assert_int_equal(nb_checkpoint_read(path, &f, &err), 0);
    size_t n_params;
    nb_graph_params(r.model.graph, &n_params);

    /* Another optimizer, another data size: refused. */
    nb_optim_config sgd = {.kind = NB_SGD};
    nb_train_state s;
    assert_int_equal(nb_train_state_init(&s, &sgd, n_params, r.train.n, &err), 0);
    assert_int_equal(nb_checkpoint_restore(&f, &r.model, &s, &err), -1);
    assert_non_null(strstr(err.msg, "optimizer"));
    nb_train_state_free(&s);
    assert_int_equal(nb_train_state_init(&s, &r.cfg.optim, n_params, r.train.n - 1, &err), 0);
    assert_int_equal(nb_checkpoint_restore(&f, &r.model, &s, &err), -1);
    assert_non_null(strstr(err.msg, "samples"));
    nb_train_state_free(&s);

    /* A checkpoint is also a model file. */
    nb_model loaded;
    assert_int_equal(nb_model_load(&loaded, path, 8, &err), 0);
    size_t n_loaded;
    float *p = nb_graph_params(loaded.graph, &n_loaded);
    assert_int_equal(n_loaded, n_params);
    assert_memory_equal(p, nb_graph_params(r.model.graph, NULL), n_params * sizeof *p);
    nb_model_free(&loaded);

    nb_st_free(&f);
    run_free(&r);
    remove_dir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_values),
        cmocka_unit_test(test_resume_mid_epoch_adam),
        cmocka_unit_test(test_resume_mid_epoch_momentum_batchnorm),
        cmocka_unit_test(test_resume_at_epoch_end_sgd),
        cmocka_unit_test(test_resume_after_first_step_rmsprop),
        cmocka_unit_test(test_damaged_checkpoint_falls_back),
        cmocka_unit_test(test_damaged_header_value_is_caught),
        cmocka_unit_test(test_restore_checks_before_copying),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
