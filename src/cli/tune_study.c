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

#include "dir_kind.h"
#include "fileio.h"
#include "options.h"
#include "run_files.h"

static const char *const STATE_NAMES[] = {"pending", "running", "complete", "pruned", "failed"};

const char *trial_state_name(trial_state s) { return STATE_NAMES[s]; }

int trial_finished(const trial *t) { return t->state >= TRIAL_COMPLETE; }

void round_range(const tune_options *o, int r, int *first, int *end)
{
    /* The first (trials % rounds) rounds take one trial more. */
    int base = o->trials / o->rounds, extra = o->trials % o->rounds;
    *first = r * base + (r < extra ? r : extra);
    *end = *first + base + (r < extra);
}

int trial_set_epoch(trial *t, int epoch, double accuracy, double loss)
{
    if (epoch > t->capacity) {
        int cap = t->capacity ? t->capacity : 8;
        while (cap < epoch)
            cap *= 2;
        double *a = realloc(t->dev_accuracy, (size_t)cap * sizeof *a);
        if (a)
            t->dev_accuracy = a;
        double *l = realloc(t->dev_loss, (size_t)cap * sizeof *l);
        if (l)
            t->dev_loss = l;
        if (!a || !l)
            return -1;
        for (int i = t->capacity; i < cap; i++)
            t->dev_accuracy[i] = t->dev_loss[i] = NAN;
        t->capacity = cap;
    }
    int is_new = isnan(t->dev_accuracy[epoch - 1]);
    if (is_new) {
        t->dev_accuracy[epoch - 1] = accuracy;
        t->dev_loss[epoch - 1] = loss;
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

/* The point of a "params" object, or -1 if it does not fit the space. */
static int point_of_params(const nb_search_space *space, const cJSON *params, nb_search_point *p)
{
    if (!cJSON_IsObject(params) || cJSON_GetArraySize(params) != space->n)
        return -1;
    for (int i = 0; i < space->n; i++) {
        const nb_search_param *q = &space->p[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, q->name);
        if (q->kind == NB_DIST_CHOICE) {
            int found = -1;
            for (int c = 0; cJSON_IsString(v) && c < q->n_choices; c++)
                if (strcmp(v->valuestring, q->choices[c]) == 0)
                    found = c;
            if (found < 0)
                return -1;
            p->v[i] = found;
        } else {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
                return -1;
            p->v[i] = v->valuedouble;
        }
    }
    return 0;
}

int journal_append(study *s, cJSON *ev, nb_error *err)
{
    size_t n;
    char *text = json_line(ev, &n, err);
    if (!text)
        return -1;
    /* The line goes out in one write. */
    int fd = nb_open_append(s->journal_path, err);
    if (fd < 0) {
        free(text);
        return -1;
    }
    ssize_t w = write(fd, text, n);
    int rc = w == (ssize_t)n && nb_fsync_output(fd) == 0 ? 0 : -1;
    if (w >= 0 && w != (ssize_t)n && ftruncate(fd, lseek(fd, 0, SEEK_END) - w) != 0)
        rc = -1; /* a partial line is taken back; if even that fails, the reader drops it */
    int saved = errno;
    close(fd);
    free(text);
    if (rc != 0)
        return nb_fail(err, "%s: cannot append: %s", s->journal_path, strerror(saved));
    return 0;
}

/* ---- study.json ---------------------------------------------------------------------------- */

static cJSON *settings_json(const tune_options *o)
{
    char *space = malloc(NB_SEARCH_FORMAT_MAX);
    cJSON *j = cJSON_CreateObject();
    if (!j || !space || nb_search_space_format(&o->space, space, NB_SEARCH_FORMAT_MAX) != 0) {
        free(space);
        cJSON_Delete(j);
        return NULL;
    }
    cJSON_AddStringToObject(j, "space", space);
    free(space);
    cJSON_AddStringToObject(j, "sampler", o->sampler == SAMPLER_GRID ? "grid" : "random");
    cJSON_AddNumberToObject(j, "trials", o->trials);
    cJSON_AddNumberToObject(j, "rounds", o->rounds);
    cJSON_AddStringToObject(j, "prune", nb_prune_name(o->prune));
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON_AddStringToObject(j, "dev_fraction", o->dev_fraction);
    cJSON *fixed = cJSON_AddArrayToObject(j, "fixed");
    for (int i = 0; fixed && i < o->n_fixed; i++) {
        cJSON_AddItemToArray(fixed, cJSON_CreateString(o->fixed[i].flag));
        if (o->fixed[i].value)
            cJSON_AddItemToArray(fixed, cJSON_CreateString(o->fixed[i].value));
    }
    if (o->test)
        cJSON_AddStringToObject(j, "test", o->test);
    else
        cJSON_AddNullToObject(j, "test");
    return j;
}

/* Writes study.json for a new study, or checks that an existing one has the same settings. */
static int check_settings(study *s, int *exit_code)
{
    nb_error err;
    cJSON *want = settings_json(s->opt);
    if (!want) {
        fprintf(stderr, "nabla: out of memory\n");
        *exit_code = EXIT_RUNTIME;
        return -1;
    }
    char *path = path_join(s->dir, "study.json");
    unsigned char *text = NULL;
    size_t n;
    int rc = 0;
    struct stat st;
    if (path && stat(path, &st) != 0) {
        rc = write_json_file(s->dir, "study.json", want, &err);
        if (rc != 0) {
            fprintf(stderr, "nabla: %s\n", err.msg);
            *exit_code = EXIT_RUNTIME;
        }
    } else if (!path || nb_read_file(path, &text, &n, &err) != 0) {
        fprintf(stderr, "nabla: %s\n", path ? err.msg : "out of memory");
        *exit_code = EXIT_RUNTIME;
        rc = -1;
    } else {
        cJSON *have = cJSON_Parse((const char *)text);
        if (!cJSON_IsObject(have)) {
            fprintf(stderr, "nabla: %s: not a study's settings (damaged?); use another --out\n",
                    path);
            *exit_code = EXIT_RUNTIME;
            rc = -1;
        } else {
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
                    *exit_code = EXIT_USAGE;
                    rc = -1;
                }
            }
        }
        cJSON_Delete(have);
    }
    free(text);
    free(path);
    cJSON_Delete(want);
    return rc;
}

/* ---- the journal, read back ---------------------------------------------------------------- */

static int journal_error(const study *s, int line, const char *what, int *exit_code)
{
    fprintf(stderr, "nabla: %s:%d: %s; the journal is damaged (move the study aside or fix "
                    "that line)\n", s->journal_path, line, what);
    *exit_code = EXIT_RUNTIME;
    return -1;
}

static double number_or_nan(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Applies one event to the trials. */
static int apply_event(study *s, const cJSON *ev, int line, int *exit_code)
{
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(ev, "trial");
    if (!jt)
        return 0; /* not about a trial (a round's space) */
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(ev, "state");
    if (!cJSON_IsNumber(jt) || jt->valuedouble < 0 || jt->valuedouble >= s->opt->trials ||
        jt->valuedouble != (int)jt->valuedouble || !cJSON_IsString(js))
        return journal_error(s, line, "expected \"trial\" (a trial number of this study) and "
                                      "\"state\"", exit_code);
    trial *t = &s->trials[(int)jt->valuedouble];
    if (trial_finished(t))
        return 0; /* its end is final: nothing after it counts */
    trial_state state = TRIAL_PENDING;
    for (int k = TRIAL_RUNNING; k <= TRIAL_FAILED; k++)
        if (strcmp(js->valuestring, STATE_NAMES[k]) == 0)
            state = (trial_state)k;
    if (state == TRIAL_PENDING)
        return journal_error(s, line, "unknown state", exit_code);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(ev, "params");
    if (params) {
        nb_search_point p;
        if (point_of_params(&s->opt->space, params, &p) != 0)
            return journal_error(s, line, "params do not fit the study's space", exit_code);
        t->point = p;
        t->has_point = 1;
    }
    const cJSON *epoch = cJSON_GetObjectItemCaseSensitive(ev, "epoch");
    if (cJSON_IsNumber(epoch)) {
        if (epoch->valuedouble < 1 || epoch->valuedouble > 1e7 ||
            trial_set_epoch(t, (int)epoch->valuedouble, number_or_nan(ev, "dev_accuracy"),
                            number_or_nan(ev, "dev_loss")) < 0)
            return journal_error(s, line, "bad epoch", exit_code);
        double planned = number_or_nan(ev, "epochs_planned");
        if (!(planned >= epoch->valuedouble && planned <= 1e7))
            return journal_error(s, line, "bad epochs_planned", exit_code);
        t->epochs_total = (int)planned;
    }
    double seconds = number_or_nan(ev, "seconds");
    if (!isnan(seconds))
        t->seconds = seconds;
    if (!t->has_point)
        return journal_error(s, line, "a trial's first event must hold its params", exit_code);
    t->state = state;
    if (state >= TRIAL_COMPLETE) {
        t->final_accuracy = number_or_nan(ev, "dev_accuracy");
        t->final_loss = number_or_nan(ev, "dev_loss");
        double e = number_or_nan(ev, "epochs");
        t->epochs = isnan(e) ? 0 : (int)e;
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(ev, "reason");
        if (cJSON_IsString(reason))
            snprintf(t->reason, sizeof t->reason, "%s", reason->valuestring);
    }
    return 0;
}

/* Reads the journal. A last line without its newline is an append cut short by a crash: it
 * is cut off (the event did not happen). Any other bad line is an error. */
static int read_journal(study *s, int *exit_code)
{
    nb_error err;
    unsigned char *data = NULL;
    size_t n = 0;
    struct stat st;
    if (stat(s->journal_path, &st) != 0)
        return 0; /* a new study */
    if (nb_read_file(s->journal_path, &data, &n, &err) != 0) {
        fprintf(stderr, "nabla: %s\n", err.msg);
        *exit_code = EXIT_RUNTIME;
        return -1;
    }
    char *text = (char *)data;
    size_t whole = n;
    while (whole > 0 && text[whole - 1] != '\n')
        whole--;
    if (whole < n && truncate(s->journal_path, (off_t)whole) != 0) {
        fprintf(stderr, "nabla: %s: cannot cut off its unfinished last line: %s\n",
                s->journal_path, strerror(errno));
        free(data);
        *exit_code = EXIT_RUNTIME;
        return -1;
    }
    int rc = 0, line = 0;
    for (char *p = text; rc == 0 && p < text + whole; line++) {
        char *nl = memchr(p, '\n', (size_t)(text + whole - p));
        *nl = '\0';
        cJSON *ev = cJSON_Parse(p);
        if (!cJSON_IsObject(ev))
            rc = journal_error(s, line + 1, "not a JSON object", exit_code);
        else
            rc = apply_event(s, ev, line + 1, exit_code);
        cJSON_Delete(ev);
        p = nl + 1;
    }
    free(data);
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
    int rc = dir_check_for_study(s->dir, &err) != 0 || make_dirs(s->dir, &err) != 0 ||
                     dir_lock_take(&s->lock, s->dir, 0, &err) != DIR_LOCK_TAKEN
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
    s->trials = calloc((size_t)o->trials, sizeof *s->trials);
    s->round_space = calloc((size_t)o->rounds, sizeof *s->round_space);
    if (!s->dir || !s->journal_path || !s->trials || !s->round_space) {
        fprintf(stderr, "nabla: out of memory\n");
        *exit_code = EXIT_RUNTIME;
        return -1;
    }
    for (int i = 0; i < o->trials; i++)
        s->trials[i].final_accuracy = s->trials[i].final_loss = NAN;
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
    for (int r = 0; r < o->rounds; r++) {
        int first, end;
        round_range(o, r, &first, &end);
        for (int i = first; i < end; i++)
            s->trials[i].round = r;
    }
    return 0;
}

void study_close(study *s)
{
    if (s->trials)
        for (int i = 0; i < s->opt->trials; i++) {
            free(s->trials[i].dev_accuracy);
            free(s->trials[i].dev_loss);
        }
    free(s->trials);
    free(s->round_space);
    free(s->trial_data);
    free(s->journal_path);
    free(s->dir);
    dir_lock_release(&s->lock);
    memset(s, 0, sizeof *s);
    s->lock.fd = -1;
}
