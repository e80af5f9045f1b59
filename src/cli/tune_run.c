/* Running a study's trials (see tune_run.h), here and, under mpirun, on the other ranks
 * (tune_agent.h): a worker is a slot on some rank, and everything but starting and killing a
 * trial is the same for all of them.
 *
 * Why results do not depend on --workers: a trial's configuration depends on the seed and its
 * number only; it trains with the same --seed on any thread count with the same result; and a
 * pruning decision for trial t after epoch e compares it with the trials numbered below t that
 * reached epoch e. The tuner answers a trial only once each of those has reported epoch e or
 * finished, so the set it compares with is always the same. Trials start in number order, so
 * the ones a trial waits for are running or done: nothing waits forever. */
#define _GNU_SOURCE /* stpcpy */
#include "tune_run.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/fileio.h"
#include "mpi_comm.h"
#include "options.h"
#include "output.h"
#include "resume.h"
#include "run_check.h"
#include "run_files.h"
#include "stop_signals.h"
#include "threads.h"
#include "trial_channel.h"
#include "train_options.h"
#include "trial_process.h"
#include "tune_agent.h"
#include "tune_objective.h"
#include "tune_plan.h"

int tune_threads_per_trial(const tune_options *o)
{
    if (o->threads > 0)
        return o->threads;
    /* The trials at once on this machine: --workers on each of its ranks. */
    int here = (o->workers < o->trials ? o->workers : o->trials) * job_local_size();
    int cores = cli_trial_cores();
    return cores / here > 0 ? cores / here : 1;
}

double tune_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- trial processes ----------------------------------------------------------------------- */

/* A place where one trial runs at a time: a process of this one, or of an agent's (another
 * rank, under mpirun: tune_agent.h), which passes on what the trial sends and how it ends. */
typedef struct worker {
    int busy;
    int rank;                /* 0: here; otherwise the agent's */
    pid_t pid;               /* here: the trial's process */
    int fd;                  /* here: the tuner's end of the socket, -1 once closed */
    int trial;
    char buf[16384];         /* a partial report line */
    size_t len;
    int pruned;              /* killed by the pruner */
    int said;                /* its last word came (trial_channel.h): */
    trial_end end;           /* how it ends */
    char why[512];           /* and why */
    double started;
    double seconds_before;   /* the trial's time before this process */
} worker;

/* Worker w is free, on `rank`: nothing of its last trial is left. */
static void worker_clear(worker *w, int rank)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->rank = rank;
}

typedef struct runner {
    study *s;
    worker *w;
    int n_workers;           /* on every rank together */
    int threads;             /* per trial */
    char threads_text[16];
    int finished;            /* trials complete, pruned or failed */
    int interrupted;         /* the first trial an accident stopped (the study stops), or -1 */
    nb_error *err;
} runner;

static char *trial_dir(const study *s, int i)
{
    char name[32];
    snprintf(name, sizeof name, "trials/%d", i);
    return path_join(s->dir, name);
}

static void free_process_args(char **args)
{
    tune_args_free(args);
}

/* Whether the checkpoint f in trial i's directory is the trial's own: its arguments give the
 * run the tuner starts trial i with (base: its configuration, tail: what the tuner adds). A
 * directory the trial never wrote (another run put there, another trial's copied in) would
 * otherwise be continued as the trial's and judged as its result. Returns 0, or -1 with a
 * message that says what to do. */
static int check_own_checkpoint(const runner *r, int i, const char *dir, const nb_st_file *f,
                                char **base, int argc, const char *const *tail, size_t n_tail)
{
    char **argv = calloc((size_t)argc + n_tail + 1, sizeof *argv);
    char what[512];
    if (!argv)
        return nb_fail(r->err, "out of memory");
    memcpy(argv, base, (size_t)argc * sizeof *argv);
    memcpy(argv + argc, tail, n_tail * sizeof *argv);
    nb_error why;
    int own = resume_checkpoint_is_of(f, argv, argc + (int)n_tail, what, sizeof what, &why);
    free(argv);
    if (own < 0)
        return nb_fail(r->err, "trial %d: %s", i, why.msg);
    if (!own)
        return nb_fail(r->err, "%s holds a run that is not trial %d's (its checkpoint's %s), "
                               "which the tuner does not continue: move %s away (or remove it), "
                               "and the same command runs trial %d from its start",
                       dir, i, what, dir, i);
    return 0;
}

/* The arguments of the trial's process (argv, every string malloc'd; free_process_args): its
 * configuration, or --resume when it has a checkpoint to continue from (its own). Returns NULL
 * with r->err set. */
static char **process_args(const runner *r, int i, const char *dir)
{
    const study *s = r->s;
    nb_st_file f;
    char used[CLI_MAX_PATH], note[512];
    nb_error err;
    int resume = nb_checkpoint_open(dir, &f, used, sizeof used, note, sizeof note, &err) == 0;
    int argc = 0;
    char **base = tune_trial_args(s->opt, &s->trials[i].point, &argc);
    /* After the configuration (the last --data wins): the decompressed copy, if any. */
    const char *tail[] = {"--test", "none", "--out", dir, "--threads", r->threads_text,
                          "--quiet", "--data", s->trial_data};
    const char *resume_args[] = {"train", "--resume", dir, "--threads", r->threads_text,
                                 "--quiet"};
    size_t n_tail = sizeof tail / sizeof tail[0] - (s->trial_data ? 0 : 2);
    int foreign = resume && base && check_own_checkpoint(r, i, dir, &f, base, argc, tail,
                                                         n_tail) != 0;
    if (resume)
        nb_st_free(&f);
    const char *const *extra = resume ? resume_args : tail;
    size_t n_extra = resume ? sizeof resume_args / sizeof resume_args[0] : n_tail;
    char **args = foreign ? NULL : calloc((size_t)argc + n_extra + 2, sizeof *args);
    if (!args || !base) {
        free(args);
        tune_args_free(base);
        if (!foreign)
            nb_fail(r->err, "out of memory");
        return NULL;
    }
    int n = 0, ok = (args[n++] = strdup("nabla")) != NULL;
    for (int k = 0; !resume && k < argc; k++)
        args[n++] = base[k]; /* the strings move to args */
    if (resume)
        tune_args_free(base);
    else
        free(base);
    for (size_t k = 0; ok && k < n_extra; k++)
        ok = (args[n++] = strdup(extra[k])) != NULL;
    if (!ok) {
        free_process_args(args);
        nb_fail(r->err, "out of memory");
        return NULL;
    }
    return args;
}

/* The journal's first word on trial i: its configuration and the arguments it runs with. */
static int record_start(runner *r, int i, char **args, int rank)
{
    study *s = r->s;
    trial *t = &s->trials[i];
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddNumberToObject(ev, "trial", i);
    cJSON_AddStringToObject(ev, "state", "running");
    cJSON_AddNumberToObject(ev, "round", t->round);
    if (job_size() > 1)
        cJSON_AddNumberToObject(ev, "rank", rank);
    cJSON_AddItemToObject(ev, "params", params_json(&s->opt->space, &t->point));
    cJSON *a = cJSON_AddArrayToObject(ev, "args");
    for (int k = 1; args[k]; k++)
        cJSON_AddItemToArray(a, cJSON_CreateString(args[k]));
    if (journal_append(s, ev, r->err) != 0)
        return -1;
    t->state = TRIAL_RUNNING;
    return 0;
}

/* Hands trial i to worker w's agent: the working directory, the log, the arguments. */
static int send_start(runner *r, const worker *w, char **args, const char *log_path)
{
    char cwd[CLI_MAX_PATH];
    if (!getcwd(cwd, sizeof cwd))
        return nb_fail(r->err, "cannot tell the working directory: %s", strerror(errno));
    size_t n = strlen(cwd) + strlen(log_path) + 2;
    for (int k = 0; args[k]; k++)
        n += strlen(args[k]) + 1;
    char *text = malloc(n), *p = text;
    if (!text)
        return nb_fail(r->err, "out of memory");
    p = stpcpy(p, cwd) + 1;
    p = stpcpy(p, log_path) + 1;
    for (int k = 0; args[k]; k++)
        p = stpcpy(p, args[k]) + 1;
    int rc = agent_send(w->rank, AGENT_START, (int)(w - r->w), 0, text, n, r->err);
    free(text);
    return rc;
}

/* Starts trial i on worker w. */
static int launch(runner *r, worker *w, int i)
{
    study *s = r->s;
    trial *t = &s->trials[i];
    char *dir = trial_dir(s, i);
    char *log_path = dir ? path_join(dir, "train.log") : NULL;
    char **args = NULL;
    if (!log_path)
        nb_fail(r->err, "out of memory");
    else if (make_dirs(dir, r->err) == 0)
        args = process_args(r, i, dir);
    int rc = -1, fd = -1;
    pid_t pid = 0;
    if (args && (t->state != TRIAL_PENDING || record_start(r, i, args, w->rank) == 0)) {
        if (w->rank != 0)
            rc = send_start(r, w, args, log_path);
        else
            rc = (pid = trial_spawn(args, log_path, &fd, r->err)) < 0 ? -1 : 0;
    }
    free_process_args(args);
    free(dir);
    free(log_path);
    if (rc != 0)
        return -1;
    worker_clear(w, w->rank);
    w->busy = 1;
    w->pid = pid;
    w->fd = fd;
    w->trial = i;
    w->started = tune_now();
    w->seconds_before = t->seconds;
    t->state = TRIAL_RUNNING; /* an interrupted trial is resumed */
    t->reason[0] = '\0';
    return 0;
}

/* ---- pruning ------------------------------------------------------------------------------- */

/* Whether the pruner can judge trial i after epoch e: every earlier trial has reported epoch e
 * or finished. Fills the scores it is compared with (objective_score: higher is better, as the
 * pruner takes them). */
static int decidable(const study *s, int i, int e, double *others, int *n)
{
    *n = 0;
    for (int u = 0; u < i; u++) {
        const trial *t = &s->trials[u];
        if (t->n_reported >= e && !isnan(t->dev_objective[e - 1]))
            others[(*n)++] = objective_score(s->opt->objective, t->dev_objective[e - 1]);
        else if (!trial_finished(t))
            return 0;
    }
    return 1;
}

static void print_trial_line(const runner *r, int i);

static void add_number_or_null(cJSON *j, const char *name, double v)
{
    if (isnan(v))
        cJSON_AddNullToObject(j, name);
    else
        cJSON_AddNumberToObject(j, name, v);
}

/* A report's or an end's dev figures: accuracy, loss, and the objective where it is neither
 * (study_journal.h). */
static void add_figures(const study *s, cJSON *ev, double accuracy, double loss,
                        double objective)
{
    add_number_or_null(ev, "dev_accuracy", accuracy);
    add_number_or_null(ev, "dev_loss", loss);
    if (objective_is_extra(s->opt->objective)) {
        char key[64];
        objective_key(s->opt->objective, "dev", key, sizeof key);
        add_number_or_null(ev, key, objective);
    }
}

/* The journal's last word on trial i, from its fields. */
static int record_end(runner *r, int i)
{
    study *s = r->s;
    trial *t = &s->trials[i];
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddNumberToObject(ev, "trial", i);
    cJSON_AddStringToObject(ev, "state", trial_state_name(t->state));
    cJSON_AddItemToObject(ev, "params", params_json(&s->opt->space, &t->point));
    add_figures(s, ev, t->final_accuracy, t->final_loss, t->final_objective);
    cJSON_AddNumberToObject(ev, "epochs", t->epochs);
    cJSON_AddItemToObject(ev, "seconds", json_double(t->seconds));
    if (t->state == TRIAL_FAILED)
        cJSON_AddStringToObject(ev, "reason", t->reason);
    if (journal_append(s, ev, r->err) != 0)
        return -1;
    r->finished++;
    print_trial_line(r, i);
    return 0;
}

static worker *worker_of(runner *r, int i)
{
    for (int k = 0; k < r->n_workers; k++)
        if (r->w[k].busy && r->w[k].trial == i)
            return &r->w[k];
    return NULL;
}

/* Trial i stops after epoch e, with that epoch's metrics; its process (which may have run
 * ahead) is killed. */
static int prune(runner *r, int i, int e)
{
    trial *t = &r->s->trials[i];
    worker *w = worker_of(r, i);
    t->state = TRIAL_PRUNED;
    t->final_accuracy = t->dev_accuracy[e - 1];
    t->final_loss = t->dev_loss[e - 1];
    t->final_objective = t->dev_objective[e - 1];
    t->epochs = e;
    if (w) {
        t->seconds = w->seconds_before + (tune_now() - w->started);
        w->pruned = 1;
        if (w->rank == 0)
            kill(w->pid, SIGKILL);
        else if (agent_send(w->rank, AGENT_KILL, (int)(w - r->w), 0, NULL, 0, r->err) != 0)
            return -1;
    }
    return record_end(r, i);
}

/* Judges every epoch that can be judged, in trial order; a trial whose process has ended is
 * recorded once all its epochs are judged. */
static int decide(runner *r, double *others)
{
    study *s = r->s;
    nb_pruner pruner = {s->opt->prune, 5, 1, 3};
    for (int i = 0; i < s->opt->trials; i++) {
        trial *t = &s->trials[i];
        if (t->state != TRIAL_RUNNING)
            continue;
        int pruned = 0;
        while (!pruned && t->decided < t->n_reported && !isnan(t->dev_objective[t->decided]) &&
               t->epochs_total > 0) {
            int n, e = t->decided + 1;
            /* Nothing to judge without a pruner, or at the last epoch. */
            if (s->opt->prune != NB_PRUNE_NONE && e < t->epochs_total) {
                if (!decidable(s, i, e, others, &n))
                    break;
                pruned = nb_prune_should_stop(
                    &pruner, e, t->epochs_total,
                    objective_score(s->opt->objective, t->dev_objective[e - 1]), others, n);
            }
            if (pruned && prune(r, i, e) != 0)
                return -1;
            t->decided = e;
        }
        if (!pruned && t->exited && t->decided >= t->n_reported) {
            t->state = t->exit_state;
            if (record_end(r, i) != 0)
                return -1;
        }
    }
    return 0;
}

/* ---- reports and endings ------------------------------------------------------------------- */

/* One report line from a trial: "<epochs> <metrics JSON>". */
static int take_report(runner *r, worker *w, char *line)
{
    study *s = r->s;
    trial *t = &s->trials[w->trial];
    if (trial_finished(t))
        return 0; /* pruned, and reporting epochs it ran ahead to before it was killed */
    if (trial_channel_parse_end(line, &w->end, w->why, sizeof w->why)) {
        w->said = 1;
        return 0;
    }
    char *json, key[64];
    long epochs = strtol(line, &json, 10);
    cJSON *m = cJSON_Parse(json);
    objective_key(s->opt->objective, "dev", key, sizeof key);
    const cJSON *epoch = cJSON_GetObjectItemCaseSensitive(m, "epoch");
    const cJSON *objective = cJSON_GetObjectItemCaseSensitive(m, key);
    if (epochs < 1 || epochs > 10000000 || !cJSON_IsNumber(epoch) || epoch->valuedouble < 1 ||
        epoch->valuedouble > epochs || !cJSON_IsNumber(objective)) {
        cJSON_Delete(m);
        return 0; /* not a report: ignored (the trial's own files still tell) */
    }
    int e = (int)epoch->valuedouble;
    t->epochs_total = (int)epochs;
    int is_new = trial_set_epoch(t, e, json_number(m, "dev_accuracy"),
                                 json_number(m, "dev_loss"), objective->valuedouble);
    cJSON_Delete(m);
    if (is_new < 0)
        return nb_fail(r->err, "out of memory");
    if (!is_new)
        return 0; /* a restarted trial repeats the epochs of its checkpoint */
    t->seconds = w->seconds_before + (tune_now() - w->started);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddNumberToObject(ev, "trial", w->trial);
    cJSON_AddStringToObject(ev, "state", "running");
    cJSON_AddNumberToObject(ev, "epoch", e);
    cJSON_AddNumberToObject(ev, "epochs_planned", t->epochs_total);
    add_figures(s, ev, t->dev_accuracy[e - 1], t->dev_loss[e - 1], t->dev_objective[e - 1]);
    cJSON_AddItemToObject(ev, "seconds", json_double(t->seconds));
    return journal_append(s, ev, r->err);
}

/* The result in a finished trial's summary.json, read and checked as every reader of a run's
 * files reads it (run_check.h). */
static int read_summary(const study *s, int i, trial *t, nb_error *err)
{
    char *dir = trial_dir(s, i);
    char *path = dir ? path_join(dir, "summary.json") : NULL;
    char *text = NULL;
    cJSON *j = NULL;
    int rc = -1;
    if (!path) {
        nb_fail(err, "out of memory");
    } else if (report_read_json_text(path, 0, &j, &text, err) == 0 &&
               run_check_summary(j, text, path, NULL, NULL, err) == 0) {
        char key[64], label[64];
        objective_key(s->opt->objective, "dev", key, sizeof key);
        objective_label(s->opt->objective, label, sizeof label);
        if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, key))) {
            t->final_accuracy = json_number(j, "dev_accuracy");
            t->final_loss = json_number(j, "dev_loss");
            t->final_objective = json_number(j, key);
            t->epochs = (int)json_number(j, "epochs");
            rc = 0;
        } else {
            nb_fail(err, "%s: a trial's summary without a %s (the study's objective)", path,
                    label);
        }
    }
    cJSON_Delete(j);
    free(text);
    free(path);
    free(dir);
    return rc;
}

/* A signal's name, for the reasons. */
static const char *signal_name(int sig)
{
    static const struct {
        int sig;
        const char *name;
    } names[] = {{SIGKILL, "SIGKILL"}, {SIGTERM, "SIGTERM"}, {SIGINT, "SIGINT"},
                 {SIGHUP, "SIGHUP"},   {SIGQUIT, "SIGQUIT"}, {SIGABRT, "SIGABRT"},
                 {SIGSEGV, "SIGSEGV"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
                 {SIGILL, "SIGILL"},   {SIGPIPE, "SIGPIPE"}, {SIGXCPU, "SIGXCPU"},
                 {SIGXFSZ, "SIGXFSZ"}, {SIGUSR1, "SIGUSR1"}, {SIGUSR2, "SIGUSR2"}};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (names[k].sig == sig)
            return names[k].name;
    return NULL;
}

/* How trial i's process ended, all told: its last word (trial_channel.h), its exit status and
 * its summary.json. The tuner's one place that tells a trial complete, failed (for what it is
 * responsible for: final) or interrupted (by anything else: nothing is concluded from it, and
 * the study's next run resumes it); fills why for the last two, and t's result. Signals the
 * tuner sent (pruning, stopping the study) do not come here. */
static trial_state judge_end(const study *s, int i, const worker *w, int status, char *why,
                             size_t cap)
{
    trial *t = &s->trials[i];
    nb_error err = {0};
    int have = read_summary(s, i, t, &err) == 0;
    if (!have) {
        t->final_accuracy = t->final_loss = t->final_objective = NAN;
        t->epochs = t->n_reported;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    trial_state state = TRIAL_INTERRUPTED;
    if (w->said && w->end == TRIAL_END_FAILED)
        state = TRIAL_FAILED;
    else if (w->said && w->end == TRIAL_END_COMPLETE && code == EXIT_OK && have)
        return TRIAL_COMPLETE;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    char *dir = trial_dir(s, i);
    if (w->said && w->end != TRIAL_END_COMPLETE && w->why[0])
        snprintf(why, cap, "%s", w->why);
    else if (sig == SIGKILL)
        snprintf(why, cap, "killed by SIGKILL: out of memory, or killed by someone");
    else if (sig && signal_name(sig))
        snprintf(why, cap, "killed by %s", signal_name(sig));
    else if (sig)
        snprintf(why, cap, "killed by signal %d", sig);
    else if (w->said && w->end == TRIAL_END_COMPLETE && !have)
        snprintf(why, cap, "it trained to its end, but %.200s", err.msg);
    else if (w->said && w->end == TRIAL_END_COMPLETE)
        snprintf(why, cap, "it trained to its end, but exited with status %d (see %s/train.log)",
                 code, dir ? dir : "its");
    else if (code == EXIT_TRIAL_LOCKED)
        snprintf(why, cap, "its directory stayed in use by another process (see %s/train.log)",
                 dir ? dir : "its");
    else
        snprintf(why, cap, "exit status %d, %s (see %s/train.log)", code,
                 w->said ? "without a reason" : "without a word to the tuner", dir ? dir : "its");
    free(dir);
    return state;
}

/* Trial i was interrupted: the journal says so and why (not its end: the study's next run
 * resumes it), and the study stops. */
static int record_interrupted(runner *r, int i, const char *why)
{
    trial *t = &r->s->trials[i];
    t->state = TRIAL_INTERRUPTED;
    snprintf(t->reason, sizeof t->reason, "%s", why);
    if (r->interrupted < 0)
        r->interrupted = i;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddNumberToObject(ev, "trial", i);
    cJSON_AddStringToObject(ev, "state", "interrupted");
    cJSON_AddStringToObject(ev, "reason", why);
    cJSON_AddItemToObject(ev, "seconds", json_double(t->seconds));
    return journal_append(r->s, ev, r->err);
}

/* The trial's process has ended with `status`. An interruption is journaled at once; a result
 * waits until the pruner has judged every epoch the trial reported (decide records it). */
static int trial_ended(runner *r, worker *w, int status, int stopping)
{
    study *s = r->s;
    int i = w->trial;
    trial *t = &s->trials[i];
    double seconds = w->seconds_before + (tune_now() - w->started);
    if (w->pruned || stopping) {
        worker_clear(w, w->rank);
        return 0; /* recorded already, or to be continued by the next run */
    }
    t->seconds = seconds;
    char why[sizeof t->reason];
    trial_state state = judge_end(s, i, w, status, why, sizeof why);
    worker_clear(w, w->rank);
    if (state == TRIAL_INTERRUPTED)
        return record_interrupted(r, i, why);
    snprintf(t->reason, sizeof t->reason, "%s", state == TRIAL_FAILED ? why : "");
    t->exited = 1;
    t->exit_state = state;
    return 0;
}

static void print_trial_line(const runner *r, int i)
{
    const study *s = r->s;
    const trial *t = &s->trials[i];
    if (s->opt->quiet)
        return;
    int width = snprintf(NULL, 0, "%d", s->opt->trials);
    printf("[%*d/%d] trial %*d %-8s", width, r->finished, s->opt->trials, width, i,
           trial_state_name(t->state));
    /* "dev 0.8512" for dev accuracy, as before objectives; "dev rmse 0.3104" for another. */
    char label[64] = "dev";
    if (s->opt->objective != NB_METRIC_ACCURACY)
        objective_label(s->opt->objective, label, sizeof label);
    if (!isnan(t->final_objective))
        printf("  %s %.4f", label, t->final_objective);
    printf("  %d epoch%s  %.1f s ", t->epochs, t->epochs == 1 ? "" : "s", t->seconds);
    for (int k = 0; k < s->opt->space.n; k++) {
        char text[NB_SEARCH_VALUE_MAX];
        nb_search_value_text(&s->opt->space.p[k], t->point.v[k], text, sizeof text);
        printf(" %s=%s", s->opt->space.p[k].name, text);
    }
    if (t->state == TRIAL_FAILED)
        printf("  (%s)", t->reason);
    printf("\n");
    if (output_flush() != 0)
        stop_for_output();   /* `nabla tune | head -1`: the study stops as on Ctrl-C */
}

/* Bytes a worker's trial sent: each whole line is a report. */
static int absorb(runner *r, worker *w, const char *bytes, size_t n, int stopping)
{
    while (n > 0) {
        size_t room = sizeof w->buf - 1 - w->len, take = n < room ? n : room;
        memcpy(w->buf + w->len, bytes, take);
        w->len += take;
        w->buf[w->len] = '\0';
        bytes += take;
        n -= take;
        char *nl;
        while ((nl = memchr(w->buf, '\n', w->len)) != NULL) {
            *nl = '\0';
            if (!stopping && take_report(r, w, w->buf) != 0)
                return -1;
            size_t used = (size_t)(nl + 1 - w->buf);
            memmove(w->buf, nl + 1, w->len - used);
            w->len -= used;
        }
        if (w->len == sizeof w->buf - 1)
            w->len = 0; /* a line this long is not a report */
    }
    return 0;
}

/* Reads what a trial of this process sent; on end of file, waits for the process. */
static int service(runner *r, worker *w, int stopping)
{
    char buf[sizeof w->buf];
    ssize_t got = recv(w->fd, buf, sizeof buf, 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (got > 0)
        return absorb(r, w, buf, (size_t)got, stopping);
    /* End of file (or an error): the trial is ending. */
    close(w->fd);
    w->fd = -1;
    int status = 0;
    trial_reap(w->pid, &status);
    return trial_ended(r, w, status, stopping);
}

/* One message from an agent. *stopped counts the agents that answered AGENT_STOP. */
static int from_agent(runner *r, int from, int tag, const char *data, size_t n, int stopping,
                      int *stopped)
{
    int slot, value;
    const char *text;
    size_t text_n;
    if (agent_parse(data, n, &slot, &value, &text, &text_n) != 0)
        return nb_fail(r->err, "a garbled message from rank %d", from);
    worker *w = slot >= 0 && slot < r->n_workers ? &r->w[slot] : NULL;
    int ours = w && w->busy && w->rank == from;
    switch (tag) {
    case AGENT_REPORT:
        return ours ? absorb(r, w, text, text_n, stopping) : 0;
    case AGENT_ENDED:
        if (!ours)
            return 0;
        if (text_n) /* could not start it: as when this process cannot */
            return nb_fail(r->err, "cannot start trial %d: %.*s", w->trial, (int)text_n, text);
        return trial_ended(r, w, value, stopping);
    case AGENT_STOPPED:
        ++*stopped;
        return 0;
    case AGENT_SIGNAL:
        if (!*stop_signal_flag())
            *stop_signal_flag() = value;
        return 0;
    default:
        return nb_fail(r->err, "a message from rank %d with an unknown tag %d", from, tag);
    }
}

/* Every message the agents have sent. */
static int serve_agents(runner *r, int stopping, int *stopped)
{
    int from, tag, got, rc = 0;
    char *data;
    size_t n;
    while (rc == 0 && (got = job_receive(&from, &tag, &data, &n, r->err)) != 0) {
        if (got < 0)
            return -1;
        rc = from_agent(r, from, tag, data, n, stopping, stopped);
        free(data);
    }
    return rc;
}

/* The next trial to start: the lowest-numbered one not finished and not running, once the
 * rounds before its own are finished (coarse to fine needs their results). -1: none now. */
static int next_trial(runner *r, int *round_ready)
{
    study *s = r->s;
    for (int i = 0; i < s->opt->trials; i++) {
        trial *t = &s->trials[i];
        if (trial_finished(t) || t->exited || worker_of(r, i))
            continue;
        for (int u = 0; u < i; u++)
            if (s->trials[u].round < t->round && !trial_finished(&s->trials[u]))
                return -1;
        *round_ready = t->round;
        return i;
    }
    return -1;
}

static int run_loop(runner *r)
{
    study *s = r->s;
    volatile sig_atomic_t *stop = stop_signal_flag();
    double *others = malloc((size_t)s->opt->trials * sizeof *others);
    struct pollfd *fds = malloc((size_t)r->n_workers * sizeof *fds);
    int *owner = malloc((size_t)r->n_workers * sizeof *owner);
    if (!others || !fds || !owner) {
        free(others);
        free(fds);
        free(owner);
        return nb_fail(r->err, "out of memory");
    }
    int rc = 0;
    while (rc == 0 && !*stop && r->interrupted < 0) {
        /* Judge what can be judged (which may finish trials and a round), then start trials
         * on free workers. */
        if ((rc = decide(r, others)) != 0)
            break;
        for (int k = 0; rc == 0 && k < r->n_workers; k++) {
            if (r->w[k].busy)
                continue;
            int round, i = next_trial(r, &round);
            if (i < 0)
                break;
            if (!s->trials[i].has_point)
                rc = study_plan_round(s, round, r->err);
            if (rc == 0)
                rc = launch(r, &r->w[k], i);
        }
        if (rc != 0)
            break;
        int n = 0, busy = 0, remote = 0;
        for (int k = 0; k < r->n_workers; k++) {
            busy += r->w[k].busy;
            remote += r->w[k].busy && r->w[k].rank != 0;
            if (r->w[k].busy && r->w[k].fd >= 0) {
                fds[n].fd = r->w[k].fd;
                fds[n].events = POLLIN;
                owner[n++] = k;
            }
        }
        if (busy == 0)
            break; /* nothing running and nothing to start: done */
        /* The agents' messages come through MPI, which has no descriptor to wait on. */
        int ready = poll(fds, (nfds_t)n, remote ? 10 : 1000);
        if (ready < 0 && errno != EINTR) {
            rc = nb_fail(r->err, "poll: %s", strerror(errno));
            break;
        }
        for (int j = 0; rc == 0 && ready > 0 && j < n; j++)
            if (fds[j].revents)
                rc = service(r, &r->w[owner[j]], 0);
        int stopped = 0;
        if (rc == 0 && job_size() > 1)
            rc = serve_agents(r, 0, &stopped);
    }
    free(others);
    free(fds);
    free(owner);
    return rc;
}

/* How long rank 0 waits for the agents' trials to stop: they only checkpoint. */
#define AGENTS_STOP_SECONDS 30.0

/* Stops the running trials (at the end of the loop: after a stop signal, an interruption or a
 * failure of the tuner's own): each gets the signal (and checkpoints), then its socket closes,
 * which also releases one waiting for an answer. Their journal entries stay "running". The
 * agents stop theirs likewise. */
static int stop_all(runner *r, int sig, nb_error *err)
{
    int agents = 0;
    for (int a = 1; a < job_size(); a++)
        agents += agent_send(a, AGENT_STOP, -1, sig, NULL, 0, err) == 0;
    for (int k = 0; k < r->n_workers; k++)
        if (r->w[k].busy && r->w[k].rank == 0)
            stop_signals_send(r->w[k].pid, sig);
    for (int k = 0; k < r->n_workers; k++) {
        worker *w = &r->w[k];
        if (!w->busy || w->rank != 0)
            continue;
        if (w->fd >= 0) {
            close(w->fd);
            w->fd = -1;
        }
        int status;
        trial_reap(w->pid, &status);
        trial_ended(r, w, status, 1); /* records nothing */
    }
    /* Each agent answers once its trials have ended, after all it sent before. */
    int stopped = 0;
    double give_up = tune_now() + AGENTS_STOP_SECONDS;
    const struct timespec tick = {0, 10 * 1000 * 1000};
    while (stopped < agents && tune_now() < give_up) {
        if (serve_agents(r, 1, &stopped) != 0)
            return -1;
        if (stopped < agents)
            nanosleep(&tick, NULL);
    }
    if (stopped < agents)
        return nb_fail(err, "%d of the other ranks did not stop their trials within %.0f s",
                       agents - stopped, AGENTS_STOP_SECONDS);
    return 0;
}

int study_run(study *s, nb_error *err)
{
    runner r;
    memset(&r, 0, sizeof r);
    r.s = s;
    r.err = err;
    r.interrupted = -1;
    /* --workers on every rank; the slots take turns among the ranks. */
    long slots = (long)s->opt->workers * job_size();
    r.n_workers = slots < s->opt->trials ? (int)slots : s->opt->trials;
    r.threads = tune_threads_per_trial(s->opt);
    snprintf(r.threads_text, sizeof r.threads_text, "%d", r.threads);
    r.w = calloc((size_t)r.n_workers, sizeof *r.w);
    if (!r.w)
        return nb_fail(err, "out of memory");
    for (int k = 0; k < r.n_workers; k++)
        worker_clear(&r.w[k], k % job_size());
    for (int i = 0; i < s->opt->trials; i++)
        r.finished += trial_finished(&s->trials[i]);
    /* When a rank dies, mpirun stops the others (SIGTERM, then SIGKILL): rank 0 then waits in
     * MPI for an agent that never answers, and this is its last chance to say a word. */
    job_watch_stops(stop_signal_flag(), TUNE_CONTINUE_LINE);
    int rc = run_loop(&r);
    int reason = *stop_signal_flag();
    nb_error stop_err;
    r.err = &stop_err; /* keeps a failure of the loop's own */
    if (stop_all(&r, reason ? stop_signal_to_pass_on(reason) : SIGTERM, &stop_err) != 0 &&
        rc == 0) {
        *err = stop_err;
        rc = -1;
    }
    free(r.w);
    if (rc != 0)
        return -1;
    if (reason)
        return stop_exit_code(reason);
    if (r.interrupted >= 0) {
        nb_fail(err, "trial %d was interrupted (%s); nothing is concluded from it; the same "
                     "command resumes the study from its checkpoints", r.interrupted,
                s->trials[r.interrupted].reason);
        return STUDY_INTERRUPTED;
    }
    for (int i = 0; i < s->opt->trials; i++)
        if (!trial_finished(&s->trials[i]))
            return nb_fail(err, "trial %d did not finish (a bug: please report it)", i);
    return 0;
}
