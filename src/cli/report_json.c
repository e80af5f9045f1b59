/* Strict readers for the JSON files of runs and studies. */
#include "report_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"

int report_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

char *report_dir_name(const char *dir)
{
    char *d = strdup(dir);
    for (size_t n = d ? strlen(d) : 0; n > 1 && d[n - 1] == '/'; n--)
        d[n - 1] = '\0';
    return d;
}

int report_read_json(const char *path, int missing_ok, cJSON **out, nb_error *err)
{
    *out = NULL;
    if (missing_ok && !report_file_exists(path))
        return 0;
    unsigned char *data;
    size_t n;
    if (nb_read_file(path, &data, &n, err) != 0)
        return -1;
    if (memchr(data, '\0', n)) {
        free(data);
        return nb_fail(err, "%s: not a JSON file (it holds a NUL byte)", path);
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts((const char *)data, n + 1, &end, 1);
    /* n + 1: cJSON wants the terminator inside the length to check that nothing follows. */
    if (!cJSON_IsObject(j)) {
        /* cJSON tells where it stopped: the line of that byte. */
        int line = 1;
        const char *stop = j ? (const char *)data : end;
        for (const char *p = (const char *)data; stop && p < stop; p++)
            line += *p == '\n';
        cJSON_Delete(j);
        free(data);
        return nb_fail(err, "%s:%d: %s", path, line,
                       j ? "expected a JSON object" : "not valid JSON");
    }
    free(data);
    *out = j;
    return 0;
}

int report_read_jsonl(const char *path, jsonl_fn fn, void *user, nb_error *err)
{
    unsigned char *data;
    size_t n;
    if (nb_read_file(path, &data, &n, err) != 0)
        return -1;
    char *text = (char *)data;
    size_t whole = n;
    while (whole > 0 && text[whole - 1] != '\n')
        whole--;
    int rc = 0, line = 1;
    for (char *p = text; rc == 0 && p < text + whole; line++) {
        char *nl = memchr(p, '\n', (size_t)(text + whole - p));
        *nl = '\0';
        cJSON *obj = memchr(p, '\0', (size_t)(nl - p))
                         ? NULL
                         : cJSON_ParseWithLengthOpts(p, (size_t)(nl - p) + 1, NULL, 1);
        if (!cJSON_IsObject(obj))
            rc = nb_fail(err, "%s:%d: %s", path, line,
                         obj ? "expected a JSON object" : "not valid JSON");
        else
            rc = fn(obj, line, user, err);
        cJSON_Delete(obj);
        p = nl + 1;
    }
    free(data);
    return rc;
}

void table_free(table *t)
{
    for (int c = 0; c < TABLE_MAX_COLS; c++) {
        free(t->col[c]);
        t->col[c] = NULL;
    }
    t->n = t->cap = 0;
}

typedef struct table_job {
    const char *path;
    const char *const *names;
    int n_names, n_required;
    table *t;
} table_job;

static int grow(table *t, nb_error *err)
{
    if (t->n < t->cap)
        return 0;
    int cap = t->cap ? 2 * t->cap : 64;
    for (int c = 0; c < t->n_cols; c++) {
        double *grown = realloc(t->col[c], (size_t)cap * sizeof *grown);
        if (!grown)
            return nb_fail(err, "out of memory");
        t->col[c] = grown;
    }
    t->cap = cap;
    return 0;
}

static int table_line(const cJSON *obj, int line, void *user, nb_error *err)
{
    table_job *job = user;
    table *t = job->t;
    if (grow(t, err) != 0)
        return -1;
    for (int c = 0; c < job->n_names; c++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, job->names[c]);
        double x = NAN;
        if (cJSON_IsNumber(v))
            x = v->valuedouble;
        else if (c < job->n_required)
            return nb_fail(err, "%s:%d: \"%s\" %s", job->path, line, job->names[c],
                           v ? "must be a number" : "is missing");
        else if (v && !cJSON_IsNull(v))
            return nb_fail(err, "%s:%d: \"%s\" must be a number or null", job->path, line,
                           job->names[c]);
        t->col[c][t->n] = x;
    }
    t->n++;
    return 0;
}

int report_read_table(const char *path, const char *const *names, int n_names, int n_required,
                      table *t, nb_error *err)
{
    memset(t, 0, sizeof *t);
    if (n_names > TABLE_MAX_COLS)
        return nb_fail(err, "too many columns");
    t->n_cols = n_names;
    table_job job = {path, names, n_names, n_required, t};
    if (report_read_jsonl(path, table_line, &job, err) != 0) {
        table_free(t);
        return -1;
    }
    return 0;
}

double json_number(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

const char *json_string(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
