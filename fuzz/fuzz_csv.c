/* Fuzz target: the CSV reader (nb_parse_csv) on arbitrary bytes.
 *
 * The bytes are passed as libFuzzer gives them, without a terminating zero, so a scan past the
 * end shows up under AddressSanitizer. An accepted file is re-read here the slow, obvious way
 * (split lines and fields, strtod every field) and every value and label must match: that is
 * the check on the reader's fast number path, which promises exactly (float)strtod, and refuses
 * (like the careful path) what strtod puts beyond FLT_MAX. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "nabla.h"

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* strtod on [s, e) trimmed of blanks, which the reader accepted as a whole number. */
static double field_value(const char *s, const char *e)
{
    while (s < e && is_blank(*s))
        s++;
    while (e > s && is_blank(e[-1]))
        e--;
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
    double label = field_value(p, e);
    FUZZ_CHECK((double)d->labels[row] == label);
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
        return 0;
    }
    FUZZ_CHECK(d.n > 0 && d.features >= 1 && d.values && d.labels && !d.pixels);
    fuzz_check_labels(&d);

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
