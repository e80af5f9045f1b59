/* What the files of a run directory (`nabla train --out DIR`) may hold, as their readers check
 * it: beyond the format, the sense (epochs that count up one by one, accuracies in [0, 1],
 * percentiles in order, a summary that agrees with metrics.jsonl, a model that is the run's,
 * ...). One table for each kind of file (its members or columns, which are required, what
 * values each may take) and the rules across lines and files, for every reader: nabla report
 * reads them all, nabla tune a trial's summary.json. Messages name the file and the line. */
#ifndef NABLA_CLI_RUN_CHECK_H
#define NABLA_CLI_RUN_CHECK_H

#include <cjson/cJSON.h>

#include "io/json_files.h"
#include "nabla.h"

/* Columns of metrics.jsonl, steps.jsonl and trace.jsonl, in these orders. */
enum { M_EPOCH, M_LR, M_TRAIN_LOSS, M_TRAIN_ACC, M_DEV_LOSS, M_DEV_ACC, M_TEST_LOSS, M_TEST_ACC,
       M_SECONDS,
       /* The metrics of the other tasks: regression, multilabel (null or absent otherwise). */
       M_DEV_RMSE, M_TEST_RMSE, M_DEV_R2, M_TEST_R2, M_DEV_MACRO_F1, M_TEST_MACRO_F1, M_COLS };
enum { S_STEP, S_EPOCH, S_LR, S_DEV_LOSS, S_DEV_ACC, S_TEST_LOSS, S_TEST_ACC, S_COLS };
enum { T_STEP, T_LAYER, T_UNIT, T_EPOCH, T_UNIT_P15, T_UNIT_P50, T_UNIT_P85, T_LAYER_P15,
       T_LAYER_P50, T_LAYER_P85, T_COLS };

/* What the tables' lines are checked against (report_read_table's context). */
typedef struct run_context {
    const cJSON *config;    /* config.json, checked (NULL: not known) */
    const cJSON *summary;   /* summary.json, or NULL while the run has not finished */
} run_context;

/* The three tables, read with report_read_table and a run_context: config.json's "epochs"
 * bounds their epochs; metrics.jsonl has a split's numbers exactly when config.json gives it
 * samples (a loss may be null only in a run that diverged or has not finished: weights grown
 * huge overflow it before the training loss turns NaN). */
extern const table_spec METRICS_TABLE, STEPS_TABLE, TRACE_TABLE;

/* config.json, whose text (may be NULL) gives the lines of messages: its members, and how they
 * agree (a dev split exactly when a fraction is asked for; a synthetic set's features, classes
 * and samples; the parameters its layers make; the traced layer and unit). */
int run_check_config(const cJSON *config, const char *text, const char *path, nb_error *err);
/* The model config.json describes: "model" and "input_shape", or the widths form's "layers",
 * "activation", "leaky_slope" and "batchnorm" of older runs (both must agree when both are
 * there). */
int run_check_config_spec(const cJSON *config, const char *text, const char *path,
                          nb_model_spec *spec, nb_error *err);

/* summary.json; against config.json and metrics.jsonl too when they are given (not NULL): the
 * sample counts are config's, the epochs metrics.jsonl's last, and so are the training, dev
 * and test figures (the summary evaluates the weights the last epoch ended with; a run that
 * diverged at an epoch's first step keeps those before it, and only its training figures are
 * the last epoch's). */
int run_check_summary(const cJSON *summary, const char *text, const char *path,
                      const cJSON *config, const table *metrics, nb_error *err);

/* A model (loaded from path) against the run's config.json: its inputs, classes, hidden
 * layers, activation, batch norm and input standardization must be the run's, or it is
 * another run's model. */
int run_check_model(const nb_model *m, const char *path, const cJSON *config, nb_error *err);

#endif /* NABLA_CLI_RUN_CHECK_H */
