/* What a study of `nabla tune` ranks its trials by: its objective, a dev metric of the trials'
 * task (nb_metric: loss, accuracy, rmse, r2, micro_f1, ...), `--objective`, by default dev
 * accuracy for classification and dev loss for the other tasks. Its direction is the metric's
 * (nb_metric_higher_is_better): everything that compares trials (the pruner, the leaderboard,
 * coarse to fine, the report's best so far) compares objective_score, which is higher for
 * the better trial whatever the metric.
 *
 * The study's files name the objective by its metric's name (study.json "objective": "rmse")
 * and hold its value where metrics.jsonl and summary.json do, as "dev_<metric>": so a study of
 * dev accuracy or dev loss needs no member of its own, and the journal of a study of dev
 * accuracy is what it was before there were objectives. */
#ifndef NABLA_STUDY_OBJECTIVE_H
#define NABLA_STUDY_OBJECTIVE_H

#include <stddef.h>

#include "nabla.h"

/* "rmse" or "dev_rmse" (the name metrics.jsonl gives its value) into *m: 0, or -1 unknown. */
int objective_parse(const char *text, nb_metric *m);

/* The objective of a study of this task that names none: dev accuracy for classification,
 * dev loss otherwise. A study.json of a version before objectives (legacy) was scored on
 * dev accuracy, where the task has one. */
nb_metric objective_default(nb_task task, int legacy);

/* Higher for the better trial: the metric's value, negated where lower is better. NaN stays
 * NaN. */
double objective_score(nb_metric m, double value);

/* Whether the objective has its own member in the journal and best.json: any metric but
 * accuracy and loss, which are always there. */
int objective_is_extra(nb_metric m);

/* "dev_rmse": its member in metrics.jsonl, summary.json, the journal, best.json. */
void objective_key(nb_metric m, const char *split, char *buf, size_t cap);

/* "dev rmse", "dev micro f1": its name in what people read. */
void objective_label(nb_metric m, char *buf, size_t cap);

/* The values the metric can take: [*lo, *hi] (losses and errors >= 0, accuracies and F1 in
 * [0, 1], R² <= 1). */
void objective_bounds(nb_metric m, double *lo, double *hi);

#endif /* NABLA_STUDY_OBJECTIVE_H */
