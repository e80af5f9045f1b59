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
    int has_lock;           /* it holds .lock (a run or study, perhaps one just begun) */
    /* What is neither, for messages: "a.c, src/, x.txt and 12 more" (the first three by
     * name; a directory gets its '/'). A study's data/ (its decompressed training data),
     * best/ (where best.json's command trains) and refit/ (tune --refit's run) count here
     * unless the directory holds a study's other files. */
    int n_others;
    char others[160];
} dir_contents;

/* Looks at what path is and holds. A missing path (or one whose parent is not a directory,
 * which creating it will report) is not an error: exists is 0. Returns 0, or -1 with err. */
int dir_contents_read(const char *path, dir_contents *c, nb_error *err);

/* Whether `nabla train` may write its run into dir: it is new, empty or a run directory. With
 * resuming (--resume), dir must be a run's already (hold a run's files), and may hold other
 * files of the user's; it must not be a study. Returns 0, or -1 with a one-line message naming dir and what is in it
 * (`opt` is the option that named it, for the message). */
int dir_check_for_run(const char *dir, const char *opt, int resuming, nb_error *err);

/* Whether `nabla tune` may write its study into dir: new, empty or a study. */
int dir_check_for_study(const char *dir, nb_error *err);

/* ---- nabla's own files ----
 * A name of a run's or a study's files (those above, .lock and report.html, and their
 * temporaries) in a directory that is a run or a study, or holds a .lock (a run just begun),
 * and every file in a study's data/, is nabla's own: the run or study that owns it writes it,
 * under that name, and nothing else does. So no output a user names (--save-weights, report
 * --out) may land on one, and no file nabla writes may reach one through a symbolic link (a
 * run's config.json linked to its .lock or to another run's metrics.jsonl). Where a write
 * lands is judged with every link followed (the final target). */

/* For an output a user names (opt: "--save-weights", "--out" of report): refuses one whose
 * final target is nabla's own file, or (own_dir, the run being written, whether it exists yet
 * or not; NULL for none) any file inside own_dir, which holds the run's files only. A name the
 * command itself writes there (allowed: "report.html" for report; NULL for none) is allowed.
 * Returns 0, or -1 with a one-line message. */
int dir_check_output(const char *path, const char *opt, const char *own_dir,
                     const char *allowed, nb_error *err);

/* The output rule's check of a path that is a symbolic link (fileio.h, nb_set_link_guard):
 * refuses it when the link leads to nabla's own file. Returns 0, or -1 with a message. */
int dir_link_guard(const char *path, nb_error *err);

/* Whether dir is a study's trials/ or anything under it (STUDY/trials/N is a trial's
 * directory), whether it exists yet or not: the tuner's, written by its trials only. Fills
 * study with the study's path (size bytes) and *depth with how far below trials/ dir is (0:
 * trials/ itself, 1: a trial's directory, more: inside one). */
int dir_in_trials(const char *dir, char *study, size_t size, int *depth);

#endif /* NABLA_CLI_DIR_KIND_H */
