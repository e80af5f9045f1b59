/* The end of a study: the leaderboard, which hyperparameters mattered, the best trial measured
 * once on the test set, and best.json. */
#include "cli/tune/tune_report.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/json_write.h"
#include "io/paths.h"
#include "cli/common/options.h"
#include "study/leaderboard.h"
#include "io/json_files.h"
#include "cli/common/stop_signals.h"
#include "cli/tune/trial_process.h"
#include "study/objective.h"
#include "cli/tune/tune_refit.h"

/* test_best's result when a stop signal came while the best model was being evaluated. */
#define TEST_STOPPED 2

int *study_ranking(const study *s)
{
    int n;
    return leaderboard_rank(s->engine->trials, s->opt->trials, s->opt->objective, 1, &n);
}

void print_params(FILE *out, const nb_search_space *space, const nb_search_point *p)
{
    for (int k = 0; k < space->n; k++) {
        char text[NB_SEARCH_VALUE_MAX];
        nb_search_value_text(&space->p[k], p->v[k], text, sizeof text);
        fprintf(out, "%s%s=%s", k ? " " : "", space->p[k].name, text);
    }
}

enum { LEADERBOARD_ROWS = 10 };

static void print_leaderboard(const study *s, const int *order)
{
    int n = s->opt->trials, shown = n < LEADERBOARD_ROWS ? n : LEADERBOARD_ROWS;
    /* The objective's column: "dev acc" as before objectives, "dev rmse" for another. */
    char label[64] = "dev acc";
    if (s->opt->objective != NB_METRIC_ACCURACY)
        objective_label(s->opt->objective, label, sizeof label);
    int width = strlen(label) > 7 ? (int)strlen(label) : 7;
    printf("\n%4s  %5s  %-8s  %*s  %6s  %8s  %s\n", "rank", "trial", "state", width, label,
           "epochs", "seconds", "params");
    for (int k = 0; k < shown; k++) {
        const trial *t = &s->engine->trials[order[k]];
        printf("%4d  %5d  %-8s  ", k + 1, order[k], nb_trial_state_name(t->state));
        if (isnan(t->final_objective))
            printf("%*s", width, "-");
        else
            printf("%*.4f", width, t->final_objective);
        printf("  %6d  %8.1f  ", t->epochs, t->seconds);
        print_params(stdout, &s->opt->space, &t->point);
        printf("\n");
    }
    if (shown < n)
        printf("      (%d more in %s)\n", n - shown, s->engine->journal.path);
}

static int by_explained_desc(const void *a, const void *b, const double *e)
{
    double x = e[*(const int *)a], y = e[*(const int *)b];
    return (x < y) - (x > y);
}

static const double *sort_explained;
static int cmp_explained(const void *a, const void *b)
{
    return by_explained_desc(a, b, sort_explained);
}

static void print_importance(const study *s, const double *explained, int used)
{
    int n = s->opt->space.n, order[NB_SEARCH_MAX_PARAMS];
    for (int k = 0; k < n; k++)
        order[k] = k;
    sort_explained = explained;
    qsort(order, (size_t)n, sizeof *order, cmp_explained);
    char label[64];
    objective_label(s->opt->objective, label, sizeof label);
    printf("\nwhat mattered: share of the variance of %s explained by each "
           "hyperparameter (%d complete trials)\n", label, used);
    if (used < 3) {
        printf("  too few complete trials to say\n");
        return;
    }
    for (int k = 0; k < n; k++) {
        double e = explained[order[k]];
        int bar = (int)lround(e * 40);
        printf("  %-16s %5.2f  ", s->opt->space.p[order[k]].name, e);
        for (int b = 0; b < bar; b++)
            putchar('#');
        putchar('\n');
    }
    printf("  (one hyperparameter at a time over random configurations: a guide to which to "
           "tune first, not an exact split)\n");
}

/* The command that trains the best configuration again: the trial's own arguments (the
 * weights do not depend on --threads), with the test set back, into STUDY/best. */
static int best_command(const study *s, const trial *t, char *buf, size_t cap)
{
    int argc;
    char **args = tune_trial_args(s->opt, &t->point, &argc);
    if (!args)
        return -1;
    buf[0] = '\0';
    append_shell_word(buf, cap, "nabla");
    for (int k = 0; k < argc; k++)
        append_shell_word(buf, cap, args[k]);
    tune_args_free(args);
    if (s->opt->test) {
        append_shell_word(buf, cap, "--test");
        append_shell_word(buf, cap, s->opt->test);
    }
    char *best = path_join(s->dir, "best");
    if (!best)
        return -1;
    append_shell_word(buf, cap, "--out");
    append_shell_word(buf, cap, best);
    free(best);
    return 0;
}

/* The fixed value of train option --name, or NULL. */
static const char *fixed(const tune_options *o, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < o->n_fixed; i++)
        if (strcmp(o->fixed[i].flag + 2, name) == 0)
            v = o->fixed[i].value;
    return v;
}

/* Measures a model of the study (model: its path in the study directory: the best trial's, or
 * the refit's) once on the test set with `nabla eval`: the t10k files of IDX data,
 * the synthetic test set, or --test for CSV data (a CSV set without --test has none). Returns
 * 1 with the result (its accuracy, loss and the study's objective; NaN for what the task has
 * not), 0 when there is no test set, -1 on failure (message printed), and TEST_STOPPED when a
 * stop signal came while it ran (the evaluation is stopped too: it is an interruption, not a
 * failure of the model). */
static int test_best(const study *s, const char *model_in_study, double *accuracy, double *loss,
                     double *objective)
{
    const tune_options *o = s->opt;
    const char *data = fixed(o, "data") ? fixed(o, "data") : "fashion-mnist";
    data_kind kind;
    const char *path;
    nb_error err;
    if (o->test && strcmp(o->test, "none") == 0)
        return 0;
    if (data_classify(data, &kind, &path, &err) != 0) {
        fprintf(stderr, "nabla: %s\n", err.msg);
        return -1;
    }
    if (kind == DATA_CSV && !o->test)
        return 0;
    char model[CLI_MAX_PATH + 64], seed[32];
    snprintf(model, sizeof model, "%s/%s", s->dir, model_in_study);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    const char *args[24];
    int n = 0;
    args[n++] = "nabla";
    args[n++] = "eval";
    args[n++] = "--model";
    args[n++] = model;
    args[n++] = "--data";
    args[n++] = data;
    if (o->test) {
        args[n++] = "--test";
        args[n++] = o->test;
    }
    static const char *const synthetic_options[] = {"samples", "noise"};
    for (int k = 0; k < 2; k++)
        if (fixed(o, synthetic_options[k])) {
            args[n++] = k == 0 ? "--samples" : "--noise";
            args[n++] = fixed(o, synthetic_options[k]);
        }
    args[n++] = "--seed";
    args[n++] = seed;
    args[n++] = "--json";
    args[n] = NULL;

    int out[2];
    if (pipe(out) != 0) {
        perror("nabla: pipe");
        return -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        exec_nabla((char *const *)args);
    }
    close(out[1]);
    if (pid > 0)
        stop_signals_track(pid);   /* a second signal stops it at once, with the tuner */
    char buf[4096];
    size_t len = 0;
    ssize_t got = 0;
    volatile sig_atomic_t *stop = stop_signal_flag();
    /* The stop flag is looked at between reads: a signal sent to the tuner alone (kill, a
     * scheduler) does not reach the evaluation, which is then stopped here. */
    while (pid > 0 && len + 1 < sizeof buf && !*stop) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        if ((got = read(out[0], buf + len, sizeof buf - 1 - len)) == 0)
            break;
        if (got < 0 && errno != EINTR)
            break;
        len += got > 0 ? (size_t)got : 0;
    }
    buf[len] = '\0';
    close(out[0]);
    int status = 0;
    if (pid > 0 && *stop)
        stop_signals_send(pid, SIGTERM);
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (pid > 0)
        stop_signals_untrack(pid);
    if (*stop)
        return TEST_STOPPED;
    cJSON *j = cJSON_Parse(buf);
    /* eval's --json names each metric as nb_metric does ("accuracy", "rmse"). */
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(j, nb_metric_name(o->objective));
    int rc = -1;
    if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && cJSON_IsNumber(value)) {
        *accuracy = json_number(j, "accuracy");
        *loss = json_number(j, "loss");
        *objective = value->valuedouble;
        rc = 1;
    } else {
        fprintf(stderr, "nabla: the test evaluation of %s failed\n", model);
    }
    cJSON_Delete(j);
    return rc;
}

/* What waiting for earlier results cost (nb_study_waiting): the worker-seconds a free worker
 * waited, against the workers' whole time (running trials or waiting). Said for a sampler
 * that waits only (tpe, coarse to fine). */
static void print_waited(const study *s, double waited, double trial_seconds)
{
    const tune_options *o = s->opt;
    if (o->quiet || (o->sampler != SAMPLER_TPE && o->rounds == 1))
        return;
    double all = waited + trial_seconds;
    char why[64];
    if (o->sampler == SAMPLER_TPE)
        snprintf(why, sizeof why, "--sampler tpe, --tpe-lag %d", o->tpe_lag);
    else
        snprintf(why, sizeof why, "--rounds %d", o->rounds);
    printf("\nwaited: %.1f worker-seconds with a worker free and the next trial waiting for "
           "earlier results (%s): %.1f%% of the workers' %.1f s\n", waited, why,
           all > 0 ? 100 * waited / all : 0.0, all);
}

int study_report(const study *s, nb_error *err)
{
    const tune_options *o = s->opt;
    /* No leaderboard, no best.json, for a study whose files someone else changed since its
     * last journal line: that is not the study the journal tells. */
    if (study_check_files(s, err) != 0)
        return -1;
    int *order = study_ranking(s);
    if (!order)
        return nb_fail(err, "out of memory");
    print_leaderboard(s, order);
    double explained[NB_SEARCH_MAX_PARAMS];
    int used = nb_study_importance(s->engine, explained);
    print_importance(s, explained, used);
    double seconds, waited;
    study_seconds(s->engine, &seconds, &waited);
    print_waited(s, waited, seconds);

    int b = order[0];
    const trial *best = &s->engine->trials[b];
    free(order);
    nb_study_notes notes = {{NAN, NAN, NAN}, NULL, NULL, NULL};
    char command[16384], model[64];
    char *extra = NULL;
    int rc = 0;
    if (best->state != NB_TRIAL_COMPLETE) {
        printf("\nno trial completed: no best model (see the reasons in %s)\n",
               s->engine->journal.path);
        rc = nb_fail(err, "no trial of %s completed", s->dir);
    } else {
        snprintf(model, sizeof model, "trials/%d/model.safetensors", b);
        nb_trial_figures *test = &notes.test;
        int tested = test_best(s, model, &test->accuracy, &test->loss, &test->objective);
        if (tested == TEST_STOPPED) {
            /* Every trial is done; best.json is left unwritten, so the same command evaluates
             * the best model again and writes it. */
            fflush(stdout);
            nb_fail(err, "the test evaluation of the best model; every trial has finished: run "
                         "the same command again to evaluate it and write %s/best.json", s->dir);
            return (int)*stop_signal_flag();
        }
        /* The refit, once the best trial is measured; stopped or failed, best.json is not
         * written (it would not be what the command asked for): the same command goes on. */
        refit_run refit = {0};
        double refit_acc = NAN, refit_loss = NAN, refit_objective = NAN;
        int refit_tested = 0, refit_rc = o->refit ? refit_train(s, b, &refit, err) : 0;
        if (o->refit && refit_rc == 0)
            refit_tested = test_best(s, REFIT_MODEL, &refit_acc, &refit_loss, &refit_objective);
        if (refit_rc != 0 || refit_tested == TEST_STOPPED) {
            fflush(stdout);
            if (refit_rc < 0)
                return -1;
            if (refit_rc > 0)
                nb_fail(err, "the refit of the best configuration (trial %d) in %s/%s; every "
                             "trial has finished: run the same command again to continue the "
                             "refit from its checkpoint and write %s/best.json", b, s->dir,
                        REFIT_DIR, s->dir);
            else
                nb_fail(err, "the test evaluation of the refit model; every trial and the refit "
                             "have finished: run the same command again to evaluate it and "
                             "write %s/best.json", s->dir);
            return (int)*stop_signal_flag();
        }
        if (best_command(s, best, command, sizeof command) != 0)
            return nb_fail(err, "out of memory");
        notes.model = model;
        notes.command = command;
        if (o->refit) {
            /* best.json's "refit", a member the engine adds as it is. */
            cJSON *members = cJSON_CreateObject();
            cJSON_AddItemToObject(members, "refit", refit_json(s, &refit, refit_acc, refit_loss,
                                                               refit_objective));
            extra = cJSON_PrintUnformatted(members);
            cJSON_Delete(members);
            if (!extra)
                return nb_fail(err, "out of memory");
            notes.extra_json = extra;
        }
        char label[64];
        objective_label(o->objective, label, sizeof label);
        printf("\nbest: trial %d, %s %.4f", b, label, best->final_objective);
        if (tested == 1)
            printf(", test %s %.4f", label + strlen("dev "), test->objective);
        else if (tested == 0)
            printf(", no test set");
        /* The refit's test figure beside the trial's. */
        if (o->refit && refit_tested == 1)
            printf("; refit (%d epoch%s on train + dev): test %s %.4f", refit.epochs,
                   refit.epochs == 1 ? "" : "s", label + strlen("dev "), refit_objective);
        else if (o->refit && refit_tested == 0)
            printf("; refit (%d epoch%s on train + dev): no test set", refit.epochs,
                   refit.epochs == 1 ? "" : "s");
        printf("\n  ");
        print_params(stdout, &o->space, &best->point);
        printf("\n  model: %s/%s\n  train it again: %s\n", s->dir, model, command);
        if (o->refit)
            printf("  refit model: %s/%s\n  refit it again: %s\n", s->dir, REFIT_MODEL,
                   refit.command);
        else if (refit_left(s))
            printf("  (%s/%s holds the refit of an earlier run with --refit: best.json names it "
                   "only with --refit)\n", s->dir, REFIT_DIR);
        if (tested < 0)
            rc = nb_fail(err, "the best model could not be evaluated on the test set");
        else if (refit_tested < 0)
            rc = nb_fail(err, "the refit model could not be evaluated on the test set");
    }
    nb_error werr;
    if (nb_study_write_best(s->engine, &notes, &werr) != 0) {
        if (rc == 0)   /* (the study's files are checked again, after the test evaluation) */
            rc = nb_fail(err, "%s", werr.msg);
    } else if (!o->quiet) {
        printf("wrote %s/best.json\n", s->dir);
    }
    cJSON_free(extra);
    fflush(stdout);
    return rc;
}
