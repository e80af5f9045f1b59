/* Models in safetensors files: save and load round trips, PyTorch state_dict names and
 * shapes, and loads that must fail without touching the model. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nabla.h"
#include "model_spec_for_tests.h"

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nb_test_mio_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int drop_tmpdir(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            char p[512];
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

static void tmp_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

static void build(nb_model *m, const nb_model_spec *s, int max_batch, uint64_t seed)
{
    nb_error err;
    if (nb_model_build(m, s, max_batch, seed, &err) != 0)
        fail_msg("build: %s", err.msg);
}

/* Gives every named tensor distinct values, so nothing can pass by coinciding with the
 * initialization (biases 0, gamma 1, running statistics 0 and 1). */
static void scramble(nb_model *m, float offset)
{
    int n = nb_graph_named_count(m->graph);
    for (int i = 0; i < n; i++) {
        nb_named t = nb_graph_named(m->graph, i);
        if (t.kind == NB_KIND_COUNTER) {
            *t.counter = 1000 + i;
            continue;
        }
        nb_tensor v = nb_node_value(t.node);
        size_t count = nb_tensor_numel(&v);
        for (size_t k = 0; k < count; k++)
            v.data[k] = offset + 0.37f * (float)i - 0.011f * (float)k;
    }
    /* Running variances must stay positive to make sense in a forward pass. */
    for (int i = 0; i < n; i++) {
        nb_named t = nb_graph_named(m->graph, i);
        if (strstr(t.name, "running_var")) {
            nb_tensor v = nb_node_value(t.node);
            for (int k = 0; k < v.shape[0]; k++)
                v.data[k] = 0.5f + 0.25f * (float)k;
        }
    }
}

/* All named values of a model, as bytes, to check a failed load changed nothing. */
static unsigned char *snapshot(const nb_model *m, size_t *size)
{
    size_t total = 0;
    int n = nb_graph_named_count(m->graph);
    for (int i = 0; i < n; i++) {
        nb_named t = nb_graph_named(m->graph, i);
        if (t.kind == NB_KIND_COUNTER) {
            total += 8;
        } else {
            nb_tensor v = nb_node_value(t.node);
            total += 4 * nb_tensor_numel(&v);
        }
    }
    unsigned char *buf = malloc(total), *p = buf;
    assert_non_null(buf);
    for (int i = 0; i < n; i++) {
        nb_named t = nb_graph_named(m->graph, i);
        if (t.kind == NB_KIND_COUNTER) {
            memcpy(p, t.counter, 8);
            p += 8;
        } else {
            nb_tensor v = nb_node_value(t.node);
            memcpy(p, v.data, 4 * nb_tensor_numel(&v));
            p += 4 * nb_tensor_numel(&v);
        }
    }
    *size = total;
    return buf;
}

static void assert_same_tensors(const nb_model *a, const nb_model *b)
{
    int n = nb_graph_named_count(a->graph);
    assert_int_equal(nb_graph_named_count(b->graph), n);
    for (int i = 0; i < n; i++) {
        nb_named ta = nb_graph_named(a->graph, i), tb;
        assert_non_null(nb_graph_find(b->graph, ta.name, &tb));
        assert_int_equal(ta.kind, tb.kind);
        if (ta.kind == NB_KIND_COUNTER) {
            assert_true(*ta.counter == *tb.counter);
            continue;
        }
        nb_tensor va = nb_node_value(ta.node), vb = nb_node_value(tb.node);
        assert_int_equal(va.ndim, vb.ndim);
        for (int d = 0; d < va.ndim; d++)
            assert_int_equal(va.shape[d], vb.shape[d]);
        assert_memory_equal(va.data, vb.data, 4 * nb_tensor_numel(&va));
    }
}

static void assert_same_spec(const nb_model_spec *a, const nb_model_spec *b)
{
    assert_int_equal(a->input.ndim, b->input.ndim);
    assert_memory_equal(a->input.dim, b->input.dim, sizeof a->input.dim);
    assert_int_equal(a->classes, b->classes);
    char ta[NB_LAYERS_TEXT_MAX], tb[NB_LAYERS_TEXT_MAX];
    assert_true(nb_layers_format(&a->layers, ta, sizeof ta) > 0);
    assert_true(nb_layers_format(&b->layers, tb, sizeof tb) > 0);
    assert_string_equal(ta, tb);
}

/* Inference-mode logits of a fixed batch. */
static void logits_of(nb_model *m, int batch, float *out)
{
    nb_tensor x = nb_node_value(m->x);
    for (int i = 0; i < batch * nb_model_features(&m->spec); i++)
        x.data[i] = (float)((i * 7) % 11) / 5.0f - 1.0f;
    memset(nb_node_labels(m->y), 0, (size_t)batch * sizeof(int32_t));
    nb_graph_set_training(m->graph, 0);
    nb_graph_forward(m->graph, batch);
    memcpy(out, nb_node_value(m->logits).data, (size_t)batch * m->spec.classes * sizeof(float));
}

static void expect_load_weights_error(nb_model *m, const char *path, const char *expect)
{
    size_t n0, n1;
    unsigned char *before = snapshot(m, &n0);
    nb_error err = {{0}};
    int rc = nb_model_load_weights(m, path, &err);
    if (rc == 0 || !strstr(err.msg, expect) || !strstr(err.msg, path))
        fail_msg("expected an error containing \"%s\", got rc %d: \"%s\"", expect, rc, err.msg);
    unsigned char *after = snapshot(m, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
}

/* ---------------------------------------------------------------------------------------- */
/* A state_dict written by hand, as PyTorch names it                                        */
/* ---------------------------------------------------------------------------------------- */

typedef struct hand_tensor {
    const char *name;
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
} hand_tensor;

/* The state_dict of Sequential(Linear(3,4), ReLU(), Linear(4,2)). */
static const hand_tensor plain_state[] = {
    {"0.weight", NB_F32, 2, {4, 3}},
    {"0.bias", NB_F32, 1, {4}},
    {"2.weight", NB_F32, 2, {2, 4}},
    {"2.bias", NB_F32, 1, {2}},
};

static float hand_value(int t, size_t k)
{
    return 0.5f * (float)(t + 1) + 0.125f * (float)k;
}

/* Writes the tensors with values hand_value(t, k) (I64: 40 + t). nan_in >= 0 puts a NaN in
 * that tensor's last element. */
static void write_hand_file(const char *path, const hand_tensor *h, int n, int nan_in)
{
    nb_st_tensor t[16];
    void *data[16];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        size_t count = 1;
        for (int d = 0; d < h[i].ndim; d++)
            count *= (size_t)h[i].shape[d];
        size_t esize = h[i].dtype == NB_I64 ? 8 : 4;
        data[i] = malloc(count * esize + 1);
        for (size_t k = 0; k < count; k++) {
            if (h[i].dtype == NB_I64) {
                int64_t v = 40 + i;
                memcpy((char *)data[i] + 8 * k, &v, 8);
            } else {
                float v = hand_value(i, k);
                if (i == nan_in && k == count - 1)
                    v = NAN;
                memcpy((char *)data[i] + 4 * k, &v, 4);
            }
        }
        t[i] = (nb_st_tensor){.name = (char *)h[i].name, .dtype = h[i].dtype, .ndim = h[i].ndim,
                              .data = data[i], .nbytes = count * esize};
        memcpy(t[i].shape, h[i].shape, sizeof t[i].shape);
    }
    nb_error err;
    if (nb_st_write(path, t, n, NULL, 0, &err) != 0)
        fail_msg("%s", err.msg);
    for (int i = 0; i < n; i++)
        free(data[i]);
}

static void test_load_weights_from_state_dict(void **state)
{
    (void)state;
    nb_model_spec s = make_spec(3, 2, "4", NB_RELU, 0.01f, 0);
    nb_model m;
    build(&m, &s, 4, 1);
    char path[128];
    tmp_path(path, sizeof path, "state_dict.safetensors");
    write_hand_file(path, plain_state, 4, -1);
    nb_error err;
    if (nb_model_load_weights(&m, path, &err) != 0)
        fail_msg("%s", err.msg);
    for (int i = 0; i < 4; i++) {
        nb_named t;
        assert_non_null(nb_graph_find(m.graph, plain_state[i].name, &t));
        nb_tensor v = nb_node_value(t.node);
        for (size_t k = 0; k < nb_tensor_numel(&v); k++)
            assert_true(v.data[k] == hand_value(i, k));
    }
    /* Row-major [out, in] as torch.nn.Linear: the output is W x + b. */
    nb_tensor x = nb_node_value(m.x);
    x.data[0] = 1.0f, x.data[1] = 0.0f, x.data[2] = 0.0f;
    nb_node_labels(m.y)[0] = 0;
    nb_graph_set_training(m.graph, 0);
    nb_graph_forward(m.graph, 1);
    /* Hidden unit j = relu(W0[j][0] + b0[j]) = 0.5 + 0.125*3j + 1.0 + 0.125j = 1.5 + 0.5j.
     * Logit o = b2[o] + sum_j W2[o][j] * h_j with W2[o][j] = 1.5 + 0.125*(4o+j),
     * b2[o] = 2.0 + 0.125*o. Worked out: o=0: 2 + (1.5*1.5 + 1.625*2 + 1.75*2.5 + 1.875*3)
     * = 2 + 15.5 = 17.5; o=1: 2.125 + (2*1.5 + 2.125*2 + 2.25*2.5 + 2.375*3) = 2.125 + 20
     * = 22.125. */
    nb_tensor logits = nb_node_value(m.logits);
    assert_float_equal(logits.data[0], 17.5f, 1e-5);
    assert_float_equal(logits.data[1], 22.125f, 1e-5);
    nb_model_free(&m);
}

static void test_load_weights_refuses_bad_files(void **state)
{
    (void)state;
    nb_model_spec s = make_spec(3, 2, "4", NB_RELU, 0.01f, 0);
    nb_model m;
    build(&m, &s, 4, 1);
    scramble(&m, 0.0f);
    char path[128];
    tmp_path(path, sizeof path, "bad.safetensors");
    hand_tensor h[6];

    /* Wrong shape in the last tensor: the earlier, valid ones must not be copied either. */
    memcpy(h, plain_state, sizeof plain_state);
    h[3].shape[0] = 3;
    write_hand_file(path, h, 4, -1);
    expect_load_weights_error(&m, path, "tensor '2.bias' has shape [3], the model needs [2]");

    memcpy(h, plain_state, sizeof plain_state);
    h[0].shape[0] = 5;
    write_hand_file(path, h, 4, -1);
    expect_load_weights_error(&m, path, "tensor '0.weight' has shape [5, 3], the model needs [4, 3]");

    memcpy(h, plain_state, sizeof plain_state);
    h[1] = (hand_tensor){"0.bias", NB_F32, 2, {4, 1}};
    write_hand_file(path, h, 4, -1);
    expect_load_weights_error(&m, path, "tensor '0.bias' has shape [4, 1], the model needs [4]");

    memcpy(h, plain_state, sizeof plain_state);
    h[2].dtype = NB_I64;
    write_hand_file(path, h, 4, -1);
    expect_load_weights_error(&m, path, "tensor '2.weight' has dtype I64, the model needs F32");

    /* Missing: all of them are named. */
    write_hand_file(path, plain_state, 2, -1);
    expect_load_weights_error(&m, path, "tensors '2.weight', '2.bias' are missing");
    write_hand_file(path, plain_state + 1, 3, -1);
    expect_load_weights_error(&m, path, "tensor '0.weight' is missing");

    /* Extra tensors in the file. */
    memcpy(h, plain_state, sizeof plain_state);
    h[4] = (hand_tensor){"4.weight", NB_F32, 2, {2, 2}};
    h[5] = (hand_tensor){"4.bias", NB_F32, 1, {2}};
    write_hand_file(path, h, 6, -1);
    expect_load_weights_error(&m, path, "the file has tensors the model does not: '4.weight', "
                                        "'4.bias'");

    /* A NaN weight. */
    write_hand_file(path, plain_state, 4, 2);
    expect_load_weights_error(&m, path, "tensor '2.weight' element 7 is NaN");

    /* Not a file at all. */
    tmp_path(path, sizeof path, "absent.safetensors");
    expect_load_weights_error(&m, path, "No such file");
    nb_model_free(&m);
}

/* With batch norm: Sequential(Linear(3,4,bias=False), BatchNorm1d(4), Tanh(), Linear(4,2)). */
static void test_load_weights_batchnorm_counter(void **state)
{
    (void)state;
    nb_model_spec s = make_spec(3, 2, "4", NB_TANH, 0.01f, 1);
    nb_model m;
    build(&m, &s, 4, 1);
    hand_tensor h[7] = {
        {"0.weight", NB_F32, 2, {4, 3}},
        {"1.weight", NB_F32, 1, {4}},
        {"1.bias", NB_F32, 1, {4}},
        {"1.running_mean", NB_F32, 1, {4}},
        {"1.running_var", NB_F32, 1, {4}},
        {"1.num_batches_tracked", NB_I64, 0, {0}},
        {"3.weight", NB_F32, 2, {2, 4}},
    };
    hand_tensor full[8];
    memcpy(full, h, sizeof h);
    full[7] = (hand_tensor){"3.bias", NB_F32, 1, {2}};
    char path[128];
    tmp_path(path, sizeof path, "bn.safetensors");
    nb_error err;

    write_hand_file(path, full, 8, -1);
    if (nb_model_load_weights(&m, path, &err) != 0)
        fail_msg("%s", err.msg);
    nb_named t;
    assert_non_null(nb_graph_find(m.graph, "1.num_batches_tracked", &t));
    assert_true(*t.counter == 45);
    assert_non_null(nb_graph_find(m.graph, "1.running_var", &t));
    assert_true(nb_node_value(t.node).data[3] == hand_value(4, 3));

    /* The counter as a one-element vector is accepted too. */
    full[5].ndim = 1;
    full[5].shape[0] = 1;
    write_hand_file(path, full, 8, -1);
    assert_int_equal(nb_model_load_weights(&m, path, &err), 0);

    full[5].shape[0] = 2;
    write_hand_file(path, full, 8, -1);
    expect_load_weights_error(&m, path, "tensor '1.num_batches_tracked' has shape [2], the "
                                        "model needs [] (or [1])");
    full[5] = (hand_tensor){"1.num_batches_tracked", NB_F32, 0, {0}};
    write_hand_file(path, full, 8, -1);
    expect_load_weights_error(&m, path, "tensor '1.num_batches_tracked' has dtype F32");
    /* Dense layers before batch norm have no bias: a file with one does not fit. */
    full[5] = (hand_tensor){"0.bias", NB_F32, 1, {4}};
    write_hand_file(path, full, 8, -1);
    expect_load_weights_error(&m, path, "'1.num_batches_tracked' is missing");
    nb_model_free(&m);
}

/* ---------------------------------------------------------------------------------------- */
/* Save and load                                                                            */
/* ---------------------------------------------------------------------------------------- */

static void round_trip(const nb_model_spec *s, int with_norm)
{
    nb_model a, b;
    build(&a, s, 6, 11);
    scramble(&a, 0.25f);
    if (with_norm) {
        a.norm_mean = malloc((size_t)nb_model_features(s) * sizeof(float));
        a.norm_std = malloc((size_t)nb_model_features(s) * sizeof(float));
        for (int i = 0; i < nb_model_features(s); i++) {
            a.norm_mean[i] = 0.1f * (float)i - 1e-7f;   /* needs 9 digits to survive */
            a.norm_std[i] = 1.0f / 3.0f + (float)i;
        }
    }
    char path[128];
    tmp_path(path, sizeof path, "model.safetensors");
    nb_error err;
    if (nb_model_save(&a, path, &err) != 0)
        fail_msg("save: %s", err.msg);
    if (nb_model_load(&b, path, 3, &err) != 0)
        fail_msg("load: %s", err.msg);
    assert_same_spec(&a.spec, &b.spec);
    assert_same_tensors(&a, &b);
    assert_int_equal(nb_graph_max_batch(b.graph), 3);
    if (with_norm) {
        assert_non_null(b.norm_mean);
        assert_memory_equal(a.norm_mean, b.norm_mean, (size_t)nb_model_features(s) * sizeof(float));
        assert_memory_equal(a.norm_std, b.norm_std, (size_t)nb_model_features(s) * sizeof(float));
    } else {
        assert_null(b.norm_mean);
        assert_null(b.norm_std);
    }
    /* The loaded model computes exactly what the saved one did. */
    float la[3 * 10], lb[3 * 10];
    assert_true(s->classes <= 10);
    logits_of(&a, 3, la);
    logits_of(&b, 3, lb);
    assert_memory_equal(la, lb, (size_t)3 * s->classes * sizeof(float));

    /* load_weights into a fresh model of the same spec gives the same tensors too. */
    nb_model c;
    build(&c, s, 2, 99);
    if (nb_model_load_weights(&c, path, &err) != 0)
        fail_msg("load_weights: %s", err.msg);
    assert_same_tensors(&a, &c);
    nb_model_free(&a);
    nb_model_free(&b);
    nb_model_free(&c);
}

static void test_round_trip_plain(void **state)
{
    (void)state;
    nb_model_spec s = make_spec(5, 3, "4,6", NB_RELU, 0.01f, 0);
    round_trip(&s, 0);
    s = make_spec(7, 2, "", NB_SIGMOID, 0.01f, 0); /* logistic regression */
    round_trip(&s, 1);
}

static void test_round_trip_batchnorm(void **state)
{
    (void)state;
    nb_model_spec s = make_spec(5, 3, "4,6", NB_LEAKY_RELU, 0.2f, 1);
    round_trip(&s, 1);
    s = make_spec(2, 4, "3", NB_TANH, 0.01f, 1);
    round_trip(&s, 0);
}

/* The file itself, read with the generic reader: torch names, dtypes, shapes, metadata. */
static void test_saved_file_contents(void **state)
{
    (void)state;
    nb_model_spec s = make_spec(5, 3, "4", NB_LEAKY_RELU, 0.2f, 1);
    nb_model m;
    build(&m, &s, 2, 3);
    scramble(&m, 0.0f);
    nb_named cnt;
    assert_non_null(nb_graph_find(m.graph, "1.num_batches_tracked", &cnt));
    *cnt.counter = 123456789012LL;
    m.norm_mean = calloc(5, sizeof(float));
    m.norm_std = malloc(5 * sizeof(float));
    for (int i = 0; i < 5; i++)
        m.norm_std[i] = 0.5f * (float)(i + 1);
    char path[128];
    tmp_path(path, sizeof path, "contents.safetensors");
    nb_error err;
    assert_int_equal(nb_model_save(&m, path, &err), 0);

    nb_st_file f;
    assert_int_equal(nb_st_read(path, &f, &err), 0);
    const struct {
        const char *name;
        nb_dtype dtype;
        int ndim;
        int64_t shape[2];
    } expect[] = {
        {"0.weight", NB_F32, 2, {4, 5}},      {"1.weight", NB_F32, 1, {4}},
        {"1.bias", NB_F32, 1, {4}},           {"1.running_mean", NB_F32, 1, {4}},
        {"1.running_var", NB_F32, 1, {4}},    {"1.num_batches_tracked", NB_I64, 0, {0}},
        {"3.weight", NB_F32, 2, {3, 4}},      {"3.bias", NB_F32, 1, {3}},
    };
    assert_int_equal(f.n_tensors, 8);
    for (int i = 0; i < 8; i++) {
        const nb_st_tensor *t = nb_st_find(&f, expect[i].name);
        if (!t)
            fail_msg("no tensor '%s' in the file", expect[i].name);
        assert_int_equal(t->dtype, expect[i].dtype);
        assert_int_equal(t->ndim, expect[i].ndim);
        for (int d = 0; d < t->ndim; d++)
            assert_int_equal(t->shape[d], expect[i].shape[d]);
    }
    /* Values are the model's, as little-endian bytes. */
    const nb_st_tensor *c = nb_st_find(&f, "1.num_batches_tracked");
    const unsigned char *cb = c->data;
    uint64_t cv = 0;
    for (int i = 7; i >= 0; i--)
        cv = cv << 8 | cb[i];
    assert_true(cv == 123456789012ULL);
    nb_named w;
    assert_non_null(nb_graph_find(m.graph, "3.weight", &w));
    assert_memory_equal(nb_st_find(&f, "3.weight")->data, nb_node_value(w.node).data, 48);

    assert_string_equal(nb_st_meta_get(&f, "format"), "nabla");
    assert_string_equal(nb_st_meta_get(&f, "nabla_version"), NABLA_VERSION);
    assert_string_equal(nb_st_meta_get(&f, "input_shape"), "5");
    assert_string_equal(nb_st_meta_get(&f, "classes"), "3");
    assert_string_equal(nb_st_meta_get(&f, "model"), "linear(4),batchnorm,leaky_relu(0.2),linear");
    assert_null(nb_st_meta_get(&f, "layers"));
    assert_null(nb_st_meta_get(&f, "activation"));
    assert_string_equal(nb_st_meta_get(&f, "normalize_mean"), "[0,0,0,0,0]");
    assert_string_equal(nb_st_meta_get(&f, "normalize_std"), "[0.5,1,1.5,2,2.5]");
    nb_st_free(&f);
    nb_model_free(&m);

    /* No hidden layer: one linear. */
    s = make_spec(2, 2, "none", NB_RELU, 0.01f, 0);
    build(&m, &s, 2, 3);
    assert_int_equal(nb_model_save(&m, path, &err), 0);
    assert_int_equal(nb_st_read(path, &f, &err), 0);
    assert_string_equal(nb_st_meta_get(&f, "model"), "linear");
    assert_null(nb_st_meta_get(&f, "normalize_mean"));
    assert_int_equal(f.n_tensors, 2);
    nb_st_free(&f);
    nb_model_free(&m);
}

/* A saved model's file with one metadata entry changed (value NULL: removed). */
static void write_with_meta(const char *src, const char *dst, const char *key, const char *value)
{
    nb_st_file f;
    nb_error err;
    assert_int_equal(nb_st_read(src, &f, &err), 0);
    nb_st_meta meta[16];
    int n = 0, found = 0;
    for (int i = 0; i < f.n_meta; i++) {
        if (strcmp(f.meta[i].key, key) == 0) {
            found = 1;
            if (!value)
                continue;
            meta[n++] = (nb_st_meta){f.meta[i].key, (char *)value};
        } else {
            meta[n++] = f.meta[i];
        }
    }
    if (!found && value)
        meta[n++] = (nb_st_meta){(char *)key, (char *)value};
    if (nb_st_write(dst, f.tensors, f.n_tensors, meta, n, &err) != 0)
        fail_msg("%s", err.msg);
    nb_st_free(&f);
}

/* A model file as nabla wrote it before models had a text form: the same tensors, and the
 * architecture as inputs, hidden widths, activation, leaky slope and the batch-norm flag. */
static void write_legacy(const char *src, const char *dst, const char *inputs, const char *layers,
                         const char *activation, const char *slope, const char *batchnorm)
{
    char a[160], b[160];
    snprintf(a, sizeof a, "%s.a", dst);
    snprintf(b, sizeof b, "%s.b", dst);
    write_with_meta(src, a, "model", NULL);
    write_with_meta(a, b, "input_shape", NULL);
    write_with_meta(b, a, "inputs", inputs);
    write_with_meta(a, b, "layers", layers);
    write_with_meta(b, a, "activation", activation);
    write_with_meta(a, b, "leaky_slope", slope);
    write_with_meta(b, dst, "batchnorm", batchnorm);
    unlink(a);
    unlink(b);
}

static void expect_load_error(const char *path, const char *expect)
{
    nb_model m;
    memset(&m, 0xAB, sizeof m);
    nb_error err = {{0}};
    int rc = nb_model_load(&m, path, 4, &err);
    if (rc == 0 || !strstr(err.msg, expect) || !strstr(err.msg, path))
        fail_msg("expected an error containing \"%s\", got rc %d: \"%s\"", expect, rc, err.msg);
    assert_null(m.graph);
    assert_null(m.norm_mean);
    if (rc == 0)
        nb_model_free(&m);
}

static void test_load_refuses_bad_metadata(void **state)
{
    (void)state;
    nb_model_spec s = make_spec(3, 2, "4", NB_RELU, 0.01f, 1);
    nb_model m;
    build(&m, &s, 2, 3);
    char saved[128], good[128], bad[128];
    tmp_path(saved, sizeof saved, "saved.safetensors");
    tmp_path(good, sizeof good, "good.safetensors");
    tmp_path(bad, sizeof bad, "badmeta.safetensors");
    nb_error err;
    assert_int_equal(nb_model_save(&m, saved, &err), 0);

    /* Today's metadata: the model's text, its input shape and classes. */
    write_with_meta(saved, bad, "model", "linear(4),batchnorm,relu,linear(2)");
    nb_model back;
    assert_int_equal(nb_model_load(&back, bad, 2, &err), 0);  /* the same model, written out */
    nb_model_free(&back);
    write_with_meta(saved, bad, "model", "linear(4),batchnorm,relu,linaer");
    expect_load_error(bad, "metadata 'model': 'linaer' at position 3: unknown layer 'linaer' "
                           "(did you mean 'linear'?)");
    write_with_meta(saved, bad, "model", "linear(4),relu,linear");
    expect_load_error(bad, "the model's tensors '0.bias', '2.weight', '2.bias' are missing");
    write_with_meta(saved, bad, "model", "linear(4),batchnorm,relu,linear(3)");
    expect_load_error(bad, "the model's output has 3 features, not the 2 classes");
    write_with_meta(saved, bad, "input_shape", NULL);
    expect_load_error(bad, "__metadata__ has no 'input_shape'");
    write_with_meta(saved, bad, "input_shape", "03");
    expect_load_error(bad, "metadata 'input_shape' is '03', expected N or CxHxW");
    write_with_meta(saved, bad, "input_shape", "1x3");
    expect_load_error(bad, "metadata 'input_shape' is '1x3'");
    write_with_meta(saved, bad, "input_shape", "1x1x3");
    expect_load_error(bad, "put flatten before linear");
    write_with_meta(saved, bad, "input_shape", "2");
    expect_load_error(bad, "tensor '0.weight' has shape [4, 3], the model needs [4, 2]");
    write_with_meta(saved, bad, "classes", "x");
    expect_load_error(bad, "metadata 'classes' is 'x'");
    write_with_meta(saved, bad, "layers", "4");
    expect_load_error(bad, "__metadata__ has both 'model' and 'layers'");
    write_with_meta(saved, bad, "batchnorm", "1");
    expect_load_error(bad, "__metadata__ has both 'model' and 'batchnorm'");

    /* Files written before: the widths form's metadata, still loaded. */
    write_legacy(saved, good, "3", "4", "relu", "0.01", "1");
    if (nb_model_load(&back, good, 2, &err) != 0)
        fail_msg("legacy load: %s", err.msg);
    assert_same_spec(&back.spec, &m.spec);
    assert_same_tensors(&back, &m);
    nb_model_free(&back);
    nb_model_free(&m);

    write_with_meta(good, bad, "format", NULL);
    expect_load_error(bad, "not a nabla model file");
    write_with_meta(good, bad, "format", "pt");
    expect_load_error(bad, "'format' is 'pt'");
    write_with_meta(good, bad, "inputs", NULL);
    expect_load_error(bad, "__metadata__ has no 'inputs'");
    write_with_meta(good, bad, "inputs", "3x");
    expect_load_error(bad, "metadata 'inputs' is '3x', expected a positive integer");
    write_with_meta(good, bad, "classes", "-2");
    expect_load_error(bad, "metadata 'classes' is '-2'");
    write_with_meta(good, bad, "layers", "4,,2");
    expect_load_error(bad, "metadata 'layers'");
    write_with_meta(good, bad, "activation", "gelu");
    expect_load_error(bad, "metadata 'activation' is 'gelu'");
    write_with_meta(good, bad, "leaky_slope", "fast");
    expect_load_error(bad, "metadata 'leaky_slope' is 'fast'");
    write_with_meta(good, bad, "batchnorm", "yes");
    expect_load_error(bad, "metadata 'batchnorm' is 'yes'");
    write_with_meta(good, bad, "normalize_mean", "[0,0,0]");
    expect_load_error(bad, "has 'normalize_mean' without 'normalize_std'");
    /* Numbers are read as strictly as nabla writes them ("%d", "%.9g"). */
    write_with_meta(good, bad, "inputs", "03");
    expect_load_error(bad, "metadata 'inputs' is '03', expected a positive integer");
    write_with_meta(good, bad, "inputs", "+3");
    expect_load_error(bad, "metadata 'inputs' is '+3'");
    write_with_meta(good, bad, "layers", " 4");
    expect_load_error(bad, "metadata 'layers' is ' 4', expected widths in digits");
    write_with_meta(good, bad, "layers", "+4");
    expect_load_error(bad, "metadata 'layers' is '+4'");
    write_with_meta(good, bad, "layers", "04");
    expect_load_error(bad, "metadata 'layers' is '04'");
    write_with_meta(good, bad, "layers", "4 ");
    expect_load_error(bad, "metadata 'layers' is '4 '");
    write_with_meta(good, bad, "leaky_slope", " 0.01");
    expect_load_error(bad, "metadata 'leaky_slope' is ' 0.01'");
    write_with_meta(good, bad, "leaky_slope", "+0.01");
    expect_load_error(bad, "metadata 'leaky_slope' is '+0.01'");
    write_with_meta(good, bad, "leaky_slope", "0x1p-7");
    expect_load_error(bad, "metadata 'leaky_slope' is '0x1p-7'");

    /* Metadata that disagrees with the tensors: the model built from it does not fit. */
    write_with_meta(good, bad, "layers", "3");
    expect_load_error(bad, "tensor '0.weight' has shape [4, 3], the model needs [3, 3]");
    write_with_meta(good, bad, "batchnorm", "0");
    expect_load_error(bad, "missing");
    write_with_meta(good, bad, "classes", "1");
    expect_load_error(bad, "a classifier has 2 to 1000000 classes, not 1");
}

/* Metadata that describes a model far larger than the file: refused before anything of that
 * size is allocated (the old loader built the model first, then compared shapes). */
static void test_load_refuses_model_larger_than_file(void **state)
{
    (void)state;
    nb_model_spec s = make_spec(3, 2, "4", NB_RELU, 0.01f, 0);
    nb_model m;
    build(&m, &s, 2, 3);
    char saved[128], good[128], step[128], bad[128];
    tmp_path(saved, sizeof saved, "small-saved.safetensors");
    tmp_path(good, sizeof good, "small.safetensors");
    tmp_path(step, sizeof step, "step.safetensors");
    tmp_path(bad, sizeof bad, "huge.safetensors");
    nb_error err;
    assert_int_equal(nb_model_save(&m, saved, &err), 0);
    nb_model_free(&m);
    /* The file holds 4*3 + 4 + 2*4 + 2 = 26 numbers. Today's metadata: a model text of two
     * 40000x40000 layers, 3.2 * 10^9 numbers (13 GB). */
    write_with_meta(saved, bad, "model", "linear(40000),relu,linear(40000),relu,linear");
    write_with_meta(bad, step, "input_shape", "40000");
    expect_load_error(step, "the metadata describes a model of 3200160002 numbers, but the file "
                            "holds only 26");
    write_with_meta(saved, bad, "input_shape", "1x1000x1000");
    write_with_meta(bad, step, "model", "conv2d(1000,3),relu,flatten,linear");
    expect_load_error(step, "numbers, but the file holds only 26");
    /* A weight of 2^48 elements or more: refused on its shape (counts stay far from overflow). */
    write_with_meta(saved, bad, "model", "conv2d(1000000,4096,padding=2048),flatten,linear");
    write_with_meta(bad, step, "input_shape", "1000x1x1");
    expect_load_error(step, "'conv2d(1000000,4096,padding=2048)' at position 0: its weight is too "
                            "large");
    /* The same from a file written before models had a text form. */
    write_legacy(saved, good, "3", "4", "relu", "0.01", "0");
    write_with_meta(good, step, "inputs", "40000");
    write_with_meta(step, bad, "layers", "40000,40000");
    expect_load_error(bad, "the metadata describes a model of 3200160002 numbers, but the "
                           "file holds only 26");
    /* Just large enough (3*4 + 4 + 4*5 + 5 = 41 > 26): the same check, not a shape error
     * later. */
    write_with_meta(good, bad, "classes", "5");
    expect_load_error(bad, "describes a model of 41 numbers, but the file holds only 26");
}

/* Metadata values are quoted in messages; a line break or escape sequence in one must not
 * break the one-line message. */
static void test_load_messages_stay_on_one_line(void **state)
{
    (void)state;
    nb_model_spec s = make_spec(3, 2, "", NB_RELU, 0.01f, 0);
    nb_model m;
    build(&m, &s, 2, 3);
    char saved[128], good[128], bad[128];
    tmp_path(saved, sizeof saved, "line-saved.safetensors");
    tmp_path(good, sizeof good, "line.safetensors");
    tmp_path(bad, sizeof bad, "badline.safetensors");
    nb_error err;
    assert_int_equal(nb_model_save(&m, saved, &err), 0);
    nb_model_free(&m);
    write_with_meta(saved, bad, "model", "lin\near");
    expect_load_error(bad, "'lin\\near'");
    write_legacy(saved, good, "3", "", "relu", "0.01", "0");
    write_with_meta(good, bad, "activation", "re\nlu\x1b[2J");
    expect_load_error(bad, "metadata 'activation' is 're\\nlu\\x1b[2J', not a known activation");
    write_with_meta(good, bad, "format", "nabla\r\n");
    expect_load_error(bad, "'format' is 'nabla\\r\\n'");
}

/* num_batches_tracked is read from the file and may be the largest int64; a training step
 * then leaves it there instead of overflowing (undefined behaviour, in practice a negative
 * count that the next load refuses). */
static void test_batchnorm_counter_at_int64_max(void **state)
{
    (void)state;
    nb_model_spec s = make_spec(3, 2, "4", NB_RELU, 0.01f, 1);
    nb_model m, loaded;
    build(&m, &s, 4, 5);
    nb_named t;
    assert_non_null(nb_graph_find(m.graph, "1.num_batches_tracked", &t));
    *t.counter = INT64_MAX;
    char path[128];
    tmp_path(path, sizeof path, "maxcount.safetensors");
    nb_error err;
    assert_int_equal(nb_model_save(&m, path, &err), 0);
    nb_model_free(&m);

    if (nb_model_load(&loaded, path, 4, &err) != 0)
        fail_msg("%s", err.msg);
    assert_non_null(nb_graph_find(loaded.graph, "1.num_batches_tracked", &t));
    assert_true(*t.counter == INT64_MAX);
    float *x = nb_node_value(loaded.x).data;
    for (int i = 0; i < 12; i++)
        x[i] = (float)i - 5.5f;
    nb_graph_set_training(loaded.graph, 1);
    nb_graph_forward(loaded.graph, 4);
    assert_true(*t.counter == INT64_MAX);
    /* and what it saves loads again */
    assert_int_equal(nb_model_save(&loaded, path, &err), 0);
    nb_model_free(&loaded);
    if (nb_model_load(&loaded, path, 4, &err) != 0)
        fail_msg("%s", err.msg);
    nb_model_free(&loaded);
}

static void test_load_refuses_bad_normalization(void **state)
{
    (void)state;
    nb_model_spec s = make_spec(3, 2, "", NB_RELU, 0.01f, 0);
    nb_model m;
    build(&m, &s, 2, 3);
    m.norm_mean = calloc(3, sizeof(float));
    m.norm_std = calloc(3, sizeof(float));
    m.norm_std[0] = m.norm_std[1] = m.norm_std[2] = 2.0f;
    char good[128], bad[128];
    tmp_path(good, sizeof good, "norm.safetensors");
    tmp_path(bad, sizeof bad, "badnorm.safetensors");
    nb_error err;
    assert_int_equal(nb_model_save(&m, good, &err), 0);

    write_with_meta(good, bad, "normalize_mean", "[0,0]");
    expect_load_error(bad, "'normalize_mean' has 2 values, expected 3");
    write_with_meta(good, bad, "normalize_mean", "0,0,0");
    expect_load_error(bad, "'normalize_mean' is not a JSON array");
    write_with_meta(good, bad, "normalize_mean", "[0,\"a\",0]");
    expect_load_error(bad, "'normalize_mean' value 1 is not a finite number");
    write_with_meta(good, bad, "normalize_std", "[1,0,1]");
    expect_load_error(bad, "'normalize_std' value 1 is not a positive finite number");
    write_with_meta(good, bad, "normalize_std", "[1,1,1e39]");
    expect_load_error(bad, "'normalize_std' value 2");
    /* Subnormal: every standardized input would overflow to an infinity. */
    write_with_meta(good, bad, "normalize_std", "[1e-45,1,1]");
    expect_load_error(bad, "'normalize_std' value 0 is not a positive finite number of at least "
                           "1.17549435e-38, the smallest normal float (1e-45)");
    write_with_meta(good, bad, "normalize_std", "[1,1,1e-39]");
    expect_load_error(bad, "'normalize_std' value 2 is not a positive");

    /* A model whose normalization is not finite is not saved. */
    m.norm_std[1] = INFINITY;
    assert_int_equal(nb_model_save(&m, bad, &err), -1);
    assert_non_null(strstr(err.msg, "not finite"));
    nb_model_free(&m);
}

static void test_load_truncated_model_file(void **state)
{
    (void)state;
    nb_model_spec s = make_spec(3, 2, "4", NB_RELU, 0.01f, 0);
    nb_model m;
    build(&m, &s, 2, 3);
    char path[128];
    tmp_path(path, sizeof path, "cut.safetensors");
    nb_error err;
    assert_int_equal(nb_model_save(&m, path, &err), 0);
    assert_int_equal(truncate(path, 100), 0);
    expect_load_error(path, "is the file truncated?");
    expect_load_weights_error(&m, path, path);
    nb_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_weights_from_state_dict),
        cmocka_unit_test(test_load_weights_refuses_bad_files),
        cmocka_unit_test(test_load_weights_batchnorm_counter),
        cmocka_unit_test(test_round_trip_plain),
        cmocka_unit_test(test_round_trip_batchnorm),
        cmocka_unit_test(test_saved_file_contents),
        cmocka_unit_test(test_load_refuses_bad_metadata),
        cmocka_unit_test(test_load_refuses_bad_normalization),
        cmocka_unit_test(test_load_refuses_model_larger_than_file),
        cmocka_unit_test(test_load_messages_stay_on_one_line),
        cmocka_unit_test(test_batchnorm_counter_at_int64_max),
        cmocka_unit_test(test_load_truncated_model_file),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, drop_tmpdir);
}
