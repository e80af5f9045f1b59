/* Models: dense -> [batch norm] -> activation blocks and a final dense layer, built on the graph
 * with the names torch.nn.Sequential gives the same stack, so weights move between the two. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"
#include "nabla.h"

static const char *const activation_names[] = {"relu", "leaky_relu", "tanh", "sigmoid",
                                               "identity"};

const char *nb_activation_name(nb_activation a)
{
    return (unsigned)a <= NB_IDENTITY ? activation_names[a] : "?";
}

/* Only the activations a model's hidden layers can have. */
int nb_activation_parse(const char *s, nb_activation *out)
{
    for (int i = 0; i <= NB_SIGMOID; i++)
        if (strcmp(s, activation_names[i]) == 0) {
            *out = (nb_activation)i;
            return 0;
        }
    return -1;
}

int nb_parse_layers(const char *s, nb_model_spec *spec, nb_error *err)
{
    spec->n_hidden = 0;
    if (!s || !*s || strcmp(s, "none") == 0)
        return 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long width = strtol(p, &end, 10);
        if (end == p || errno || (*end && *end != ','))
            return nb_fail(err, "layers '%s': expected widths separated by commas, like 256,128", s);
        if (width <= 0 || width > 1000000)
            return nb_fail(err, "layers '%s': a width must be between 1 and 1000000, not %ld", s,
                           width);
        if (spec->n_hidden == NB_MAX_LAYERS)
            return nb_fail(err, "layers '%s': at most %d hidden layers", s, NB_MAX_LAYERS);
        spec->hidden[spec->n_hidden++] = (int)width;
        if (!*end)
            return 0;
        p = end + 1;
    }
}

/* He normal for the relu family (gain corrected for the leaky slope), Xavier normal for
 * tanh and sigmoid: keeps the variance of activations about constant from layer to layer. */
static void init_weights(float *w, int out, int in, const nb_model_spec *spec, nb_rng *rng)
{
    double std;
    if (spec->activation == NB_RELU)
        std = sqrt(2.0 / in);
    else if (spec->activation == NB_LEAKY_RELU)
        std = sqrt(2.0 / ((1.0 + (double)spec->leaky_slope * spec->leaky_slope) * in));
    else
        std = sqrt(2.0 / (in + out));
    for (size_t i = 0; i < (size_t)out * in; i++)
        w[i] = (float)(std * nb_rng_normal(rng));
}

/* Linear layer `index` (weight, and bias unless batch norm follows) with its activation. */
static nb_node *dense(nb_graph *g, nb_node *h, int index, int in, int out, int with_bias,
                      nb_activation act, float slope, nb_node **weight)
{
    char name[32];
    int wshape[2] = {out, in}, bshape[1] = {out};
    snprintf(name, sizeof name, "%d.weight", index);
    *weight = nb_param(g, name, 2, wshape);
    nb_node *bias = NULL;
    if (with_bias) {
        snprintf(name, sizeof name, "%d.bias", index);
        bias = nb_param(g, name, 1, bshape);
    }
    return nb_dense(g, h, *weight, bias, act, slope);
}

static nb_node *activation(nb_graph *g, nb_node *h, const nb_model_spec *spec)
{
    switch (spec->activation) {
    case NB_LEAKY_RELU: return nb_leaky_relu(g, h, spec->leaky_slope);
    case NB_TANH: return nb_tanh(g, h);
    case NB_SIGMOID: return nb_sigmoid(g, h);
    case NB_RELU:
    case NB_IDENTITY: break;
    }
    return nb_relu(g, h);
}

/* The model's graph, built but not compiled; weights[l] are the layers' weight nodes. */
static int construct(nb_model *m, const nb_model_spec *spec, nb_node *weights[NB_MAX_LAYERS + 1],
                     nb_error *err)
{
    memset(m, 0, sizeof *m);
    if (spec->inputs < 1 || spec->classes < 2)
        return nb_fail(err, "a model needs at least 1 input and 2 classes (got %d and %d)",
                       spec->inputs, spec->classes);
    if (spec->n_hidden < 0 || spec->n_hidden > NB_MAX_LAYERS)
        return nb_fail(err, "a model has 0 to %d hidden layers", NB_MAX_LAYERS);
    if ((unsigned)spec->activation > NB_SIGMOID)
        return nb_fail(err, "unknown activation");
    if (spec->trace_layer < 0 || spec->trace_layer > spec->n_hidden)
        return nb_fail(err, "trace_layer %d: the model has hidden layers 1 to %d",
                       spec->trace_layer, spec->n_hidden);
    m->spec = *spec;
    nb_graph *g = m->graph = nb_graph_new();
    if (!g)
        return nb_fail(err, "out of memory");

    m->x = nb_input(g, spec->inputs);
    m->y = nb_labels(g);
    nb_node *h = m->x;
    int in = spec->inputs, index = 0;
    for (int l = 0; l < spec->n_hidden; l++) {
        /* Without batch norm the activation is fused into the dense op; with it, it follows
         * the normalization. The traced layer keeps its pre-activation: unfused, dense with
         * no activation and then the activation op, which computes the same numbers (the same
         * functions on the same values, forward and backward). */
        int traced = l + 1 == spec->trace_layer;
        int fused = !spec->batchnorm && !traced;
        h = dense(g, h, index++, in, spec->hidden[l], !spec->batchnorm,
                  fused ? spec->activation : NB_IDENTITY, spec->leaky_slope, &weights[l]);
        if (spec->batchnorm) {
            char prefix[16];
            snprintf(prefix, sizeof prefix, "%d", index++);
            h = nb_batchnorm(g, h, prefix, 0.1f, 1e-5f);
        }
        if (traced)
            m->pre_activation = h;
        if (!fused)
            h = activation(g, h, spec);
        index++;
        in = spec->hidden[l];
    }
    m->logits = dense(g, h, index, in, spec->classes, 1, NB_IDENTITY, 0.0f,
                      &weights[spec->n_hidden]);
    m->loss = nb_softmax_cross_entropy(g, m->logits, m->y);
    return 0;
}

int nb_model_construct(nb_model *m, const nb_model_spec *spec, nb_error *err)
{
    nb_node *weights[NB_MAX_LAYERS + 1];
    if (construct(m, spec, weights, err) != 0) {
        nb_model_free(m);
        return -1;
    }
    return 0;
}

int nb_model_build(nb_model *m, const nb_model_spec *spec, int max_batch, uint64_t seed,
                   nb_error *err)
{
    nb_node *weights[NB_MAX_LAYERS + 1];
    if (construct(m, spec, weights, err) != 0 ||
        nb_graph_compile(m->graph, max_batch, err) != 0) {
        nb_model_free(m);
        return -1;
    }

    nb_rng rng;
    nb_rng_seed(&rng, seed);
    int in = spec->inputs;
    for (int l = 0; l <= spec->n_hidden; l++) {
        int out = l < spec->n_hidden ? spec->hidden[l] : spec->classes;
        init_weights(nb_node_value(weights[l]).data, out, in, spec, &rng);
        in = out;
    }
    return 0;
}

void nb_model_free(nb_model *m)
{
    if (!m)
        return;
    nb_graph_free(m->graph);
    free(m->norm_mean);
    free(m->norm_std);
    memset(m, 0, sizeof *m);
}
