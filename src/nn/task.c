/* Tasks (what a model predicts) and losses (what it trains with): their names. */
#include <string.h>

#include "nabla.h"

static const char *const task_names[NB_TASKS] = {"classification", "regression", "multilabel"};

/* One row per loss: its name and the task it trains. */
static const struct {
    const char *name;
    nb_task task;
} loss_rows[NB_LOSSES] = {
    [NB_LOSS_CROSS_ENTROPY] = {"cross_entropy", NB_TASK_CLASSIFICATION},
    [NB_LOSS_MSE] = {"mse", NB_TASK_REGRESSION},
    [NB_LOSS_L1] = {"l1", NB_TASK_REGRESSION},
    [NB_LOSS_HUBER] = {"huber", NB_TASK_REGRESSION},
    [NB_LOSS_BCE] = {"bce", NB_TASK_MULTILABEL},
};

/* The loss of each task unless --loss says otherwise. */
static const nb_loss default_loss[NB_TASKS] = {
    [NB_TASK_CLASSIFICATION] = NB_LOSS_CROSS_ENTROPY,
    [NB_TASK_REGRESSION] = NB_LOSS_MSE,
    [NB_TASK_MULTILABEL] = NB_LOSS_BCE,
};

static int find_name(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

const char *nb_task_name(nb_task t)
{
    return (unsigned)t < NB_TASKS ? task_names[t] : "unknown";
}

int nb_task_parse(const char *s, nb_task *out)
{
    int i = find_name(task_names, NB_TASKS, s);
    if (i < 0)
        return -1;
    *out = (nb_task)i;
    return 0;
}

const char *nb_loss_name(nb_loss l)
{
    return (unsigned)l < NB_LOSSES ? loss_rows[l].name : "unknown";
}

int nb_loss_parse(const char *s, nb_loss *out)
{
    for (int i = 0; s && i < NB_LOSSES; i++)
        if (strcmp(loss_rows[i].name, s) == 0) {
            *out = (nb_loss)i;
            return 0;
        }
    return -1;
}

nb_task nb_loss_task(nb_loss l)
{
    return (unsigned)l < NB_LOSSES ? loss_rows[l].task : NB_TASKS;
}

nb_loss nb_task_default_loss(nb_task t)
{
    return (unsigned)t < NB_TASKS ? default_loss[t] : NB_LOSSES;
}
