/* What nb_train (train.c, train_ranks.c) and nb_model_predict (predict.c) share with
 * nb_evaluate (evaluate.c, metrics.c). */
#ifndef NABLA_EVALUATE_H
#define NABLA_EVALUATE_H

#include "nabla.h"

/* Whether d fits the model: its feature count, its task, and every label one of the model's
 * classes or its targets as many as the outputs (`what` names the set in the message). */
int check_compatible(const nb_model *m, const nb_dataset *d, const char *what, nb_error *err);
/* The class of one row of logits: the largest, ties to the lower class. */
int predicted_class(const float *logits, int classes);
/* Samples index[0, n) of d (index NULL: samples 0 to n-1) into the model's input and target
 * nodes: their features, and their labels or their targets (standardized with the model's
 * target scaling); zeros when d has no labels or targets (predict). */
void model_set_batch(nb_model *m, const nb_dataset *d, const int32_t *index, int n);
/* The target half of model_set_batch (d NULL: zeros). */
void model_set_targets(nb_model *m, const nb_dataset *d, const int32_t *index, int n);
/* What the batch in the model's graph got right: rows whose largest logit is the label
 * (classification), labels whose logit's sign is right (multilabel), 0 (regression). */
int count_correct(const nb_model *m, int batch);
/* The predictions count_correct scores per sample: 1, the labels, or 0 for regression. */
int scored_per_sample(const nb_model_spec *spec);

/* The metric sums of metrics.c: how many doubles the model's task needs; a batch's rows
 * [start, start + batch) of d, just forwarded, added to them; the metrics of n samples. */
size_t metric_sums_count(const nb_model *m);
void metric_sums_add(const nb_model *m, const nb_dataset *d, int start, int batch,
                     double *sums);
void metric_sums_finish(const nb_model *m, const double *sums, int n, nb_eval_result *out);

/* Adds the metric sums of samples [lo, hi) of d to sums, in inference mode, in batches of the
 * graph's largest. */
int evaluate_rows(nb_model *m, const nb_dataset *d, int lo, int hi, double *sums,
                  nb_error *err);

#endif /* NABLA_EVALUATE_H */
