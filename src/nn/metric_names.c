/* The metrics of nb_eval_result by name (what early stopping watches, what the program prints):
 * one row each. A new metric of nb_eval_result is its field, its enum value in nabla.h and its
 * row here. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "nabla.h"

#define TASK(t) (1u << (t))

static const struct {
    const char *name;
    size_t field;            /* offsetof a double in nb_eval_result */
    int higher_is_better;
    unsigned tasks;          /* TASK(...) of the tasks whose models have it */
} monitors[NB_METRICS] = {
    [NB_METRIC_LOSS] = {"loss", offsetof(nb_eval_result, loss), 0,
                         TASK(NB_TASK_CLASSIFICATION) | TASK(NB_TASK_REGRESSION) |
                             TASK(NB_TASK_MULTILABEL)},
    [NB_METRIC_ACCURACY] = {"accuracy", offsetof(nb_eval_result, accuracy), 1,
                             TASK(NB_TASK_CLASSIFICATION) | TASK(NB_TASK_MULTILABEL)},
    [NB_METRIC_MSE] = {"mse", offsetof(nb_eval_result, mse), 0, TASK(NB_TASK_REGRESSION)},
    [NB_METRIC_RMSE] = {"rmse", offsetof(nb_eval_result, rmse), 0, TASK(NB_TASK_REGRESSION)},
    [NB_METRIC_MAE] = {"mae", offsetof(nb_eval_result, mae), 0, TASK(NB_TASK_REGRESSION)},
    [NB_METRIC_R2] = {"r2", offsetof(nb_eval_result, r2), 1, TASK(NB_TASK_REGRESSION)},
    [NB_METRIC_MICRO_F1] = {"micro_f1", offsetof(nb_eval_result, micro_f1), 1,
                             TASK(NB_TASK_MULTILABEL)},
    [NB_METRIC_MACRO_F1] = {"macro_f1", offsetof(nb_eval_result, macro_f1), 1,
                             TASK(NB_TASK_MULTILABEL)},
};

const char *nb_metric_name(nb_metric m)
{
    return (unsigned)m < NB_METRICS ? monitors[m].name : "unknown";
}

int nb_metric_parse(const char *s, nb_metric *out)
{
    for (int i = 0; s && i < NB_METRICS; i++)
        if (strcmp(monitors[i].name, s) == 0) {
            *out = (nb_metric)i;
            return 0;
        }
    return -1;
}

int nb_metric_higher_is_better(nb_metric m)
{
    return (unsigned)m < NB_METRICS && monitors[m].higher_is_better;
}

int nb_metric_applies(nb_metric m, nb_task task)
{
    return (unsigned)m < NB_METRICS && (unsigned)task < NB_TASKS &&
           (monitors[m].tasks & TASK(task)) != 0;
}

double nb_metric_value(nb_metric m, const nb_eval_result *r)
{
    double v;
    memcpy(&v, (const char *)r + monitors[(unsigned)m < NB_METRICS ? m : 0].field, sizeof v);
    return v;
}

void nb_metric_names(nb_task task, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap)
        buf[0] = '\0';
    for (int i = 0; i < NB_METRICS; i++) {
        if (!nb_metric_applies((nb_metric)i, task) || len >= cap)
            continue;
        int n = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", monitors[i].name);
        if (n > 0)
            len += (size_t)n;
    }
}
