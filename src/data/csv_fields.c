/* Records and fields of CSV text: a delimiter (',' ';' or tab) between fields, spaces (and tabs,
 * unless tab is the delimiter) around them, LF or CRLF line ends, and RFC 4180 quotes: a field
 * in double quotes may hold the delimiter, line breaks and doubled quotes ("" for one "). Text
 * after a closing quote, or a quote that never closes, is an error with its line and column.
 * A quote inside an unquoted field is an ordinary character (5'10"). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "data/csv_internal.h"

static int is_blank(char c, char delimiter) { return c == ' ' || (c == '\t' && delimiter != '\t'); }

void csv_cursor_init(csv_cursor *c, const char *p, const char *end, long line, char delimiter,
                     const char *path)
{
    c->p = p;
    c->end = end;
    c->line_start = p;
    c->line = line;
    c->delimiter = delimiter;
    c->path = path;
}

const char *csv_line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? nl : end;
}

int csv_line_is_blank(const char *p, const char *end)
{
    const char *e = csv_line_end(p, end);
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    return p == e;
}

/* Ends the field at p: past a delimiter (*more = 1), or past the line end (*more = 0). The
 * caller has checked that p is at one of them (a CR is always part of a CRLF or the file's
 * last byte: csv_check_text refuses any other). */
static void end_field(csv_cursor *c, const char *p, int *more)
{
    if (p < c->end && *p == c->delimiter) {
        *more = 1;
        c->p = p + 1;
        return;
    }
    *more = 0;
    if (p < c->end && *p == '\r')
        p++;
    if (p < c->end && *p == '\n') {
        p++;
        c->line++;
        c->line_start = p;
    }
    c->p = p;
}

static int at_field_end(const csv_cursor *c, const char *p)
{
    return p == c->end || *p == c->delimiter || *p == '\n' || *p == '\r';
}

int csv_next_field(csv_cursor *c, csv_field *f, int *more, nb_error *err)
{
    const char *p = c->p, *end = c->end;
    char d = c->delimiter;
    while (p < end && is_blank(*p, d))
        p++;
    f->line = c->line;
    f->column = (long)(p - c->line_start) + 1;
    f->quoted = f->escaped = 0;
    if (p < end && *p == '"') {
        const char *s = ++p;
        for (;;) {
            const char *q = memchr(p, '"', (size_t)(end - p));
            if (!q)
                return nb_fail(err, "%s:%ld:%ld: a quoted field without its closing quote",
                               c->path, f->line, f->column);
            /* Line breaks inside the quotes: later fields are on later lines. */
            for (const char *nl = p; (nl = memchr(nl, '\n', (size_t)(q - nl))) != NULL; nl++) {
                c->line++;
                c->line_start = nl + 1;
            }
            if (q + 1 < end && q[1] == '"') {
                f->escaped = 1;
                p = q + 2;
                continue;
            }
            f->s = s;
            f->len = (size_t)(q - s);
            p = q + 1;
            break;
        }
        f->quoted = 1;
        while (p < end && is_blank(*p, d))
            p++;
        if (!at_field_end(c, p))
            return nb_fail(err, "%s:%ld:%ld: '%c' after the closing quote of a quoted field "
                           "(a quote inside quotes is written twice: \"\")", c->path, c->line,
                           (long)(p - c->line_start) + 1, *p);
        end_field(c, p, more);
        return 0;
    }
    const char *s = p;
    while (p < end && *p != d && *p != '\n')
        p++;
    const char *e = p;
    while (e > s && (is_blank(e[-1], d) || e[-1] == '\r'))
        e--;
    f->s = s;
    f->len = (size_t)(e - s);
    end_field(c, p, more);
    return 0;
}

char *csv_field_text(const csv_field *f)
{
    char *t = malloc(f->len + 1);
    if (!t)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < f->len; i++) {
        t[n++] = f->s[i];
        if (f->escaped && f->s[i] == '"')
            i++;   /* the second quote of a pair */
    }
    t[n] = '\0';
    return t;
}

/* Lines looked at to detect the delimiter. */
#define DETECT_LINES 50

/* How the first lines split on delimiter d: the same number of fields on each (else 0), and
 * how many of the fields are numbers. */
static int split_evenly(const char *p, const char *end, char d, long *numbers)
{
    csv_cursor c;
    csv_cursor_init(&c, p, end, 1, d, "");
    nb_error ignored;
    int fields = 0;
    *numbers = 0;
    for (int line = 0; line < DETECT_LINES && c.p < end; line++) {
        if (csv_line_is_blank(c.p, end))
            break;
        int count = 0, more = 1;
        while (more) {
            csv_field f;
            if (csv_next_field(&c, &f, &more, &ignored) != 0)
                return 0;
            if (count < INT_MAX)
                count++;
            *numbers += csv_looks_numeric(f.s, f.len, d == ';');
        }
        if (fields == 0)
            fields = count;
        else if (count != fields)
            return 0;
    }
    return fields > 1 ? fields : 0;
}

char csv_detect_delimiter(const char *p, const char *end)
{
    static const char candidates[] = {',', ';', '\t'};
    char best = ',';
    int best_fields = 0;
    long best_numbers = -1;
    for (int i = 0; i < 3; i++) {
        long numbers;
        int fields = split_evenly(p, end, candidates[i], &numbers);
        if (fields == 0)
            continue;
        if (numbers > best_numbers || (numbers == best_numbers && fields > best_fields)) {
            best = candidates[i];
            best_fields = fields;
            best_numbers = numbers;
        }
    }
    return best;
}
