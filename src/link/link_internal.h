/* link/link_internal.h — the secure link's inside, shared by its files:
 * link.c (life cycle and the one close path), link_io.c (reading and
 * writing frames and handshake messages) and link_timers.c (one timer per
 * purpose). Nothing outside src/link includes this. */
#ifndef SC_LINK_INTERNAL_H
#define SC_LINK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto/noise.h"
#include "link/handshake.h"
#include "link/link_stream.h"
#include "secirc/link.h"

struct evbuffer;
struct event;

/* One event per purpose (WireGuard's timers.c): each is armed and cleared
 * only by the link_timers_on_* hooks, named after what happened. */
struct link_timers {
    struct event *deadline;  /* connection_timeout: handshake, probe drain */
    struct event *heartbeat; /* persistent while authenticated */
    struct event *linger;    /* closing: no progress for SC_LINK_LINGER_MS */
    struct event *cert;      /* the peer's certificate expires */
    struct event *flush;     /* deferred write: coalesces sends of one loop turn */
    struct event *teardown;  /* on_closed, then free, from the loop */
};

/* Control messages waiting to lead the next frame. */
struct link_ctrl {
    bool accept, reject, close, ping, pong;
    uint16_t reason;
    uint64_t ping_nonce, pong_nonce;
};

struct sc_link {
    struct event_base *base;
    struct sc_stream *stream;
    struct bufferevent *bev; /* the stream's top, cached */
    struct sc_link_config cfg; /* link_key is cleared once the handshake has its copy */
    enum sc_link_state state;
    struct sc_handshake *hs; /* only while the Noise handshake runs */
    struct sc_replay_cache *replay;
    uint64_t deadline_ms;    /* absolute: connection start + connection_timeout */
    struct sc_noise_cipher tx, rx;
    uint8_t hash[SC_NOISE_HASH_BYTES];
    uint8_t peer_id[SC_RELAY_ID_BYTES];
    uint8_t peer_link_key[SC_LINK_KEY_BYTES];
    uint64_t peer_cert_expiry;
    char peer_hex[17]; /* first 16 hex digits, for logs */
    char label[64];
    struct sc_accept_info accept;
    uint32_t peer_max_message; /* largest payload the peer takes */
    uint32_t heartbeat_ms;     /* our PING interval: ours, or the responder's if shorter */
    struct link_timers t;
    uint64_t close_deadline_ms;

    /* Send queue: encoded messages not yet framed. */
    struct evbuffer *pending;
    size_t pending_bytes;
    uint32_t pending_msgs;
    uint32_t unsent_msgs; /* dropped from the queue, content kept for take_unsent */
    bool backpressured;
    struct link_ctrl ctrl;

    /* Receive: 0 while waiting for a frame header, else the body length. */
    size_t rx_body_len;

    /* Liveness and RTT. */
    bool heard;              /* an authenticated frame arrived since the last tick */
    bool ping_outstanding;
    bool ping_clean;         /* nothing of ours was queued ahead of the PING */
    uint64_t ping_sent_us;
    uint64_t relays_at_ping; /* messages received when the PING left */

    /* Rekey accounting for the send direction. */
    uint64_t tx_frames_since_rekey, tx_bytes_since_rekey, tx_rekeyed_ms;

    struct sc_link_stats stats;
    enum sc_reason close_reason;
    bool close_by_peer;
    sc_link_observer observer;
    void *observer_arg;
};

/* How a link ends (link_end):
 *   END_ABORT    drop everything now, no goodbye (I/O error, sc_link_free);
 *   END_NOW      no more frames; the stream closes politely (EOF, handshake
 *                timeout, a REJECT received, a failure before keys);
 *   END_TELL     an error: drop the queue, send CLOSE (or REJECT), stop
 *                reading, close once that is written;
 *   END_ANSWER   the peer sent CLOSE: send our queue, then CLOSE back, stop
 *                reading, close once written;
 *   END_ORDERLY  a local close: send our queue, then CLOSE, keep reading
 *                (and delivering) until the peer's CLOSE or EOF arrives. */
enum link_end_mode { END_ABORT, END_NOW, END_TELL, END_ANSWER, END_ORDERLY };

/* link.c */
void link_set_state(struct sc_link *link, enum sc_link_state next);
void link_end(struct sc_link *link, enum sc_reason reason, bool by_peer, enum link_end_mode mode);
void link_fail(struct sc_link *link, enum sc_reason reason);
void link_finalize(struct sc_link *link, bool polite);
void link_become_authenticated(struct sc_link *link);
void link_schedule_flush(struct sc_link *link);
void link_teardown(struct sc_link *link);

/* link_io.c */
void link_write_frames(struct sc_link *link);
void link_send_ping(struct sc_link *link);
void link_on_read(struct bufferevent *bev, void *arg);
void link_on_write(struct bufferevent *bev, void *arg);
void link_on_event(struct bufferevent *bev, short what, void *arg);
/* Closing: write what is left; finalize when all is out (and, waiting for
 * the peer's CLOSE, once it came). */
void link_close_progress(struct sc_link *link);

/* link_timers.c */
int link_timers_init(struct sc_link *link) SC_MUST_CHECK;
void link_timers_free(struct sc_link *link);
void link_timers_on_start(struct sc_link *link);
void link_timers_on_authenticated(struct sc_link *link);
void link_timers_on_closing(struct sc_link *link);
void link_timers_on_progress(struct sc_link *link);
void link_timers_on_finalized(struct sc_link *link);

#endif
