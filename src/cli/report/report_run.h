/* nabla report: what a run directory (`nabla train --out DIR`) holds, read back. */
#ifndef NABLA_CLI_REPORT_RUN_H
#define NABLA_CLI_REPORT_RUN_H

#include <cjson/cJSON.h>

#include "io/json_files.h"
#include "cli/common/run_check.h"   /* the columns of the tables */
#include "nabla.h"

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

/* Reads DIR; a missing or damaged required file, or a damaged optional one, or one that makes
 * no sense (run_check.h), is an error naming the file (and line). */
int run_load(run_data *r, const char *dir, nb_error *err);
void run_free(run_data *r);
/* The run's model.safetensors (r->has_model), checked to be the run's own, not one copied in
 * from another run (run_check_model); inference batches of up to max_batch. */
int run_load_model(const run_data *r, int max_batch, nb_model *m, nb_error *err);

#endif /* NABLA_CLI_REPORT_RUN_H */
