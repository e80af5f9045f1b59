/* Per-sample predictions: the class each sample gets, in inference mode, batch by batch, as
 * nb_evaluate scores them (the same forward pass, the same argmax, ties to the lower class). */
#include <stdlib.h>
#include <string.h>

#include "nn/evaluate.h"
#include "nabla.h"

int nb_model_predict(nb_model *m, const float *x, int n, int32_t *classes, nb_error *err)
{
    if (!m || !m->graph)
        return nb_fail(err, "predict: no model");
    if (n < 0)
        return nb_fail(err, "predict: %d samples", n);
    if (n == 0)
        return 0;
    if (!x || !classes)
        return nb_fail(err, "predict: no data");
    int max_batch = nb_graph_max_batch(m->graph);
    int inputs = nb_model_features(&m->spec), n_classes = m->spec.classes;
    float *in = nb_node_value(m->x).data;
    int32_t *labels = nb_node_labels(m->y);
    nb_graph_set_training(m->graph, 0);
    for (int start = 0; start < n; start += max_batch) {
        int batch = n - start < max_batch ? n - start : max_batch;
        memcpy(in, x + (size_t)start * inputs, (size_t)batch * inputs * sizeof *in);
        /* The graph ends in the loss, which reads labels: give it valid ones (class 0). The
         * loss is not used; the logits do not depend on the labels. */
        memset(labels, 0, (size_t)batch * sizeof *labels);
        nb_graph_forward(m->graph, batch);
        const float *z = nb_node_value(m->logits).data;
        for (int r = 0; r < batch; r++)
            classes[start + r] = predicted_class(z + (size_t)r * n_classes, n_classes);
    }
    /* Back to training mode, as nb_evaluate leaves the model. */
    nb_graph_set_training(m->graph, 1);
    return 0;
}
