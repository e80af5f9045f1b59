/* A study's journal, read back and checked for sense (see study_journal.h). */
#include "study/journal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "study/study.h"
#include "io/json_files.h"
#include "study/objective.h"

/* More epochs than any trial runs: bounds what a damaged line may ask to allocate. */
#define JOURNAL_MAX_EPOCHS 10000000

cJSON *params_json(const nb_search_space *space, const nb_search_point *p)
{
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; j && i < space->n; i++) {
        const nb_search_param *q = &space->p[i];
        if (q->kind == NB_DIST_CHOICE)
            cJSON_AddStringToObject(j, q->name, q->choices[(int)p->v[i]]);
        else
            cJSON_AddNumberToObject(j, q->name, p->v[i]);
    }
    return j;
}

/* ---- reading ------------------------------------------------------------------------------- */

typedef struct reader {
    const char *path;
    const nb_study_config *cfg; /* the study's settings */
    trial *trials;
    int *start_line, *end_line; /* per trial: the line of its start and of its end (0: none) */
    int *planned;               /* per trial: its --epochs, known from its start */
    nb_search_space *scratch;   /* a round's space, parsed to check it */
} reader;

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int bad(const reader *rd, int line, nb_error *err, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return nb_fail(err, "%s:%d: %s", rd->path, line, what);
}

/* Member `name` of ev as a whole number in [lo, hi], into *out. */
static int read_whole(const reader *rd, int line, const cJSON *ev, const char *name, int lo,
                      int hi, int *out, nb_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, name);
    if (!v)
        return bad(rd, line, err, "\"%s\" is missing", name);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return bad(rd, line, err, "\"%s\" must be a whole number from %d to %d", name, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

/* Member `name` of ev as a finite number in [lo, hi] (hi may be INFINITY), into *out; with
 * null_ok, null gives NaN. */
static int read_number(const reader *rd, int line, const cJSON *ev, const char *name, double lo,
                       double hi, int null_ok, double *out, nb_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, name);
    if (!v)
        return bad(rd, line, err, "\"%s\" is missing", name);
    if (null_ok && cJSON_IsNull(v)) {
        *out = NAN;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return bad(rd, line, err, "\"%s\" must be a number%s", name, null_ok ? " or null" : "");
    double x = v->valuedouble;
    if (x < lo && isinf(hi))
        return bad(rd, line, err, "\"%s\" is %g: it cannot be negative", name, x);
    if (x < lo || x > hi)
        return bad(rd, line, err, "\"%s\" is %g, outside [%g, %g]", name, x, lo, hi);
    *out = x;
    return 0;
}

/* The dev figures of a trial's report or end: "dev_accuracy" (a number in [0, 1] where the
 * task has an accuracy, null where it has none), "dev_loss" (a number >= 0 or null: a loss the
 * trial could not compute) and the objective's own member, if it has one ("dev_rmse"); the
 * objective is a number, but at the end of a failed trial (failed), which may have none. */
static int read_figures(const reader *rd, int line, const cJSON *ev, int failed,
                        double *accuracy, double *loss, double *objective, nb_error *err)
{
    const nb_study_config *o = rd->cfg;
    nb_metric m = o->objective;
    int has_accuracy = nb_metric_applies(NB_METRIC_ACCURACY, o->task);
    if (read_number(rd, line, ev, "dev_accuracy", 0, 1, failed || !has_accuracy, accuracy,
                    err) != 0 ||
        read_number(rd, line, ev, "dev_loss", 0, INFINITY, failed || m != NB_METRIC_LOSS, loss,
                    err) != 0)
        return -1;
    if (!has_accuracy && !isnan(*accuracy))
        return bad(rd, line, err, "\"dev_accuracy\" is %g, but a %s model has no accuracy "
                                  "(it must be null)", *accuracy, nb_task_name(o->task));
    if (!objective_is_extra(m)) {
        *objective = m == NB_METRIC_ACCURACY ? *accuracy : *loss;
        return 0;
    }
    char key[64];
    double lo, hi;
    objective_key(m, "dev", key, sizeof key);
    objective_bounds(m, &lo, &hi);
    return read_number(rd, line, ev, key, lo, hi, failed, objective, err);
}

/* "seconds": the trial's time so far, over every process that ran it: it never decreases. */
static int read_seconds(const reader *rd, int line, const cJSON *ev, int i, double *out,
                        nb_error *err)
{
    if (read_number(rd, line, ev, "seconds", 0, INFINITY, 0, out, err) != 0)
        return -1;
    if (*out < rd->trials[i].seconds)
        return bad(rd, line, err, "\"seconds\" is %g, but trial %d had run %g s already: time "
                                  "goes backwards", *out, i, rd->trials[i].seconds);
    return 0;
}

/* Member `name` of ev as a string that says something. */
static int read_reason(const reader *rd, int line, const cJSON *ev, const char *name,
                       const char **out, nb_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, name);
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return bad(rd, line, err, "\"%s\" must say why (a string)", name);
    *out = v->valuestring;
    return 0;
}

/* The point of a "params" object: every parameter of the study's space and nothing else, a
 * number within its range or one of its choices. */
static int read_params(const reader *rd, int line, const cJSON *params, nb_search_point *p,
                       nb_error *err)
{
    const nb_search_space *space = &rd->cfg->space;
    if (!params)
        return bad(rd, line, err, "\"params\" is missing");
    if (!cJSON_IsObject(params))
        return bad(rd, line, err, "\"params\" must be an object");
    for (int i = 0; i < space->n; i++) {
        const nb_search_param *q = &space->p[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, q->name);
        nb_error why;
        int fits;
        if (q->kind == NB_DIST_CHOICE)
            fits = cJSON_IsString(v) && nb_search_value_parse(q, v->valuestring, &p->v[i],
                                                              &why) == 0;
        else
            fits = cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
                   v->valuedouble >= q->lo && v->valuedouble <= q->hi &&
                   (q->kind != NB_DIST_INT || v->valuedouble == floor(v->valuedouble));
        if (!fits)
            return bad(rd, line, err, "params: \"%s\" is %s", q->name,
                       v ? "not a value of the study's space" : "missing");
        if (q->kind != NB_DIST_CHOICE)
            p->v[i] = v->valuedouble;
    }
    for (const cJSON *m = params->child; m; m = m->next) {
        int known = 0;
        for (int i = 0; i < space->n && !known; i++)
            known = strcmp(m->string, space->p[i].name) == 0;
        if (!known)
            return bad(rd, line, err, "params: \"%s\" is not a parameter of the study's space",
                       m->string);
    }
    return 0;
}

/* {"round":r,"space":"..."}: where round r (after the first) searched. */
static int round_event(reader *rd, const cJSON *ev, int line, nb_error *err)
{
    int r;
    if (!cJSON_GetObjectItemCaseSensitive(ev, "round"))
        return bad(rd, line, err, "neither a trial's event (no \"trial\") nor a round's "
                                  "(no \"round\")");
    if (rd->cfg->rounds < 2)
        return bad(rd, line, err, "a round's event, but the study has one round");
    if (read_whole(rd, line, ev, "round", 1, rd->cfg->rounds - 1, &r, err) != 0)
        return -1;
    const char *spec = json_string(ev, "space");
    nb_error why;
    if (!spec)
        return bad(rd, line, err, "\"space\" must be a search space (a string)");
    if (nb_search_space_parse(rd->scratch, spec, &why) != 0)
        return bad(rd, line, err, "\"space\": %s", why.msg);
    if (rd->scratch->n != rd->cfg->space.n)
        return bad(rd, line, err, "\"space\" has %d parameters, the study's %d",
                   rd->scratch->n, rd->cfg->space.n);
    return 0;
}

/* The command a trial started with (nb_study_hooks.check_command): an array of strings. */
static int args_check(const reader *rd, int line, const nb_search_point *p, const cJSON *args,
                      nb_error *err)
{
    const nb_study_hooks *h = &rd->cfg->hooks;
    int n = cJSON_GetArraySize(args), k = 0;
    const char **list = malloc((size_t)(n > 0 ? n : 1) * sizeof *list);
    if (!list)
        return nb_fail(err, "out of memory");
    for (const cJSON *a = args->child; a; a = a->next, k++)
        list[k] = cJSON_IsString(a) ? a->valuestring : NULL;
    nb_error why;
    int rc = 0;
    for (int j = 0; j < n && rc == 0; j++)
        if (!list[j])
            rc = bad(rd, line, err, "\"args\" must be strings: argument %d is not", j + 1);
    if (rc == 0 && h->check_command &&
        h->check_command(h->user, p, (const char *const *)list, n, &why) != 0)
        rc = bad(rd, line, err, "\"args\" %s", why.msg);
    free(list);
    return rc;
}

/* {"trial":i,"state":"running","round":r,"params":{...},"args":[...]}: trial i starts. */
static int start_event(reader *rd, int i, const cJSON *ev, int line, nb_error *err)
{
    trial *t = &rd->trials[i];
    if (rd->start_line[i])
        return bad(rd, line, err, "trial %d starts a second time (it started at line %d)", i,
                   rd->start_line[i]);
    int round;
    if (read_whole(rd, line, ev, "round", 0, rd->cfg->rounds - 1, &round, err) != 0)
        return -1;
    if (round != t->round)
        return bad(rd, line, err, "trial %d is in round %d of this study, not %d", i, t->round,
                   round);
    const cJSON *rank = cJSON_GetObjectItemCaseSensitive(ev, "rank");
    int r;
    if (rank && read_whole(rd, line, ev, "rank", 0, 1 << 30, &r, err) != 0)
        return -1;
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(ev, "args");
    if (args && !cJSON_IsArray(args))
        return bad(rd, line, err, "\"args\" must be an array");
    if (read_params(rd, line, cJSON_GetObjectItemCaseSensitive(ev, "params"), &t->point,
                    err) != 0 ||
        (args && args_check(rd, line, &t->point, args, err) != 0))
        return -1;
    rd->planned[i] = study_trial_epochs(rd->cfg, &t->point);
    if (rd->planned[i] < 0)
        return nb_fail(err, "out of memory");
    t->waited = 0;
    if (cJSON_GetObjectItemCaseSensitive(ev, "waited_seconds") &&
        read_number(rd, line, ev, "waited_seconds", 0, INFINITY, 0, &t->waited, err) != 0)
        return -1;
    /* A TPE trial's configuration comes from the results of the trials it learns from: it
     * starts after their ends. */
    for (int u = 0; u < study_tpe_given(rd->cfg, i); u++)
        if (!rd->end_line[u])
            return bad(rd, line, err, "trial %d starts before trial %d ended, whose result its "
                                      "configuration depends on (--sampler tpe, --tpe-lag %d)",
                       i, u, rd->cfg->tpe_lag);
    t->has_point = 1;
    t->state = NB_TRIAL_RUNNING;
    rd->start_line[i] = line;
    return 0;
}

/* {"trial":i,"state":"running","epoch":e,...}: trial i reported epoch e. */
static int epoch_event(reader *rd, int i, const cJSON *ev, int line, nb_error *err)
{
    trial *t = &rd->trials[i];
    int epoch = 0, planned = 0;
    double accuracy, loss, objective, seconds;
    if (read_whole(rd, line, ev, "epoch", 1, JOURNAL_MAX_EPOCHS, &epoch, err) != 0 ||
        read_whole(rd, line, ev, "epochs_planned", 1, JOURNAL_MAX_EPOCHS, &planned, err) != 0 ||
        read_figures(rd, line, ev, 0, &accuracy, &loss, &objective, err) != 0 ||
        read_seconds(rd, line, ev, i, &seconds, err) != 0)
        return -1;
    if (epoch > planned)
        return bad(rd, line, err, "epoch %d of a trial of %d epochs", epoch, planned);
    /* A trial runs its --epochs, from its params and the study's settings. */
    if (planned != rd->planned[i])
        return bad(rd, line, err, "trial %d was to run %d epochs, now %d", i, rd->planned[i],
                   planned);
    if (epoch <= t->n_reported)
        return bad(rd, line, err, "epoch %d of trial %d comes after its epoch %d: epochs go "
                                  "backwards or repeat", epoch, i, t->n_reported);
    if (trial_set_epoch(t, epoch, accuracy, loss, objective) < 0)
        return nb_fail(err, "out of memory");
    t->epochs_total = planned;
    t->seconds = seconds;
    t->state = NB_TRIAL_RUNNING;
    return 0;
}

/* {"trial":i,"state":"interrupted","reason":...}: an accident stopped trial i; not its end. */
static int interrupted_event(reader *rd, int i, const cJSON *ev, int line, nb_error *err)
{
    trial *t = &rd->trials[i];
    const char *reason = "";
    double seconds;
    if (read_reason(rd, line, ev, "reason", &reason, err) != 0 ||
        read_seconds(rd, line, ev, i, &seconds, err) != 0)
        return -1;
    snprintf(t->reason, sizeof t->reason, "%s", reason);
    t->seconds = seconds;
    t->state = NB_TRIAL_INTERRUPTED;
    return 0;
}

/* Whether the figures are those the trial reported for its epoch e (from 1). */
static int same_as_epoch(const trial *t, int e, const double *here)
{
    double there[] = {t->dev_accuracy[e - 1], t->dev_loss[e - 1], t->dev_objective[e - 1]};
    for (int k = 0; k < 3; k++)
        if (here[k] != there[k] && !(isnan(here[k]) && isnan(there[k])))
            return 0;
    return 1;
}

/* A complete or pruned trial's result is the dev figures it reported for its last epoch (the
 * pruner's verdict, or the run's summary, which evaluates the same weights); with early
 * stopping, those of its best epoch, one of the epochs it reported. */
static int reported_check(const reader *rd, int line, const trial *t, int epochs,
                          int early_stop, double accuracy, double loss, double objective,
                          nb_error *err)
{
    if (epochs > t->n_reported || isnan(t->dev_objective[epochs - 1]))
        return 0;
    double here[] = {accuracy, loss, objective};
    for (int e = early_stop ? 1 : epochs; e <= epochs; e++)
        if (same_as_epoch(t, e, here))
            return 0;
    char key[64];
    objective_key(rd->cfg->objective, "dev", key, sizeof key);
    const char *names[] = {"dev_accuracy", "dev_loss", key};
    double there[] = {t->dev_accuracy[epochs - 1], t->dev_loss[epochs - 1],
                      t->dev_objective[epochs - 1]};
    for (int k = 0; k < 3; k++) {
        if (here[k] == there[k] || (isnan(here[k]) && isnan(there[k])))
            continue;
        char a[40], b[40];
        json_number_text(here[k], a, sizeof a);
        json_number_text(there[k], b, sizeof b);
        return bad(rd, line, err, "\"%s\" is %s, but the trial reported %s for its epoch %d",
                   names[k], a, b, epochs);
    }
    return 0;
}

/* {"trial":i,"state":"complete"|"pruned"|"failed",...}: the end of trial i, final. */
static int end_event(reader *rd, int i, nb_trial_state state, const cJSON *ev, int line,
                     nb_error *err)
{
    trial *t = &rd->trials[i];
    nb_search_point p;
    double accuracy, loss, objective, seconds;
    int epochs;
    const char *reason = "";
    if (read_params(rd, line, cJSON_GetObjectItemCaseSensitive(ev, "params"), &p, err) != 0 ||
        read_figures(rd, line, ev, state == NB_TRIAL_FAILED, &accuracy, &loss, &objective,
                     err) != 0 ||
        read_whole(rd, line, ev, "epochs", state == NB_TRIAL_FAILED ? 0 : 1, JOURNAL_MAX_EPOCHS,
                   &epochs, err) != 0 ||
        read_seconds(rd, line, ev, i, &seconds, err) != 0 ||
        (state == NB_TRIAL_FAILED && read_reason(rd, line, ev, "reason", &reason, err) != 0))
        return -1;
    int same = 1;
    for (int k = 0; k < rd->cfg->space.n; k++)
        same &= p.v[k] == t->point.v[k];
    if (!same)
        return bad(rd, line, err, "params differ from those trial %d started with (line %d)",
                   i, rd->start_line[i]);
    int planned = rd->planned[i];
    if (epochs > planned)
        return bad(rd, line, err, "trial %d ends after %d epochs of the %d it was to run", i,
                   epochs, planned);
    /* The pruner stops a trial at an epoch it reported, never at its last. */
    if (state == NB_TRIAL_PRUNED && (epochs > t->n_reported || epochs == planned))
        return bad(rd, line, err, "trial %d pruned at epoch %d, but it reported %d of %d", i,
                   epochs, t->n_reported, planned);
    if (state == NB_TRIAL_COMPLETE && epochs < t->n_reported)
        return bad(rd, line, err, "trial %d complete after %d epochs, but it reported epoch %d",
                   i, epochs, t->n_reported);
    /* Complete is a run that ended by itself (exit 0: not diverged, not pruned): at its last
     * epoch, or earlier only when --max-steps or --early-stop stopped it. */
    int ends_early = study_trial_ends_early(rd->cfg, &p);
    if (ends_early < 0)
        return nb_fail(err, "out of memory");
    int by_steps = ends_early & NB_ENDS_STEP_LIMIT, early_stop = ends_early & NB_ENDS_EARLY_STOP;
    if (state == NB_TRIAL_COMPLETE && epochs < planned && !by_steps && !early_stop)
        return bad(rd, line, err, "trial %d complete after %d epochs, but it was to run %d and "
                                  "has no --max-steps or --early-stop to stop it earlier", i,
                   epochs, planned);
    if (state != NB_TRIAL_FAILED &&
        reported_check(rd, line, t, epochs, early_stop, accuracy, loss, objective, err) != 0)
        return -1;
    t->final_accuracy = accuracy;
    t->final_loss = loss;
    t->final_objective = objective;
    t->epochs = epochs;
    t->seconds = seconds;
    snprintf(t->reason, sizeof t->reason, "%s", reason);
    t->state = state;
    rd->end_line[i] = line;
    return 0;
}

static int journal_event(const cJSON *ev, int line, void *user, nb_error *err)
{
    reader *rd = user;
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(ev, "trial");
    if (!jt)
        return round_event(rd, ev, line, err);
    int i;
    if (read_whole(rd, line, ev, "trial", 0, rd->cfg->trials - 1, &i, err) != 0)
        return -1;
    const char *name = json_string(ev, "state");
    if (!name)
        return bad(rd, line, err, "\"state\" must be a trial's state (a string)");
    nb_trial_state state = NB_TRIAL_PENDING;
    for (int k = NB_TRIAL_RUNNING; k <= NB_TRIAL_FAILED; k++)
        if (strcmp(name, nb_trial_state_name((nb_trial_state)k)) == 0)
            state = (nb_trial_state)k;
    if (state == NB_TRIAL_PENDING)
        return bad(rd, line, err, "unknown state \"%s\"", name);
    trial *t = &rd->trials[i];
    if (trial_finished(t))
        return bad(rd, line, err, "an event of trial %d after its end (line %d)", i,
                   rd->end_line[i]);
    int is_start = state == NB_TRIAL_RUNNING && !cJSON_GetObjectItemCaseSensitive(ev, "epoch");
    if (!is_start && !rd->start_line[i])
        return bad(rd, line, err, "%s of trial %d before its start",
                   state == NB_TRIAL_RUNNING ? "an epoch's report" : "an event", i);
    if (is_start)
        return start_event(rd, i, ev, line, err);
    if (state == NB_TRIAL_RUNNING)
        return epoch_event(rd, i, ev, line, err);
    if (state == NB_TRIAL_INTERRUPTED)
        return interrupted_event(rd, i, ev, line, err);
    return end_event(rd, i, state, ev, line, err);
}

int journal_read(const char *path, const nb_study_config *cfg, trial *trials, nb_error *err)
{
    /* The tuner writes a trial's events beginning with its number, a round's with the round. */
    static const char *const starts[] = {"{\"trial\":", "{\"round\":", NULL};
    size_t n = (size_t)cfg->trials;
    reader rd = {path, cfg, trials, calloc(n, sizeof(int)), calloc(n, sizeof(int)),
                 calloc(n, sizeof(int)), malloc(sizeof(nb_search_space))};
    int rc = rd.start_line && rd.end_line && rd.planned && rd.scratch
                 ? report_read_jsonl(path, journal_event, &rd, starts, NULL, err)
                 : nb_fail(err, "out of memory");
    free(rd.start_line);
    free(rd.end_line);
    free(rd.planned);
    free(rd.scratch);
    return rc;
}
