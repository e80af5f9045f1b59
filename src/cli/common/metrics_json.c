/* A task's metrics as JSON (metrics_json.h). */
#include "cli/common/metrics_json.h"

#include <stdio.h>

void json_add_split(cJSON *obj, const char *name, const nb_eval_result *r)
{
    char key[64];
    /* The loss and the accuracy always (null when the split is empty, or the task has no
     * accuracy), then the task's own metrics. */
    for (int i = 0; i < NB_METRICS; i++) {
        const char *metric = nb_metric_name((nb_metric)i);
        int always = i == NB_METRIC_LOSS || i == NB_METRIC_ACCURACY;
        int has = nb_metric_applies((nb_metric)i, r->task);
        if (!always && !has)
            continue;
        snprintf(key, sizeof key, "%s%s%s", name ? name : "", name ? "_" : "", metric);
        cJSON_AddItemToObject(obj, key, r->n > 0 && has
                                            ? cJSON_CreateNumber(nb_metric_value((nb_metric)i, r))
                                            : cJSON_CreateNull());
    }
}
