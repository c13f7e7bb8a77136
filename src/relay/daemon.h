/* relay/daemon.h — the relay daemon (secircd): its configuration made into
 * a running connection manager, mesh relaying, logging, signals and
 * reload, with the operations the control socket (relay/control.c) and the
 * HTTP server (relay/http.c) offer. Those two call only what is declared
 * here; they never reach into the manager or the links themselves. */
#ifndef SC_RELAY_DAEMON_H
#define SC_RELAY_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "relay/config.h"
#include "secirc/manager.h"

struct event_base;
struct sc_daemon;

/* Runs a relay in the foreground until SIGTERM/SIGINT; `config_path` NULL
 * runs on the embedded default (loopback listener, identity under a data
 * directory named in the first log lines). Returns the exit status:
 * 0 after a clean stop, 1 when it could not start, 2 for a bad config. */
int sc_daemon_run(const char *config_path);

/* --- for the control socket and the HTTP server -------------------------- */

struct event_base *sc_daemon_base(const struct sc_daemon *d);
const struct sc_relay_config *sc_daemon_config(const struct sc_daemon *d);
struct sc_manager *sc_daemon_manager(const struct sc_daemon *d);

/* The seed's status object:
 *   {"relay_id": hex, "uptime_s": n, "total_connections": n,
 *    "active_connections": n, "failed_connections": n, "connected_peers": n,
 *    "min_connections": n, "max_connections": n,
 *    "listen": [{"type": "tcp", "address": a, "port": p}, …],
 *    "tor": {"onion_address": "….onion" or null, "state": "off"|"connecting"|
 *            "authenticating"|"adding"|"published"|"unavailable"},
 *    "stats": {"total_messages_sent": n, "total_messages_received": n,
 *              "total_bytes_sent": n, "total_bytes_received": n,
 *              "messages_undelivered": n, "messages_forwarded": n,
 *              "messages_deduplicated": n, "evictions": n,
 *              "duplicates_closed": n, "rekeys": n, "key_rotations": n}}
 * A new reference; never NULL. */
json_t *sc_daemon_status_json(struct sc_daemon *d);
/* The seed's "available connections": an array with one object per path:
 *   {"path_id", "relay_id" (hex or null), "type", "host", "port", "state",
 *    "direction" ("outbound"|"inbound"), "authenticated", "priority",
 *    "latency_ms", "jitter_ms" (decimals; 0 = not measured yet),
 *    "last_seen" (unix s or null), "uptime_s",
 *    "heartbeats_missed", "messages_sent", "messages_received",
 *    "bytes_sent", "bytes_received", "reconnects", "failures",
 *    "last_reason", "next_attempt_in_ms"}
 * "host" is "-" for inbound paths unless privacy.log_peer_addresses. */
json_t *sc_daemon_peers_json(struct sc_daemon *d);
/* {"relay_id", "verdict", "text", "path_id", "type", "since", "until",
 *  "failures", "last_reason", "other", "other_priority", "priority"}, or
 * NULL with an error when the ID is not 64 hex digits. */
json_t *sc_daemon_explain_json(struct sc_daemon *d, const char *relay_id_hex, char *err,
                               size_t errlen);

/* Messages are JSON values given as text (e.g. the seed's
 * {"type":"relay_message","content":…,"timestamp":…}): validated (strict
 * JSON, at most max_message_bytes once compact), carried as compact UTF-8.
 * sc_daemon_send returns 0 and the message ID (32 hex digits) or an error
 * with a message; broadcast returns the number of peers it went to. */
int sc_daemon_send(struct sc_daemon *d, const char *relay_id_hex, const char *json_text,
                   char msg_id_hex[33], char *err, size_t errlen);
int sc_daemon_broadcast(struct sc_daemon *d, const char *json_text, char msg_id_hex[33],
                        char *err, size_t errlen);

int sc_daemon_connect(struct sc_daemon *d, const char *relay_id_hex, char *err, size_t errlen);
int sc_daemon_disconnect(struct sc_daemon *d, const char *relay_id_hex, char *err, size_t errlen);
/* Reloads the configuration file (as SIGHUP does). 0, or an error with
 * the FILE:LINE:COL message; the running configuration is kept then. */
int sc_daemon_reload(struct sc_daemon *d, char *err, size_t errlen);
int sc_daemon_rotate_link_key(struct sc_daemon *d, char *err, size_t errlen);

/* Events for `watch` subscribers, as JSON objects (the callback gets its
 * own reference and must json_decref it):
 *   {"event":"message", "from": hex, "id": hex32, "broadcast": bool,
 *    "hop_limit": n, "body": <the JSON value>}
 *   {"event":"path", "path_id", "relay_id", "type", "state", "old_state",
 *    "reason"}
 *   {"event":"undelivered", "to": hex, "id": hex32, "reason": r}
 *   {"event":"onion", "published": bool, "address": "….onion"?, "reason": r?} */
typedef void (*sc_daemon_event_cb)(json_t *event, void *arg);
/* Returns a subscription handle (> 0), or 0 when out of memory. */
uint64_t sc_daemon_subscribe(struct sc_daemon *d, sc_daemon_event_cb cb, void *arg);
void sc_daemon_unsubscribe(struct sc_daemon *d, uint64_t handle);

/* Counters for /metrics beyond the manager's status. */
struct sc_daemon_metrics {
    uint64_t messages_forwarded;     /* mesh: copies sent on for others */
    uint64_t messages_deduplicated;  /* mesh: copies dropped as seen */
    uint64_t messages_delivered;     /* to this relay (watch) */
    uint64_t messages_invalid;       /* not JSON: dropped, not forwarded */
    uint64_t handshakes_ok;          /* links authenticated, both directions */
    uint64_t handshakes_failed[SC_REASON_COUNT]; /* by reason, both directions */
    /* RTT histogram of heartbeats, milliseconds: counts of samples <= each
     * bound (cumulative, Prometheus style), then the sum and count. */
    uint64_t rtt_le[12];
    double rtt_sum_s;
    uint64_t rtt_count;
    uint64_t reloads, reloads_failed;
};
extern const double sc_daemon_rtt_bounds_s[12];
void sc_daemon_get_metrics(const struct sc_daemon *d, struct sc_daemon_metrics *out);

#endif
