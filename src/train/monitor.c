/* The dev-set metrics early stopping can watch: one row each. A new metric of nb_eval_result
 * becomes monitorable by adding its row (and its enum value in nabla.h). */
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
} monitors[NB_MONITORS] = {
    [NB_MONITOR_LOSS] = {"loss", offsetof(nb_eval_result, loss), 0,
                         TASK(NB_TASK_CLASSIFICATION) | TASK(NB_TASK_REGRESSION) |
                             TASK(NB_TASK_MULTILABEL)},
    [NB_MONITOR_ACCURACY] = {"accuracy", offsetof(nb_eval_result, accuracy), 1,
                             TASK(NB_TASK_CLASSIFICATION) | TASK(NB_TASK_MULTILABEL)},
    [NB_MONITOR_MSE] = {"mse", offsetof(nb_eval_result, mse), 0, TASK(NB_TASK_REGRESSION)},
    [NB_MONITOR_RMSE] = {"rmse", offsetof(nb_eval_result, rmse), 0, TASK(NB_TASK_REGRESSION)},
    [NB_MONITOR_MAE] = {"mae", offsetof(nb_eval_result, mae), 0, TASK(NB_TASK_REGRESSION)},
    [NB_MONITOR_R2] = {"r2", offsetof(nb_eval_result, r2), 1, TASK(NB_TASK_REGRESSION)},
    [NB_MONITOR_MICRO_F1] = {"micro_f1", offsetof(nb_eval_result, micro_f1), 1,
                             TASK(NB_TASK_MULTILABEL)},
    [NB_MONITOR_MACRO_F1] = {"macro_f1", offsetof(nb_eval_result, macro_f1), 1,
                             TASK(NB_TASK_MULTILABEL)},
};

const char *nb_monitor_name(nb_monitor m)
{
    return (unsigned)m < NB_MONITORS ? monitors[m].name : "unknown";
}

int nb_monitor_parse(const char *s, nb_monitor *out)
{
    for (int i = 0; s && i < NB_MONITORS; i++)
        if (strcmp(monitors[i].name, s) == 0) {
            *out = (nb_monitor)i;
            return 0;
        }
    return -1;
}

int nb_monitor_higher_is_better(nb_monitor m)
{
    return (unsigned)m < NB_MONITORS && monitors[m].higher_is_better;
}

int nb_monitor_applies(nb_monitor m, nb_task task)
{
    return (unsigned)m < NB_MONITORS && (unsigned)task < NB_TASKS &&
           (monitors[m].tasks & TASK(task)) != 0;
}

double nb_monitor_value(nb_monitor m, const nb_eval_result *r)
{
    double v;
    memcpy(&v, (const char *)r + monitors[(unsigned)m < NB_MONITORS ? m : 0].field, sizeof v);
    return v;
}

void nb_monitor_names(nb_task task, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap)
        buf[0] = '\0';
    for (int i = 0; i < NB_MONITORS; i++) {
        if (!nb_monitor_applies((nb_monitor)i, task) || len >= cap)
            continue;
        int n = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", monitors[i].name);
        if (n > 0)
            len += (size_t)n;
    }
}
