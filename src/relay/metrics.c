/* relay/metrics.c — Prometheus text exposition format 0.0.4 of a metrics
 * snapshot: one "# HELP" and one "# TYPE" line per family, then its samples;
 * labelled families list every label value they can have, so each series
 * exists from the first scrape on. Formats only; never reads live state. */
#include "relay/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

_Static_assert(SC_METRICS_RTT_BUCKETS == sizeof sc_daemon_rtt_bounds_s / sizeof(double),
               "one bound per RTT bucket");

/* The writer keeps the first failure so the formatting code reads straight. */
struct writer {
    struct evbuffer *out;
    int err;
};

static void put(struct writer *w, const char *s)
{
    if (w->err == 0 && evbuffer_add(w->out, s, strlen(s)) != 0)
        w->err = SC_ENOMEM;
}

static void putf(struct writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct writer *w, const char *fmt, ...)
{
    if (w->err != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (evbuffer_add_vprintf(w->out, fmt, ap) < 0)
        w->err = SC_ENOMEM;
    va_end(ap);
}

/* Escapes backslash and line feed, and the double quote too when `quote`
 * (label values escape all three, HELP text the first two). */
static int append_escaped(struct evbuffer *out, const char *s, bool quote)
{
    const char *run = s;
    for (const char *p = s;; p++) {
        const char *esc = NULL;
        if (*p == '\\')
            esc = "\\\\";
        else if (*p == '\n')
            esc = "\\n";
        else if (*p == '"' && quote)
            esc = "\\\"";
        else if (*p != '\0')
            continue;
        if (p > run && evbuffer_add(out, run, (size_t)(p - run)) != 0)
            return SC_ENOMEM;
        if (esc == NULL)
            return 0;
        if (evbuffer_add(out, esc, strlen(esc)) != 0)
            return SC_ENOMEM;
        run = p + 1;
    }
}

int sc_metrics_append_label_value(struct evbuffer *out, const char *value)
{
    return append_escaped(out, value, true);
}

int sc_metrics_append_double(struct evbuffer *out, double v)
{
    char buf[40];
    if (isnan(v))
        snprintf(buf, sizeof buf, "NaN");
    else if (isinf(v))
        snprintf(buf, sizeof buf, "%s", v > 0 ? "+Inf" : "-Inf");
    else
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    return evbuffer_add(out, buf, strlen(buf)) == 0 ? 0 : SC_ENOMEM;
}

static void family(struct writer *w, const char *name, const char *type, const char *help)
{
    putf(w, "# HELP %s ", name);
    if (w->err == 0)
        w->err = append_escaped(w->out, help, false);
    putf(w, "\n# TYPE %s %s\n", name, type);
}

/* One sample with up to two labels (a NULL key ends the list). */
static void sample(struct writer *w, const char *name, const char *k1, const char *v1,
                   const char *k2, const char *v2, uint64_t value)
{
    put(w, name);
    const char *keys[2] = {k1, k2}, *vals[2] = {v1, v2};
    for (int i = 0; i < 2 && keys[i] != NULL; i++) {
        putf(w, "%s%s=\"", i == 0 ? "{" : ",", keys[i]);
        if (w->err == 0)
            w->err = sc_metrics_append_label_value(w->out, vals[i]);
        put(w, "\"");
    }
    putf(w, "%s %llu\n", k1 != NULL ? "}" : "", (unsigned long long)value);
}

static void scalar(struct writer *w, const char *name, const char *type, const char *help,
                   uint64_t value)
{
    family(w, name, type, help);
    sample(w, name, NULL, NULL, NULL, NULL, value);
}

/* A counter labelled by reason: every reason but "none", zero or not. */
static void by_reason(struct writer *w, const char *name, const char *help,
                      const uint64_t counts[SC_REASON_COUNT])
{
    family(w, name, "counter", help);
    for (unsigned r = 1; r < SC_REASON_COUNT; r++)
        sample(w, name, "reason", sc_reason_name(r), NULL, NULL, counts[r]);
}

static void paths(struct writer *w, const struct sc_metrics_snapshot *s)
{
    family(w, "secirc_paths", "gauge",
           "Paths (transport endpoints to peers) known to the manager, by state and transport.");
    for (unsigned st = 0; st < SC_METRICS_PATH_STATES; st++)
        for (unsigned t = 0; t < SC_METRICS_PATH_TYPES; t++)
            sample(w, "secirc_paths", "state", sc_path_state_name((enum sc_path_state)st),
                   "transport", sc_path_type_name((enum sc_path_type)t), s->paths[st][t]);
}

static void rtt_histogram(struct writer *w, const struct sc_metrics_snapshot *s)
{
    const char *name = "secirc_heartbeat_rtt_seconds";
    family(w, name, "histogram", "Round-trip times of heartbeats (PING to PONG) on all links.");
    for (size_t i = 0; i < SC_METRICS_RTT_BUCKETS; i++) {
        /* +Inf is written once, last, from the count. */
        if (isinf(s->rtt_bounds_s[i]) || isnan(s->rtt_bounds_s[i]))
            continue;
        putf(w, "%s_bucket{le=\"", name);
        if (w->err == 0)
            w->err = sc_metrics_append_double(w->out, s->rtt_bounds_s[i]);
        putf(w, "\"} %llu\n", (unsigned long long)s->daemon.rtt_le[i]);
    }
    putf(w, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)s->daemon.rtt_count);
    putf(w, "%s_sum ", name);
    if (w->err == 0)
        w->err = sc_metrics_append_double(w->out, s->daemon.rtt_sum_s);
    putf(w, "\n%s_count %llu\n", name, (unsigned long long)s->daemon.rtt_count);
}

static void relay(struct writer *w, const struct sc_metrics_snapshot *s)
{
    family(w, "secirc_relay_info", "gauge", "Always 1; the relay's ID (64 hex digits) as a label.");
    sample(w, "secirc_relay_info", "relay_id", s->relay_id_hex, NULL, NULL, 1);
    scalar(w, "secirc_uptime_seconds", "gauge", "Seconds since the daemon started.", s->uptime_s);
    scalar(w, "secirc_reloads_total", "counter",
           "Configuration reloads applied (SIGHUP or the control socket).", s->daemon.reloads);
    scalar(w, "secirc_reloads_failed_total", "counter",
           "Configuration reloads refused (the running configuration was kept).",
           s->daemon.reloads_failed);
}

static void peers(struct writer *w, const struct sc_metrics_snapshot *s)
{
    const struct sc_manager_status *st = &s->status;
    paths(w, s);
    scalar(w, "secirc_connected_peers", "gauge",
           "Peers (relay identities) with an authenticated link, inbound or outbound.",
           st->connected_peers);
    scalar(w, "secirc_min_connections", "gauge",
           "Configured min_connections: below this many peers the manager dials more.",
           s->min_connections);
    scalar(w, "secirc_max_connections", "gauge",
           "Configured max_connections: peers linked at most.", s->max_connections);
    scalar(w, "secirc_dials_in_flight", "gauge", "Outbound dials and handshakes in progress.",
           st->dials_in_flight);
    scalar(w, "secirc_reconnects_total", "counter",
           "Dials of a path after its first, summed over the paths known now.", s->reconnects);
    scalar(w, "secirc_evictions_total", "counter",
           "Peers closed to make room for a peer of higher priority.", st->evictions);
    scalar(w, "secirc_duplicates_closed_total", "counter",
           "Links closed as a second link to an already linked peer.", st->duplicates_closed);
    scalar(w, "secirc_rekeys_total", "counter", "Noise rekeys sent on all links.", st->rekeys);
    scalar(w, "secirc_key_rotations_total", "counter", "Link keys replaced by new ones.",
           st->key_rotations);
    scalar(w, "secirc_handshakes_ok_total", "counter",
           "Links authenticated, inbound and outbound.", s->daemon.handshakes_ok);
    by_reason(w, "secirc_handshakes_failed_total",
              "Links that ended before they were authenticated, inbound and outbound, by reason.",
              s->daemon.handshakes_failed);
}

static void traffic(struct writer *w, const struct sc_metrics_snapshot *s)
{
    const struct sc_manager_status *st = &s->status;
    scalar(w, "secirc_messages_sent_total", "counter", "Relay messages sent on all links.",
           st->total_messages_sent);
    scalar(w, "secirc_messages_received_total", "counter",
           "Relay messages received on all links.", st->total_messages_received);
    scalar(w, "secirc_sent_bytes_total", "counter",
           "Bytes of relay messages sent on all links.", st->total_bytes_sent);
    scalar(w, "secirc_received_bytes_total", "counter",
           "Bytes of relay messages received on all links.", st->total_bytes_received);
    scalar(w, "secirc_messages_undelivered_total", "counter",
           "Messages whose link died before they left, with no other path to take them.",
           st->messages_undelivered);
    scalar(w, "secirc_messages_forwarded_total", "counter",
           "Mesh: copies of other relays' messages sent on.", s->daemon.messages_forwarded);
    scalar(w, "secirc_messages_deduplicated_total", "counter",
           "Mesh: copies dropped because their message ID was seen before.",
           s->daemon.messages_deduplicated);
    scalar(w, "secirc_messages_delivered_total", "counter",
           "Messages addressed to this relay and delivered to it.", s->daemon.messages_delivered);
    scalar(w, "secirc_messages_invalid_total", "counter",
           "Messages received that were not JSON: dropped, not forwarded.",
           s->daemon.messages_invalid);
    rtt_histogram(w, s);
}

static void listeners(struct writer *w, const struct sc_metrics_snapshot *s)
{
    const struct sc_listener_stats *l = &s->listener;
    scalar(w, "secirc_listener_accepted_total", "counter",
           "Inbound connections taken and started, all listeners.", l->accepted);
    scalar(w, "secirc_listener_refused_total", "counter",
           "Inbound connections turned away at accept: over a cap or a rate.", l->refused);
    scalar(w, "secirc_listener_evicted_total", "counter",
           "Inbound handshakes ended early to make room for newer ones.", l->evicted);
    scalar(w, "secirc_listener_authenticated_total", "counter",
           "Inbound links authenticated and handed to the manager.", l->authenticated);
    scalar(w, "secirc_listener_handshakes_in_progress", "gauge",
           "Inbound handshakes in progress now.", l->handshakes_in_progress);
    scalar(w, "secirc_listener_links_open", "gauge", "Inbound authenticated links open now.",
           l->links_open);
    scalar(w, "secirc_listener_tarpit_connections", "gauge",
           "Refused connections held silently now (probe resistance).", l->tarpit);
    by_reason(w, "secirc_listener_closed_total",
              "Inbound connections that ended without becoming a link, by reason "
              "(probes, replays, rate and handshake limits, busy, timeouts, ...).",
              l->closed);
}

int sc_metrics_format(const struct sc_metrics_snapshot *s, struct evbuffer *out)
{
    struct writer w = {out, 0};
    relay(&w, s);
    peers(&w, s);
    traffic(&w, s);
    listeners(&w, s);
    return w.err;
}
