/* The study directory: study.json (the settings, to refuse continuing a study with other
 * ones), a lock (one tuner per study), and the study engine, which keeps journal.jsonl. */
#include "cli/tune/tune_study.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/common/dir_kind.h"
#include "io/fileio.h"
#include "io/json_write.h"
#include "io/paths.h"
#include "cli/common/options.h"
#include "cli/tune/study_files.h"
#include "cli/tune/study_settings.h"

/* ---- the study's files, as this tuner left them ------------------------------------------- */

/* The lock and study.json (the engine checks its journal itself, after this). */
static int own_files_intact(const void *study_ptr, nb_error *err)
{
    const study *s = study_ptr;
    /* A journal whose lock was removed or replaced may have another tuner appending to it. */
    if (dir_lock_check(&s->lock, err) != 0)
        return -1;
    char *settings = path_join(s->dir, "study.json");
    int rc = !settings ? nb_fail(err, "out of memory")
             : !file_seen_still(&s->settings_seen, settings)
                 ? nb_fail(err, "%s was removed, replaced or changed by another process while "
                                "this tuner wrote %s: the study can no longer be read back as it "
                                "was; its trials are stopped, without writing more there (put "
                                "the file back as it was, or move the study aside)",
                           settings, s->dir)
                 : 0;
    free(settings);
    return rc;
}

int study_check_files(const study *s, nb_error *err)
{
    return journal_intact(&s->engine->journal, err);   /* which calls own_files_intact first */
}

/* ---- study.json ---------------------------------------------------------------------------- */

/* Whether the journal holds an event (a whole line): a study has started there. */
static int journal_has_events(const char *journal_path)
{
    unsigned char *data = NULL;
    size_t n = 0;
    nb_error err;
    int yes = nb_read_file(journal_path, &data, &n, &err) == 0 && n > 0 && memchr(data, '\n', n);
    free(data);
    return yes;
}

/* Studies of earlier versions kept --threads among the fixed options; it is not a setting of
 * the study (how a trial runs, not what it learns), so it is left out of the comparison. */
static void drop_threads(cJSON *fixed)
{
    cJSON *item = fixed ? fixed->child : NULL;
    while (item) {
        cJSON *next = item->next;
        if (cJSON_IsString(item) && strcmp(item->valuestring, "--threads") == 0) {
            cJSON *value = next;
            next = value ? value->next : NULL;
            cJSON_Delete(cJSON_DetachItemViaPointer(fixed, item));
            if (value)
                cJSON_Delete(cJSON_DetachItemViaPointer(fixed, value));
        }
        item = next;
    }
}

/* A study.json from before objectives names none: its study was ranked by dev accuracy (where
 * the task has one: tune_objective.h), and its own command, which names none either, goes on
 * with that. So it is compared as if it said so. */
static void legacy_objective(tune_options *o, const tune_options *had, cJSON *want, cJSON *have)
{
    if (!o->objective_text) {
        o->objective = had->objective;
        cJSON_ReplaceItemInObjectCaseSensitive(want, "objective",
                                               cJSON_CreateString(nb_metric_name(o->objective)));
    }
    cJSON_AddStringToObject(have, "objective", nb_metric_name(had->objective));
}

/* Writes study.json for a new study, or checks that an existing one has the same settings
 * (read and checked as tune checks its options: study_settings.h). */
static int check_settings(study *s, int *exit_code)
{
    nb_error err;
    cJSON *want = study_settings_json(s->opt);
    if (!want) {
        fprintf(stderr, "nabla: out of memory\n");
        *exit_code = EXIT_RUNTIME;
        return -1;
    }
    char *path = path_join(s->dir, "study.json");
    char *journal_path = path_join(s->dir, "journal.jsonl");
    int rc = 0, other = 0;
    struct stat st;
    if (!journal_path) {
        fprintf(stderr, "nabla: out of memory\n");
        rc = -1;
    } else if (path && stat(path, &st) != 0 && errno == ENOENT) {
        /* Without its settings, a study's journal cannot be told from another study's. */
        if (journal_has_events(journal_path)) {
            fprintf(stderr, "nabla: %s, the study's settings, is missing, but %s has trials: "
                            "their settings cannot be checked against this command's. Put "
                            "study.json back, or use another --out\n", path, journal_path);
            rc = -1;
        } else if ((rc = write_json_file(s->dir, "study.json", want, &err)) != 0) {
            fprintf(stderr, "nabla: %s\n", err.msg);
        }
    } else if (!path) {
        fprintf(stderr, "nabla: out of memory\n");
        rc = -1;
    } else {
        tune_options had;
        cJSON *have = NULL;
        if (study_settings_read(path, &had, &have, &err) != 0) {
            fprintf(stderr, "nabla: %s; the study's settings are damaged (put back the "
                            "study.json it started with, or use another --out)\n", err.msg);
            rc = -1;
        }
        if (rc == 0)
            drop_threads(cJSON_GetObjectItemCaseSensitive(have, "fixed"));
        if (rc == 0 && had.legacy_objective)
            legacy_objective(s->opt, &had, want, have);
        for (const cJSON *w = want->child; w && rc == 0; w = w->next) {
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(have, w->string);
            if (!h || !cJSON_Compare(w, h, 1)) {
                char *a = cJSON_PrintUnformatted(w), *b = h ? cJSON_PrintUnformatted(h) : NULL;
                fprintf(stderr,
                        "nabla tune: %s was started with other settings: %s is %s there, "
                        "%s now. Run the study's own command to continue it, or use "
                        "another --out\n",
                        s->dir, w->string, b ? b : "missing", a ? a : "?");
                free(a);
                free(b);
                other = 1;
                rc = -1;
            }
        }
        tune_options_free(&had);
        cJSON_Delete(have);
    }
    if (rc == 0)
        file_seen_now(&s->settings_seen, path);
    free(path);
    free(journal_path);
    cJSON_Delete(want);
    if (rc != 0)
        *exit_code = other ? EXIT_USAGE : EXIT_RUNTIME;   /* other settings: the command's */
    return rc;
}

/* ---- the journal, read back ---------------------------------------------------------------- */

/* The engine reads the journal (and cuts off a last line a crash cut short); then trials/ is
 * checked against it (study_files.h). */
static int open_engine(study *s, int *exit_code)
{
    nb_error err;
    nb_study_config cfg;
    s->rules.opt = s->opt;
    s->rules.check_files = own_files_intact;
    s->rules.study = s;
    tune_study_config(&s->rules, &cfg);
    int rc = nb_study_open(&s->engine, s->dir, &cfg, &err);
    if (rc == 0)
        rc = study_files_check(s->dir, s->opt, s->engine->trials, &err);
    if (rc != 0) {
        fprintf(stderr, "nabla: %s; the study's files are damaged (move the study aside, or "
                        "mend that file)\n", err.msg);
        *exit_code = EXIT_RUNTIME;
    }
    return rc;
}

/* The study directory: new, empty or a study (not a run's, not somewhere with other files),
 * created, and locked for this process's life: one tuner per study. Then the files the study
 * writes must be writable by the output rule (fileio.h): best.json, written last, must not
 * fail only after every trial has run. */
static int claim_dir(study *s, int *exit_code)
{
    static const char *const written[] = {"study.json", "journal.jsonl", "best.json"};
    nb_error err;
    /* The kind is checked again once the lock is held: another process may have made it a
     * run directory between the first look and the lock. */
    int rc = dir_check_for_study(s->dir, &err) != 0 || make_dirs(s->dir, &err) != 0 ||
                     dir_lock_take(&s->lock, s->dir, 0, &err) != DIR_LOCK_TAKEN ||
                     dir_check_for_study(s->dir, &err) != 0
                 ? -1
                 : 0;
    for (size_t i = 0; rc == 0 && i < sizeof written / sizeof written[0]; i++) {
        char *path = path_join(s->dir, written[i]);
        rc = path ? nb_output_check(path, &err) : nb_fail(&err, "out of memory");
        free(path);
    }
    if (rc != 0) {
        fprintf(stderr, "nabla: %s\n", err.msg);
        *exit_code = EXIT_RUNTIME;
    }
    return rc;
}

int study_open(study *s, tune_options *o, int *exit_code)
{
    memset(s, 0, sizeof *s);
    s->lock.fd = -1;
    s->opt = o;
    nb_error err;
    s->dir = strdup(o->out);
    if (!s->dir) {
        fprintf(stderr, "nabla: out of memory\n");
        *exit_code = EXIT_RUNTIME;
        return -1;
    }
    if (claim_dir(s, exit_code) != 0 || check_settings(s, exit_code) != 0 ||
        open_engine(s, exit_code) != 0)
        return -1;
    char *trials_dir = path_join(o->out, "trials");
    int rc = trials_dir ? make_dirs(trials_dir, &err) : nb_fail(&err, "out of memory");
    free(trials_dir);
    if (rc != 0) {
        fprintf(stderr, "nabla: %s\n", err.msg);
        *exit_code = EXIT_RUNTIME;
        return -1;
    }
    return 0;
}

void study_close(study *s)
{
    nb_study_close(s->engine);
    free(s->trial_data);
    free(s->dir);
    dir_lock_release(&s->lock);
    memset(s, 0, sizeof *s);
    s->lock.fd = -1;
}
