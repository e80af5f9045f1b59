/* Hyperparameter search from C, as the course teaches it, run by the library's study engine
 * (nb_study): random values (not a grid), the learning rate on a log scale, Adam's beta1
 * through 1 - beta1 on a log scale, a second, finer round around the best trials of the first;
 * poor trials stopped early (below the median of the trials before them at the same epoch);
 * each trial scored on a dev split, only the best one on the test set, then refitted on the
 * training and dev sets together; and which hyperparameter mattered. The study lives in a
 * directory (its journal): run it again and it continues where it stopped, or, finished, says
 * what it found.
 * `nabla tune` runs the same engine with trials as processes, several at once.
 *
 *     example_random_search [STUDY_DIR]      (default: a new directory under /tmp, removed at
 *                                             the end) */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

enum { TRIALS = 16, EPOCHS = 10 };

/* One trial's run: it tells the study each epoch's dev figures and stops when pruned. */
typedef struct trial_run {
    nb_study *study;
    int trial;
    int pruned;
    double seconds;   /* its time so far */
    nb_error *err;
} trial_run;

static int on_epoch(const nb_epoch_metrics *m, void *user)
{
    trial_run *r = user;
    nb_trial_figures f = {m->dev.accuracy, m->dev.loss, m->dev.accuracy};
    int ended[TRIALS], n;
    nb_trial_info info;
    r->seconds += m->seconds;
    if (nb_study_tell_epoch(r->study, r->trial, m->epoch + 1, EPOCHS, f, r->seconds, r->err) < 0 ||
        nb_study_decide(r->study, ended, &n, r->err) != 0 ||
        nb_study_trial(r->study, r->trial, &info) != 0)
        return 1;
    r->pruned = info.state == NB_TRIAL_PRUNED;
    return r->pruned;   /* non-zero stops nb_train */
}

/* Trains the configuration p (lr, beta1) for `epochs`, telling `study` (if any) each epoch. */
static int train(const nb_search_point *p, int epochs, const nb_dataset *train_set,
                 const nb_dataset *dev, nb_model *model, trial_run *run, nb_error *err)
{
    nb_model_spec spec;
    if (nb_model_spec_parse(&spec, "linear(16),tanh,linear(16),tanh,linear", nb_shape_vector(2),
                            2, err) != 0 ||
        nb_model_build(model, &spec, 32, 0, err) != 0)
        return -1;
    nb_train_config cfg = {
        .optim = {.kind = NB_ADAM, .beta = (float)p->v[1], .beta2 = 0.999f, .eps = 1e-8f},
        .schedule = {.kind = NB_DECAY_NONE, .lr = (float)p->v[0]},
        .batch_size = 32, .epochs = epochs, .shuffle = 1, .seed = 0,
        .on_epoch = run ? on_epoch : NULL, .user = run,
    };
    nb_train_result result;
    int rc = nb_train(model, train_set, dev, NULL, &cfg, &result, err);
    return rc == 0 || (run && run->pruned) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    nb_error err;
    nb_dataset train_set = {0}, dev = {0}, test = {0};
    if (nb_make_synthetic("moons", 1200, 0.25f, 1, &train_set, &err) != 0 ||
        nb_dataset_split(&train_set, 0.2f, 1, &dev, &err) != 0 ||
        nb_make_synthetic("moons", 400, 0.25f, 2, &test, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;

    char dir[256] = "/tmp/nabla_random_search_XXXXXX";
    if (argc > 1)
        snprintf(dir, sizeof dir, "%s", argv[1]);
    else if (!mkdtemp(dir))
        return perror("mkdtemp"), 1;

    nb_study_config cfg = nb_study_defaults();
    if (nb_search_space_parse(&cfg.space, "lr=log(1e-4,1); beta=1-log(0.5,0.999)", &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    cfg.trials = TRIALS;
    cfg.rounds = 2;
    cfg.prune = NB_PRUNE_MEDIAN;
    cfg.seed = 42;
    cfg.epochs = EPOCHS;
    nb_study *study;
    if (nb_study_open(&study, dir, &cfg, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    printf("study %s: %d of %d trials finished before\n", dir, nb_study_finished(study), TRIALS);

    /* One trial at a time: ask, train (telling each epoch), tell how it ended. */
    int i, asked;
    nb_search_point p;
    while ((asked = nb_study_ask(study, &i, &p, &err)) == 1) {
        trial_run run = {study, i, 0, 0, &err};
        nb_model model;
        int ended[TRIALS], n;
        nb_eval_result eval;
        if (nb_study_started(study, i, NULL, 0, -1, 0, &err) != 0 ||
            train(&p, EPOCHS, &train_set, &dev, &model, &run, &err) != 0)
            return fprintf(stderr, "%s\n", err.msg), 1;
        if (!run.pruned) {
            if (nb_evaluate(&model, &dev, &eval, &err) != 0)
                return fprintf(stderr, "%s\n", err.msg), 1;
            nb_trial_figures f = {eval.accuracy, eval.loss, eval.accuracy};
            if (nb_study_tell_end(study, i, NB_TRIAL_COMPLETE, f, EPOCHS, run.seconds, NULL,
                                  &err) != 0 ||
                nb_study_decide(study, ended, &n, &err) != 0)
                return fprintf(stderr, "%s\n", err.msg), 1;
        }
        nb_model_free(&model);
        nb_trial_info info;
        nb_study_trial(study, i, &info);
        printf("  trial %2d (round %d): lr %-10.4g beta %-8.4g %-8s after %2d epochs, dev "
               "accuracy %.3f\n", i, info.round + 1, p.v[0], p.v[1],
               nb_trial_state_name(info.state), info.epochs, info.result.accuracy);
    }
    if (asked < 0)
        return fprintf(stderr, "%s\n", err.msg), 1;

    /* Which hyperparameter mattered, over the complete trials. */
    nb_search_point pts[TRIALS];
    double score[TRIALS];
    int n = 0;
    for (int t = 0; t < TRIALS; t++) {
        nb_trial_info info;
        nb_study_trial(study, t, &info);
        if (info.state == NB_TRIAL_COMPLETE) {
            pts[n] = info.point;
            score[n++] = info.result.accuracy;
        }
    }
    double explained[NB_SEARCH_MAX_PARAMS];
    if (nb_search_importance(&cfg.space, pts, score, n, explained, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    printf("share of the dev accuracy's variance explained: lr %.2f, beta %.2f (%d complete "
           "trials)\n", explained[0], explained[1], n);

    /* The test set, once: the best configuration trained again (training is deterministic). */
    int best = nb_study_best(study);
    nb_trial_info info;
    if (best < 0 || nb_study_trial(study, best, &info) != 0)
        return fprintf(stderr, "no trial completed\n"), 1;
    nb_model model;
    nb_eval_result again, eval;
    if (train(&info.point, info.epochs, &train_set, &dev, &model, NULL, &err) != 0 ||
        nb_evaluate(&model, &dev, &again, &err) != 0 ||
        nb_evaluate(&model, &test, &eval, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    printf("best: trial %d, dev accuracy %.3f, test accuracy %.3f\n", best,
           info.result.accuracy, eval.accuracy);
    nb_model_free(&model);

    /* The refit: the best configuration trained on the training and dev sets together (the
     * whole training set, before its split) for the best trial's epochs, then tested once. */
    nb_dataset whole = {0};
    nb_eval_result refit;
    if (nb_make_synthetic("moons", 1200, 0.25f, 1, &whole, &err) != 0 ||
        train(&info.point, info.epochs, &whole, NULL, &model, NULL, &err) != 0 ||
        nb_evaluate(&model, &test, &refit, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    printf("refit on train + dev (%d epochs): test accuracy %.3f\n", info.epochs,
           refit.accuracy);
    nb_model_free(&model);
    nb_dataset_free(&whole);
    nb_study_close(study);
    if (argc < 2)
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    nb_dataset_free(&train_set);
    nb_dataset_free(&dev);
    nb_dataset_free(&test);
    return again.accuracy == info.result.accuracy && eval.accuracy > 0.85 &&
                   refit.accuracy > 0.85
               ? 0
               : 1;
}
