/* Reading a study directory: study.json (the settings and the space), journal.jsonl (every
 * trial as its last event left it), best.json. */
#include "report_study.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "leaderboard.h"
#include "report_json.h"
#include "run_files.h"

/* More trials than a study could run; bounds the allocation a damaged study.json asks for. */
#define STUDY_MAX_TRIALS 1000000
#define STUDY_MAX_EPOCHS 10000000

static const char *const STATE_NAMES[] = {"pending", "running", "complete", "pruned", "failed"};

const char *study_state_name(study_state s)
{
    return (unsigned)s <= SS_FAILED ? STATE_NAMES[s] : "?";
}

typedef struct journal_job {
    study_data *s;
    const char *path;
} journal_job;

/* The point of a "params" object: every parameter of the space, a choice by its text. */
static int read_params(const study_data *s, const cJSON *params, nb_search_point *p,
                       const char *path, int line, nb_error *err)
{
    if (!cJSON_IsObject(params))
        return nb_fail(err, "%s:%d: \"params\" must be an object", path, line);
    for (int i = 0; i < s->space.n; i++) {
        const nb_search_param *q = &s->space.p[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, q->name);
        nb_error why;
        if (q->kind == NB_DIST_CHOICE ? !cJSON_IsString(v) ||
                                            nb_search_value_parse(q, v->valuestring, &p->v[i],
                                                                  &why) != 0
                                      : !cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            return nb_fail(err, "%s:%d: params: \"%s\" is %s", path, line, q->name,
                           v ? "not a value of the study's space" : "missing");
        if (q->kind != NB_DIST_CHOICE)
            p->v[i] = v->valuedouble;
    }
    return 0;
}

static int record_epoch(study_trial *t, int epoch, double accuracy, nb_error *err)
{
    if (epoch > t->n_epochs) {
        double *grown = realloc(t->epoch_accuracy, (size_t)epoch * sizeof *grown);
        if (!grown)
            return nb_fail(err, "out of memory");
        for (int e = t->n_epochs; e < epoch; e++)
            grown[e] = NAN;
        t->epoch_accuracy = grown;
        t->n_epochs = epoch;
    }
    t->epoch_accuracy[epoch - 1] = accuracy;
    return 0;
}

static int journal_event(const cJSON *ev, int line, void *user, nb_error *err)
{
    journal_job *job = user;
    study_data *s = job->s;
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(ev, "trial");
    if (!jt)
        return 0; /* not about a trial: a round's space */
    const char *state = json_string(ev, "state");
    if (!cJSON_IsNumber(jt) || jt->valuedouble < 0 || jt->valuedouble >= s->n_trials ||
        jt->valuedouble != (int)jt->valuedouble || !state)
        return nb_fail(err, "%s:%d: expected \"trial\" (a trial number of this study) and "
                            "\"state\"", job->path, line);
    study_trial *t = &s->trials[(int)jt->valuedouble];
    study_state st = SS_PENDING;
    for (int k = SS_RUNNING; k <= SS_FAILED; k++)
        if (strcmp(state, STATE_NAMES[k]) == 0)
            st = (study_state)k;
    if (st == SS_PENDING)
        return nb_fail(err, "%s:%d: unknown state \"%s\"", job->path, line, state);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(ev, "params");
    if (params && read_params(s, params, &t->point, job->path, line, err) != 0)
        return -1;
    if (!params && t->state == SS_PENDING)
        return nb_fail(err, "%s:%d: a trial's first event must hold its params", job->path,
                       line);
    /* A pruned trial trains on until the tuner's verdict reaches it and it is killed, and may
     * report epochs after its end event: the end stands (only a later end replaces it). */
    if (st == SS_RUNNING && t->state >= SS_COMPLETE)
        return 0;
    const cJSON *epoch = cJSON_GetObjectItemCaseSensitive(ev, "epoch");
    if (epoch) {
        if (!cJSON_IsNumber(epoch) || epoch->valuedouble < 1 ||
            epoch->valuedouble > STUDY_MAX_EPOCHS || epoch->valuedouble != (int)epoch->valuedouble)
            return nb_fail(err, "%s:%d: bad \"epoch\"", job->path, line);
        if (record_epoch(t, (int)epoch->valuedouble, json_number(ev, "dev_accuracy"), err) != 0)
            return -1;
    }
    double seconds = json_number(ev, "seconds");
    if (!isnan(seconds))
        t->seconds = seconds;
    t->state = st;
    if (st >= SS_COMPLETE) {
        /* A trial's last end event counts (a resumed study may end a trial again). */
        t->dev_accuracy = json_number(ev, "dev_accuracy");
        t->dev_loss = json_number(ev, "dev_loss");
        double e = json_number(ev, "epochs");
        t->epochs = isnan(e) || e < 0 || e > STUDY_MAX_EPOCHS ? 0 : (int)e;
        free(t->reason);
        t->reason = NULL;
        const char *reason = json_string(ev, "reason");
        if (reason && !(t->reason = strdup(reason)))
            return nb_fail(err, "out of memory");
    }
    return 0;
}

static int load_settings(study_data *s, const char *path, nb_error *err)
{
    if (report_read_json(path, 0, &s->settings, err) != 0)
        return -1;
    const char *spec = json_string(s->settings, "space");
    double trials = json_number(s->settings, "trials");
    if (!spec)
        return nb_fail(err, "%s: no \"space\"", path);
    nb_error why;
    if (nb_search_space_parse(&s->space, spec, &why) != 0)
        return nb_fail(err, "%s: \"space\": %s", path, why.msg);
    if (!(trials >= 1 && trials <= STUDY_MAX_TRIALS) || trials != (int)trials)
        return nb_fail(err, "%s: \"trials\" must be a number of trials", path);
    s->n_trials = (int)trials;
    s->trials = calloc((size_t)s->n_trials, sizeof *s->trials);
    if (!s->trials)
        return nb_fail(err, "out of memory");
    for (int i = 0; i < s->n_trials; i++) {
        study_trial *t = &s->trials[i];
        t->dev_accuracy = t->dev_loss = NAN;
    }
    return 0;
}

int study_load(study_data *s, const char *dir, nb_error *err)
{
    memset(s, 0, sizeof *s);
    s->dir = report_dir_name(dir);
    if (!s->dir)
        return nb_fail(err, "out of memory");
    char *settings = path_join(s->dir, "study.json");
    char *journal = path_join(s->dir, "journal.jsonl");
    char *best = path_join(s->dir, "best.json");
    int rc = -1;
    if (!settings || !journal || !best) {
        nb_fail(err, "out of memory");
    } else if (load_settings(s, settings, err) == 0) {
        journal_job job = {s, journal};
        if (report_read_jsonl(journal, journal_event, &job, err) == 0 &&
            report_read_json(best, 1, &s->best, err) == 0)
            rc = 0;
    }
    free(settings);
    free(journal);
    free(best);
    if (rc != 0)
        study_free(s);
    return rc;
}

void study_free(study_data *s)
{
    for (int i = 0; s->trials && i < s->n_trials; i++) {
        free(s->trials[i].reason);
        free(s->trials[i].epoch_accuracy);
    }
    free(s->trials);
    free(s->dir);
    cJSON_Delete(s->settings);
    cJSON_Delete(s->best);
    memset(s, 0, sizeof *s);
}

/* Every trial that started. */
static int rank_entry(const void *ctx, int i, leaderboard_entry *e)
{
    const study_trial *t = &((const study_data *)ctx)->trials[i];
    e->group = t->state == SS_COMPLETE ? RANK_COMPLETE
               : t->state == SS_PRUNED ? RANK_PRUNED : RANK_OTHER;
    e->accuracy = t->dev_accuracy;
    return t->state != SS_PENDING;
}

int *study_rank(const study_data *s, int *n)
{
    return leaderboard_rank(s->n_trials, rank_entry, s, n);
}
