/* Train a small classifier on the course's "moons" set with the model API. */
#include <stdio.h>

#include "nabla.h"

int main(void)
{
    nb_error err;
    nb_dataset train = {0}, test = {0};
    if (nb_make_synthetic("moons", 1000, 0.2f, 1, &train, &err) != 0 ||
        nb_make_synthetic("moons", 300, 0.2f, 2, &test, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;

    /* The model as PyTorch's nn.Sequential would list it; an MLP can also be given as widths
     * and one activation (nb_mlp, nb_model_spec_mlp). */
    nb_model_spec spec;
    nb_model model;
    if (nb_model_spec_parse(&spec, "linear(16),tanh,linear(16),tanh,linear", nb_shape_vector(2),
                            2, &err) != 0 ||
        nb_model_build(&model, &spec, 32, 0, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;

    nb_train_config cfg = {
        .optim = {.kind = NB_ADAM, .beta = 0.9f, .beta2 = 0.999f, .eps = 1e-8f},
        .schedule = {.kind = NB_DECAY_NONE, .lr = 0.01f},
        .batch_size = 32, .epochs = 30, .shuffle = 1, .seed = 0,
    };
    nb_train_result result;
    if (nb_train(&model, &train, NULL, NULL, &cfg, &result, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;

    nb_eval_result eval;
    if (nb_evaluate(&model, &test, &eval, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    printf("%lld steps, test accuracy %.3f\n", (long long)result.steps, eval.accuracy);
    nb_model_free(&model);
    nb_dataset_free(&train);
    nb_dataset_free(&test);
    return eval.accuracy > 0.9 ? 0 : 1;
}
