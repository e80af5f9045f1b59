/* Watching a run step by step, for `nabla train`:
 *
 *   --trace-activations  trace.jsonl: the 15th, 50th and 85th percentiles of one hidden layer's
 *                        pre-activation (the input of its nonlinearity) over the step's
 *                        mini-batch, for one unit and for the whole layer, at step 1 and every
 *                        --trace-every steps (Ioffe & Szegedy 2015, Figure 1);
 *   --eval-every N       steps.jsonl: dev and test loss and accuracy every N steps.
 *
 * One line per record, a JSON object written with a single write() to a file opened O_APPEND,
 * so a reader never sees half a line:
 *
 *   trace.jsonl  {"step":120,"epoch":2,"layer":3,"unit":0,"unit_p15":-1.23,"unit_p50":0.1,
 *                 "unit_p85":1.5,"layer_p15":...,"layer_p50":...,"layer_p85":...}
 *   steps.jsonl  {"step":500,"epoch":1,"lr":0.001,"dev_loss":...,"dev_accuracy":...,
 *                 "test_loss":...,"test_accuracy":...}   (null for an absent split)
 *
 * step counts optimizer steps over the whole run from 1, epoch is 1-based, layer is the 1-based
 * hidden layer and unit the 0-based unit. A percentile is null when every value was NaN.
 *
 * Both are taken in nb_train's on_batch callback, which comes after the step's optimizer
 * update: the graph still holds the step's forward pass (training mode: batch statistics; the
 * weights from before the update), and evaluation sees the updated weights. Evaluating there
 * changes nothing about training: nb_evaluate runs the graph in inference mode, which reads
 * batch norm's running statistics without updating them, and the next step refills the input
 * and recomputes every value and gradient it uses. The trace is taken before the evaluation,
 * which overwrites the graph's values.
 *
 * Lines are not fsync'd one by one (with --trace-every 1 that would cost more than the
 * training); the files are fsync'd before every checkpoint is written instead, so a checkpoint
 * at step S always comes with every line up to step S on disk. A resumed run keeps the lines
 * with step <= S and writes the rest again: the values are deterministic, so the files end as
 * an uninterrupted run's. */
#ifndef NABLA_CLI_TRAIN_TRACE_H
#define NABLA_CLI_TRAIN_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "cli/train/train_options.h"
#include "nabla.h"

#define TRACE_FILE "trace.jsonl"
#define STEPS_FILE "steps.jsonl"

/* One of the two files: its path and, while the run trains, an O_APPEND descriptor. */
typedef struct step_file {
    char *path;
    int fd;       /* -1 when closed */
} step_file;

typedef struct train_trace {
    int64_t steps;            /* optimizer steps done in all */
    /* --trace-activations (trace.path NULL when off) */
    step_file trace;
    const nb_node *node;      /* the traced pre-activation, [B, width] */
    int layer, unit;
    int64_t trace_every;
    float *scratch;           /* max_batch * width floats, reordered to find percentiles */
    /* --eval-every (evals.path NULL when off) */
    step_file evals;
    int64_t eval_every;
} train_trace;

/* The default --trace-every: about 20 records an epoch, max(1, batches per epoch / 20). */
int64_t trace_default_every(int train_samples, int batch_size);

/* Prepares the files in the run directory dir for the options o (o->trace_every resolved) and
 * the model m (built with spec.trace_layer when tracing). A new run (steps_done 0, !resuming)
 * starts them empty and removes the files an earlier run in dir left, when the options are
 * off; a resumed run keeps the lines with step <= steps_done (the checkpoint's step count). */
int train_trace_start(train_trace *t, const char *dir, const train_options *o,
                      const nb_model *m, int64_t steps_done, int resuming, nb_error *err);

/* Called once after every optimizer step (nb_train's on_batch), p that step's progress: counts
 * it and writes the records that fall on it. dev and test may be NULL. Returns 0, -1 with err,
 * or APPEND_CUT (run_files.h) with err when a stop found a file not being read: that file
 * takes no more lines, and the run goes on to its stop. */
int train_trace_step(train_trace *t, nb_model *m, const nb_progress *p, const nb_dataset *dev,
                     const nb_dataset *test, nb_error *err);

/* fsyncs what has been written (before a checkpoint). */
int train_trace_sync(train_trace *t, nb_error *err);

/* fsyncs and closes the files; safe on a zeroed or already closed trace, as is free. */
int train_trace_close(train_trace *t, nb_error *err);
void train_trace_free(train_trace *t);

/* The k (at most 8) percentiles pct[i] (0..100) of the n values v, into out[i], reordering v. The
 * definition is numpy.percentile's default ("linear"): with the values sorted, s[0..m),
 * percentile p is at position h = p/100 * (m - 1) and is s[floor h] + (h - floor h) *
 * (s[floor h + 1] - s[floor h]), interpolated linearly between the two order statistics
 * around it. NaN values are left out (m counts the others); with none left, every out[i] is
 * NaN. The order statistics are found by selection (Hoare's FIND), not by sorting: a whole
 * layer over a full batch can be millions of values. Returns the m used. */
size_t percentiles(float *v, size_t n, const double *pct, int k, double *out);

#endif /* NABLA_CLI_TRAIN_TRACE_H */
