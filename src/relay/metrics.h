/* relay/metrics.h — the daemon's counters as Prometheus text exposition
 * format 0.0.4 (docs/CONFIG.md lists every family). Pure: it formats a
 * snapshot that relay/http.c collects; it never reads the daemon, the
 * manager or a clock itself, and never drops a family because it is zero. */
#ifndef SC_RELAY_METRICS_H
#define SC_RELAY_METRICS_H

#include <stdint.h>

#include "relay/daemon.h"
#include "secirc/error.h"
#include "secirc/listener.h"
#include "secirc/manager.h"

struct evbuffer;

/* Path states and transports counted in secirc_paths (manager.h has no
 * count constants: the last value of each enum, plus one). */
#define SC_METRICS_PATH_STATES ((unsigned)SC_PATH_RECONNECTING + 1u)
#define SC_METRICS_PATH_TYPES ((unsigned)SC_PATH_WEBSOCKET + 1u)
/* Buckets of the RTT histogram (struct sc_daemon_metrics.rtt_le). */
#define SC_METRICS_RTT_BUCKETS (sizeof(((struct sc_daemon_metrics *)0)->rtt_le) / sizeof(uint64_t))

/* Everything one scrape shows, read in one event-loop turn. */
struct sc_metrics_snapshot {
    char relay_id_hex[2 * SC_RELAY_ID_BYTES + 1];
    uint64_t uptime_s;
    uint32_t min_connections, max_connections; /* as configured */
    struct sc_manager_status status;
    struct sc_listener_stats listener;
    struct sc_daemon_metrics daemon;
    double rtt_bounds_s[SC_METRICS_RTT_BUCKETS]; /* sc_daemon_rtt_bounds_s */
    uint32_t paths[SC_METRICS_PATH_STATES][SC_METRICS_PATH_TYPES]; /* [state][transport] */
    uint64_t reconnects; /* summed over the paths known now */
};

/* Appends the whole exposition (every family, "# HELP" and "# TYPE" first,
 * each family once). 0, or SC_ENOMEM (out may then hold part of it). */
int sc_metrics_format(const struct sc_metrics_snapshot *s, struct evbuffer *out) SC_MUST_CHECK;

/* Appends `value` as a label value of the exposition format: backslash,
 * double quote and line feed escaped as \\, \" and \n; other bytes as they
 * are. 0 or SC_ENOMEM. */
int sc_metrics_append_label_value(struct evbuffer *out, const char *value) SC_MUST_CHECK;

/* Appends `v` as the format's float: the shortest decimal that reads back
 * as the same double, "+Inf", "-Inf" or "NaN". 0 or SC_ENOMEM. */
int sc_metrics_append_double(struct evbuffer *out, double v) SC_MUST_CHECK;

#endif
