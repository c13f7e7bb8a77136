/* link/link.c — the secure link over one bufferevent: drives the handshake
 * state machine, then frames, encrypts, rekeys and heartbeats, and reports
 * to its owner through callbacks. Transport-agnostic: it only reads and
 * writes the bufferevent's evbuffers. It never delivers a byte that did not
 * authenticate, and never buffers more than its limits before checking. */
#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "link/frame.h"
#include "link/handshake.h"
#include "secirc/link.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/time.h"

/* How long a closing link may go without writing anything before it gives
 * up flushing its last frames, and how long a close may take at most. */
#define LINGER_MS 10000u
#define CLOSE_MAX_MS 60000u
/* Most bytes a peer may send during the handshake before we look at them. */
#define HANDSHAKE_READ_MAX_BYTES 1024u
/* Encrypted output below which we frame more (write callback threshold). */
#define OUTPUT_LOW_WATER_BYTES (64u * 1024u)
/* Room for the control messages that may lead a frame: ACCEPT or REJECT,
 * PONG, PING, CLOSE, REKEY. */
#define CTRL_ROOM_BYTES 64u

struct sc_link {
    struct event_base *base;
    struct bufferevent *bev;
    struct sc_link_config cfg;
    enum sc_link_state state;
    struct sc_handshake *hs; /* only while the Noise handshake runs */
    bool have_ciphers;       /* tx/rx are keyed */
    bool accepted;           /* ACCEPT sent (responder) or received (initiator) */
    struct sc_noise_cipher tx, rx;
    uint8_t hash[SC_NOISE_HASH_BYTES];
    uint8_t peer_id[SC_RELAY_ID_BYTES];
    uint8_t peer_link_key[SC_LINK_KEY_BYTES];
    char peer_hex[17]; /* first 16 hex digits, for logs */
    char label[48];
    struct sc_accept_info accept;
    uint32_t peer_max_message; /* largest payload the peer takes */

    struct event *timer;     /* handshake deadline, probe drain, close linger */
    struct event *heartbeat; /* persistent, once authenticated */
    struct event *deferred;  /* flush (coalescing) and final teardown */
    bool flush_scheduled;

    /* Send queue: encoded messages not yet framed. */
    struct evbuffer *pending;
    size_t pending_bytes;
    uint32_t pending_msgs;
    bool backpressured;
    bool await_peer_close; /* orderly close: waiting for the peer's CLOSE */
    uint64_t close_deadline_ms;
    /* Control messages for the head of the next frame. */
    bool ctrl_accept, ctrl_reject, ctrl_close, ctrl_ping, ctrl_pong;
    uint16_t ctrl_reason;
    uint64_t ping_nonce, pong_nonce;

    /* Receive: 0 while waiting for a frame header, else the body length. */
    size_t rx_body_len;

    /* Heartbeat and RTT. */
    bool ping_outstanding;
    uint64_t ping_sent_us;

    /* Rekey accounting for the send direction. */
    uint64_t tx_frames_since_rekey, tx_bytes_since_rekey, tx_rekeyed_ms;

    struct sc_link_stats stats;
    enum sc_reason close_reason;
    bool close_by_peer;
};

static struct sc_log_ratelimit handshake_log_rl = SC_LOG_RATELIMIT_INIT(100);

static void set_state(struct sc_link *link, enum sc_link_state next)
{
    enum sc_link_state cur = link->state;
    bool ok = false;
    switch (cur) {
    case SC_LINK_HANDSHAKING:
        ok = next == SC_LINK_AUTHENTICATED || next == SC_LINK_PROBE_DRAIN ||
             next == SC_LINK_CLOSING || next == SC_LINK_CLOSED;
        break;
    case SC_LINK_PROBE_DRAIN:
        ok = next == SC_LINK_CLOSED;
        break;
    case SC_LINK_AUTHENTICATED:
        ok = next == SC_LINK_CLOSING || next == SC_LINK_CLOSED;
        break;
    case SC_LINK_CLOSING:
        ok = next == SC_LINK_CLOSED;
        break;
    case SC_LINK_CLOSED:
        break;
    }
    assert(ok && "illegal link state transition");
    (void)ok;
    link->state = next;
    link->stats.state = next;
}

static void arm_timer(struct event *ev, uint32_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static void schedule_deferred(struct sc_link *link)
{
    if (!link->flush_scheduled) {
        link->flush_scheduled = true;
        event_active(link->deferred, EV_TIMEOUT, 0);
    }
}

/* ---- teardown ------------------------------------------------------------ */

static void hs_free(struct sc_link *link)
{
    if (link->hs) {
        sc_hs_clear(link->hs);
        sodium_memzero(link->hs, sizeof *link->hs);
        free(link->hs);
        link->hs = NULL;
    }
}

static void release(struct sc_link *link)
{
    hs_free(link);
    sc_noise_cipher_clear(&link->tx);
    sc_noise_cipher_clear(&link->rx);
    sodium_memzero(link->hash, sizeof link->hash);
    if (link->bev) {
        bufferevent_free(link->bev);
        link->bev = NULL;
    }
    if (link->timer)
        event_free(link->timer);
    if (link->heartbeat)
        event_free(link->heartbeat);
    if (link->deferred)
        event_free(link->deferred);
    if (link->pending)
        evbuffer_free(link->pending);
    link->timer = link->heartbeat = link->deferred = NULL;
    link->pending = NULL;
}

static bool is_hostile_reason(enum sc_reason r)
{
    return r == SC_REASON_PROTOCOL_ERROR || r == SC_REASON_DECRYPT_FAILED ||
           r == SC_REASON_OVERSIZE || r == SC_REASON_HANDSHAKE_FAILED ||
           r == SC_REASON_CERT_INVALID || r == SC_REASON_CERT_EXPIRED ||
           r == SC_REASON_PROBE_DROPPED || r == SC_REASON_TIMEOUT;
}

static void log_closed(struct sc_link *link)
{
    enum sc_reason r = link->close_reason;
    enum sc_log_level level = is_hostile_reason(r) || r == SC_REASON_HEARTBEAT_TIMEOUT ||
                                      r == SC_REASON_IDENTITY_MISMATCH || r == SC_REASON_IO_ERROR
                                  ? SC_LOG_WARN
                                  : SC_LOG_INFO;
    if (!sc_log_enabled(level))
        return;
    long long suppressed = 0;
    if (!link->accepted && is_hostile_reason(r)) {
        /* Anyone can cause these at will: at most one line per 100 ms. */
        suppressed = sc_log_ratelimit_pass(&handshake_log_rl, sc_mono_ms());
        if (suppressed < 0)
            return;
    }
    sc_log(level, "link.closed",
           "peer=%s addr=%s role=%s reason=%s by=%s sent_msgs=%llu recv_msgs=%llu unsent=%llu%s",
           link->peer_hex[0] ? link->peer_hex : "-", link->label[0] ? link->label : "-",
           link->cfg.initiator ? "initiator" : "responder", sc_reason_name(r),
           link->close_by_peer ? "peer" : "local", (unsigned long long)link->stats.messages_sent,
           (unsigned long long)link->stats.messages_received,
           (unsigned long long)link->stats.messages_unsent, suppressed > 0 ? " (similar lines suppressed)" : "");
}

/* Closes the socket now; on_closed and the free follow from the loop. */
static void finalize(struct sc_link *link)
{
    if (link->state == SC_LINK_CLOSED)
        return;
    set_state(link, SC_LINK_CLOSED);
    link->stats.messages_unsent += link->pending_msgs;
    link->pending_msgs = 0;
    if (link->bev) {
        bufferevent_free(link->bev);
        link->bev = NULL;
    }
    evtimer_del(link->timer);
    if (link->heartbeat)
        evtimer_del(link->heartbeat);
    log_closed(link);
    schedule_deferred(link);
}

static void write_frames(struct sc_link *link);
static void on_heartbeat(evutil_socket_t fd, short what, void *arg);

/* How a link ends:
 *   END_NOW      close the connection at once, tell nothing (EOF, I/O
 *                error, handshake timeout, a REJECT or CLOSE received
 *                before keys, anything before keys exist);
 *   END_TELL     an error: drop the queue, send CLOSE (or REJECT), stop
 *                reading, close once that is written;
 *   END_ANSWER   the peer sent CLOSE: send our queue, then CLOSE back, stop
 *                reading, close once written;
 *   END_ORDERLY  a local close: send our queue, then CLOSE, keep reading
 *                (and delivering) until the peer's CLOSE or EOF arrives.
 * Whatever the mode, the close is bounded by LINGER_MS without progress. */
enum end_mode { END_NOW, END_TELL, END_ANSWER, END_ORDERLY };

static void arm_linger(struct sc_link *link);

/* Write callback while closing: keeps moving queued messages out; done
 * when everything is written and (orderly close) the peer has answered.
 * Each call is progress, so the linger restarts. */
static void on_close_flushed(struct bufferevent *bev, void *arg)
{
    struct sc_link *link = arg;
    write_frames(link);
    if (link->state != SC_LINK_CLOSING)
        return;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && link->pending_msgs == 0 &&
        !link->ctrl_close && !link->ctrl_reject && !link->await_peer_close) {
        finalize(link);
        return;
    }
    arm_linger(link);
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* Restarts the no-progress timer, never past the close's absolute limit. */
static void arm_linger(struct sc_link *link)
{
    uint64_t now = sc_mono_ms();
    uint64_t left = link->close_deadline_ms > now ? link->close_deadline_ms - now : 0;
    arm_timer(link->timer, (uint32_t)(left < LINGER_MS ? left : LINGER_MS));
}

static void link_end(struct sc_link *link, enum sc_reason reason, bool by_peer, enum end_mode mode)
{
    if (link->state == SC_LINK_CLOSED)
        return;
    if (link->state == SC_LINK_CLOSING) { /* already ending: only an error cuts it short */
        if (mode == END_NOW || mode == END_TELL)
            finalize(link);
        return;
    }
    link->close_reason = reason;
    link->close_by_peer = by_peer;
    if (mode == END_NOW || !link->have_ciphers || !link->bev) {
        finalize(link);
        return;
    }
    if (mode == END_TELL) {
        link->stats.messages_unsent += link->pending_msgs;
        evbuffer_drain(link->pending, link->pending_bytes);
        link->pending_bytes = 0;
        link->pending_msgs = 0;
    }
    if (link->accepted || !link->cfg.initiator) {
        if (link->accepted) {
            link->ctrl_close = true;
        } else {
            link->ctrl_reject = true;
            link->ctrl_accept = false;
        }
        link->ctrl_reason = (uint16_t)reason;
    }
    set_state(link, SC_LINK_CLOSING);
    link->close_deadline_ms = sc_mono_ms() + CLOSE_MAX_MS;
    if (link->heartbeat)
        evtimer_del(link->heartbeat);
    link->await_peer_close = mode == END_ORDERLY && link->accepted;
    if (!link->await_peer_close)
        bufferevent_disable(link->bev, EV_READ);
    bufferevent_setwatermark(link->bev, EV_WRITE, OUTPUT_LOW_WATER_BYTES, 0);
    bufferevent_setcb(link->bev, link->await_peer_close ? on_read : NULL, on_close_flushed,
                      on_event, link);
    on_close_flushed(link->bev, link);
}

static void fail(struct sc_link *link, enum sc_reason reason)
{
    link_end(link, reason, false, END_TELL);
}

/* ---- sending ------------------------------------------------------------- */

static void check_backpressure(struct sc_link *link)
{
    const struct sc_link_config *c = &link->cfg;
    if (!link->backpressured) {
        if (link->pending_bytes > c->send_queue_bytes / 4 * 3 ||
            link->pending_msgs > c->send_queue_messages / 4 * 3) {
            link->backpressured = true;
            if (c->cb.on_backpressure)
                c->cb.on_backpressure(link, true, c->cb_arg);
        }
    } else if (link->pending_bytes < c->send_queue_bytes / 4 &&
               link->pending_msgs < c->send_queue_messages / 4) {
        link->backpressured = false;
        if (c->cb.on_backpressure && link->state == SC_LINK_AUTHENTICATED)
            c->cb.on_backpressure(link, false, c->cb_arg);
    }
}

static bool rekey_due(const struct sc_link *link, size_t body_len)
{
    const struct sc_link_config *c = &link->cfg;
    return link->tx_frames_since_rekey + 1 >= c->rekey_after_frames ||
           link->tx_bytes_since_rekey + body_len >= c->rekey_after_bytes ||
           sc_mono_ms() - link->tx_rekeyed_ms >= c->rekey_after_ms;
}

/* Bytes of whole pending messages, from the front, that fit in `room`. */
static size_t pending_fit(struct sc_link *link, size_t room, uint32_t *count)
{
    if (link->pending_bytes <= room) {
        *count = link->pending_msgs;
        return link->pending_bytes;
    }
    size_t taken = 0;
    uint32_t n = 0;
    struct evbuffer_ptr pos;
    evbuffer_ptr_set(link->pending, &pos, 0, EVBUFFER_PTR_SET);
    for (;;) {
        uint8_t hdr[SC_MSG_HEADER_BYTES];
        if (evbuffer_copyout_from(link->pending, &pos, hdr, sizeof hdr) != (ev_ssize_t)sizeof hdr)
            break;
        size_t len = SC_MSG_HEADER_BYTES + ((size_t)hdr[1] << 8 | hdr[2]);
        if (taken + len > room)
            break;
        taken += len;
        n++;
        if (evbuffer_ptr_set(link->pending, &pos, len, EVBUFFER_PTR_ADD) < 0)
            break;
    }
    *count = n;
    return taken;
}

/* Builds, seals and queues one frame from control messages and as many
 * pending messages as fit. Returns false when there was nothing to send. */
static bool write_one_frame(struct sc_link *link)
{
    bool ctrl = link->ctrl_accept || link->ctrl_reject || link->ctrl_ping || link->ctrl_pong ||
                (link->ctrl_close && link->pending_msgs == 0);
    bool data = link->pending_msgs > 0 &&
                (link->state == SC_LINK_AUTHENTICATED || link->state == SC_LINK_CLOSING);
    size_t max_body = link->cfg.max_frame_bytes;
    uint32_t count = 0;
    size_t data_bytes = data ? pending_fit(link, max_body - 1 - CTRL_ROOM_BYTES, &count) : 0;
    if (!ctrl && data_bytes == 0)
        return false;
    size_t cap = SC_FRAME_HEADER_BYTES + 1 + CTRL_ROOM_BYTES + data_bytes + SC_FRAME_TAG_BYTES;
    struct evbuffer *out = bufferevent_get_output(link->bev);
    struct evbuffer_iovec vec;
    if (evbuffer_reserve_space(out, (ev_ssize_t)cap, &vec, 1) != 1) {
        fail(link, SC_REASON_IO_ERROR);
        return false;
    }
    uint8_t *frame = vec.iov_base, *body = frame + SC_FRAME_HEADER_BYTES;
    size_t n = 0;
    body[n++] = SC_FRAME_VERSION;
    if (link->ctrl_accept)
        n += sc_frame_put_accept(body + n, &link->accept);
    if (link->ctrl_reject)
        n += sc_frame_put_reason(body + n, SC_MSG_REJECT, link->ctrl_reason);
    if (link->ctrl_pong)
        n += sc_frame_put_nonce(body + n, SC_MSG_PONG, link->pong_nonce);
    if (link->ctrl_ping)
        n += sc_frame_put_nonce(body + n, SC_MSG_PING, link->ping_nonce);
    link->ctrl_accept = link->ctrl_reject = link->ctrl_ping = link->ctrl_pong = false;
    if (data_bytes) {
        evbuffer_remove(link->pending, body + n, data_bytes);
        n += data_bytes;
        link->pending_bytes -= data_bytes;
        link->pending_msgs -= count;
        link->stats.messages_sent += count;
    }
    if (link->ctrl_close && link->pending_msgs == 0) { /* CLOSE after the last message */
        n += sc_frame_put_reason(body + n, SC_MSG_CLOSE, link->ctrl_reason);
        link->ctrl_close = false;
    }
    bool rekey = rekey_due(link, n + SC_MSG_HEADER_BYTES);
    if (rekey)
        n += sc_frame_put_header(body + n, SC_MSG_REKEY, 0);
    size_t sealed = 0;
    if (sc_frame_seal_header(&link->tx, n, frame) != 0 ||
        sc_noise_encrypt(&link->tx, NULL, 0, body, n, body, cap - SC_FRAME_HEADER_BYTES,
                         &sealed) != 0) {
        fail(link, SC_REASON_IO_ERROR);
        return false;
    }
    vec.iov_len = SC_FRAME_HEADER_BYTES + sealed;
    evbuffer_commit_space(out, &vec, 1);
    link->stats.frames_sent++;
    link->stats.bytes_sent += vec.iov_len;
    link->tx_frames_since_rekey++;
    link->tx_bytes_since_rekey += n;
    if (rekey) {
        if (sc_noise_rekey(&link->tx) != 0) {
            fail(link, SC_REASON_IO_ERROR);
            return false;
        }
        link->stats.rekeys_sent++;
        link->tx_frames_since_rekey = 0;
        link->tx_bytes_since_rekey = 0;
        link->tx_rekeyed_ms = sc_mono_ms();
    }
    return true;
}

static void write_frames(struct sc_link *link)
{
    if (!link->have_ciphers || !link->bev)
        return;
    struct evbuffer *out = bufferevent_get_output(link->bev);
    while (evbuffer_get_length(out) < SC_LINK_OUTPUT_HIGH_WATER_BYTES &&
           (link->state == SC_LINK_AUTHENTICATED || link->state == SC_LINK_CLOSING ||
            link->state == SC_LINK_HANDSHAKING)) {
        if (!write_one_frame(link))
            break;
    }
    link->stats.queued_bytes = link->pending_bytes;
    link->stats.queued_messages = link->pending_msgs;
    if (link->state == SC_LINK_AUTHENTICATED)
        check_backpressure(link);
}

int sc_link_send(struct sc_link *link, const uint8_t id[SC_MESSAGE_ID_BYTES], uint8_t hop_limit,
                 uint8_t flags, const void *payload, size_t len)
{
    if (link->state != SC_LINK_AUTHENTICATED)
        return SC_ESTATE;
    if (len > link->peer_max_message ||
        len + SC_MSG_HEADER_BYTES + SC_RELAY_HEADER_BYTES + 1 + CTRL_ROOM_BYTES >
            link->cfg.max_frame_bytes)
        return SC_ETOOBIG;
    size_t size = SC_MSG_HEADER_BYTES + SC_RELAY_HEADER_BYTES + len;
    if (link->pending_bytes + size > link->cfg.send_queue_bytes ||
        link->pending_msgs + 1 > link->cfg.send_queue_messages)
        return SC_EAGAIN;
    uint8_t hdr[SC_MSG_HEADER_BYTES + SC_RELAY_HEADER_BYTES];
    sc_frame_put_relay_header(hdr, id, hop_limit, flags, len);
    if (evbuffer_add(link->pending, hdr, sizeof hdr) != 0 ||
        (len && evbuffer_add(link->pending, payload, len) != 0))
        return SC_ENOMEM;
    link->pending_bytes += size;
    link->pending_msgs++;
    link->stats.queued_bytes = link->pending_bytes;
    link->stats.queued_messages = link->pending_msgs;
    check_backpressure(link);
    schedule_deferred(link);
    return 0;
}

static void send_ping(struct sc_link *link)
{
    randombytes_buf(&link->ping_nonce, sizeof link->ping_nonce);
    link->ctrl_ping = true;
    link->ping_outstanding = true;
    link->ping_sent_us = sc_mono_us();
    write_frames(link);
}

int sc_link_ping(struct sc_link *link)
{
    if (link->state != SC_LINK_AUTHENTICATED)
        return SC_ESTATE;
    if (!link->ping_outstanding)
        send_ping(link);
    return 0;
}

/* ---- receiving ----------------------------------------------------------- */

static void on_rtt_sample(struct sc_link *link, uint64_t rtt_us64)
{
    uint32_t rtt = rtt_us64 > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt_us64;
    struct sc_link_stats *s = &link->stats;
    if (s->srtt_us == 0) {
        s->srtt_us = rtt;
        s->rttvar_us = rtt / 2;
    } else { /* RFC 6298: rttvar first, with the old srtt */
        uint32_t dev = s->srtt_us > rtt ? s->srtt_us - rtt : rtt - s->srtt_us;
        s->rttvar_us = (uint32_t)(((uint64_t)s->rttvar_us * 3 + dev) / 4);
        s->srtt_us = (uint32_t)(((uint64_t)s->srtt_us * 7 + rtt) / 8);
    }
    s->rtt_us = rtt;
    s->heartbeats_missed = 0;
    if (link->cfg.cb.on_rtt)
        link->cfg.cb.on_rtt(link, rtt, link->cfg.cb_arg);
}

static void become_authenticated(struct sc_link *link)
{
    link->accepted = true;
    set_state(link, SC_LINK_AUTHENTICATED);
    evtimer_del(link->timer);
    bufferevent_setwatermark(link->bev, EV_READ, 0, SC_LINK_INPUT_HIGH_WATER_BYTES);
    bufferevent_setwatermark(link->bev, EV_WRITE, OUTPUT_LOW_WATER_BYTES, 0);
    if (link->cfg.heartbeat_interval_ms) {
        link->heartbeat = event_new(link->base, -1, EV_PERSIST, on_heartbeat, link);
        if (link->heartbeat)
            arm_timer(link->heartbeat, link->cfg.heartbeat_interval_ms);
    }
    sc_log(SC_LOG_INFO, "link.authenticated", "peer=%s addr=%s role=%s priority=%u",
           link->peer_hex, link->label[0] ? link->label : "-",
           link->cfg.initiator ? "initiator" : "responder", link->accept.priority);
    if (link->cfg.cb.on_authenticated)
        link->cfg.cb.on_authenticated(link, link->cfg.cb_arg);
}

/* Handles one decoded message; returns false when the link is ending. */
static bool handle_message(struct sc_link *link, const struct sc_frame_msg *m, bool *rekey)
{
    const struct sc_link_config *c = &link->cfg;
    if (!link->accepted) { /* initiator: the first message must be the verdict */
        if (m->type == SC_MSG_ACCEPT) {
            link->accept = m->u.accept;
            if (link->accept.max_message_bytes < link->peer_max_message)
                link->peer_max_message = link->accept.max_message_bytes;
            become_authenticated(link);
            return link->state == SC_LINK_AUTHENTICATED;
        }
        if (m->type == SC_MSG_REJECT) {
            link_end(link, m->u.reason, true, END_NOW);
            return false;
        }
        fail(link, SC_REASON_PROTOCOL_ERROR);
        return false;
    }
    switch (m->type) {
    case SC_MSG_RELAY:
        link->stats.messages_received++;
        if (c->cb.on_message)
            c->cb.on_message(link, &m->u.relay, c->cb_arg);
        break;
    case SC_MSG_PING:
        link->pong_nonce = m->u.nonce;
        link->ctrl_pong = true;
        schedule_deferred(link);
        break;
    case SC_MSG_PONG:
        if (link->ping_outstanding && m->u.nonce == link->ping_nonce) {
            link->ping_outstanding = false;
            on_rtt_sample(link, sc_mono_us() - link->ping_sent_us);
        }
        break;
    case SC_MSG_CLOSE:
        if (link->state == SC_LINK_CLOSING) { /* the answer to our orderly close */
            link->await_peer_close = false;
            bufferevent_disable(link->bev, EV_READ);
            on_close_flushed(link->bev, link);
        } else {
            link_end(link, m->u.reason, true, END_ANSWER);
        }
        return false;
    case SC_MSG_REKEY:
        *rekey = true;
        break;
    case SC_MSG_PADDING:
        break;
    case SC_MSG_ACCEPT:
    case SC_MSG_REJECT:
        fail(link, SC_REASON_PROTOCOL_ERROR);
        return false;
    }
    return link->state == SC_LINK_AUTHENTICATED ||
           (link->state == SC_LINK_CLOSING && link->await_peer_close);
}

static enum sc_reason frame_error_reason(int err)
{
    switch (err) {
    case SC_EAUTH:
        return SC_REASON_DECRYPT_FAILED;
    case SC_ETOOBIG:
        return SC_REASON_OVERSIZE;
    case SC_EVERSION:
        return SC_REASON_PROTOCOL_VERSION;
    default:
        return SC_REASON_PROTOCOL_ERROR;
    }
}

/* Opens and handles every complete frame in the input buffer. */
static void read_frames(struct sc_link *link)
{
    struct evbuffer *in = bufferevent_get_input(link->bev);
    while (link->state == SC_LINK_AUTHENTICATED ||
           (link->state == SC_LINK_HANDSHAKING && link->have_ciphers) ||
           (link->state == SC_LINK_CLOSING && link->await_peer_close)) {
        size_t avail = evbuffer_get_length(in);
        if (link->rx_body_len == 0) {
            if (avail < SC_FRAME_HEADER_BYTES)
                return;
            uint8_t hdr[SC_FRAME_HEADER_BYTES];
            evbuffer_copyout(in, hdr, sizeof hdr);
            size_t body_len;
            int err = sc_frame_open_header(&link->rx, hdr, &body_len);
            if (err) {
                fail(link, frame_error_reason(err));
                return;
            }
            evbuffer_drain(in, sizeof hdr);
            link->stats.bytes_received += sizeof hdr;
            link->rx_body_len = body_len;
            avail -= sizeof hdr;
        }
        size_t ct_len = link->rx_body_len + SC_FRAME_TAG_BYTES;
        if (avail < ct_len)
            return;
        uint8_t *ct = evbuffer_pullup(in, (ev_ssize_t)ct_len);
        size_t body_len = 0;
        if (!ct || sc_noise_decrypt(&link->rx, NULL, 0, ct, ct_len, ct, ct_len, &body_len) != 0) {
            fail(link, SC_REASON_DECRYPT_FAILED);
            return;
        }
        link->stats.frames_received++;
        link->stats.bytes_received += ct_len;
        link->stats.last_seen_ms = sc_mono_ms();
        link->rx_body_len = 0;
        struct sc_frame_reader r;
        int err = sc_frame_reader_init(&r, ct, body_len, link->cfg.max_message_bytes);
        bool rekey = false;
        struct sc_frame_msg m;
        while (!err && (err = sc_frame_next(&r, &m)) == 1) {
            err = 0;
            if (!handle_message(link, &m, &rekey))
                break;
        }
        if (link->state == SC_LINK_CLOSED)
            return; /* the input buffer went with the bufferevent */
        evbuffer_drain(in, ct_len);
        if (err) {
            fail(link, frame_error_reason(err));
            return;
        }
        if (rekey) {
            if (sc_noise_rekey(&link->rx) != 0) {
                fail(link, SC_REASON_PROTOCOL_ERROR);
                return;
            }
            link->stats.rekeys_received++;
        }
    }
}


/* ---- handshake ------------------------------------------------------------- */

static void hs_failed(struct sc_link *link)
{
    enum sc_reason r = link->hs->reason ? link->hs->reason : SC_REASON_HANDSHAKE_FAILED;
    if (r == SC_REASON_PROBE_DROPPED) {
        /* Silent to probes: read and discard until the deadline. */
        link->close_reason = r;
        set_state(link, SC_LINK_PROBE_DRAIN);
        evbuffer_drain(bufferevent_get_input(link->bev), SIZE_MAX);
        return;
    }
    fail(link, r);
}

static void handshake_done(struct sc_link *link)
{
    sc_hex_encode(link->hs->peer_id, 8, link->peer_hex);
    memcpy(link->peer_id, link->hs->peer_id, SC_RELAY_ID_BYTES);
    memcpy(link->peer_link_key, link->hs->peer_link_key, SC_LINK_KEY_BYTES);
    link->peer_max_message = link->hs->peer_max_message;
    int err = sc_hs_finish(link->hs, &link->tx, &link->rx, link->hash);
    hs_free(link);
    if (err) {
        fail(link, SC_REASON_HANDSHAKE_FAILED);
        return;
    }
    link->have_ciphers = true;
    link->tx_rekeyed_ms = sc_mono_ms();
    bufferevent_setwatermark(link->bev, EV_READ, 0, SC_LINK_INPUT_HIGH_WATER_BYTES);
}

/* Responder with the initiator authenticated: ask the owner, answer. */
static void respond_verdict(struct sc_link *link)
{
    struct sc_accept_info info = link->cfg.accept;
    enum sc_reason verdict = SC_REASON_NONE;
    if (link->cfg.cb.policy)
        verdict = link->cfg.cb.policy(link, link->peer_id, &info, link->cfg.cb_arg);
    if (link->state != SC_LINK_HANDSHAKING)
        return;
    if (verdict != SC_REASON_NONE) {
        link_end(link, verdict, false, END_TELL);
        return;
    }
    link->accept = info;
    link->ctrl_accept = true; /* leads the first frame, before any message */
    become_authenticated(link);
    write_frames(link);
}

/* Consumes exactly `size` bytes of handshake message, or nothing yet.
 * More than `size` bytes is a protocol error: neither side may send ahead. */
static const uint8_t *take_message(struct sc_link *link, uint8_t *buf, size_t size)
{
    struct evbuffer *in = bufferevent_get_input(link->bev);
    size_t avail = evbuffer_get_length(in);
    if (avail < size)
        return NULL;
    if (avail > size) {
        if (link->hs->state == SC_HS_START && link->cfg.probe_resistance) {
            link->hs->reason = SC_REASON_PROBE_DROPPED; /* not a message 1: stay silent */
            hs_failed(link);
        } else {
            fail(link, SC_REASON_PROTOCOL_ERROR);
        }
        return NULL;
    }
    evbuffer_remove(in, buf, size);
    link->stats.bytes_received += size;
    return buf;
}

static void read_handshake(struct sc_link *link)
{
    struct sc_handshake *hs = link->hs;
    uint8_t buf[SC_HS_MSG2_BYTES];
    uint8_t out[SC_HS_MSG2_BYTES];
    struct evbuffer *output = bufferevent_get_output(link->bev);
    switch (hs->state) {
    case SC_HS_START: /* responder: message 1 */
        if (!take_message(link, buf, SC_HS_MSG1_BYTES))
            return;
        if (sc_hs_read_msg1(hs, buf) != 0 || sc_hs_write_msg2(hs, out) != 0) {
            hs_failed(link);
            return;
        }
        evbuffer_add(output, out, SC_HS_MSG2_BYTES);
        link->stats.bytes_sent += SC_HS_MSG2_BYTES;
        return;
    case SC_HS_SENT_MSG1: /* initiator: message 2 */
        if (!take_message(link, buf, SC_HS_MSG2_BYTES))
            return;
        if (sc_hs_read_msg2(hs, buf, sc_unix_s()) != 0 || sc_hs_write_msg3(hs, out) != 0) {
            hs_failed(link);
            return;
        }
        evbuffer_add(output, out, SC_HS_MSG3_BYTES);
        link->stats.bytes_sent += SC_HS_MSG3_BYTES;
        handshake_done(link); /* then wait for ACCEPT or REJECT */
        return;
    case SC_HS_SENT_MSG2: /* responder: message 3 */
        if (!take_message(link, buf, SC_HS_MSG3_BYTES))
            return;
        if (sc_hs_read_msg3(hs, buf, sc_unix_s()) != 0) {
            hs_failed(link);
            return;
        }
        handshake_done(link);
        if (link->state == SC_LINK_HANDSHAKING)
            respond_verdict(link);
        return;
    default:
        fail(link, SC_REASON_PROTOCOL_ERROR);
        return;
    }
}

/* ---- bufferevent and timer callbacks --------------------------------------- */

static void on_read(struct bufferevent *bev, void *arg)
{
    struct sc_link *link = arg;
    if (link->state == SC_LINK_PROBE_DRAIN) {
        evbuffer_drain(bufferevent_get_input(bev), SIZE_MAX);
        return;
    }
    if (link->state == SC_LINK_CLOSING) { /* orderly close: deliver until the peer's CLOSE */
        read_frames(link);
        return;
    }
    if (link->state == SC_LINK_HANDSHAKING && link->hs)
        read_handshake(link);
    if (link->state == SC_LINK_HANDSHAKING || link->state == SC_LINK_AUTHENTICATED)
        read_frames(link);
    if (link->state == SC_LINK_AUTHENTICATED || link->state == SC_LINK_HANDSHAKING)
        write_frames(link);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct sc_link *link = arg;
    write_frames(link);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct sc_link *link = arg;
    if (link->state == SC_LINK_PROBE_DRAIN || link->state == SC_LINK_CLOSING) {
        finalize(link); /* silence over, or the peer went away while we closed */
        return;
    }
    if (what & BEV_EVENT_EOF) {
        /* Ending inside a frame or handshake message is a truncation. */
        bool partial = link->rx_body_len != 0 ||
                       evbuffer_get_length(bufferevent_get_input(link->bev)) != 0;
        if (partial)
            link_end(link, SC_REASON_PROTOCOL_ERROR, false, END_TELL);
        else
            link_end(link, SC_REASON_PEER_CLOSED, true, END_NOW);
    }
    else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        link_end(link, SC_REASON_IO_ERROR, false, END_NOW);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_link *link = arg;
    switch (link->state) {
    case SC_LINK_HANDSHAKING:
        link_end(link, SC_REASON_TIMEOUT, false, END_NOW);
        break;
    case SC_LINK_PROBE_DRAIN:
        finalize(link);
        break;
    case SC_LINK_CLOSING:
        finalize(link); /* linger over: drop what did not leave */
        break;
    default:
        break;
    }
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_link *link = arg;
    if (link->state != SC_LINK_AUTHENTICATED)
        return;
    if (link->ping_outstanding && ++link->stats.heartbeats_missed >= link->cfg.heartbeat_miss_limit) {
        fail(link, SC_REASON_HEARTBEAT_TIMEOUT);
        return;
    }
    send_ping(link);
}

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_link *link = arg;
    link->flush_scheduled = false;
    if (link->state != SC_LINK_CLOSED) {
        write_frames(link);
        return;
    }
    enum sc_reason reason = link->close_reason;
    bool by_peer = link->close_by_peer;
    if (link->cfg.cb.on_closed)
        link->cfg.cb.on_closed(link, reason, by_peer, link->cfg.cb_arg);
    release(link);
    free(link);
}

/* ---- public ---------------------------------------------------------------- */

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
    cfg->accept.priority = SC_PRIORITY_UNTRUSTED;
    cfg->accept.max_message_bytes = SC_MESSAGE_PAYLOAD_BYTES_DEFAULT;
    cfg->accept.heartbeat_interval_ms = SC_HEARTBEAT_INTERVAL_MS_DEFAULT;
}

static int check_config(const struct sc_link_config *c)
{
    if (!c->identity || !c->link_key || c->connection_timeout_ms == 0 ||
        c->max_frame_bytes < SC_FRAME_BODY_MIN_BYTES ||
        c->max_frame_bytes > SC_FRAME_BODY_MAX_BYTES ||
        c->max_message_bytes > SC_MESSAGE_PAYLOAD_MAX_BYTES || c->send_queue_bytes == 0 ||
        c->send_queue_messages == 0 || c->rekey_after_frames == 0 ||
        c->rekey_after_bytes == 0 || c->rekey_after_ms == 0 ||
        (c->heartbeat_interval_ms && c->heartbeat_miss_limit == 0))
        return SC_EINVAL;
    return 0;
}

int sc_link_new(struct event_base *base, struct bufferevent *bev, const struct sc_link_config *cfg,
                struct sc_link **out)
{
    *out = NULL;
    int err = check_config(cfg);
    struct sc_link *link = err ? NULL : calloc(1, sizeof *link);
    if (!link) {
        bufferevent_free(bev);
        return err ? err : SC_ENOMEM;
    }
    link->base = base;
    link->bev = bev;
    link->cfg = *cfg;
    link->state = SC_LINK_HANDSHAKING;
    link->stats.state = SC_LINK_HANDSHAKING;
    link->timer = evtimer_new(base, on_timer, link);
    link->deferred = event_new(base, -1, 0, on_deferred, link);
    link->pending = evbuffer_new();
    link->hs = calloc(1, sizeof *link->hs);
    if (!link->timer || !link->deferred || !link->pending || !link->hs) {
        release(link);
        free(link);
        return SC_ENOMEM;
    }
    struct sc_hs_config hc = {
        .initiator = cfg->initiator,
        .identity = cfg->identity,
        .link_key = cfg->link_key,
        .has_expected_id = cfg->has_expected_id,
        .probe_resistance = cfg->probe_resistance,
        .max_message_bytes = cfg->max_message_bytes,
    };
    memcpy(hc.expected_id, cfg->expected_id, SC_RELAY_ID_BYTES);
    err = sc_hs_init(link->hs, &hc);
    uint8_t msg1[SC_HS_MSG1_BYTES];
    if (!err && cfg->initiator)
        err = sc_hs_write_msg1(link->hs, msg1);
    if (err) {
        release(link);
        free(link);
        return err;
    }
    bufferevent_setcb(bev, on_read, on_write, on_event, link);
    bufferevent_setwatermark(bev, EV_READ, 0, HANDSHAKE_READ_MAX_BYTES);
    if (cfg->initiator) {
        evbuffer_add(bufferevent_get_output(bev), msg1, sizeof msg1);
        link->stats.bytes_sent += sizeof msg1;
    }
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    arm_timer(link->timer, cfg->connection_timeout_ms);
    *out = link;
    return 0;
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
    release(link);
    free(link);
}

void sc_link_get_stats(const struct sc_link *link, struct sc_link_stats *out) { *out = link->stats; }
enum sc_link_state sc_link_state(const struct sc_link *link) { return link->state; }

const uint8_t *sc_link_peer_id(const struct sc_link *link)
{
    return link->accepted ? link->peer_id : NULL;
}

const uint8_t *sc_link_peer_link_key(const struct sc_link *link)
{
    return link->accepted ? link->peer_link_key : NULL;
}

const struct sc_accept_info *sc_link_accept_info(const struct sc_link *link) { return &link->accept; }
bool sc_link_is_initiator(const struct sc_link *link) { return link->cfg.initiator; }

int sc_link_handshake_hash(const struct sc_link *link, uint8_t out[64])
{
    if (!link->accepted)
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
