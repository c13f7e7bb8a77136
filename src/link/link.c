/* link/link.c — the secure link's life cycle: start over a transport
 * stream, the checked state machine, the one close path (link_end ->
 * link_finalize -> link_teardown: on_closed exactly once per link), and the
 * public getters. Reading and writing live in link_io.c, timers in
 * link_timers.c. Never delivers a byte that did not authenticate, never
 * logs a key or a payload. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "link/frame.h"
#include "link/link_internal.h"
#include "transport/http_connect.h"
#include "transport/websocket.h"
#include "util/check.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/ratelimit.h"
#include "util/time.h"

/* Most bytes a peer may send during the handshake before we look at them. */
#define HANDSHAKE_READ_MAX_BYTES 1024u

/* ---- states -------------------------------------------------------------- */

static const char *const state_names[] = {
    [SC_LINK_HANDSHAKING] = "handshaking",
    [SC_LINK_KEYED] = "keyed",
    [SC_LINK_PROBE_DRAIN] = "probe_drain",
    [SC_LINK_AUTHENTICATED] = "authenticated",
    [SC_LINK_AWAIT_PEER_CLOSE] = "await_peer_close",
    [SC_LINK_CLOSING] = "closing",
    [SC_LINK_CLOSED] = "closed",
};

const char *sc_link_state_name(enum sc_link_state state)
{
    return (unsigned)state < sizeof state_names / sizeof state_names[0] && state_names[state]
               ? state_names[state]
               : "?";
}

/* The transitions of secirc/link.h, as a bit set of allowed next states. */
#define BIT(s) (1u << (s))
static const unsigned allowed_next[] = {
    [SC_LINK_HANDSHAKING] = BIT(SC_LINK_KEYED) | BIT(SC_LINK_PROBE_DRAIN) | BIT(SC_LINK_CLOSED),
    [SC_LINK_KEYED] = BIT(SC_LINK_AUTHENTICATED) | BIT(SC_LINK_CLOSING) | BIT(SC_LINK_CLOSED),
    [SC_LINK_PROBE_DRAIN] = BIT(SC_LINK_CLOSED),
    [SC_LINK_AUTHENTICATED] =
        BIT(SC_LINK_AWAIT_PEER_CLOSE) | BIT(SC_LINK_CLOSING) | BIT(SC_LINK_CLOSED),
    [SC_LINK_AWAIT_PEER_CLOSE] = BIT(SC_LINK_CLOSING) | BIT(SC_LINK_CLOSED),
    [SC_LINK_CLOSING] = BIT(SC_LINK_CLOSED),
    [SC_LINK_CLOSED] = 0,
};

void link_set_state(struct sc_link *link, enum sc_link_state next)
{
    enum sc_link_state cur = link->state;
    SC_CHECK(allowed_next[cur] & BIT(next), "illegal link state transition %s -> %s",
             sc_link_state_name(cur), sc_link_state_name(next));
    if (sc_log_enabled(SC_LOG_DEBUG))
        sc_log(SC_LOG_DEBUG, "link.state", "peer=%s addr=%s from=%s to=%s",
               link->peer_hex[0] ? link->peer_hex : "-", link->label[0] ? link->label : "-",
               sc_link_state_name(cur), sc_link_state_name(next));
    link->state = next;
    link->stats.state = next;
}

/* ---- logging ------------------------------------------------------------- */

/* Lines about strangers (unauthenticated peers, untrusted responder-side
 * links) are what a hostile peer can cause at will: at most a burst of 20,
 * then 5 a second, with the number suppressed reported on the next line. */
static struct sc_token_bucket stranger_log_budget;
static uint64_t stranger_log_suppressed;

static bool stranger_line_allowed(long long *suppressed)
{
    uint64_t now = sc_mono_ms();
    if (stranger_log_budget.burst == 0)
        sc_token_bucket_init(&stranger_log_budget, 5, 20, now);
    if (!sc_token_bucket_take(&stranger_log_budget, now)) {
        stranger_log_suppressed++;
        return false;
    }
    *suppressed = (long long)stranger_log_suppressed;
    stranger_log_suppressed = 0;
    return true;
}

static bool is_stranger(const struct sc_link *link)
{
    return link->stats.authenticated_ms == 0 ||
           (!link->cfg.initiator && link->accept.priority <= SC_PRIORITY_UNTRUSTED);
}

static bool is_hostile_reason(enum sc_reason r)
{
    return r == SC_REASON_PROTOCOL_ERROR || r == SC_REASON_DECRYPT_FAILED ||
           r == SC_REASON_OVERSIZE || r == SC_REASON_HANDSHAKE_FAILED ||
           r == SC_REASON_CERT_INVALID || r == SC_REASON_CERT_EXPIRED ||
           r == SC_REASON_PROBE_DROPPED || r == SC_REASON_PROBE_REPLAYED ||
           r == SC_REASON_TIMEOUT;
}

static void log_closed(struct sc_link *link)
{
    enum sc_reason r = link->close_reason;
    enum sc_log_level level = is_hostile_reason(r) || r == SC_REASON_HEARTBEAT_TIMEOUT ||
                                      r == SC_REASON_IDENTITY_MISMATCH || r == SC_REASON_IO_ERROR
                                  ? SC_LOG_WARN
                                  : SC_LOG_INFO;
    long long suppressed = 0;
    if (!sc_log_enabled(level) || (is_stranger(link) && !stranger_line_allowed(&suppressed)))
        return;
    sc_log(level, "link.closed",
           "peer=%s addr=%s role=%s reason=%s by=%s sent_msgs=%llu recv_msgs=%llu unsent=%llu "
           "suppressed=%lld",
           link->peer_hex[0] ? link->peer_hex : "-", link->label[0] ? link->label : "-",
           link->cfg.initiator ? "initiator" : "responder", sc_reason_name(r),
           link->close_by_peer ? "peer" : "local", (unsigned long long)link->stats.messages_sent,
           (unsigned long long)link->stats.messages_received,
           (unsigned long long)link->stats.messages_unsent, suppressed);
}

/* ---- the one close path ---------------------------------------------------- */

/* The queue will not be sent: counted as unsent; its content stays for
 * sc_link_take_unsent until the link is freed. */
static void drop_queue(struct sc_link *link)
{
    link->stats.messages_unsent += link->pending_msgs;
    link->unsent_msgs += link->pending_msgs;
    link->pending_bytes = 0;
    link->pending_msgs = 0;
}

enum stream_end { STREAM_POLITE, STREAM_ABORT, STREAM_SILENT };

/* What a layer's goodbye says about why the link ended (a WebSocket close
 * code); transport-neutral, the layer picks its own words. */
static enum sc_stream_end stream_end_for(enum sc_reason r)
{
    switch (r) {
    case SC_REASON_SHUTDOWN:
        return SC_STREAM_END_GOING_AWAY;
    case SC_REASON_PROTOCOL_ERROR:
    case SC_REASON_DECRYPT_FAILED:
    case SC_REASON_HANDSHAKE_FAILED:
    case SC_REASON_PROTOCOL_VERSION:
    case SC_REASON_CERT_INVALID:
    case SC_REASON_CERT_EXPIRED:
        return SC_STREAM_END_PROTOCOL;
    case SC_REASON_OVERSIZE:
        return SC_STREAM_END_TOO_BIG;
    case SC_REASON_TIMEOUT:
    case SC_REASON_IDENTITY_MISMATCH:
    case SC_REASON_BUSY:
    case SC_REASON_NOT_ALLOWED:
    case SC_REASON_HANDSHAKE_LIMIT:
    case SC_REASON_RATE_LIMITED:
    case SC_REASON_HEARTBEAT_TIMEOUT:
        return SC_STREAM_END_POLICY;
    case SC_REASON_IO_ERROR:
        return SC_STREAM_END_INTERNAL;
    default:
        return SC_STREAM_END_NORMAL;
    }
}

static void finalize(struct sc_link *link, enum stream_end how)
{
    if (link->state == SC_LINK_CLOSED)
        return;
    link_set_state(link, SC_LINK_CLOSED);
    drop_queue(link);
    link->stats.queued_bytes = 0;
    link->stats.queued_messages = 0;
    if (link->stream) {
        bufferevent_setcb(link->bev, NULL, NULL, NULL, NULL);
        sc_stream_set_end(link->stream, stream_end_for(link->close_reason));
        if (how == STREAM_POLITE)
            sc_stream_close(link->stream, link->stats.authenticated_ms ? SC_STREAM_LINGER_MS
                                                                       : SC_STREAM_LINGER_PREAUTH_MS);
        else if (how == STREAM_SILENT)
            sc_stream_close_silent(link->stream, link->deadline_ms);
        else
            sc_stream_free(link->stream);
        link->stream = NULL;
        link->bev = NULL;
    }
    link_timers_on_finalized(link);
    log_closed(link);
}

/* The socket is gone; on_closed and the free follow from the loop. */
void link_finalize(struct sc_link *link, bool polite)
{
    finalize(link, polite ? STREAM_POLITE : STREAM_ABORT);
}

void link_end(struct sc_link *link, enum sc_reason reason, bool by_peer, enum link_end_mode mode)
{
    enum sc_link_state st = link->state;
    if (st == SC_LINK_CLOSED)
        return;
    if (st == SC_LINK_CLOSING || st == SC_LINK_AWAIT_PEER_CLOSE) {
        /* Already ending: only an error or an abort cuts it short. */
        if (mode == END_ABORT || mode == END_NOW || mode == END_TELL)
            link_finalize(link, mode != END_ABORT);
        return;
    }
    link->close_reason = reason;
    link->close_by_peer = by_peer;
    /* Without keys nothing can be said; an initiator before ACCEPT may not
     * send CLOSE (only the responder speaks first). */
    bool can_tell = st == SC_LINK_AUTHENTICATED || (st == SC_LINK_KEYED && !link->cfg.initiator);
    if (mode == END_ABORT || mode == END_NOW || !can_tell) {
        link_finalize(link, mode != END_ABORT);
        return;
    }
    if (mode == END_TELL)
        drop_queue(link);
    if (st == SC_LINK_AUTHENTICATED) {
        link->ctrl.close = true;
    } else {
        link->ctrl.reject = true;
        link->ctrl.accept = false;
    }
    link->ctrl.reason = (uint16_t)reason;
    link->ctrl.ping = link->ctrl.pong = false;
    if (mode == END_ORDERLY && st == SC_LINK_AUTHENTICATED) {
        link_set_state(link, SC_LINK_AWAIT_PEER_CLOSE); /* keeps reading and delivering */
    } else {
        link_set_state(link, SC_LINK_CLOSING);
        bufferevent_disable(link->bev, EV_READ);
    }
    link->close_deadline_ms = sc_mono_ms() + SC_LINK_CLOSE_MAX_MS;
    link_timers_on_closing(link);
    link_close_progress(link);
}

void link_fail(struct sc_link *link, enum sc_reason reason)
{
    link_end(link, reason, false, END_TELL);
}

static void release(struct sc_link *link)
{
    if (link->hs) {
        sc_hs_clear(link->hs);
        sodium_memzero(link->hs, sizeof *link->hs);
        free(link->hs);
        link->hs = NULL;
    }
    sc_noise_cipher_clear(&link->tx);
    sc_noise_cipher_clear(&link->rx);
    sodium_memzero(link->hash, sizeof link->hash);
    if (link->stream) {
        bufferevent_setcb(link->bev, NULL, NULL, NULL, NULL);
        sc_stream_free(link->stream);
        link->stream = NULL;
    }
    link_timers_free(link);
    if (link->pending)
        evbuffer_free(link->pending);
    link->pending = NULL;
}

/* The last step of every link: observer, on_closed, free. */
void link_teardown(struct sc_link *link)
{
    if (link->observer)
        link->observer(link, link->close_reason, link->close_by_peer, link->observer_arg);
    if (link->cfg.cb.on_closed)
        link->cfg.cb.on_closed(link, link->close_reason, link->close_by_peer, link->cfg.cb_arg);
    release(link);
    free(link);
}

/* ---- authentication --------------------------------------------------------- */

void link_become_authenticated(struct sc_link *link)
{
    link_set_state(link, SC_LINK_AUTHENTICATED);
    link->stats.authenticated_ms = sc_mono_ms();
    bufferevent_setwatermark(link->bev, EV_READ, 0, SC_LINK_INPUT_HIGH_WATER_BYTES);
    link_timers_on_authenticated(link);
    long long suppressed = 0;
    if (sc_log_enabled(SC_LOG_INFO) && (!is_stranger(link) || stranger_line_allowed(&suppressed)))
        sc_log(SC_LOG_INFO, "link.authenticated",
               "peer=%s addr=%s role=%s priority=%u suppressed=%lld", link->peer_hex,
               link->label[0] ? link->label : "-", link->cfg.initiator ? "initiator" : "responder",
               link->accept.priority, suppressed);
    if (link->cfg.cb.on_authenticated)
        link->cfg.cb.on_authenticated(link, link->cfg.cb_arg);
}

void link_schedule_flush(struct sc_link *link)
{
    if (link->state != SC_LINK_CLOSED && !event_pending(link->t.flush, EV_TIMEOUT, NULL))
        event_active(link->t.flush, EV_TIMEOUT, 0);
}

/* ---- public ----------------------------------------------------------------- */

void sc_link_config_defaults(struct sc_link_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->connection_timeout_ms = SC_CONNECTION_TIMEOUT_MS_DEFAULT;
    cfg->heartbeat_interval_ms = SC_HEARTBEAT_INTERVAL_MS_DEFAULT;
    cfg->heartbeat_miss_limit = SC_HEARTBEAT_MISS_LIMIT_DEFAULT;
    cfg->rekey_after_frames = SC_REKEY_AFTER_FRAMES_DEFAULT;
    cfg->rekey_after_bytes = SC_REKEY_AFTER_BYTES_DEFAULT;
    cfg->rekey_after_ms = SC_REKEY_AFTER_MS_DEFAULT;
    cfg->max_frame_bytes = SC_FRAME_BODY_BYTES_DEFAULT;
    cfg->max_message_bytes = SC_MESSAGE_PAYLOAD_BYTES_DEFAULT;
    cfg->send_queue_bytes = SC_SEND_QUEUE_BYTES_DEFAULT;
    cfg->send_queue_messages = SC_SEND_QUEUE_MESSAGES_DEFAULT;
    cfg->max_cert_lifetime_s = SC_CERT_LIFETIME_MAX_S_DEFAULT;
    cfg->priority = SC_PRIORITY_UNTRUSTED;
}

static int check_config(const struct sc_link_config *c)
{
    if (!c->identity || !c->link_key || c->connection_timeout_ms == 0 ||
        c->max_frame_bytes < SC_FRAME_BODY_MIN_BYTES ||
        c->max_frame_bytes > SC_FRAME_BODY_MAX_BYTES ||
        c->max_message_bytes < SC_MESSAGE_PAYLOAD_MIN_BYTES ||
        c->max_message_bytes > SC_MESSAGE_PAYLOAD_MAX_BYTES || c->send_queue_bytes == 0 ||
        c->send_queue_messages == 0 || c->rekey_after_frames == 0 ||
        c->rekey_after_bytes == 0 || c->rekey_after_ms == 0 ||
        (c->heartbeat_interval_ms && c->heartbeat_miss_limit == 0) ||
        !sc_priority_is_valid(c->priority))
        return SC_EINVAL;
    return 0;
}

int sc_link_start(struct event_base *base, struct sc_stream *stream,
                  const struct sc_link_config *cfg, const struct sc_link_start *start,
                  struct sc_link **out)
{
    *out = NULL;
    int err = check_config(cfg);
    struct sc_link *link = err ? NULL : calloc(1, sizeof *link);
    if (!link) {
        sc_stream_free(stream);
        return err ? err : SC_ENOMEM;
    }
    uint64_t now = sc_mono_ms();
    link->base = base;
    link->stream = stream;
    link->bev = sc_stream_bev(stream);
    link->cfg = *cfg;
    link->cfg.link_key = NULL; /* read once, below: the caller may free it afterwards */
    link->state = SC_LINK_HANDSHAKING;
    link->stats.state = SC_LINK_HANDSHAKING;
    link->replay = start ? start->replay : NULL;
    link->deadline_ms = (start && start->started_ms ? start->started_ms : now) +
                        cfg->connection_timeout_ms;
    link->heartbeat_ms = cfg->heartbeat_interval_ms;
    link->pending = evbuffer_new();
    link->hs = calloc(1, sizeof *link->hs);
    err = link->pending && link->hs ? link_timers_init(link) : SC_ENOMEM;
    struct sc_hs_config hc = {
        .initiator = cfg->initiator,
        .identity = cfg->identity,
        .link_key = cfg->link_key,
        .has_expected_id = cfg->has_expected_id,
        .probe_resistance = cfg->probe_resistance,
        .max_message_bytes = cfg->max_message_bytes,
        .now_unix = sc_unix_s(),
        .max_cert_lifetime_s = cfg->max_cert_lifetime_s,
    };
    struct sc_stream_info si;
    sc_stream_get_info(stream, &si);
    if (si.has_binding) { /* a layer (TLS) binds the handshake to its session */
        hc.binding = si.binding;
        hc.binding_len = sizeof si.binding;
    }
    memcpy(hc.expected_id, cfg->expected_id, SC_RELAY_ID_BYTES);
    if (!err)
        err = sc_hs_init(link->hs, &hc);
    uint8_t msg1[SC_HS_MSG1_BYTES];
    if (!err && cfg->initiator)
        err = sc_hs_write_msg1(link->hs, msg1);
    if (err) {
        release(link);
        free(link);
        return err;
    }
    bufferevent_setcb(link->bev, link_on_read, link_on_write, link_on_event, link);
    bufferevent_setwatermark(link->bev, EV_READ, 0, HANDSHAKE_READ_MAX_BYTES);
    if (cfg->initiator) {
        evbuffer_add(bufferevent_get_output(link->bev), msg1, sizeof msg1);
        link->stats.bytes_sent += sizeof msg1;
    }
    bufferevent_enable(link->bev, EV_READ | EV_WRITE);
    link_timers_on_start(link);
    /* Bytes a layer below already received (sent with its last message). */
    if (evbuffer_get_length(bufferevent_get_input(link->bev)))
        bufferevent_trigger(link->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
    *out = link;
    return 0;
}

int sc_link_new(struct event_base *base, struct bufferevent *bev, const struct sc_link_config *cfg,
                struct sc_link **out)
{
    struct sc_stream *stream;
    *out = NULL;
    int err = sc_stream_new(bev, NULL, 0, &stream);
    return err ? err : sc_link_start(base, stream, cfg, NULL, out);
}

void sc_link_close(struct sc_link *link, enum sc_reason reason)
{
    if (link)
        link_end(link, reason, false, END_ORDERLY);
}

void sc_link_free(struct sc_link *link)
{
    if (!link)
        return;
    link_end(link, SC_REASON_LOCAL_CLOSE, false, END_ABORT);
    link_teardown(link); /* on_closed now, not from the loop */
}

void sc_link_finish_lingering(struct event_base *base) { sc_closers_finish_all(base); }

void sc_link_end_silently(struct sc_link *link, enum sc_reason reason)
{
    if (link->state != SC_LINK_HANDSHAKING && link->state != SC_LINK_PROBE_DRAIN &&
        link->state != SC_LINK_KEYED) {
        link_end(link, reason, false, END_TELL);
        return;
    }
    link->close_reason = reason;
    link->close_by_peer = false;
    finalize(link, STREAM_SILENT);
}

size_t sc_link_take_unsent(struct sc_link *link,
                           void (*fn)(const struct sc_relay_message *msg, void *arg), void *arg)
{
    if (link->state != SC_LINK_CLOSED || !link->pending)
        return 0;
    size_t n = 0;
    uint8_t hdr[SC_MSG_HEADER_BYTES + SC_RELAY_HEADER_BYTES];
    uint8_t *payload = link->unsent_msgs ? malloc(SC_MESSAGE_PAYLOAD_MAX_BYTES) : NULL;
    while (payload && link->unsent_msgs &&
           evbuffer_remove(link->pending, hdr, sizeof hdr) == (int)sizeof hdr) {
        size_t len = ((size_t)hdr[1] << 8 | hdr[2]) - SC_RELAY_HEADER_BYTES;
        if (evbuffer_remove(link->pending, payload, len) != (int)len)
            break;
        struct sc_relay_message m = {.id = hdr + SC_MSG_HEADER_BYTES,
                                     .hop_limit = hdr[SC_MSG_HEADER_BYTES + SC_MESSAGE_ID_BYTES],
                                     .flags = hdr[SC_MSG_HEADER_BYTES + SC_MESSAGE_ID_BYTES + 1],
                                     .payload = payload,
                                     .len = len};
        link->unsent_msgs--;
        n++;
        fn(&m, arg);
    }
    free(payload);
    evbuffer_drain(link->pending, evbuffer_get_length(link->pending));
    link->unsent_msgs = 0;
    return n;
}

void sc_link_set_observer(struct sc_link *link, sc_link_observer fn, void *arg)
{
    link->observer = fn;
    link->observer_arg = arg;
}

void sc_link_stream_info(const struct sc_link *link, struct sc_stream_info *out)
{
    if (link->stream)
        sc_stream_get_info(link->stream, out);
    else
        memset(out, 0, sizeof *out);
}

void sc_link_get_stats(const struct sc_link *link, struct sc_link_stats *out) { *out = link->stats; }
enum sc_link_state sc_link_state(const struct sc_link *link) { return link->state; }

const uint8_t *sc_link_peer_id(const struct sc_link *link)
{
    return link->stats.authenticated_ms ? link->peer_id : NULL;
}

const uint8_t *sc_link_peer_link_key(const struct sc_link *link)
{
    return link->stats.authenticated_ms ? link->peer_link_key : NULL;
}

const struct sc_accept_info *sc_link_accept_info(const struct sc_link *link) { return &link->accept; }
bool sc_link_is_initiator(const struct sc_link *link) { return link->cfg.initiator; }

int sc_link_handshake_hash(const struct sc_link *link, uint8_t out[64])
{
    if (!link->stats.authenticated_ms)
        return SC_ESTATE;
    memcpy(out, link->hash, SC_NOISE_HASH_BYTES);
    return 0;
}

void sc_link_set_callbacks(struct sc_link *link, const struct sc_link_callbacks *cb, void *arg)
{
    link->cfg.cb = *cb;
    link->cfg.cb_arg = arg;
}

void sc_link_set_label(struct sc_link *link, const char *label)
{
    snprintf(link->label, sizeof link->label, "%s", label ? label : "");
}
