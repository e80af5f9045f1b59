/* A task's metrics on a data set, from sums that add up over batches and over the ranks of a
 * data-parallel job (each rank sums its shard; the shards' sums are added; one finish).
 *
 * The sums, in doubles (exact for counts up to 2^53):
 *   [0] the loss times the batch's rows          [1] correct classes or correct labels
 *   regression, per output j, from 2 + 4j:       squared error, absolute error, target sum,
 *                                                target sum of squares (in the data's units)
 *   multilabel, per label j, from 2 + 3j:        true positives, false positives, false negatives */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "nn/evaluate.h"

enum { SUM_LOSS, SUM_CORRECT, SUM_FIXED };
enum { REG_SSE, REG_SAE, REG_SUM, REG_SUM2, REG_PER_OUTPUT };
enum { ML_TP, ML_FP, ML_FN, ML_PER_LABEL };

size_t metric_sums_count(const nb_model *m)
{
    size_t k = (size_t)m->spec.classes;
    switch (m->spec.task) {
    case NB_TASK_REGRESSION:
        return SUM_FIXED + REG_PER_OUTPUT * k;
    case NB_TASK_MULTILABEL:
        return SUM_FIXED + ML_PER_LABEL * k;
    default:
        return SUM_FIXED;
    }
}

int scored_per_sample(const nb_model_spec *spec)
{
    switch (spec->task) {
    case NB_TASK_CLASSIFICATION:
        return 1;
    case NB_TASK_MULTILABEL:
        return spec->classes;
    default:
        return 0;   /* regression has no accuracy */
    }
}

/* A regression output in the data's units. */
static double output_value(const nb_model *m, float z, int j)
{
    return m->target_std ? (double)z * m->target_std[j] + m->target_mean[j] : (double)z;
}

void metric_sums_add(const nb_model *m, const nb_dataset *d, int start, int batch, double *sums)
{
    sums[SUM_LOSS] += (double)nb_node_scalar(m->loss) * batch;
    sums[SUM_CORRECT] += count_correct(m, batch);
    const float *z = nb_node_value(m->logits).data;
    int k = m->spec.classes;
    if (m->spec.task == NB_TASK_REGRESSION) {
        for (int r = 0; r < batch; r++)
            for (int j = 0; j < k; j++) {
                double t = d->target[(size_t)(start + r) * k + j];
                double e = output_value(m, z[(size_t)r * k + j], j) - t;
                double *s = sums + SUM_FIXED + REG_PER_OUTPUT * j;
                s[REG_SSE] += e * e;
                s[REG_SAE] += fabs(e);
                s[REG_SUM] += t;
                s[REG_SUM2] += t * t;
            }
    } else if (m->spec.task == NB_TASK_MULTILABEL) {
        for (int r = 0; r < batch; r++)
            for (int j = 0; j < k; j++) {
                int predicted = z[(size_t)r * k + j] > 0.0f;
                int actual = d->target[(size_t)(start + r) * k + j] > 0.5f;
                double *s = sums + SUM_FIXED + ML_PER_LABEL * j;
                s[ML_TP] += predicted && actual;
                s[ML_FP] += predicted && !actual;
                s[ML_FN] += !predicted && actual;
            }
    }
}

/* F1 = 2 tp / (2 tp + fp + fn); 0 when there is nothing to find and nothing was found, as
 * scikit-learn's f1_score with zero_division=0. */
static double f1(double tp, double fp, double fn)
{
    double d = 2.0 * tp + fp + fn;
    return d > 0.0 ? 2.0 * tp / d : 0.0;
}

void metric_sums_finish(const nb_model *m, const double *sums, int n, nb_eval_result *out)
{
    memset(out, 0, sizeof *out);
    out->task = m->spec.task;
    out->n = n;
    if (n <= 0)
        return;
    out->loss = sums[SUM_LOSS] / n;
    int per_sample = scored_per_sample(&m->spec), k = m->spec.classes;
    if (per_sample > 0)
        out->accuracy = sums[SUM_CORRECT] / ((double)n * per_sample);
    if (m->spec.task == NB_TASK_REGRESSION) {
        double sse = 0.0, sae = 0.0, r2 = 0.0;
        for (int j = 0; j < k; j++) {
            const double *s = sums + SUM_FIXED + REG_PER_OUTPUT * j;
            sse += s[REG_SSE];
            sae += s[REG_SAE];
            /* R^2 = 1 - SSE/SST; a constant target gives 1 when predicted exactly, else 0
             * (scikit-learn's r2_score with force_finite). */
            double sst = s[REG_SUM2] - s[REG_SUM] * s[REG_SUM] / n;
            r2 += sst > 0.0 ? 1.0 - s[REG_SSE] / sst : s[REG_SSE] == 0.0 ? 1.0 : 0.0;
        }
        out->mse = sse / ((double)n * k);
        out->rmse = sqrt(out->mse);
        out->mae = sae / ((double)n * k);
        out->r2 = r2 / k;
    } else if (m->spec.task == NB_TASK_MULTILABEL) {
        double tp = 0.0, fp = 0.0, fn = 0.0, macro = 0.0;
        for (int j = 0; j < k; j++) {
            const double *s = sums + SUM_FIXED + ML_PER_LABEL * j;
            tp += s[ML_TP];
            fp += s[ML_FP];
            fn += s[ML_FN];
            macro += f1(s[ML_TP], s[ML_FP], s[ML_FN]);
        }
        out->micro_f1 = f1(tp, fp, fn);
        out->macro_f1 = macro / k;
    }
}

nb_class_scores nb_class_scores_of(const int64_t *counts, int classes, int c)
{
    nb_class_scores s = {0};
    int64_t predicted = 0;
    for (int t = 0; t < classes; t++)
        predicted += counts[(size_t)t * classes + c];
    for (int p = 0; p < classes; p++)
        s.support += counts[(size_t)c * classes + p];
    double tp = (double)counts[(size_t)c * classes + c];
    s.precision = predicted > 0 ? tp / (double)predicted : 0.0;
    s.recall = s.support > 0 ? tp / (double)s.support : 0.0;
    s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall)
                                      : 0.0;
    return s;
}
