/* The report's text buffer and HTML escaping. */
#include "report_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_free(strbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int reserve(strbuf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) {
        b->failed = 1;
        return -1;
    }
    b->data = grown;
    b->cap = cap;
    return 0;
}

void sb_putn(strbuf *b, const char *s, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sb_puts(strbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

void sb_printf(strbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        sb_putn(b, small, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* The length of the valid UTF-8 sequence at s (1 to 4), or 0 if s does not start one.
 * Overlong forms, surrogates and code points beyond U+10FFFF are invalid. */
static int utf8_sequence(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    int n;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

int utf8_chars(const char *s)
{
    int count = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; count++) {
        int n = utf8_sequence(p);
        p += n ? n : 1;
    }
    return count;
}

/* Escapes bytes [s, end). */
static void escape_range(strbuf *b, const unsigned char *s, const unsigned char *end)
{
    while (s < end) {
        unsigned c = *s;
        int n = utf8_sequence(s);
        if (n == 0 || s + n > end || (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
            sb_puts(b, "\xef\xbf\xbd"); /* U+FFFD */
            s++;
            continue;
        }
        switch (c) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        case '\'': sb_puts(b, "&#39;"); break;
        default: sb_putn(b, (const char *)s, (size_t)n); break;
        }
        s += n;
    }
}

void sb_escape(strbuf *b, const char *s)
{
    if (s)
        escape_range(b, (const unsigned char *)s, (const unsigned char *)s + strlen(s));
}

/* The byte offset of character number k of s (or its end). */
static size_t char_offset(const char *s, int k)
{
    const unsigned char *p = (const unsigned char *)s;
    for (int i = 0; i < k && *p; i++) {
        int n = utf8_sequence(p);
        p += n ? n : 1;
    }
    return (size_t)((const char *)p - s);
}

void sb_escape_clipped(strbuf *b, const char *s, int max_chars, int from_end)
{
    if (!s)
        return;
    int n = utf8_chars(s);
    if (n <= max_chars || max_chars < 2) {
        sb_escape(b, s);
        return;
    }
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s);
    if (from_end) {
        sb_puts(b, "\xe2\x80\xa6"); /* … */
        escape_range(b, u + char_offset(s, n - (max_chars - 1)), u + len);
    } else {
        escape_range(b, u, u + char_offset(s, max_chars - 1));
        sb_puts(b, "\xe2\x80\xa6");
    }
}
