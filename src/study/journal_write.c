/* A study's journal, written: one process appends each event whole and fsync'd, after
 * checking that nobody else changed the study's files since its last append (journal.h). */
#include "study/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/fileio.h"
#include "io/json_files.h"
#include "io/json_write.h"
#include "io/paths.h"
#include "study/objective.h"

static int changed_behind(const study_journal *j, const char *path, nb_error *err)
{
    return nb_fail(err, "%s was removed, replaced or changed by another process while this "
                        "tuner wrote %s: the study can no longer be read back as it was; its "
                        "trials are stopped, without writing more there (put the file back "
                        "as it was, or move the study aside)",
                   path, j->dir);
}

int journal_take(study_journal *j, const char *dir, const nb_study_config *cfg, nb_error *err)
{
    memset(j, 0, sizeof *j);
    j->dir = dir;
    j->cfg = cfg;
    j->path = path_join(dir, "journal.jsonl");
    if (!j->path)
        return nb_fail(err, "out of memory");
    struct stat st;
    if (stat(j->path, &st) == 0) {
        unsigned char *data = NULL;
        size_t n = 0, whole;
        if (nb_read_file(j->path, &data, &n, err) != 0)
            return -1;
        for (whole = n; whole > 0 && data[whole - 1] != '\n'; whole--)
            ;
        free(data);
        if (whole < n && truncate(j->path, (off_t)whole) != 0)
            return nb_fail(err, "%s: cannot cut off its unfinished last line: %s", j->path,
                           strerror(errno));
    }
    file_seen_now(&j->seen, j->path);
    return 0;
}

void journal_release(study_journal *j)
{
    free(j->path);
    memset(j, 0, sizeof *j);
}

int journal_intact(const study_journal *j, nb_error *err)
{
    const nb_study_hooks *h = &j->cfg->hooks;
    /* The caller's files first: a journal whose lock was removed or replaced may have another
     * process appending to it. */
    if (h->check_files && h->check_files(h->user, err) != 0)
        return -1;
    if (!file_seen_still(&j->seen, j->path))
        return changed_behind(j, j->path, err);
    return 0;
}

/* Appends one event (taking ev): written whole, then fsync'd; a line cut short is taken back
 * (and a reader drops one a crash cut short). */
static int append(study_journal *j, cJSON *ev, nb_error *err)
{
    if (!j->path) { /* a study in memory only */
        cJSON_Delete(ev);
        return 0;
    }
    if (journal_intact(j, err) != 0) {
        cJSON_Delete(ev);
        return -1;
    }
    size_t n;
    char *text = json_line(ev, &n, err);
    if (!text)
        return -1;
    int fd = nb_open_append(j->path, err);
    if (fd < 0) {
        free(text);
        return -1;
    }
    /* The file opened must be the one checked (not one put there in between). */
    struct stat st;
    off_t before = j->seen.known ? j->seen.size : 0;
    if (fstat(fd, &st) != 0 ||
        (j->seen.known ? !file_seen_same(&j->seen, &st) : st.st_size != 0)) {
        close(fd);
        free(text);
        return changed_behind(j, j->path, err);
    }
    /* Written whole (a short write is followed by one for the rest, which tells why: a full
     * disk says ENOSPC), or taken back to where it was. */
    int rc = nb_write_all(fd, text, n) == 0 && nb_fsync_output(fd) == 0 ? 0 : -1;
    int saved = errno;
    if (rc != 0 && ftruncate(fd, before) != 0) {
        /* a partial line left: the reader drops it */
    }
    /* What the journal is now, for the next check: its size must be ours (someone who
     * wrote to it since the check above would otherwise pass for this process). */
    int ours = rc == 0 && fstat(fd, &st) == 0 && st.st_size == before + (off_t)n;
    if (ours)
        file_seen_from(&j->seen, &st);
    else
        j->seen.known = 0;   /* not known any more: the next append refuses */
    close(fd);
    free(text);
    if (rc != 0)
        return nb_fail(err, "%s: cannot append: %s", j->path, strerror(saved));
    if (!ours)
        return changed_behind(j, j->path, err);
    return 0;
}

/* A figure exactly (json_double: cJSON's own printing may round the last digit), so that a
 * study read back compares the very numbers it compared before it stopped; NaN as null. */
static void add_number_or_null(cJSON *ev, const char *name, double v)
{
    cJSON_AddItemToObject(ev, name, json_double(v));
}

/* A report's or an end's dev figures: accuracy, loss, and the objective where it is neither. */
static void add_figures(const study_journal *j, cJSON *ev, double accuracy, double loss,
                        double objective)
{
    add_number_or_null(ev, "dev_accuracy", accuracy);
    add_number_or_null(ev, "dev_loss", loss);
    if (objective_is_extra(j->cfg->objective)) {
        char key[64];
        objective_key(j->cfg->objective, "dev", key, sizeof key);
        add_number_or_null(ev, key, objective);
    }
}

static cJSON *trial_event(int i, const char *state)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddNumberToObject(ev, "trial", i);
    cJSON_AddStringToObject(ev, "state", state);
    return ev;
}

int journal_round(study_journal *j, int round, const nb_search_space *space, nb_error *err)
{
    char *text = malloc(NB_SEARCH_FORMAT_MAX);
    if (!text || nb_search_space_format(space, text, NB_SEARCH_FORMAT_MAX) != 0) {
        free(text);
        return nb_fail(err, "out of memory");
    }
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddNumberToObject(ev, "round", round);
    cJSON_AddStringToObject(ev, "space", text);
    free(text);
    return append(j, ev, err);
}

int journal_start(study_journal *j, int i, const trial *t, const char *const *args, int n_args,
                  int rank, nb_error *err)
{
    cJSON *ev = trial_event(i, "running");
    cJSON_AddNumberToObject(ev, "round", t->round);
    if (rank >= 0)
        cJSON_AddNumberToObject(ev, "rank", rank);
    cJSON_AddItemToObject(ev, "params", params_json(&j->cfg->space, &t->point));
    if (t->waited > 0)
        cJSON_AddItemToObject(ev, "waited_seconds", json_double(t->waited));
    if (args) {
        cJSON *a = cJSON_AddArrayToObject(ev, "args");
        for (int k = 0; k < n_args; k++)
            cJSON_AddItemToArray(a, cJSON_CreateString(args[k]));
    }
    return append(j, ev, err);
}

int journal_epoch(study_journal *j, int i, const trial *t, int e, nb_error *err)
{
    cJSON *ev = trial_event(i, "running");
    cJSON_AddNumberToObject(ev, "epoch", e);
    cJSON_AddNumberToObject(ev, "epochs_planned", t->epochs_total);
    add_figures(j, ev, t->dev_accuracy[e - 1], t->dev_loss[e - 1], t->dev_objective[e - 1]);
    cJSON_AddItemToObject(ev, "seconds", json_double(t->seconds));
    return append(j, ev, err);
}

int journal_interrupted(study_journal *j, int i, const trial *t, nb_error *err)
{
    cJSON *ev = trial_event(i, "interrupted");
    cJSON_AddStringToObject(ev, "reason", t->reason);
    cJSON_AddItemToObject(ev, "seconds", json_double(t->seconds));
    return append(j, ev, err);
}

int journal_end(study_journal *j, int i, const trial *t, nb_error *err)
{
    cJSON *ev = trial_event(i, nb_trial_state_name(t->state));
    cJSON_AddItemToObject(ev, "params", params_json(&j->cfg->space, &t->point));
    add_figures(j, ev, t->final_accuracy, t->final_loss, t->final_objective);
    cJSON_AddNumberToObject(ev, "epochs", t->epochs);
    cJSON_AddItemToObject(ev, "seconds", json_double(t->seconds));
    if (t->state == NB_TRIAL_FAILED)
        cJSON_AddStringToObject(ev, "reason", t->reason);
    return append(j, ev, err);
}
