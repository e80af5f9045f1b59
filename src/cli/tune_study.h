/* A study of `nabla tune`: its directory, its journal and what it knows of each trial. */
#ifndef NABLA_CLI_TUNE_STUDY_H
#define NABLA_CLI_TUNE_STUDY_H

#include <cjson/cJSON.h>

#include "dir_lock.h"
#include "nabla.h"
#include "tune_options.h"

typedef enum trial_state {
    TRIAL_PENDING,    /* not started */
    TRIAL_RUNNING,    /* started, not finished (or stopped with the study) */
    TRIAL_COMPLETE,
    TRIAL_PRUNED,
    TRIAL_FAILED,
} trial_state;

typedef struct trial {
    int round;
    trial_state state;
    int has_point;
    nb_search_point point;
    /* Dev accuracy and loss after each epoch, as reported (NaN where not yet). */
    double *dev_accuracy, *dev_loss;
    int n_reported;          /* epochs 1..n_reported have values */
    int capacity;
    double seconds;          /* wall time so far, over every process that ran it */
    /* Finished trials: the result. */
    double final_accuracy, final_loss;
    int epochs;
    char reason[256];        /* failed: why */
    /* While the study runs: */
    int epochs_total;        /* the trial's --epochs, from its reports */
    int decided;             /* epochs 1..decided have passed the pruner */
    int exited;              /* its process ended; the result waits for the pruner */
    trial_state exit_state;  /* complete or failed, as the process ended */
} trial;

typedef struct study {
    tune_options *opt;
    char *dir;
    char *journal_path;
    dir_lock lock;           /* one tuner per study */
    trial *trials;           /* opt->trials of them */
    nb_search_space *round_space; /* opt->rounds of them; round r's is known once it starts */
    int rounds_known;
    char *trial_data;        /* --data for the trials: the decompressed copy, or NULL */
} study;

const char *trial_state_name(trial_state s);
int trial_finished(const trial *t);

/* Creates STUDY (or opens it again: the settings must match study.json), takes its lock and
 * reads the journal. Returns 0, or -1 with *exit_code set and the message printed. */
int study_open(study *s, tune_options *o, int *exit_code);
void study_close(study *s);

/* Records a value for epoch (1-based) of trial t; 1 if it is new, 0 if known, -1 no memory. */
int trial_set_epoch(trial *t, int epoch, double accuracy, double loss);

/* Appends one event (a JSON object: "trial", "state", ...) to the journal: one write, then
 * fsync, so that it is there whole or not at all after a crash. Takes ownership of ev. */
int journal_append(study *s, cJSON *ev, nb_error *err);

/* The "params" object of a point: numbers for numeric parameters, the text of choices. */
cJSON *params_json(const nb_search_space *space, const nb_search_point *p);

/* Trials of round r: [*first, *end). */
void round_range(const tune_options *o, int r, int *first, int *end);

#endif /* NABLA_CLI_TUNE_STUDY_H */
