/* Fuzz target: the CSV reader (nb_parse_csv, nb_parse_csv_with) on arbitrary bytes.
 *
 * The bytes are passed as libFuzzer gives them, without a terminating zero, so a scan past the
 * end shows up under AddressSanitizer. An accepted file of plain numbers (comma-separated, no
 * quotes, numeric features, integer classes) is re-read here the slow, obvious way (split lines
 * and fields, strtod every field) and every value and class must match: that is the check on
 * the reader's fast number path, which promises exactly (float)strtod, and refuses (like the
 * careful path) what strtod puts beyond FLT_MAX. The same bytes are then read with other
 * options (header declared, ';' separated, missing values dropped or filled, regression and
 * multilabel targets, many classes) and like the table the first read made, which must give
 * the same set again. */
#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "nabla.h"

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* [*s, *e) without its blanks at either end. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_blank(**s))
        (*s)++;
    while (*e > *s && is_blank((*e)[-1]))
        (*e)--;
}

/* strtod on [s, e) trimmed of blanks, which the reader accepted as a whole number. */
static double field_value(const char *s, const char *e)
{
    trim(&s, &e);
    size_t n = (size_t)(e - s);
    char *buf = malloc(n + 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *stop;
    double v = strtod(buf, &stop);
    FUZZ_CHECK(n > 0 && stop == buf + n);
    free(buf);
    return v;
}

/* Whether [s, e), trimmed of blanks, is a whole number written as digits (a sign, digits, and
 * an optional fraction of zeros) that fits a long long; its value in *out. strtoll, the slow
 * obvious way. */
static int integer_text(const char *s, const char *e, long long *out)
{
    trim(&s, &e);
    const char *point = memchr(s, '.', (size_t)(e - s));
    const char *digits_end = point ? point : e;
    for (const char *z = point ? point + 1 : e; z < e; z++)
        if (*z != '0')
            return 0;
    size_t n = (size_t)(digits_end - s);
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    for (size_t i = (buf[0] == '+' || buf[0] == '-'); i < n; i++)
        if (buf[i] < '0' || buf[i] > '9')
            return 0;
    errno = 0;
    char *stop;
    *out = strtoll(buf, &stop, 10);
    return errno == 0 && stop == buf + n;
}

/* Compares row `row` of d with the line [p, e). */
static void check_row(const nb_dataset *d, int row, const char *p, const char *e)
{
    for (int j = 0; j < d->features; j++) {
        const char *comma = memchr(p, ',', (size_t)(e - p));
        FUZZ_CHECK(comma != NULL);
        double exact = field_value(p, comma);
        /* The reader refuses what strtod puts beyond FLT_MAX ("out of range"), whichever
         * path reads the number. */
        FUZZ_CHECK(fabs(exact) <= FLT_MAX);
        float want = (float)exact;
        float got = d->values[(size_t)row * (size_t)d->features + (size_t)j];
        FUZZ_CHECK(isfinite(got));
        if (memcmp(&want, &got, sizeof want) != 0) {
            fprintf(stderr, "row %d field %d: '%.*s' read as %a, strtod gives %a\n", row, j,
                    (int)(comma - p), p, (double)got, (double)want);
            FUZZ_CHECK(!"the value differs from (float)strtod");
        }
        p = comma + 1;
    }
    FUZZ_CHECK(memchr(p, ',', (size_t)(e - p)) == NULL);
    /* The class is named by the label's integer, exact beyond 2^53 where a double is not. */
    double label = field_value(p, e);
    char name[64];
    long long exact_label;
    if (integer_text(p, e, &exact_label))
        snprintf(name, sizeof name, "%lld", exact_label);
    else
        snprintf(name, sizeof name, "%lld", (long long)label);
    FUZZ_CHECK(strcmp(d->table->class_names[d->labels[row]], name) == 0);
}

/* A data set the reader returned: its arrays as its task and table say. */
static void check_shape(const nb_dataset *d)
{
    FUZZ_CHECK(d->n > 0 && d->features >= 1 && d->values && !d->pixels && d->table);
    const nb_table *t = d->table;
    int features = 0, targets = 0;
    for (int c = 0; c < t->n_columns; c++) {
        const nb_column *col = &t->columns[c];
        features += col->kind == NB_COLUMN_NUMBER ? 1
                    : col->kind == NB_COLUMN_CATEGORY ? col->n_categories
                                                      : 0;
        targets += col->kind == NB_COLUMN_TARGET;
        for (int i = 1; col->kind == NB_COLUMN_CATEGORY && i < col->n_categories; i++)
            FUZZ_CHECK(strcmp(col->categories[i - 1], col->categories[i]) < 0);
    }
    FUZZ_CHECK(features == d->features && targets >= 1);
    for (size_t k = 0; k < (size_t)d->n * (size_t)d->features; k++)
        FUZZ_CHECK(isfinite(d->values[k]));
    if (d->task == NB_TASK_CLASSIFICATION) {
        FUZZ_CHECK(d->labels && !d->target && d->classes == t->n_classes && targets == 1);
        for (int i = 0; i < d->n; i++)
            FUZZ_CHECK(d->labels[i] >= 0 && d->labels[i] < d->classes);
    } else {
        FUZZ_CHECK(!d->labels && d->target && d->targets == targets);
        for (size_t k = 0; k < (size_t)d->n * (size_t)d->targets; k++)
            FUZZ_CHECK(isfinite(d->target[k]) &&
                       (d->task != NB_TASK_MULTILABEL || d->target[k] == 0 || d->target[k] == 1));
    }
}

/* The bytes read with options o: refused with a proper message, or a well-formed set. */
static void read_with(const uint8_t *data, size_t size, const nb_csv_options *o)
{
    nb_dataset d;
    nb_error err = {""};
    if (nb_parse_csv_with(data, size, "fuzz.csv", o, &d, &err) != 0) {
        FUZZ_CHECK(fuzz_message_ok(err.msg, "fuzz.csv:"));
        FUZZ_CHECK(d.values == NULL && d.labels == NULL && d.target == NULL && d.n == 0);
        return;
    }
    check_shape(&d);
    nb_dataset_free(&d);
}

/* Other options over the same bytes, and a second read like the first one's table. */
static void read_other_ways(const uint8_t *data, size_t size, const nb_dataset *first)
{
    static const nb_csv_options ways[] = {
        {.header = 1},
        {.header = 2, .delimiter = ';', .missing = NB_MISSING_MEAN},
        {.task = NB_TASK_REGRESSION, .missing = NB_MISSING_DROP, .delimiter = '\t'},
        {.task = NB_TASK_MULTILABEL, .target = "0,1", .missing = NB_MISSING_MEAN},
        {.target = "0", .allow_many_classes = 1, .missing = NB_MISSING_DROP},
    };
    for (size_t i = 0; i < sizeof ways / sizeof *ways; i++)
        read_with(data, size, &ways[i]);
    if (!first)
        return;
    nb_csv_options like = {.like = first->table};
    nb_dataset d;
    nb_error err = {""};
    if (nb_parse_csv_with(data, size, "fuzz.csv", &like, &d, &err) != 0) {
        fprintf(stderr, "read like its own table: %s\n", err.msg);
        FUZZ_CHECK(!"a file read like its own table is refused");
    }
    FUZZ_CHECK(d.n == first->n && d.features == first->features && d.header == first->header);
    FUZZ_CHECK(memcmp(d.values, first->values, (size_t)d.n * (size_t)d.features * sizeof(float))
               == 0);
    FUZZ_CHECK(memcmp(d.labels, first->labels, (size_t)d.n * sizeof(int32_t)) == 0);
    nb_dataset_free(&d);
}

static int line_is_blank(const char *s, const char *e)
{
    while (s < e && (is_blank(*s) || *s == '\r'))
        s++;
    return s == e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_dataset d;
    nb_error err = {""};
    if (nb_parse_csv(data, size, "fuzz.csv", &d, &err) != 0) {
        FUZZ_CHECK(fuzz_message_ok(err.msg, "fuzz.csv:"));
        FUZZ_CHECK(d.values == NULL && d.labels == NULL && d.n == 0);
        read_other_ways(data, size, NULL);
        return 0;
    }
    check_shape(&d);
    fuzz_check_labels(&d);
    read_other_ways(data, size, &d);

    /* The slow re-read covers plain files: ',' between unquoted numbers, integer classes. */
    int plain = d.table->delimiter == ',' && !memchr(data, '"', size) && !memchr(data, 0x1f, size);
    for (int c = 0; c < d.table->n_columns; c++)
        plain &= d.table->columns[c].kind != NB_COLUMN_CATEGORY;
    for (int k = 0; k < d.classes; k++) {
        /* integer classes, named by their integer (a longer run of digits is a word) */
        char canonical[32];
        snprintf(canonical, sizeof canonical, "%lld", strtoll(d.table->class_names[k], NULL, 10));
        plain &= strcmp(canonical, d.table->class_names[k]) == 0;
    }
    if (!plain) {
        nb_dataset_free(&d);
        return 0;
    }

    /* The non-blank lines are the rows, after at most one header line. */
    const char *p = (const char *)data, *end = p + size;
    if (size >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    const char *lines[2][2];   /* [first, second non-blank line][begin, end] */
    int nonblank = 0;
    for (const char *q = p; q < end;) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        const char *e = nl ? nl : end;
        if (e > q && e[-1] == '\r')
            e--;
        if (!line_is_blank(q, e)) {
            if (nonblank < 2) {
                lines[nonblank][0] = q;
                lines[nonblank][1] = e;
            }
            nonblank++;
        }
        q = nl ? nl + 1 : end;
    }
    int header = nonblank - d.n;
    FUZZ_CHECK(header == 0 || header == 1);

    /* Every data row, compared with strtod. */
    int row = 0;
    for (const char *q = header ? lines[1][0] : lines[0][0]; q < end;) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        const char *e = nl ? nl : end;
        if (e > q && e[-1] == '\r')
            e--;
        if (!line_is_blank(q, e)) {
            FUZZ_CHECK(row < d.n);
            check_row(&d, row, q, e);
            row++;
        }
        q = nl ? nl + 1 : end;
    }
    FUZZ_CHECK(row == d.n);
    nb_dataset_free(&d);
    return 0;
}
