/* nabla report: what a study directory (`nabla tune --out STUDY`) holds, read back. */
#ifndef NABLA_CLI_REPORT_STUDY_H
#define NABLA_CLI_REPORT_STUDY_H

#include <cjson/cJSON.h>

#include "nabla.h"

typedef enum study_state {
    SS_PENDING,    /* no event yet */
    SS_RUNNING,
    SS_COMPLETE,
    SS_PRUNED,
    SS_FAILED,
} study_state;

const char *study_state_name(study_state s);

typedef struct study_trial {
    study_state state;        /* of its last event */
    nb_search_point point;    /* its parameters, in the space's order (choices: index) */
    double dev_accuracy, dev_loss, seconds;   /* of its end event (NaN when absent) */
    int epochs;
    char *reason;             /* a failed trial's, or NULL */
    int n_epochs;             /* dev accuracy after epochs 1..n_epochs (NaN where unknown) */
    double *epoch_accuracy;
} study_trial;

typedef struct study_data {
    char *dir;                /* as given, without trailing slashes */
    cJSON *settings;          /* study.json */
    nb_search_space space;    /* its "space" */
    int n_trials;             /* study.json "trials" */
    study_trial *trials;
    cJSON *best;              /* best.json, or NULL: the study has not finished */
} study_data;

/* Reads study.json, journal.jsonl (each trial as its last event left it) and best.json. */
int study_load(study_data *s, const char *dir, nb_error *err);
void study_free(study_data *s);

/* Trial numbers from best to worst, as `nabla tune` ranks them: complete trials by dev
 * accuracy, then pruned ones by dev accuracy, then failed and running ones; ties by number.
 * Trials never started are left out; *n gets the count. malloc'd, NULL when out of memory. */
int *study_rank(const study_data *s, int *n);

#endif /* NABLA_CLI_REPORT_STUDY_H */
