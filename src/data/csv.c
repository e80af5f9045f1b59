/* CSV data sets: rows of numbers, the last column an integer class label.
 *
 * nb_parse_csv parses bytes in memory (never past their end: they need no terminating zero);
 * nb_load_csv reads the whole file and hands it over. One pass, with arrays sized up front from
 * a count of newlines (and the rows the bytes could hold at most), so a file of millions of
 * numbers costs one read and one scan.
 * Accepted: commas between fields, spaces or tabs around fields, LF or CRLF line ends, a
 * missing final newline, blank lines at the end, a UTF-8 byte order mark, and an optional
 * header. The first line is a header only when it clearly is one: none of its fields is a
 * number. A line of numbers and words ("0.1,0.2x,1") is data with a bad field, and its error
 * says why it was not taken for a header. Labels are integers ("3", and also "3.0" as written
 * by tools that store every column as float).
 *
 * Bytes that are not text are named for what they are rather than parsed: UTF-16 or UTF-32
 * (with or without a byte order mark), gzip, an IDX or a safetensors file, and any other file
 * with a NUL byte (a binary file), with the line and column of that byte; so are line ends of
 * a carriage return alone (old Mac OS text, which would otherwise read as one long line) and a
 * byte order mark after the file's start (invisible in a quoted field).
 *
 * Numbers become exactly the float that (float)strtod(field) gives. Most fields take a fast
 * path (below); anything unusual (very long mantissas, large exponents) goes to strtod
 * itself. Numbers are decimal: the hexadecimal ones strtod would read ("0x10") are refused, and
 * so are "nan" and "inf" (a field that looks like a number is still a number for the header
 * rule). */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "nabla.h"

/* Labels at or above this are refused rather than turned into a million-way classifier. */
#define MAX_LABEL 999999

/* Longest field quoted in an error message. */
#define QUOTE_MAX 40

typedef struct field {
    const char *s;   /* first character after leading blanks */
    size_t len;      /* without surrounding blanks */
} field;

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static field trimmed(const char *s, const char *e)
{
    while (s < e && is_blank(*s))
        s++;
    while (e > s && is_blank(e[-1]))
        e--;
    return (field){s, (size_t)(e - s)};
}

static int quote_len(field f) { return (int)(f.len > QUOTE_MAX ? QUOTE_MAX : f.len); }

static const double powers_of_ten[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The fast path for a plain decimal ([sign] digits [. digits] [e [sign] digits]) starting at
 * s: returns the end of the number and its value as (float)strtod would round it, or NULL
 * when the number needs strtod.
 *
 * Up to 2^53, the digits form an exact double, and so does 10^k for k <= 22; one correctly
 * rounded product or quotient then is exactly strtod's result (Clinger's fast path). Longer
 * mantissas (up to 19 digits, as Python prints floats) give a double within 2 ulp of the true
 * value; it still rounds to the same float unless it lies within a few ulp of a midpoint
 * between two floats, a chance of about 2^-25, and then strtod decides. */
static const char *fast_decimal(const char *s, const char *end, float *out)
{
    const char *p = s;
    int negative = 0;
    if (p < end && (*p == '+' || *p == '-'))
        negative = *p++ == '-';
    uint64_t mantissa = 0;
    int digits = 0, exponent = 0, seen_digit = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        seen_digit = 1;
        if (mantissa || *p != '0')
            digits++;
        mantissa = mantissa * 10 + (uint64_t)(*p++ - '0');
        if (digits > 19)
            return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p >= '0' && *p <= '9') {
            seen_digit = 1;
            if (mantissa || *p != '0')
                digits++;
            mantissa = mantissa * 10 + (uint64_t)(*p++ - '0');
            exponent--;
            /* Leading zeros after the point are not limited like the digits; a bound on
             * the exponent keeps it from overflowing on an absurdly long field. */
            if (digits > 19 || exponent < -1000000)
                return NULL;
        }
    }
    if (!seen_digit)
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int exp_negative = 0, e = 0, exp_digits = 0;
        if (p < end && (*p == '+' || *p == '-'))
            exp_negative = *p++ == '-';
        while (p < end && *p >= '0' && *p <= '9') {
            if (e < 10000)
                e = e * 10 + (*p - '0');
            p++;
            exp_digits++;
        }
        if (!exp_digits)
            return NULL;
        exponent += exp_negative ? -e : e;
    }
    if (exponent < -22 || exponent > 22)
        return NULL;
    double v = (double)mantissa;
    v = exponent < 0 ? v / powers_of_ten[-exponent] : v * powers_of_ten[exponent];
    if (v > FLT_MAX)
        return NULL;   /* strtod reports it: out of range */
    float f = (float)v;
    if (mantissa > (UINT64_C(1) << 53)) {
        /* Midpoints between floats are exact in double. */
        double below = ((double)nextafterf(f, 0.0f) + f) / 2;
        double above = ((double)nextafterf(f, INFINITY) + f) / 2;
        double margin = v * 0x1p-50;   /* 4 ulp */
        if (v - below <= margin || above - v <= margin)
            return NULL;
        /* Likewise near FLT_MAX: strtod's correctly rounded double may lie just above it,
         * and then the number is out of range for a float. */
        if (FLT_MAX - v <= margin)
            return NULL;
    }
    *out = negative ? -f : f;
    return p;
}

/* strtod on a whole field: 0 and the value when all of it is a number, else -1. */
static int strtod_field(field f, double *out)
{
    char buf[128];   /* strtod needs a terminated string; numbers are short */
    if (f.len == 0 || f.len >= sizeof buf)
        return -1;
    memcpy(buf, f.s, f.len);
    buf[f.len] = '\0';
    char *stop;
    double v = strtod(buf, &stop);
    if (stop != buf + f.len)
        return -1;
    *out = v;
    return 0;
}

static int is_number(field f)
{
    float fv;
    double dv;
    const char *end = f.s + f.len;
    return fast_decimal(f.s, end, &fv) == end || strtod_field(f, &dv) == 0;
}

/* An integer label: optional sign, digits, optionally ".0…". Returns 0 and the value
 * (saturated far beyond MAX_LABEL), -1 when the field is not an integer. */
static int parse_label(field f, long long *out)
{
    const char *p = f.s, *end = f.s + f.len;
    int negative = 0;
    if (p < end && (*p == '+' || *p == '-'))
        negative = *p++ == '-';
    long long v = 0;
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9') {
        if (v < 1000000000000LL)
            v = v * 10 + (*p - '0');
        p++;
    }
    if (p == digits)
        return -1;
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p == '0')
            p++;
    }
    if (p != end)
        return -1;
    *out = negative ? -v : v;
    return 0;
}

/* A line [s, e) without its line break is blank when only spaces, tabs and a CR. */
static int line_is_blank(const char *s, const char *e)
{
    while (s < e && (is_blank(*s) || *s == '\r'))
        s++;
    return s == e;
}

/* The fields of the line [s, e), at most INT_MAX (a line of gigabytes of commas). */
static int count_fields(const char *s, const char *e)
{
    int count = 1;
    for (; count < INT_MAX && (s = memchr(s, ',', (size_t)(e - s))) != NULL; s++)
        count++;
    return count;
}

/* The fields of the line [s, e) that are numbers and that are not: how many of each, and the
 * first number (for messages). */
typedef struct line_kinds {
    int numbers, others;
    field first_number;
    int first_number_index;   /* 1-based */
} line_kinds;

static line_kinds classify_fields(const char *s, const char *e)
{
    line_kinds k = {0};
    for (int index = 1;; index++) {
        const char *comma = memchr(s, ',', (size_t)(e - s));
        field f = trimmed(s, comma ? comma : e);
        if (!is_number(f)) {
            k.others++;
        } else if (k.numbers++ == 0) {
            k.first_number = f;
            k.first_number_index = index;
        }
        if (!comma)
            return k;
        s = comma + 1;
    }
}

/* "inf", "-Infinity" and the like, as opposed to a finite number too large for a double. */
static int spells_infinity(field f)
{
    const char *p = f.s;
    if (*p == '+' || *p == '-')
        p++;
    return *p == 'i' || *p == 'I';
}

/* "0x10", "-0X1p3": strtod reads C's hexadecimal numbers, but a CSV number is decimal. */
static int spells_hex(field f)
{
    const char *p = f.s, *end = f.s + f.len;
    if (p < end && (*p == '+' || *p == '-'))
        p++;
    return end - p >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
}

/* The feature in field f (careful path) of the line that starts at line_start: 0 and the
 * value, or -1 with a message. */
static int parse_feature(field f, const char *path, long line, const char *line_start,
                         int index, float *out, nb_error *err)
{
    double v;
    if (f.len == 0)
        return nb_fail(err, "%s:%ld: field %d is empty", path, line, index);
    if (spells_hex(f))
        return nb_fail(err, "%s:%ld:%ld: field %d '%.*s' is a hexadecimal number; CSV numbers "
                            "are decimal", path, line, (long)(f.s - line_start) + 1, index,
                       quote_len(f), f.s);
    if (strtod_field(f, &v) < 0)
        return nb_fail(err, "%s:%ld: field %d '%.*s' is not a number", path, line, index,
                       quote_len(f), f.s);
    if (isnan(v))
        return nb_fail(err, "%s:%ld: field %d is NaN", path, line, index);
    if (isinf(v) && spells_infinity(f))
        return nb_fail(err, "%s:%ld: field %d is infinite", path, line, index);
    if (fabs(v) > FLT_MAX)
        return nb_fail(err, "%s:%ld: field %d '%.*s' is out of range for float", path, line,
                       index, quote_len(f), f.s);
    *out = (float)v;
    return 0;
}

/* Parses the data line [p, e) of `fields` fields into row and *label. */
static int parse_row(const char *p, const char *e, int fields, const char *path, long line,
                     float *row, long long *label, nb_error *err)
{
    const char *q = p;
    for (int j = 0; j < fields - 1; j++) {
        while (q < e && is_blank(*q))
            q++;
        const char *after = fast_decimal(q, e, &row[j]);
        if (after) {
            while (after < e && is_blank(*after))
                after++;
            if (after < e && *after == ',') {
                q = after + 1;
                continue;
            }
        }
        /* Not a plain number followed by a comma: look closer. */
        const char *comma = memchr(q, ',', (size_t)(e - q));
        if (!comma || parse_feature(trimmed(q, comma), path, line, p, j + 1, &row[j], err) < 0)
            goto bad;
        q = comma + 1;
    }
    if (memchr(q, ',', (size_t)(e - q)))
        goto bad;
    field f = trimmed(q, e);
    if (f.len == 0) {
        nb_fail(err, "%s:%ld: the label is empty", path, line);
        goto bad;
    }
    if (parse_label(f, label) < 0) {
        nb_fail(err, "%s:%ld: label '%.*s' is not an integer", path, line, quote_len(f), f.s);
        goto bad;
    }
    if (*label < 0) {
        nb_fail(err, "%s:%ld: label %lld is negative", path, line, *label);
        goto bad;
    }
    if (*label > MAX_LABEL) {
        nb_fail(err, "%s:%ld: label %lld is too large (at most %d)", path, line, *label,
                MAX_LABEL);
        goto bad;
    }
    return 0;

bad:;
    /* A missing or extra column explains any bad field, so it is reported first. */
    int count = count_fields(p, e);
    if (count != fields)
        nb_fail(err, "%s:%ld: expected %d fields, found %d", path, line, fields, count);
    return -1;
}

/* Whether n bytes look like UTF-16 without a byte order mark: the text's ASCII characters
 * (all of a CSV file's but a header's) leave every other byte zero (odd bytes: little-endian;
 * even bytes: big-endian), nine in ten of them at least, and the other bytes never are.
 * Returns 'L', 'B' or 0. */
static int utf16_order(const unsigned char *p, size_t n)
{
    size_t pairs = (n < 512 ? n : 512) / 2, zero_even = 0, zero_odd = 0;
    for (size_t i = 0; i < pairs; i++) {
        zero_even += p[2 * i] == 0;
        zero_odd += p[2 * i + 1] == 0;
    }
    if (pairs == 0)
        return 0;
    if (zero_even == 0 && 10 * zero_odd >= 9 * pairs)
        return 'L';
    if (zero_odd == 0 && 10 * zero_even >= 9 * pairs)
        return 'B';
    return 0;
}

/* The same for UTF-32 without a byte order mark: of every four bytes, the three high ones of
 * an ASCII character are zero (bytes 1-3: little-endian; bytes 0-2: big-endian). */
static int utf32_order(const unsigned char *p, size_t n)
{
    size_t quads = (n < 512 ? n : 512) / 4, le = 0, be = 0, low_le_zero = 0, low_be_zero = 0;
    for (size_t i = 0; i < quads; i++) {
        const unsigned char *q = p + 4 * i;
        le += q[1] == 0 && q[2] == 0 && q[3] == 0;
        be += q[0] == 0 && q[1] == 0 && q[2] == 0;
        low_le_zero += q[0] == 0;
        low_be_zero += q[3] == 0;
    }
    if (quads == 0)
        return 0;
    if (low_le_zero == 0 && 10 * le >= 9 * quads)
        return 'L';
    if (low_be_zero == 0 && 10 * be >= 9 * quads)
        return 'B';
    return 0;
}

/* The line and column (1-based, in bytes) of byte `at` of the text p. */
static void line_and_column(const unsigned char *p, const unsigned char *at, long *line,
                            long *column)
{
    const unsigned char *start = p;
    *line = 1;
    for (const unsigned char *q = p; (q = memchr(q, '\n', (size_t)(at - q))) != NULL; q++) {
        (*line)++;
        start = q + 1;
    }
    *column = (long)(at - start) + 1;
}

/* The first carriage return that does not begin a CRLF line end (nor ends the file), or NULL:
 * old Mac OS text ends its lines with CR alone, which would make the whole file one line. */
static const unsigned char *bare_cr(const unsigned char *p, size_t size)
{
    const unsigned char *end = p + size;
    for (const unsigned char *q = p; (q = memchr(q, '\r', (size_t)(end - q))) != NULL; q++)
        if (q + 1 < end && q[1] != '\n')
            return q;
    return NULL;
}

/* A UTF-8 byte order mark after the start of the file (two files joined, say): invisible in
 * a message that quotes the field it sticks to. */
static const unsigned char *inner_bom(const unsigned char *p, size_t size)
{
    const unsigned char *end = p + size;
    for (const unsigned char *q = p + 1; q + 3 <= end; q++) {
        q = memchr(q, 0xEF, (size_t)(end - q));
        if (!q || q + 3 > end)
            return NULL;
        if (q[1] == 0xBB && q[2] == 0xBF)
            return q;
    }
    return NULL;
}

/* Refuses bytes that are not CSV text, saying what they are: text in UTF-16 or UTF-32, a
 * compressed, IDX or safetensors file, a binary file (a NUL byte, with its line and column),
 * line ends of a carriage return alone, a byte order mark in the middle of the text. 0 when
 * the bytes may be text. */
static int check_text(const unsigned char *p, size_t size, const char *path, nb_error *err)
{
    static const char convert[] = "nabla reads CSV as UTF-8 (or ASCII): convert it with iconv";
    if (size >= 4 && (memcmp(p, "\xFF\xFE\0\0", 4) == 0 || memcmp(p, "\0\0\xFE\xFF", 4) == 0))
        return nb_fail(err, "%s: UTF-32 text (it starts with a UTF-32 byte order mark); %s -f "
                       "UTF-32 -t UTF-8", path, convert);
    if (size >= 2 && (memcmp(p, "\xFF\xFE", 2) == 0 || memcmp(p, "\xFE\xFF", 2) == 0))
        return nb_fail(err, "%s: UTF-16 text (it starts with a UTF-16 byte order mark); %s -f "
                       "UTF-16 -t UTF-8", path, convert);
    if (size >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return nb_fail(err, "%s: gzip-compressed data, not CSV text: decompress it first "
                       "(gunzip), or for IDX files give --data their directory", path);
    /* IDX: two zero bytes, the element type (0x08 bytes ... 0x0E doubles), 1 to 4 dimensions. */
    if (size >= 4 && p[0] == 0 && p[1] == 0 && p[2] >= 0x08 && p[2] <= 0x0E && p[3] >= 1 &&
        p[3] <= 4)
        return nb_fail(err, "%s: an IDX file (the MNIST format), not CSV text: give --data the "
                       "directory that holds the IDX files", path);
    /* safetensors: an 8-byte little-endian header length, then the header's JSON object. */
    if (size >= 10 && p[8] == '{' && p[7] == 0 && p[6] == 0 && p[5] == 0 && p[4] == 0)
        return nb_fail(err, "%s: a safetensors file (a model or checkpoint), not CSV text", path);
    int order = utf32_order(p, size);
    if (order)
        return nb_fail(err, "%s: UTF-32 text (%s-endian, without a byte order mark); %s -f "
                       "UTF-32%s -t UTF-8", path, order == 'L' ? "little" : "big", convert,
                       order == 'L' ? "LE" : "BE");
    order = utf16_order(p, size);
    if (order)
        return nb_fail(err, "%s: UTF-16 text (%s-endian, without a byte order mark); %s -f "
                       "UTF-16%s -t UTF-8", path, order == 'L' ? "little" : "big", convert,
                       order == 'L' ? "LE" : "BE");
    long line, column;
    const unsigned char *nul = memchr(p, 0, size);
    if (nul) {
        line_and_column(p, nul, &line, &column);
        return nb_fail(err, "%s:%ld:%ld: a NUL byte: this looks like a binary file, not CSV "
                       "text", path, line, column);
    }
    const unsigned char *cr = bare_cr(p, size);
    if (cr) {
        line_and_column(p, cr, &line, &column);
        return nb_fail(err, "%s:%ld:%ld: a carriage return (CR) that does not end a line with "
                       "a line feed: lines must end with LF or CRLF%s", path, line, column,
                       memchr(p, '\n', size) ? ""
                                             : "; this file's end with CR alone (old Mac OS): "
                                               "convert them with tr '\\r' '\\n'");
    }
    const unsigned char *bom = inner_bom(p, size);
    if (bom) {
        line_and_column(p, bom, &line, &column);
        return nb_fail(err, "%s:%ld:%ld: a byte order mark (U+FEFF, bytes EF BB BF) in the "
                       "middle of the text (were two files joined?): only the file's very "
                       "start may have one", path, line, column);
    }
    return 0;
}

int nb_parse_csv(const void *bytes, size_t size, const char *what, nb_dataset *out,
                 nb_error *err)
{
    memset(out, 0, sizeof *out);
    const char *path = what ? what : "csv";
    if (size == 0)
        return nb_fail(err, "%s: empty file", path);
    if (check_text(bytes, size, path, err) != 0)
        return -1;
    /* The text is not terminated: every scan below stops at end. */
    const char *p = bytes, *end = p + size;
    if (size >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;   /* UTF-8 byte order mark */

    /* An upper bound on the rows: one per newline, plus a last line without one. */
    size_t max_rows = 1;
    for (const char *q = p; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
        max_rows++;

    float *values = NULL;
    int32_t *labels = NULL;
    int fields = 0, features = 0, rows = 0, largest = -1;
    long line = 0;
    long blank_line = 0;   /* the first blank line; only blank lines may follow it */
    line_kinds first = {0}; /* of the first line, when it is data */

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;
        const char *e = nl ? nl : end;
        if (e > p && e[-1] == '\r')
            e--;
        line++;
        if (line_is_blank(p, e)) {
            if (!blank_line)
                blank_line = line;
            p = next;
            continue;
        }
        if (blank_line) {
            nb_fail(err, "%s:%ld: empty line", path, blank_line);
            goto fail;
        }

        if (fields == 0) {
            /* The first line fixes the column count, and may be a header. */
            fields = count_fields(p, e);
            if (fields == INT_MAX) {
                nb_fail(err, "%s:%ld: too many fields", path, line);
                goto fail;
            }
            if (fields < 2) {
                nb_fail(err, "%s:%ld: expected at least 2 fields (features, then a label), "
                        "found %d", path, line, fields);
                goto fail;
            }
            features = fields - 1;
            /* A data row holds `fields` non-empty fields and the commas between them, so the
             * rest of the file has room for at most this many; without this bound a wide
             * header followed by many blank lines would reserve gigabytes. */
            size_t room = (size_t)(end - p) / (2 * (size_t)fields - 1) + 1;
            if (room < max_rows)
                max_rows = room;
            if (max_rows > (size_t)INT32_MAX ||
                max_rows > SIZE_MAX / sizeof(float) / (size_t)features) {
                nb_fail(err, "%s: too many values", path);
                goto fail;
            }
            values = malloc(max_rows * (size_t)features * sizeof *values);
            labels = malloc(max_rows * sizeof *labels);
            if (!values || !labels) {
                nb_fail(err, "%s: out of memory", path);
                goto fail;
            }
            first = classify_fields(p, e);
            if (first.numbers == 0) {
                out->header = 1;
                p = next;
                continue;
            }
        }

        long long label;
        if (parse_row(p, e, fields, path, line, values + (size_t)rows * (size_t)features,
                      &label, err) < 0) {
            if (rows == 0 && first.numbers > 0 && first.others > 0) {
                /* A mix of numbers and words: a damaged first row, or a header with a number
                 * in it; either way not clearly a header, and the message says so. */
                char why[sizeof err->msg];
                snprintf(why, sizeof why, "%s", err->msg);
                nb_fail(err, "%s (line %ld was not taken for a header: field %d '%.*s' is a "
                        "number, and a header has none)", why, line, first.first_number_index,
                        quote_len(first.first_number), first.first_number.s);
            }
            goto fail;
        }
        labels[rows++] = (int32_t)label;
        if (label > largest)
            largest = (int)label;
        p = next;
    }

    if (fields == 0) {
        nb_fail(err, "%s: empty file", path);
        goto fail;
    }
    if (rows == 0) {
        nb_fail(err, "%s: no data rows after the header", path);
        goto fail;
    }
    /* Give back the rows reserved for lines that turned out blank or a header. */
    float *v_fit = realloc(values, (size_t)rows * (size_t)features * sizeof *values);
    int32_t *l_fit = realloc(labels, (size_t)rows * sizeof *labels);
    out->values = v_fit ? v_fit : values;
    out->labels = l_fit ? l_fit : labels;
    out->n = rows;
    out->features = features;
    out->classes = largest + 1;
    return 0;

fail:
    free(values);
    free(labels);
    memset(out, 0, sizeof *out);
    return -1;
}

int nb_load_csv(const char *path, nb_dataset *out, nb_error *err)
{
    unsigned char *bytes;
    size_t size;
    memset(out, 0, sizeof *out);
    if (nb_read_file(path, &bytes, &size, err) < 0)
        return -1;
    int rc = nb_parse_csv(bytes, size, path, out, err);
    free(bytes);
    return rc;
}
