/* Running a study's trials (see tune_run.h), here and, under mpirun, on the other ranks
 * (tune_agent.h): a worker is a slot on some rank, and everything but starting and killing a
 * trial is the same for all of them.
 *
 * Why results do not depend on --workers: a trial's configuration depends on the seed and its
 * number only; it trains with the same --seed on any thread count with the same result; and a
 * pruning decision for trial t after epoch e compares it with the trials numbered below t that
 * reached epoch e. The tuner answers a trial only once each of those has reported epoch e or
 * finished, so the set it compares with is always the same. Trials start in number order, so
 * the ones a trial waits for are running or done: nothing waits forever. A trial whose
 * configuration depends on earlier results (coarse to fine, TPE: nb_study_ask) starts once they
 * are final; a free worker waits for them meanwhile, and that wait is measured (the trial's
 * "waited_seconds"), since it is what those samplers cost in parallelism. */
#define _GNU_SOURCE /* stpcpy */
#include "cli/tune/tune_run.h"

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

#include "core/clock.h"
#include "io/fileio.h"
#include "io/json_write.h"
#include "io/paths.h"
#include "cli/mpi/mpi_comm.h"
#include "cli/common/options.h"
#include "cli/common/output.h"
#include "cli/train/resume.h"
#include "cli/common/run_check.h"
#include "cli/common/stop_signals.h"
#include "cli/common/threads.h"
#include "cli/common/trial_channel.h"
#include "cli/train/train_options.h"
#include "cli/tune/trial_process.h"
#include "cli/tune/tune_agent.h"
#include "io/json_files.h"
#include "study/objective.h"

int tune_threads_per_trial(const tune_options *o)
{
    if (o->threads > 0)
        return o->threads;
    /* The trials at once on this machine: --workers on each of its ranks. */
    int here = (o->workers < o->trials ? o->workers : o->trials) * job_local_size();
    int cores = cli_trial_cores();
    return cores / here > 0 ? cores / here : 1;
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
    double waiting_since;    /* free, and its next trial waits for earlier results: since when
                                (0: not waiting) */
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
    char **base = tune_trial_args(s->opt, &s->engine->trials[i].point, &argc);
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

/* The worker-seconds the free workers have waited for the next trial's configuration, which
 * is now known: their waits end (they wait again if the trial after it waits too). */
static double waits_end(runner *r)
{
    double now = nb_monotonic_seconds(), waited = 0;
    for (int k = 0; k < r->n_workers; k++)
        if (!r->w[k].busy && r->w[k].waiting_since > 0) {
            waited += now - r->w[k].waiting_since;
            r->w[k].waiting_since = 0;
        }
    return waited;
}

/* Starts trial i on worker w. */
static int launch(runner *r, worker *w, int i)
{
    study *s = r->s;
    trial *t = &s->engine->trials[i];
    char *dir = trial_dir(s, i);
    char *log_path = dir ? path_join(dir, "train.log") : NULL;
    char **args = NULL;
    if (!log_path)
        nb_fail(r->err, "out of memory");
    else if (make_dirs(dir, r->err) == 0)
        args = process_args(r, i, dir);
    int rc = -1, fd = -1;
    pid_t pid = 0;
    int argc = 0;
    while (args && args[argc])
        argc++;
    /* The journal's first word on trial i: its configuration, the arguments it runs with (not
     * "nabla") and how long the free workers waited for the results it depends on. */
    double waited = t->state == NB_TRIAL_PENDING ? waits_end(r) : 0;
    if (args && nb_study_started(s->engine, i, (const char *const *)args + 1, argc - 1,
                                 job_size() > 1 ? w->rank : -1, waited, r->err) == 0) {
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
    w->started = nb_monotonic_seconds();
    w->seconds_before = t->seconds;
    return 0;
}

/* ---- the pruner's verdicts --------------------------------------------------------------- */

static void print_trial_line(const runner *r, int i);

static worker *worker_of(runner *r, int i)
{
    for (int k = 0; k < r->n_workers; k++)
        if (r->w[k].busy && r->w[k].trial == i)
            return &r->w[k];
    return NULL;
}

/* The engine judges what can be judged and records the ends that are due; a pruned trial's
 * process (which may have run ahead) is killed. */
static int decide(runner *r, int *ended)
{
    int n;
    if (nb_study_decide(r->s->engine, ended, &n, r->err) != 0)
        return -1;
    for (int k = 0; k < n; k++) {
        worker *w = worker_of(r, ended[k]);
        if (w && r->s->engine->trials[ended[k]].state == NB_TRIAL_PRUNED) {
            w->pruned = 1;
            if (w->rank == 0)
                kill(w->pid, SIGKILL);
            else if (agent_send(w->rank, AGENT_KILL, (int)(w - r->w), 0, NULL, 0, r->err) != 0)
                return -1;
        }
        r->finished++;
        print_trial_line(r, ended[k]);
    }
    return 0;
}

/* ---- reports and endings ------------------------------------------------------------------- */

/* One report line from a trial: "<epochs> <metrics JSON>". */
static int take_report(runner *r, worker *w, char *line)
{
    study *s = r->s;
    if (trial_finished(&s->engine->trials[w->trial]))
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
    nb_trial_figures f = {json_number(m, "dev_accuracy"), json_number(m, "dev_loss"),
                          objective->valuedouble};
    int e = (int)epoch->valuedouble;
    cJSON_Delete(m);
    double seconds = w->seconds_before + (nb_monotonic_seconds() - w->started);
    return nb_study_tell_epoch(s->engine, w->trial, e, (int)epochs, f, seconds, r->err) < 0
               ? -1
               : 0;
}

/* The result in a finished trial's summary.json, read and checked as every reader of a run's
 * files reads it (run_check.h). */
static int read_summary(const study *s, int i, nb_trial_figures *f, int *epochs,
                        nb_error *err)
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
            f->accuracy = json_number(j, "dev_accuracy");
            f->loss = json_number(j, "dev_loss");
            f->objective = json_number(j, key);
            *epochs = (int)json_number(j, "epochs");
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
static nb_trial_state judge_end(const study *s, int i, const worker *w, int status,
                                nb_trial_figures *f, int *epochs, char *why, size_t cap)
{
    nb_error err = {0};
    int have = read_summary(s, i, f, epochs, &err) == 0;
    if (!have) {
        f->accuracy = f->loss = f->objective = NAN;
        *epochs = s->engine->trials[i].n_reported;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    nb_trial_state state = NB_TRIAL_INTERRUPTED;
    if (w->said && w->end == TRIAL_END_FAILED)
        state = NB_TRIAL_FAILED;
    else if (w->said && w->end == TRIAL_END_COMPLETE && code == EXIT_OK && have)
        return NB_TRIAL_COMPLETE;
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

/* The trial's process has ended with `status`. An interruption is journaled at once (not its
 * end: the study's next run resumes it), and the study stops; a result waits until the pruner
 * has judged every epoch the trial reported (nb_study_decide records it). */
static int trial_ended(runner *r, worker *w, int status, int stopping)
{
    study *s = r->s;
    int i = w->trial;
    double seconds = w->seconds_before + (nb_monotonic_seconds() - w->started);
    if (w->pruned || stopping) {
        worker_clear(w, w->rank);
        return 0; /* recorded already, or to be continued by the next run */
    }
    char why[512] = "";
    nb_trial_figures f;
    int epochs;
    nb_trial_state state = judge_end(s, i, w, status, &f, &epochs, why, sizeof why);
    worker_clear(w, w->rank);
    if (state == NB_TRIAL_INTERRUPTED) {
        if (r->interrupted < 0)
            r->interrupted = i;
        return nb_study_tell_interrupted(s->engine, i, why, seconds, r->err);
    }
    return nb_study_tell_end(s->engine, i, state, f, epochs, seconds, why, r->err);
}

static void print_trial_line(const runner *r, int i)
{
    const study *s = r->s;
    const trial *t = &s->engine->trials[i];
    if (s->opt->quiet)
        return;
    int width = snprintf(NULL, 0, "%d", s->opt->trials);
    printf("[%*d/%d] trial %*d %-8s", width, r->finished, s->opt->trials, width, i,
           nb_trial_state_name(t->state));
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
    if (t->state == NB_TRIAL_FAILED)
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

static int run_loop(runner *r)
{
    study *s = r->s;
    volatile sig_atomic_t *stop = stop_signal_flag();
    int *ended = malloc((size_t)s->opt->trials * sizeof *ended);
    struct pollfd *fds = malloc((size_t)r->n_workers * sizeof *fds);
    int *owner = malloc((size_t)r->n_workers * sizeof *owner);
    if (!ended || !fds || !owner) {
        free(ended);
        free(fds);
        free(owner);
        return nb_fail(r->err, "out of memory");
    }
    int rc = 0;
    nb_search_point point;
    while (rc == 0 && !*stop && r->interrupted < 0) {
        /* Judge what can be judged (which may finish trials and a round), then start trials
         * on free workers. */
        if ((rc = decide(r, ended)) != 0)
            break;
        for (int k = 0; rc == 0 && k < r->n_workers; k++) {
            if (r->w[k].busy)
                continue;
            int i, asked = nb_study_ask(s->engine, &i, &point, r->err);
            if (asked == 0 && nb_study_waiting(s->engine)) /* every free worker waits */
                for (int q = 0; q < r->n_workers; q++)
                    if (!r->w[q].busy && r->w[q].waiting_since == 0)
                        r->w[q].waiting_since = nb_monotonic_seconds();
            if (asked <= 0) {
                rc = asked;
                break;
            }
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
    free(ended);
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
    double give_up = nb_monotonic_seconds() + AGENTS_STOP_SECONDS;
    const struct timespec tick = {0, 10 * 1000 * 1000};
    while (stopped < agents && nb_monotonic_seconds() < give_up) {
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
    r.finished = nb_study_finished(s->engine);
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
                s->engine->trials[r.interrupted].reason);
        return STUDY_INTERRUPTED;
    }
    for (int i = 0; i < s->opt->trials; i++)
        if (!trial_finished(&s->engine->trials[i]))
            return nb_fail(err, "trial %d did not finish (a bug: please report it)", i);
    return 0;
}
