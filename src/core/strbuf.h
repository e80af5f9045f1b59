/* A growing text buffer (not part of the public API): a saved model's metadata values, the
 * report's pages, predict's HTML.
 *
 * Appends never fail loudly: out of memory sets `failed`, later appends do nothing, and the
 * writer checks `failed` once at the end. A zeroed nb_strbuf is an empty one. */
#ifndef NABLA_STRBUF_H
#define NABLA_STRBUF_H

#include <stddef.h>

typedef struct nb_strbuf {
    char *data;   /* NUL-terminated when not NULL; NULL until something is appended */
    size_t len, cap;
    int failed;
} nb_strbuf;

void nb_sb_free(nb_strbuf *b);
void nb_sb_puts(nb_strbuf *b, const char *s);
void nb_sb_putn(nb_strbuf *b, const char *s, size_t n);
void nb_sb_printf(nb_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif /* NABLA_STRBUF_H */
