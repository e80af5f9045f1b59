/* A task's metrics as words on a line, for the progress lines, the result line of nabla train
 * and nabla eval: "accuracy 0.9500", "rmse 54.1 mae 43.2 r2 0.48",
 * "accuracy 0.9712 micro_f1 0.9455 macro_f1 0.9011". */
#ifndef NABLA_CLI_METRICS_TEXT_H
#define NABLA_CLI_METRICS_TEXT_H

#include <stddef.h>

#include "nabla.h"

/* Every metric of r's task but the loss, name and value, separated by spaces
 * (`short_accuracy`: "acc" for "accuracy", as the progress lines write it). */
void metrics_text(const nb_eval_result *r, int short_accuracy, char *buf, size_t cap);

/* Class c of a classifier as the training data named it (its table's class names), or its
 * index for data without names (IDX labels, synthetic sets); in buf when it is the index. */
const char *class_name(const nb_model *m, int c, char *buf, size_t cap);

#endif /* NABLA_CLI_METRICS_TEXT_H */
