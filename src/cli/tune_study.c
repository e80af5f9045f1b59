/* The study directory: study.json (the settings, to refuse continuing a study with other
 * ones), a lock (one tuner per study), and journal.jsonl, append-only, read back when the same
 * command runs again. */
#include "tune_study.h"

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
#include "study_files.h"
#include "study_settings.h"

/* ---- the study's files, as this tuner left them ------------------------------------------- */

static void seen_from(study_file_seen *seen, const struct stat *st)
{
    seen->known = 1;
    seen->dev = st->st_dev;
    seen->ino = st->st_ino;
    seen->size = st->st_size;
    seen->mtime = st->st_mtim;
}

/* Records path as it is now (not there: known = 0). */
static void seen_now(study_file_seen *seen, const char *path)
{
    struct stat st;
    memset(seen, 0, sizeof *seen);
    if (stat(path, &st) == 0)
        seen_from(seen, &st);
}

static int same_as_seen(const study_file_seen *seen, const struct stat *st)
{
    return seen->known && st->st_dev == seen->dev && st->st_ino == seen->ino &&
           st->st_size == seen->size && st->st_mtim.tv_sec == seen->mtime.tv_sec &&
           st->st_mtim.tv_nsec == seen->mtime.tv_nsec;
}

/* Whether path is as seen: the same file, unchanged; or, not known, still absent. */
static int still_as_seen(const study_file_seen *seen, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return !seen->known && errno == ENOENT;
    return same_as_seen(seen, &st);
}

static int changed_behind(const study *s, const char *path, nb_error *err)
{
    return nb_fail(err, "%s was removed, replaced or changed by another process while this "
                        "tuner wrote %s: the study can no longer be read back as it was; its "
                        "trials are stopped, without writing more there (put the file back "
                        "as it was, or move the study aside)",
                   path, s->dir);
}

int study_check_files(const study *s, nb_error *err)
{
    /* A journal whose lock was removed or replaced may have another tuner appending to it. */
    if (dir_lock_check(&s->lock, err) != 0)
        return -1;
    if (!still_as_seen(&s->journal_seen, s->journal_path))
        return changed_behind(s, s->journal_path, err);
    char *settings = path_join(s->dir, "study.json");
    int rc = !settings                                   ? nb_fail(err, "out of memory")
             : !still_as_seen(&s->settings_seen, settings) ? changed_behind(s, settings, err)
                                                           : 0;
    free(settings);
    return rc;
}

int journal_append(study *s, cJSON *ev, nb_error *err)
{
    if (study_check_files(s, err) != 0) {
        cJSON_Delete(ev);
        return -1;
    }
    size_t n;
    char *text = json_line(ev, &n, err);
    if (!text)
        return -1;
    int fd = nb_open_append(s->journal_path, err);
    if (fd < 0) {
        free(text);
        return -1;
    }
    /* The file opened must be the one checked (not one put there in between). */
    struct stat st;
    off_t before = s->journal_seen.known ? s->journal_seen.size : 0;
    if (fstat(fd, &st) != 0 || (s->journal_seen.known ? !same_as_seen(&s->journal_seen, &st)
                                                      : st.st_size != 0)) {
        close(fd);
        free(text);
        return changed_behind(s, s->journal_path, err);
    }
    /* Written whole (a short write is followed by one for the rest, which tells why: a full
     * disk says ENOSPC), or taken back to where it was. */
    int rc = nb_write_all(fd, text, n) == 0 && nb_fsync_output(fd) == 0 ? 0 : -1;
    int saved = errno;
    if (rc != 0 && ftruncate(fd, before) != 0) {
        /* a partial line left: the reader drops it */
    }
    /* What the journal is now, for the next check: its size must be ours (someone who
     * wrote to it since the check above would otherwise pass for this tuner). */
    int ours = rc == 0 && fstat(fd, &st) == 0 && st.st_size == before + (off_t)n;
    if (ours)
        seen_from(&s->journal_seen, &st);
    else
        s->journal_seen.known = 0;   /* not known any more: the next append refuses */
    close(fd);
    free(text);
    if (rc != 0)
        return nb_fail(err, "%s: cannot append: %s", s->journal_path, strerror(saved));
    if (!ours)
        return changed_behind(s, s->journal_path, err);
    return 0;
}

/* ---- study.json ---------------------------------------------------------------------------- */

/* Whether the journal holds an event (a whole line): a study has started there. */
static int journal_has_events(const study *s)
{
    unsigned char *data = NULL;
    size_t n = 0;
    nb_error err;
    int yes = nb_read_file(s->journal_path, &data, &n, &err) == 0 && n > 0 && memchr(data, '\n', n);
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
    int rc = 0, other = 0;
    struct stat st;
    if (path && stat(path, &st) != 0 && errno == ENOENT) {
        /* Without its settings, a study's journal cannot be told from another study's. */
        if (journal_has_events(s)) {
            fprintf(stderr, "nabla: %s, the study's settings, is missing, but %s has trials: "
                            "their settings cannot be checked against this command's. Put "
                            "study.json back, or use another --out\n", path, s->journal_path);
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
        seen_now(&s->settings_seen, path);
    free(path);
    cJSON_Delete(want);
    if (rc != 0)
        *exit_code = other ? EXIT_USAGE : EXIT_RUNTIME;   /* other settings: the command's */
    return rc;
}

/* ---- the journal, read back ---------------------------------------------------------------- */

/* Reads the journal and trials/ (study_files.h). A last line of the journal without
 * its newline is an append cut short by a crash: it is cut off here (the event did not happen),
 * so the next append starts a line of its own. */
static int read_journal(study *s, int *exit_code)
{
    nb_error err;
    int rc = study_read_back(s->dir, s->opt, s->trials, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "nabla: %s; the study's files are damaged (move the study aside, or "
                        "mend that file)\n", err.msg);
    unsigned char *data = NULL;
    size_t n = 0, whole = 0;
    struct stat st;
    if (rc == 0 && stat(s->journal_path, &st) == 0) {
        rc = nb_read_file(s->journal_path, &data, &n, &err);
        if (rc != 0)
            fprintf(stderr, "nabla: %s\n", err.msg);
        whole = n;
        while (rc == 0 && whole > 0 && data[whole - 1] != '\n')
            whole--;
        free(data);
        if (rc == 0 && whole < n && (rc = truncate(s->journal_path, (off_t)whole)) != 0)
            fprintf(stderr, "nabla: %s: cannot cut off its unfinished last line: %s\n",
                    s->journal_path, strerror(errno));
    }
    if (rc == 0)
        seen_now(&s->journal_seen, s->journal_path);
    if (rc != 0)
        *exit_code = EXIT_RUNTIME;
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
    s->journal_path = path_join(o->out, "journal.jsonl");
    s->trials = trials_new(o->trials, o->rounds);
    s->round_space = calloc((size_t)o->rounds, sizeof *s->round_space);
    if (!s->dir || !s->journal_path || !s->trials || !s->round_space) {
        fprintf(stderr, "nabla: out of memory\n");
        *exit_code = EXIT_RUNTIME;
        return -1;
    }
    s->round_space[0] = o->space;
    s->rounds_known = 1;
    if (claim_dir(s, exit_code) != 0 || check_settings(s, exit_code) != 0 ||
        read_journal(s, exit_code) != 0)
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
    if (s->trials)
        trials_free(s->trials, s->opt->trials);
    free(s->round_space);
    free(s->trial_data);
    free(s->journal_path);
    free(s->dir);
    dir_lock_release(&s->lock);
    memset(s, 0, sizeof *s);
    s->lock.fd = -1;
}
