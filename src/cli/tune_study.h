/* A study of `nabla tune`: its directory, its journal and what it knows of each trial. */
#ifndef NABLA_CLI_TUNE_STUDY_H
#define NABLA_CLI_TUNE_STUDY_H

#include <cjson/cJSON.h>

#include "dir_lock.h"
#include "nabla.h"
#include "study_journal.h"
#include "tune_options.h"

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

/* Creates STUDY (or opens it again: the settings must match study.json), takes its lock and
 * reads the journal. Returns 0, or -1 with *exit_code set and the message printed. */
int study_open(study *s, tune_options *o, int *exit_code);
void study_close(study *s);

/* Appends one event (a JSON object: "trial", "state", ...) to the journal: one write, then
 * fsync, so that it is there whole or not at all after a crash. Takes ownership of ev. */
int journal_append(study *s, cJSON *ev, nb_error *err);

#endif /* NABLA_CLI_TUNE_STUDY_H */
