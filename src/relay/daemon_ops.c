/* relay/daemon_ops.c — what the control socket and the HTTP server ask of
 * the daemon (relay/daemon.h): status, peers and explain as JSON, sending
 * and broadcasting validated JSON messages, connect, disconnect, link-key
 * rotation. Reads the manager; never logs a message's contents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "relay/daemon_internal.h"
#include "relay/tor_control.h"
#include "util/hex.h"
#include "util/time.h"

static json_t *hex_json(const uint8_t *bytes, size_t len)
{
    char hex[2 * 64 + 1];
    sc_hex_encode(bytes, len, hex);
    return json_string(hex);
}

json_t *sc_daemon_status_json(struct sc_daemon *d)
{
    json_t *tor = json_pack("{s:s*, s:s}", "onion_address", sc_tor_control_address(d->tor), "state",
                            d->tor ? sc_tor_control_state(d->tor) : "off");
    struct sc_manager_status st;
    sc_manager_get_status(d->m, &st);
    json_t *listen = json_array();
    for (size_t i = 0; i < d->cfg->n_listeners && i < st.listeners; i++)
        json_array_append_new(listen, json_pack("{s:s, s:s, s:i}", "type",
                                                sc_relay_transport_name(d->cfg->listeners[i].type),
                                                "address", d->cfg->listeners[i].address, "port",
                                                (json_int_t)sc_manager_listener_port(d->m, i)));
    return json_pack(
        "{s:o, s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:I, s:I}}",
        "relay_id", hex_json(sc_manager_relay_id(d->m), SC_RELAY_ID_BYTES), "uptime_s",
        (json_int_t)(sc_unix_s() - d->started_unix), "total_connections",
        (json_int_t)st.total_connections, "active_connections", (json_int_t)st.active_connections,
        "failed_connections", (json_int_t)st.failed_connections, "connected_peers",
        (json_int_t)st.connected_peers, "min_connections",
        (json_int_t)d->cfg->manager.min_connections, "max_connections",
        (json_int_t)d->cfg->manager.max_connections, "listen", listen, "tor", tor, "stats",
        "total_messages_sent", (json_int_t)st.total_messages_sent, "total_messages_received",
        (json_int_t)st.total_messages_received, "total_bytes_sent", (json_int_t)st.total_bytes_sent,
        "total_bytes_received", (json_int_t)st.total_bytes_received, "messages_undelivered",
        (json_int_t)st.messages_undelivered, "messages_forwarded",
        (json_int_t)d->metrics.messages_forwarded, "messages_deduplicated",
        (json_int_t)d->metrics.messages_deduplicated, "evictions", (json_int_t)st.evictions,
        "duplicates_closed", (json_int_t)st.duplicates_closed, "rekeys", (json_int_t)st.rekeys,
        "key_rotations", (json_int_t)st.key_rotations);
}

static json_t *path_json(const struct sc_daemon *d, const struct sc_path_info *p)
{
    bool show_host = !p->inbound || d->cfg->privacy.log_peer_addresses;
    return json_pack(
        "{s:i, s:o, s:s, s:b, s:s, s:i, s:s, s:s, s:b, s:i, s:f, s:f, s:o, s:I, s:i, s:I, s:I, "
        "s:I, s:I, s:i, s:i, s:s, s:I}",
        "path_id", (json_int_t)p->path_id, "relay_id",
        p->has_id ? hex_json(p->relay_id, SC_RELAY_ID_BYTES) : json_null(), "type",
        sc_path_type_name(p->type), "tls", p->tls, "host", show_host ? p->host : "-", "port",
        (json_int_t)(p->inbound ? 0 : p->port), "state", sc_path_state_name(p->state), "direction",
        p->inbound ? "inbound" : "outbound", "authenticated", p->authenticated, "priority",
        (json_int_t)p->priority, "latency_ms", p->latency_us / 1000.0, "jitter_ms",
        p->jitter_us / 1000.0, "last_seen",
        p->last_seen_unix ? json_integer((json_int_t)p->last_seen_unix) : json_null(), "uptime_s",
        (json_int_t)(p->uptime_ms / 1000u), "heartbeats_missed", (json_int_t)p->heartbeats_missed,
        "messages_sent", (json_int_t)p->messages_sent, "messages_received",
        (json_int_t)p->messages_received, "bytes_sent", (json_int_t)p->bytes_sent, "bytes_received",
        (json_int_t)p->bytes_received, "reconnects", (json_int_t)p->reconnects, "failures",
        (json_int_t)p->failures, "last_reason", sc_reason_name(p->last_reason),
        "next_attempt_in_ms", (json_int_t)p->next_attempt_in_ms);
}

json_t *sc_daemon_peers_json(struct sc_daemon *d)
{
    size_t n = sc_manager_paths(d->m, NULL, 0);
    struct sc_path_info *paths = n ? calloc(n, sizeof *paths) : NULL;
    json_t *out = json_array();
    if (n && !paths)
        return out;
    n = n ? sc_manager_paths(d->m, paths, n) : 0;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, path_json(d, &paths[i]));
    free(paths);
    return out;
}

static int parse_id(const char *hex, uint8_t id[SC_RELAY_ID_BYTES], char *err, size_t errlen)
{
    if (!hex || sc_relay_id_from_hex(hex, id) != 0) {
        snprintf(err, errlen, "a relay ID is 64 hex digits");
        return SC_EINVAL;
    }
    return 0;
}

json_t *sc_daemon_explain_json(struct sc_daemon *d, const char *relay_id_hex, char *err,
                               size_t errlen)
{
    uint8_t id[SC_RELAY_ID_BYTES];
    if (parse_id(relay_id_hex, id, err, errlen))
        return NULL;
    struct sc_explain e;
    sc_manager_explain(d->m, id, &e);
    bool other = e.verdict == SC_EXPLAIN_EVICTED;
    return json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:I, s:i, s:s, s:o, s:i, s:i}", "relay_id",
                     relay_id_hex, "verdict", sc_explain_verdict_name(e.verdict), "text", e.text,
                     "path_id", (json_int_t)e.path_id, "type", sc_path_type_name(e.type), "since",
                     (json_int_t)e.since_unix, "until", (json_int_t)e.until_unix, "failures",
                     (json_int_t)e.failures, "last_reason", sc_reason_name(e.last_reason), "other",
                     other ? hex_json(e.other, SC_RELAY_ID_BYTES) : json_null(), "other_priority",
                     (json_int_t)e.other_priority, "priority", (json_int_t)e.priority);
}

/* A message: strict JSON, sent compact, within max_message_bytes. The
 * caller frees *out. */
static int message_body(const struct sc_daemon *d, const char *json_text, char **out, char *err,
                        size_t errlen)
{
    json_error_t jerr;
    json_t *v = json_text ? json_loads(json_text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr)
                          : NULL;
    if (!v) {
        snprintf(err, errlen, "the message is not valid JSON: %s (line %d, column %d)",
                 json_text ? jerr.text : "missing", json_text ? jerr.line : 0,
                 json_text ? jerr.column : 0);
        return SC_EFORMAT;
    }
    *out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (!*out)
        return SC_ENOMEM;
    if (strlen(*out) > d->cfg->manager.max_message_bytes) {
        snprintf(err, errlen, "the message has %zu bytes, over max_message_bytes (%u)", strlen(*out),
                 d->cfg->manager.max_message_bytes);
        free(*out);
        *out = NULL;
        return SC_ETOOBIG;
    }
    return 0;
}

int sc_daemon_send(struct sc_daemon *d, const char *relay_id_hex, const char *json_text,
                   char msg_id_hex[33], char *err, size_t errlen)
{
    uint8_t id[SC_RELAY_ID_BYTES], msg_id[SC_MESSAGE_ID_BYTES];
    char *body = NULL;
    int rc = parse_id(relay_id_hex, id, err, errlen);
    if (!rc)
        rc = message_body(d, json_text, &body, err, errlen);
    if (rc)
        return rc;
    randombytes_buf(msg_id, sizeof msg_id);
    rc = sc_manager_send_message(d->m, id, msg_id, 1, 0, body, strlen(body));
    free(body);
    if (rc) {
        snprintf(err, errlen, "%s", rc == SC_ENOENT ? "that relay is not linked"
                                  : rc == SC_EAGAIN ? "its send queue is full; try again"
                                                    : sc_strerror(rc));
        return rc;
    }
    sc_hex_encode(msg_id, sizeof msg_id, msg_id_hex);
    return 0;
}

int sc_daemon_broadcast(struct sc_daemon *d, const char *json_text, char msg_id_hex[33], char *err,
                        size_t errlen)
{
    char *body = NULL;
    int rc = message_body(d, json_text, &body, err, errlen);
    if (rc)
        return rc;
    uint8_t msg_id[SC_MESSAGE_ID_BYTES];
    randombytes_buf(msg_id, sizeof msg_id);
    (void)sc_dedup_seen(d->dedup, msg_id, sc_mono_ms()); /* our own copy comes back: drop it */
    int n = sc_manager_broadcast(d->m, msg_id, (uint8_t)d->cfg->mesh.hop_limit,
                                 SC_RELAY_FLAG_BROADCAST, body, strlen(body), NULL);
    free(body);
    if (n < 0) {
        snprintf(err, errlen, "%s", sc_strerror(n));
        return n;
    }
    sc_hex_encode(msg_id, sizeof msg_id, msg_id_hex);
    return n;
}

int sc_daemon_connect(struct sc_daemon *d, const char *relay_id_hex, char *err, size_t errlen)
{
    uint8_t id[SC_RELAY_ID_BYTES];
    int rc = parse_id(relay_id_hex, id, err, errlen);
    if (!rc && (rc = sc_manager_connect(d->m, id)) != 0)
        snprintf(err, errlen, "%s", rc == SC_ENOENT ? "that relay is not configured"
                                                    : "no path of that relay can be dialed now");
    return rc;
}

int sc_daemon_disconnect(struct sc_daemon *d, const char *relay_id_hex, char *err, size_t errlen)
{
    uint8_t id[SC_RELAY_ID_BYTES];
    int rc = parse_id(relay_id_hex, id, err, errlen);
    if (!rc && (rc = sc_manager_disconnect(d->m, id)) != 0)
        snprintf(err, errlen, "that relay is not known");
    return rc;
}

int sc_daemon_rotate_link_key(struct sc_daemon *d, char *err, size_t errlen)
{
    int rc = sc_manager_rotate_link_key(d->m);
    if (rc)
        snprintf(err, errlen, "cannot create a link key: %s", sc_strerror(rc));
    return rc;
}
