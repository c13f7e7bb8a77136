/* secirc/log.h — where libsecirc's log lines go.
 *
 * Lines are one event each: an event name and key=value fields, e.g.
 *   event=link.closed peer=ab12cd34 reason=heartbeat_timeout
 * Keys, nonces and plaintext are never logged. By default lines go to stderr
 * as text at level INFO and above; a program embedding the library may send
 * them elsewhere with sc_log_set_handler(). */
#ifndef SECIRC_LOG_H
#define SECIRC_LOG_H

#include <stdbool.h>

enum sc_log_level {
    SC_LOG_DEBUG = 0,
    SC_LOG_INFO = 1,
    SC_LOG_WARN = 2,
    SC_LOG_ERROR = 3,
    SC_LOG_OFF = 4,
};

/* Called once per line at or above the current level. `fields` is the
 * key=value text without the event name; it has no newline. */
typedef void (*sc_log_handler)(enum sc_log_level level, const char *event,
                               const char *fields, void *arg);

void sc_log_set_level(enum sc_log_level level);
enum sc_log_level sc_log_get_level(void);
/* Text lines (false) or one JSON object per line (true) on stderr. */
void sc_log_set_json(bool json);
/* NULL restores the stderr writer. */
void sc_log_set_handler(sc_log_handler handler, void *arg);
/* "debug", "info", "warn", "error", "off" -> level; returns -1 if unknown. */
int sc_log_level_parse(const char *name);
const char *sc_log_level_name(enum sc_log_level level);

#endif
