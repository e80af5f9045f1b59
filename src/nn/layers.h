/*
 * The text form of a model and the layer table (issue 14, first increment).
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
 * Not yet used by nb_model_build or the command line: nb_layers_from_mlp gives today's models
 * (nb_model_spec) in this form, with exactly the tensors nb_model_build creates.
 */
#ifndef NABLA_NN_LAYERS_H
#define NABLA_NN_LAYERS_H

#include <stddef.h>

#include "nabla.h"

#define NB_LAYERS_MAX 64        /* layers in one model */
#define NB_LAYER_PARAMS_MAX 5   /* tensors of one layer (batchnorm's five) */
#define NB_LAYER_WIDTH_MAX 1000000   /* linear's and conv2d's out, as --layers' widths */
#define NB_LAYER_SIZE_MAX 4096       /* a kernel's, stride's or padding's side */

/* The rows of the table, in its order. */
typedef enum nb_layer_kind {
    NB_LAYER_LINEAR,
    NB_LAYER_CONV2D,
    NB_LAYER_MAXPOOL2D,
    NB_LAYER_AVGPOOL2D,
    NB_LAYER_FLATTEN,
    NB_LAYER_BATCHNORM,
    NB_LAYER_LAYERNORM,
    NB_LAYER_DROPOUT,
    NB_LAYER_RELU,
    NB_LAYER_LEAKY_RELU,
    NB_LAYER_TANH,
    NB_LAYER_SIGMOID,
    NB_LAYER_KINDS
} nb_layer_kind;

/* One layer with all its arguments resolved (defaults filled in). Pairs are {height, width}. */
typedef struct nb_layer {
    nb_layer_kind kind;
    int out;          /* linear, conv2d: output features or channels; linear: 0 = the classes */
    int kernel[2];    /* conv2d, maxpool2d, avgpool2d */
    int stride[2];    /* conv2d (default 1), pools (default the kernel) */
    int padding[2];   /* conv2d (default 0) */
    float p;          /* dropout: probability of zeroing, 0 <= p < 1 */
    float slope;      /* leaky_relu: negative slope (default 0.01, PyTorch's) */
} nb_layer;

typedef struct nb_layers {
    int n;
    nb_layer layer[NB_LAYERS_MAX];
} nb_layers;

/* The shape of one sample (no batch dimension): a vector {n} or an image {C, H, W}. */
typedef struct nb_shape {
    int ndim;         /* 1 or 3 */
    int dim[3];
} nb_shape;

nb_shape nb_shape_vector(int n);
nb_shape nb_shape_image(int c, int h, int w);
/* "784" or "1x28x28"; returns snprintf's count. */
int nb_shape_format(nb_shape s, char *buf, size_t cap);

/* How a tensor starts: filled with 0 or 1, or drawn at random from its fan-in and fan-out. */
typedef enum nb_layer_init { NB_INIT_ZEROS, NB_INIT_ONES, NB_INIT_RANDOM } nb_layer_init;

/* One tensor of a layer, as the Sequential's state_dict has it. */
typedef struct nb_layer_param {
    char name[32];          /* "3.weight" */
    nb_tensor_kind kind;    /* trained (param), saved state, or an int64 counter (0-dim) */
    int ndim;               /* 0 (the counter) to 4 (conv2d's weight) */
    int shape[4];
    nb_layer_init init;
    int fan_in, fan_out;    /* NB_INIT_RANDOM: in·kh·kw and out·kh·kw (PyTorch's); else 0 */
} nb_layer_param;

/* The table's row names ("conv2d"), or "?" for a kind outside it. */
const char *nb_layer_kind_name(nb_layer_kind kind);
/* The row's signature as documentation: "conv2d(out,kernel,stride=1,padding=0)". */
const char *nb_layer_signature(nb_layer_kind kind);

/* Parses the text form. Checks the syntax and each argument on its own (types, ranges); what
 * depends on the input (shapes, which linear may leave out its width) is nb_layers_shapes's.
 * Errors quote the layer and its position: "'conv2d(32,x)' at position 3: kernel must be ...". */
int nb_layers_parse(const char *text, nb_layers *out, nb_error *err);

/* The canonical text: defaults left out, arguments positional up to the first left out and by
 * name after it ("conv2d(32,3,padding=1)", "maxpool2d(2)", "linear"), numbers in the shortest
 * form that reads back the same. Returns the length, or -1 when it does not fit in cap (buf then
 * holds a truncated string) or a layer is invalid. Parsing the result gives the same layers. */
int nb_layer_format(const nb_layer *layer, char *buf, size_t cap);
int nb_layers_format(const nb_layers *layers, char *buf, size_t cap);

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

/* Today's model (hidden widths, one activation, the batch-norm flag; the input is the vector of
 * spec->inputs) in the text form: "256,128 relu --batchnorm" gives
 * linear(256),batchnorm,relu,linear(128),batchnorm,relu,linear. spec->trace_layer is not part
 * of the architecture and is ignored. */
int nb_layers_from_mlp(const nb_model_spec *spec, nb_layers *out, nb_error *err);

#endif
