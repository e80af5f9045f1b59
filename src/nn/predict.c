/* Per-sample predictions, in inference mode, batch by batch, with the same forward pass as
 * nb_evaluate: the class of each sample (nb_model_predict), and the model's answer in the
 * data's terms (nb_model_predict_values, nb_model_predict_dataset): class probabilities
 * (softmax), label probabilities (sigmoid), or values in the targets' units. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/evaluate.h"
#include "nabla.h"

/* Where a prediction's rows come from: n float rows x, or the n samples of a data set; and
 * whether to standardize them with the model's input normalization first. */
typedef struct rows_source {
    const float *x;
    const nb_dataset *d;
    int n;
    int normalize;
} rows_source;

/* What to make of each batch's outputs z [batch, outputs], rows [start, start + batch). */
typedef void (*take_outputs)(const nb_model *m, const float *z, int start, int batch,
                             void *out);

/* Forwards every row of src, a batch at a time, handing each batch's outputs to take. */
static int predict_rows(nb_model *m, rows_source src, take_outputs take, void *out,
                        nb_error *err)
{
    if (!m || !m->graph)
        return nb_fail(err, "predict: no model");
    if (src.n < 0)
        return nb_fail(err, "predict: %d samples", src.n);
    if (src.n == 0)
        return 0;
    if ((!src.x && !src.d) || !out)
        return nb_fail(err, "predict: no data");
    size_t f = (size_t)nb_model_features(&m->spec);
    if (src.d && src.d->features != (int)f)
        return nb_fail(err, "predict: the data has %d features but the model takes %zu",
                       src.d->features, f);
    int max_batch = nb_graph_max_batch(m->graph);
    int32_t *index = malloc((size_t)max_batch * sizeof *index);
    if (!index)
        return nb_fail(err, "out of memory");
    float *in = nb_node_value(m->x).data;
    nb_graph_set_training(m->graph, 0);
    for (int start = 0; start < src.n; start += max_batch) {
        int batch = src.n - start < max_batch ? src.n - start : max_batch;
        for (int i = 0; i < batch; i++)
            index[i] = start + i;
        if (src.d)
            nb_dataset_batch(src.d, index, batch, in, NULL);
        else
            memcpy(in, src.x + (size_t)start * f, (size_t)batch * f * sizeof *in);
        if (src.normalize && m->norm_mean)
            for (size_t r = 0; r < (size_t)batch; r++)
                for (size_t j = 0; j < f; j++)
                    in[r * f + j] = (in[r * f + j] - m->norm_mean[j]) / m->norm_std[j];
        model_set_targets(m, NULL, NULL, batch);   /* the loss is computed but not used */
        nb_graph_forward(m->graph, batch);
        take(m, nb_node_value(m->logits).data, start, batch, out);
    }
    /* Back to training mode, as nb_evaluate leaves the model. */
    nb_graph_set_training(m->graph, 1);
    free(index);
    return 0;
}

static void take_classes(const nb_model *m, const float *z, int start, int batch, void *out)
{
    int k = m->spec.classes;
    for (int r = 0; r < batch; r++)
        ((int32_t *)out)[start + r] = predicted_class(z + (size_t)r * k, k);
}

int nb_model_predict(nb_model *m, const float *x, int n, int32_t *classes, nb_error *err)
{
    if (m && m->graph && m->spec.task != NB_TASK_CLASSIFICATION)
        return nb_fail(err, "predict: a %s model has no classes (nb_model_predict_values)",
                       nb_task_name(m->spec.task));
    return predict_rows(m, (rows_source){x, NULL, n, 0}, take_classes, classes, err);
}

static float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

static void take_values(const nb_model *m, const float *z, int start, int batch, void *out)
{
    size_t k = (size_t)m->spec.classes;
    float *o = (float *)out + (size_t)start * k;
    for (size_t r = 0; r < (size_t)batch; r++) {
        const float *zr = z + r * k;
        float *orow = o + r * k;
        if (m->spec.task == NB_TASK_CLASSIFICATION) {
            /* softmax, with the row's maximum subtracted so exp never overflows */
            float max = zr[0], sum = 0.0f;
            for (size_t j = 1; j < k; j++)
                max = zr[j] > max ? zr[j] : max;
            for (size_t j = 0; j < k; j++)
                sum += orow[j] = expf(zr[j] - max);
            for (size_t j = 0; j < k; j++)
                orow[j] /= sum;
        } else if (m->spec.task == NB_TASK_MULTILABEL) {
            for (size_t j = 0; j < k; j++)
                orow[j] = sigmoid(zr[j]);
        } else {
            for (size_t j = 0; j < k; j++)
                orow[j] = m->target_std ? zr[j] * m->target_std[j] + m->target_mean[j] : zr[j];
        }
    }
}

int nb_model_predict_values(nb_model *m, const float *x, int n, float *out, nb_error *err)
{
    return predict_rows(m, (rows_source){x, NULL, n, 1}, take_values, out, err);
}

int nb_model_predict_dataset(nb_model *m, const nb_dataset *d, float *out, nb_error *err)
{
    if (!d)
        return nb_fail(err, "predict: no data");
    return predict_rows(m, (rows_source){NULL, d, d->n, 1}, take_values, out, err);
}
