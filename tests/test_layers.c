/* The text form of a model and the layer table (src/nn/layers.c): parse and format round trips,
 * shapes and tensors of the reference CNN, named arguments, each class of error, and today's
 * models expanded to the text form with exactly the tensors nb_model_build creates.
 *
 * `test_layers --dump TEXT SHAPE CLASSES` prints a model's shapes and tensors instead, for
 * tests/layers_torch_check.py to compare with PyTorch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nabla.h"
#include "model_spec_for_tests.h"
#include "nn/layers.h"

#define REFERENCE_CNN                                                                           \
    "conv2d(32,3,padding=1),batchnorm,relu,maxpool2d(2),conv2d(64,3,padding=1),batchnorm,relu," \
    "maxpool2d(2),flatten,linear(128),relu,dropout(0.5),linear"

static void parse_ok(const char *text, nb_layers *l)
{
    nb_error err;
    if (nb_layers_parse(text, l, &err) != 0)
        fail_msg("parse '%s': %s", text, err.msg);
}

static void format_ok(const nb_layers *l, char *buf, size_t cap)
{
    int n = nb_layers_format(l, buf, cap);
    assert_true(n >= 0);
    assert_int_equal((size_t)n, strlen(buf));
}

static void append(char *buf, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
}

static void shape_text(nb_shape s, char *buf, size_t cap) { nb_shape_format(s, buf, cap); }

/* ---- round trips ---- */

static void test_reference_cnn(void **state)
{
    (void)state;
    nb_layers l;
    parse_ok(REFERENCE_CNN, &l);
    assert_int_equal(l.n, 13);
    char text[1024];
    format_ok(&l, text, sizeof text);
    assert_string_equal(text, REFERENCE_CNN);

    nb_shape shapes[NB_LAYERS_MAX + 1];
    nb_error err;
    if (nb_layers_shapes(&l, nb_shape_image(1, 28, 28), 10, shapes, &err) != 0)
        fail_msg("%s", err.msg);
    static const char *const want[14] = {"1x28x28", "32x28x28", "32x28x28", "32x28x28",
                                         "32x14x14", "64x14x14", "64x14x14", "64x14x14",
                                         "64x7x7",   "3136",     "128",      "128",
                                         "128",      "10"};
    for (int i = 0; i <= l.n; i++) {
        char s[48];
        shape_text(shapes[i], s, sizeof s);
        assert_string_equal(s, want[i]);
    }

    nb_layer_param p[NB_LAYERS_MAX * NB_LAYER_PARAMS_MAX];
    int count;
    if (nb_layers_params(&l, nb_shape_image(1, 28, 28), 10, p, 320, &count, &err) != 0)
        fail_msg("%s", err.msg);
    /* torch.nn.Sequential's state_dict, in order (convs before batchnorm have no bias). */
    static const struct {
        const char *name;
        nb_tensor_kind kind;
        int ndim, shape[4];
    } sd[] = {
        {"0.weight", NB_KIND_PARAM, 4, {32, 1, 3, 3}},
        {"1.weight", NB_KIND_PARAM, 1, {32}},
        {"1.bias", NB_KIND_PARAM, 1, {32}},
        {"1.running_mean", NB_KIND_STATE, 1, {32}},
        {"1.running_var", NB_KIND_STATE, 1, {32}},
        {"1.num_batches_tracked", NB_KIND_COUNTER, 0, {0}},
        {"4.weight", NB_KIND_PARAM, 4, {64, 32, 3, 3}},
        {"5.weight", NB_KIND_PARAM, 1, {64}},
        {"5.bias", NB_KIND_PARAM, 1, {64}},
        {"5.running_mean", NB_KIND_STATE, 1, {64}},
        {"5.running_var", NB_KIND_STATE, 1, {64}},
        {"5.num_batches_tracked", NB_KIND_COUNTER, 0, {0}},
        {"9.weight", NB_KIND_PARAM, 2, {128, 3136}},
        {"9.bias", NB_KIND_PARAM, 1, {128}},
        {"12.weight", NB_KIND_PARAM, 2, {10, 128}},
        {"12.bias", NB_KIND_PARAM, 1, {10}},
    };
    assert_int_equal(count, (int)(sizeof sd / sizeof sd[0]));
    for (int i = 0; i < count; i++) {
        assert_string_equal(p[i].name, sd[i].name);
        assert_int_equal(p[i].kind, sd[i].kind);
        assert_int_equal(p[i].ndim, sd[i].ndim);
        for (int d = 0; d < sd[i].ndim; d++)
            assert_int_equal(p[i].shape[d], sd[i].shape[d]);
    }
    /* Fan-in and fan-out for initialization: in·kh·kw and out·kh·kw. */
    assert_int_equal(p[0].fan_in, 9);
    assert_int_equal(p[0].fan_out, 288);
    assert_int_equal(p[6].fan_in, 288);
    assert_int_equal(p[12].fan_in, 3136);
    assert_int_equal(p[12].fan_out, 128);
    assert_int_equal(p[14].fan_in, 128);
    assert_int_equal(p[1].init, NB_INIT_ONES);
    assert_int_equal(p[2].init, NB_INIT_ZEROS);
    assert_int_equal(p[3].init, NB_INIT_ZEROS);
    assert_int_equal(p[4].init, NB_INIT_ONES);
    assert_int_equal(p[0].init, NB_INIT_RANDOM);
    assert_int_equal(p[13].init, NB_INIT_ZEROS);
    assert_false(nb_layer_has_bias(&l, 0));
    assert_true(nb_layer_has_bias(&l, 9));
    assert_true(nb_layer_has_bias(&l, 12));
}

/* Each text gives the canonical one, which reads back to itself. */
static void test_canonical_forms(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"conv2d(out=32,kernel=3)", "conv2d(32,3)"},
        {"conv2d(kernel=3,out=32)", "conv2d(32,3)"},
        {"conv2d( 32 , 3 , stride = 1 , padding = 0 )", "conv2d(32,3)"},
        {"conv2d(32,3,2)", "conv2d(32,3,2)"},
        {"conv2d(32,3,1,1)", "conv2d(32,3,padding=1)"},
        {"conv2d(32,3,stride=2,padding=1)", "conv2d(32,3,2,1)"},
        {"conv2d(16,kernel=3x5,padding=1x2)", "conv2d(16,3x5,padding=1x2)"},
        {"conv2d(16,3x3,2x2)", "conv2d(16,3,2)"},
        {"conv2d(16,3,stride=1x2)", "conv2d(16,3,1x2)"},
        {"maxpool2d(2,2)", "maxpool2d(2)"},
        {"maxpool2d(kernel=3,stride=2)", "maxpool2d(3,2)"},
        {"maxpool2d(stride=2,kernel=2x2)", "maxpool2d(2)"},
        {"avgpool2d(2, stride=1)", "avgpool2d(2,1)"},
        {"avgpool2d(2x3)", "avgpool2d(2x3)"},
        {"linear(out=10)", "linear(10)"},
        {"linear()", "linear"},
        {"leaky_relu(0.01)", "leaky_relu"},
        {"leaky_relu(slope=0.2)", "leaky_relu(0.2)"},
        {"leaky_relu(-1.5e-1)", "leaky_relu(-0.15)"},
        {"dropout(p=0.50)", "dropout(0.5)"},
        {"dropout(0)", "dropout(0)"},
        {"dropout(1e-1)", "dropout(0.1)"},
        {"dropout(0.999)", "dropout(0.999)"},
        {"relu()", "relu"},
        {"  relu , tanh ,sigmoid,  flatten ,batchnorm , layernorm  ", "relu,tanh,sigmoid,flatten,batchnorm,layernorm"},
        {"\tlinear ( 10 )\n", "linear(10)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nb_layers l, again;
        char text[512], text2[512];
        parse_ok(cases[i][0], &l);
        format_ok(&l, text, sizeof text);
        if (strcmp(text, cases[i][1]) != 0)
            fail_msg("'%s' gave '%s', not '%s'", cases[i][0], text, cases[i][1]);
        parse_ok(text, &again);
        format_ok(&again, text2, sizeof text2);
        assert_string_equal(text, text2);
    }
    /* The values behind the forms. */
    nb_layers l;
    parse_ok("conv2d(16,kernel=3x5,stride=2x1,padding=1x2),maxpool2d(3,2),leaky_relu(0.2)", &l);
    assert_int_equal(l.layer[0].kind, NB_LAYER_CONV2D);
    assert_int_equal(l.layer[0].out, 16);
    assert_int_equal(l.layer[0].kernel[0], 3);
    assert_int_equal(l.layer[0].kernel[1], 5);
    assert_int_equal(l.layer[0].stride[0], 2);
    assert_int_equal(l.layer[0].stride[1], 1);
    assert_int_equal(l.layer[0].padding[0], 1);
    assert_int_equal(l.layer[0].padding[1], 2);
    assert_int_equal(l.layer[1].stride[0], 2);
    assert_int_equal(l.layer[1].kernel[1], 3);
    assert_true(l.layer[2].slope == 0.2f);
    parse_ok("maxpool2d(3)", &l);
    assert_int_equal(l.layer[0].stride[0], 3);
    assert_int_equal(l.layer[0].stride[1], 3);
    parse_ok("leaky_relu", &l);
    assert_true(l.layer[0].slope == 0.01f);

    /* A buffer too small is said, not overrun. */
    char small[8];
    parse_ok(REFERENCE_CNN, &l);
    assert_int_equal(nb_layers_format(&l, small, sizeof small), -1);
    assert_true(strlen(small) < sizeof small);
    assert_string_equal(nb_layer_signature(NB_LAYER_CONV2D), "conv2d(out,kernel,stride=1,padding=0)");
    assert_string_equal(nb_layer_kind_name(NB_LAYER_LEAKY_RELU), "leaky_relu");
}

/* Output shapes of windows (floor division as PyTorch), norms and flatten. */
static void test_shapes_and_tensors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int input[3], ndim, classes;
        const char *shapes;   /* each layer's output */
        const char *tensors;  /* name[shape] ... */
    } cases[] = {
        {"conv2d(4,3x5,stride=2x1,padding=1x2),flatten,linear", {3, 10, 9}, 3, 5,
         "4x5x9 180 5", "0.weight[4,3,3,5] 0.bias[4] 2.weight[5,180] 2.bias[5]"},
        {"conv2d(2,3,stride=2),avgpool2d(2),flatten,linear", {1, 8, 7}, 3, 3,
         "2x3x3 2x1x1 2 3", "0.weight[2,1,3,3] 0.bias[2] 3.weight[3,2] 3.bias[3]"},
        {"maxpool2d(3,2),flatten,batchnorm,linear", {2, 7, 6}, 3, 4, "2x3x2 12 12 4",
         "2.weight[12] 2.bias[12] 2.running_mean[12] 2.running_var[12] 2.num_batches_tracked[] "
         "3.weight[4,12] 3.bias[4]"},
        {"conv2d(3,1),batchnorm,flatten,linear", {2, 2, 2}, 3, 2, "3x2x2 3x2x2 12 2",
         "0.weight[3,2,1,1] 1.weight[3] 1.bias[3] 1.running_mean[3] 1.running_var[3] "
         "1.num_batches_tracked[] 3.weight[2,12] 3.bias[2]"},
        {"layernorm,flatten,linear", {2, 3, 4}, 3, 2, "2x3x4 24 2",
         "0.weight[2,3,4] 0.bias[2,3,4] 2.weight[2,24] 2.bias[2]"},
        {"flatten,layernorm,linear(7),layernorm,tanh,dropout(0.2),linear", {2, 3, 4}, 3, 2,
         "24 24 7 7 7 7 2",
         "1.weight[24] 1.bias[24] 2.weight[7,24] 2.bias[7] 3.weight[7] 3.bias[7] "
         "6.weight[2,7] 6.bias[2]"},
        {"flatten,linear(6),batchnorm,sigmoid,linear", {5}, 1, 2, "5 6 6 6 2",
         "1.weight[6,5] 2.weight[6] 2.bias[6] 2.running_mean[6] 2.running_var[6] "
         "2.num_batches_tracked[] 4.weight[2,6] 4.bias[2]"},
        {"linear,batchnorm", {5}, 1, 2, "2 2",
         "0.weight[2,5] 1.weight[2] 1.bias[2] 1.running_mean[2] 1.running_var[2] "
         "1.num_batches_tracked[]"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nb_layers l;
        parse_ok(cases[c].text, &l);
        nb_shape in = cases[c].ndim == 3
                          ? nb_shape_image(cases[c].input[0], cases[c].input[1], cases[c].input[2])
                          : nb_shape_vector(cases[c].input[0]);
        nb_shape shapes[NB_LAYERS_MAX + 1];
        nb_error err;
        if (nb_layers_shapes(&l, in, cases[c].classes, shapes, &err) != 0)
            fail_msg("%s: %s", cases[c].text, err.msg);
        char got[512] = "";
        for (int i = 1; i <= l.n; i++) {
            char s[48];
            shape_text(shapes[i], s, sizeof s);
            append(got, sizeof got, "%s%s", i > 1 ? " " : "", s);
        }
        if (strcmp(got, cases[c].shapes) != 0)
            fail_msg("%s: shapes '%s', not '%s'", cases[c].text, got, cases[c].shapes);
        nb_layer_param p[64];
        int count;
        if (nb_layers_params(&l, in, cases[c].classes, p, 64, &count, &err) != 0)
            fail_msg("%s: %s", cases[c].text, err.msg);
        got[0] = 0;
        for (int i = 0; i < count; i++) {
            append(got, sizeof got, "%s%s[", i ? " " : "", p[i].name);
            for (int d = 0; d < p[i].ndim; d++)
                append(got, sizeof got, "%s%d", d ? "," : "",
                         p[i].shape[d]);
            append(got, sizeof got, "]");
        }
        if (strcmp(got, cases[c].tensors) != 0)
            fail_msg("%s: tensors '%s', not '%s'", cases[c].text, got, cases[c].tensors);
    }
}

/* ---- errors ---- */

static void expect_parse_error(const char *text, const char *want)
{
    nb_layers l;
    nb_error err;
    memset(&err, 0, sizeof err);
    if (nb_layers_parse(text, &l, &err) == 0)
        fail_msg("'%s' parsed, expected an error with '%s'", text, want);
    if (!strstr(err.msg, want))
        fail_msg("'%s': message '%s' lacks '%s'", text, err.msg, want);
    assert_null(strchr(err.msg, '\n'));
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_parse_error("", "no layers");
    expect_parse_error("   ", "no layers");
    expect_parse_error("relu,,linear", "layer 1 is missing between commas");
    expect_parse_error("relu,", "layer 1 is missing between commas");
    expect_parse_error("relu linear", "'relu linear' at position 0: expected ',' after the layer");
    expect_parse_error("linear(10", "'linear(10' at position 0: '(' without ')'");
    expect_parse_error("conv2d(32,3,relu,linear(10)", "'(' without ')'");
    expect_parse_error("relu,(3)", "'(3)' at position 1: a layer starts with its name");
    expect_parse_error("linear(10)x", "expected ',' after the layer, found 'x'");
    char many[1024] = "";
    for (int i = 0; i <= NB_LAYERS_MAX; i++)
        strcat(many, i ? ",relu" : "relu");
    expect_parse_error(many, "at most 64 layers");
}

static void test_layer_and_argument_names(void **state)
{
    (void)state;
    expect_parse_error("relu,conv(32,3)",
                       "'conv(32,3)' at position 1: unknown layer 'conv' (did you mean 'conv2d'?)");
    expect_parse_error("Relu", "unknown layer 'Relu' (did you mean 'relu'?)");
    expect_parse_error("linaer", "did you mean 'linear'?");
    expect_parse_error("maxpool(2)", "did you mean 'maxpool2d'?");
    expect_parse_error("batchnorm2d", "did you mean 'batchnorm'?");
    expect_parse_error("softmax", "unknown layer 'softmax' (layers: linear, conv2d, maxpool2d, "
                                  "avgpool2d, flatten, batchnorm, layernorm, dropout, relu, "
                                  "leaky_relu, tanh, sigmoid)");
    expect_parse_error("conv2d(32,3,strides=2)",
                       "'conv2d(32,3,strides=2)' at position 0: conv2d has no argument 'strides' "
                       "(its arguments: out, kernel, stride, padding)");
    expect_parse_error("maxpool2d(2,padding=1)", "maxpool2d has no argument 'padding' (its "
                                                 "arguments: kernel, stride)");
    expect_parse_error("relu(1)", "relu takes no arguments");
    expect_parse_error("flatten(start_dim=1)", "flatten takes no arguments");
    expect_parse_error("linear(10,20)", "linear takes at most 1 argument: linear(out)");
    expect_parse_error("conv2d(1,2,3,4,5)", "conv2d takes at most 4 arguments");
    expect_parse_error("conv2d(32,out=3)", "out is given twice");
    expect_parse_error("conv2d(out=32,3)", "'3' comes after a named argument");
    expect_parse_error("conv2d(32)", "'conv2d(32)' at position 0: kernel is missing: "
                                     "conv2d(out,kernel,stride=1,padding=0)");
    expect_parse_error("conv2d", "out is missing");
    expect_parse_error("maxpool2d(stride=2)", "kernel is missing");
    expect_parse_error("relu,dropout", "'dropout' at position 1: p is missing: dropout(p)");
    expect_parse_error("conv2d(32,,3)", "an argument is missing between commas");
    expect_parse_error("conv2d(32,3,)", "an argument is missing after the last comma");
    expect_parse_error("conv2d(32,kernel=)", "kernel= needs a value");
}

static void test_number_errors(void **state)
{
    (void)state;
    expect_parse_error("relu,relu,tanh,conv2d(32,x)",
                       "'conv2d(32,x)' at position 3: kernel must be a positive integer up to "
                       "4096 or HxW, not 'x'");
    expect_parse_error("linear(0)", "out must be an integer from 1 to 1000000, not '0'");
    expect_parse_error("linear(1000001)", "not '1000001'");
    expect_parse_error("linear(99999999999999)", "not '99999999999999'");
    expect_parse_error("linear(10a)", "not '10a'");
    expect_parse_error("linear(-3)", "not '-3'");
    expect_parse_error("linear(+3)", "not '+3'");
    expect_parse_error("linear(3.0)", "not '3.0'");
    expect_parse_error("linear(1 0)", "not '1 0'");
    expect_parse_error("conv2d(8,0)", "kernel must be a positive integer");
    expect_parse_error("conv2d(8,3x)", "not '3x'");
    expect_parse_error("conv2d(8,x3)", "not 'x3'");
    expect_parse_error("conv2d(8,3x3x3)", "not '3x3x3'");
    expect_parse_error("conv2d(8,4097)", "not '4097'");
    expect_parse_error("conv2d(8,3,stride=0)", "stride must be a positive integer");
    expect_parse_error("conv2d(8,3,padding=-1)",
                       "padding must be a non-negative integer up to 4096 or HxW, not '-1'");
    expect_parse_error("maxpool2d(2,0)", "stride must be a positive integer");
    expect_parse_error("dropout(1)", "p must be a number from 0 to below 1, not '1'");
    expect_parse_error("dropout(-0.1)", "not '-0.1'");
    expect_parse_error("dropout(0.5x)", "not '0.5x'");
    expect_parse_error("dropout(nan)", "not 'nan'");
    expect_parse_error("dropout(0x1p-1)", "not '0x1p-1'");
    expect_parse_error("dropout(.)", "not '.'");
    expect_parse_error("leaky_relu(inf)", "slope must be a finite number, not 'inf'");
    expect_parse_error("leaky_relu(1e39)", "not '1e39'");
    expect_parse_error("leaky_relu(1e-50)", "not '1e-50'");
}

static void expect_shape_error(const char *text, nb_shape in, int classes, const char *want)
{
    nb_layers l;
    parse_ok(text, &l);
    nb_error err;
    memset(&err, 0, sizeof err);
    if (nb_layers_shapes(&l, in, classes, NULL, &err) == 0)
        fail_msg("'%s' fits, expected an error with '%s'", text, want);
    if (!strstr(err.msg, want))
        fail_msg("'%s': message '%s' lacks '%s'", text, err.msg, want);
    nb_layer_param p[NB_LAYERS_MAX * NB_LAYER_PARAMS_MAX];
    int count;
    assert_int_equal(nb_layers_params(&l, in, classes, p, 320, &count, &err), -1);
    assert_non_null(strstr(err.msg, want));
}

static void test_shape_errors(void **state)
{
    (void)state;
    nb_shape img = nb_shape_image(1, 14, 14), vec = nb_shape_vector(784);
    expect_shape_error("conv2d(64,3),relu,maxpool2d(2),maxpool2d(2),conv2d(64,5),flatten,linear",
                       img, 10,
                       "'conv2d(64,5)' at position 4: input 64x3x3 is smaller than the kernel 5x5");
    expect_shape_error("conv2d(8,7x3,padding=1),flatten,linear", nb_shape_image(1, 4, 4), 10,
                       "input 1x4x4 (6x6 with padding) is smaller than the kernel 7x3");
    expect_shape_error("maxpool2d(15),flatten,linear", img, 10,
                       "'maxpool2d(15)' at position 0: input 1x14x14 is smaller than the kernel "
                       "15x15");
    expect_shape_error("conv2d(8,3),flatten,linear", vec, 10,
                       "'conv2d(8,3)' at position 0: input is a vector of 784 features: conv2d "
                       "needs an image CxHxW");
    expect_shape_error("flatten,avgpool2d(2),linear", img, 10,
                       "'avgpool2d(2)' at position 1: input is a vector of 196 features");
    expect_shape_error("conv2d(8,3),relu,linear(10)", img, 10,
                       "'linear(10)' at position 2: input is an image 8x12x12: put flatten "
                       "before linear");
    expect_shape_error("linear,relu,linear", vec, 10,
                       "'linear' at position 0: only the last linear may leave out its width");
    expect_shape_error("linear(5)", vec, 10, "the model's output has 5 features, not the 10 "
                                             "classes: end it with linear");
    expect_shape_error("linear,relu,linear(3)", vec, 10, "only the last linear");
    expect_shape_error("conv2d(8,3)", img, 10, "the model's output is an image 8x12x12");
    expect_shape_error("relu", vec, 10, "the model's output has 784 features");
    expect_shape_error("linear", vec, 0, "1 to 1000000 outputs, not 0");
    expect_shape_error("conv2d(1000000,1),flatten,linear", nb_shape_image(1, 100, 100), 10,
                       "its output 1000000x100x100 is too large");
    /* Sides near INT_MAX: the window arithmetic and the counts do not overflow. */
    expect_shape_error("conv2d(1000000,1,padding=4096),flatten,linear",
                       nb_shape_image(1, 1, 2147483647), 10, "too large");
    expect_shape_error("maxpool2d(1,stride=1),conv2d(4,1,padding=1),flatten,linear",
                       nb_shape_image(1, 1, 2147483647), 10, "its output 4x3x2147483649 is too large");
    expect_shape_error("conv2d(1000000,4096,padding=2048),flatten,linear",
                       nb_shape_image(1000, 1, 1), 10,
                       "'conv2d(1000000,4096,padding=2048)' at position 0: its weight is too "
                       "large");
}

/* ---- today's models ---- */

/* How nabla initialized an MLP before models were built from the layer table, kept here as the
 * oracle: every dense weight in order, from one generator, with the model's one activation's
 * rule (He, He with the leaky gain, or Xavier), the output layer included. */
static void old_mlp_weights(const nb_mlp *mlp, uint64_t seed, float **w)
{
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    int in = mlp->inputs;
    for (int l = 0; l <= mlp->n_hidden; l++) {
        int out = l < mlp->n_hidden ? mlp->hidden[l] : mlp->classes;
        double std;
        if (mlp->activation == NB_RELU)
            std = sqrt(2.0 / in);
        else if (mlp->activation == NB_LEAKY_RELU)
            std = sqrt(2.0 / ((1.0 + (double)mlp->leaky_slope * mlp->leaky_slope) * in));
        else
            std = sqrt(2.0 / (in + out));
        w[l] = malloc((size_t)out * in * sizeof **w);
        for (size_t i = 0; i < (size_t)out * in; i++)
            w[l][i] = (float)(std * nb_rng_normal(&rng));
        in = out;
    }
}

/* The table's tensors for the expanded MLP are exactly those nb_model_build makes, in order,
 * with their kinds, shapes and initial fills, and exactly what nb_model_save writes; its
 * weights are bit for bit those the MLP had before (old_mlp_weights), for several seeds. */
static void compare_with_model(const nb_mlp *mlp, int trace_layer, const char *want_text)
{
    nb_layers l;
    nb_error err;
    if (nb_layers_from_mlp(mlp, &l, &err) != 0)
        fail_msg("%s", err.msg);
    nb_model_spec spec_value = mlp_spec(*mlp);
    spec_value.trace_layer = trace_layer;
    const nb_model_spec *spec = &spec_value;
    char text[1024];
    format_ok(&l, text, sizeof text);
    if (want_text)
        assert_string_equal(text, want_text);
    nb_layers again;
    char text2[1024];
    parse_ok(text, &again);
    format_ok(&again, text2, sizeof text2);
    assert_string_equal(text, text2);

    nb_layer_param p[NB_LAYERS_MAX * NB_LAYER_PARAMS_MAX];
    int count;
    if (nb_layers_params(&again, nb_shape_vector(mlp->inputs), mlp->classes, p, 320, &count,
                         &err) != 0)
        fail_msg("%s: %s", text, err.msg);

    nb_model m;
    if (nb_model_build(&m, spec, 4, 7, &err) != 0)
        fail_msg("build: %s", err.msg);
    assert_int_equal(nb_graph_named_count(m.graph), count);
    for (int i = 0; i < count; i++) {
        nb_named t = nb_graph_named(m.graph, i);
        assert_string_equal(t.name, p[i].name);
        assert_int_equal(t.kind, p[i].kind);
        if (t.kind == NB_KIND_COUNTER) {
            assert_int_equal(p[i].ndim, 0);
            continue;
        }
        nb_tensor v = nb_node_value(t.node);
        assert_int_equal(v.ndim, p[i].ndim);
        for (int d = 0; d < v.ndim; d++)
            assert_int_equal(v.shape[d], p[i].shape[d]);
        if (p[i].init != NB_INIT_RANDOM) {
            float fill = p[i].init == NB_INIT_ONES ? 1.0f : 0.0f;
            for (size_t k = 0; k < nb_tensor_numel(&v); k++)
                assert_true(v.data[k] == fill);
        } else {
            assert_int_equal(p[i].fan_in, v.shape[1]);
            assert_int_equal(p[i].fan_out, v.shape[0]);
        }
    }

    char path[] = "/tmp/nb_test_layers_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    if (nb_model_save(&m, path, &err) != 0)
        fail_msg("save: %s", err.msg);
    nb_st_file f;
    if (nb_st_read(path, &f, &err) != 0)
        fail_msg("read: %s", err.msg);
    assert_int_equal(f.n_tensors, count);
    for (int i = 0; i < count; i++) {
        const nb_st_tensor *st = nb_st_find(&f, p[i].name);
        assert_non_null(st);
        assert_int_equal(st->dtype, p[i].kind == NB_KIND_COUNTER ? NB_I64 : NB_F32);
        assert_int_equal(st->ndim, p[i].ndim);
        for (int d = 0; d < st->ndim; d++)
            assert_int_equal(st->shape[d], p[i].shape[d]);
    }
    nb_st_free(&f);
    unlink(path);
    nb_model_free(&m);

    static const uint64_t seeds[] = {0, 7, 12345, 0xffffffffffffffffull};
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        if (nb_model_build(&m, spec, 4, seeds[k], &err) != 0)
            fail_msg("build: %s", err.msg);
        float *want[NB_MAX_LAYERS + 1];
        old_mlp_weights(mlp, seeds[k], want);
        for (int i = 0, layer = 0; i < count; i++) {
            if (p[i].init != NB_INIT_RANDOM)
                continue;
            nb_named t;
            assert_non_null(nb_graph_find(m.graph, p[i].name, &t));
            nb_tensor v = nb_node_value(t.node);
            assert_memory_equal(v.data, want[layer], nb_tensor_numel(&v) * sizeof(float));
            free(want[layer++]);
        }
        nb_model_free(&m);
    }
}

static nb_mlp mlp_of(int inputs, int classes, const char *widths, nb_activation act,
                     float slope, int batchnorm)
{
    nb_mlp m;
    memset(&m, 0, sizeof m);
    m.inputs = inputs;
    m.classes = classes;
    nb_error err;
    if (nb_parse_layers(widths, &m, &err) != 0)
        fail_msg("%s", err.msg);
    m.activation = act;
    m.leaky_slope = slope;
    m.batchnorm = batchnorm;
    return m;
}

/* Shapes as --input-shape and the metadata write them. */
static void test_shape_text(void **state)
{
    (void)state;
    nb_shape sh;
    assert_int_equal(nb_shape_parse("784", &sh), 0);
    assert_int_equal(sh.ndim, 1);
    assert_int_equal(sh.dim[0], 784);
    assert_int_equal(nb_shape_parse("1x28x28", &sh), 0);
    assert_int_equal(sh.ndim, 3);
    assert_int_equal(sh.dim[2], 28);
    assert_int_equal(nb_shape_parse("3,32,32", &sh), 0);
    assert_int_equal(sh.dim[0] * sh.dim[1] * sh.dim[2], 3072);
    static const char *const bad[] = {"", "0", "08", "-1", "+3", "1x2", "1x2x3x4", "1,2x3",
                                      "1x28x", "x28x28", " 1x2x3", "2147483648",
                                      "2147483647x2147483647x2147483647", "65536x65536",
                                      "1x65536x65536", "3x28x28 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (nb_shape_parse(bad[i], &sh) == 0)
            fail_msg("'%s' was taken as a shape", bad[i]);
    assert_true(nb_shape_numel(nb_shape_image(2147483647, 2147483647, 2147483647)) == INT64_MAX);
    assert_true(nb_shape_numel(nb_shape_image(3, 0, 5)) == 0);
}

static void test_legacy_models(void **state)
{
    (void)state;
    nb_mlp s = mlp_of(784, 10, "256,128", NB_RELU, 0.01f, 1);
    compare_with_model(&s, 0, "linear(256),batchnorm,relu,linear(128),batchnorm,relu,linear");
    s = mlp_of(784, 10, "256,128", NB_RELU, 0.01f, 0);
    compare_with_model(&s, 0, "linear(256),relu,linear(128),relu,linear");
    s = mlp_of(4, 3, "16,8", NB_TANH, 0.01f, 1);
    compare_with_model(&s, 0, "linear(16),batchnorm,tanh,linear(8),batchnorm,tanh,linear");
    s = mlp_of(4, 3, "12", NB_LEAKY_RELU, 0.2f, 0);
    compare_with_model(&s, 0, "linear(12),leaky_relu(0.2),linear");
    s = mlp_of(4, 3, "12,5", NB_LEAKY_RELU, 0.01f, 1);
    compare_with_model(&s, 0,
                       "linear(12),batchnorm,leaky_relu,linear(5),batchnorm,leaky_relu,linear");
    s = mlp_of(5, 2, "7,6,5", NB_SIGMOID, 0.01f, 1);
    compare_with_model(&s, 0, NULL);
    s = mlp_of(5, 2, "3", NB_SIGMOID, 0.01f, 0);
    compare_with_model(&s, 0, "linear(3),sigmoid,linear");
    s = mlp_of(4, 3, "none", NB_RELU, 0.01f, 0);
    compare_with_model(&s, 0, "linear");
    /* (A model without hidden layers has no activation to take its rule from: He, relu's, as
     * the default --activation gave it before.) */
    /* The traced layer is no part of the architecture, and does not change the weights. */
    s = mlp_of(6, 4, "9,8", NB_TANH, 0.01f, 0);
    compare_with_model(&s, 2, "linear(9),tanh,linear(8),tanh,linear");
    s = mlp_of(6, 4, "9,8", NB_LEAKY_RELU, 0.3f, 1);
    compare_with_model(&s, 1, NULL);

    nb_layers l;
    nb_error err;
    s = mlp_of(4, 3, "5", NB_IDENTITY, 0.01f, 0);
    assert_int_equal(nb_layers_from_mlp(&s, &l, &err), -1);
    s = mlp_of(4, 3, "5", NB_LEAKY_RELU, 0.01f, 0);
    s.hidden[0] = 0;
    assert_int_equal(nb_layers_from_mlp(&s, &l, &err), -1);
}

/* ---- for tests/layers_torch_check.py ---- */

static int dump(const char *text, const char *shape, const char *classes)
{
    nb_layers l;
    nb_error err;
    int dims[3], nd = sscanf(shape, "%d,%d,%d", &dims[0], &dims[1], &dims[2]);
    nb_shape in = nd == 3 ? nb_shape_image(dims[0], dims[1], dims[2]) : nb_shape_vector(dims[0]);
    nb_shape shapes[NB_LAYERS_MAX + 1];
    nb_layer_param p[NB_LAYERS_MAX * NB_LAYER_PARAMS_MAX];
    int count;
    if (nb_layers_parse(text, &l, &err) != 0 ||
        nb_layers_shapes(&l, in, atoi(classes), shapes, &err) != 0 ||
        nb_layers_params(&l, in, atoi(classes), p, 320, &count, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (int i = 1; i <= l.n; i++) {
        printf("shape %d", i - 1);
        for (int d = 0; d < shapes[i].ndim; d++)
            printf(" %d", shapes[i].dim[d]);
        printf("\n");
    }
    for (int i = 0; i < count; i++) {
        printf("tensor %s", p[i].name);
        for (int d = 0; d < p[i].ndim; d++)
            printf(" %d", p[i].shape[d]);
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--dump") == 0)
        return dump(argv[2], argv[3], argv[4]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_cnn),
        cmocka_unit_test(test_canonical_forms),
        cmocka_unit_test(test_shapes_and_tensors),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_layer_and_argument_names),
        cmocka_unit_test(test_number_errors),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_shape_text),
        cmocka_unit_test(test_legacy_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
