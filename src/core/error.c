/* Error messages: one line, filled by the function that failed, printed by the caller. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nabla.h"

/* Messages quote what came from outside (tensor names, metadata values, CSV fields, paths), and
 * those may hold line breaks, escape sequences or other control bytes. Written out as \n, \t,
 * \xHH, they keep the message on one line and the terminal in its state; a byte order mark,
 * invisible, is written \ufeff. */
static void escape_controls(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t j = 0;
    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;
        char esc[6];
        size_t len = 0;
        if (c == 0xEF && (unsigned char)in[1] == 0xBB && (unsigned char)in[2] == 0xBF) {
            /* A byte order mark (U+FEFF) is invisible where it is printed. */
            memcpy(esc, "\\ufeff", 6);
            len = 6;
            in += 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[len++] = '\\';
            esc[len++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            esc[len++] = '\\';
            esc[len++] = 'x';
            esc[len++] = hex[c >> 4];
            esc[len++] = hex[c & 15];
        } else {
            esc[len++] = (char)c;
        }
        if (j + len >= cap)
            break;
        for (size_t k = 0; k < len; k++)
            out[j++] = esc[k];
    }
    out[j] = '\0';
}

int nb_fail(nb_error *err, const char *fmt, ...)
{
    if (err) {
        char raw[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        escape_controls(raw, err->msg, sizeof err->msg);
    }
    return -1;
}
