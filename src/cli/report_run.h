/* nabla report: what a run directory (`nabla train --out DIR`) holds, read back. */
#ifndef NABLA_CLI_REPORT_RUN_H
#define NABLA_CLI_REPORT_RUN_H

#include <cjson/cJSON.h>

#include "nabla.h"
#include "report_json.h"

/* Columns of metrics.jsonl, steps.jsonl and trace.jsonl, in these orders. */
enum { M_EPOCH, M_LR, M_TRAIN_LOSS, M_TRAIN_ACC, M_DEV_LOSS, M_DEV_ACC, M_TEST_LOSS, M_TEST_ACC,
       M_SECONDS, M_COLS };
enum { S_STEP, S_EPOCH, S_LR, S_DEV_LOSS, S_DEV_ACC, S_TEST_LOSS, S_TEST_ACC, S_COLS };
enum { T_STEP, T_LAYER, T_UNIT, T_EPOCH, T_UNIT_P15, T_UNIT_P50, T_UNIT_P85, T_LAYER_P15,
       T_LAYER_P50, T_LAYER_P85, T_COLS };

typedef struct run_data {
    char *dir;             /* as given, without trailing slashes */
    cJSON *config;         /* config.json (required) */
    cJSON *summary;        /* summary.json, or NULL: the run has not finished */
    table metrics;         /* metrics.jsonl (required; may have no lines yet) */
    int has_steps;         /* steps.jsonl (nabla train --eval-every) */
    table steps;
    int has_trace;         /* trace.jsonl (nabla train --trace-activations) */
    table trace;
    int has_model;         /* model.safetensors */
    char *model_path;
} run_data;

/* Reads DIR; a missing or damaged required file, or a damaged optional one, is an error
 * naming the file (and line). */
int run_load(run_data *r, const char *dir, nb_error *err);
void run_free(run_data *r);

#endif /* NABLA_CLI_REPORT_RUN_H */
