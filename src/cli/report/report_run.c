/* Reading a run directory: config.json, metrics.jsonl, summary.json, and when the run made
 * them, steps.jsonl and trace.jsonl. */
#include "cli/report/report_run.h"

#include <stdlib.h>
#include <string.h>

#include "cli/common/run_check.h"
#include "io/paths.h"

/* Reads an optional table: *present tells whether the file was there. While the run has no
 * summary.json, its last line may be one being written (report_read_jsonl). */
static int optional_table(const run_data *r, const char *name, const table_spec *spec,
                          const run_context *ctx, int *present, table *t, nb_error *err)
{
    char *path = path_join(r->dir, name);
    if (!path)
        return nb_fail(err, "out of memory");
    *present = report_file_exists(path);
    int rc = *present ? report_read_table(path, spec, ctx, r->summary ? "summary.json" : NULL, t,
                                          err)
                      : 0;
    free(path);
    return rc;
}

/* config.json (required) and its sense. */
static int read_config(run_data *r, nb_error *err)
{
    char *path = path_join(r->dir, "config.json"), *text = NULL;
    int rc = !path ? nb_fail(err, "out of memory")
             : report_read_json_text(path, 0, &r->config, &text, err) != 0
                 ? -1
                 : run_check_config(r->config, text, path, err);
    free(text);
    free(path);
    return rc;
}

/* summary.json (absent until the run finishes), read before the tables (it says whether their
 * last lines may be half written) and checked after them, against config.json and
 * metrics.jsonl. */
static int read_summary(run_data *r, char **text, char **path, nb_error *err)
{
    *path = path_join(r->dir, "summary.json");
    if (!*path)
        return nb_fail(err, "out of memory");
    return report_read_json_text(*path, 1, &r->summary, text, err);
}

int run_load(run_data *r, const char *dir, nb_error *err)
{
    memset(r, 0, sizeof *r);
    r->dir = report_dir_name(dir);
    if (!r->dir)
        return nb_fail(err, "out of memory");

    r->model_path = path_join(r->dir, "model.safetensors");
    char *summary_text = NULL, *summary_path = NULL;
    int rc = -1, present = 0;
    run_context ctx = {NULL, NULL};
    if (!r->model_path) {
        nb_fail(err, "out of memory");
    } else if (read_config(r, err) == 0 && read_summary(r, &summary_text, &summary_path, err) == 0) {
        ctx = (run_context){r->config, r->summary};
        if (optional_table(r, "metrics.jsonl", &METRICS_TABLE, &ctx, &present, &r->metrics,
                           err) == 0 &&
            optional_table(r, "steps.jsonl", &STEPS_TABLE, &ctx, &r->has_steps, &r->steps,
                           err) == 0 &&
            optional_table(r, "trace.jsonl", &TRACE_TABLE, &ctx, &r->has_trace, &r->trace,
                           err) == 0) {
            if (!present)
                nb_fail(err, "%s/metrics.jsonl: missing (not a finished or running run?)", r->dir);
            else if (!r->summary || run_check_summary(r->summary, summary_text, summary_path,
                                                      r->config, &r->metrics, err) == 0)
                rc = 0;
        }
    }
    free(summary_text);
    free(summary_path);
    if (rc == 0)
        r->has_model = report_file_exists(r->model_path);
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

int run_load_model(const run_data *r, int max_batch, nb_model *m, nb_error *err)
{
    if (nb_model_load(m, r->model_path, max_batch, err) != 0)
        return -1;
    if (run_check_model(m, r->model_path, r->config, err) != 0) {
        nb_model_free(m);
        return -1;
    }
    return 0;
}
