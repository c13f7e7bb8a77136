/* util/log.h — internal logging macros over secirc/log.h.
 * One line per event: SC_LOG_INFO_EV("link.up", "peer=%s path=%s", ...).
 * Never pass key material or message plaintext here. */
#ifndef SC_UTIL_LOG_H
#define SC_UTIL_LOG_H

#include <stdint.h>

#include "secirc/log.h"

void sc_log(enum sc_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sc_log_enabled(level) ((level) >= sc_log_get_level())

/* Rate limiter for log lines that a hostile peer could trigger at will:
 * at most one line per `interval_ms`; the next line that passes reports how
 * many were suppressed in between. */
struct sc_log_ratelimit {
    uint64_t interval_ms;
    uint64_t last_ms;
    uint64_t suppressed;
};
#define SC_LOG_RATELIMIT_INIT(ms) {(ms), 0, 0}

/* Returns the number of suppressed lines to report (>= 0) when a line may be
 * written now, or -1 when this one must be dropped. */
long long sc_log_ratelimit_pass(struct sc_log_ratelimit *rl, uint64_t now_ms);

#endif
