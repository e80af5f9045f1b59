/* nabla report: what a study directory (`nabla tune --out STUDY`) holds, read back. */
#ifndef NABLA_CLI_REPORT_STUDY_H
#define NABLA_CLI_REPORT_STUDY_H

#include <cjson/cJSON.h>

#include "study/trial.h"
#include "cli/tune/tune_options.h"
#include "nabla.h"

typedef struct study_data {
    char *dir;                /* as given, without trailing slashes */
    cJSON *settings;          /* study.json */
    tune_options opt;         /* its settings, as tune reads them (study_settings.h) */
    nb_search_space space;    /* its "space" */
    int n_trials;             /* study.json "trials" */
    int n_rounds;             /* study.json "rounds" */
    trial *trials;            /* as the journal tells (study_journal.h) */
    cJSON *best;              /* best.json, or NULL: the study has not finished */
} study_data;

/* Reads study.json, journal.jsonl (each trial as its events left it), best.json and trials/,
 * as nabla tune reads them (study_settings.h, study_files.h). */
int study_load(study_data *s, const char *dir, nb_error *err);
void study_free(study_data *s);

/* Trial numbers from best to worst, as `nabla tune` ranks them: complete trials by the study's
 * objective, then pruned ones by it, then failed and running ones; ties by number.
 * Trials never started are left out; *n gets the count. malloc'd, NULL when out of memory. */
int *study_rank(const study_data *s, int *n);

#endif /* NABLA_CLI_REPORT_STUDY_H */
