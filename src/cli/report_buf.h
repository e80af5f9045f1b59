/* nabla report: the growing text buffer the page is written into, and escaping of text that
 * comes from files (titles, paths, parameters) for HTML and inline SVG. */
#ifndef NABLA_CLI_REPORT_BUF_H
#define NABLA_CLI_REPORT_BUF_H

#include <stddef.h>

/* Appends never fail loudly: out of memory sets `failed`, later appends do nothing, and the
 * writer checks `failed` once at the end. */
typedef struct strbuf {
    char *data;   /* NUL-terminated when not NULL */
    size_t len, cap;
    int failed;
} strbuf;

void sb_free(strbuf *b);
void sb_puts(strbuf *b, const char *s);
void sb_putn(strbuf *b, const char *s, size_t n);
void sb_printf(strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* s escaped for HTML text and attribute values: & < > " ' become entities, control
 * characters other than tab and newline and bytes that are not valid UTF-8 become U+FFFD, so
 * that whatever a file holds, the page stays well-formed UTF-8. NULL appends nothing. */
void sb_escape(strbuf *b, const char *s);
/* The same for at most max_chars characters of s: a longer s keeps its first ones (or, with
 * from_end, its last ones) behind an ellipsis. For legends and axis labels, whose room is
 * fixed. */
void sb_escape_clipped(strbuf *b, const char *s, int max_chars, int from_end);

/* Characters (UTF-8 code points) in s; an invalid byte counts as one. */
int utf8_chars(const char *s);

#endif /* NABLA_CLI_REPORT_BUF_H */
