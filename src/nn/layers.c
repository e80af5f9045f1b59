/*
 * The layer table: one row per layer type, and the text form of a model read and written
 * through the rows' argument lists (see layers.h).
 *
 * Adding a layer type is one row here: its name, its arguments (each a field of nb_layer with
 * its type, range and default), its output shape and its tensors.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph_internal.h"
#include "nn/layers.h"

/* ---------------------------------------------------------------------------------------- */
/* Shapes                                                                                   */
/* ---------------------------------------------------------------------------------------- */

nb_shape nb_shape_vector(int n)
{
    nb_shape s = {1, {n, 0, 0}};
    return s;
}

nb_shape nb_shape_image(int c, int h, int w)
{
    nb_shape s = {3, {c, h, w}};
    return s;
}

int nb_shape_format(nb_shape s, char *buf, size_t cap)
{
    if (s.ndim == 3)
        return snprintf(buf, cap, "%dx%dx%d", s.dim[0], s.dim[1], s.dim[2]);
    return snprintf(buf, cap, "%d", s.dim[0]);
}

int64_t nb_shape_numel(nb_shape s)
{
    /* Saturated: three sides of up to INT_MAX would overflow 64 bits. */
    int64_t n = 1;
    for (int d = 0; d < s.ndim && d < 3; d++) {
        if (s.dim[d] <= 0)
            return 0;
        if (n > INT64_MAX / s.dim[d])
            return INT64_MAX;
        n *= s.dim[d];
    }
    return n;
}

/* A sample's features fit an int (the graph's widths are ints); a weight's elements are
 * addressed with size_t, and kept below 2^48 (a petabyte of floats) so that counts of them add
 * up without overflow anywhere. */
#define NUMEL_MAX INT_MAX
#define PARAM_NUMEL_MAX ((int64_t)1 << 48)

int nb_shape_parse(const char *s, nb_shape *out)
{
    if (!s)
        return -1;
    char sep = strchr(s, 'x') ? 'x' : ',';
    nb_shape r = {0, {0, 0, 0}};
    for (const char *p = s;;) {
        const char *end = p;
        while (isdigit((unsigned char)*end))
            end++;
        size_t n = (size_t)(end - p);
        if (n == 0 || n > 10 || (p[0] == '0') || r.ndim == 3)
            return -1;
        long v = strtol(p, NULL, 10);
        if (v > INT_MAX)
            return -1;
        r.dim[r.ndim++] = (int)v;
        if (!*end)
            break;
        if (*end != sep)
            return -1;
        p = end + 1;
    }
    if ((r.ndim != 1 && r.ndim != 3) || nb_shape_numel(r) > NUMEL_MAX)
        return -1;
    *out = r;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The rows                                                                                 */
/* ---------------------------------------------------------------------------------------- */

typedef enum arg_type {
    ARG_WIDTH,    /* int, 1..NB_LAYER_WIDTH_MAX */
    ARG_SIZE,     /* int or HxW, each 1..NB_LAYER_SIZE_MAX */
    ARG_PADDING,  /* int or HxW, each 0..NB_LAYER_SIZE_MAX */
    ARG_PROB,     /* float, 0 <= p < 1 */
    ARG_REAL      /* any finite float */
} arg_type;

typedef enum arg_default {
    DEF_NONE,     /* required */
    DEF_VALUE,    /* def_value (pairs: both sides) */
    DEF_KERNEL,   /* the layer's kernel (a pool's stride) */
    DEF_CLASSES   /* linear's out: 0, the number of classes (the last linear only) */
} arg_default;

typedef struct arg_def {
    const char *name;
    arg_type type;
    size_t offset;            /* of the field in nb_layer */
    arg_default def;
    double def_value;
} arg_def;

/* "'<layer>' at position <i>: <why>", filled in by the shape functions after the position. */
typedef struct why {
    char text[400];
} why;

typedef struct layer_row {
    const char *name;
    const char *signature;
    int n_args;
    arg_def args[4];
    /* The output shape for input `in`; -1 with w filled when it does not fit. */
    int (*shape)(const nb_layer *l, nb_shape in, int classes, nb_shape *out, why *w);
    /* The tensors for input `in` and output `out`, named "<index>.<name>"; returns the count. */
    int (*params)(const nb_layer *l, nb_shape in, nb_shape out, int bias, nb_layer_param *p);
    /* Builds the layer on x, whose sample has shape `in` (the layer's output: `out`); its
     * tensors are named "<prefix>.<name>" (see nb_layer_build). */
    nb_node *(*build)(nb_graph *g, const nb_layer *l, nb_node *x, nb_shape in, nb_shape out,
                      const char *prefix, int bias, int keep_input);
} layer_row;

static int fail_why(why *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int fail_why(why *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->text, sizeof w->text, fmt, ap);
    va_end(ap);
    return -1;
}

static int need_vector(const char *layer, nb_shape in, why *w)
{
    if (in.ndim == 1)
        return 0;
    char s[48];
    nb_shape_format(in, s, sizeof s);
    return fail_why(w, "input is an image %s: put flatten before %s", s, layer);
}

static int need_image(const char *layer, nb_shape in, why *w)
{
    if (in.ndim == 3)
        return 0;
    return fail_why(w, "input is a vector of %d features: %s needs an image CxHxW", in.dim[0],
                    layer);
}

/* One side of a convolution or pooling: floor((n + 2 pad - k) / stride) + 1, in 64 bits (a side
 * may be near INT_MAX, and padding makes it larger). */
static int64_t window_out(int n, int k, int stride, int pad)
{
    return ((int64_t)n + 2 * (int64_t)pad - k) / stride + 1;
}

static int window_shape(const char *layer, const nb_layer *l, nb_shape in, int channels,
                        nb_shape *out, why *w)
{
    if (need_image(layer, in, w) != 0)
        return -1;
    char s[48];
    nb_shape_format(in, s, sizeof s);
    int64_t h = in.dim[1] + 2 * (int64_t)l->padding[0], wd = in.dim[2] + 2 * (int64_t)l->padding[1];
    if (h < l->kernel[0] || wd < l->kernel[1]) {
        if (l->padding[0] || l->padding[1])
            return fail_why(w, "input %s (%lldx%lld with padding) is smaller than the kernel %dx%d",
                            s, (long long)h, (long long)wd, l->kernel[0], l->kernel[1]);
        return fail_why(w, "input %s is smaller than the kernel %dx%d", s, l->kernel[0],
                        l->kernel[1]);
    }
    int64_t ho = window_out(in.dim[1], l->kernel[0], l->stride[0], l->padding[0]);
    int64_t wo = window_out(in.dim[2], l->kernel[1], l->stride[1], l->padding[1]);
    /* In double: channels times both sides can pass 64 bits. */
    if ((double)channels * (double)ho * (double)wo > NUMEL_MAX)
        return fail_why(w, "its output %dx%lldx%lld is too large", channels, (long long)ho,
                        (long long)wo);
    *out = nb_shape_image(channels, (int)ho, (int)wo);
    return 0;
}

static int same_shape(const nb_layer *l, nb_shape in, int classes, nb_shape *out, why *w)
{
    *out = in;
    return 0;
}

static int linear_shape(const nb_layer *l, nb_shape in, int classes, nb_shape *out, why *w)
{
    if (need_vector("linear", in, w) != 0)
        return -1;
    *out = nb_shape_vector(l->out ? l->out : classes);
    return 0;
}

static int conv2d_shape(const nb_layer *l, nb_shape in, int classes, nb_shape *out, why *w)
{
    return window_shape("conv2d", l, in, l->out, out, w);
}

static int maxpool2d_shape(const nb_layer *l, nb_shape in, int classes, nb_shape *out, why *w)
{
    return window_shape("maxpool2d", l, in, in.ndim == 3 ? in.dim[0] : 0, out, w);
}

static int avgpool2d_shape(const nb_layer *l, nb_shape in, int classes, nb_shape *out, why *w)
{
    return window_shape("avgpool2d", l, in, in.ndim == 3 ? in.dim[0] : 0, out, w);
}

/* torch.nn.Flatten: an image becomes the vector of its C·H·W features; a vector stays. */
static int flatten_shape(const nb_layer *l, nb_shape in, int classes, nb_shape *out, why *w)
{
    *out = nb_shape_vector((int)nb_shape_numel(in));
    return 0;
}

static void param(nb_layer_param *p, const char *suffix, nb_tensor_kind kind, int ndim,
                  const int *shape, nb_layer_init init)
{
    memset(p, 0, sizeof *p);
    /* The caller prefixes the index. */
    snprintf(p->name, sizeof p->name, "%s", suffix);
    p->kind = kind;
    p->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        p->shape[d] = shape[d];
    p->init = init;
}

static int linear_params(const nb_layer *l, nb_shape in, nb_shape out, int bias,
                         nb_layer_param *p)
{
    int wshape[2] = {out.dim[0], in.dim[0]};
    param(&p[0], "weight", NB_KIND_PARAM, 2, wshape, NB_INIT_RANDOM);
    p[0].fan_in = in.dim[0];
    p[0].fan_out = out.dim[0];
    if (!bias)
        return 1;
    param(&p[1], "bias", NB_KIND_PARAM, 1, wshape, NB_INIT_ZEROS);
    return 2;
}

static int conv2d_params(const nb_layer *l, nb_shape in, nb_shape out, int bias,
                         nb_layer_param *p)
{
    int wshape[4] = {l->out, in.dim[0], l->kernel[0], l->kernel[1]};
    param(&p[0], "weight", NB_KIND_PARAM, 4, wshape, NB_INIT_RANDOM);
    p[0].fan_in = (int64_t)in.dim[0] * l->kernel[0] * l->kernel[1];
    p[0].fan_out = (int64_t)l->out * l->kernel[0] * l->kernel[1];
    if (!bias)
        return 1;
    param(&p[1], "bias", NB_KIND_PARAM, 1, wshape, NB_INIT_ZEROS);
    return 2;
}

/* BatchNorm1d over a vector's features, BatchNorm2d over an image's channels. */
static int batchnorm_params(const nb_layer *l, nb_shape in, nb_shape out, int bias,
                            nb_layer_param *p)
{
    int features[1] = {in.dim[0]};
    param(&p[0], "weight", NB_KIND_PARAM, 1, features, NB_INIT_ONES);
    param(&p[1], "bias", NB_KIND_PARAM, 1, features, NB_INIT_ZEROS);
    param(&p[2], "running_mean", NB_KIND_STATE, 1, features, NB_INIT_ZEROS);
    param(&p[3], "running_var", NB_KIND_STATE, 1, features, NB_INIT_ONES);
    param(&p[4], "num_batches_tracked", NB_KIND_COUNTER, 0, features, NB_INIT_ZEROS);
    return 5;
}

/* torch.nn.LayerNorm(normalized_shape = the input's shape): weight and bias of that shape. */
static int layernorm_params(const nb_layer *l, nb_shape in, nb_shape out, int bias,
                            nb_layer_param *p)
{
    param(&p[0], "weight", NB_KIND_PARAM, in.ndim, in.dim, NB_INIT_ONES);
    param(&p[1], "bias", NB_KIND_PARAM, in.ndim, in.dim, NB_INIT_ZEROS);
    return 2;
}

/* The trainable tensors the row's params function lists for a layer (its weight and, when it
 * has one, its bias), made as parameters named "<prefix>.<name>": the shapes come from one
 * place. t[1] is NULL without a bias. */
static void weight_and_bias(nb_graph *g, const nb_layer *l, nb_shape in, nb_shape out,
                            const char *prefix, int bias, nb_node *t[2]);

static nb_node *linear_build(nb_graph *g, const nb_layer *l, nb_node *x, nb_shape in,
                             nb_shape out, const char *prefix, int bias, int keep_input)
{
    nb_node *t[2];
    weight_and_bias(g, l, in, out, prefix, bias, t);
    return nb_dense(g, x, t[0], t[1], NB_IDENTITY, 0.0f);
}

static nb_node *conv2d_build(nb_graph *g, const nb_layer *l, nb_node *x, nb_shape in,
                             nb_shape out, const char *prefix, int bias, int keep_input)
{
    nb_node *t[2];
    weight_and_bias(g, l, in, out, prefix, bias, t);
    return nb_conv2d(g, x, t[0], t[1], l->stride, l->padding);
}

static nb_node *maxpool2d_build(nb_graph *g, const nb_layer *l, nb_node *x, nb_shape in,
                                nb_shape out, const char *prefix, int bias, int keep_input)
{
    return nb_maxpool2d_fused(g, x, l->kernel, l->stride);
}

static nb_node *avgpool2d_build(nb_graph *g, const nb_layer *l, nb_node *x, nb_shape in,
                                nb_shape out, const char *prefix, int bias, int keep_input)
{
    return nb_avgpool2d(g, x, l->kernel, l->stride);
}

/* A vector stays as it is (torch.nn.Flatten of [B, n] is the identity): no node. */
static nb_node *flatten_build(nb_graph *g, const nb_layer *l, nb_node *x, nb_shape in,
                              nb_shape out, const char *prefix, int bias, int keep_input)
{
    return in.ndim == 1 ? x : nb_flatten(g, x);
}

static nb_node *batchnorm_build(nb_graph *g, const nb_layer *l, nb_node *x, nb_shape in,
                                nb_shape out, const char *prefix, int bias, int keep_input)
{
    return nb_batchnorm(g, x, prefix, 0.1f, 1e-5f);   /* PyTorch's defaults */
}

static nb_node *layernorm_build(nb_graph *g, const nb_layer *l, nb_node *x, nb_shape in,
                                nb_shape out, const char *prefix, int bias, int keep_input)
{
    return nb_layernorm(g, x, prefix, 1e-5f);   /* PyTorch's default eps */
}

static nb_node *dropout_build(nb_graph *g, const nb_layer *l, nb_node *x, nb_shape in,
                              nb_shape out, const char *prefix, int bias, int keep_input)
{
    return nb_dropout(g, x, l->p);
}

static nb_node *activation_build(nb_graph *g, const nb_layer *l, nb_node *x, nb_shape in,
                                 nb_shape out, const char *prefix, int bias, int keep_input)
{
    nb_activation act;
    float slope;
    nb_layer_activation(l, &act, &slope);
    if (keep_input)
        switch (act) {
        case NB_LEAKY_RELU: return nb_leaky_relu(g, x, slope);
        case NB_TANH: return nb_tanh(g, x);
        case NB_SIGMOID: return nb_sigmoid(g, x);
        default: return nb_relu(g, x);
        }
    return nb_activate(g, x, act, slope);
}

#define FIELD(f) offsetof(nb_layer, f)

static const layer_row rows[NB_LAYER_KINDS] = {
    [NB_LAYER_LINEAR] = {"linear", "linear(out)", 1,
                         {{"out", ARG_WIDTH, FIELD(out), DEF_CLASSES, 0}},
                         linear_shape, linear_params, linear_build},
    [NB_LAYER_CONV2D] = {"conv2d", "conv2d(out,kernel,stride=1,padding=0)", 4,
                         {{"out", ARG_WIDTH, FIELD(out), DEF_NONE, 0},
                          {"kernel", ARG_SIZE, FIELD(kernel), DEF_NONE, 0},
                          {"stride", ARG_SIZE, FIELD(stride), DEF_VALUE, 1},
                          {"padding", ARG_PADDING, FIELD(padding), DEF_VALUE, 0}},
                         conv2d_shape, conv2d_params, conv2d_build},
    [NB_LAYER_MAXPOOL2D] = {"maxpool2d", "maxpool2d(kernel,stride=kernel)", 2,
                            {{"kernel", ARG_SIZE, FIELD(kernel), DEF_NONE, 0},
                             {"stride", ARG_SIZE, FIELD(stride), DEF_KERNEL, 0}},
                            maxpool2d_shape, NULL, maxpool2d_build},
    [NB_LAYER_AVGPOOL2D] = {"avgpool2d", "avgpool2d(kernel,stride=kernel)", 2,
                            {{"kernel", ARG_SIZE, FIELD(kernel), DEF_NONE, 0},
                             {"stride", ARG_SIZE, FIELD(stride), DEF_KERNEL, 0}},
                            avgpool2d_shape, NULL, avgpool2d_build},
    [NB_LAYER_FLATTEN] = {"flatten", "flatten", 0, {{0}}, flatten_shape, NULL, flatten_build},
    [NB_LAYER_BATCHNORM] = {"batchnorm", "batchnorm", 0, {{0}}, same_shape, batchnorm_params,
                            batchnorm_build},
    [NB_LAYER_LAYERNORM] = {"layernorm", "layernorm", 0, {{0}}, same_shape, layernorm_params,
                            layernorm_build},
    [NB_LAYER_DROPOUT] = {"dropout", "dropout(p)", 1,
                          {{"p", ARG_PROB, FIELD(p), DEF_NONE, 0}}, same_shape, NULL,
                          dropout_build},
    [NB_LAYER_RELU] = {"relu", "relu", 0, {{0}}, same_shape, NULL, activation_build},
    [NB_LAYER_LEAKY_RELU] = {"leaky_relu", "leaky_relu(slope=0.01)", 1,
                             {{"slope", ARG_REAL, FIELD(slope), DEF_VALUE, 0.01}}, same_shape,
                             NULL, activation_build},
    [NB_LAYER_TANH] = {"tanh", "tanh", 0, {{0}}, same_shape, NULL, activation_build},
    [NB_LAYER_SIGMOID] = {"sigmoid", "sigmoid", 0, {{0}}, same_shape, NULL, activation_build},
};

const char *nb_layer_kind_name(nb_layer_kind kind)
{
    return (unsigned)kind < NB_LAYER_KINDS ? rows[kind].name : "?";
}

const char *nb_layer_signature(nb_layer_kind kind)
{
    return (unsigned)kind < NB_LAYER_KINDS ? rows[kind].signature : "?";
}

/* ---------------------------------------------------------------------------------------- */
/* Argument values                                                                          */
/* ---------------------------------------------------------------------------------------- */

static int *int_field(nb_layer *l, const arg_def *a) { return (int *)((char *)l + a->offset); }
static const int *int_field_c(const nb_layer *l, const arg_def *a)
{
    return (const int *)((const char *)l + a->offset);
}
static float *float_field(nb_layer *l, const arg_def *a) { return (float *)((char *)l + a->offset); }
static const float *float_field_c(const nb_layer *l, const arg_def *a)
{
    return (const float *)((const char *)l + a->offset);
}

static int is_pair(arg_type t) { return t == ARG_SIZE || t == ARG_PADDING; }
static int is_float(arg_type t) { return t == ARG_PROB || t == ARG_REAL; }

/* A decimal integer, digits only, within [lo, hi]. s[0..n). */
static int parse_int(const char *s, size_t n, int lo, int hi, int *out)
{
    if (n == 0 || n > 12)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* A decimal number (digits, sign, point, exponent; no "nan", "inf" or hex), finite as a float. */
static int parse_float(const char *s, size_t n, float *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]) && !strchr(".eE+-", s[i]))
            return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    errno = 0;
    float v = strtof(buf, &end);
    if (end != buf + n || !isfinite(v) || errno == ERANGE)
        return -1;
    *out = v == 0.0f ? 0.0f : v;   /* no -0 */
    return 0;
}

/* The shortest %g form of v that reads back as v. */
static void format_float(float v, char *buf, size_t cap)
{
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, cap, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v)
            return;
    }
}

/* Parses one value of argument a into layer l; on failure fills why with the rule. */
static int parse_value(const arg_def *a, const char *s, size_t n, nb_layer *l, why *w)
{
    switch (a->type) {
    case ARG_WIDTH:
        if (parse_int(s, n, 1, NB_LAYER_WIDTH_MAX, int_field(l, a)) == 0)
            return 0;
        return fail_why(w, "%s must be an integer from 1 to %d, not '%.*s'", a->name,
                        NB_LAYER_WIDTH_MAX, (int)n, s);
    case ARG_SIZE:
    case ARG_PADDING: {
        int lo = a->type == ARG_SIZE ? 1 : 0, *f = int_field(l, a);
        const char *x = memchr(s, 'x', n);
        int ok = x ? parse_int(s, (size_t)(x - s), lo, NB_LAYER_SIZE_MAX, &f[0]) == 0 &&
                         parse_int(x + 1, n - (size_t)(x - s) - 1, lo, NB_LAYER_SIZE_MAX,
                                   &f[1]) == 0
                   : parse_int(s, n, lo, NB_LAYER_SIZE_MAX, &f[0]) == 0;
        if (ok) {
            if (!x)
                f[1] = f[0];
            return 0;
        }
        return fail_why(w, "%s must be %s integer up to %d or HxW, not '%.*s'", a->name,
                        lo ? "a positive" : "a non-negative", NB_LAYER_SIZE_MAX, (int)n, s);
    }
    case ARG_PROB: {
        float v;
        if (parse_float(s, n, &v) == 0 && v >= 0.0f && v < 1.0f) {
            *float_field(l, a) = v;
            return 0;
        }
        return fail_why(w, "%s must be a number from 0 to below 1, not '%.*s'", a->name, (int)n,
                        s);
    }
    case ARG_REAL:
        if (parse_float(s, n, float_field(l, a)) == 0)
            return 0;
        return fail_why(w, "%s must be a finite number, not '%.*s'", a->name, (int)n, s);
    }
    return fail_why(w, "internal error: argument type");
}

static void set_default(const arg_def *a, nb_layer *l)
{
    if (is_float(a->type)) {
        *float_field(l, a) = (float)a->def_value;
    } else if (a->def == DEF_KERNEL) {
        int *f = int_field(l, a);
        f[0] = l->kernel[0];
        f[1] = l->kernel[1];
    } else {
        int *f = int_field(l, a);
        f[0] = (int)a->def_value;
        if (is_pair(a->type))
            f[1] = (int)a->def_value;
    }
}

static int is_default(const arg_def *a, const nb_layer *l)
{
    if (a->def == DEF_NONE)
        return 0;
    if (a->def == DEF_CLASSES)
        return *int_field_c(l, a) == 0;
    if (is_float(a->type))
        return *float_field_c(l, a) == (float)a->def_value;
    const int *f = int_field_c(l, a);
    if (a->def == DEF_KERNEL)
        return f[0] == l->kernel[0] && f[1] == l->kernel[1];
    return f[0] == (int)a->def_value && (!is_pair(a->type) || f[1] == (int)a->def_value);
}

static int format_value(const arg_def *a, const nb_layer *l, char *buf, size_t cap)
{
    if (is_float(a->type)) {
        format_float(*float_field_c(l, a), buf, cap);
        return 0;
    }
    const int *f = int_field_c(l, a);
    if (is_pair(a->type) && f[0] != f[1])
        return snprintf(buf, cap, "%dx%d", f[0], f[1]) < (int)cap ? 0 : -1;
    return snprintf(buf, cap, "%d", f[0]) < (int)cap ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------- */
/* Formatting                                                                               */
/* ---------------------------------------------------------------------------------------- */

int nb_layer_format(const nb_layer *l, char *buf, size_t cap)
{
    if (!l || (unsigned)l->kind >= NB_LAYER_KINDS || !buf || cap == 0)
        return -1;
    const layer_row *r = &rows[l->kind];
    char text[256];
    size_t len = (size_t)snprintf(text, sizeof text, "%s", r->name);
    int written = 0, skipped = 0;
    for (int i = 0; i < r->n_args; i++) {
        const arg_def *a = &r->args[i];
        if (is_default(a, l)) {
            skipped = 1;
            continue;
        }
        char value[64];
        if (format_value(a, l, value, sizeof value) != 0)
            return -1;
        len += (size_t)snprintf(text + len, sizeof text - len, "%s%s%s%s", written ? "," : "(",
                                skipped ? a->name : "", skipped ? "=" : "", value);
        written++;
    }
    if (written)
        len += (size_t)snprintf(text + len, sizeof text - len, ")");
    snprintf(buf, cap, "%s", text);
    return len < cap ? (int)len : -1;
}

int nb_layers_format(const nb_layers *layers, char *buf, size_t cap)
{
    if (!layers || !buf || cap == 0)
        return -1;
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < layers->n; i++) {
        char one[256];
        if (nb_layer_format(&layers->layer[i], one, sizeof one) < 0)
            return -1;
        int n = snprintf(buf + len, cap - len, "%s%s", i ? "," : "", one);
        if (n < 0 || (size_t)n >= cap - len)
            return -1;
        len += (size_t)n;
    }
    return (int)len;
}

/* ---------------------------------------------------------------------------------------- */
/* Parsing                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static const char *skip_space(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static size_t trimmed(const char *s, size_t n)
{
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return n;
}

static int edit_distance(const char *a, size_t na, const char *b)
{
    size_t nb = strlen(b);
    int row[64];
    if (na >= 63 || nb >= 63)
        return 99;
    for (size_t j = 0; j <= nb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int up = row[j];
            int best = diag + (tolower((unsigned char)a[i - 1]) != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* "'conv2d(32,x)' at position 3: <why>" */
static int fail_at(nb_error *err, const char *quote, size_t n, int position, const char *text)
{
    if (n > 120)
        return nb_fail(err, "'%.120s...' at position %d: %s", quote, position, text);
    return nb_fail(err, "'%.*s' at position %d: %s", (int)n, quote, position, text);
}

static int unknown_layer(const char *name, size_t n, why *w)
{
    int best = -1, best_d = 99;
    for (int k = 0; k < NB_LAYER_KINDS; k++) {
        int d = edit_distance(name, n, rows[k].name);
        if (d < best_d) {
            best_d = d;
            best = k;
        }
    }
    if (best >= 0 && best_d <= 3 && (size_t)best_d < n)
        return fail_why(w, "unknown layer '%.*s' (did you mean '%s'?)", (int)n, name,
                        rows[best].name);
    char list[300] = "";
    for (int k = 0; k < NB_LAYER_KINDS; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "",
                 rows[k].name);
    return fail_why(w, "unknown layer '%.*s' (layers: %s)", (int)n, name, list);
}

static int unknown_arg(const layer_row *r, const char *name, size_t n, why *w)
{
    if (r->n_args == 0)
        return fail_why(w, "%s takes no arguments", r->name);
    char list[200] = "";
    for (int i = 0; i < r->n_args; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 r->args[i].name);
    return fail_why(w, "%s has no argument '%.*s' (its arguments: %s)", r->name, (int)n, name,
                    list);
}

/* The arguments between the parentheses, s[0..n), into l. */
static int parse_args(const layer_row *r, const char *s, size_t n, nb_layer *l, why *w)
{
    int given[4] = {0, 0, 0, 0}, positional = 0, named = 0;
    const char *end = s + n, *p = skip_space(s);
    while (p != end) {   /* none: "relu", "relu()" */
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        size_t len = trimmed(p, (size_t)(stop - p));
        if (len == 0)
            return fail_why(w, "an argument is missing between commas");
        const char *eq = memchr(p, '=', len);
        int index;
        const char *value = p;
        size_t vlen = len;
        if (eq) {
            size_t nlen = trimmed(p, (size_t)(eq - p));
            for (index = 0; index < r->n_args; index++)
                if (strlen(r->args[index].name) == nlen &&
                    memcmp(r->args[index].name, p, nlen) == 0)
                    break;
            if (index == r->n_args)
                return unknown_arg(r, p, nlen, w);
            value = skip_space(eq + 1);
            vlen = (size_t)(p + len - value);
            if (vlen == 0)
                return fail_why(w, "%s= needs a value", r->args[index].name);
            named = 1;
        } else {
            if (named)
                return fail_why(w, "'%.*s' comes after a named argument: name it too", (int)len,
                                p);
            if (positional == r->n_args) {
                if (r->n_args == 0)
                    return fail_why(w, "%s takes no arguments", r->name);
                return fail_why(w, "%s takes at most %d argument%s: %s", r->name, r->n_args,
                                r->n_args == 1 ? "" : "s", r->signature);
            }
            index = positional++;
        }
        if (given[index])
            return fail_why(w, "%s is given twice", r->args[index].name);
        given[index] = 1;
        if (parse_value(&r->args[index], value, vlen, l, w) != 0)
            return -1;
        if (!comma)
            break;
        p = skip_space(comma + 1);
        if (p == end)
            return fail_why(w, "an argument is missing after the last comma");
    }
    /* Defaults after every given value: a pool's stride defaults to its kernel. */
    for (int i = 0; i < r->n_args; i++) {
        if (given[i])
            continue;
        if (r->args[i].def == DEF_NONE)
            return fail_why(w, "%s is missing: %s", r->args[i].name, r->signature);
        set_default(&r->args[i], l);
    }
    return 0;
}

static void layer_defaults(const layer_row *r, nb_layer *l)
{
    for (int i = 0; i < r->n_args; i++)
        if (r->args[i].def != DEF_NONE && r->args[i].def != DEF_KERNEL)
            set_default(&r->args[i], l);
}

int nb_layers_parse(const char *text, nb_layers *out, nb_error *err)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return nb_fail(err, "no layers");
    const char *p = skip_space(text);
    if (!*p)
        return nb_fail(err, "no layers: write them like linear(128),relu,linear");
    for (int position = 0;; position++) {
        const char *start = p, *q = p;
        while (isalnum((unsigned char)*q) || *q == '_')
            q++;
        size_t name_len = (size_t)(q - start);
        const char *after = skip_space(q);
        const char *args = NULL, *close = NULL;
        if (*after == '(') {
            args = after + 1;
            close = strchr(args, ')');
            if (!close || memchr(args, '(', (size_t)(close - args))) {
                why w;
                fail_why(&w, "'(' without ')'");
                return fail_at(err, start, trimmed(start, strlen(start)), position, w.text);
            }
            after = skip_space(close + 1);
        }
        /* The layer's text, for messages: up to the comma that ends it. */
        const char *next = after;
        if (*next && *next != ',')
            next += strcspn(next, ",");
        size_t quote_len = trimmed(start, (size_t)(next - start));
        why w;
        if (name_len == 0) {
            if (quote_len == 0)
                return nb_fail(err, "layer %d is missing between commas (at character %d)",
                               position, (int)(start - text) + 1);
            fail_why(&w, "a layer starts with its name, like conv2d or relu");
            return fail_at(err, start, quote_len, position, w.text);
        }
        if (*after && *after != ',') {
            fail_why(&w, "expected ',' after the layer, found '%c'", *after);
            return fail_at(err, start, quote_len, position, w.text);
        }
        if (position == NB_LAYERS_MAX)
            return nb_fail(err, "a model has at most %d layers", NB_LAYERS_MAX);
        int kind;
        for (kind = 0; kind < NB_LAYER_KINDS; kind++)
            if (strlen(rows[kind].name) == name_len && memcmp(rows[kind].name, start, name_len) == 0)
                break;
        if (kind == NB_LAYER_KINDS) {
            unknown_layer(start, name_len, &w);
            return fail_at(err, start, quote_len, position, w.text);
        }
        const layer_row *r = &rows[kind];
        nb_layer *l = &out->layer[position];
        l->kind = (nb_layer_kind)kind;
        layer_defaults(r, l);
        if (parse_args(r, args ? args : "", args ? (size_t)(close - args) : 0, l, &w) != 0)
            return fail_at(err, start, quote_len, position, w.text);
        out->n = position + 1;
        if (!*after)
            return 0;
        p = skip_space(after + 1);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Shapes and tensors of a model                                                            */
/* ---------------------------------------------------------------------------------------- */

static int check_layers(const nb_layers *layers, nb_error *err)
{
    if (!layers || layers->n < 1 || layers->n > NB_LAYERS_MAX)
        return nb_fail(err, "a model has 1 to %d layers", NB_LAYERS_MAX);
    for (int i = 0; i < layers->n; i++)
        if ((unsigned)layers->layer[i].kind >= NB_LAYER_KINDS)
            return nb_fail(err, "layer %d: unknown kind %d", i, (int)layers->layer[i].kind);
    return 0;
}

static int last_linear(const nb_layers *layers)
{
    for (int i = layers->n - 1; i >= 0; i--)
        if (layers->layer[i].kind == NB_LAYER_LINEAR)
            return i;
    return -1;
}

static int fail_layer(const nb_layers *layers, int i, const char *text, nb_error *err)
{
    char quote[256];
    if (nb_layer_format(&layers->layer[i], quote, sizeof quote) < 0)
        snprintf(quote, sizeof quote, "%s", nb_layer_kind_name(layers->layer[i].kind));
    return fail_at(err, quote, strlen(quote), i, text);
}

int nb_layers_shapes(const nb_layers *layers, nb_shape input, int classes, nb_shape *shapes,
                     nb_error *err)
{
    if (check_layers(layers, err) != 0)
        return -1;
    if ((input.ndim != 1 && input.ndim != 3) || input.dim[0] < 1 ||
        (input.ndim == 3 && (input.dim[1] < 1 || input.dim[2] < 1)) ||
        nb_shape_numel(input) > NUMEL_MAX)
        return nb_fail(err, "an input is a vector of at least 1 feature or an image CxHxW");
    if (classes < 1 || classes > NB_LAYER_WIDTH_MAX)
        return nb_fail(err, "a model has 1 to %d outputs, not %d", NB_LAYER_WIDTH_MAX, classes);
    int last = last_linear(layers);
    nb_shape in = input;
    if (shapes)
        shapes[0] = input;
    for (int i = 0; i < layers->n; i++) {
        const nb_layer *l = &layers->layer[i];
        why w;
        if (l->kind == NB_LAYER_LINEAR && l->out == 0 && i != last)
            return fail_layer(layers, i, "only the last linear may leave out its width (out)",
                              err);
        nb_shape out;
        if (rows[l->kind].shape(l, in, classes, &out, &w) != 0)
            return fail_layer(layers, i, w.text, err);
        if (shapes)
            shapes[i + 1] = out;
        if (rows[l->kind].params) {
            nb_layer_param p[NB_LAYER_PARAMS_MAX];
            int k = rows[l->kind].params(l, in, out, nb_layer_has_bias(layers, i), p);
            for (int j = 0; j < k; j++) {
                /* A weight this size fits no memory; the trainer's memory check refuses far
                 * smaller ones, saying how much they need. */
                if (nb_layer_param_numel(&p[j]) > PARAM_NUMEL_MAX)
                    return fail_layer(layers, i, "its weight is too large", err);
            }
        }
        in = out;
    }
    char s[48];
    nb_shape_format(in, s, sizeof s);
    if (in.ndim != 1)
        return nb_fail(err, "the model's output is an image %s, not the %d classes: end it with "
                       "flatten,linear", s, classes);
    if (in.dim[0] != classes)
        return nb_fail(err, "the model's output has %s features, not the %d classes: end it "
                       "with linear", s, classes);
    return 0;
}

int nb_layer_has_bias(const nb_layers *layers, int i)
{
    nb_layer_kind k = layers->layer[i].kind;
    if (k != NB_LAYER_LINEAR && k != NB_LAYER_CONV2D)
        return 0;
    return !(i + 1 < layers->n && layers->layer[i + 1].kind == NB_LAYER_BATCHNORM);
}

int nb_layer_activation(const nb_layer *l, nb_activation *act, float *slope)
{
    nb_activation a;
    switch (l->kind) {
    case NB_LAYER_RELU: a = NB_RELU; break;
    case NB_LAYER_LEAKY_RELU: a = NB_LEAKY_RELU; break;
    case NB_LAYER_TANH: a = NB_TANH; break;
    case NB_LAYER_SIGMOID: a = NB_SIGMOID; break;
    default: return 0;
    }
    if (act)
        *act = a;
    if (slope)
        *slope = a == NB_LEAKY_RELU ? l->slope : 0.0f;
    return 1;
}

int nb_layers_activations(const nb_layers *layers)
{
    int n = 0;
    for (int i = 0; i < layers->n; i++)
        n += nb_layer_activation(&layers->layer[i], NULL, NULL);
    return n;
}

int nb_layers_activation_at(const nb_layers *layers, int k)
{
    for (int i = 0, seen = 0; i < layers->n; i++)
        if (nb_layer_activation(&layers->layer[i], NULL, NULL) && ++seen == k)
            return i;
    return -1;
}

int64_t nb_layer_param_numel(const nb_layer_param *p)
{
    int64_t n = 1;
    for (int d = 0; d < p->ndim; d++) {
        if (p->shape[d] > 0 && n > INT64_MAX / p->shape[d])
            return INT64_MAX;
        n *= p->shape[d];
    }
    return n;
}

static int has_weights(nb_layer_kind k) { return k == NB_LAYER_LINEAR || k == NB_LAYER_CONV2D; }

/* The activation a weight layer's initialization is for: the first after it, before the next
 * weight layer; for the last layer, the closest before it; relu's for a model without any. */
static double init_std(const nb_layers *layers, int i, int64_t fan_in, int64_t fan_out)
{
    nb_activation act = NB_RELU;
    float slope = 0.0f;
    int j = i + 1;
    while (j < layers->n && !has_weights(layers->layer[j].kind) &&
           !nb_layer_activation(&layers->layer[j], &act, &slope))
        j++;
    if (j == layers->n || has_weights(layers->layer[j].kind))
        for (j = i - 1; j >= 0 && !nb_layer_activation(&layers->layer[j], &act, &slope); j--)
            ;
    if (act == NB_RELU)
        return sqrt(2.0 / (double)fan_in);
    if (act == NB_LEAKY_RELU)
        return sqrt(2.0 / ((1.0 + (double)slope * slope) * (double)fan_in));
    return sqrt(2.0 / (double)(fan_in + fan_out));
}

int nb_layers_params(const nb_layers *layers, nb_shape input, int classes, nb_layer_param *out,
                     int cap, int *count, nb_error *err)
{
    *count = 0;
    if (check_layers(layers, err) != 0)
        return -1;
    nb_shape shapes[NB_LAYERS_MAX + 1];
    if (nb_layers_shapes(layers, input, classes, shapes, err) != 0)
        return -1;
    int n = 0;
    for (int i = 0; i < layers->n; i++) {
        const nb_layer *l = &layers->layer[i];
        if (!rows[l->kind].params)
            continue;
        nb_layer_param p[NB_LAYER_PARAMS_MAX];
        int k = rows[l->kind].params(l, shapes[i], shapes[i + 1], nb_layer_has_bias(layers, i), p);
        for (int j = 0; j < k; j++) {
            if (n == cap)
                return nb_fail(err, "more than %d tensors", cap);
            char name[64];
            int len = snprintf(name, sizeof name, "%d.%.20s", i, p[j].name);
            out[n] = p[j];
            memcpy(out[n].name, name, (size_t)len + 1);   /* at most 2 + 1 + 19 characters */
            out[n].layer = i;
            if (p[j].init == NB_INIT_RANDOM)
                out[n].std = init_std(layers, i, p[j].fan_in, p[j].fan_out);
            n++;
        }
    }
    *count = n;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Today's models                                                                           */
/* ---------------------------------------------------------------------------------------- */

int nb_layers_from_mlp(const nb_mlp *spec, nb_layers *out, nb_error *err)
{
    memset(out, 0, sizeof *out);
    if (spec->n_hidden < 0 || spec->n_hidden > NB_MAX_LAYERS)
        return nb_fail(err, "a model has 0 to %d hidden layers", NB_MAX_LAYERS);
    if ((unsigned)spec->activation > NB_SIGMOID)
        return nb_fail(err, "unknown activation");
    static const nb_layer_kind act[] = {[NB_RELU] = NB_LAYER_RELU,
                                        [NB_LEAKY_RELU] = NB_LAYER_LEAKY_RELU,
                                        [NB_TANH] = NB_LAYER_TANH,
                                        [NB_SIGMOID] = NB_LAYER_SIGMOID};
    int n = 0;
    for (int h = 0; h < spec->n_hidden; h++) {
        if (spec->hidden[h] < 1 || spec->hidden[h] > NB_LAYER_WIDTH_MAX)
            return nb_fail(err, "hidden layer %d: a width from 1 to %d, not %d", h + 1,
                           NB_LAYER_WIDTH_MAX, spec->hidden[h]);
        out->layer[n].kind = NB_LAYER_LINEAR;
        out->layer[n++].out = spec->hidden[h];
        if (spec->batchnorm)
            out->layer[n++].kind = NB_LAYER_BATCHNORM;
        out->layer[n].kind = act[spec->activation];
        if (spec->activation == NB_LEAKY_RELU) {
            if (!isfinite(spec->leaky_slope))
                return nb_fail(err, "the leaky slope must be finite");
            out->layer[n].slope = spec->leaky_slope == 0.0f ? 0.0f : spec->leaky_slope;
        }
        n++;
    }
    out->layer[n++].kind = NB_LAYER_LINEAR;   /* out 0: the classes */
    out->n = n;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Building                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void weight_and_bias(nb_graph *g, const nb_layer *l, nb_shape in, nb_shape out,
                            const char *prefix, int bias, nb_node *t[2])
{
    nb_layer_param p[NB_LAYER_PARAMS_MAX];
    int k = rows[l->kind].params(l, in, out, bias, p);
    t[0] = t[1] = NULL;
    for (int j = 0; j < k && j < 2; j++) {
        char name[48];   /* "<index>.<name>": at most 15 + 1 + 31 characters */
        snprintf(name, sizeof name, "%.15s.%.31s", prefix, p[j].name);
        t[j] = nb_param(g, name, p[j].ndim, p[j].shape);
    }
}

nb_node *nb_layer_build(nb_graph *g, const nb_layers *layers, const nb_shape *shapes, int i,
                        nb_node *x, int keep_input)
{
    const nb_layer *l = &layers->layer[i];
    const layer_row *r = &rows[l->kind];
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%d", i);
    return r->build(g, l, x, shapes[i], shapes[i + 1], prefix, nb_layer_has_bias(layers, i),
                    keep_input);
}
