/* A task's metrics as JSON, for metrics.jsonl, summary.json, trace.jsonl and eval --json. */
#ifndef NABLA_CLI_METRICS_JSON_H
#define NABLA_CLI_METRICS_JSON_H

#include <cjson/cJSON.h>

#include "nabla.h"

/* A split's metrics as JSON: "<name>_loss", "<name>_accuracy" and the task's others ("loss",
 * ... with name NULL), null when the split is empty or the task has no such metric (accuracy
 * of regression). */
void json_add_split(cJSON *obj, const char *name, const nb_eval_result *r);

#endif /* NABLA_CLI_METRICS_JSON_H */
