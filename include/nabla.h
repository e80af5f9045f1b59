/*
 * nabla.h — the public API of libnabla, a small deep-learning training library in C11.
 *
 * Layers of the API, bottom to top:
 *   errors and random numbers      nb_error, nb_rng
 *   tensors and the graph          nb_tensor, nb_graph, nb_node: build a forward pass op by op,
 *                                  get gradients by reverse-mode automatic differentiation
 *   models                         nb_model: a sequence of layers (linear, conv2d, pools,
 *                                  norms, dropout, activations) as torch.nn.Sequential
 *   optimizers and schedules       nb_optimizer, nb_lr_at
 *   data                           nb_dataset: IDX, CSV, synthetic sets, splits, batches
 *   files                          safetensors in and out
 *   training                       nb_train: the loop, evaluation, NaN guard
 *   hyperparameter search          nb_search_space: spaces, random and grid points, coarse to
 *                                  fine narrowing, importance of each hyperparameter
 *
 * Conventions:
 *   - Functions that can fail return 0 on success and -1 on failure, and then fill an nb_error
 *     with a one-line message the caller can print. The library never exits or aborts on input.
 *   - All trainable parameters of a graph live in one flat float buffer, and all their gradients
 *     in a second one, so an optimizer step is one loop and a checkpoint is one write.
 *   - Activations are [batch, features] row-major float32; a dense weight is [out, in] as in
 *     torch.nn.Linear.
 */
#ifndef NABLA_H
#define NABLA_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NABLA_VERSION "0.1.0"

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct nb_error {
    char msg[512];
} nb_error;

/* Formats a message into err (when err is not NULL) and returns -1, so that a failing
 * function can end with `return nb_fail(err, "...", ...);`. */
int nb_fail(nb_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ------------------------------------------------------------------------------------------ */
/* Random numbers: xoshiro256** seeded through splitmix64. Deterministic on every platform.    */
/* ------------------------------------------------------------------------------------------ */

typedef struct nb_rng {
    uint64_t s[4];
} nb_rng;

void nb_rng_seed(nb_rng *r, uint64_t seed);
uint64_t nb_rng_next(nb_rng *r);
double nb_rng_uniform(nb_rng *r);          /* [0, 1) with 53 random bits */
double nb_rng_normal(nb_rng *r);           /* standard normal (Box–Muller, no cached value) */
uint32_t nb_rng_below(nb_rng *r, uint32_t n); /* uniform in [0, n), unbiased; n > 0 */
void nb_shuffle(nb_rng *r, int32_t *a, int n); /* Fisher–Yates */

/* ------------------------------------------------------------------------------------------ */
/* Tensors and the autodiff graph                                                              */
/* ------------------------------------------------------------------------------------------ */

#define NB_MAX_DIMS 4

typedef struct nb_tensor {
    int ndim;
    int shape[NB_MAX_DIMS];
    float *data;
} nb_tensor;

size_t nb_tensor_numel(const nb_tensor *t);

typedef struct nb_graph nb_graph;
typedef struct nb_node nb_node;

/* A graph is built once, then compiled for a largest batch size: compiling allocates every
 * value and gradient buffer from one arena, so forward and backward passes allocate nothing.
 * Batched nodes have a leading batch dimension whose size is chosen at each forward pass
 * (1..max_batch), so a last partial batch needs no new memory.
 *
 * Builder functions never fail loudly: on a shape mismatch or out of memory they return NULL
 * and record the first error in the graph; nb_graph_compile then reports it. Passing NULL
 * inputs to a builder returns NULL, so a chain of calls can be checked once at the end. */
nb_graph *nb_graph_new(void);
void nb_graph_free(nb_graph *g);

/* Leaves. */
nb_node *nb_input(nb_graph *g, int features);   /* batched float input [B, features] */
/* A batched float input whose sample has shape sample_shape (ndim 1..3): {C, H, W} gives
 * images [B, C, H, W]. nb_input(g, n) is nb_input_shape(g, 1, &n). */
nb_node *nb_input_shape(nb_graph *g, int ndim, const int *sample_shape);
nb_node *nb_labels(nb_graph *g);                /* batched int32 class labels [B] */
nb_node *nb_param(nb_graph *g, const char *name, int ndim, const int *shape); /* trainable */
nb_node *nb_state(nb_graph *g, const char *name, int ndim, const int *shape); /* saved, not trained */
/* Inputs carry no gradient unless asked (the first layer then skips a whole matrix product);
 * ask before compiling, e.g. to check gradients with respect to the data. */
void nb_input_requires_grad(nb_node *x);

/* Ops. Each has a forward and a backward function side by side in src/ops/. They run on the
 * library's threads (nb_set_threads). */
nb_node *nb_matmul(nb_graph *g, nb_node *x, nb_node *w);   /* x [B,in] · wᵀ, w [out,in] -> [B,out] */
nb_node *nb_bias_add(nb_graph *g, nb_node *x, nb_node *b); /* x [B,n] + b [n] */

/* The activations. NB_IDENTITY is for nb_dense only (a layer without activation). */
typedef enum nb_activation { NB_RELU, NB_LEAKY_RELU, NB_TANH, NB_SIGMOID, NB_IDENTITY } nb_activation;

/* A whole torch.nn.Linear layer and its activation in one op, the fast way to the same values
 * as nb_matmul -> nb_bias_add -> activation: act(x · wᵀ + b), with x [B,in], w [out,in],
 * b [out] or NULL for none; slope is used by NB_LEAKY_RELU. */
nb_node *nb_dense(nb_graph *g, nb_node *x, nb_node *w, nb_node *b, nb_activation act,
                  float slope);
nb_node *nb_relu(nb_graph *g, nb_node *x);
nb_node *nb_leaky_relu(nb_graph *g, nb_node *x, float slope);
nb_node *nb_tanh(nb_graph *g, nb_node *x);
nb_node *nb_sigmoid(nb_graph *g, nb_node *x);
/* act (not NB_IDENTITY) applied to x, computed by x's own op in the same passes when it can:
 * when x is the newest node of the graph and is the output of nb_dense (with NB_IDENTITY),
 * nb_conv2d or nb_batchnorm (for these two, not leaky relu with a slope <= 0, whose derivative
 * its output does not give). Then x itself is returned, its values from now on the activated
 * ones: use it only through the returned node. Otherwise this is nb_relu, nb_leaky_relu,
 * nb_tanh or nb_sigmoid of x. The values are the same either way; fused, a pass over the values
 * and one over the gradients are saved, and their memory. */
nb_node *nb_activate(nb_graph *g, nb_node *x, nb_activation act, float slope);
/* Batch normalization of x [B,n] over the batch (torch.nn.BatchNorm1d), or of x [B,C,H,W]
 * per channel over the batch and both spatial dimensions (torch.nn.BatchNorm2d; [B,C,L] is
 * BatchNorm1d's per channel over B and L). With n features or C channels, creates the
 * parameters "<prefix>.weight" (gamma, ones) and "<prefix>.bias" (beta, zeros), the states
 * "<prefix>.running_mean" (zeros) and "<prefix>.running_var" (ones), all of size n or C, and an
 * int64 counter "<prefix>.num_batches_tracked". Training mode normalizes with the batch mean
 * and biased variance and updates running = (1-momentum)*running + momentum*batch (unbiased
 * variance over the B·H·W values of a channel); inference mode uses the running statistics. */
nb_node *nb_batchnorm(nb_graph *g, nb_node *x, const char *prefix, float momentum, float eps);
/* Layer normalization of each sample of x over all its features (torch.nn.LayerNorm with
 * normalized_shape the sample's shape: [n] for x [B,n], [C,H,W] for x [B,C,H,W]): the sample's
 * mean and biased variance, y = (x - mean) / sqrt(var + eps) * weight + bias, with the
 * parameters "<prefix>.weight" (ones) and "<prefix>.bias" (zeros) shaped like a sample. The same
 * in training and inference mode (PyTorch's default eps is 1e-5). */
nb_node *nb_layernorm(nb_graph *g, nb_node *x, const char *prefix, float eps);
/* Inverted dropout of a batched x, 0 <= p < 1: in training mode each element is zeroed with
 * probability p and the others are scaled by 1/(1-p); in inference mode (and when p is 0),
 * y = x. The mask is a pure function of (the seed, the step, the row's position in the step's
 * global batch, the element's index in its sample, which dropout of the graph this is: the
 * dropouts are numbered in creation order), see nb_graph_set_step: it does not depend on the
 * thread count or on how a batch is split into passes or processes. Backward uses the mask of
 * the last forward pass. */
nb_node *nb_dropout(nb_graph *g, nb_node *x, float p);
/* a + b, elementwise, for two nodes of the same shape (a residual connection); a and b may be
 * the same node. */
nb_node *nb_add(nb_graph *g, nb_node *a, nb_node *b);
/* Ops on images x [B, C, H, W], as torch.nn's (float32, NCHW). Pairs are {height, width}.
 * A window of kernel k, stride s and padding p gives floor((H + 2p - k) / s) + 1 rows, likewise
 * columns; the kernel must fit the padded input, strides must be positive, paddings >= 0.
 *
 * torch.nn.Conv2d (zero padding, dilation 1, groups 1): w [O, C, kh, kw], b [O] or NULL for
 * none -> [B, O, Ho, Wo]. stride NULL means {1, 1}, padding NULL {0, 0}. */
nb_node *nb_conv2d(nb_graph *g, nb_node *x, nb_node *w, nb_node *b, const int stride[2],
                   const int padding[2]);
/* torch.nn.MaxPool2d and AvgPool2d with padding 0 and ceil_mode False -> [B, C, Ho, Wo].
 * stride NULL means the kernel (PyTorch's default). Max pooling's gradient goes to the first
 * maximum of each window in row-major order (a NaN counts as the maximum), as PyTorch's. */
nb_node *nb_maxpool2d(nb_graph *g, nb_node *x, const int kernel[2], const int stride[2]);
/* nb_maxpool2d's values, computed by x's own op when it can (as nb_activate does for an
 * activation): when x is the newest node, is nb_batchnorm's output on images (with or without
 * an nb_activate'd activation) and the windows do not overlap (stride >= kernel), the batch
 * norm pools its own output and x itself is returned, its values from now on the pooled ones:
 * the full-size output is then never stored, nor its gradient. Otherwise nb_maxpool2d. */
nb_node *nb_maxpool2d_fused(nb_graph *g, nb_node *x, const int kernel[2], const int stride[2]);
nb_node *nb_avgpool2d(nb_graph *g, nb_node *x, const int kernel[2], const int stride[2]);
/* torch.nn.Flatten: x [B, ...] -> [B, elements of a sample], in the same order. A view: it
 * shares x's value and gradient buffers, so it copies nothing either way. */
nb_node *nb_flatten(nb_graph *g, nb_node *x);
/* What a model learns to predict (--task). */
typedef enum nb_task {
    NB_TASK_CLASSIFICATION,   /* one class per sample: int32 labels, softmax cross-entropy */
    NB_TASK_REGRESSION,       /* one or more real targets per sample: float targets */
    NB_TASK_MULTILABEL,       /* one or more 0/1 labels per sample: float targets 0 or 1 */
    NB_TASKS
} nb_task;

const char *nb_task_name(nb_task t);                 /* "classification", ... */
int nb_task_parse(const char *s, nb_task *out);      /* 0 ok, -1 unknown */

/* The loss a model trains with (--loss); each is PyTorch's, averaged over the batch. */
typedef enum nb_loss {
    NB_LOSS_CROSS_ENTROPY,   /* classification: torch.nn.CrossEntropyLoss */
    NB_LOSS_MSE,             /* regression: torch.nn.MSELoss (mean over rows and targets) */
    NB_LOSS_L1,              /* regression: torch.nn.L1Loss */
    NB_LOSS_HUBER,           /* regression: torch.nn.HuberLoss(delta=1) */
    NB_LOSS_BCE,             /* multilabel: torch.nn.BCEWithLogitsLoss */
    NB_LOSSES
} nb_loss;

const char *nb_loss_name(nb_loss l);                 /* "cross_entropy", "mse", ... */
int nb_loss_parse(const char *s, nb_loss *out);      /* 0 ok, -1 unknown */
nb_task nb_loss_task(nb_loss l);                     /* the task a loss trains */
nb_loss nb_task_default_loss(nb_task t);             /* cross_entropy, mse, bce */

/* Mean over the batch of -log softmax(logits)[label], computed with log-sum-exp. Scalar. */
nb_node *nb_softmax_cross_entropy(nb_graph *g, nb_node *logits, nb_node *labels);
/* Mean over all elements of (pred - target)^2. target is a batched input of the same width. */
nb_node *nb_mse(nb_graph *g, nb_node *pred, nb_node *target);
/* The mean over all elements of an element-wise loss (NB_LOSS_MSE, NB_LOSS_L1, NB_LOSS_HUBER
 * with delta 1, NB_LOSS_BCE of logits pred against targets in [0, 1]), as PyTorch computes
 * MSELoss, L1Loss, HuberLoss and BCEWithLogitsLoss with reduction 'mean'. Scalar. */
nb_node *nb_elementwise_loss(nb_graph *g, nb_loss kind, nb_node *pred, nb_node *target);

int nb_graph_compile(nb_graph *g, int max_batch, nb_error *err);
int nb_graph_max_batch(const nb_graph *g);

/* After compiling: the flat buffers. */
float *nb_graph_params(nb_graph *g, size_t *count);
float *nb_graph_grads(nb_graph *g, size_t *count);
/* A second parameter buffer, for a trainer that steps the weights from one buffer into the
 * other (nb_optimizer_step_to) and so always has the weights from before the last step.
 * reserve allocates it (a copy of the current weights); swap makes it the current one (every
 * parameter node then reads it, and nb_graph_params returns it) and the current the spare. */
int nb_graph_reserve_spare_params(nb_graph *g, nb_error *err);
float *nb_graph_spare_params(nb_graph *g);
void nb_graph_swap_params(nb_graph *g);

/* Training mode (batch statistics, running averages updated, dropout) or inference mode. */
void nb_graph_set_training(nb_graph *g, int training);
/* What the random masks of dropout are drawn from in the forward passes that follow (until the
 * next call; each backward pass uses its forward pass's): the run's seed, the number of the
 * training step, and row0, the position in the step's global batch of the pass's first row
 * (0 unless a batch is split into several passes or processes). nb_train sets it before every
 * step (its seed, the optimizer steps taken so far, and each rank's first row). A program that
 * runs training passes itself should call it before each step with a new step number: the
 * masks of two passes with the same three numbers are the same. All zero until set. */
void nb_graph_set_step(nb_graph *g, uint64_t seed, int64_t step, int64_t row0);

/* Runs every op in order for the first `batch` rows of the inputs. */
void nb_graph_forward(nb_graph *g, int batch);
/* Zeroes every gradient, seeds d(loss)/d(loss) = 1 and runs the backward functions in
 * reverse order. Parameter gradients land in the flat gradient buffer. */
void nb_graph_backward(nb_graph *g, nb_node *loss);

/* Access to a node's buffers (valid after compile). For a batched node, shape[0] is the batch
 * of the last forward pass (max_batch before any). */
nb_tensor nb_node_value(const nb_node *n);
nb_tensor nb_node_grad(const nb_node *n);         /* data NULL for nodes without gradient */
int32_t *nb_node_labels(const nb_node *n);        /* the int32 buffer of an nb_labels node */
float nb_node_scalar(const nb_node *n);           /* value[0], e.g. a loss */

/* Named tensors: every nb_param and nb_state in creation order, and batch-norm counters. */
typedef enum nb_tensor_kind { NB_KIND_PARAM, NB_KIND_STATE, NB_KIND_COUNTER } nb_tensor_kind;
typedef struct nb_named {
    const char *name;
    nb_tensor_kind kind;
    nb_node *node;      /* NB_KIND_PARAM and NB_KIND_STATE */
    int64_t *counter;   /* NB_KIND_COUNTER: a scalar int64 (num_batches_tracked) */
} nb_named;
int nb_graph_named_count(const nb_graph *g);
nb_named nb_graph_named(const nb_graph *g, int i);
nb_named *nb_graph_find(const nb_graph *g, const char *name, nb_named *out); /* NULL if absent */

/* Central finite differences against the analytic gradient of `loss` with respect to every
 * element of every nb_param and every batched nb_input. Runs forward passes in the current
 * mode. Returns the largest relative error max|a-n| / max(1e-3, |a|+|n|) (see graph.c). */
double nb_gradcheck(nb_graph *g, nb_node *loss, int batch, double step);

/* ------------------------------------------------------------------------------------------ */
/* Models: a sequence of layers, as torch.nn.Sequential builds them                             */
/* ------------------------------------------------------------------------------------------ */

/* A model is written as a sequence of layers, each with PyTorch's arguments:
 *
 *     conv2d(32,3,padding=1),batchnorm,relu,maxpool2d(2),flatten,linear(128),relu,dropout(0.5),linear
 *
 * A layer's position is its index in the equivalent torch.nn.Sequential, so its tensors are
 * named "<index>.weight", "<index>.bias", "<index>.running_mean", ... as in that Sequential's
 * state_dict. The layers and their arguments (positional in PyTorch's order, or by name):
 *   linear(out)                              torch.nn.Linear; the last linear may leave out
 *                                            out, which is then the number of classes
 *   conv2d(out,kernel,stride=1,padding=0)    torch.nn.Conv2d; sizes are N or HxW ("3x5")
 *   maxpool2d(kernel,stride=kernel)          torch.nn.MaxPool2d
 *   avgpool2d(kernel,stride=kernel)          torch.nn.AvgPool2d
 *   flatten                                  torch.nn.Flatten: an image becomes a vector
 *   batchnorm                                BatchNorm1d after a vector, BatchNorm2d after an
 *                                            image (momentum 0.1, eps 1e-5)
 *   layernorm                                torch.nn.LayerNorm(the input's shape)
 *   dropout(p)                               torch.nn.Dropout (inverted dropout)
 *   relu, leaky_relu(slope=0.01), tanh, sigmoid
 * A linear or conv2d layer directly followed by batchnorm has no bias (the normalization's
 * shift makes it redundant). */

#define NB_LAYERS_MAX 64     /* layers in one model */
#define NB_MAX_LAYERS 16     /* hidden layers of an nb_mlp */

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
int64_t nb_shape_numel(nb_shape s);   /* saturates at INT64_MAX; 0 for a side below 1 */
/* "784" or "1x28x28"; returns snprintf's count. */
int nb_shape_format(nb_shape s, char *buf, size_t cap);
/* "N", "CxHxW" or "C,H,W": whole numbers from 1 in plain digits (no sign, no leading zero),
 * at most INT_MAX elements in all. 0, or -1 when s is not one of those. */
int nb_shape_parse(const char *s, nb_shape *out);

/* Parses the text form. Checks the syntax and each argument on its own; what depends on the
 * input (shapes) is checked by nb_model_spec_parse and nb_model_build. Errors quote the layer
 * and its position: "'conv2d(32,x)' at position 3: kernel must be ...". */
int nb_layers_parse(const char *text, nb_layers *out, nb_error *err);
/* The canonical text: defaults left out, arguments positional up to the first left out and by
 * name after it ("conv2d(32,3,padding=1)"), numbers in the shortest form that reads back the
 * same. Returns the length, or -1 when it does not fit in cap or a layer is invalid. */
int nb_layers_format(const nb_layers *layers, char *buf, size_t cap);
/* Room for the canonical text of any model. */
#define NB_LAYERS_TEXT_MAX (NB_LAYERS_MAX * 64)

const char *nb_activation_name(nb_activation a);
int nb_activation_parse(const char *s, nb_activation *out); /* 0 ok, -1 unknown */

typedef struct nb_model_spec {
    nb_shape input;             /* one sample's shape */
    int classes;                /* outputs of the model: classes, or target columns */
    nb_task task;
    nb_loss loss;
    nb_layers layers;
    /* Activation layer (1-based, counting only relu, leaky_relu, tanh and sigmoid layers;
     * 0: none) whose input, the pre-activation, the model keeps as a node of its own,
     * nb_model.pre_activation, to be looked at after a forward pass. A linear layer directly
     * before it is then built without the fused activation, which follows as an op of its
     * own: the same numbers, bit for bit. Not part of the architecture: not saved. */
    int trace_layer;
} nb_model_spec;

/* spec from a model's text, its input shape and its classes, with the shapes checked through
 * every layer ("'conv2d(64,5)' at position 4: input 64x3x3 is smaller than the kernel 5x5"). */
int nb_model_spec_parse(nb_model_spec *spec, const char *layers, nb_shape input, int classes,
                        nb_error *err);

/* A multilayer perceptron the short way: hidden widths, one activation, and a batch norm after
 * each hidden linear layer or none. nb_model_spec_mlp gives its layers:
 * {256,128} relu batchnorm is linear(256),batchnorm,relu,linear(128),batchnorm,relu,linear. */
typedef struct nb_mlp {
    int inputs;                 /* features of one sample */
    int classes;
    int n_hidden;               /* number of hidden blocks, 0..NB_MAX_LAYERS */
    int hidden[NB_MAX_LAYERS];  /* width of each */
    nb_activation activation;
    float leaky_slope;          /* for NB_LEAKY_RELU; 0.01 as in PyTorch */
    int batchnorm;              /* a BatchNorm1d after each hidden linear layer */
} nb_mlp;
int nb_model_spec_mlp(nb_model_spec *spec, const nb_mlp *mlp, nb_error *err);
/* Parses "256,128" into mlp->hidden / n_hidden ("" or "none" gives no hidden layer). */
int nb_parse_layers(const char *s, nb_mlp *mlp, nb_error *err);

typedef struct nb_model {
    nb_model_spec spec;
    nb_graph *graph;
    nb_node *x;        /* input [B, sample shape] */
    nb_node *y;        /* classification: labels [B]; otherwise the targets [B, outputs] */
    nb_node *logits;   /* the last layer's output [B, outputs] */
    nb_node *loss;     /* spec.loss of logits and y, scalar */
    nb_node *pre_activation; /* input of activation layer spec.trace_layer; NULL when 0 */
    /* Input standardization (CSV --normalize standard); NULL when none. Applied by the caller
     * to data before batches are formed (nb_dataset_normalize). Owned by the model. */
    float *norm_mean, *norm_std;
    /* Regression: the model learns (target - target_mean) / target_std and its outputs are
     * brought back to the data's units by predict and the metrics; NULL when the targets are
     * used as they are. One value per output. Owned by the model. */
    float *target_mean, *target_std;
    /* How a table (CSV) training set was read; NULL for other sets. Owned by the model. */
    struct nb_table *table;
} nb_model;

/* Builds and compiles the graph, layer by layer, with torch.nn.Sequential's tensor names.
 * Weights of linear and conv2d layers are drawn from nb_rng seeded with `seed`, layer after
 * layer: He normal (std sqrt(2/fan_in), gain corrected for a leaky slope) when the activation
 * that follows the layer is in the relu family, Xavier normal (std sqrt(2/(fan_in+fan_out)))
 * for tanh and sigmoid; the last layer, which no activation follows, takes the model's last
 * activation before it, and a model without activations He's. fan_in is in_features or
 * in_channels·kh·kw, fan_out out_features or out_channels·kh·kw. Biases 0; batch and layer
 * norm weights 1, biases 0, running means 0 and variances 1. */
int nb_model_build(nb_model *m, const nb_model_spec *spec, int max_batch, uint64_t seed,
                   nb_error *err);
void nb_model_free(nb_model *m);
/* The features of one sample: the input shape's elements (C·H·W for an image). */
int nb_model_features(const nb_model_spec *spec);

/* ------------------------------------------------------------------------------------------ */
/* Optimizers (exact equations in DESIGN.md and src/train/optim.c) and learning-rate schedules        */
/* ------------------------------------------------------------------------------------------ */

typedef enum nb_optimizer_kind {
    NB_SGD, NB_MOMENTUM, NB_NESTEROV, NB_RMSPROP, NB_ADAM, NB_ADAMW
} nb_optimizer_kind;

const char *nb_optimizer_name(nb_optimizer_kind k);
int nb_optimizer_parse(const char *s, nb_optimizer_kind *out);

typedef struct nb_optim_config {
    nb_optimizer_kind kind;
    float beta;           /* momentum / Adam beta1 */
    float beta2;          /* RMSprop and Adam second-moment decay */
    float eps;
    float weight_decay;   /* L2 added to the gradient; decoupled for AdamW */
    int bias_correction;  /* momentum only: divide v by 1 - beta^t */
} nb_optim_config;

typedef struct nb_optimizer {
    nb_optim_config cfg;
    size_t n;
    float *v;      /* first moment / velocity (NULL for sgd) */
    float *s;      /* second moment (rmsprop, adam, adamw) */
    int64_t t;     /* steps taken */
} nb_optimizer;

int nb_optimizer_init(nb_optimizer *o, const nb_optim_config *cfg, size_t n, nb_error *err);
void nb_optimizer_free(nb_optimizer *o);
/* One step over the flat buffers: w -= update(g) at learning rate lr. */
void nb_optimizer_step(nb_optimizer *o, float *w, const float *g, float lr);
/* The same, reading the weights from w and writing the stepped ones to out (n floats; out may
 * be w). A trainer that steps from one buffer into another keeps the weights from before the
 * step at no extra cost (see nb_graph_swap_params). */
void nb_optimizer_step_to(nb_optimizer *o, const float *w, const float *g, float lr, float *out);

typedef enum nb_decay_kind {
    NB_DECAY_NONE, NB_DECAY_INVERSE, NB_DECAY_EXP, NB_DECAY_INVERSE_SQRT,
    NB_DECAY_INTERVAL, NB_DECAY_STEP, NB_DECAY_COSINE
} nb_decay_kind;

const char *nb_decay_name(nb_decay_kind k);
int nb_decay_parse(const char *s, nb_decay_kind *out);

typedef struct nb_schedule {
    nb_decay_kind kind;
    float lr;             /* base learning rate, the rate of epoch 0 */
    float rate;           /* k: decay rate */
    int interval;         /* epochs per step of interval and step decay */
    int warmup_epochs;    /* linear warm-up: epoch e < w runs at lr*(e+1)/w; decay starts after */
    int epochs;           /* the horizon of cosine decay: it decays over epochs 0 to epochs - 1
                             and holds the rate of epoch epochs - 1 after them; the other kinds
                             ignore it. Usually the run's epochs (nb_train_config.epochs). */
} nb_schedule;

/* The learning rate of epoch e (counted from 0). */
float nb_lr_at(const nb_schedule *s, int epoch);
/* Checks a schedule: lr > 0 and finite; rate >= 0 for inverse and interval decay, rate in (0, 1]
 * for exp and step decay; interval >= 1 for interval and step decay; warmup_epochs >= 0;
 * epochs (the horizon) >= 1 for cosine decay. */
int nb_schedule_validate(const nb_schedule *s, nb_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Data                                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* One column of a table (CSV) data set, as training read it. Kept with the model, so that
 * new rows (predict, eval, --test) are read and encoded the same way. */
typedef enum nb_column_kind {
    NB_COLUMN_NUMBER,        /* a numeric feature: one input */
    NB_COLUMN_CATEGORY,      /* a non-numeric feature: one-hot, one input per category */
    NB_COLUMN_TARGET,        /* a target column (what --target picked) */
    NB_COLUMN_KINDS
} nb_column_kind;

typedef struct nb_column {
    char *name;              /* its header field; NULL when the file had no header */
    nb_column_kind kind;
    int n_categories;        /* NB_COLUMN_CATEGORY: the categories, in one-hot order */
    char **categories;
    int imputed;             /* a missing value of this feature becomes `fill` (--missing mean) */
    float fill;
} nb_column;

typedef struct nb_table {
    int n_columns;           /* the file's columns, in file order */
    nb_column *columns;
    int header;              /* the file had a header line */
    char delimiter;          /* ',' ';' or '\t' */
    /* Classification: the name of each class as the data wrote it ("setosa", "3"), in class
     * order; n_classes == the data set's classes. 0 / NULL for other tasks. */
    int n_classes;
    char **class_names;
} nb_table;

void nb_table_free(nb_table *t);
/* A deep copy of src into dst (dst's old contents are not freed). */
int nb_table_copy(nb_table *dst, const nb_table *src, nb_error *err);

typedef struct nb_dataset {
    int n;              /* samples */
    int features;
    int classes;        /* classification: the number of classes (1 + the largest label) */
    uint8_t *pixels;    /* n*features bytes, images; become floats in [0,1] per batch */
    float *values;      /* n*features floats, otherwise (exactly one of the two is set) */
    nb_task task;
    int32_t *labels;    /* classification: n class indices 0..classes-1; NULL otherwise */
    int targets;        /* regression, multilabel: target columns; 0 for classification */
    float *target;      /* regression, multilabel: n*targets values (multilabel: 0 or 1) */
    int header;         /* CSV: its first line was a header (not a sample); else 0 */
    nb_shape image;     /* IDX: one sample is the image 1xHxW; ndim 0 for other sets */
    nb_table *table;    /* CSV: how its columns were read (owned); NULL for other sets */
} nb_dataset;

#define NB_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* A directory of IDX files train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz] and the
 * t10k-* pair. test may be NULL; if the t10k files are absent, test->n is 0. */
int nb_load_idx_dir(const char *dir, nb_dataset *train, nb_dataset *test, nb_error *err);
/* One IDX image file alone (to predict): no labels, classes 0. */
int nb_load_idx_images(const char *images, nb_dataset *out, nb_error *err);
/* One IDX image file and its label file (gz or not, detected by magic). */
int nb_load_idx(const char *images, const char *labels, nb_dataset *out, nb_error *err);
/* A CSV file as nb_read_csv reads it with zeroed options. */
int nb_load_csv(const char *path, nb_dataset *out, nb_error *err);
/* How to read a CSV file (nb_read_csv). Zeroed, it reads as nb_load_csv does: header and
 * delimiter detected, the last column a class label, missing values refused. */
typedef enum nb_missing {
    NB_MISSING_REFUSE,       /* an empty or NA field is an error naming file, line, column */
    NB_MISSING_DROP,         /* rows with a missing value are left out */
    NB_MISSING_MEAN,         /* a missing numeric feature becomes the column's mean (training);
                                a missing category gets no one-hot bit */
    NB_MISSING_KINDS
} nb_missing;

typedef struct nb_csv_options {
    nb_task task;
    /* The target column(s): comma-separated header names or 0-based indices; NULL or "" for
     * the last column. Regression and multilabel may name several. */
    const char *target;
    int header;              /* -1 or 0: detect; 1 yes; 2 no (a first line is data) */
    char delimiter;          /* 0: detect among ',' ';' '\t'; else that byte */
    nb_missing missing;
    int allow_many_classes;  /* classification: take a target that looks like a regression
                                target (non-integer numbers, very many distinct values) */
    /* Read new rows the way `like` (a training set's table) was read: its columns matched by
     * header name (by position without a header), its categories and classes, its fills.
     * Target columns may be absent (predict): the set then has no labels / targets. */
    const nb_table *like;
} nb_csv_options;

/* A CSV file, "-" for standard input (a FIFO or pipe works too: read to its end), plain or
 * gzip'd (detected by its bytes). UTF-8 text (a byte order mark is skipped; UTF-16, UTF-32 and
 * binary files are refused, named for what they look like); fields separated by ',' ';' or a
 * tab, RFC 4180 quotes, an optional header line. Every refusal names the file, the line and the
 * column. out->table says how the columns were read (categories, classes, fills): give it as
 * `like` to read other files (test set, new rows) the same way. The rules for column kinds,
 * classes and missing values are in src/data/csv_columns.c and the README. */
int nb_read_csv(const char *path, const nb_csv_options *o, nb_dataset *out, nb_error *err);
/* The same two parsers on bytes in memory (gzip'd IDX too; the bytes are not kept). The
 * `what` strings name the sources in messages, as the paths do (NULL: "images", "labels",
 * "csv"). */
int nb_parse_idx(const void *images, size_t images_size, const char *images_what,
                 const void *labels, size_t labels_size, const char *labels_what,
                 nb_dataset *out, nb_error *err);
int nb_parse_csv(const void *text, size_t size, const char *what, nb_dataset *out,
                 nb_error *err);
/* nb_read_csv on bytes in memory (options NULL: zeroed). */
int nb_parse_csv_with(const void *text, size_t size, const char *what, const nb_csv_options *o,
                      nb_dataset *out, nb_error *err);
/* The course's planar sets: "moons", "circles", "spirals"; 2 features, 2 classes (spirals:
 * 3 classes). Seeded; noise is the standard deviation of Gaussian noise added. */
int nb_make_synthetic(const char *kind, int n, float noise, uint64_t seed, nb_dataset *out,
                      nb_error *err);
int nb_is_synthetic(const char *name);

/* Moves a seeded random fraction of `from` into `dev` (round(fraction*n) samples, at least one
 * left in each when fraction > 0): their features, labels and targets; dev gets a copy of the
 * rest (task, classes, targets, header, table). fraction 0 leaves dev empty. */
int nb_dataset_split(nb_dataset *from, float fraction, uint64_t seed, nb_dataset *dev,
                     nb_error *err);
void nb_dataset_free(nb_dataset *d);

/* Per-feature mean and standard deviation (population; a std of 0, or below FLT_MIN, the
 * smallest normal float, is replaced by 1). */
void nb_dataset_stats(const nb_dataset *d, float *mean, float *std);
/* The same for each target column of a regression or multilabel set (targets entries). */
void nb_dataset_target_stats(const nb_dataset *d, float *mean, float *std);
/* values = (values - mean) / std, in place (float datasets only). */
void nb_dataset_normalize(nb_dataset *d, const float *mean, const float *std);
/* 0 if every value is finite, else -1 with a message naming the sample and feature. */
int nb_dataset_check_finite(const nb_dataset *d, const char *what, nb_error *err);

/* Copies samples index[0..n) into x [n, features] (bytes scaled to [0,1]) and y [n]. */
void nb_dataset_batch(const nb_dataset *d, const int32_t *index, int n, float *x, int32_t *y);

/* ------------------------------------------------------------------------------------------ */
/* safetensors                                                                                 */
/* ------------------------------------------------------------------------------------------ */

typedef enum nb_dtype { NB_F32, NB_I64 } nb_dtype;

typedef struct nb_st_tensor {
    char *name;
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    const void *data;   /* little-endian bytes inside the file's buffer (or the caller's) */
    size_t nbytes;
} nb_st_tensor;

typedef struct nb_st_meta {
    char *key, *value;
} nb_st_meta;

typedef struct nb_st_file {
    int n_tensors;
    nb_st_tensor *tensors;
    int n_meta;
    nb_st_meta *meta;
    unsigned char *buffer;   /* the whole file, owned (NULL after nb_st_open) */
    size_t size;             /* the file's size */
    void *source;            /* nb_st_open: the open file the tensors' bytes are read from */
} nb_st_file;

/* Reads and validates a whole file: header length, JSON, dtypes, shapes, offsets within the
 * data section, no overlap, no gaps. Tensors of other dtypes are refused. The header is read
 * and checked against the file's size first: a file larger than its tensors (padded, with
 * anything appended) is refused before its data is read. */
int nb_st_read(const char *path, nb_st_file *out, nb_error *err);
/* The same checks, reading the header only: the tensors' data stay NULL, and their bytes are
 * read from the file (kept open until nb_st_free) by nb_st_tensor_bytes, straight where they
 * are wanted. For files as large as the memory they go into (a checkpoint). */
int nb_st_open(const char *path, nb_st_file *out, nb_error *err);
/* n bytes of tensor t of f from `offset` in its data, into dst: from memory, or from the file
 * of nb_st_open. */
int nb_st_tensor_bytes(const nb_st_file *f, const nb_st_tensor *t, uint64_t offset, size_t n,
                       void *dst, nb_error *err);
/* The same from memory (the bytes are copied). */
int nb_st_parse(const void *bytes, size_t size, const char *what, nb_st_file *out, nb_error *err);
void nb_st_free(nb_st_file *f);
/* Frees the file's bytes and tensors, keeping its metadata (which nb_st_free frees later). */
void nb_st_drop_tensors(nb_st_file *f);
const nb_st_tensor *nb_st_find(const nb_st_file *f, const char *name);
const char *nb_st_meta_get(const nb_st_file *f, const char *key);
/* Writes tensors and metadata to path atomically (temporary file, fsync, rename, fsync dir). */
int nb_st_write(const char *path, const nb_st_tensor *tensors, int n_tensors,
                const nb_st_meta *meta, int n_meta, nb_error *err);

/* A model's weights: every named tensor of its graph, with the architecture (and input
 * normalization) in __metadata__ so that nb_model_load needs nothing else. */
int nb_model_save(const nb_model *m, const char *path, nb_error *err);
/* Builds a model from a file written by nb_model_save (or one with the same metadata). */
int nb_model_load(nb_model *m, const char *path, int max_batch, nb_error *err);
/* The architecture (and task) of a model file and the table it was trained on (NULL when it
 * was not trained on a CSV file; else nb_table_free and free it), from the file's header alone:
 * what a program needs to read data for the model before building it. */
int nb_model_load_info(const char *path, nb_model_spec *spec, struct nb_table **table,
                       nb_error *err);
/* A model from a file without nabla's metadata (a plain state_dict saved from PyTorch, as
 * safetensors), its architecture given: the model's text `layers` on samples of shape `input`
 * (ndim 0: a vector, as wide as the file's first linear layer takes), for `task` with its
 * default loss; the outputs are those of the file's last linear layer. Every tensor of the
 * model must be in the file with its shape. No input normalization or target scaling. */
int nb_model_load_state_dict(nb_model *m, const char *path, const char *layers, nb_shape input,
                             nb_task task, int max_batch, nb_error *err);
/* Copies weights from a file into an already built model; every tensor of the model must be
 * present with the same shape (a state_dict saved from the equivalent torch Sequential). */
int nb_model_load_weights(nb_model *m, const char *path, nb_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Training                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* The metrics of a model on a data set. Which are set depends on the model's task; the others
 * are 0. */
typedef struct nb_eval_result {
    nb_task task;            /* the model's */
    int n;
    double loss;             /* the training loss, averaged over samples */
    double accuracy;         /* classification: correct classes; multilabel: correct labels
                                (per label, averaged over labels and samples) */
    /* Regression, in the data's units, over every target column: */
    double mse, rmse, mae;
    double r2;               /* 1 - SSE/SST, averaged over target columns (as sklearn) */
    /* Multilabel: */
    double micro_f1, macro_f1;
} nb_eval_result;

/* The metrics of the model's task on a whole dataset, in inference mode, batch by batch. */
int nb_evaluate(nb_model *m, const nb_dataset *d, nb_eval_result *out, nb_error *err);
/* A classifier's confusion matrix on d: counts[t * classes + p] samples of true class t were
 * predicted p (classes = the model's), in inference mode. */
int nb_evaluate_confusion(nb_model *m, const nb_dataset *d, int64_t *counts, nb_error *err);
/* Class c's precision (of the samples predicted c, the share that are c), recall (of the
 * samples of c, the share predicted c), F1 (their harmonic mean) and support (samples of c)
 * from a confusion matrix; a ratio of 0/0 is 0, as scikit-learn's zero_division=0. */
typedef struct nb_class_scores {
    double precision, recall, f1;
    int64_t support;
} nb_class_scores;
nb_class_scores nb_class_scores_of(const int64_t *counts, int classes, int c);
/* The predicted class (the largest logit; ties go to the lower class) of each of n samples
 * x [n, inputs] (floats, already normalized as the model expects), into classes [n]; in
 * inference mode, batch by batch, as nb_evaluate scores them (src/nn/predict.c). */
int nb_model_predict(nb_model *m, const float *x, int n, int32_t *classes, nb_error *err);
/* The model's answer for each of n raw samples x [n, inputs] (as the data holds them: the
 * model's input normalization is applied here), into out [n, outputs]: the probability of
 * each class (softmax), of each label (multilabel: sigmoid), or the value of each target
 * (regression, in the targets' units). In inference mode, batch by batch. */
int nb_model_predict_values(nb_model *m, const float *x, int n, float *out, nb_error *err);
/* The same for every sample of a data set (images too: bytes become floats in [0, 1]); its
 * labels or targets, if any, are not read. */
int nb_model_predict_dataset(nb_model *m, const nb_dataset *d, float *out, nb_error *err);

/* The metrics of nb_eval_result by name: what early stopping watches (nb_train_config.monitor),
 * and what programs print. Each is a row of one table (src/nn/metric_names.c): its name, its
 * field, whether higher is better, and the tasks that have it. */
typedef enum nb_metric {
    NB_METRIC_LOSS,        /* every task; lower is better */
    NB_METRIC_ACCURACY,    /* classification, multilabel; higher */
    NB_METRIC_MSE,         /* regression; lower */
    NB_METRIC_RMSE,        /* regression; lower */
    NB_METRIC_MAE,         /* regression; lower */
    NB_METRIC_R2,          /* regression; higher */
    NB_METRIC_MICRO_F1,    /* multilabel; higher */
    NB_METRIC_MACRO_F1,    /* multilabel; higher */
    NB_METRICS
} nb_metric;

const char *nb_metric_name(nb_metric m);          /* "loss", "accuracy", "rmse", ... */
int nb_metric_parse(const char *s, nb_metric *out); /* 0 ok, -1 unknown */
int nb_metric_higher_is_better(nb_metric m);
/* Whether a model of this task has the metric (accuracy: not for regression). */
int nb_metric_applies(nb_metric m, nb_task task);
/* The metric's value in r. */
double nb_metric_value(nb_metric m, const nb_eval_result *r);
/* The names of the metrics a task has, ", "-separated, for messages ("loss, accuracy"). */
void nb_metric_names(nb_task task, char *buf, size_t cap);

typedef struct nb_epoch_metrics {
    nb_task task;                        /* the model's: which metrics are set */
    int epoch;
    float lr;
    double train_loss, train_accuracy;   /* running averages over the epoch's batches; no
                                            accuracy (0) for regression */
    nb_eval_result dev, test;            /* n == 0 when the split is absent */
    double seconds;
    /* With early stopping (else -1 and 0): the best epoch so far, this one included (0-based,
     * -1 while no epoch has a finite value), and whether the run stops after this epoch for
     * want of improvement. */
    int best_epoch;
    int stops_early;
} nb_epoch_metrics;

typedef struct nb_progress {
    int epoch, epochs;
    int64_t batch, batches;      /* within the epoch */
    double loss;                 /* running mean over the epoch so far */
    float lr;
    double samples_per_second;   /* over the time in steps, as train_seconds */
    double elapsed;              /* wall-clock seconds in this epoch (in this call) */
    int64_t timed_batches;       /* the batches elapsed covers: fewer than batch after a resume
                                    in the middle of the epoch */
} nb_progress;

/* Where a training run stands between two steps: with the model's weights and batch-norm
 * statistics (which live in the model), everything nb_train needs to continue the run exactly
 * as if it had not stopped. Checkpoints save it (nb_checkpoint_save). */
typedef struct nb_train_state {
    int epoch;               /* the epoch in progress, from 0 */
    int64_t batch;           /* batches of it done; 0: not started (its shuffle is still to come) */
    int64_t steps, samples;  /* in all, over every epoch so far */
    double train_seconds;
    double loss_sum;         /* the epoch in progress: sum of batch loss x batch size, */
    int64_t correct, seen;   /* correct predictions and samples seen */
    nb_rng rng;              /* the data-order stream */
    int n;                   /* training samples */
    int32_t *order;          /* the data order: n sample indices */
    nb_optimizer opt;        /* moments and step count */
    /* Early stopping (nb_train_config.early_stop): the best epoch so far (0-based; -1: none
     * yet), its monitored dev value, the epochs finished since it, and the model as that epoch
     * left it: its parameters (laid out as the graph's flat buffer), its other state tensors
     * (batch norm's running statistics, the graph's flat buffer of them) and its counters
     * (num_batches_tracked, in the order of the graph's named tensors). NULL without early
     * stopping; nb_train allocates them, nb_checkpoint_restore when the checkpoint has them. */
    int best_epoch;
    double best_value;
    int since_best;
    float *best_params, *best_states;
    int64_t *best_counters;
} nb_train_state;

/* A fresh state (epoch 0, identity order, zero moments, no best epoch) for n_samples training
 * samples and an optimizer over n_params parameters. Free it with nb_train_state_free. */
int nb_train_state_init(nb_train_state *s, const nb_optim_config *optim, size_t n_params,
                        int n_samples, nb_error *err);
void nb_train_state_free(nb_train_state *s);

/* Data-parallel training: the processes ("ranks") of a job each train the same model on their
 * own shard of every global mini-batch, and sum through a communicator the caller provides
 * (the nabla program implements it with MPI; the library itself knows nothing of MPI). Every
 * function is collective: all ranks call it in the same order. Each returns 0, or -1 with err
 * (a lost rank, say), after which the job cannot go on.
 * nb_train calls them from the thread that called it only (for MPI, MPI_THREAD_FUNNELED is
 * enough), with n possibly above INT_MAX for a large model. A sum must give every rank the
 * same bits (MPI_Allreduce's algorithms do; Reduce then Bcast guarantees it): the ranks'
 * weights stay equal only so. Summing in the same order every time makes runs reproducible.
 * src/train/train.c lists the calls a training step makes. */
typedef struct nb_comm {
    int rank, size;          /* this process's index, 0 .. size-1, and their number */
    void *user;              /* passed to the functions */
    /* In place: the element-wise sum over all ranks of their n values, on every rank. */
    int (*sum_floats)(void *user, float *data, size_t n, nb_error *err);
    int (*sum_doubles)(void *user, double *data, size_t n, nb_error *err);
    /* In place: rank 0's n bytes, on every rank. */
    int (*broadcast)(void *user, void *data, size_t n, nb_error *err);
} nb_comm;

typedef struct nb_train_config {
    nb_optim_config optim;
    nb_schedule schedule;
    int batch_size;          /* 0 means the whole training set (batch gradient descent) */
    int epochs;
    int64_t max_steps;       /* stop after this many steps in all (0: no limit) */
    int shuffle;
    uint64_t seed;
    /* Called after every batch (may be NULL); return non-zero to stop early. */
    int (*on_batch)(const nb_progress *p, void *user);
    /* Called after every epoch (may be NULL); return non-zero to stop early. */
    int (*on_epoch)(const nb_epoch_metrics *m, void *user);
    /* Called with the state at the end of every epoch (after on_epoch), every
     * checkpoint_every steps (0: at epoch ends only) and when *stop ends the run (may be
     * NULL). The state is nb_train's own, valid during the call. Non-zero stops training and
     * nb_train returns -1 (the callback's error, in err if it filled it). */
    int (*on_checkpoint)(const nb_train_state *s, void *user, nb_error *err);
    int64_t checkpoint_every;
    /* Continue the run this state describes (the model holding its weights) rather than
     * start one; NULL to start. The state must match the data and the optimizer. Training
     * goes on in it (its moments and order are used and updated in place, not copied: a
     * resumed run needs no more memory than the run did); it stays the caller's to free. */
    nb_train_state *resume;
    /* Checked between steps; when it becomes non-zero, training stops there, after an
     * on_checkpoint call, and result->interrupted is set. For signal handlers; may be NULL. */
    volatile sig_atomic_t *stop;
    void *user;
    /* Data-parallel training across the ranks of comm (NULL: this process alone). batch_size
     * stays the global mini-batch: rank r trains on rows [B*r/size, B*(r+1)/size) of each, the
     * gradients are summed weighted by each shard's share, and every rank takes the same step.
     * sync_batchnorm: batch norm uses the statistics of the whole global batch (the result
     * equals one process's); otherwise each rank its own shard's (as PyTorch's
     * DistributedDataParallel does), and every rank keeps rank 0's running statistics
     * (broadcast after every step).
     * Rank 0's run is broadcast at the start (weights, statistics, optimizer state, data
     * order, position), so initial weights and `resume` count on rank 0 only. Losses,
     * accuracies, counts and the NaN guard are the global batch's, the same on every rank;
     * dev and test are evaluated in shards, one per rank, and summed. Every callback is called
     * on every rank with the same values (the caller decides which rank prints and writes);
     * a non-zero return, the stop flag or a failed checkpoint on any rank stops every rank
     * after the same step. A comm of size 1 is the same as none. */
    const nb_comm *comm;
    int sync_batchnorm;
    /* Early stopping: stop once `early_stop` epochs in a row ended without a better monitored
     * dev metric than the best epoch's (0: off). Better is strictly lower (or higher, for a
     * metric where higher is better) by more than min_delta (>= 0). Needs a dev set, and a
     * metric the model's task has. The run then ends with the best epoch's weights and
     * batch-norm statistics in the model (however it ends, but for an interruption or a
     * failure: a resumed run goes on from the last ones), and a checkpoint keeps them
     * ("train.best.<name>"), so a resumed run stops and ends as the uninterrupted one. With
     * ranks, the dev metrics are global: every rank decides alike. */
    int early_stop;
    nb_metric monitor;
    double min_delta;
} nb_train_config;

typedef struct nb_train_result {
    int epochs;              /* completed */
    int64_t steps;
    int64_t samples;         /* samples trained on */
    double train_seconds;    /* the training loop only: no evaluation */
    double train_loss;       /* of the last epoch */
    int interrupted;         /* 1 if *stop ended training between two steps */
    int diverged;            /* 1 if a NaN or infinite loss stopped training */
    int diverged_epoch;
    int64_t diverged_step;   /* step within the epoch */
    /* With early stopping: the best epoch (0-based; -1: no epoch had a finite value, and the
     * model keeps the weights the run ended with), its monitored dev value, and whether the
     * run stopped for want of improvement (before cfg->epochs). */
    int best_epoch;
    double best_value;
    int stopped_early;
} nb_train_result;

/* Trains m on train, evaluating dev and test (either may be NULL or empty) after each epoch.
 * cfg->epochs may be 0: nothing is trained (on a fresh run, one on_checkpoint call with the
 * initial state). On a NaN or infinite loss, stops, restores the weights from before that step
 * (with early stopping, the best epoch's), sets result->diverged and returns 0. The counts in result include the epochs and steps of the
 * run resumed from, if any. A resumed run ends with the weights the uninterrupted run would
 * have had, bit for bit, given the same thread count. */
int nb_train(nb_model *m, const nb_dataset *train, const nb_dataset *dev,
             const nb_dataset *test, const nb_train_config *cfg, nb_train_result *result,
             nb_error *err);

/* Whether the process may use the memory nb_train adds to the compiled model (the optimizer
 * state, a second weight buffer, what checkpoints need, OpenBLAS's buffers and the threads'
 * stacks) under each of its limits: ulimit -v and -d, its cgroup's memory limit, the machine's
 * available memory. nb_train checks this first itself; a program that writes files before it
 * trains can ask before them. Returns 0, or -1 with "out of memory: training needs N MB (...),
 * but the process may use M MB more (ulimit -v)". */
int nb_train_check_memory(const nb_model *m, const nb_dataset *train, const nb_train_config *cfg,
                          nb_error *err);
/* The same for a model not built yet: what nb_model_build(spec, max_batch) and nb_train
 * together will need, checked in one go before anything is allocated (building a large model
 * and drawing its weights takes seconds), the training state included whether the run starts
 * or resumes (allocate the state to resume after this check). */
int nb_train_check_model_memory(const nb_model_spec *spec, int max_batch,
                                const nb_dataset *train, const nb_train_config *cfg,
                                nb_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Checkpoints                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* Writes DIR/checkpoint.safetensors: the model's tensors (torch names, loadable like a saved
 * model), the optimizer's moments ("optimizer.v.<name>", "optimizer.s.<name>"), the data order
 * ("train.order", int64); in __metadata__ the architecture, the state's numbers, the caller's
 * entries `meta` (e.g. its configuration and metrics), and "crc32c", the CRC-32C of the data
 * section and the other metadata. The checkpoint it replaces becomes
 * DIR/checkpoint.prev.safetensors, so one damaged file never leaves none. The new file is
 * written under a temporary name, fsync'd and renamed into place, and the directory fsync'd:
 * a failure (a full disk) leaves the earlier checkpoints as they were. */
int nb_checkpoint_save(const char *dir, const nb_model *m, const nb_train_state *s,
                       const nb_st_meta *meta, int n_meta, nb_error *err);
/* Removes DIR's checkpoint files (those of a run that a new one in DIR replaces). */
int nb_checkpoint_remove(const char *dir, nb_error *err);
/* Checks that each of DIR's checkpoint files is a regular file or absent. Saving renames
 * them and a new run removes them, which would move or delete whatever else a user put at
 * those names (a symbolic link, a device, a FIFO): save and remove refuse, and a program can
 * refuse up front. Returns 0, or -1 with a message naming the file and what it is. */
int nb_checkpoint_check_files(const char *dir, nb_error *err);
/* Opens one checkpoint file and verifies its header and checksum, reading its data a piece at
 * a time: only the header is kept in memory, and the file stays open (until nb_st_free) for
 * nb_checkpoint_restore to read the tensors from. */
int nb_checkpoint_read(const char *path, nb_st_file *f, nb_error *err);
/* The newest checkpoint of DIR that verifies. The path of the file used goes to `used`; if a
 * newer one was passed over (unreadable, damaged, or checkpoint.safetensors missing before
 * an older file), `note` says which and why, each reason after the one before (else it is
 * empty). When none verifies, the error gives every file's reason. Something other than a
 * regular file at a checkpoint's name (a symbolic link, a directory, a FIFO) is an error, as
 * nb_checkpoint_check_files says it, and names the intact checkpoint if there is one: the run
 * that resumes would rename or remove it, or could not write its checkpoints there. */
int nb_checkpoint_open(const char *dir, nb_st_file *f, char *used, size_t used_size, char *note,
                       size_t note_size, nb_error *err);
/* Reads a checkpoint into a model of the same architecture and a state initialized for the
 * same data and optimizer (nb_train_state_init): every name and shape is checked first, then
 * the numbers are read straight into the model and the state (no copy of the checkpoint in
 * memory) and checked there. On failure the model and state hold part of it: free them. */
int nb_checkpoint_restore(const nb_st_file *f, nb_model *m, nb_train_state *s, nb_error *err);
/* For a signal handler that ends the process at once (a second Ctrl-C), on the thread that
 * writes: removes the temporary files the library is writing (nothing half-written stays
 * behind), and settles a checkpoint save under way: one whose new file is whole is completed
 * (the renames of nb_checkpoint_save), one still being written is dropped. Returns the step
 * count of the checkpoint that DIR/checkpoint.safetensors now holds, when this process saved
 * it (the latest nb_checkpoint_save's DIR), or -1 (none saved yet: an older one is there, or
 * none). Async-signal-safe: unlink and rename. */
int64_t nb_abandon_writes(void);
/* CRC-32C (Castagnoli) of n bytes, continuing from crc (0 to start). */
uint32_t nb_crc32c(uint32_t crc, const void *data, size_t n);

/* Sets the number of threads the library runs on (default: the cores this process may use).
 * The library keeps one pool of threads for all its parallel work and runs OpenBLAS on one
 * thread inside it, so the cores are never oversubscribed. Call it between computations.
 * Results do not depend on the count, but memory does (each thread has an OpenBLAS buffer and
 * a stack): when a memory check (building a model, nb_train_check_memory) finds that the
 * memory needed does not fit the process's limits with n threads but does with fewer, it
 * lowers the count to the most that fit rather than fail. */
void nb_set_threads(int n);

/* The OpenBLAS kernels in use (its core name, e.g. "SkylakeX"), and the core name of better
 * kernels this CPU could run, or NULL. OpenBLAS chooses when it loads and falls back to slow
 * generic kernels on a CPU newer than itself; setting OPENBLAS_CORETYPE to the better name
 * before the library loads (i.e. before the program starts) fixes that. */
const char *nb_blas_kernel(void);
const char *nb_blas_better_kernel(void);

/* ------------------------------------------------------------------------------------------ */
/* Pruning: stopping a search's poor trials early (src/search/prune.c)                          */
/* ------------------------------------------------------------------------------------------ */

typedef enum nb_prune_kind { NB_PRUNE_NONE, NB_PRUNE_MEDIAN, NB_PRUNE_ASHA } nb_prune_kind;

typedef struct nb_pruner {
    nb_prune_kind kind;
    int min_trials;   /* median: how many others must have reached the epoch first (5) */
    int min_epochs;   /* asha: the first rung (1) */
    int eta;          /* asha: the reduction factor (3); rungs at min_epochs * eta^k epochs */
} nb_pruner;

const char *nb_prune_name(nb_prune_kind kind);          /* "none", "median", "asha" */
int nb_prune_parse(const char *name, nb_prune_kind *kind); /* 0, or -1 for an unknown name */
int nb_asha_is_rung(const nb_pruner *p, int epoch);

/* Whether a trial stops after `epoch` (1-based) of its `epochs`, with score `value` (higher is
 * better: a dev accuracy, or a dev loss negated), given the values `others` that the trials it
 * is compared with had after the same epoch (NaN ones are ignored). Never at the last epoch: the trial is then complete.
 *   median: value < the median of others, once there are at least min_trials of them
 *           (Optuna's MedianPruner);
 *   asha:   at a rung, value is not among the best max(1, floor(n / eta)) of the n values of
 *           others and itself (asynchronous successive halving, Li et al. 2020; Optuna's
 *           SuccessiveHalvingPruner); between rungs, never. */
int nb_prune_should_stop(const nb_pruner *p, int epoch, int epochs, double value,
                         const double *others, int n_others);

/* ------------------------------------------------------------------------------------------ */
/* Hyperparameter search: spaces, sampling, narrowing, importance                               */
/* ------------------------------------------------------------------------------------------ */

/* A search space is written as parts separated by ';', each `name=distribution(arguments)`,
 * blanks allowed around anything (and one empty part after a final ';'):
 *
 *   lr=log(1e-4,1e-1); beta=1-log(0.9,0.999); batch-size=choice(32,64,128,256);
 *   layers=choice(128|256,128|512,256,128); depth=int(1,3); momentum=uniform(0.5,0.99)
 *
 *   uniform(a,b)   a < b: x uniform on [a, b]
 *   log(a,b)       0 < a < b: log10 x uniform on [log10 a, log10 b] (learning rates, decay)
 *   1-log(a,b)     a < b < 1: log10(1 - x) uniform on [log10(1 - b), log10(1 - a)], dense near
 *                  1 (beta 0.9..0.999 samples 1 - beta evenly over 1e-3..1e-1)
 *   int(a,b)       integers a <= b (within +-1e9): each integer of [a, b] equally likely
 *   choice(v,...)  1 to NB_SEARCH_MAX_CHOICES distinct values, each equally likely, separated
 *                  by the commas outside parentheses (a comma inside them belongs to the
 *                  value). A value is any text without blanks or ';', its parentheses
 *                  balanced, kept verbatim. Inside a value '|' stands for ',' (nabla tune
 *                  gives a trial the value with each '|' turned into ','), so two values that
 *                  differ only there are the same. A model's text is a value whose layers are
 *                  separated by '|', each layer's own arguments keeping their commas:
 *                    layers=choice(128|64, linear(64)|relu|linear,
 *                                  conv2d(16,3,padding=1)|relu|maxpool2d(2)|flatten|linear)
 *
 * Names are [a-z0-9-]+, each given once; numbers are whole strtod numbers, finite. */
typedef enum nb_dist_kind {
    NB_DIST_UNIFORM, NB_DIST_LOG, NB_DIST_ONE_MINUS_LOG, NB_DIST_INT, NB_DIST_CHOICE
} nb_dist_kind;

#define NB_SEARCH_MAX_PARAMS 16
#define NB_SEARCH_MAX_CHOICES 32
#define NB_SEARCH_NAME_MAX 32     /* bytes of a name, with the terminator */
#define NB_SEARCH_VALUE_MAX 256   /* bytes of a choice value, with the terminator: room for a
                                     model's text (a small CNN's takes about 125) */
/* A buffer this large always holds nb_search_space_format's text. */
#define NB_SEARCH_FORMAT_MAX \
    (NB_SEARCH_MAX_PARAMS * (NB_SEARCH_NAME_MAX + 16 + NB_SEARCH_MAX_CHOICES * NB_SEARCH_VALUE_MAX))

typedef struct nb_search_param {
    char name[NB_SEARCH_NAME_MAX];
    nb_dist_kind kind;
    double lo, hi;   /* the bounds of x as written (1-log: of x itself, e.g. 0.9 and 0.999);
                        choice: 0 and n_choices - 1, the range of its index */
    int n_choices;
    char choices[NB_SEARCH_MAX_CHOICES][NB_SEARCH_VALUE_MAX];
} nb_search_param;

typedef struct nb_search_space {
    int n;
    nb_search_param p[NB_SEARCH_MAX_PARAMS];
} nb_search_space;

/* A point of a space: one value per parameter, in the space's order; for a choice, the index
 * of the value. */
typedef struct nb_search_point {
    double v[NB_SEARCH_MAX_PARAMS];
} nb_search_point;

/* "uniform", "log", "1-log", "int", "choice". */
const char *nb_search_dist_name(nb_dist_kind kind);

/* Parses a spec. An error quotes the part at fault and says what is wrong with it, e.g.
 * `part 2 "beta=1-lg(0.9,0.999)": unknown distribution "1-lg" (expected uniform, log, 1-log,
 * int or choice)`. On failure s->n is 0. */
int nb_search_space_parse(nb_search_space *s, const char *spec, nb_error *err);
/* The canonical spec of s ("lr=log(0.0001,0.1); depth=int(1,3)"), numbers in the fewest
 * digits that read back exactly, so that parsing it gives s again (e.g. to store a narrowed
 * space). Returns -1 if cap is too small (NB_SEARCH_FORMAT_MAX always suffices). */
int nb_search_space_format(const nb_search_space *s, char *buf, size_t cap);

/* The text of value v of p as a trial receives it: a choice's value verbatim, an int as an
 * integer, a number in the fewest significant digits (6 or more) that read back as v. For
 * the values this API produces, strtod(text) == v: a trial runs with exactly the value it is
 * recorded with. A choice index that names no value prints as "?". */
void nb_search_value_text(const nb_search_param *p, double v, char *buf, size_t cap);
/* The inverse, e.g. to read recorded trials back: a choice's value to its index, a number
 * (an integer for int) to itself. The range is not checked, so that points of an earlier,
 * wider space stay readable. */
int nb_search_value_parse(const nb_search_param *p, const char *text, double *v, nb_error *err);

/* Random search: point number `index` of a study seeded with `seed`. It depends on (seed,
 * index, space) only, never on the points drawn before, so trials can be drawn in any order,
 * in parallel, or again after a restart. Numbers are rounded to what nb_search_value_text
 * prints (6 significant digits; more for 1-log near 1, for a very narrow range, or to stay
 * within [lo, hi]), and lie within [lo, hi]. */
void nb_search_sample(const nb_search_space *s, uint64_t seed, int64_t index, nb_search_point *out);

/* TPE, the tree-structured Parzen estimator (Bergstra et al. 2011), as Optuna's TPESampler
 * does it by default (univariate; src/search/tpe.c): a search that learns from the trials so
 * far. The finished trials are ranked (below) and split into the good ones, the best
 * min(ceil(gamma * n), max_good) of the n given (never one without a score), and the bad ones,
 * the rest. Each parameter then has two densities on its own scale (log10 x for log,
 * log10(1 - x) for 1-log, x for uniform and int), l from the good trials' values and g from the
 * bad ones': a mixture with one component per value plus a prior one (weight prior_weight),
 * each value's component weighing 1, less for all but the last 25 values of a group larger
 * than 25 (a ramp from 1/m up, older trials weighing less). A number's component is a Gaussian
 * truncated to the range, centred on the value, its width the larger gap to its neighbours
 * among the sorted values and the range's centre (at the ends, the inner gap), clipped to
 * [range / min(100, 1 + components), range]; the prior's is centred on the range with its
 * width. An int's is the same on [a - 0.5, b + 0.5], each integer taking the mass of its unit
 * cell. A choice's is its value with weight 1 and every value with prior_weight / components,
 * normalized; the prior's is uniform. n_candidates candidates are drawn from l and the one with
 * the largest l(x) / g(x) is taken (the first of equals). Each parameter is drawn on its own,
 * and its value is rounded as nb_search_sample rounds (the text a trial receives).
 * While fewer than n_startup trials are given the point is nb_search_sample's (s, seed, index).
 *
 * Ranking (Optuna's, failures added): first the trials that completed, by score (higher is
 * better: a dev accuracy, or a dev loss negated); then the pruned ones, the later epoch reached
 * first, then by their score at that epoch; last those without a score (NaN: failed, diverged),
 * which only ever count among the bad. Equal ranks keep the order given. */
typedef struct nb_tpe_config {
    int n_startup;        /* random points while fewer trials than this are given (10) */
    int n_candidates;     /* candidates drawn from l per parameter (24) */
    double gamma;         /* the good fraction of the trials (0.1) ... */
    int max_good;         /* ... but at most this many good trials (25) */
    double prior_weight;  /* the prior component's weight (1) */
} nb_tpe_config;

/* Optuna's defaults, in the order above: 10, 24, 0.1, 25, 1. */
nb_tpe_config nb_tpe_defaults(void);

/* One finished trial as TPE learns from it. A value of its point that is NaN, or a choice
 * index that names no value, is left out of that parameter's densities; a number outside the
 * range (from an earlier, wider space) counts at its edge. */
typedef struct nb_tpe_trial {
    nb_search_point point;
    double score;      /* its objective, higher is better; NaN: it failed (no score) */
    int pruned_epoch;  /* 0 if it completed; if it was pruned, the last epoch it reached (>= 1),
                          score being its objective then */
} nb_tpe_trial;

/* TPE's point number `index` of a study seeded with `seed`, given the n_done finished trials
 * done[0..n_done-1] (cfg NULL: nb_tpe_defaults()). The point depends on (space, cfg, seed,
 * index, and the trials given: their points, scores, pruned epochs and order) and on nothing
 * else: the same arguments give the same point bit for bit (no threads, no clock; with the
 * same C math library, as for nb_search_sample). Fails on a bad cfg or space, n_done < 0, or
 * out of memory; out is then untouched. */
int nb_tpe_suggest(const nb_search_space *s, const nb_tpe_config *cfg, const nb_tpe_trial *done,
                   int n_done, uint64_t seed, int64_t index, nb_search_point *out, nb_error *err);

/* Grid search: exactly n points (out holds n).
 * Levels per parameter: first, each choice in order gets all its values while the product of
 * levels stays <= n (a value left off a grid is never tried); then, starting from 1 level for
 * the others, one more level goes to the parameter with the fewest levels that can still grow
 * (a choice up to its number of values, an int up to b - a + 1, a number without limit; ties:
 * the earlier parameter), until the product reaches n.
 * Levels of a number are the centres of equal cells of its range on its scale (log10 x for
 * log, log10(1 - x) for 1-log, x for uniform), rounded like nb_search_sample's values; of an
 * int, integers spread likewise (distinct); of a choice with fewer levels than values, values
 * evenly spaced in its list. The grid is ordered as nested loops, the first parameter
 * outermost. If it has more than n points, a random n of them (seeded with `seed`) are taken,
 * in grid order. If the whole space has fewer than n points, the grid is repeated in order
 * until there are n. Fails if n < 1. */
int nb_search_grid(const nb_search_space *s, int n, uint64_t seed, nb_search_point *out,
                   nb_error *err);

/* Coarse to fine: a narrower space around the best of n scored points (higher is better; NaN
 * scores are ignored). Keeps the best max(2, ceil(keep * valid)) points (all if fewer;
 * 0 < keep <= 1). For every numeric parameter, the new range is the span of the kept points'
 * values on the parameter's scale, widened by 10% of the old range's width on each side (a
 * single value: 12.5% on each side), clipped to the old range; bounds are rounded like
 * sampled values (so the formatted space reads well), ints outward to integers. The kept
 * points always lie in the new range. Choices are unchanged. out may be s. Fails if no score
 * is a number. */
int nb_search_narrow(const nb_search_space *s, const nb_search_point *pts, const double *score,
                     int n, double keep, nb_search_space *out, nb_error *err);

/* Which hyperparameters mattered: explained[i] in [0, 1] is the fraction of the variance of
 * the score explained by parameter i, the correlation ratio eta^2 = between-group sum of
 * squares / total sum of squares. The groups are a choice's values; for a number or an int,
 * its distinct values if there are at most 4, else 4 groups of about equal count by rank
 * (equal values in the same group). Points whose score (or value) is NaN are left out.
 * explained[i] is 0 when the scores do not vary or fewer than 3 points count. With g groups
 * and m points, a parameter that does nothing still explains about (g - 1) / (m - 1).
 * Fails only when out of memory. */
int nb_search_importance(const nb_search_space *s, const nb_search_point *pts,
                         const double *score, int n, double *explained, nb_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Studies: a search, trial by trial, kept in a directory (src/study/)                          */
/* ------------------------------------------------------------------------------------------ */

/* A study runs `trials` trials of a search space and owns everything but running them: each
 * trial's configuration (nb_study_ask), what the trials report (nb_study_tell_*), which stop
 * early (the pruner, nb_study_decide), and DIR/journal.jsonl, an append-only record of all of
 * it (each event written whole and fsync'd) from which the same study continues after any
 * stop: nb_study_open again. Running the trials is the caller's: one after another in its own
 * process (examples/random_search.c), or as processes, several at once (nabla tune). The
 * journal's events: src/study/journal.h.
 *
 * What a study gives does not depend on timing: trial i's configuration depends on (config,
 * i) and, for TPE, on the final results of trials 0 .. i-1-tpe_lag only (none while those are
 * fewer than tpe.n_startup: the point is then random search's); a pruning decision on
 * trial i after epoch e compares it with the trials numbered below i, once each of them has
 * reported epoch e or finished. So the same config gives the same trials however many run at
 * once, in whatever order they finish, and across stops. */

typedef enum nb_sampler { NB_SAMPLER_RANDOM, NB_SAMPLER_GRID, NB_SAMPLER_TPE } nb_sampler;

typedef enum nb_trial_state {
    NB_TRIAL_PENDING,     /* not started */
    NB_TRIAL_RUNNING,     /* started, not finished (or stopped with the study) */
    NB_TRIAL_INTERRUPTED, /* stopped by an accident; run again by the study's next run */
    NB_TRIAL_COMPLETE,    /* from here on: finished, for good */
    NB_TRIAL_PRUNED,
    NB_TRIAL_FAILED,
} nb_trial_state;

const char *nb_trial_state_name(nb_trial_state s); /* "pending", ..., "failed" */

/* nb_study_hooks.ends_early's answers, or'ed. */
enum { NB_ENDS_EARLY_STOP = 1, NB_ENDS_STEP_LIMIT = 2 };

/* What the study asks its caller about the trials (every member may be NULL). */
typedef struct nb_study_hooks {
    void *user;
    /* The epochs a trial at p runs (NULL: the config's epochs); -1 on failure. */
    int (*epochs)(void *user, const nb_search_point *p);
    /* Whether a trial at p may complete before its last epoch: NB_ENDS_EARLY_STOP when early
     * stopping ends it (its result is then its best epoch's), NB_ENDS_STEP_LIMIT when a step
     * limit does; 0 neither; -1 on failure. */
    int (*ends_early)(void *user, const nb_search_point *p);
    /* Whether the command recorded with a trial's start (nb_study_started) is the one a trial
     * at p starts with: 0, or -1 with err saying how it differs. */
    int (*check_command)(void *user, const nb_search_point *p, const char *const *args,
                         int n_args, nb_error *err);
    /* Before each write to the journal: whether the study's other files are as the caller left
     * them: 0, or -1 with err (nothing is written). */
    int (*check_files)(void *user, nb_error *err);
} nb_study_hooks;

typedef struct nb_study_config {
    nb_search_space space;
    int trials;              /* >= 1 */
    int rounds;              /* coarse to fine (random or grid): 1 .. trials rounds, each
                                after the first in a space narrowed around the best quarter of
                                the trials of the rounds before it */
    nb_sampler sampler;
    int tpe_lag;             /* TPE: trial i learns from trials 0 .. i-1-tpe_lag (>= 0); while
                                fewer than tpe.n_startup, it is random and waits for none */
    nb_tpe_config tpe;
    nb_prune_kind prune;     /* with nb_pruner's defaults */
    uint64_t seed;
    nb_task task;            /* what the trials train: which dev figures they have */
    nb_metric objective;     /* what ranks them, in its direction (a metric of the task) */
    int epochs;              /* each trial's (>= 1), unless hooks.epochs says */
    nb_study_hooks hooks;
} nb_study_config;

/* 20 trials, 1 round, random, tpe_lag 2 and nb_tpe_defaults(), no pruning, seed 0,
 * classification by dev accuracy, 10 epochs, no hooks; the space empty (fill it). */
nb_study_config nb_study_defaults(void);

typedef struct nb_study nb_study;

/* Opens the study in dir (created with its parents if missing) and reads its journal, each
 * event checked against cfg (an error names the file and the line): trials finished stay
 * finished; trials started but not finished are to be run again (continued from their
 * checkpoints by a caller that keeps them). A last line cut short by a crash is cut off.
 * One process at a time may hold a study open: the caller's to ensure (nabla tune locks it).
 * dir NULL: a study in memory only, nothing read or written (to see its first configurations,
 * or to test). */
int nb_study_open(nb_study **out, const char *dir, const nb_study_config *cfg, nb_error *err);
void nb_study_close(nb_study *s);

/* The next trial to run: 1 with its number and configuration; 0 when none can start now
 * (every trial is running or finished, or those left wait for results: a later round, or
 * TPE's lag); -1 on failure. Trials come in number order; one given is not given again until
 * it is told interrupted. A trial the journal shows started comes with its recorded point. */
int nb_study_ask(nb_study *s, int *trial, nb_search_point *point, nb_error *err);

/* Whether no trial can start now only because the next one waits for results (a later round,
 * or TPE's lag), not because every trial is running or finished: the time a free worker spends
 * so is what those samplers cost in parallelism. */
int nb_study_waiting(const nb_study *s);

/* Records that trial i (from nb_study_ask) starts, with the command it runs (args, n_args;
 * NULL, 0 for none), rank >= 0: where (an MPI rank), and waited > 0: the worker-seconds spent
 * waiting for the results it depends on (nb_study_waiting). A trial that started before and is
 * run again is not recorded again. */
int nb_study_started(nb_study *s, int trial, const char *const *args, int n_args, int rank,
                     double waited, nb_error *err);

/* A trial's dev figures: accuracy (NaN for a task without one), loss, and the study's
 * objective (the same number as one of them, or its own metric). */
typedef struct nb_trial_figures {
    double accuracy, loss, objective;
} nb_trial_figures;

/* Trial i's figures after `epoch` (from 1) of its `epochs`; seconds: its time so far. 1 when
 * recorded, 0 when the epoch was known (a trial run again repeats the epochs of its
 * checkpoint; a pruned trial may run ahead), -1 on failure. */
int nb_study_tell_epoch(nb_study *s, int trial, int epoch, int epochs, nb_trial_figures f,
                        double seconds, nb_error *err);

/* Trial i's run ended by itself: complete, with its result (its last epoch's figures, or with
 * early stopping its best epoch's) after `epochs`, or failed, with a reason. Recorded once the
 * pruner has judged every epoch it reported (nb_study_decide): a trial pruned meanwhile stays
 * pruned. */
int nb_study_tell_end(nb_study *s, int trial, nb_trial_state state, nb_trial_figures f,
                      int epochs, double seconds, const char *reason, nb_error *err);

/* An accident stopped trial i (a signal it was not sent, a full disk): recorded at once; not
 * its end, nothing is concluded from it, and it is to be run again. */
int nb_study_tell_interrupted(nb_study *s, int trial, const char *reason, double seconds,
                              nb_error *err);

/* Judges every reported epoch that can be judged and records the ends that are due. ended
 * (room for cfg.trials) gets the trials whose end was recorded now, *n_ended their number; a
 * pruned one among them whose run goes on must be stopped by the caller. */
int nb_study_decide(nb_study *s, int *ended, int *n_ended, nb_error *err);

/* What is known of a trial. */
typedef struct nb_trial_info {
    nb_trial_state state;
    int round;
    int has_point;           /* point is known: it was asked for, or started */
    nb_search_point point;
    int reported;            /* epochs 1..reported have figures */
    int epochs;              /* finished: the epochs its result is after */
    nb_trial_figures result; /* finished: its result (NaN where none: failed) */
    double seconds;          /* its time so far, over every run of it */
    const char *reason;      /* failed or interrupted: why ("" otherwise) */
} nb_trial_info;

int nb_study_trial(const nb_study *s, int trial, nb_trial_info *info);
/* How many trials are finished (complete, pruned or failed). */
int nb_study_finished(const nb_study *s);
/* The best complete trial (by the objective; on a tie the lower dev loss, then the lower
 * number), or -1 when none completed. */
int nb_study_best(const nb_study *s);

/* Which hyperparameters mattered, over the complete trials (nb_search_importance of their
 * objective): explained[i] for parameter i (room for the space's), NaN for all when fewer than
 * 3 trials completed. Returns the number of complete trials it used. */
int nb_study_importance(const nb_study *s, double *explained);

/* What the caller adds to best.json about the best trial, all optional. */
typedef struct nb_study_notes {
    nb_trial_figures test;   /* its model measured on the test set (NaN: none) */
    const char *model;       /* its model file, relative to the study's directory */
    const char *command;     /* a command that trains it again */
    const char *extra_json;  /* the text of a JSON object whose members are added (nabla tune's
                                "refit") */
} nb_study_notes;

/* Writes DIR/best.json (atomically, after checking the journal and the caller's files as an
 * append would): the trials and how they ended (complete, pruned, failed), their seconds and
 * the seconds waited for results, the best trial (null when none completed) with its params,
 * dev figures, epochs and the notes, and the importance of each parameter. The study must be
 * finished. 0, or -1 with err. */
int nb_study_write_best(nb_study *s, const nb_study_notes *notes, nb_error *err);

#ifdef __cplusplus
}
#endif

#endif /* NABLA_H */
