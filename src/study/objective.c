/* The objective of a study (tune_objective.h). */
#include "study/objective.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int objective_parse(const char *text, nb_metric *m)
{
    if (!text)
        return -1;
    if (strncmp(text, "dev_", 4) == 0)
        text += 4;
    return nb_metric_parse(text, m);
}

nb_metric objective_default(nb_task task, int legacy)
{
    if (task == NB_TASK_CLASSIFICATION ||
        (legacy && nb_metric_applies(NB_METRIC_ACCURACY, task)))
        return NB_METRIC_ACCURACY;
    return NB_METRIC_LOSS;
}

double objective_score(nb_metric m, double value)
{
    return nb_metric_higher_is_better(m) ? value : -value;
}

int objective_is_extra(nb_metric m)
{
    return m != NB_METRIC_ACCURACY && m != NB_METRIC_LOSS;
}

void objective_key(nb_metric m, const char *split, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s_%s", split, nb_metric_name(m));
}

void objective_label(nb_metric m, char *buf, size_t cap)
{
    snprintf(buf, cap, "dev %s", nb_metric_name(m));
    for (char *c = buf; *c; c++)
        if (*c == '_')
            *c = ' ';
}

void objective_bounds(nb_metric m, double *lo, double *hi)
{
    *lo = 0;
    *hi = INFINITY;
    switch (m) {
    case NB_METRIC_ACCURACY:
    case NB_METRIC_MICRO_F1:
    case NB_METRIC_MACRO_F1:
        *hi = 1;
        break;
    case NB_METRIC_R2:
        *lo = -INFINITY;
        *hi = 1;
        break;
    default:
        break;
    }
}
