/* trace.jsonl and steps.jsonl: what a run records between its epochs (see train_trace.h). */
#include "cli/train/train_trace.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/common/metrics_json.h"
#include "cli/train/run_files.h"
#include "io/fileio.h"
#include "io/json_write.h"
#include "io/paths.h"

int64_t trace_default_every(int train_samples, int batch_size)
{
    int batch = batch_size <= 0 || batch_size > train_samples ? train_samples : batch_size;
    int64_t batches = batch > 0 ? ((int64_t)train_samples + batch - 1) / batch : 1;
    return batches / 20 > 1 ? batches / 20 : 1;
}

/* ---- percentiles ---- */

/* Moves the k-th smallest of v[0..n) to v[k], with no larger value before it and no smaller
 * one after it (Hoare's FIND, as Wirth writes it). Expected time linear in n. */
static void select_kth(float *v, size_t n, size_t k)
{
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
    while (lo < hi) {
        float pivot = v[kk];
        ptrdiff_t i = lo, j = hi;
        do {
            while (v[i] < pivot)
                i++;
            while (pivot < v[j])
                j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        } while (i <= j);
        if (j < kk)
            lo = i;
        if (kk < i)
            hi = j;
    }
}

/* numpy's _lerp: a + t (b - a), computed from the nearer end so that t = 1 gives b exactly. */
static double lerp(double a, double b, double t)
{
    return t >= 0.5 ? b - (b - a) * (1.0 - t) : a + (b - a) * t;
}

size_t percentiles(float *v, size_t n, const double *pct, int k, double *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i]))
            v[m++] = v[i];
    if (m == 0) {
        for (int i = 0; i < k; i++)
            out[i] = NAN;
        return 0;
    }
    /* The order statistics each percentile needs, smallest first; each selection then works
     * on what lies after the one before (all of which is at least as large). */
    size_t need[2 * 8];
    int n_need = 0;
    for (int i = 0; i < k && i < 8; i++) {
        double h = pct[i] / 100.0 * (double)(m - 1);
        size_t at = (size_t)floor(h);
        need[n_need++] = at;
        if (at + 1 < m)
            need[n_need++] = at + 1;
    }
    for (int i = 1; i < n_need; i++)   /* insertion sort of at most 16 */
        for (int j = i; j > 0 && need[j - 1] > need[j]; j--) {
            size_t t = need[j];
            need[j] = need[j - 1];
            need[j - 1] = t;
        }
    size_t base = 0;
    for (int i = 0; i < n_need; i++)
        if (need[i] >= base) {
            select_kth(v + base, m - base, need[i] - base);
            base = need[i] + 1;
        }
    for (int i = 0; i < k && i < 8; i++) {
        double h = pct[i] / 100.0 * (double)(m - 1);
        size_t at = (size_t)floor(h);
        double frac = h - (double)at;
        out[i] = at + 1 < m ? lerp(v[at], v[at + 1], frac) : (double)v[at];
    }
    return m;
}

/* ---- the files ---- */

/* A file is open when it has a path and a descriptor (a zeroed step_file has neither). */
static int is_open(const step_file *f) { return f->path && f->fd >= 0; }

/* One JSON object as one line, with one write (O_APPEND puts it at the end in one piece).
 * Returns what append_run_line returns; a file a stop cut short is closed (no line after the
 * gap). */
static int append_line(step_file *f, cJSON *j, nb_error *err)
{
    size_t n;
    char *line = json_line(j, &n, err);
    if (!line)
        return -1;
    int rc = append_run_line(f->fd, f->path, line, n, err);
    if (rc == APPEND_CUT) {
        close(f->fd);
        f->fd = -1;
    }
    free(line);
    return rc;
}

/* Opens path again for a resumed run, with the lines that have a "step" of at most max_step (a
 * line cut short or not a record is dropped); a missing file starts empty. A device or FIFO
 * has nothing to read back: the lines to come are written through. */
static int keep_steps_until(const char *path, int64_t max_step, nb_error *err)
{
    struct stat st;
    int missing = stat(path, &st) != 0;
    if (missing && errno != ENOENT)
        return nb_fail(err, "%s: %s", path, strerror(errno));
    if (missing || !S_ISREG(st.st_mode))
        return start_appending(path, "", 0, err);
    unsigned char *data;
    size_t n;
    if (nb_read_file(path, &data, &n, err) != 0)
        return -1;
    char *text = (char *)data;
    size_t kept = 0;
    for (size_t at = 0; at < n;) {
        char *end = memchr(text + at, '\n', n - at);
        if (!end)
            break;   /* no newline: the write of this line never finished */
        *end = '\0';
        cJSON *j = cJSON_Parse(text + at);
        cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step");
        int keep = cJSON_IsNumber(step) && step->valuedouble >= 1 &&
                   step->valuedouble <= (double)max_step;
        cJSON_Delete(j);
        size_t len = (size_t)(end - (text + at));
        if (keep) {
            memmove(text + kept, text + at, len);
            text[kept + len] = '\n';
            kept += len + 1;
        }
        at += len + 1;
    }
    int fd = start_appending(path, text, kept, err);
    free(data);
    return fd;
}

/* Opens (or, off, removes for a new run) one of the files. */
static int start_file(step_file *f, const char *dir, const char *name, int on, int64_t steps_done,
                      int resuming, nb_error *err)
{
    f->fd = -1;
    char *path = path_join(dir, name);
    if (!path)
        return nb_fail(err, "out of memory");
    if (!on) {
        /* A new run in a directory does not leave an earlier run's file to be taken for its
         * own; a resumed run never had one to remove. */
        int rc = resuming ? 0 : run_file_remove(path, 0, err);
        free(path);
        return rc;
    }
    f->path = path;
    f->fd = resuming ? keep_steps_until(path, steps_done, err) : start_appending(path, "", 0, err);
    return f->fd < 0 ? -1 : 0;
}

int train_trace_start(train_trace *t, const char *dir, const train_options *o,
                      const nb_model *m, int64_t steps_done, int resuming, nb_error *err)
{
    memset(t, 0, sizeof *t);
    t->trace.fd = t->evals.fd = -1;
    t->steps = steps_done;
    if (o->trace) {
        if (!m->pre_activation || o->trace_every < 1)
            return nb_fail(err, "internal error: the model keeps no pre-activation to trace");
        t->node = m->pre_activation;
        t->layer = o->trace_layer;
        t->unit = o->trace_unit;
        t->trace_every = o->trace_every;
        nb_tensor v = nb_node_value(t->node);
        size_t width = (size_t)v.shape[1];
        t->scratch = malloc((size_t)nb_graph_max_batch(m->graph) * width * sizeof *t->scratch);
        if (!t->scratch)
            return nb_fail(err, "out of memory");
    }
    t->eval_every = o->eval_every;
    if (start_file(&t->trace, dir, TRACE_FILE, o->trace, steps_done, resuming, err) != 0 ||
        start_file(&t->evals, dir, STEPS_FILE, o->eval_every > 0, steps_done, resuming, err) != 0)
        return -1;
    return 0;
}

static cJSON *number_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static int write_trace(train_trace *t, const nb_progress *p, nb_error *err)
{
    static const double pct[3] = {15, 50, 85};
    nb_tensor v = nb_node_value(t->node);
    size_t batch = (size_t)v.shape[0], width = (size_t)v.shape[1];
    double unit[3], layer[3];
    for (size_t r = 0; r < batch; r++)
        t->scratch[r] = v.data[r * width + (size_t)t->unit];
    percentiles(t->scratch, batch, pct, 3, unit);
    memcpy(t->scratch, v.data, batch * width * sizeof *t->scratch);
    percentiles(t->scratch, batch * width, pct, 3, layer);

    cJSON *j = cJSON_CreateObject();
    if (!j)
        return nb_fail(err, "out of memory");
    static const char *const unit_keys[3] = {"unit_p15", "unit_p50", "unit_p85"};
    static const char *const layer_keys[3] = {"layer_p15", "layer_p50", "layer_p85"};
    cJSON_AddNumberToObject(j, "step", (double)t->steps);
    cJSON_AddNumberToObject(j, "epoch", p->epoch + 1);
    cJSON_AddNumberToObject(j, "layer", t->layer);
    cJSON_AddNumberToObject(j, "unit", t->unit);
    for (int i = 0; i < 3; i++)
        cJSON_AddItemToObject(j, unit_keys[i], number_or_null(unit[i]));
    for (int i = 0; i < 3; i++)
        cJSON_AddItemToObject(j, layer_keys[i], number_or_null(layer[i]));
    return append_line(&t->trace, j, err);
}

static int write_evaluation(train_trace *t, nb_model *m, const nb_progress *p,
                            const nb_dataset *dev, const nb_dataset *test, nb_error *err)
{
    nb_eval_result d = {0}, e = {0};
    if (nb_evaluate(m, dev, &d, err) != 0 || nb_evaluate(m, test, &e, err) != 0)
        return -1;
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return nb_fail(err, "out of memory");
    cJSON_AddNumberToObject(j, "step", (double)t->steps);
    cJSON_AddNumberToObject(j, "epoch", p->epoch + 1);
    cJSON_AddItemToObject(j, "lr", json_float(p->lr));
    json_add_split(j, "dev", &d);
    json_add_split(j, "test", &e);
    return append_line(&t->evals, j, err);
}

int train_trace_step(train_trace *t, nb_model *m, const nb_progress *p, const nb_dataset *dev,
                     const nb_dataset *test, nb_error *err)
{
    t->steps++;
    /* The trace first: evaluating runs the graph again, over the step's values. */
    int rc = 0;
    if (is_open(&t->trace) && (t->steps == 1 || t->steps % t->trace_every == 0))
        rc = write_trace(t, p, err);
    if (rc >= 0 && is_open(&t->evals) && t->steps % t->eval_every == 0) {
        nb_error e;
        int r2 = write_evaluation(t, m, p, dev, test, &e);
        if (r2 < 0 || (rc == 0 && r2 == APPEND_CUT)) {
            *err = e;
            rc = r2;
        }
    }
    return rc;
}

static int sync_file(const step_file *f, nb_error *err)
{
    if (is_open(f) && nb_fsync_output(f->fd) != 0)
        return nb_fail(err, "%s: fsync: %s", f->path, strerror(errno));
    return 0;
}

int train_trace_sync(train_trace *t, nb_error *err)
{
    if (sync_file(&t->trace, err) != 0 || sync_file(&t->evals, err) != 0)
        return -1;
    return 0;
}

static int close_file(step_file *f, nb_error *err)
{
    if (!is_open(f))
        return 0;
    int rc = sync_file(f, err);
    if (close(f->fd) != 0 && rc == 0)
        rc = nb_fail(err, "%s: %s", f->path, strerror(errno));
    f->fd = -1;
    return rc;
}

int train_trace_close(train_trace *t, nb_error *err)
{
    int a = close_file(&t->trace, err);
    int b = close_file(&t->evals, a == 0 ? err : &(nb_error){{0}});
    return a == 0 && b == 0 ? 0 : -1;
}

void train_trace_free(train_trace *t)
{
    nb_error ignored;
    train_trace_close(t, &ignored);
    free(t->trace.path);
    free(t->evals.path);
    free(t->scratch);
    memset(t, 0, sizeof *t);
    t->trace.fd = t->evals.fd = -1;
}
