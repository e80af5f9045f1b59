/* A study of `nabla tune`: its directory, its journal and what it knows of each trial. */
#ifndef NABLA_CLI_TUNE_STUDY_H
#define NABLA_CLI_TUNE_STUDY_H

#include <cjson/cJSON.h>
#include <sys/types.h>
#include <time.h>

#include "cli/common/dir_lock.h"
#include "nabla.h"
#include "study_journal.h"
#include "tune_options.h"

/* A file of the study as this tuner left it, to tell when someone else removed, replaced or
 * changed it. known = 0: it did not exist (the journal of a study before its first event). */
typedef struct study_file_seen {
    int known;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} study_file_seen;

typedef struct study {
    tune_options *opt;
    char *dir;
    char *journal_path;
    dir_lock lock;           /* one tuner per study */
    study_file_seen journal_seen;  /* journal.jsonl after this tuner's last append */
    study_file_seen settings_seen; /* study.json as this tuner wrote or checked it */
    trial *trials;           /* opt->trials of them */
    nb_search_space *round_space; /* opt->rounds of them; round r's is known once it starts */
    int rounds_known;
    char *trial_data;        /* --data for the trials: the decompressed copy, or NULL */
} study;

/* Creates STUDY (or opens it again: the settings must match study.json), takes its lock and
 * reads the journal. Returns 0, or -1 with *exit_code set and the message printed. */
int study_open(study *s, tune_options *o, int *exit_code);
void study_close(study *s);

/* Appends one event (a JSON object: "trial", "state", ...) to the journal: written whole, then
 * fsync'd (a line cut short is taken back, and a reader drops one a crash cut short). First
 * checks the study's files (study_check_files). Takes ownership of ev. */
int journal_append(study *s, cJSON *ev, nb_error *err);

/* Whether the study's lock, journal.jsonl and study.json are still as this tuner left them:
 * not removed, replaced or changed by another process. A tuner that went on regardless would
 * finish (exit 0, best.json) a study that no command can read back. Returns 0, or -1 with a
 * message. */
int study_check_files(const study *s, nb_error *err);

#endif /* NABLA_CLI_TUNE_STUDY_H */
