/* The study engine (nabla.h: nb_study): a trial from its configuration (ask) through what it
 * reports (tell) and the pruner's verdicts (decide) to its journal line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "io/json_files.h"
#include "io/json_write.h"
#include "io/paths.h"
#include "study/leaderboard.h"
#include "study/objective.h"
#include "study/study.h"

nb_study_config nb_study_defaults(void)
{
    nb_study_config c;
    memset(&c, 0, sizeof c);
    c.trials = 20;
    c.rounds = 1;
    c.sampler = NB_SAMPLER_RANDOM;
    c.tpe_lag = 2;
    c.tpe = nb_tpe_defaults();
    c.prune = NB_PRUNE_NONE;
    c.task = NB_TASK_CLASSIFICATION;
    c.objective = NB_METRIC_ACCURACY;
    c.epochs = 10;
    return c;
}

int study_trial_epochs(const nb_study_config *cfg, const nb_search_point *p)
{
    return cfg->hooks.epochs ? cfg->hooks.epochs(cfg->hooks.user, p) : cfg->epochs;
}

int study_trial_ends_early(const nb_study_config *cfg, const nb_search_point *p)
{
    return cfg->hooks.ends_early ? cfg->hooks.ends_early(cfg->hooks.user, p) : 0;
}

static int config_check(const nb_study_config *c, nb_error *err)
{
    if (c->space.n < 1)
        return nb_fail(err, "a study needs a search space of at least one parameter");
    if (c->trials < 1)
        return nb_fail(err, "a study needs at least one trial, not %d", c->trials);
    if (c->rounds < 1 || c->rounds > c->trials)
        return nb_fail(err, "rounds must be from 1 to the trials (%d), not %d", c->trials,
                       c->rounds);
    if ((unsigned)c->sampler > NB_SAMPLER_TPE || (unsigned)c->prune > NB_PRUNE_ASHA)
        return nb_fail(err, "unknown sampler or pruner");
    if (c->sampler == NB_SAMPLER_TPE && c->rounds > 1)
        return nb_fail(err, "TPE narrows its search by itself: it runs in one round");
    if (c->tpe_lag < 0)
        return nb_fail(err, "tpe_lag must be >= 0, not %d", c->tpe_lag);
    if (!c->hooks.epochs && c->epochs < 1)
        return nb_fail(err, "epochs must be >= 1, not %d", c->epochs);
    if (!nb_metric_applies(c->objective, c->task))
        return nb_fail(err, "a %s study has no %s", nb_task_name(c->task),
                       nb_metric_name(c->objective));
    return 0;
}

int nb_study_open(nb_study **out, const char *dir, const nb_study_config *cfg, nb_error *err)
{
    *out = NULL;
    if (config_check(cfg, err) != 0)
        return -1;
    nb_study *s = calloc(1, sizeof *s);
    if (!s)
        return nb_fail(err, "out of memory");
    s->cfg = *cfg;
    s->dir = dir ? strdup(dir) : NULL;
    s->trials = trials_new(cfg->trials, cfg->rounds);
    s->round_space = calloc((size_t)cfg->rounds, sizeof *s->round_space);
    s->scratch = malloc((size_t)cfg->trials * sizeof *s->scratch);
    int rc = (s->dir || !dir) && s->trials && s->round_space && s->scratch
                 ? 0
                 : nb_fail(err, "out of memory");
    if (rc == 0) {
        s->round_space[0] = cfg->space;
        s->rounds_known = 1;
        s->journal.cfg = &s->cfg; /* in memory only, until taken */
    }
    if (rc != 0 || !dir) {
        if (rc != 0)
            nb_study_close(s);
        else
            *out = s;
        return rc;
    }
    rc = make_dirs(dir, err);
    char *path = rc == 0 ? path_join(dir, "journal.jsonl") : NULL;
    if (rc == 0 && !path)
        rc = nb_fail(err, "out of memory");
    /* The journal is read as it is (a last line a crash cut short is left out), then taken up
     * for appending (that line cut off). */
    if (rc == 0 && report_file_exists(path))
        rc = journal_read(path, &s->cfg, s->trials, err);
    free(path);
    if (rc == 0)
        rc = journal_take(&s->journal, s->dir, &s->cfg, err);
    if (rc != 0) {
        nb_study_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void nb_study_close(nb_study *s)
{
    if (!s)
        return;
    journal_release(&s->journal);
    trials_free(s->trials, s->cfg.trials);
    free(s->round_space);
    free(s->scratch);
    free(s->dir);
    free(s);
}

static int valid_trial(const nb_study *s, int i, nb_error *err)
{
    if (i < 0 || i >= s->cfg.trials)
        return nb_fail(err, "trial %d is not one of the study's 0..%d", i, s->cfg.trials - 1);
    return 0;
}

int nb_study_ask(nb_study *s, int *trial_out, nb_search_point *point, nb_error *err)
{
    /* Trials start in number order: the lowest one not finished and not out already. */
    for (int i = 0; i < s->cfg.trials; i++) {
        trial *t = &s->trials[i];
        if (trial_finished(t) || t->exited || t->given)
            continue;
        if (!study_plannable(s, i))
            return 0;
        if (study_plan(s, i, err) != 0)
            return -1;
        t->given = 1;
        *trial_out = i;
        *point = t->point;
        return 1;
    }
    return 0;
}

int nb_study_waiting(const nb_study *s)
{
    for (int i = 0; i < s->cfg.trials; i++) {
        const trial *t = &s->trials[i];
        if (!trial_finished(t) && !t->exited && !t->given)
            return !study_plannable(s, i);
    }
    return 0;
}

int nb_study_started(nb_study *s, int i, const char *const *args, int n_args, int rank,
                     double waited, nb_error *err)
{
    if (valid_trial(s, i, err) != 0)
        return -1;
    trial *t = &s->trials[i];
    if (!t->given)
        return nb_fail(err, "trial %d starts without having been asked for", i);
    if (t->state == NB_TRIAL_PENDING) {
        t->waited = waited > 0 ? waited : 0;
        if (journal_start(&s->journal, i, t, args, n_args, rank, err) != 0)
            return -1;
    }
    t->state = NB_TRIAL_RUNNING; /* an interrupted trial runs again */
    t->reason[0] = '\0';
    return 0;
}

int nb_study_tell_epoch(nb_study *s, int i, int epoch, int epochs, nb_trial_figures f,
                        double seconds, nb_error *err)
{
    if (valid_trial(s, i, err) != 0)
        return -1;
    trial *t = &s->trials[i];
    if (trial_finished(t))
        return 0; /* pruned, and reporting epochs it ran ahead to before it was stopped */
    if (epoch < 1 || epoch > epochs || isnan(f.objective))
        return nb_fail(err, "trial %d: epoch %d of %d with objective %g is no report", i, epoch,
                       epochs, f.objective);
    t->epochs_total = epochs;
    int is_new = trial_set_epoch(t, epoch, f.accuracy, f.loss, f.objective);
    if (is_new < 0)
        return nb_fail(err, "out of memory");
    if (!is_new)
        return 0; /* a trial run again repeats the epochs of its checkpoint */
    t->seconds = seconds;
    return journal_epoch(&s->journal, i, t, epoch, err) == 0 ? 1 : -1;
}

int nb_study_tell_end(nb_study *s, int i, nb_trial_state state, nb_trial_figures f, int epochs,
                      double seconds, const char *reason, nb_error *err)
{
    if (valid_trial(s, i, err) != 0)
        return -1;
    if (state != NB_TRIAL_COMPLETE && state != NB_TRIAL_FAILED)
        return nb_fail(err, "a trial's run ends complete or failed, not %s",
                       nb_trial_state_name(state));
    trial *t = &s->trials[i];
    t->given = 0;
    if (trial_finished(t))
        return 0; /* pruned meanwhile */
    t->seconds = seconds;
    t->final_accuracy = f.accuracy;
    t->final_loss = f.loss;
    t->final_objective = f.objective;
    t->epochs = epochs;
    snprintf(t->reason, sizeof t->reason, "%s",
             state == NB_TRIAL_FAILED && reason && reason[0] ? reason
             : state == NB_TRIAL_FAILED                      ? "failed"
                                                             : "");
    t->exited = 1;
    t->exit_state = state;
    return 0;
}

int nb_study_tell_interrupted(nb_study *s, int i, const char *reason, double seconds,
                              nb_error *err)
{
    if (valid_trial(s, i, err) != 0)
        return -1;
    trial *t = &s->trials[i];
    t->given = 0;
    t->state = NB_TRIAL_INTERRUPTED;
    t->seconds = seconds;
    snprintf(t->reason, sizeof t->reason, "%s", reason && reason[0] ? reason : "interrupted");
    return journal_interrupted(&s->journal, i, t, err);
}

/* Whether the pruner can judge trial i after epoch e: every earlier trial has reported epoch
 * e, having passed the pruner at the epochs before it, or finished without it. Fills the
 * scores it is compared with (higher is better). A trial counts at epoch e only once it has
 * passed epochs 1..e-1: a trial that ran ahead of its verdicts (several at once) and is then
 * pruned before e would otherwise count at e with one worker and not with another. */
static int decidable(const nb_study *s, int i, int e, double *others, int *n)
{
    *n = 0;
    for (int u = 0; u < i; u++) {
        const trial *t = &s->trials[u];
        int passed = (trial_finished(t) || t->decided >= e - 1) &&
                     !(t->state == NB_TRIAL_PRUNED && t->epochs < e);
        if (t->n_reported >= e && passed && !isnan(t->dev_objective[e - 1]))
            others[(*n)++] = objective_score(s->cfg.objective, t->dev_objective[e - 1]);
        else if (!trial_finished(t))
            return 0;
    }
    return 1;
}

/* Trial i stops after epoch e, with that epoch's figures. */
static int prune(nb_study *s, int i, int e, nb_error *err)
{
    trial *t = &s->trials[i];
    t->state = NB_TRIAL_PRUNED;
    t->final_accuracy = t->dev_accuracy[e - 1];
    t->final_loss = t->dev_loss[e - 1];
    t->final_objective = t->dev_objective[e - 1];
    t->epochs = e;
    return journal_end(&s->journal, i, t, err);
}

int nb_study_decide(nb_study *s, int *ended, int *n_ended, nb_error *err)
{
    const nb_study_config *c = &s->cfg;
    nb_pruner pruner = {c->prune, 5, 1, 3};
    *n_ended = 0;
    /* In trial order: a verdict on trial i may let the later ones be judged. */
    for (int i = 0; i < c->trials; i++) {
        trial *t = &s->trials[i];
        if (t->state != NB_TRIAL_RUNNING)
            continue;
        int pruned = 0;
        while (!pruned && t->decided < t->n_reported && t->epochs_total > 0) {
            int n, e = t->decided + 1;
            /* An epoch not reported while a later one was (a report lost) is never judged. */
            if (isnan(t->dev_objective[e - 1])) {
                t->decided = e;
                continue;
            }
            /* Nothing to judge without a pruner, or at the last epoch. */
            if (c->prune != NB_PRUNE_NONE && e < t->epochs_total) {
                if (!decidable(s, i, e, s->scratch, &n))
                    break;
                pruned = nb_prune_should_stop(&pruner, e, t->epochs_total,
                                              objective_score(c->objective,
                                                              t->dev_objective[e - 1]),
                                              s->scratch, n);
            }
            if (pruned && prune(s, i, e, err) != 0)
                return -1;
            t->decided = e;
        }
        if (!pruned && t->exited && t->decided >= t->n_reported) {
            t->state = t->exit_state;
            if (journal_end(&s->journal, i, t, err) != 0)
                return -1;
        }
        if (trial_finished(t)) /* it was running: its end was recorded now */
            ended[(*n_ended)++] = i;
    }
    return 0;
}

int nb_study_trial(const nb_study *s, int i, nb_trial_info *info)
{
    nb_error err;
    if (valid_trial(s, i, &err) != 0)
        return -1;
    const trial *t = &s->trials[i];
    memset(info, 0, sizeof *info);
    info->state = t->state;
    info->round = t->round;
    info->has_point = t->has_point;
    info->point = t->point;
    info->reported = t->n_reported;
    info->epochs = t->epochs;
    info->result.accuracy = t->final_accuracy;
    info->result.loss = t->final_loss;
    info->result.objective = t->final_objective;
    info->seconds = t->seconds;
    info->reason = t->reason;
    return 0;
}

void study_seconds(const nb_study *s, double *trial_seconds, double *waited)
{
    *trial_seconds = *waited = 0;
    for (int i = 0; i < s->cfg.trials; i++) {
        *trial_seconds += s->trials[i].seconds;
        *waited += s->trials[i].waited;
    }
}

int nb_study_finished(const nb_study *s)
{
    int n = 0;
    for (int i = 0; i < s->cfg.trials; i++)
        n += trial_finished(&s->trials[i]);
    return n;
}

int nb_study_best(const nb_study *s)
{
    int n, *order = leaderboard_rank(s->trials, s->cfg.trials, s->cfg.objective, 0, &n);
    int best = order && n > 0 && s->trials[order[0]].state == NB_TRIAL_COMPLETE ? order[0] : -1;
    free(order);
    return best;
}
