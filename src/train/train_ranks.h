/* nb_train's steps (src/train/train.c runs the loop): one process alone, or several ranks in
 * lockstep through a communicator (data-parallel training, described in train_ranks.c). */
#ifndef NABLA_TRAIN_RANKS_H
#define NABLA_TRAIN_RANKS_H

#include "nabla.h"

typedef struct dp_run {
    uint64_t seed;         /* the run's: dropout's masks are drawn from it (nb_graph_set_step) */
    const nb_comm *comm;   /* NULL: this process alone (no communicator, or one rank) */
    int sync_batchnorm;
    int share_states;      /* per-rank batch norm: rank 0's running statistics after a step */
} dp_run;

/* Sets dp up from cfg->comm (NULL or one rank: alone). */
int dp_init(dp_run *dp, const nb_train_config *cfg, nb_model *m, nb_error *err);
/* Alone: 0 if `ready` (this process could start), else -1. With ranks: whether every rank
 * could start and agrees with rank 0's configuration, then rank 0's run on every rank. */
int dp_start(const dp_run *dp, nb_model *m, const nb_dataset *train, const nb_dataset *dev,
             const nb_dataset *test, const nb_train_config *cfg, int ready, nb_train_state *st,
             nb_error *err);
/* Each flag becomes 1 if it is set on any rank (alone: unchanged). */
int agree(const dp_run *dp, int *flags, int n, nb_error *err);
/* One step: the forward pass over this rank's rows of the global batch `order[0..batch)`
 * (its loss and correct count, global with ranks), the backward pass with the gradients
 * summed over the ranks, and the end of the step. `step` is the number of steps taken before
 * this one, which with the seed and the rows' positions in the global batch chooses dropout's
 * masks. */
int step_forward(const dp_run *dp, nb_model *m, const nb_dataset *train, const int32_t *order,
                 int batch, int64_t step, float *loss, int64_t *correct, nb_error *err);
int step_backward(const dp_run *dp, nb_model *m, nb_error *err);
int step_end(const dp_run *dp, nb_model *m, nb_error *err);
/* The dev and test metrics of an epoch's end (with ranks, each evaluates its share). */
int evaluate_epoch(const dp_run *dp, nb_model *m, const nb_dataset *dev, const nb_dataset *test,
                   nb_epoch_metrics *metrics, nb_error *err);
/* The checkpoint callback (on every rank: it decides who writes) and whether to stop after it
 * (*interrupted, or with read_stop the stop flag as it is after the checkpoint), agreed over
 * the ranks. */
int checkpoint_all(const dp_run *dp, const nb_train_config *cfg, const nb_train_state *st,
                   int read_stop, int *interrupted, nb_error *err);

#endif /* NABLA_TRAIN_RANKS_H */
