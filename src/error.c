/* Error messages: one line, filled by the function that failed, printed by the caller. */
#include <stdarg.h>
#include <stdio.h>

#include "nabla.h"

int nb_fail(nb_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}
