/* util/check.c — sc_fatal(): the message of a broken invariant, then
 * abort(). Writes with one fprintf; allocates nothing. */
#include "util/check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void sc_fatal(const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "secirc: internal error at %s:%d: %s\n", file, line, msg);
    abort();
}
