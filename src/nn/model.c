/* Models: a sequence of layers built on the graph from the layer table (src/nn/layers.c), with
 * the tensor names torch.nn.Sequential gives the same layers, so weights move between the two. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph_internal.h"
#include "nabla.h"
#include "nn/layers.h"

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

int nb_parse_layers(const char *s, nb_mlp *mlp, nb_error *err)
{
    mlp->n_hidden = 0;
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
        if (mlp->n_hidden == NB_MAX_LAYERS)
            return nb_fail(err, "layers '%s': at most %d hidden layers", s, NB_MAX_LAYERS);
        mlp->hidden[mlp->n_hidden++] = (int)width;
        if (!*end)
            return 0;
        p = end + 1;
    }
}

int nb_model_spec_parse(nb_model_spec *spec, const char *layers, nb_shape input, int classes,
                        nb_error *err)
{
    memset(spec, 0, sizeof *spec);
    spec->input = input;
    spec->classes = classes;
    if (nb_layers_parse(layers, &spec->layers, err) != 0)
        return -1;
    return nb_layers_shapes(&spec->layers, input, classes, NULL, err);
}

int nb_model_spec_mlp(nb_model_spec *spec, const nb_mlp *mlp, nb_error *err)
{
    memset(spec, 0, sizeof *spec);
    spec->input = nb_shape_vector(mlp->inputs);
    spec->classes = mlp->classes;
    if (nb_layers_from_mlp(mlp, &spec->layers, err) != 0)
        return -1;
    return nb_layers_shapes(&spec->layers, spec->input, spec->classes, NULL, err);
}

/* The model's graph, built but not compiled. */
static int construct(nb_model *m, const nb_model_spec *spec, nb_error *err)
{
    memset(m, 0, sizeof *m);
    nb_shape shapes[NB_LAYERS_MAX + 1];
    if (nb_layers_shapes(&spec->layers, spec->input, spec->classes, shapes, err) != 0)
        return -1;
    int activations = nb_layers_activations(&spec->layers);
    if (spec->trace_layer < 0 || spec->trace_layer > activations)
        return nb_fail(err, "trace_layer %d: the model has activation layers 1 to %d",
                       spec->trace_layer, activations);
    if ((unsigned)spec->task >= NB_TASKS || nb_loss_task(spec->loss) != spec->task)
        return nb_fail(err, "the %s loss does not train a %s model (use %s)",
                       nb_loss_name(spec->loss), nb_task_name(spec->task),
                       nb_loss_name(nb_task_default_loss(spec->task)));
    if (spec->task == NB_TASK_CLASSIFICATION && spec->classes < 2)
        return nb_fail(err, "a classifier has 2 to %d classes, not %d", NB_LAYER_WIDTH_MAX,
                       spec->classes);
    m->spec = *spec;
    nb_graph *g = m->graph = nb_graph_new();
    if (!g)
        return nb_fail(err, "out of memory");

    m->x = nb_input_shape(g, spec->input.ndim, spec->input.dim);
    if (spec->loss == NB_LOSS_CROSS_ENTROPY)
        m->y = nb_labels(g);
    else
        m->y = nb_input(g, spec->classes);
    nb_node *h = m->x;
    const nb_layers *layers = &spec->layers;
    for (int i = 0, activation = 0; i < layers->n; i++) {
        nb_activation act;
        float slope;
        int traced = nb_layer_activation(&layers->layer[i], &act, &slope) &&
                     ++activation == spec->trace_layer;
        if (traced)
            m->pre_activation = h;
        h = nb_layer_build(g, layers, shapes, i, h, traced);
    }
    m->logits = h;
    m->loss = spec->loss == NB_LOSS_CROSS_ENTROPY
                  ? nb_softmax_cross_entropy(g, m->logits, m->y)
                  : nb_elementwise_loss(g, spec->loss, m->logits, m->y);
    if (g->failed)
        return nb_fail(err, "%s", g->error.msg);
    return 0;
}

int nb_model_construct(nb_model *m, const nb_model_spec *spec, nb_error *err)
{
    if (construct(m, spec, err) != 0) {
        nb_model_free(m);
        return -1;
    }
    return 0;
}

/* Draws every weight of linear and conv2d layers, layer after layer (see nabla.h). */
static int init_weights(nb_model *m, uint64_t seed, nb_error *err)
{
    nb_layer_param params[NB_LAYERS_MAX * NB_LAYER_PARAMS_MAX];
    int count;
    if (nb_layers_params(&m->spec.layers, m->spec.input, m->spec.classes, params,
                         NB_LAYERS_MAX * NB_LAYER_PARAMS_MAX, &count, err) != 0)
        return -1;
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    for (int i = 0; i < count; i++) {
        if (params[i].init != NB_INIT_RANDOM)
            continue;
        nb_named t;
        if (!nb_graph_find(m->graph, params[i].name, &t) || t.kind != NB_KIND_PARAM)
            return nb_fail(err, "internal error: no tensor '%s' in the model", params[i].name);
        nb_tensor w = nb_node_value(t.node);
        size_t n = nb_tensor_numel(&w);
        for (size_t j = 0; j < n; j++)
            w.data[j] = (float)(params[i].std * nb_rng_normal(&rng));
    }
    return 0;
}

int nb_model_build(nb_model *m, const nb_model_spec *spec, int max_batch, uint64_t seed,
                   nb_error *err)
{
    if (construct(m, spec, err) != 0 || nb_graph_compile(m->graph, max_batch, err) != 0 ||
        init_weights(m, seed, err) != 0) {
        nb_model_free(m);
        return -1;
    }
    return 0;
}

int nb_model_features(const nb_model_spec *spec)
{
    return (int)nb_shape_numel(spec->input);   /* nb_layers_shapes keeps it within an int */
}

void nb_model_free(nb_model *m)
{
    if (!m)
        return;
    nb_graph_free(m->graph);
    free(m->norm_mean);
    free(m->norm_std);
    free(m->target_mean);
    free(m->target_std);
    nb_table_free(m->table);
    free(m->table);
    memset(m, 0, sizeof *m);
}
