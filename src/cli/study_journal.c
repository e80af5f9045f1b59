/* A study's journal, read back and checked for sense (see study_journal.h). */
#include "study_journal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_json.h"
#include "tune_objective.h"

/* More epochs than any trial runs: bounds what a damaged line may ask to allocate. */
#define JOURNAL_MAX_EPOCHS 10000000

static const char *const STATE_NAMES[] = {"pending",  "running", "interrupted",
                                          "complete", "pruned",  "failed"};

const char *trial_state_name(trial_state s)
{
    return (unsigned)s <= TRIAL_FAILED ? STATE_NAMES[s] : "?";
}

int trial_finished(const trial *t) { return t->state >= TRIAL_COMPLETE; }

void round_range(int trials, int rounds, int r, int *first, int *end)
{
    /* The first (trials % rounds) rounds take one trial more. */
    int base = trials / rounds, extra = trials % rounds;
    *first = r * base + (r < extra ? r : extra);
    *end = *first + base + (r < extra);
}

trial *trials_new(int n, int rounds)
{
    trial *t = calloc((size_t)(n > 0 ? n : 1), sizeof *t);
    if (!t)
        return NULL;
    for (int r = 0; r < rounds; r++) {
        int first, end;
        round_range(n, rounds, r, &first, &end);
        for (int i = first; i < end; i++)
            t[i].round = r;
    }
    for (int i = 0; i < n; i++)
        t[i].final_accuracy = t[i].final_loss = t[i].final_objective = NAN;
    return t;
}

void trials_free(trial *t, int n)
{
    for (int i = 0; t && i < n; i++) {
        free(t[i].dev_accuracy);
        free(t[i].dev_loss);
        free(t[i].dev_objective);
    }
    free(t);
}

int trial_set_epoch(trial *t, int epoch, double accuracy, double loss, double objective)
{
    if (epoch > t->capacity) {
        int cap = t->capacity ? t->capacity : 8;
        while (cap < epoch)
            cap *= 2;
        double **arrays[] = {&t->dev_accuracy, &t->dev_loss, &t->dev_objective};
        for (int k = 0; k < 3; k++) {
            double *a = realloc(*arrays[k], (size_t)cap * sizeof *a);
            if (!a)
                return -1;
            *arrays[k] = a;
            for (int i = t->capacity; i < cap; i++)
                a[i] = NAN;
        }
        t->capacity = cap;
    }
    int is_new = isnan(t->dev_objective[epoch - 1]);
    if (is_new) {
        t->dev_accuracy[epoch - 1] = accuracy;
        t->dev_loss[epoch - 1] = loss;
        t->dev_objective[epoch - 1] = objective;
    }
    if (epoch > t->n_reported)
        t->n_reported = epoch;
    return is_new;
}

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
    const tune_options *opt;    /* the study's settings */
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
    const tune_options *o = rd->opt;
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
    const nb_search_space *space = &rd->opt->space;
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
    if (rd->opt->rounds < 2)
        return bad(rd, line, err, "a round's event, but the study has one round");
    if (read_whole(rd, line, ev, "round", 1, rd->opt->rounds - 1, &r, err) != 0)
        return -1;
    const char *spec = json_string(ev, "space");
    nb_error why;
    if (!spec)
        return bad(rd, line, err, "\"space\" must be a search space (a string)");
    if (nb_search_space_parse(rd->scratch, spec, &why) != 0)
        return bad(rd, line, err, "\"space\": %s", why.msg);
    if (rd->scratch->n != rd->opt->space.n)
        return bad(rd, line, err, "\"space\" has %d parameters, the study's %d",
                   rd->scratch->n, rd->opt->space.n);
    return 0;
}

/* The arguments a trial started with: the ones its params and the study's settings give
 * (tune_trial_args), then the tuner's own (--out, --threads, ...); or, for a trial that found
 * a checkpoint in its directory, "train --resume DIR ...". */
static int args_check(const reader *rd, int line, const nb_search_point *p, const cJSON *args,
                      nb_error *err)
{
    const cJSON *second = args->child ? args->child->next : NULL;
    if (cJSON_IsString(second) && strcmp(second->valuestring, "--resume") == 0)
        return 0;
    int argc;
    char **want = tune_trial_args(rd->opt, p, &argc);
    if (!want)
        return nb_fail(err, "out of memory");
    int rc = 0;
    const cJSON *a = args->child;
    for (int k = 0; k < argc && rc == 0; k++, a = a ? a->next : NULL)
        if (!cJSON_IsString(a) || strcmp(a->valuestring, want[k]) != 0)
            rc = bad(rd, line, err, "\"args\" are not those its params and the study's settings "
                                    "give: argument %d is %s%.60s%s, not '%.60s'", k + 1,
                     cJSON_IsString(a) ? "'" : "", cJSON_IsString(a) ? a->valuestring
                                                   : a ? "not a string" : "missing",
                     cJSON_IsString(a) ? "'" : "", want[k]);
    tune_args_free(want);
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
    if (read_whole(rd, line, ev, "round", 0, rd->opt->rounds - 1, &round, err) != 0)
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
    rd->planned[i] = tune_trial_epochs(rd->opt, &t->point);
    if (rd->planned[i] < 0)
        return nb_fail(err, "out of memory");
    t->waited = 0;
    if (cJSON_GetObjectItemCaseSensitive(ev, "waited_seconds") &&
        read_number(rd, line, ev, "waited_seconds", 0, INFINITY, 0, &t->waited, err) != 0)
        return -1;
    /* A TPE trial's configuration comes from the results of the trials it learns from
     * (tune_plan.h): it starts after their ends. */
    for (int u = 0; rd->opt->sampler == SAMPLER_TPE && u < tune_tpe_given(rd->opt, i); u++)
        if (!rd->end_line[u])
            return bad(rd, line, err, "trial %d starts before trial %d ended, whose result its "
                                      "configuration depends on (--sampler tpe, --tpe-lag %d)",
                       i, u, rd->opt->tpe_lag);
    t->has_point = 1;
    t->state = TRIAL_RUNNING;
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
    t->state = TRIAL_RUNNING;
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
    t->state = TRIAL_INTERRUPTED;
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
    objective_key(rd->opt->objective, "dev", key, sizeof key);
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

/* Whether trial p of the study trains with the option --name (held fixed or searched). 1, 0,
 * or -1 when out of memory. */
static int trains_with(const tune_options *opt, const nb_search_point *p, const char *name)
{
    int argc, found = 0;
    char **args = tune_trial_args(opt, p, &argc);
    if (!args)
        return -1;
    for (int k = 0; k < argc; k++)
        found |= strncmp(args[k], name, strlen(name)) == 0;
    tune_args_free(args);
    return found;
}

/* {"trial":i,"state":"complete"|"pruned"|"failed",...}: the end of trial i, final. */
static int end_event(reader *rd, int i, trial_state state, const cJSON *ev, int line,
                     nb_error *err)
{
    trial *t = &rd->trials[i];
    nb_search_point p;
    double accuracy, loss, objective, seconds;
    int epochs;
    const char *reason = "";
    if (read_params(rd, line, cJSON_GetObjectItemCaseSensitive(ev, "params"), &p, err) != 0 ||
        read_figures(rd, line, ev, state == TRIAL_FAILED, &accuracy, &loss, &objective,
                     err) != 0 ||
        read_whole(rd, line, ev, "epochs", state == TRIAL_FAILED ? 0 : 1, JOURNAL_MAX_EPOCHS,
                   &epochs, err) != 0 ||
        read_seconds(rd, line, ev, i, &seconds, err) != 0 ||
        (state == TRIAL_FAILED && read_reason(rd, line, ev, "reason", &reason, err) != 0))
        return -1;
    int same = 1;
    for (int k = 0; k < rd->opt->space.n; k++)
        same &= p.v[k] == t->point.v[k];
    if (!same)
        return bad(rd, line, err, "params differ from those trial %d started with (line %d)",
                   i, rd->start_line[i]);
    int planned = rd->planned[i];
    if (epochs > planned)
        return bad(rd, line, err, "trial %d ends after %d epochs of the %d it was to run", i,
                   epochs, planned);
    /* The pruner stops a trial at an epoch it reported, never at its last. */
    if (state == TRIAL_PRUNED && (epochs > t->n_reported || epochs == planned))
        return bad(rd, line, err, "trial %d pruned at epoch %d, but it reported %d of %d", i,
                   epochs, t->n_reported, planned);
    if (state == TRIAL_COMPLETE && epochs < t->n_reported)
        return bad(rd, line, err, "trial %d complete after %d epochs, but it reported epoch %d",
                   i, epochs, t->n_reported);
    /* Complete is a run that ended by itself (exit 0: not diverged, not pruned): at its last
     * epoch, or earlier only when --max-steps or --early-stop stopped it. */
    int by_steps = state == TRIAL_COMPLETE && epochs < planned
                       ? trains_with(rd->opt, &p, "--max-steps") : 0;
    int early_stop = trains_with(rd->opt, &p, "--early-stop");
    if (by_steps < 0 || early_stop < 0)
        return nb_fail(err, "out of memory");
    if (state == TRIAL_COMPLETE && epochs < planned && !by_steps && !early_stop)
        return bad(rd, line, err, "trial %d complete after %d epochs, but it was to run %d and "
                                  "has no --max-steps or --early-stop to stop it earlier", i,
                   epochs, planned);
    if (state != TRIAL_FAILED &&
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
    if (read_whole(rd, line, ev, "trial", 0, rd->opt->trials - 1, &i, err) != 0)
        return -1;
    const char *name = json_string(ev, "state");
    if (!name)
        return bad(rd, line, err, "\"state\" must be a trial's state (a string)");
    trial_state state = TRIAL_PENDING;
    for (int k = TRIAL_RUNNING; k <= TRIAL_FAILED; k++)
        if (strcmp(name, STATE_NAMES[k]) == 0)
            state = (trial_state)k;
    if (state == TRIAL_PENDING)
        return bad(rd, line, err, "unknown state \"%s\"", name);
    trial *t = &rd->trials[i];
    if (trial_finished(t))
        return bad(rd, line, err, "an event of trial %d after its end (line %d)", i,
                   rd->end_line[i]);
    int is_start = state == TRIAL_RUNNING && !cJSON_GetObjectItemCaseSensitive(ev, "epoch");
    if (!is_start && !rd->start_line[i])
        return bad(rd, line, err, "%s of trial %d before its start",
                   state == TRIAL_RUNNING ? "an epoch's report" : "an event", i);
    if (is_start)
        return start_event(rd, i, ev, line, err);
    if (state == TRIAL_RUNNING)
        return epoch_event(rd, i, ev, line, err);
    if (state == TRIAL_INTERRUPTED)
        return interrupted_event(rd, i, ev, line, err);
    return end_event(rd, i, state, ev, line, err);
}

int journal_read(const char *path, const tune_options *opt, trial *trials, nb_error *err)
{
    /* The tuner writes a trial's events beginning with its number, a round's with the round. */
    static const char *const starts[] = {"{\"trial\":", "{\"round\":", NULL};
    size_t n = (size_t)opt->trials;
    reader rd = {path, opt, trials, calloc(n, sizeof(int)), calloc(n, sizeof(int)),
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
