/* Strict readers for the JSON files of runs and studies. */
#include "io/json_files.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/fileio.h"
#include "io/json_check.h"

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

/* A JSON string starting at its opening quote p: the position after its closing quote. */
static const char *skip_string(const char *p)
{
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
            p++;
    return *p ? p + 1 : p;
}

/* The line on which the nth (1, 2, ...) top-level member `name` of text starts; 0 if none. */
static int member_line(const char *text, const char *name, int nth)
{
    size_t len = strlen(name);
    int depth = 0, line = 1;
    for (const char *p = text; p && *p;) {
        if (*p == '"') {
            const char *after = skip_string(p);
            if (depth == 1 && (size_t)(after - p) == len + 2 && memcmp(p + 1, name, len) == 0) {
                const char *q = after;
                while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
                    q++;
                if (*q == ':' && --nth == 0)
                    return line;
            }
            p = after;
            continue;
        }
        depth += (*p == '{' || *p == '[') - (*p == '}' || *p == ']');
        line += *p == '\n';
        p++;
    }
    return 0;
}

int json_member_line(const char *text, const char *name)
{
    return member_line(text, name, 1);
}

/* "\"epoch\" appears twice", and where when not at the top level of root. */
static void duplicate_text(const char *name, const cJSON *holder, const cJSON *root, char *buf,
                           size_t size)
{
    if (holder == root)
        snprintf(buf, size, "\"%.80s\" appears twice (a JSON object's names are unique)", name);
    else
        snprintf(buf, size, "\"%.80s\" appears twice in %s%.80s%s", name,
                 holder->string ? "\"" : "one of its objects",
                 holder->string ? holder->string : "", holder->string ? "\"" : "");
}

int report_read_json_text(const char *path, int missing_ok, cJSON **out, char **text,
                          nb_error *err)
{
    *out = NULL;
    if (text)
        *text = NULL;
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
    const cJSON *holder = NULL;
    const char *twice = nb_json_duplicate_name(j, &holder);
    if (twice) {
        /* The line of its second appearance, or of the member that holds the object. */
        const char *t = (const char *)data;
        int line = holder == j           ? member_line(t, twice, 2)
                   : holder->string      ? json_member_line(t, holder->string)
                                         : 0;
        char what[200];
        duplicate_text(twice, holder, j, what, sizeof what);
        int rc = line > 0 ? nb_fail(err, "%s:%d: %s", path, line, what)
                          : nb_fail(err, "%s: %s", path, what);
        cJSON_Delete(j);
        free(data);
        return rc;
    }
    if (text)
        *text = (char *)data;   /* nb_read_file terminates what it reads */
    else
        free(data);
    *out = j;
    return 0;
}

void json_member_where(const char *text, const char *path, const char *name, char *where,
                       size_t size)
{
    int line = text ? json_member_line(text, name) : 0;
    if (line > 0)
        snprintf(where, size, "%s:%d", path, line);
    else
        snprintf(where, size, "%s", path);
}

int json_member_fail(const char *text, const char *path, const char *name, nb_error *err,
                     const char *fmt, ...)
{
    char where[4200], what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    json_member_where(text, path, name, where, sizeof where);
    return nb_fail(err, "%s: %s", where, what);
}

/* Whether the n bytes at s begin as one of starts does, or are the beginning of one. */
static int begins_as(const char *s, size_t n, const char *const *starts)
{
    for (; *starts; starts++) {
        size_t len = strlen(*starts);
        if (memcmp(s, *starts, n < len ? n : len) == 0)
            return 1;
    }
    return 0;
}

/* The last line of a JSON Lines file, without its newline (report_read_jsonl). */
static int torn_line(const char *path, int line, const char *s, size_t n,
                     const char *const *starts, const char *finished_by, nb_error *err)
{
    if (finished_by)
        return nb_fail(err, "%s:%d: the last line has no newline, but %s is there: the file "
                            "was finished, so none of its lines can be half written",
                       path, line, finished_by);
    if (!nb_json_object_prefix(s, n) || !begins_as(s, n, starts))
        return nb_fail(err, "%s:%d: the last line has no newline and is not the beginning of a "
                            "line of this file (those begin %s): it is damaged, not being "
                            "written", path, line, starts[0]);
    return 0;
}

int report_read_jsonl(const char *path, jsonl_fn fn, void *user, const char *const *starts,
                      const char *finished_by, nb_error *err)
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
        const cJSON *holder = NULL;
        const char *twice = cJSON_IsObject(obj) ? nb_json_duplicate_name(obj, &holder) : NULL;
        if (!cJSON_IsObject(obj)) {
            rc = nb_fail(err, "%s:%d: %s", path, line,
                         obj ? "expected a JSON object" : "not valid JSON");
        } else if (twice) {
            char what[200];
            duplicate_text(twice, holder, obj, what, sizeof what);
            rc = nb_fail(err, "%s:%d: %s", path, line, what);
        } else {
            rc = fn(obj, line, user, err);
        }
        cJSON_Delete(obj);
        p = nl + 1;
    }
    if (rc == 0 && whole < n)
        rc = torn_line(path, line, text + whole, n - whole, starts, finished_by, err);
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
    const table_spec *spec;
    const void *ctx;
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
    const table_spec *spec = job->spec;
    char where[4200];
    snprintf(where, sizeof where, "%s:%d", job->path, line);
    if (grow(t, err) != 0)
        return -1;
    for (int c = 0; c < spec->n_cols; c++) {
        const table_column *col = &spec->cols[c];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, col->name);
        double x = NAN;
        if (cJSON_IsNumber(v))
            x = v->valuedouble;
        else if (col->required)
            return nb_fail(err, "%s: \"%s\" %s", where, col->name,
                           v ? "must be a number" : "is missing");
        else if (v && !cJSON_IsNull(v))
            return nb_fail(err, "%s: \"%s\" must be a number or null", where, col->name);
        if (value_check(x, col->rule, !col->required, where, col->name, err) != 0)
            return -1;
        t->col[c][t->n] = x;
    }
    t->n++;
    return spec->check_row ? spec->check_row(t, where, job->ctx, err) : 0;
}

int report_read_table(const char *path, const table_spec *spec, const void *ctx,
                      const char *finished_by, table *t, nb_error *err)
{
    memset(t, 0, sizeof *t);
    if (spec->n_cols > TABLE_MAX_COLS)
        return nb_fail(err, "too many columns");
    t->n_cols = spec->n_cols;
    /* Lines begin with the first column: {"epoch":... */
    char start[64];
    snprintf(start, sizeof start, "{\"%s\":", spec->cols[0].name);
    const char *const starts[] = {start, NULL};
    table_job job = {path, spec, ctx, t};
    if (report_read_jsonl(path, table_line, &job, starts, finished_by, err) != 0) {
        table_free(t);
        return -1;
    }
    return 0;
}

/* ---- sense ---- */

void json_number_text(double x, char *buf, size_t size)
{
    if (isnan(x)) {
        snprintf(buf, size, "null");
        return;
    }
    snprintf(buf, size, "%.15g", x);
    if (strtod(buf, NULL) != x)
        snprintf(buf, size, "%.17g", x);
}

#define MAX_EXACT 9007199254740992.0   /* 2^53: doubles count exactly up to here */

int value_check(double x, value_rule rule, int nullable, const char *where, const char *name,
                nb_error *err)
{
    if (isnan(x))
        return nullable ? 0 : nb_fail(err, "%s: \"%s\" must be a number", where, name);
    int whole = x == floor(x);
    int ok = 0;
    const char *expected = "";
    switch (rule) {
    case V_FINITE: ok = isfinite(x); expected = "a finite number"; break;
    case V_NON_NEG: ok = isfinite(x) && x >= 0; expected = "a finite number >= 0"; break;
    case V_POSITIVE: ok = isfinite(x) && x > 0; expected = "a finite number > 0"; break;
    case V_UNIT: ok = x >= 0 && x <= 1; expected = "a number in [0, 1]"; break;
    case V_FRACTION: ok = x >= 0 && x < 1; expected = "a number in [0, 1)"; break;
    case V_COUNT: ok = whole && x >= 0 && x <= MAX_EXACT; expected = "a whole number >= 0"; break;
    case V_COUNT_1: ok = whole && x >= 1 && x <= MAX_EXACT; expected = "a whole number >= 1"; break;
    case V_INT:
        ok = whole && x >= 0 && x <= INT_MAX;
        expected = "a whole number from 0 to 2147483647";
        break;
    case V_INT_1:
        ok = whole && x >= 1 && x <= INT_MAX;
        expected = "a whole number from 1 to 2147483647";
        break;
    }
    if (ok)
        return 0;
    char text[40];
    json_number_text(x, text, sizeof text);
    return nb_fail(err, "%s: \"%s\" is %s, expected %s", where, name, text, expected);
}

static const char *type_name(member_type type)
{
    switch (type) {
    case MT_NUMBER: return "a number";
    case MT_BOOL: return "true or false";
    case MT_STRING: return "a string";
    case MT_NUMBERS: return "an array of numbers";
    case MT_STRINGS: return "an array of strings";
    case MT_OBJECT: return "an object";
    }
    return "?";
}

static int member_check(const cJSON *v, const member_rule *r, const char *where, nb_error *err)
{
    if (cJSON_IsNull(v) && r->nullable)
        return 0;
    if (r->also && cJSON_IsString(v) && strcmp(v->valuestring, r->also) == 0)
        return 0;
    int fits = r->type == MT_NUMBER    ? cJSON_IsNumber(v)
               : r->type == MT_BOOL    ? cJSON_IsBool(v)
               : r->type == MT_STRING  ? cJSON_IsString(v)
               : r->type == MT_OBJECT  ? cJSON_IsObject(v)
                                       : cJSON_IsArray(v);
    for (const cJSON *x = r->type == MT_STRINGS && fits ? v->child : NULL; x; x = x->next)
        fits &= cJSON_IsString(x);
    if (!fits)
        return nb_fail(err, "%s: \"%s\" must be %s%s%s%s%s", where, r->name, type_name(r->type),
                       r->also ? " or \"" : "", r->also ? r->also : "", r->also ? "\"" : "",
                       r->nullable ? " or null" : "");
    if (r->type == MT_STRING && r->valid && !r->valid(v->valuestring))
        return nb_fail(err, "%s: \"%s\" is \"%.80s\", which nabla does not write there", where,
                       r->name, v->valuestring);
    if (r->type == MT_NUMBER)
        return value_check(v->valuedouble, r->rule, 0, where, r->name, err);
    if (r->type == MT_NUMBERS)
        for (const cJSON *x = v->child; x; x = x->next)
            if (value_check(cJSON_IsNumber(x) ? x->valuedouble : NAN, r->rule, 0, where, r->name,
                            err) != 0)
                return -1;
    return 0;
}

int json_members_check(const cJSON *obj, const char *text, const char *path,
                       const member_rule *rules, int n_rules, nb_error *err)
{
    for (int i = 0; i < n_rules; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, rules[i].name);
        if (!v && rules[i].required)
            return nb_fail(err, "%s: \"%s\" is missing", path, rules[i].name);
        if (!v)
            continue;
        char where[4200];
        json_member_where(text, path, rules[i].name, where, sizeof where);
        if (member_check(v, &rules[i], where, err) != 0)
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
