/*
 * The layer table and the text form of a model.
 *
 * A model is a sequence of layers, written as PyTorch would build it in a torch.nn.Sequential:
 *
 *     conv2d(32,3,padding=1),batchnorm,relu,maxpool2d(2),flatten,linear(128),relu,dropout(0.5),linear
 *
 * A layer's position is its index in that Sequential, so its tensors are named "<index>.weight",
 * "<index>.bias", "<index>.running_mean", ... as in the Sequential's state_dict. One table in
 * layers.c has a row per layer type: its name, its arguments (positional in PyTorch's order, or
 * by name), its output shape, its tensors and their fan-in for initialization; parsing and
 * formatting are driven by the rows' argument lists.
 *
 * The types and the text form's parser and formatter are public (nabla.h); the rest is the
 * model builder's (src/nn/model.c) and the model files' (src/io/model_io.c).
 */
#ifndef NABLA_NN_LAYERS_H
#define NABLA_NN_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "nabla.h"

#define NB_LAYER_PARAMS_MAX 5   /* tensors of one layer (batchnorm's five) */
#define NB_LAYER_WIDTH_MAX 1000000   /* linear's and conv2d's out, as --layers' widths */
#define NB_LAYER_SIZE_MAX 4096       /* a kernel's, stride's or padding's side */

/* How a tensor starts: filled with 0 or 1, or drawn at random from its fan-in and fan-out. */
typedef enum nb_layer_init { NB_INIT_ZEROS, NB_INIT_ONES, NB_INIT_RANDOM } nb_layer_init;

/* One tensor of a layer, as the Sequential's state_dict has it. */
typedef struct nb_layer_param {
    char name[32];          /* "3.weight" */
    nb_tensor_kind kind;    /* trained (param), saved state, or an int64 counter (0-dim) */
    int ndim;               /* 0 (the counter) to 4 (conv2d's weight) */
    int shape[4];
    nb_layer_init init;
    int64_t fan_in, fan_out; /* NB_INIT_RANDOM: in·kh·kw and out·kh·kw (PyTorch's); else 0 */
    double std;             /* NB_INIT_RANDOM: of the normal distribution drawn from (see
                             * nb_model_build for the rule); else 0 */
    int layer;              /* the layer's index */
} nb_layer_param;

/* The table's row names ("conv2d"), or "?" for a kind outside it. */
const char *nb_layer_kind_name(nb_layer_kind kind);
/* The row's signature as documentation: "conv2d(out,kernel,stride=1,padding=0)". */
const char *nb_layer_signature(nb_layer_kind kind);

/* One layer's canonical text (see nb_layers_format); -1 when it does not fit in cap. */
int nb_layer_format(const nb_layer *layer, char *buf, size_t cap);

/* Runs the shapes through the model for one sample of shape `input` and `classes` classes:
 * shapes[0] = input, shapes[i + 1] = layer i's output (shapes has room for n + 1). Refuses what
 * does not fit, quoting the layer and the shapes ("'conv2d(64,5)' at position 4: input 64x3x3
 * is smaller than the kernel 5x5"), a linear without width that is not the last linear, and a
 * model whose output is not a vector of `classes`. shapes may be NULL. */
int nb_layers_shapes(const nb_layers *layers, nb_shape input, int classes, nb_shape *shapes,
                     nb_error *err);

/* Whether layer i has a bias: linear and conv2d do, unless batchnorm follows directly. */
int nb_layer_has_bias(const nb_layers *layers, int i);

/* The tensors of the whole model in the order nb_model_build creates them (and model_io
 * writes them): each layer's in turn; weight before bias; batchnorm's weight, bias,
 * running_mean, running_var, num_batches_tracked. Checks the shapes first
 * (nb_layers_shapes). *count gets their number; out has room for cap (at most
 * NB_LAYER_PARAMS_MAX per layer). */
int nb_layers_params(const nb_layers *layers, nb_shape input, int classes, nb_layer_param *out,
                     int cap, int *count, nb_error *err);

/* An MLP's layers (see nb_mlp): "256,128 relu --batchnorm" gives
 * linear(256),batchnorm,relu,linear(128),batchnorm,relu,linear. */
int nb_layers_from_mlp(const nb_mlp *mlp, nb_layers *out, nb_error *err);

/* Whether layer l is an activation (relu, leaky_relu, tanh, sigmoid), and which. */
int nb_layer_activation(const nb_layer *l, nb_activation *act, float *slope);
/* The activation layers of a model (what --trace-layer and nb_model_spec.trace_layer count):
 * how many there are, and the index of the k-th (1-based), or -1 when there is none. */
int nb_layers_activations(const nb_layers *layers);
int nb_layers_activation_at(const nb_layers *layers, int k);

/* A tensor's elements, saturated at INT64_MAX (a conv2d weight's four sides can pass 64 bits). */
int64_t nb_layer_param_numel(const nb_layer_param *p);

/* Builds layer i of the model on x, creating its tensors with their Sequential names; shapes
 * are the model's (nb_layers_shapes). An activation layer is computed by the op before it
 * when that op can (nb_activate: linear, conv2d and batchnorm layers), unless keep_input says
 * its input's values must stay as they are (they are traced): it is then an op of its own.
 * A maxpool2d layer likewise, after a batchnorm on images (nb_maxpool2d_fused).
 * Returns NULL with the graph's error set when the graph cannot build it. */
nb_node *nb_layer_build(nb_graph *g, const nb_layers *layers, const nb_shape *shapes, int i,
                        nb_node *x, int keep_input);

#endif
