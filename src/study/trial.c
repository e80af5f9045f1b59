/* What a study knows of each trial (trial.h). */
#include "study/trial.h"

#include <math.h>
#include <stdlib.h>

static const char *const STATE_NAMES[] = {"pending",  "running", "interrupted",
                                          "complete", "pruned",  "failed"};

const char *nb_trial_state_name(nb_trial_state s)
{
    return (unsigned)s <= NB_TRIAL_FAILED ? STATE_NAMES[s] : "?";
}

int trial_finished(const trial *t) { return t->state >= NB_TRIAL_COMPLETE; }

void round_range(int trials, int rounds, int r, int *first, int *end)
{
    /* The first (trials % rounds) rounds take one trial more. */
    int base = trials / rounds, extra = trials % rounds;
    *first = r * base + (r < extra ? r : extra);
    *end = *first + base + (r < extra);
}

trial *trials_new(int n, int rounds)
{
    trial *t = calloc((size_t)(n > 0 ? n : 1), sizeof *t);
    if (!t)
        return NULL;
    for (int r = 0; r < rounds; r++) {
        int first, end;
        round_range(n, rounds, r, &first, &end);
        for (int i = first; i < end; i++)
            t[i].round = r;
    }
    for (int i = 0; i < n; i++)
        t[i].final_accuracy = t[i].final_loss = t[i].final_objective = NAN;
    return t;
}

void trials_free(trial *t, int n)
{
    for (int i = 0; t && i < n; i++) {
        free(t[i].dev_accuracy);
        free(t[i].dev_loss);
        free(t[i].dev_objective);
    }
    free(t);
}

int trial_set_epoch(trial *t, int epoch, double accuracy, double loss, double objective)
{
    if (epoch > t->capacity) {
        int cap = t->capacity ? t->capacity : 8;
        while (cap < epoch)
            cap *= 2;
        double **arrays[] = {&t->dev_accuracy, &t->dev_loss, &t->dev_objective};
        for (int k = 0; k < 3; k++) {
            double *a = realloc(*arrays[k], (size_t)cap * sizeof *a);
            if (!a)
                return -1;
            *arrays[k] = a;
            for (int i = t->capacity; i < cap; i++)
                a[i] = NAN;
        }
        t->capacity = cap;
    }
    int is_new = isnan(t->dev_objective[epoch - 1]);
    if (is_new) {
        t->dev_accuracy[epoch - 1] = accuracy;
        t->dev_loss[epoch - 1] = loss;
        t->dev_objective[epoch - 1] = objective;
    }
    if (epoch > t->n_reported)
        t->n_reported = epoch;
    return is_new;
}
