/* HTML escaping for the report (html_escape.h). */
#include "cli/report/html_escape.h"

#include <string.h>

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
static void escape_range(nb_strbuf *b, const unsigned char *s, const unsigned char *end)
{
    while (s < end) {
        unsigned c = *s;
        int n = utf8_sequence(s);
        if (n == 0 || s + n > end || (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
            nb_sb_puts(b, "\xef\xbf\xbd"); /* U+FFFD */
            s++;
            continue;
        }
        switch (c) {
        case '&': nb_sb_puts(b, "&amp;"); break;
        case '<': nb_sb_puts(b, "&lt;"); break;
        case '>': nb_sb_puts(b, "&gt;"); break;
        case '"': nb_sb_puts(b, "&quot;"); break;
        case '\'': nb_sb_puts(b, "&#39;"); break;
        default: nb_sb_putn(b, (const char *)s, (size_t)n); break;
        }
        s += n;
    }
}

void html_escape(nb_strbuf *b, const char *s)
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

void html_escape_clipped(nb_strbuf *b, const char *s, int max_chars, int from_end)
{
    if (!s)
        return;
    int n = utf8_chars(s);
    if (n <= max_chars || max_chars < 2) {
        html_escape(b, s);
        return;
    }
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s);
    if (from_end) {
        nb_sb_puts(b, "\xe2\x80\xa6"); /* … */
        escape_range(b, u + char_offset(s, n - (max_chars - 1)), u + len);
    } else {
        escape_range(b, u, u + char_offset(s, max_chars - 1));
        nb_sb_puts(b, "\xe2\x80\xa6");
    }
}
