/* link/link_io.c — the secure link's bytes: handshake messages in, frames
 * out (control messages first, then as many queued messages as fit, then
 * CLOSE or REKEY) and frames in. Reads only the stream's top bufferevent;
 * checks every length against its bound before it buffers or allocates. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "link/frame.h"
#include "link/link_internal.h"
#include "util/hex.h"
#include "util/time.h"

/* ---- writing ----------------------------------------------------------------- */

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
        if (c->cb.on_backpressure)
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

static size_t message_size_at(struct sc_link *link, struct evbuffer_ptr *pos)
{
    uint8_t hdr[SC_MSG_HEADER_BYTES];
    if (evbuffer_copyout_from(link->pending, pos, hdr, sizeof hdr) != (ev_ssize_t)sizeof hdr)
        return 0;
    return SC_MSG_HEADER_BYTES + ((size_t)hdr[1] << 8 | hdr[2]);
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
        size_t len = message_size_at(link, &pos);
        if (len == 0 || taken + len > room)
            break;
        taken += len;
        n++;
        if (evbuffer_ptr_set(link->pending, &pos, len, EVBUFFER_PTR_ADD) < 0)
            break;
    }
    *count = n;
    return taken;
}

/* What the next frame carries, sized before anything is written. */
struct frame_plan {
    size_t ctrl_bytes, data_bytes;
    uint32_t count;
    bool close, rekey;
    size_t body;
};

static bool frames_allowed(const struct sc_link *link)
{
    switch (link->state) {
    case SC_LINK_KEYED:
    case SC_LINK_AUTHENTICATED:
        return true;
    case SC_LINK_AWAIT_PEER_CLOSE:
    case SC_LINK_CLOSING:
        return link->ctrl.close || link->ctrl.reject; /* nothing after our CLOSE */
    default:
        return false;
    }
}

static bool plan_frame(struct sc_link *link, struct frame_plan *p)
{
    memset(p, 0, sizeof *p);
    if (!frames_allowed(link))
        return false;
    const struct link_ctrl *c = &link->ctrl;
    p->ctrl_bytes = (c->accept ? SC_MSG_ACCEPT_BYTES : 0) + (c->reject ? SC_MSG_REASON_BYTES : 0) +
                    (c->pong ? SC_MSG_NONCE_BYTES : 0) + (c->ping ? SC_MSG_NONCE_BYTES : 0);
    size_t n = 1 + p->ctrl_bytes;
    bool data_ok = link->pending_msgs > 0 && link->state != SC_LINK_KEYED && !c->reject;
    if (data_ok) {
        /* Coalesce up to max_frame_bytes, leaving room for CLOSE and REKEY;
         * a message too big for that goes alone, up to the wire maximum. */
        size_t reserve = SC_MSG_REKEY_BYTES + (c->close ? SC_MSG_REASON_BYTES : 0);
        size_t target = link->cfg.max_frame_bytes;
        p->data_bytes = target > n + reserve ? pending_fit(link, target - n - reserve, &p->count) : 0;
        if (p->data_bytes == 0 && n == 1) {
            struct evbuffer_ptr pos;
            evbuffer_ptr_set(link->pending, &pos, 0, EVBUFFER_PTR_SET);
            size_t first = message_size_at(link, &pos);
            if (first && 1 + first <= SC_FRAME_BODY_MAX_BYTES) {
                p->data_bytes = first;
                p->count = 1;
            }
        }
        n += p->data_bytes;
    }
    p->close = c->close && link->pending_msgs == p->count &&
               n + SC_MSG_REASON_BYTES <= SC_FRAME_BODY_MAX_BYTES;
    if (p->close)
        n += SC_MSG_REASON_BYTES;
    if (n == 1)
        return false; /* nothing to say: an idle link sends nothing, not even REKEY */
    p->rekey = !p->close && n + SC_MSG_REKEY_BYTES <= SC_FRAME_BODY_MAX_BYTES &&
               rekey_due(link, n + SC_MSG_REKEY_BYTES);
    if (p->rekey)
        n += SC_MSG_REKEY_BYTES;
    p->body = n;
    return true;
}

static size_t put_control(struct sc_link *link, uint8_t *body)
{
    struct link_ctrl *c = &link->ctrl;
    size_t n = 0;
    if (c->accept)
        n += sc_frame_put_accept(body + n, &link->accept);
    if (c->reject)
        n += sc_frame_put_reason(body + n, SC_MSG_REJECT, c->reason);
    if (c->pong)
        n += sc_frame_put_nonce(body + n, SC_MSG_PONG, c->pong_nonce);
    if (c->ping)
        n += sc_frame_put_nonce(body + n, SC_MSG_PING, c->ping_nonce);
    c->accept = c->reject = c->pong = c->ping = false;
    return n;
}

static void count_sent(struct sc_link *link, const struct frame_plan *p, size_t wire_bytes)
{
    link->pending_bytes -= p->data_bytes;
    link->pending_msgs -= p->count;
    link->stats.messages_sent += p->count;
    link->stats.frames_sent++;
    link->stats.bytes_sent += wire_bytes;
    link->tx_frames_since_rekey++;
    link->tx_bytes_since_rekey += p->body;
}

/* Builds, seals and queues one frame. False when there was nothing to send
 * or the link failed. */
static bool write_one_frame(struct sc_link *link)
{
    struct frame_plan p;
    if (!plan_frame(link, &p))
        return false;
    size_t cap = SC_FRAME_HEADER_BYTES + p.body + SC_FRAME_TAG_BYTES;
    struct evbuffer *out = bufferevent_get_output(link->bev);
    struct evbuffer_iovec vec;
    if (evbuffer_reserve_space(out, (ev_ssize_t)cap, &vec, 1) != 1) {
        link_end(link, SC_REASON_IO_ERROR, false, END_ABORT);
        return false;
    }
    uint8_t *frame = vec.iov_base, *body = frame + SC_FRAME_HEADER_BYTES;
    size_t n = 0;
    body[n++] = SC_FRAME_VERSION;
    n += put_control(link, body + n);
    if (p.data_bytes)
        n += (size_t)evbuffer_remove(link->pending, body + n, p.data_bytes);
    if (p.close) { /* CLOSE after the last message, and nothing after it */
        n += sc_frame_put_reason(body + n, SC_MSG_CLOSE, link->ctrl.reason);
        link->ctrl.close = false;
    }
    if (p.rekey)
        n += sc_frame_put_msg_header(body + n, SC_MSG_REKEY, 0);
    size_t sealed = 0;
    if (n != p.body || sc_frame_seal_header(&link->tx, n, frame) != 0 ||
        sc_noise_encrypt(&link->tx, NULL, 0, body, n, body, cap - SC_FRAME_HEADER_BYTES,
                         &sealed) != 0) {
        link_end(link, SC_REASON_IO_ERROR, false, END_ABORT);
        return false;
    }
    vec.iov_len = SC_FRAME_HEADER_BYTES + sealed;
    evbuffer_commit_space(out, &vec, 1);
    count_sent(link, &p, vec.iov_len);
    if (p.rekey) {
        if (sc_noise_rekey(&link->tx) != 0) {
            link_end(link, SC_REASON_IO_ERROR, false, END_ABORT);
            return false;
        }
        link->stats.rekeys_sent++;
        link->tx_frames_since_rekey = 0;
        link->tx_bytes_since_rekey = 0;
        link->tx_rekeyed_ms = sc_mono_ms();
    }
    return true;
}

void link_write_frames(struct sc_link *link)
{
    if (!link->bev)
        return;
    struct evbuffer *out = bufferevent_get_output(link->bev);
    while (evbuffer_get_length(out) < SC_LINK_OUTPUT_HIGH_WATER_BYTES && write_one_frame(link))
        ;
    if (link->state == SC_LINK_CLOSED)
        return;
    link->stats.queued_bytes = link->pending_bytes;
    link->stats.queued_messages = link->pending_msgs;
    if (link->state == SC_LINK_AUTHENTICATED)
        check_backpressure(link);
}

void link_close_progress(struct sc_link *link)
{
    link_write_frames(link);
    if (link->state != SC_LINK_CLOSING && link->state != SC_LINK_AWAIT_PEER_CLOSE)
        return;
    bool all_out = evbuffer_get_length(bufferevent_get_output(link->bev)) == 0 &&
                   link->pending_msgs == 0 && !link->ctrl.close && !link->ctrl.reject;
    if (all_out && link->state == SC_LINK_CLOSING) {
        link_finalize(link, true);
        return;
    }
    link_timers_on_progress(link);
}

int sc_link_send(struct sc_link *link, const uint8_t id[SC_MESSAGE_ID_BYTES], uint8_t hop_limit,
                 uint8_t flags, const void *payload, size_t len)
{
    if (link->state != SC_LINK_AUTHENTICATED)
        return SC_ESTATE;
    if (hop_limit == 0)
        return SC_EINVAL;
    if (len > link->peer_max_message || len > link->cfg.max_message_bytes)
        return SC_ETOOBIG;
    size_t size = SC_MSG_HEADER_BYTES + SC_RELAY_HEADER_BYTES + len;
    if (link->pending_bytes + size > link->cfg.send_queue_bytes ||
        link->pending_msgs + 1 > link->cfg.send_queue_messages)
        return SC_EAGAIN;
    /* One contiguous append: never a header queued without its payload,
     * and one evbuffer call instead of two (two evbuffer_add calls per
     * message cost a stream of 64-byte messages half its sender's CPU). */
    struct evbuffer_iovec vec;
    if (evbuffer_reserve_space(link->pending, (ev_ssize_t)size, &vec, 1) != 1 || vec.iov_len < size)
        return SC_ENOMEM;
    sc_frame_put_relay_header(vec.iov_base, id, hop_limit, flags, len);
    if (len)
        memcpy((uint8_t *)vec.iov_base + SC_MSG_HEADER_BYTES + SC_RELAY_HEADER_BYTES, payload, len);
    vec.iov_len = size;
    if (evbuffer_commit_space(link->pending, &vec, 1) != 0)
        return SC_ENOMEM;
    link->pending_bytes += size;
    link->pending_msgs++;
    link->stats.queued_bytes = link->pending_bytes;
    link->stats.queued_messages = link->pending_msgs;
    check_backpressure(link);
    link_schedule_flush(link);
    return 0;
}

void link_send_ping(struct sc_link *link)
{
    randombytes_buf(&link->ctrl.ping_nonce, sizeof link->ctrl.ping_nonce);
    link->ctrl.ping = true;
    link->ping_outstanding = true;
    link->ping_sent_us = sc_mono_us();
    size_t queued = evbuffer_get_length(bufferevent_get_output(link->bev)) + link->pending_bytes;
    link->ping_clean = queued <= SC_RTT_CLEAN_QUEUE_BYTES;
    link->relays_at_ping = link->stats.messages_received;
    link_write_frames(link);
}

int sc_link_ping(struct sc_link *link)
{
    if (link->state != SC_LINK_AUTHENTICATED)
        return SC_ESTATE;
    if (!link->ping_outstanding)
        link_send_ping(link);
    return 0;
}

/* ---- receiving ------------------------------------------------------------- */

/* A PONG: always reported, but it moves the latency estimate only when
 * neither side's bulk data can have delayed it (RFC 6298 otherwise). */
static void on_pong(struct sc_link *link)
{
    uint64_t rtt64 = sc_mono_us() - link->ping_sent_us;
    uint32_t rtt = rtt64 > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt64;
    struct sc_link_stats *s = &link->stats;
    link->ping_outstanding = false;
    s->rtt_us = rtt;
    if (link->ping_clean && s->messages_received == link->relays_at_ping) {
        if (s->srtt_us == 0) {
            s->srtt_us = rtt;
            s->rttvar_us = rtt / 2;
        } else { /* rttvar first, with the old srtt */
            uint32_t dev = s->srtt_us > rtt ? s->srtt_us - rtt : rtt - s->srtt_us;
            s->rttvar_us = (uint32_t)(((uint64_t)s->rttvar_us * 3 + dev) / 4);
            s->srtt_us = (uint32_t)(((uint64_t)s->srtt_us * 7 + rtt) / 8);
        }
    } else {
        s->rtt_samples_late++;
    }
    if (link->cfg.cb.on_rtt)
        link->cfg.cb.on_rtt(link, rtt, link->cfg.cb_arg);
}

static uint32_t min_nonzero(uint32_t a, uint32_t b)
{
    if (!a || !b)
        return a ? a : b;
    return a < b ? a : b;
}

/* Initiator before ACCEPT: the first message must be the verdict. */
static bool handle_verdict(struct sc_link *link, const struct sc_frame_msg *m)
{
    if (m->type == SC_MSG_ACCEPT) {
        link->accept = m->u.accept;
        if (link->accept.max_message_bytes < link->peer_max_message)
            link->peer_max_message = link->accept.max_message_bytes;
        link->heartbeat_ms = min_nonzero(link->cfg.heartbeat_interval_ms,
                                         link->accept.heartbeat_interval_ms);
        link_become_authenticated(link);
        return link->state == SC_LINK_AUTHENTICATED;
    }
    if (m->type == SC_MSG_REJECT)
        link_end(link, m->u.reason, true, END_NOW);
    else
        link_fail(link, SC_REASON_PROTOCOL_ERROR);
    return false;
}

/* Handles one decoded message; false when the link is ending (the rest of
 * the frame is not processed). */
static bool handle_message(struct sc_link *link, const struct sc_frame_msg *m, bool *rekey)
{
    const struct sc_link_config *c = &link->cfg;
    if (link->state == SC_LINK_KEYED)
        return handle_verdict(link, m);
    switch (m->type) {
    case SC_MSG_RELAY:
        link->stats.messages_received++;
        if (c->cb.on_message)
            c->cb.on_message(link, &m->u.relay, c->cb_arg);
        break;
    case SC_MSG_PING:
        if (link->state == SC_LINK_AUTHENTICATED) {
            link->ctrl.pong_nonce = m->u.nonce;
            link->ctrl.pong = true;
        }
        break;
    case SC_MSG_PONG:
        if (link->ping_outstanding && m->u.nonce == link->ctrl.ping_nonce)
            on_pong(link);
        break;
    case SC_MSG_CLOSE:
        if (link->state == SC_LINK_AWAIT_PEER_CLOSE) { /* the answer to our orderly close */
            link_set_state(link, SC_LINK_CLOSING);
            bufferevent_disable(link->bev, EV_READ);
            link_close_progress(link);
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
        link_fail(link, SC_REASON_PROTOCOL_ERROR);
        return false;
    }
    return link->state == SC_LINK_AUTHENTICATED || link->state == SC_LINK_AWAIT_PEER_CLOSE;
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

/* The messages of one decrypted body; false once the link stops reading. */
static bool handle_body(struct sc_link *link, const uint8_t *body, size_t len, size_t ct_len)
{
    struct sc_frame_reader r;
    int err = sc_frame_reader_init(&r, body, len, link->cfg.max_message_bytes);
    bool rekey = false;
    struct sc_frame_msg m;
    while (!err && (err = sc_frame_next(&r, &m)) == 1) {
        err = 0;
        if (!handle_message(link, &m, &rekey))
            break;
    }
    if (link->state == SC_LINK_CLOSED)
        return false; /* the input buffer went with the stream */
    evbuffer_drain(bufferevent_get_input(link->bev), ct_len);
    if (err) {
        link_fail(link, frame_error_reason(err));
        return false;
    }
    if (rekey) {
        if (sc_noise_rekey(&link->rx) != 0) {
            link_fail(link, SC_REASON_PROTOCOL_ERROR);
            return false;
        }
        link->stats.rekeys_received++;
    }
    return true;
}

static bool reading_frames(const struct sc_link *link)
{
    return link->state == SC_LINK_KEYED || link->state == SC_LINK_AUTHENTICATED ||
           link->state == SC_LINK_AWAIT_PEER_CLOSE;
}

/* One frame if it is all there: true to look for the next one. */
static bool read_one_frame(struct sc_link *link)
{
    struct evbuffer *in = bufferevent_get_input(link->bev);
    size_t avail = evbuffer_get_length(in);
    if (link->rx_body_len == 0) {
        if (avail < SC_FRAME_HEADER_BYTES)
            return false;
        uint8_t hdr[SC_FRAME_HEADER_BYTES];
        evbuffer_copyout(in, hdr, sizeof hdr);
        size_t body_len;
        int err = sc_frame_open_header(&link->rx, hdr, &body_len);
        if (err) {
            link_fail(link, frame_error_reason(err));
            return false;
        }
        evbuffer_drain(in, sizeof hdr);
        link->stats.bytes_received += sizeof hdr;
        link->rx_body_len = body_len;
        avail -= sizeof hdr;
    }
    size_t ct_len = link->rx_body_len + SC_FRAME_TAG_BYTES;
    if (avail < ct_len)
        return false;
    uint8_t *ct = evbuffer_pullup(in, (ev_ssize_t)ct_len);
    size_t body_len = 0;
    if (!ct || sc_noise_decrypt(&link->rx, NULL, 0, ct, ct_len, ct, ct_len, &body_len) != 0) {
        link_fail(link, SC_REASON_DECRYPT_FAILED);
        return false;
    }
    /* Any authenticated frame proves the peer alive (WireGuard's rule). */
    link->stats.frames_received++;
    link->stats.bytes_received += ct_len;
    link->stats.last_seen_ms = sc_mono_ms();
    link->stats.heartbeats_missed = 0;
    link->heard = true;
    link->rx_body_len = 0;
    return handle_body(link, ct, body_len, ct_len);
}

static void read_frames(struct sc_link *link)
{
    while (reading_frames(link) && read_one_frame(link))
        ;
}

/* ---- handshake ---------------------------------------------------------------- */

/* Silent to probes: read and discard until the deadline. */
static void go_silent(struct sc_link *link, enum sc_reason reason)
{
    link->close_reason = reason;
    link_set_state(link, SC_LINK_PROBE_DRAIN);
    evbuffer_drain(bufferevent_get_input(link->bev), SIZE_MAX);
}

static void hs_failed(struct sc_link *link)
{
    enum sc_reason r = link->hs->reason ? link->hs->reason : SC_REASON_HANDSHAKE_FAILED;
    if (r == SC_REASON_PROBE_DROPPED)
        go_silent(link, r);
    else
        link_fail(link, r);
}

static void handshake_done(struct sc_link *link)
{
    struct sc_handshake *hs = link->hs;
    sc_hex_encode(hs->peer_id, 8, link->peer_hex);
    memcpy(link->peer_id, hs->peer_id, SC_RELAY_ID_BYTES);
    memcpy(link->peer_link_key, hs->peer_link_key, SC_LINK_KEY_BYTES);
    link->peer_max_message = hs->peer_max_message;
    link->peer_cert_expiry = hs->peer_cert_expiry;
    int err = sc_hs_finish(hs, &link->tx, &link->rx, link->hash);
    sc_hs_clear(hs);
    sodium_memzero(hs, sizeof *hs);
    free(hs);
    link->hs = NULL;
    if (err) {
        link_fail(link, SC_REASON_HANDSHAKE_FAILED);
        return;
    }
    link_set_state(link, SC_LINK_KEYED);
    link->tx_rekeyed_ms = sc_mono_ms();
    bufferevent_setwatermark(link->bev, EV_READ, 0, SC_LINK_INPUT_HIGH_WATER_BYTES);
}

/* Responder with the initiator authenticated: ask the owner, answer. The
 * policy chooses the priority; max_message and the heartbeat interval are
 * this link's configuration. */
static void respond_verdict(struct sc_link *link)
{
    const struct sc_link_config *c = &link->cfg;
    struct sc_accept_info info = {.priority = c->priority,
                                  .max_message_bytes = c->max_message_bytes,
                                  .heartbeat_interval_ms = c->heartbeat_interval_ms};
    enum sc_reason verdict = SC_REASON_NONE;
    if (c->cb.policy)
        verdict = c->cb.policy(link, link->peer_id, &info, c->cb_arg);
    if (link->state != SC_LINK_KEYED)
        return;
    if (verdict != SC_REASON_NONE) {
        link_end(link, verdict, false, END_TELL);
        return;
    }
    link->accept.priority = sc_priority_is_valid(info.priority) ? info.priority : c->priority;
    link->accept.max_message_bytes = c->max_message_bytes;
    link->accept.heartbeat_interval_ms = c->heartbeat_interval_ms;
    link->ctrl.accept = true; /* leads the first frame, before any message */
    link_become_authenticated(link);
    link_write_frames(link);
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
        if (link->hs->state == SC_HS_START && link->cfg.probe_resistance)
            go_silent(link, SC_REASON_PROBE_DROPPED); /* not a message 1 */
        else
            link_fail(link, SC_REASON_PROTOCOL_ERROR);
        return NULL;
    }
    evbuffer_remove(in, buf, size);
    link->stats.bytes_received += size;
    return buf;
}

/* Probe resistance: a message 1 seen before (recorded and replayed) gets
 * the same silence as a probe. */
static bool replayed(struct sc_link *link, const uint8_t msg1[SC_HS_MSG1_BYTES])
{
    if (!link->replay || !link->hs->mac1_named_us)
        return false;
    int err = sc_replay_check(link->replay, msg1, link->hs->mac1_epoch,
                              sc_unix_s() / SC_MAC1_EPOCH_S);
    if (!err)
        return false;
    go_silent(link, err == SC_EEXIST ? SC_REASON_PROBE_REPLAYED : SC_REASON_HANDSHAKE_LIMIT);
    return true;
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
        if (sc_hs_read_msg1(hs, buf) != 0) {
            hs_failed(link);
            return;
        }
        if (replayed(link, buf))
            return;
        if (sc_hs_write_msg2(hs, out) != 0) {
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
        if (link->state == SC_LINK_KEYED)
            respond_verdict(link);
        return;
    default:
        link_fail(link, SC_REASON_PROTOCOL_ERROR);
        return;
    }
}

/* ---- bufferevent callbacks ------------------------------------------------------ */

void link_on_read(struct bufferevent *bev, void *arg)
{
    struct sc_link *link = arg;
    if (link->state == SC_LINK_PROBE_DRAIN) {
        evbuffer_drain(bufferevent_get_input(bev), SIZE_MAX);
        return;
    }
    if (link->state == SC_LINK_HANDSHAKING)
        read_handshake(link);
    read_frames(link);
    if (link->state == SC_LINK_AUTHENTICATED)
        link_write_frames(link); /* a PONG, at once */
}

void link_on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct sc_link *link = arg;
    if (link->state == SC_LINK_CLOSING || link->state == SC_LINK_AWAIT_PEER_CLOSE)
        link_close_progress(link);
    else
        link_write_frames(link);
}

void link_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct sc_link *link = arg;
    bool eof = (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR);
    switch (link->state) {
    case SC_LINK_PROBE_DRAIN:
        link_finalize(link, true); /* the prober went away */
        return;
    case SC_LINK_CLOSING:
    case SC_LINK_AWAIT_PEER_CLOSE:
        link_finalize(link, eof); /* the peer is gone while we closed */
        return;
    default:
        break;
    }
    int layer_err = 0;
    const struct sc_layer_ops *broken = eof ? sc_stream_fault(link->stream, &layer_err) : NULL;
    if (broken) {
        /* A layer's own protocol broke (its goodbye is queued below). */
        link_end(link, sc_link_layer_reason(broken, layer_err), false, END_NOW);
    } else if (eof) {
        /* Ending inside a frame or handshake message is a truncation. */
        bool partial = link->rx_body_len != 0 || evbuffer_get_length(bufferevent_get_input(bev)) != 0;
        if (partial)
            link_end(link, SC_REASON_PROTOCOL_ERROR, false, END_TELL);
        else
            link_end(link, SC_REASON_PEER_CLOSED, true, END_NOW);
    } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        link_end(link, SC_REASON_IO_ERROR, false, END_ABORT);
    }
}
