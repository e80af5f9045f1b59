/* A task's metrics as words on a line (metrics_text.h). */
#include "cli/common/metrics_text.h"

#include <stdio.h>
#include <string.h>

void metrics_text(const nb_eval_result *r, int short_accuracy, char *buf, size_t cap)
{
    size_t used = 0;
    if (cap > 0)
        buf[0] = '\0';
    for (int i = 0; i < NB_METRICS; i++) {
        const char *name = nb_metric_name((nb_metric)i);
        if (i == NB_METRIC_LOSS || !nb_metric_applies((nb_metric)i, r->task) || used >= cap)
            continue;
        if (short_accuracy && strcmp(name, "accuracy") == 0)
            name = "acc";
        /* Errors in the data's units keep 4 significant digits whatever their scale. */
        int n = strcmp(name, "mse") == 0 || strcmp(name, "rmse") == 0 || strcmp(name, "mae") == 0
                    ? snprintf(buf + used, cap - used, "%s%s %.4g", used ? " " : "", name,
                               nb_metric_value((nb_metric)i, r))
                    : snprintf(buf + used, cap - used, "%s%s %.4f", used ? " " : "", name,
                               nb_metric_value((nb_metric)i, r));
        used = n > 0 && (size_t)n < cap - used ? used + (size_t)n : cap;
    }
}

const char *class_name(const nb_model *m, int c, char *buf, size_t cap)
{
    if (m->table && c >= 0 && c < m->table->n_classes && m->table->class_names[c])
        return m->table->class_names[c];
    snprintf(buf, cap, "%d", c);
    return buf;
}
