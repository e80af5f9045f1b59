/* Evaluation: a model's metrics on a data set, in inference mode (nb_evaluate), and the
 * pieces nb_train's steps share with it: a batch into the graph, what it got right. */
#include "nn/evaluate.h"

#include <stdlib.h>
#include <string.h>

#include "core/graph_internal.h"

int predicted_class(const float *logits, int classes)
{
    int best = 0;
    for (int c = 1; c < classes; c++)
        if (logits[c] > logits[best])
            best = c;
    return best;
}

int count_correct(const nb_model *m, int batch)
{
    const float *z = nb_node_value(m->logits).data;
    int k = m->spec.classes, correct = 0;
    if (m->spec.task == NB_TASK_CLASSIFICATION) {
        const int32_t *y = nb_node_labels(m->y);
        for (int r = 0; r < batch; r++)
            correct += predicted_class(z + (size_t)r * k, k) == y[r];
    } else if (m->spec.task == NB_TASK_MULTILABEL) {
        const float *t = nb_node_value(m->y).data;
        for (size_t i = 0; i < (size_t)batch * k; i++)
            correct += (z[i] > 0.0f) == (t[i] > 0.5f);
    }
    return correct;
}

void model_set_targets(nb_model *m, const nb_dataset *d, const int32_t *index, int n)
{
    size_t k = (size_t)m->spec.classes;
    if (m->spec.task == NB_TASK_CLASSIFICATION) {
        int32_t *labels = nb_node_labels(m->y);
        for (size_t r = 0; r < (size_t)n; r++)
            /* Without labels (predict), class 0: valid for the loss, which goes unused. */
            labels[r] = d && d->labels ? d->labels[index ? (size_t)index[r] : r] : 0;
        return;
    }
    float *t = nb_node_value(m->y).data;
    if (!d || !d->target) {
        memset(t, 0, (size_t)n * k * sizeof *t);
        return;
    }
    for (size_t r = 0; r < (size_t)n; r++) {
        const float *src = d->target + (index ? (size_t)index[r] : r) * k;
        for (size_t j = 0; j < k; j++)
            t[r * k + j] = m->target_std ? (src[j] - m->target_mean[j]) / m->target_std[j]
                                         : src[j];
    }
}

void model_set_batch(nb_model *m, const nb_dataset *d, const int32_t *index, int n)
{
    nb_dataset_batch(d, index, n, nb_node_value(m->x).data, NULL);
    model_set_targets(m, d, index, n);
}

int check_compatible(const nb_model *m, const nb_dataset *d, const char *what, nb_error *err)
{
    if (d->features != nb_model_features(&m->spec))
        return nb_fail(err, "the %s set has %d features but the model takes %d", what,
                       d->features, nb_model_features(&m->spec));
    if (d->task != m->spec.task)
        return nb_fail(err, "the %s set is a %s set but the model is a %s model", what,
                       nb_task_name(d->task), nb_task_name(m->spec.task));
    if (m->spec.task != NB_TASK_CLASSIFICATION) {
        if (!d->target || d->targets != m->spec.classes)
            return nb_fail(err, "the %s set has %d target columns but the model predicts %d",
                           what, d->target ? d->targets : 0, m->spec.classes);
        return 0;
    }
    if (!d->labels)
        return nb_fail(err, "the %s set has no labels", what);
    for (int i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= m->spec.classes)
            return nb_fail(err, "the %s set has label %d at sample %d; the model has %d classes",
                           what, d->labels[i], i + 1, m->spec.classes);
    return 0;
}

/* What to take from each batch's forward pass, rows [start, start + batch) of d. */
typedef void (*take_batch)(const nb_model *m, const nb_dataset *d, int start, int batch,
                           void *out);

/* Samples [lo, hi) of d forwarded in inference mode, in batches of the graph's largest, each
 * batch handed to take; the model is left in training mode, as it was. */
static int forward_rows(nb_model *m, const nb_dataset *d, int lo, int hi, take_batch take,
                        void *out, nb_error *err)
{
    if (hi <= lo)
        return 0;
    int max_batch = nb_graph_max_batch(m->graph);
    int32_t *index = malloc((size_t)max_batch * sizeof *index);
    if (!index)
        return nb_fail(err, "out of memory");
    nb_graph_set_training(m->graph, 0);
    for (int start = lo; start < hi; start += max_batch) {
        int batch = hi - start < max_batch ? hi - start : max_batch;
        for (int i = 0; i < batch; i++)
            index[i] = start + i;
        model_set_batch(m, d, index, batch);
        nb_graph_forward(m->graph, batch);
        take(m, d, start, batch, out);
    }
    nb_graph_set_training(m->graph, 1);
    free(index);
    return 0;
}

static void take_sums(const nb_model *m, const nb_dataset *d, int start, int batch, void *out)
{
    metric_sums_add(m, d, start, batch, out);
}

int evaluate_rows(nb_model *m, const nb_dataset *d, int lo, int hi, double *sums,
                  nb_error *err)
{
    return forward_rows(m, d, lo, hi, take_sums, sums, err);
}

/* Each row's (true class, predicted class) counted. */
static void take_confusion(const nb_model *m, const nb_dataset *d, int start, int batch,
                           void *out)
{
    int64_t *counts = out;
    int k = m->spec.classes;
    const float *z = nb_node_value(m->logits).data;
    for (int r = 0; r < batch; r++)
        counts[(size_t)d->labels[start + r] * k + predicted_class(z + (size_t)r * k, k)]++;
}

int nb_evaluate_confusion(nb_model *m, const nb_dataset *d, int64_t *counts, nb_error *err)
{
    if (m->spec.task != NB_TASK_CLASSIFICATION)
        return nb_fail(err, "a confusion matrix needs a classifier, not a %s model",
                       nb_task_name(m->spec.task));
    int k = m->spec.classes;
    memset(counts, 0, (size_t)k * (size_t)k * sizeof *counts);
    if (!d || d->n == 0)
        return 0;
    if (check_compatible(m, d, "evaluation", err) != 0)
        return -1;
    return forward_rows(m, d, 0, d->n, take_confusion, counts, err);
}

int nb_evaluate(nb_model *m, const nb_dataset *d, nb_eval_result *out, nb_error *err)
{
    memset(out, 0, sizeof *out);
    if (!d || d->n == 0)
        return 0;
    if (check_compatible(m, d, "evaluation", err) != 0)
        return -1;
    double *sums = calloc(metric_sums_count(m), sizeof *sums);
    if (!sums)
        return nb_fail(err, "out of memory");
    int rc = evaluate_rows(m, d, 0, d->n, sums, err);
    if (rc == 0)
        metric_sums_finish(m, sums, d->n, out);
    free(sums);
    return rc;
}
