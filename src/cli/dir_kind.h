/* What a directory is to nabla: a run directory (`nabla train --out`), a study (`nabla tune
 * --out`), new, empty, or something else. train and tune ask before they write into one,
 * report before it reads one: the names that make a run or a study are listed here only. */
#ifndef NABLA_CLI_DIR_KIND_H
#define NABLA_CLI_DIR_KIND_H

#include "nabla.h"

typedef struct dir_contents {
    int exists;             /* something is at the path */
    int is_dir;             /* ... and it is a directory (links followed) */
    char what[32];          /* if not: what it is ("a regular file") */
    /* The most telling name it holds of a run's files and of a study's ("" for none): a run
     * has config.json, metrics.jsonl, model.safetensors, checkpoints, a trial's train.log, ...;
     * a study study.json, journal.jsonl, best.json, trials/. A name's temporary files
     * ("config.json.tmp.<pid>.<n>", left by a process killed while writing) count as it; a
     * lock and a report (.lock, report.html) belong to both. */
    char run_file[64];
    char study_file[64];
    /* What is neither, for messages: "a.c, src/, x.txt and 12 more" (the first three by
     * name; a directory gets its '/'). A study's data/ (its decompressed training data) and
     * best/ (where best.json's command trains) count here unless the directory holds a
     * study's other files. */
    int n_others;
    char others[160];
} dir_contents;

/* Looks at what path is and holds. A missing path (or one whose parent is not a directory,
 * which creating it will report) is not an error: exists is 0. Returns 0, or -1 with err. */
int dir_contents_read(const char *path, dir_contents *c, nb_error *err);

/* Whether `nabla train` may write its run into dir: it is new, empty or a run directory. With
 * resuming (--resume), dir is a run's already and may hold other files of the user's; it only
 * must not be a study. Returns 0, or -1 with a one-line message naming dir and what is in it
 * (`opt` is the option that named it, for the message). */
int dir_check_for_run(const char *dir, const char *opt, int resuming, nb_error *err);

/* Whether `nabla tune` may write its study into dir: new, empty or a study. */
int dir_check_for_study(const char *dir, nb_error *err);

#endif /* NABLA_CLI_DIR_KIND_H */
