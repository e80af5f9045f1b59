/* The options of `nabla train`: their defaults, their parsing and their checks. */
#ifndef NABLA_CLI_TRAIN_OPTIONS_H
#define NABLA_CLI_TRAIN_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "cli/common/options.h"
#include "nabla.h"

/* --epochs when not given. */
#define TRAIN_DEFAULT_EPOCHS 10

/* Every value as given (or defaulted); doubles keep the user's decimal value for config.json. */
typedef struct train_options {
    data_source src;
    const char *layers;          /* --layers as given: hidden widths or a model's text */
    nb_mlp mlp;                  /* the widths form: widths, activation, slope, batch norm */
    int layers_text;             /* --layers is a model's text (then mlp is unused) */
    nb_layers model;             /* the model's layers, from either form */
    nb_shape input_shape;        /* --input-shape C,H,W; ndim 0 when not given */
    nb_optimizer_kind optimizer;
    double lr, beta, beta2, eps, weight_decay, leaky_slope, decay_rate, dev_fraction;
    int bias_correction;
    int batch_size;              /* 0: the whole training set */
    int epochs;
    int64_t max_steps;           /* 0: no limit */
    int shuffle;
    nb_decay_kind decay;
    int decay_interval, warmup_epochs;
    int decay_epochs;            /* the horizon of cosine decay: --decay-epochs, else --epochs */
    int threads;
    int sync_batchnorm;          /* --sync-batchnorm: under MPI, statistics over all ranks */
    int normalize;               /* 1 standard, 0 none; -1 until the data is known (the
                                    default: standard for float data, none for images) */
    nb_task task;                /* --task */
    nb_loss loss;                /* --loss, or the task's default */
    int given_loss;
    const char *init_weights, *save_weights, *out;
    int quiet;
    int64_t checkpoint_every;    /* steps between checkpoints; 0: at epoch ends only */
    const char *resume;          /* --resume DIR, or NULL */
    /* Watching training (train_trace.h). */
    int trace;                   /* --trace-activations */
    int trace_layer;             /* activation layer traced (its input), 1-based, counting only
                                    activation layers (the last one unless given) */
    int trace_unit;              /* its unit traced, 0-based */
    int64_t trace_every;         /* steps between records; 0: about 20 an epoch (set by
                                    cmd_train once the data is known) */
    int64_t eval_every;          /* --eval-every: steps between evaluations; 0: off */
    /* Early stopping (nb_train_config.early_stop). */
    int early_stop;              /* --early-stop N: patience in epochs; 0: off */
    nb_metric monitor;          /* --monitor: the dev metric watched [loss] */
    double min_delta;            /* --min-delta: how much better counts as better [0] */
    int given_monitor, given_min_delta;
    /* Which of the options --resume may change were given (the others are refused). */
    int given_epochs, given_threads, given_checkpoint_every;
    int given_decay_epochs;      /* else decay_epochs is --epochs */
    int given_trace_layer, given_trace_unit, given_trace_every;
    int given_activation, given_leaky_slope, given_batchnorm;   /* the widths form's options */
} train_options;

/* Fills o from the arguments after "nabla" (argv[0] is "train"). Returns 0 to go on, or -1 with
 * *exit_code set: 0 after --help (usage printed), 2 after a one-line usage error on stderr. */
int train_options_parse(train_options *o, int argc, char **argv, int *exit_code);

/* The learning-rate schedule the options describe. */
nb_schedule train_schedule(const train_options *o);
/* --loss, or the default loss of --task. */
nb_loss train_options_loss(const train_options *o);
/* Whether the model has a batch norm layer. */
int train_options_batchnorm(const train_options *o);

/* The arguments of a run (argv[0] "train", arguments that parse) with every --epochs,
 * --decay-epochs and --out left out, however each was written: the start of a command that
 * gives the run's length and directory again. Fills kept (room for argc pointers, into argv)
 * and returns the count. */
int train_args_without_length(int argc, char **argv, char **kept);

/* Whether a and b, parsed from arguments given in the working directories cwd_a and cwd_b,
 * train the same run: every option that shapes the data, the model, training or the run's
 * files is the same (paths compared by where they lead). --threads, --quiet,
 * --checkpoint-every and --resume change nothing in a run's results and are not compared. Returns 1
 * when they are the same; else 0, with what naming the first that differs ("--lr is 0.5, not
 * 0.0123": a's value first). */
int train_options_same_run(const train_options *a, const char *cwd_a, const train_options *b,
                           const char *cwd_b, char *what, size_t size);

/* How `nabla train` takes --name (name without the dashes): 1 with a value, 0 as a flag, -1
 * not at all (--help included). */
int train_option_arity(const char *name);

/* The model o describes on the training set `train`: its layers on one sample (for a model's
 * text, the data's image shape if it has one, or --input-shape; otherwise the vector of
 * features) and the data's classes, with the shapes run through every layer (into shapes, room
 * for NB_LAYERS_MAX + 1, unless NULL). A model that does not fit the data fails, err naming
 * the layer, the input and the classes: for nabla train a usage error. */
int train_model_spec(const train_options *o, const nb_dataset *train, nb_model_spec *spec,
                     nb_shape *shapes, nb_error *err);

/* Whether a --layers value is a model's text ("linear(64),relu,linear") rather than the
 * widths form (whole numbers and commas, or none). */
int train_layers_is_text(const char *layers);
/* Whether --name (without the dashes) is one of the widths form's options (--activation,
 * --leaky-slope, --batchnorm), which a model's text refuses: it writes its own layers. */
int train_option_goes_with_widths(const char *name);

#endif /* NABLA_CLI_TRAIN_OPTIONS_H */
