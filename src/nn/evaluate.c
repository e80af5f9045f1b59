/* Evaluation: a model's loss and accuracy on a data set, in inference mode (nb_evaluate), and
 * the pieces nb_train's steps share with it. */
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

/* Rows of the batch whose largest logit is the label. */
int count_correct(const nb_model *m, int batch)
{
    const float *z = nb_node_value(m->logits).data;
    const int32_t *y = nb_node_labels(m->y);
    int classes = m->spec.classes, correct = 0;
    for (int r = 0; r < batch; r++)
        correct += predicted_class(z + (size_t)r * classes, classes) == y[r];
    return correct;
}

int check_compatible(const nb_model *m, const nb_dataset *d, const char *what, nb_error *err)
{
    if (d->features != nb_model_features(&m->spec))
        return nb_fail(err, "the %s set has %d features but the model takes %d", what,
                       d->features, nb_model_features(&m->spec));
    for (int i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= m->spec.classes)
            return nb_fail(err, "the %s set has label %d at sample %d; the model has %d classes",
                           what, d->labels[i], i + 1, m->spec.classes);
    return 0;
}

/* Loss sum (each batch's mean loss times its rows) and correct predictions over samples
 * [lo, hi) of d, in inference mode, in batches of the graph's largest. */
int evaluate_rows(nb_model *m, const nb_dataset *d, int lo, int hi, double *loss_sum,
                  long *correct, nb_error *err)
{
    *loss_sum = 0.0;
    *correct = 0;
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
        nb_dataset_batch(d, index, batch, nb_node_value(m->x).data, nb_node_labels(m->y));
        nb_graph_forward(m->graph, batch);
        *loss_sum += (double)nb_node_scalar(m->loss) * batch;
        *correct += count_correct(m, batch);
    }
    nb_graph_set_training(m->graph, 1);
    free(index);
    return 0;
}

int nb_evaluate(nb_model *m, const nb_dataset *d, nb_eval_result *out, nb_error *err)
{
    memset(out, 0, sizeof *out);
    if (!d || d->n == 0)
        return 0;
    if (check_compatible(m, d, "evaluation", err) != 0)
        return -1;
    double loss;
    long correct;
    if (evaluate_rows(m, d, 0, d->n, &loss, &correct, err) != 0)
        return -1;
    out->n = d->n;
    out->loss = loss / d->n;
    out->accuracy = (double)correct / d->n;
    return 0;
}
