/* util/check.h — invariant checks that survive NDEBUG. A broken invariant
 * is a bug in secirc, never bad input: it prints where and why, then
 * aborts. Input from files or peers is never checked with this. */
#ifndef SC_UTIL_CHECK_H
#define SC_UTIL_CHECK_H

__attribute__((noreturn, format(printf, 3, 4))) void sc_fatal(const char *file, int line,
                                                              const char *fmt, ...);

#define SC_CHECK(cond, ...)                             \
    do {                                                \
        if (!(cond))                                    \
            sc_fatal(__FILE__, __LINE__, __VA_ARGS__);  \
    } while (0)

#endif
