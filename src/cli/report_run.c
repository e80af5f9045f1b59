/* Reading a run directory: config.json, metrics.jsonl, summary.json, and when the run made
 * them, steps.jsonl and trace.jsonl. */
#include "report_run.h"

#include <stdlib.h>
#include <string.h>

#include "run_files.h"

static const char *const METRICS[M_COLS] = {
    "epoch", "lr", "train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "test_loss",
    "test_accuracy", "seconds"};
static const char *const STEPS[S_COLS] = {
    "step", "epoch", "lr", "dev_loss", "dev_accuracy", "test_loss", "test_accuracy"};
static const char *const TRACE[T_COLS] = {
    "step", "layer", "unit", "epoch", "unit_p15", "unit_p50", "unit_p85", "layer_p15",
    "layer_p50", "layer_p85"};

/* Reads an optional table: *present tells whether the file was there. */
static int optional_table(const char *dir, const char *name, const char *const *cols, int n_cols,
                          int n_required, int *present, table *t, nb_error *err)
{
    char *path = path_join(dir, name);
    if (!path)
        return nb_fail(err, "out of memory");
    *present = report_file_exists(path);
    int rc = *present ? report_read_table(path, cols, n_cols, n_required, t, err) : 0;
    free(path);
    return rc;
}

int run_load(run_data *r, const char *dir, nb_error *err)
{
    memset(r, 0, sizeof *r);
    r->dir = report_dir_name(dir);
    if (!r->dir)
        return nb_fail(err, "out of memory");

    char *config = path_join(r->dir, "config.json");
    char *summary = path_join(r->dir, "summary.json");
    r->model_path = path_join(r->dir, "model.safetensors");
    int rc = -1, present = 0;
    if (!config || !summary || !r->model_path)
        nb_fail(err, "out of memory");
    else if (report_read_json(config, 0, &r->config, err) == 0 &&
             report_read_json(summary, 1, &r->summary, err) == 0 &&
             optional_table(r->dir, "metrics.jsonl", METRICS, M_COLS, 1, &present, &r->metrics,
                            err) == 0 &&
             optional_table(r->dir, "steps.jsonl", STEPS, S_COLS, 1, &r->has_steps, &r->steps,
                            err) == 0 &&
             optional_table(r->dir, "trace.jsonl", TRACE, T_COLS, 3, &r->has_trace, &r->trace,
                            err) == 0) {
        if (!present)
            nb_fail(err, "%s/metrics.jsonl: missing (not a finished or running run?)", r->dir);
        else
            rc = 0;
    }
    if (rc == 0)
        r->has_model = report_file_exists(r->model_path);
    free(config);
    free(summary);
    if (rc != 0)
        run_free(r);
    return rc;
}

void run_free(run_data *r)
{
    free(r->dir);
    free(r->model_path);
    cJSON_Delete(r->config);
    cJSON_Delete(r->summary);
    table_free(&r->metrics);
    table_free(&r->steps);
    table_free(&r->trace);
    memset(r, 0, sizeof *r);
}
