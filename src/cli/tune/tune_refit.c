/* The refit of `nabla tune --refit` (see tune_refit.h): its arguments, its process, and how it
 * ended. */
#include "cli/tune/tune_refit.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/common/options.h"
#include "io/json_files.h"
#include "io/json_write.h"
#include "io/paths.h"
#include "cli/train/resume.h"
#include "cli/common/run_check.h"
#include "cli/train/run_files.h"
#include "cli/common/stop_signals.h"
#include "cli/common/threads.h"
#include "cli/train/train_options.h"
#include "cli/common/trial_channel.h"
#include "cli/tune/trial_process.h"
#include "study/objective.h"

/* Train options the refit leaves out of the trial's: the epochs (given anew), and what needs a
 * dev set without changing what the model learns (early stopping, which the epochs replace;
 * evaluations during training). */
static const char *const LEFT_OUT[] = {"--epochs", "--early-stop", "--monitor", "--min-delta",
                                       "--eval-every"};

static int left_out(const char *arg)
{
    for (size_t k = 0; k < sizeof LEFT_OUT / sizeof LEFT_OUT[0]; k++)
        if (strcmp(arg, LEFT_OUT[k]) == 0)
            return 1;
    return 0;
}

/* Whether the trial at point p runs a cosine schedule whose horizon is its --epochs. */
static int cosine_on_its_epochs(const tune_options *o, const nb_search_point *p)
{
    int argc, code;
    char **args = tune_trial_args(o, p, &argc);
    train_options t;
    int yes = args && train_options_parse(&t, argc, args, &code) == 0 &&
              t.decay == NB_DECAY_COSINE && !t.given_decay_epochs;
    tune_args_free(args);
    return yes;
}

/* The refit's `nabla train` arguments (args[0] "train", NULL-terminated; tune_args_free): the
 * trial's with --dev-fraction 0, `epochs` epochs (tune_refit.h), no test set (the tuner
 * measures it once), into out. NULL when out of memory. */
static char **refit_args(const study *s, const trial *t, int epochs, const char *out,
                         int *argc)
{
    tune_options whole = *s->opt;
    whole.dev_fraction = "0";
    int n_trial, n = 0, ok = 1;
    char **trial_args = tune_trial_args(&whole, &t->point, &n_trial);
    char **args = NULL;
    if (!trial_args)
        return NULL;
    for (int k = 0; ok && k < n_trial; k++) {
        if (left_out(trial_args[k])) {
            k += train_option_arity(trial_args[k] + 2) == 1;
            continue;
        }
        ok = tune_args_push(&args, &n, trial_args[k]) == 0;
    }
    tune_args_free(trial_args);
    char text[32];
    snprintf(text, sizeof text, "%d", epochs);
    ok = ok && tune_args_push(&args, &n, "--epochs") == 0 && tune_args_push(&args, &n, text) == 0;
    int planned = tune_trial_epochs(s->opt, &t->point);
    if (ok && epochs != planned && cosine_on_its_epochs(s->opt, &t->point)) {
        snprintf(text, sizeof text, "%d", planned);
        ok = tune_args_push(&args, &n, "--decay-epochs") == 0 &&
             tune_args_push(&args, &n, text) == 0;
    }
    ok = ok && tune_args_push(&args, &n, "--test") == 0 && tune_args_push(&args, &n, "none") == 0 &&
         tune_args_push(&args, &n, "--out") == 0 && tune_args_push(&args, &n, out) == 0;
    if (!ok) {
        tune_args_free(args);
        return NULL;
    }
    *argc = n;
    return args;
}

/* Where STUDY/refit stands: no checkpoint (a refit starts), the refit's own checkpoint (it
 * continues), or its own finished run (summary.json, checked). Another run's checkpoint there
 * is refused, as for a trial's directory. */
enum { REFIT_NEW, REFIT_STARTED, REFIT_FINISHED };

/* Reads and checks the finished refit's summary.json: 1 finished, 0 not there, -1 damaged. */
static int refit_summary(const char *dir, nb_error *err)
{
    char *path = path_join(dir, "summary.json");
    char *text = NULL;
    cJSON *j = NULL;
    int rc = !path ? nb_fail(err, "out of memory")
                   : report_read_json_text(path, 1, &j, &text, err);
    if (rc == 0 && j)
        rc = run_check_summary(j, text, path, NULL, NULL, err) == 0 ? 1 : -1;
    cJSON_Delete(j);
    free(text);
    free(path);
    return rc;
}

static int refit_state(const char *dir, char **args, int argc, int b, nb_error *err)
{
    nb_st_file f;
    char used[CLI_MAX_PATH], note[512], what[512];
    nb_error none;
    if (nb_checkpoint_open(dir, &f, used, sizeof used, note, sizeof note, &none) != 0)
        return REFIT_NEW;
    int own = resume_checkpoint_is_of(&f, args, argc, what, sizeof what, err);
    nb_st_free(&f);
    if (own < 0)
        return -1;
    if (!own)
        return nb_fail(err, "%s holds a run that is not the refit of trial %d (its "
                            "checkpoint's %s), which the tuner does not continue: move %s away "
                            "(or remove it), and the same command refits from the start",
                       dir, b, what, dir);
    int finished = refit_summary(dir, err);
    return finished < 0 ? -1 : finished ? REFIT_FINISHED : REFIT_STARTED;
}

/* The process's arguments ("nabla" first): the refit's, or --resume of its checkpoint; with
 * every core a trial may use (results do not depend on them) and --quiet. NULL when out of
 * memory. */
static char **process_args(const tune_options *o, char **args, int argc, int resume,
                           const char *dir)
{
    char threads[16];
    snprintf(threads, sizeof threads, "%d", o->threads > 0 ? o->threads : cli_trial_cores());
    char **p = NULL;
    int n = 0, ok = tune_args_push(&p, &n, "nabla") == 0;
    if (resume)
        ok = ok && tune_args_push(&p, &n, "train") == 0 &&
             tune_args_push(&p, &n, "--resume") == 0 && tune_args_push(&p, &n, dir) == 0;
    for (int k = 0; ok && !resume && k < argc; k++)
        ok = tune_args_push(&p, &n, args[k]) == 0;
    ok = ok && tune_args_push(&p, &n, "--threads") == 0 && tune_args_push(&p, &n, threads) == 0 &&
         tune_args_push(&p, &n, "--quiet") == 0;
    if (!ok) {
        tune_args_free(p);
        return NULL;
    }
    return p;
}

/* Runs the refit's process to its end, or until a stop signal, which it passes on (the run
 * checkpoints). Returns 0 with *status and the run's last word (*said, *end, why), or the stop
 * flag's value. */
static int watch(pid_t pid, int fd, int *status, int *said, trial_end *end, char *why,
                 size_t cap)
{
    volatile sig_atomic_t *stop = stop_signal_flag();
    char buf[16384];
    size_t len = 0;
    *said = 0;
    while (!*stop) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;   /* the stop flag is looked at between waits */
        ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;      /* the run has ended (or closed its end) */
        len += (size_t)got;
        buf[len] = '\0';
        char *nl;
        while ((nl = memchr(buf, '\n', len)) != NULL) {
            *nl = '\0';
            /* Epoch reports are not needed: the run's own files tell. */
            if (trial_channel_parse_end(buf, end, why, cap))
                *said = 1;
            len -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len);
        }
        if (len == sizeof buf - 1)
            len = 0;   /* a line this long is not a last word */
    }
    int reason = *stop;
    if (reason)
        stop_signals_send(pid, stop_signal_to_pass_on(reason));
    close(fd);   /* a run blocked sending to it stops too, keeping its checkpoint */
    trial_reap(pid, status);
    return reason;
}

/* Why the refit's run did not finish, from its last word and exit status. */
static int refit_failed(const char *dir, int b, int status, int said, trial_end end,
                        const char *why, const nb_error *summary_err, nb_error *err)
{
    char reason[600];
    if (said && end != TRIAL_END_COMPLETE && why[0])
        snprintf(reason, sizeof reason, "%s", why);
    else if (WIFSIGNALED(status))
        snprintf(reason, sizeof reason, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else if (said && end == TRIAL_END_COMPLETE && summary_err)
        snprintf(reason, sizeof reason, "it trained to its end, but %.400s", summary_err->msg);
    else
        snprintf(reason, sizeof reason, "exit status %d%s", WEXITSTATUS(status),
                 said ? "" : ", without a word to the tuner");
    int interrupted = !(said && end == TRIAL_END_FAILED);
    return nb_fail(err, "the refit of trial %d %s: %.300s (see %s/train.log)%s", b,
                   interrupted ? "was interrupted" : "failed", reason, dir,
                   interrupted ? "; the same command continues it from its checkpoint" : "");
}

int refit_train(const study *s, int b, refit_run *r, nb_error *err)
{
    const trial *t = &s->engine->trials[b];
    r->trial = b;
    if ((r->epochs = refit_epochs(s->dir, b, t->epochs, err)) < 0)
        return -1;
    char *dir = path_join(s->dir, REFIT_DIR);
    char *log = dir ? path_join(dir, "train.log") : NULL;
    int argc = 0;
    char **args = log ? refit_args(s, t, r->epochs, dir, &argc) : NULL;
    char **proc = NULL;
    int rc = -1, state = -1;
    if (!args) {
        nb_fail(err, "out of memory");
        goto done;
    }
    r->command[0] = '\0';
    append_shell_word(r->command, sizeof r->command, "nabla");
    for (int k = 0; k < argc; k++)
        append_shell_word(r->command, sizeof r->command, args[k]);
    if ((state = refit_state(dir, args, argc, b, err)) < 0)
        goto done;
    if (state == REFIT_FINISHED) {
        rc = 0;
        goto done;
    }
    if (!s->opt->quiet)
        printf("\nrefit: trial %d's configuration on the whole training set, its dev split "
               "included, %d epoch%s, into %s%s\n", b, r->epochs, r->epochs == 1 ? "" : "s",
               dir, state == REFIT_STARTED ? " (continuing from its checkpoint)" : "");
    fflush(stdout);
    if (make_dirs(dir, err) != 0)
        goto done;
    if (!(proc = process_args(s->opt, args, argc, state == REFIT_STARTED, dir))) {
        nb_fail(err, "out of memory");
        goto done;
    }
    int fd;
    pid_t pid = trial_spawn(proc, log, &fd, err);
    if (pid < 0)
        goto done;
    int status = 0, said;
    trial_end end = TRIAL_END_INTERRUPTED;
    char why[512] = "";
    int stopped = watch(pid, fd, &status, &said, &end, why, sizeof why);
    if (stopped) {
        rc = stopped;
        goto done;
    }
    nb_error summary_err;
    int finished = refit_summary(dir, &summary_err);
    if (said && end == TRIAL_END_COMPLETE && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
        finished == 1)
        rc = 0;
    else
        refit_failed(dir, b, status, said, end, why, finished < 0 ? &summary_err : NULL, err);
done:
    tune_args_free(proc);
    tune_args_free(args);
    free(log);
    free(dir);
    return rc;
}

int refit_left(const study *s)
{
    char *dir = path_join(s->dir, REFIT_DIR);
    int there = dir && access(dir, F_OK) == 0;
    free(dir);
    return there;
}

cJSON *refit_json(const study *s, const refit_run *r, double test_accuracy, double test_loss,
                  double test_objective)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddNumberToObject(j, "epochs", r->epochs);
    cJSON_AddStringToObject(j, "model", REFIT_MODEL);
    cJSON_AddItemToObject(j, "test_accuracy", json_double(test_accuracy));
    cJSON_AddItemToObject(j, "test_loss", json_double(test_loss));
    if (objective_is_extra(s->opt->objective)) {
        char key[64];
        objective_key(s->opt->objective, "test", key, sizeof key);
        cJSON_AddItemToObject(j, key, json_double(test_objective));
    }
    cJSON_AddStringToObject(j, "command", r->command);
    return j;
}
