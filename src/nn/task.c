/* Tasks (what a model predicts) and losses (what it trains with): their names. */
#include <string.h>

#include "nabla.h"

static const char *const task_names[NB_TASKS] = {"classification", "regression", "multilabel"};

static const char *const loss_names[NB_LOSSES] = {"cross_entropy", "mse", "l1", "huber",
                                                  "bce"};

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
    return (unsigned)l < NB_LOSSES ? loss_names[l] : "unknown";
}

int nb_loss_parse(const char *s, nb_loss *out)
{
    int i = find_name(loss_names, NB_LOSSES, s);
    if (i < 0)
        return -1;
    *out = (nb_loss)i;
    return 0;
}
