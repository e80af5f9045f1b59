/* Early stopping (nb_train_config.early_stop): the best epoch's record in the training state,
 * taken after each epoch's evaluation, and the model put back to it when the run ends. */
#ifndef NABLA_TRAIN_EARLY_STOP_H
#define NABLA_TRAIN_EARLY_STOP_H

#include "core/graph_internal.h"
#include "nabla.h"

/* The configuration's early stopping against the model's task and the dev set: 0, or -1 with
 * err (a patience below 0, no dev set, a metric the task does not have). */
int early_stop_check(const nb_train_config *cfg, nb_task task, const nb_dataset *dev,
                     nb_error *err);
/* Bytes of the best epoch's copy for a graph of these sizes. */
uint64_t best_copy_bytes(const nb_graph_sizes *z);
/* The named counters of g (batch norm's num_batches_tracked). */
int best_counter_count(const nb_graph *g);
/* Allocates s's copy of the best epoch's model for graph g, unless it has one. */
int best_alloc(nb_train_state *s, const nb_graph *g, nb_error *err);
/* After epoch m->epoch's evaluation: takes the model as the best epoch's if its monitored dev
 * value is better, else counts the epoch; fills m->best_epoch and m->stops_early. */
void early_stop_after_epoch(nb_train_state *s, const nb_train_config *cfg, const nb_graph *g,
                            nb_epoch_metrics *m);
/* Whether the state has gone cfg->early_stop epochs without improvement: the run is over. */
int early_stop_due(const nb_train_state *s, const nb_train_config *cfg);
/* Puts the best epoch's parameters, state tensors and counters back into g. */
void best_restore(const nb_train_state *s, nb_graph *g);

#endif /* NABLA_TRAIN_EARLY_STOP_H */
