/* Hyperparameter search from C, as the course teaches it: random values (not a grid), the
 * learning rate on a log scale, Adam's beta1 through 1 - beta1 on a log scale, then a second,
 * finer round around the best trials; each trial scored on a dev split, only the best one on
 * the test set; and which hyperparameter mattered. `nabla tune` does the same with processes,
 * a journal and pruning. */
#include <stdio.h>

#include "nabla.h"

enum { ROUNDS = 2, PER_ROUND = 8, TRIALS = ROUNDS * PER_ROUND };

/* Trains one configuration (lr, beta1) and returns its dev accuracy; the model is kept. */
static int run_trial(const nb_search_point *p, const nb_dataset *train, const nb_dataset *dev,
                     nb_model *model, double *dev_accuracy, nb_error *err)
{
    nb_model_spec spec;
    if (nb_model_spec_parse(&spec, "linear(16),tanh,linear(16),tanh,linear", nb_shape_vector(2),
                            2, err) != 0 ||
        nb_model_build(model, &spec, 32, 0, err) != 0)
        return -1;
    nb_train_config cfg = {
        .optim = {.kind = NB_ADAM, .beta = (float)p->v[1], .beta2 = 0.999f, .eps = 1e-8f},
        .schedule = {.kind = NB_DECAY_NONE, .lr = (float)p->v[0]},
        .batch_size = 32, .epochs = 10, .shuffle = 1, .seed = 0,
    };
    nb_train_result result;
    if (nb_train(model, train, dev, NULL, &cfg, &result, err) != 0)
        return -1;
    nb_eval_result eval;
    if (nb_evaluate(model, dev, &eval, err) != 0)
        return -1;
    *dev_accuracy = eval.accuracy;
    return 0;
}

int main(void)
{
    nb_error err;
    nb_dataset train = {0}, dev = {0}, test = {0};
    if (nb_make_synthetic("moons", 1200, 0.25f, 1, &train, &err) != 0 ||
        nb_dataset_split(&train, 0.2f, 1, &dev, &err) != 0 ||
        nb_make_synthetic("moons", 400, 0.25f, 2, &test, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;

    nb_search_space space;
    if (nb_search_space_parse(&space, "lr=log(1e-4,1); beta=1-log(0.5,0.999)", &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    nb_search_point points[TRIALS];
    double score[TRIALS];
    int best = 0;
    for (int round = 0; round < ROUNDS; round++) {
        if (round > 0 && nb_search_narrow(&space, points, score, round * PER_ROUND, 0.25, &space,
                                          &err) != 0)
            return fprintf(stderr, "%s\n", err.msg), 1;
        char text[NB_SEARCH_FORMAT_MAX];
        nb_search_space_format(&space, text, sizeof text);
        printf("round %d: %s\n", round + 1, text);
        for (int t = round * PER_ROUND; t < (round + 1) * PER_ROUND; t++) {
            nb_search_sample(&space, 42, t, &points[t]);
            nb_model model;
            if (run_trial(&points[t], &train, &dev, &model, &score[t], &err) != 0)
                return fprintf(stderr, "%s\n", err.msg), 1;
            nb_model_free(&model);
            printf("  trial %2d: lr %-10.4g beta %-8.4g dev accuracy %.3f\n", t, points[t].v[0],
                   points[t].v[1], score[t]);
            if (score[t] > score[best])
                best = t;
        }
    }

    double explained[NB_SEARCH_MAX_PARAMS];
    if (nb_search_importance(&space, points, score, TRIALS, explained, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    printf("share of the dev accuracy's variance explained: lr %.2f, beta %.2f\n", explained[0],
           explained[1]);

    /* The test set, once: the best configuration trained again (training is deterministic). */
    nb_model model;
    double again;
    nb_eval_result eval;
    if (run_trial(&points[best], &train, &dev, &model, &again, &err) != 0 ||
        nb_evaluate(&model, &test, &eval, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    printf("best: trial %d, dev accuracy %.3f, test accuracy %.3f\n", best, score[best],
           eval.accuracy);
    nb_model_free(&model);
    nb_dataset_free(&train);
    nb_dataset_free(&dev);
    nb_dataset_free(&test);
    return again == score[best] && eval.accuracy > 0.85 ? 0 : 1;
}
