/* What nb_train (train.c, train_ranks.c) and nb_model_predict (predict.c) share with
 * nb_evaluate (evaluate.c). */
#ifndef NABLA_EVALUATE_H
#define NABLA_EVALUATE_H

#include "nabla.h"

/* Whether d fits the model: its feature count, and every label one of the model's classes
 * (`what` names the set in the message). */
int check_compatible(const nb_model *m, const nb_dataset *d, const char *what, nb_error *err);
/* The class of one row of logits: the largest, ties to the lower class. */
int predicted_class(const float *logits, int classes);
/* Rows of the batch in the model's graph whose largest logit is the label. */
int count_correct(const nb_model *m, int batch);
/* Loss sum (each batch's mean loss times its rows) and correct predictions over samples
 * [lo, hi) of d, in inference mode, in batches of the graph's largest. */
int evaluate_rows(nb_model *m, const nb_dataset *d, int lo, int hi, double *loss_sum,
                  long *correct, nb_error *err);

#endif /* NABLA_EVALUATE_H */
