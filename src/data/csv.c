/* CSV data sets (nb_read_csv): the input, the header, the target columns, and one pass over
 * the rows into cells, which csv_columns.c then turns into features and targets.
 *
 * The input: a file, "-" for standard input, or a FIFO / pipe (/dev/stdin), read to its end;
 * gzip'd bytes (magic 1f 8b) are inflated first, whatever the file's name. Then the text is
 * checked (csv_text.c), a UTF-8 byte order mark skipped, and the delimiter taken from the
 * options or detected (csv_fields.c).
 *
 * The first line is a header when the options say so, or, detected, when none of its fields is
 * a number (a quoted number is still a number). A line of numbers and words ("0.1,0.2x,1") is
 * data, and an error in it says why it was not taken for a header. A file read like a training
 * table (o->like) also has a header when its first line is made of that table's column names.
 *
 * The rows are read in one pass, with arrays sized up front from a count of newlines (and the
 * rows the bytes could hold at most), so a file of millions of numbers costs one read and one
 * scan. Every refusal names the file, the line and the column. Blank lines may end the file,
 * but not come between rows. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/memcheck.h"
#include "data/byte_source.h"
#include "data/csv_internal.h"
#include "io/fileio.h"

static int quote_len(size_t len) { return (int)(len > CSV_QUOTE_MAX ? CSV_QUOTE_MAX : len); }

/* ---- the rows ---- */

static void rows_free(csv_rows *r)
{
    free(r->role);
    free(r->column);
    free(r->cell);
    free(r->kind);
    free(r->row_start);
    free(r->row_line);
    free(r->texts);
    for (size_t i = 0; i < r->n_owned; i++)
        free(r->owned[i]);
    free(r->owned);
    memset(r, 0, sizeof *r);
}

int csv_add_text(csv_rows *r, const char *s, size_t len, int owned, uint32_t *index,
                 nb_error *err)
{
    if (owned && r->n_owned == r->cap_owned) {
        size_t cap = r->cap_owned ? 2 * r->cap_owned : 64;
        char **bigger = realloc(r->owned, cap * sizeof *bigger);
        if (!bigger) {
            free((char *)s);
            return nb_fail(err, "%s: out of memory", r->path);
        }
        r->owned = bigger;
        r->cap_owned = cap;
    }
    if (owned)
        r->owned[r->n_owned++] = (char *)s;
    if (r->n_texts == UINT32_MAX)
        return nb_fail(err, "%s: too many fields that are not numbers", r->path);
    if (r->n_texts == r->cap_texts) {
        size_t cap = r->cap_texts ? 2 * r->cap_texts : 256;
        if (nb_check_memory(cap * sizeof *r->texts, r->path, err) != 0)
            return -1;
        csv_text *bigger = realloc(r->texts, cap * sizeof *bigger);
        if (!bigger)
            return nb_fail(err, "%s: out of memory", r->path);
        r->texts = bigger;
        r->cap_texts = cap;
    }
    r->texts[r->n_texts] = (csv_text){s, len};
    *index = (uint32_t)r->n_texts++;
    return 0;
}

void csv_locate(const csv_rows *r, int row, int col, long *line, long *column)
{
    csv_cursor c;
    if (row < 0)   /* the header: the first line (only blank lines may come before data) */
        csv_cursor_init(&c, r->text, r->end, 1, r->delimiter, r->path);
    else
        csv_cursor_init(&c, r->row_start[row], r->end, r->row_line[row], r->delimiter,
                        r->path);
    csv_field f = {0};
    nb_error ignored;
    int more = 1;
    for (int j = 0; j <= col && more; j++)
        if (csv_next_field(&c, &f, &more, &ignored) != 0)
            break;
    *line = f.line;
    *column = f.column;
}

int csv_fail_at(const csv_rows *r, int row, int col, nb_error *err, const char *fmt, ...)
{
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    long line, column;
    csv_locate(r, row, col, &line, &column);
    return nb_fail(err, "%s:%ld:%ld: %s%s", r->path, line, column, msg, row == 0 ? r->note : "");
}

/* ---- one field into its cell ---- */

static int word_is(const csv_field *f, const char *w)
{
    return f->len == strlen(w) && strncasecmp(f->s, w, f->len) == 0;
}

/* The value of a multilabel target field: 0/1 (as any number), false/true, no/yes. */
static int binary_value(const csv_field *f, int comma, float *out)
{
    float v;
    if (csv_parse_number(f->s, f->len, comma, &v) == CSV_NUMBER && (v == 0.0f || v == 1.0f)) {
        *out = v;
        return 0;
    }
    if (word_is(f, "true") || word_is(f, "yes")) {
        *out = 1.0f;
        return 0;
    }
    if (word_is(f, "false") || word_is(f, "no")) {
        *out = 0.0f;
        return 0;
    }
    return -1;
}

/* The text of f into a text cell: where it lies in the input, or with its quotes undone. */
static int text_cell(csv_rows *r, const csv_field *f, csv_cell *cell, nb_error *err)
{
    if (!f->escaped)
        return csv_add_text(r, f->s, f->len, 0, &cell->text, err);
    char *t = csv_field_text(f);
    if (!t)
        return nb_fail(err, "%s: out of memory", r->path);
    return csv_add_text(r, t, strlen(t), 1, &cell->text, err);
}

static int read_cell(csv_rows *r, const nb_csv_options *o, size_t k, int j, const csv_field *f,
                     const char *column_name, nb_error *err)
{
    const char *path = r->path;
    int comma = r->delimiter == ';';
    int index = j + 1;
    csv_role role = r->role[j];
    if (csv_is_missing(f->s, f->len)) {
        if (o->missing == NB_MISSING_REFUSE) {
            if (f->len == 0)
                return nb_fail(err, "%s:%ld:%ld: field %d is empty (a missing value: drop such "
                               "rows or fill them with --missing drop|mean)", path, f->line,
                               f->column, index);
            return nb_fail(err, "%s:%ld:%ld: field %d is missing ('%.*s'; drop such rows or "
                           "fill them with --missing drop|mean)", path, f->line, f->column,
                           index, quote_len(f->len), f->s);
        }
        r->kind[k] = CELL_MISSING;
        return 0;
    }
    if (role == ROLE_CATEGORY || role == ROLE_CLASS) {
        r->kind[k] = CELL_TEXT;
        return text_cell(r, f, &r->cell[k], err);
    }
    if (role == ROLE_BINARY) {
        if (binary_value(f, comma, &r->cell[k].number) != 0)
            return nb_fail(err, "%s:%ld:%ld: target field %d '%.*s' is not 0 or 1 (a multilabel "
                           "target is 0/1, false/true or no/yes)", path, f->line, f->column,
                           index, quote_len(f->len), f->s);
        r->kind[k] = CELL_NUMBER;
        return 0;
    }
    switch (csv_parse_number(f->s, f->len, comma, &r->cell[k].number)) {
    case CSV_NUMBER:
        r->kind[k] = CELL_NUMBER;
        return 0;
    case CSV_NOT_A_NUMBER:
        if (role == ROLE_FEATURE) {
            r->kind[k] = CELL_TEXT;
            return text_cell(r, f, &r->cell[k], err);
        }
        if (role == ROLE_VALUE)
            return nb_fail(err, "%s:%ld:%ld: target field %d '%.*s' is not a number (a "
                           "regression target is numbers)", path, f->line, f->column, index,
                           quote_len(f->len), f->s);
        return nb_fail(err, "%s:%ld:%ld: field %d '%.*s' is not a number (column '%s' holds "
                       "numbers in the training data)", path, f->line, f->column, index,
                       quote_len(f->len), f->s, column_name ? column_name : "");
    case CSV_HEX:
        return nb_fail(err, "%s:%ld:%ld: field %d '%.*s' is a hexadecimal number; CSV numbers "
                       "are decimal", path, f->line, f->column, index, quote_len(f->len), f->s);
    case CSV_NAN:
        return nb_fail(err, "%s:%ld:%ld: field %d is NaN", path, f->line, f->column, index);
    case CSV_INFINITE:
        return nb_fail(err, "%s:%ld:%ld: field %d is infinite", path, f->line, f->column, index);
    case CSV_OUT_OF_RANGE:
        return nb_fail(err, "%s:%ld:%ld: field %d '%.*s' is out of range for float", path,
                       f->line, f->column, index, quote_len(f->len), f->s);
    }
    return nb_fail(err, "%s: internal error: unknown number kind", path);
}

/* ---- records ---- */

/* The fields of one record, into fields[0..cap); *count: how many it has (more than cap when
 * it is longer). */
typedef struct record {
    csv_field *fields;
    int cap, count;
} record;

static int read_record(csv_cursor *c, record *rec, nb_error *err)
{
    int more = 1;
    rec->count = 0;
    while (more) {
        csv_field f;
        if (csv_next_field(c, &f, &more, err) != 0)
            return -1;
        if (rec->count == INT_MAX)
            return nb_fail(err, "%s:%ld: too many fields", c->path, f.line);
        if (rec->count == rec->cap) {
            int cap = rec->cap ? (rec->cap > INT_MAX / 2 ? INT_MAX : 2 * rec->cap) : 16;
            csv_field *bigger = realloc(rec->fields, (size_t)cap * sizeof *bigger);
            if (!bigger)
                return nb_fail(err, "%s: out of memory", c->path);
            rec->fields = bigger;
            rec->cap = cap;
        }
        rec->fields[rec->count++] = f;
    }
    return 0;
}

/* ---- the header and the columns ---- */

/* What the first line holds: how many numbers and others, and the first number. */
typedef struct line_kinds {
    int numbers, others;
    int first_number;   /* its index, from 0 */
} line_kinds;

static line_kinds classify_fields(const record *rec, int comma)
{
    line_kinds k = {0, 0, -1};
    for (int j = 0; j < rec->count; j++) {
        if (!csv_looks_numeric(rec->fields[j].s, rec->fields[j].len, comma))
            k.others++;
        else if (k.numbers++ == 0)
            k.first_number = j;
    }
    return k;
}

/* The column of `like` each field of the first record names (-1: none). Returns 1 when `like`
 * has a header with unique names, 0 when it has not (all -1: the columns are then matched by
 * position), -1 with a message when out of memory. */
static int find_like_columns(const nb_table *like, const record *rec, const char *path,
                             int *found, nb_error *err)
{
    for (int j = 0; j < rec->count; j++)
        found[j] = -1;
    if (!like->header)
        return 0;
    lookup names;
    char **list = malloc((size_t)(like->n_columns > 0 ? like->n_columns : 1) * sizeof *list);
    if (!list)
        return nb_fail(err, "%s: out of memory", path);
    for (int t = 0; t < like->n_columns; t++)
        list[t] = like->columns[t].name ? like->columns[t].name : "";
    if (lookup_init(&names, list, like->n_columns) != 0) {
        free(list);
        return nb_fail(err, "%s: out of memory", path);
    }
    /* Names that are not unique cannot say which column is which: then by position. */
    int unique = 1;
    for (int k = 1; k < like->n_columns; k++)
        unique &= strcmp(list[names.order[k - 1]], list[names.order[k]]) != 0;
    int rc = 0;
    if (!unique) {
        free(names.order);
        free(list);
        return 0;
    }
    for (int j = 0; j < rec->count && rc == 0; j++) {
        char *text = csv_field_text(&rec->fields[j]);
        if (!text)
            rc = nb_fail(err, "%s: out of memory", path);
        else
            found[j] = lookup_exact(&names, text, strlen(text));
        free(text);
    }
    free(names.order);
    free(list);
    return rc < 0 ? -1 : 1;
}

/* Whether a first line read like `like` is its header: every field names one of its columns. */
static int like_header(const record *rec, const int *found)
{
    for (int j = 0; j < rec->count; j++)
        if (found[j] < 0)
            return 0;
    return 1;
}

/* Appends ", name" (or the start of the list) to buf, cut short rather than overflow. */
static void list_append(char *buf, size_t cap, const char *item)
{
    size_t len = strlen(buf);
    if (len + 1 < cap)
        snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", item);
}

/* The columns a message lists: names, or 0..n-1 without a header. */
static void list_columns(char *buf, size_t cap, const nb_table *t)
{
    buf[0] = '\0';
    if (!t->header) {
        snprintf(buf, cap, "0 to %d (no header line: columns are named by index)",
                 t->n_columns - 1);
        return;
    }
    for (int i = 0; i < t->n_columns; i++) {
        char item[96];
        snprintf(item, sizeof item, "%d '%.60s'", i, t->columns[i].name);
        list_append(buf, cap, item);
    }
}

/* The table's columns from the first record: names (header) and, from o->target, which are
 * targets. */
static int new_table(const record *first, int header, const nb_csv_options *o, const char *path,
                     char delimiter, nb_table *t, nb_error *err)
{
    int n = first->count;
    t->columns = calloc((size_t)n, sizeof *t->columns);
    if (!t->columns)
        return nb_fail(err, "%s: out of memory", path);
    t->n_columns = n;
    t->header = header;
    t->delimiter = delimiter;
    for (int j = 0; j < n; j++) {
        t->columns[j].kind = NB_COLUMN_NUMBER;
        if (!header)
            continue;
        t->columns[j].name = csv_field_text(&first->fields[j]);
        if (!t->columns[j].name)
            return nb_fail(err, "%s: out of memory", path);
    }

    /* The targets: comma-separated names or indices; the last column by default. */
    const char *spec = o->target && *o->target ? o->target : NULL;
    int targets = 0;
    if (!spec) {
        t->columns[n - 1].kind = NB_COLUMN_TARGET;
        targets = 1;
    }
    while (spec) {
        const char *comma = strchr(spec, ',');
        size_t len = comma ? (size_t)(comma - spec) : strlen(spec);
        while (len && (*spec == ' ' || *spec == '\t'))
            spec++, len--;
        while (len && (spec[len - 1] == ' ' || spec[len - 1] == '\t'))
            len--;
        int found = -1;
        for (int j = 0; header && j < n; j++) {
            if (strlen(t->columns[j].name) != len || memcmp(t->columns[j].name, spec, len) != 0)
                continue;
            if (found >= 0)
                return nb_fail(err, "%s:1:%ld: the target '%.*s' names two columns (%d and %d)",
                               path, first->fields[j].column, quote_len(len), spec, found, j);
            found = j;
        }
        long long index;
        int digits = len > 0 && strspn(spec, "0123456789") >= len;
        if (found < 0 && digits && csv_parse_integer(spec, len, &index) == 0 && index < n)
            found = (int)index;
        if (found < 0) {
            char cols[400];
            list_columns(cols, sizeof cols, t);
            return nb_fail(err, "%s:%d: no column %s'%.*s' for the target; the columns: %s",
                           path, 1, digits ? "number " : "", quote_len(len), spec, cols);
        }
        if (t->columns[found].kind == NB_COLUMN_TARGET)
            return nb_fail(err, "%s: the target names column %d twice", path, found);
        t->columns[found].kind = NB_COLUMN_TARGET;
        targets++;
        spec = comma ? comma + 1 : NULL;
    }
    if (targets == n)
        return nb_fail(err, "%s: every column is a target: no feature is left", path);
    if (o->task == NB_TASK_CLASSIFICATION && targets > 1)
        return nb_fail(err, "%s: classification takes one target column, not %d (several "
                       "0/1 columns are a multilabel task)", path, targets);
    return 0;
}

/* The file's columns matched to the training table's (o->like): by name when both have a
 * header, by position otherwise; target columns may be missing, all of them. */
static int match_like(const record *first, int header, int named, const nb_table *like,
                      const int *found, const char *path, int *column, nb_error *err)
{
    int n = first->count, targets = 0;
    for (int t = 0; t < like->n_columns; t++)
        targets += like->columns[t].kind == NB_COLUMN_TARGET;
    if (header && named) {
        char extra[400] = "";
        for (int j = 0; j < n; j++) {
            column[j] = found[j];
            for (int i = 0; i < j && column[j] >= 0; i++)
                if (column[i] == column[j])
                    return nb_fail(err, "%s:%ld:%ld: column '%.60s' appears twice", path,
                                   first->fields[j].line, first->fields[j].column,
                                   like->columns[column[j]].name);
            if (column[j] < 0) {
                char *name = csv_field_text(&first->fields[j]);
                char item[80];
                snprintf(item, sizeof item, "'%.60s'", name ? name : "?");
                free(name);
                list_append(extra, sizeof extra, item);
            }
        }
        if (extra[0]) {
            char cols[300];
            list_columns(cols, sizeof cols, like);
            return nb_fail(err, "%s:1:1: column(s) not in the training data: %s (its columns: "
                           "%s)", path, extra, cols);
        }
        int missing_targets = 0;
        for (int t = 0; t < like->n_columns; t++) {
            int present = 0;
            for (int j = 0; j < n; j++)
                present |= column[j] == t;
            if (present)
                continue;
            if (like->columns[t].kind != NB_COLUMN_TARGET)
                return nb_fail(err, "%s:1:1: no column '%.60s' (a feature of the training "
                               "data)", path, like->columns[t].name);
            missing_targets++;
        }
        if (missing_targets && missing_targets != targets)
            return nb_fail(err, "%s:1:1: %d of the %d target columns are missing: give all or "
                           "none", path, missing_targets, targets);
        return 0;
    }
    if (n == like->n_columns) {
        for (int j = 0; j < n; j++)
            column[j] = j;
        return 0;
    }
    if (n == like->n_columns - targets) {
        for (int t = 0, j = 0; t < like->n_columns; t++)
            if (like->columns[t].kind != NB_COLUMN_TARGET)
                column[j++] = t;
        return 0;
    }
    return nb_fail(err, "%s:%ld:1: %d fields, but the training data had %d columns (%d without "
                   "the target)", path, first->fields[0].line, n, like->n_columns,
                   like->n_columns - targets);
}

static csv_role role_of(const nb_table *t, int col, const nb_csv_options *o)
{
    const nb_column *c = &t->columns[col];
    if (c->kind == NB_COLUMN_TARGET) {
        nb_task task = csv_task(o);
        return task == NB_TASK_CLASSIFICATION ? ROLE_CLASS
               : task == NB_TASK_MULTILABEL   ? ROLE_BINARY
                                              : ROLE_VALUE;
    }
    if (!o->like)
        return ROLE_FEATURE;
    return c->kind == NB_COLUMN_CATEGORY ? ROLE_CATEGORY : ROLE_NUMBER;
}

/* ---- the reader ---- */

static int parse_text(const char *p, const char *end, const char *path, const nb_csv_options *o,
                      nb_dataset *out, nb_error *err)
{
    /* The text is not terminated: every scan below stops at end. */
    csv_rows r = {0};
    record rec = {0};
    nb_table *t = calloc(1, sizeof *t);
    if (!t)
        return nb_fail(err, "%s: out of memory", path);
    r.path = path;
    r.text = p;
    r.end = end;
    r.delimiter = o->delimiter ? o->delimiter : csv_detect_delimiter(p, end);
    int comma = r.delimiter == ';';

    /* An upper bound on the rows: one per newline, plus a last line without one. */
    size_t max_rows = 1;
    for (const char *q = p; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
        max_rows++;

    csv_cursor c;
    csv_cursor_init(&c, p, end, 1, r.delimiter, path);
    long blank_line = 0;   /* the first blank line; only blank lines may follow it */
    line_kinds first = {0, 0, -1};
    int header = 0;
    while (c.p < end) {
        if (csv_line_is_blank(c.p, end)) {
            if (!blank_line)
                blank_line = c.line;
            const char *e = csv_line_end(c.p, end);
            c.p = e < end ? e + 1 : end;
            c.line++;
            c.line_start = c.p;
            continue;
        }
        if (blank_line) {
            nb_fail(err, "%s:%ld:1: empty line", path, blank_line);
            goto fail;
        }
        const char *start = c.p;
        long line = c.line;
        if (read_record(&c, &rec, err) != 0)
            goto fail;

        if (r.n_cols == 0) {
            /* The first record fixes the column count, and may be a header. */
            if (rec.count < 2) {
                nb_fail(err, "%s:%ld:1: expected at least 2 fields (features, then a label), "
                        "found %d", path, line, rec.count);
                goto fail;
            }
            r.n_cols = rec.count;
            first = classify_fields(&rec, comma);
            r.role = malloc((size_t)r.n_cols * sizeof *r.role);
            r.column = malloc((size_t)r.n_cols * sizeof *r.column);
            if (!r.role || !r.column) {
                nb_fail(err, "%s: out of memory", path);
                goto fail;
            }
            /* r.column: the like table's columns the first line names, if it is a header. */
            int named = o->like ? find_like_columns(o->like, &rec, path, r.column, err) : 0;
            if (named < 0)
                goto fail;
            header = o->header == 1   ? 1
                     : o->header == 2 ? 0
                     : o->like        ? like_header(&rec, r.column) || first.numbers == 0
                                      : first.numbers == 0;
            int header_detected = o->header != 1 && o->header != 2;
            if (header_detected && first.numbers > 0 && first.others > 0) {
                /* A mix of numbers and words: a damaged first row, or a header with a number
                 * in it; either way not clearly a header, and a message about it says so. */
                const csv_field *f = &rec.fields[first.first_number];
                snprintf(r.note, sizeof r.note, " (line %ld was not taken for a header: field "
                         "%d '%.*s' is a number, and a header has none)", line,
                         first.first_number + 1, quote_len(f->len), f->s);
            }
            if (o->like) {
                if (nb_table_copy(t, o->like, err) != 0 ||
                    match_like(&rec, header, named, o->like, r.column, path, r.column, err) != 0)
                    goto fail;
            } else {
                if (new_table(&rec, header, o, path, r.delimiter, t, err) != 0)
                    goto fail;
                for (int j = 0; j < r.n_cols; j++)
                    r.column[j] = j;
            }
            for (int j = 0; j < r.n_cols; j++)
                r.role[j] = role_of(t, r.column[j], o);
            /* A data row holds n_cols fields and the delimiters between them, so the rest of
             * the file has room for at most this many; without this bound a wide header
             * followed by many blank lines would reserve gigabytes. */
            size_t room = (size_t)(end - start) / (size_t)r.n_cols + 1;
            if (room < max_rows)
                max_rows = room;
            if (max_rows > (size_t)INT32_MAX ||
                max_rows > SIZE_MAX / (sizeof *r.cell + 1) / (size_t)r.n_cols) {
                nb_fail(err, "%s: too many values", path);
                goto fail;
            }
            size_t cells = max_rows * (size_t)r.n_cols;
            if (nb_check_memory(cells * (sizeof *r.cell + 1) +
                                    max_rows * (sizeof *r.row_start + sizeof *r.row_line),
                                path, err) != 0)
                goto fail;
            r.cell = malloc(cells * sizeof *r.cell);
            r.kind = malloc(cells);
            r.row_start = malloc(max_rows * sizeof *r.row_start);
            r.row_line = malloc(max_rows * sizeof *r.row_line);
            if (!r.cell || !r.kind || !r.row_start || !r.row_line) {
                nb_fail(err, "%s: out of memory", path);
                goto fail;
            }
            r.first_line = line + header;
            if (header)
                continue;
        }

        if (rec.count != r.n_cols) {
            /* A missing or extra field explains any bad field, so it is reported first. */
            const csv_field *at = &rec.fields[rec.count < r.n_cols ? rec.count - 1 : r.n_cols];
            char hint[160] = "";
            if (r.n_rows == (header ? 0 : 1))
                snprintf(hint, sizeof hint, " (as line %ld%s has: if that line is a title, not "
                         "a header or a row, remove it, e.g. tail -n +2)", r.first_line - header,
                         header ? ", the header," : "");
            nb_fail(err, "%s:%ld:%ld: expected %d fields, found %d%s", path, at->line,
                    at->column + (rec.count < r.n_cols ? (long)at->len : 0), r.n_cols,
                    rec.count, hint);
            goto fail;
        }
        size_t k = (size_t)r.n_rows * (size_t)r.n_cols;
        for (int j = 0; j < r.n_cols; j++) {
            const char *name = t->columns[r.column[j]].name;
            if (read_cell(&r, o, k + (size_t)j, j, &rec.fields[j], name, err) != 0) {
                if (r.n_rows == 0 && r.note[0]) {
                    char why[sizeof err->msg];
                    snprintf(why, sizeof why, "%s", err->msg);
                    nb_fail(err, "%s%s", why, r.note);
                }
                goto fail;
            }
        }
        r.row_start[r.n_rows] = start;
        r.row_line[r.n_rows] = line;
        r.n_rows++;
    }

    if (r.n_cols == 0) {
        nb_fail(err, "%s: empty file", path);
        goto fail;
    }
    if (r.n_rows == 0) {
        nb_fail(err, "%s: no data rows after the header", path);
        goto fail;
    }
    out->header = header;
    if (csv_encode(&r, o, t, out, err) != 0)
        goto fail;
    free(rec.fields);
    rows_free(&r);
    return 0;

fail:
    free(rec.fields);
    rows_free(&r);
    nb_table_free(t);
    free(t);
    nb_dataset_free(out);
    return -1;
}

int nb_parse_csv_with(const void *bytes, size_t size, const char *what,
                      const nb_csv_options *options, nb_dataset *out, nb_error *err)
{
    static const nb_csv_options defaults;
    const nb_csv_options *o = options ? options : &defaults;
    memset(out, 0, sizeof *out);
    const char *path = what ? what : "csv";
    if (o->delimiter && o->delimiter != ',' && o->delimiter != ';' && o->delimiter != '\t')
        return nb_fail(err, "%s: the delimiter must be ',', ';' or a tab", path);
    if (o->missing < 0 || o->missing >= NB_MISSING_KINDS || (int)o->task < 0 ||
        o->task >= NB_TASKS)
        return nb_fail(err, "%s: invalid CSV options", path);
    unsigned char *inflated = NULL;
    if (nb_is_gzip(bytes, size)) {
        if (nb_gunzip(bytes, size, path, &inflated, &size, err) != 0)
            return -1;
        bytes = inflated;
    }
    int rc = -1;
    if (size == 0)
        nb_fail(err, "%s: empty file", path);
    else if (csv_check_text(bytes, size, path, err) == 0) {
        const char *p = bytes, *end = p + size;
        if (size >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
            p += 3;   /* UTF-8 byte order mark */
        rc = parse_text(p, end, path, o, out, err);
    }
    free(inflated);
    return rc;
}

int nb_parse_csv(const void *bytes, size_t size, const char *what, nb_dataset *out,
                 nb_error *err)
{
    return nb_parse_csv_with(bytes, size, what, NULL, out, err);
}

int nb_read_csv(const char *path, const nb_csv_options *o, nb_dataset *out, nb_error *err)
{
    unsigned char *bytes;
    size_t size;
    memset(out, 0, sizeof *out);
    if (nb_read_input(path, &bytes, &size, err) < 0)
        return -1;
    int rc = nb_parse_csv_with(bytes, size, strcmp(path, "-") == 0 ? "stdin" : path, o, out,
                               err);
    free(bytes);
    return rc;
}

int nb_load_csv(const char *path, nb_dataset *out, nb_error *err)
{
    return nb_read_csv(path, NULL, out, err);
}
