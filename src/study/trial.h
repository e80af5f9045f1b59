/* What a study knows of each trial: from its journal, and while it runs, from what the trials
 * tell it (nb_study_tell_*). Internal to the library and the program. */
#ifndef NABLA_STUDY_TRIAL_H
#define NABLA_STUDY_TRIAL_H

#include "nabla.h"

typedef struct trial {
    int round;
    nb_trial_state state;
    int has_point;
    nb_search_point point;
    /* Dev accuracy, loss and the study's objective after each epoch, as reported (the
     * objective NaN where not yet; the accuracy NaN for a task without one). */
    double *dev_accuracy, *dev_loss, *dev_objective;
    int n_reported;          /* epochs 1..n_reported have values */
    int capacity;
    int epochs_total;        /* the trial's epochs, from its reports (0: none yet) */
    double seconds;          /* wall time so far, over every run of it */
    double waited;           /* worker-seconds its start waited for earlier results */
    /* Finished trials: the result. */
    double final_accuracy, final_loss, final_objective;
    int epochs;
    char reason[512];        /* failed or interrupted: why */
    /* Only while a study runs: */
    int given;               /* handed out by nb_study_ask, and not ended or interrupted */
    int decided;             /* epochs 1..decided have passed the pruner */
    int exited;              /* its run ended; the result waits for the pruner */
    nb_trial_state exit_state;  /* complete or failed, as the run ended */
} trial;

/* Complete, pruned or failed: nothing changes it any more. */
int trial_finished(const trial *t);

/* `n` trials, nothing known of them yet (results NaN), each in its round; free with
 * trials_free. NULL when out of memory. */
trial *trials_new(int n, int rounds);
void trials_free(trial *t, int n);

/* Records the values of epoch (1-based) of trial t (objective: a number); 1 if it is new, 0 if
 * known, -1 no memory. */
int trial_set_epoch(trial *t, int epoch, double accuracy, double loss, double objective);

/* Trials of round r of a study of `trials` trials in `rounds` rounds: [*first, *end). */
void round_range(int trials, int rounds, int r, int *first, int *end);

#endif /* NABLA_STUDY_TRIAL_H */
