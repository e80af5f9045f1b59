/* What the files of a run directory (`nabla train --out DIR`) may hold, as their readers check
 * it: beyond the format, the sense (epochs that count up one by one, accuracies in [0, 1],
 * percentiles in order, a summary that agrees with metrics.jsonl, ...). One place for each
 * kind of file, for every reader: nabla report reads them all, nabla tune a trial's
 * summary.json. Messages name the file and the line. */
#ifndef NABLA_CLI_RUN_CHECK_H
#define NABLA_CLI_RUN_CHECK_H

#include <cjson/cJSON.h>

#include "nabla.h"
#include "report_json.h"

/* Columns of metrics.jsonl, steps.jsonl and trace.jsonl, in these orders. */
enum { M_EPOCH, M_LR, M_TRAIN_LOSS, M_TRAIN_ACC, M_DEV_LOSS, M_DEV_ACC, M_TEST_LOSS, M_TEST_ACC,
       M_SECONDS, M_COLS };
enum { S_STEP, S_EPOCH, S_LR, S_DEV_LOSS, S_DEV_ACC, S_TEST_LOSS, S_TEST_ACC, S_COLS };
enum { T_STEP, T_LAYER, T_UNIT, T_EPOCH, T_UNIT_P15, T_UNIT_P50, T_UNIT_P85, T_LAYER_P15,
       T_LAYER_P50, T_LAYER_P85, T_COLS };

/* The three tables, read with report_read_table; the context is the run's config.json (may
 * be NULL), whose "epochs" bounds metrics.jsonl's. */
extern const table_spec METRICS_TABLE, STEPS_TABLE, TRACE_TABLE;

/* config.json, whose text (may be NULL) gives the lines of messages. */
int run_check_config(const cJSON *config, const char *text, const char *path, nb_error *err);

/* summary.json; against config.json and metrics.jsonl too when they are given (not NULL):
 * the sample counts are config's, the epochs metrics.jsonl's last. */
int run_check_summary(const cJSON *summary, const char *text, const char *path,
                      const cJSON *config, const table *metrics, nb_error *err);

#endif /* NABLA_CLI_RUN_CHECK_H */
