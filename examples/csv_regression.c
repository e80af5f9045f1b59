/* A regression model on a CSV file from C, as `nabla train --task regression` does it: read the
 * file (a header, a categorical column, the target named), standardize the features and the
 * target with the training rows' statistics, train, score, and predict new raw rows.
 * Exits 1 unless the model explains most of the variance (R^2 > 0.9). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

/* price = 3 size + 20 rooms + 40 if the town is "north", plus noise; a few hundred rows. */
static int write_csv(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    fprintf(f, "size,town,rooms,price\n");
    for (int i = 0; i < 400; i++) {
        double size = 40 + 160 * nb_rng_uniform(&rng), rooms = 1 + (i % 5);
        int north = nb_rng_uniform(&rng) < 0.5;
        double price = 3 * size + 20 * rooms + (north ? 40 : 0) + 5 * nb_rng_normal(&rng);
        fprintf(f, "%.2f,%s,%.0f,%.2f\n", size, north ? "north" : "south", rooms, price);
    }
    return fclose(f);
}

static int fail(const char *what, const nb_error *err)
{
    fprintf(stderr, "%s: %s\n", what, err->msg);
    return 1;
}

int main(void)
{
    char path[] = "/tmp/nabla_csv_regression_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write_csv(path) != 0)
        return perror("csv"), 1;

    /* The target by name; the town column becomes one-hot categories. */
    nb_csv_options csv = {.task = NB_TASK_REGRESSION, .target = "price"};
    nb_dataset train = {0}, dev = {0};
    nb_error err;
    int rc = nb_read_csv(path, &csv, &train, &err);
    remove(path);
    if (rc != 0)
        return fail("read", &err);
    if (nb_dataset_split(&train, 0.25f, 1, &dev, &err) != 0)
        return fail("split", &err);

    nb_model_spec spec;
    if (nb_model_spec_parse(&spec, "linear(32),relu,linear", nb_shape_vector(train.features),
                            train.targets, &err) != 0)
        return fail("model", &err);
    spec.task = NB_TASK_REGRESSION;
    spec.loss = NB_LOSS_MSE;
    nb_model m;
    if (nb_model_build(&m, &spec, 32, 1, &err) != 0)
        return fail("build", &err);

    /* Features standardized in place (the model keeps the statistics, for raw rows later);
     * targets standardized by the model itself. */
    int f = train.features, k = train.targets;
    m.norm_mean = malloc(f * sizeof(float));
    m.norm_std = malloc(f * sizeof(float));
    m.target_mean = malloc(k * sizeof(float));
    m.target_std = malloc(k * sizeof(float));
    nb_dataset_stats(&train, m.norm_mean, m.norm_std);
    nb_dataset_target_stats(&train, m.target_mean, m.target_std);
    nb_dataset_normalize(&train, m.norm_mean, m.norm_std);
    nb_dataset_normalize(&dev, m.norm_mean, m.norm_std);

    nb_train_config cfg = {.optim = {.kind = NB_ADAM, .beta = 0.9f, .beta2 = 0.999f,
                                     .eps = 1e-8f},
                           .schedule = {.lr = 0.01f},
                           .batch_size = 32, .epochs = 60, .shuffle = 1, .seed = 3};
    nb_train_result res;
    nb_eval_result ev;
    if (nb_train(&m, &train, NULL, NULL, &cfg, &res, &err) != 0 ||
        nb_evaluate(&m, &dev, &ev, &err) != 0)
        return fail("train", &err);
    printf("dev: rmse %.2f mae %.2f r2 %.4f (%d rows)\n", ev.rmse, ev.mae, ev.r2, ev.n);

    /* New rows as the file has them: size, town one-hot in the table's order (north, south),
     * rooms; the model applies its standardization. */
    const nb_table *t = train.table;
    printf("one-hot order of 'town':");
    for (int c = 0; c < t->n_columns; c++)
        for (int j = 0; t->columns[c].kind == NB_COLUMN_CATEGORY && j < t->columns[c].n_categories;
             j++)
            printf(" %s", t->columns[c].categories[j]);
    printf("\n");
    float rows[2][4] = {{100, 1, 0, 3}, {150, 0, 1, 2}};
    float price[2];
    if (nb_model_predict_values(&m, &rows[0][0], 2, price, &err) != 0)
        return fail("predict", &err);
    printf("100 m2, north, 3 rooms: %.1f (about %.1f)\n", price[0], 3 * 100.0 + 60 + 40);
    printf("150 m2, south, 2 rooms: %.1f (about %.1f)\n", price[1], 3 * 150.0 + 40);

    int ok = ev.r2 > 0.9 && fabs(price[0] - 400) < 40 && fabs(price[1] - 490) < 40;
    nb_model_free(&m);
    nb_dataset_free(&train);
    nb_dataset_free(&dev);
    return ok ? 0 : 1;
}
