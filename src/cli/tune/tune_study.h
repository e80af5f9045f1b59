/* A study of `nabla tune`: its directory, its journal and what it knows of each trial. */
#ifndef NABLA_CLI_TUNE_STUDY_H
#define NABLA_CLI_TUNE_STUDY_H

#include "io/file_seen.h"
#include <cjson/cJSON.h>
#include <sys/types.h>
#include <time.h>

#include "cli/common/dir_lock.h"
#include "nabla.h"
#include "study/study.h"
#include "cli/tune/tune_options.h"
#include "cli/tune/tune_rules.h"

typedef struct study {
    tune_options *opt;
    char *dir;
    dir_lock lock;           /* one tuner per study */
    file_seen settings_seen; /* study.json as this tuner wrote or checked it */
    tune_rules rules;        /* what the engine asks of the trials (the hooks' user) */
    nb_study *engine;        /* the trials and the journal (nabla.h: nb_study) */
    char *trial_data;        /* --data for the trials: the decompressed copy, or NULL */
} study;

/* Creates STUDY (or opens it again: the settings must match study.json), takes its lock and
 * reads the journal. Returns 0, or -1 with *exit_code set and the message printed. */
int study_open(study *s, tune_options *o, int *exit_code);
void study_close(study *s);

/* Whether the study's lock, journal.jsonl and study.json are still as this tuner left them:
 * not removed, replaced or changed by another process. A tuner that went on regardless would
 * finish (exit 0, best.json) a study that no command can read back. Returns 0, or -1 with a
 * message. */
int study_check_files(const study *s, nb_error *err);

#endif /* NABLA_CLI_TUNE_STUDY_H */
