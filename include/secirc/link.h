/* secirc/link.h — the secure link: one authenticated, encrypted, framed
 * channel to another relay over any connected libevent bufferevent.
 *
 * A link runs the handshake (Noise_XX_25519_ChaChaPoly_BLAKE2b plus
 * ACCEPT/REJECT, docs/PROTOCOL.md), then carries relay messages, answers and
 * sends heartbeats, rekeys, and reports what happens through callbacks. It
 * never knows which transport (tcp, socks5, tls, websocket) is under it. */
#ifndef SECIRC_LINK_H
#define SECIRC_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secirc/error.h"
#include "secirc/identity.h"
#include "secirc/limits.h"

struct event_base;
struct bufferevent;

/* Why a link ended or was refused. The number is the wire code of REJECT
 * and CLOSE messages (docs/PROTOCOL.md); sc_reason_name() gives the string
 * used in logs and counters. */
#define SC_REASON_MAP(XX)                                                         \
    XX(NONE, 0, "none", "no reason")                                              \
    XX(LOCAL_CLOSE, 1, "local_close", "closed by this side")                      \
    XX(PEER_CLOSED, 2, "peer_closed", "the peer closed the connection")           \
    XX(TIMEOUT, 3, "timeout", "handshake not complete within connection_timeout") \
    XX(HEARTBEAT_TIMEOUT, 4, "heartbeat_timeout", "heartbeats went unanswered")   \
    XX(PROTOCOL_ERROR, 5, "protocol_error", "malformed or unexpected data")       \
    XX(DECRYPT_FAILED, 6, "decrypt_failed", "a frame failed authentication")      \
    XX(OVERSIZE, 7, "oversize", "a frame or message over the size limit")         \
    XX(IDENTITY_MISMATCH, 8, "identity_mismatch", "peer is not the expected relay") \
    XX(CERT_INVALID, 9, "cert_invalid", "bad link-key certificate")               \
    XX(CERT_EXPIRED, 10, "cert_expired", "expired link-key certificate")          \
    XX(HANDSHAKE_FAILED, 11, "handshake_failed", "handshake message failed to verify") \
    XX(PROBE_DROPPED, 12, "probe_dropped", "first message without our mac1")      \
    XX(BUSY, 13, "busy", "no room for another link")                              \
    XX(NOT_ALLOWED, 14, "not_allowed", "this relay is not allowed")               \
    XX(PROTOCOL_VERSION, 15, "protocol_version", "no common protocol version")    \
    XX(IO_ERROR, 16, "io_error", "transport error")                               \
    XX(HANDSHAKE_LIMIT, 17, "handshake_limit", "too many handshakes in progress") \
    XX(SHUTDOWN, 18, "shutdown", "relay shutting down")                           \
    XX(DUPLICATE, 19, "duplicate", "already linked to this relay")                \
    XX(SELF, 20, "self", "connected to ourselves")                                \
    XX(CONNECT_FAILED, 21, "connect_failed", "could not connect")                 \
    XX(PROBE_REPLAYED, 22, "probe_replayed", "a message 1 seen before (replayed)") \
    XX(RATE_LIMITED, 23, "rate_limited", "too many new connections from here")    \
    XX(EVICTED, 24, "evicted", "replaced by a peer of higher priority")           \
    XX(TRANSPORT_UNAVAILABLE, 25, "transport_unavailable", "transport not available") \
    XX(LIMIT_REACHED, 26, "limit_reached", "max_connections peers already linked") \
    XX(PROXY_FAILED, 27, "proxy_failed", "the proxy (SOCKS5 or HTTP CONNECT) failed or could not reach the target") \
    XX(PROXY_AUTH_FAILED, 28, "proxy_auth_failed", "the proxy (SOCKS5 or HTTP CONNECT) refused our credentials") \
    XX(TOR_UNAVAILABLE, 29, "tor_unavailable", "nothing accepts connections on the Tor SOCKS port") \
    XX(ONION_UNREACHABLE, 30, "onion_unreachable", "Tor could not reach the onion service") \
    XX(WEBSOCKET_FAILED, 31, "websocket_failed", "WebSocket upgrade refused or frames malformed") \
    XX(TLS_FAILED, 32, "tls_failed", "TLS handshake failed")                     \
    XX(TLS_VERSION, 33, "tls_version", "no common TLS protocol version")         \
    XX(TLS_CERT, 34, "tls_cert", "TLS certificate not verified or pin mismatch")

enum sc_reason {
#define SC_REASON_ENUM(name, code, str, text) SC_REASON_##name = (code),
    SC_REASON_MAP(SC_REASON_ENUM)
#undef SC_REASON_ENUM
    SC_REASON_COUNT
};

/* "busy", "timeout", ...; "unknown" for codes this build does not know. */
const char *sc_reason_name(unsigned reason);
const char *sc_reason_text(unsigned reason);
/* Name -> reason; -1 if unknown. */
int sc_reason_parse(const char *name);

/* Priority classes (docs/DESIGN.md); no other value is valid. */
enum sc_priority {
    SC_PRIORITY_UNTRUSTED = 2,
    SC_PRIORITY_DISCOVERED = 4,
    SC_PRIORITY_VERIFIED = 6,
    SC_PRIORITY_TRUSTED = 8,
    SC_PRIORITY_FIRST_RING = 10,
};
static inline bool sc_priority_is_valid(unsigned p) { return p >= 2 && p <= 10 && p % 2 == 0; }

/* Link states. Every change goes through one function that checks it:
 *   HANDSHAKING      Noise messages 1-3 in flight
 *     -> KEYED | PROBE_DRAIN | CLOSED
 *   KEYED            transport keys exist; the verdict (ACCEPT/REJECT) is due
 *     -> AUTHENTICATED | CLOSING (responder sends REJECT) | CLOSED
 *   PROBE_DRAIN      silent to a probe: discard input until connection_timeout
 *     -> CLOSED
 *   AUTHENTICATED    messages flow both ways
 *     -> AWAIT_PEER_CLOSE (orderly local close) | CLOSING | CLOSED
 *   AWAIT_PEER_CLOSE our queue, then CLOSE, go out; the peer's messages are
 *                    still delivered until its CLOSE or end of stream
 *     -> CLOSING | CLOSED
 *   CLOSING          no more reading; what is queued (and CLOSE/REJECT) goes out
 *     -> CLOSED
 *   CLOSED           the connection is closed; on_closed follows from the loop */
enum sc_link_state {
    SC_LINK_HANDSHAKING = 1,
    SC_LINK_KEYED,
    SC_LINK_PROBE_DRAIN,
    SC_LINK_AUTHENTICATED,
    SC_LINK_AWAIT_PEER_CLOSE,
    SC_LINK_CLOSING,
    SC_LINK_CLOSED,
};
const char *sc_link_state_name(enum sc_link_state state);

#define SC_MESSAGE_ID_BYTES 16u
/* RELAY flags (docs/PROTOCOL.md): bit 0 = flood to all peers (mesh). */
#define SC_RELAY_FLAG_BROADCAST 0x01u

/* A relay message as delivered; pointers are valid during the callback. */
struct sc_relay_message {
    const uint8_t *id; /* SC_MESSAGE_ID_BYTES */
    uint8_t hop_limit;
    uint8_t flags;
    const uint8_t *payload;
    size_t len;
};

/* What the responder tells an initiator it accepts (the ACCEPT message):
 * the class it gives the initiator, and its own configuration. */
struct sc_accept_info {
    uint8_t priority;              /* class given to the initiator */
    uint32_t max_message_bytes;    /* largest payload the responder takes */
    uint32_t heartbeat_interval_ms; /* the responder's PING interval (0 = none) */
};

struct sc_link;

struct sc_link_callbacks {
    /* Handshake done and ACCEPT exchanged: messages may flow. */
    void (*on_authenticated)(struct sc_link *link, void *arg);
    void (*on_message)(struct sc_link *link, const struct sc_relay_message *msg, void *arg);
    /* A heartbeat answer arrived: one RTT sample (µs). May be NULL. */
    void (*on_rtt)(struct sc_link *link, uint32_t rtt_us, void *arg);
    /* The send queue passed three quarters of its byte or message limit
     * (true: stop producing) or drained below a quarter again (false).
     * May be NULL. */
    void (*on_backpressure)(struct sc_link *link, bool full, void *arg);
    /* Responder only: the initiator is authenticated as `peer_id`. Return
     * SC_REASON_NONE to ACCEPT, setting info->priority (it arrives as the
     * config's priority; the other fields are the link's configuration and
     * cannot be changed), or a reason to REJECT. NULL accepts everyone at
     * the config's priority. */
    enum sc_reason (*policy)(struct sc_link *link, const uint8_t peer_id[SC_RELAY_ID_BYTES],
                             struct sc_accept_info *info, void *arg);
    /* The last callback, exactly once for every link that was started
     * (also when sc_link_free ends it): the link is freed as soon as it
     * returns. by_peer is true when the peer sent the reason. */
    void (*on_closed)(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg);
};

struct sc_link_config {
    const struct sc_identity *identity; /* borrowed; must outlive the link */
    const struct sc_link_key *link_key; /* read only inside sc_link_new() */
    bool initiator;
    bool has_expected_id;               /* initiator: abort unless the peer is expected_id */
    uint8_t expected_id[SC_RELAY_ID_BYTES];
    bool probe_resistance;              /* responder: silent unless mac1 names us */
    uint32_t connection_timeout_ms;     /* whole handshake, ACCEPT included */
    uint32_t heartbeat_interval_ms;     /* our PING timer; 0 = none (initiator: the
                                           responder's, from ACCEPT, if shorter) */
    uint32_t heartbeat_miss_limit;      /* ticks without any frame from the peer */
    uint64_t rekey_after_frames;
    uint64_t rekey_after_bytes;
    uint64_t rekey_after_ms;
    uint32_t max_frame_bytes;           /* coalescing target for our frame bodies */
    uint32_t max_message_bytes;         /* payloads we accept (announced), 64..65497 */
    size_t send_queue_bytes;
    uint32_t send_queue_messages;
    uint32_t max_cert_lifetime_s;       /* refuse peer certificates valid longer */
    uint8_t priority;                   /* responder: class in ACCEPT unless the policy
                                           chooses another (2, 4, 6, 8 or 10) */
    struct sc_link_callbacks cb;
    void *cb_arg;
};

/* Fills every field with its default from secirc/limits.h (no identity). */
void sc_link_config_defaults(struct sc_link_config *cfg);

/* Starts a link over a connected bufferevent, which it takes over (it is
 * freed with the link, also on error). The initiator sends message 1 at
 * once. Callbacks never fire from inside sc_link_new(). cfg->link_key is
 * read only here: it may be freed once this returns. */
int sc_link_new(struct event_base *base, struct bufferevent *bev, const struct sc_link_config *cfg,
                struct sc_link **out) SC_MUST_CHECK;

/* Queues one relay message. SC_ESTATE before authentication or after close,
 * SC_EINVAL for hop_limit 0, SC_ETOOBIG over max_message_bytes (ours or the
 * peer's; every size up to the smaller one is accepted), SC_EAGAIN when the
 * send queue is full (nothing queued; wait for on_backpressure(false)). */
int sc_link_send(struct sc_link *link, const uint8_t id[SC_MESSAGE_ID_BYTES], uint8_t hop_limit,
                 uint8_t flags, const void *payload, size_t len) SC_MUST_CHECK;

/* Starts an orderly close: sends what is queued, then CLOSE with `reason`,
 * and keeps delivering the peer's messages until its answering CLOSE (or
 * EOF) arrives; bounded (SC_LINK_LINGER_MS without progress,
 * SC_LINK_CLOSE_MAX_MS in all). Then on_closed fires from the loop. Before
 * authentication it just closes. Safe to call from any callback; a second
 * call does nothing. */
void sc_link_close(struct sc_link *link, enum sc_reason reason);
/* Tears the link down at once (nothing more is sent; queued messages count
 * as unsent) and fires on_closed (local_close, unless the link had already
 * ended) before it returns. NULL is fine. Not from inside one of this
 * link's own callbacks (use sc_link_close there). */
void sc_link_free(struct sc_link *link);
/* After a link ends its socket lingers (up to SC_STREAM_LINGER_MS) for the
 * peer's FIN, so the connection never ends with a reset. This closes every
 * such socket on `base` now, after one non-blocking turn of the loop that
 * lets what links freed last go; call it once the loop has ended (never
 * from its callbacks), before event_base_free(). */
void sc_link_finish_lingering(struct event_base *base);

struct sc_link_stats {
    enum sc_link_state state;
    uint64_t messages_sent, messages_received;
    uint64_t bytes_sent, bytes_received; /* on the wire */
    uint64_t frames_sent, frames_received;
    uint64_t rekeys_sent, rekeys_received;
    uint32_t rtt_us;                     /* last sample; 0 if none yet */
    uint32_t srtt_us, rttvar_us;         /* EWMA latency and jitter (RFC 6298) of
                                            the samples no bulk data delayed */
    uint64_t rtt_samples_late;           /* samples left out of srtt: queued behind data */
    uint32_t heartbeats_missed;          /* ticks in a row without a frame in */
    uint64_t last_seen_ms;               /* monotonic ms of the last frame in */
    uint64_t authenticated_ms;           /* monotonic ms of authentication; 0 = not yet */
    size_t queued_bytes;
    uint32_t queued_messages;
    uint64_t messages_unsent; /* queued but dropped when the link ended */
};
void sc_link_get_stats(const struct sc_link *link, struct sc_link_stats *out);
/* Only inside on_closed: hands each message that never left this link
 * (still queued, not yet framed), in order, to fn, and forgets it; the owner
 * may send it elsewhere. Returns how many. */
size_t sc_link_take_unsent(struct sc_link *link,
                           void (*fn)(const struct sc_relay_message *msg, void *arg), void *arg);
enum sc_link_state sc_link_state(const struct sc_link *link);
/* The authenticated peer's relay ID, or NULL before authentication. */
const uint8_t *sc_link_peer_id(const struct sc_link *link);
/* The peer's current link key (X25519, from its certificate), or NULL. */
const uint8_t *sc_link_peer_link_key(const struct sc_link *link);
/* What the peer's ACCEPT said (initiator) or what we sent (responder). */
const struct sc_accept_info *sc_link_accept_info(const struct sc_link *link);
bool sc_link_is_initiator(const struct sc_link *link);
/* 64-byte Noise handshake hash, once authenticated (channel binding). */
int sc_link_handshake_hash(const struct sc_link *link, uint8_t out[64]) SC_MUST_CHECK;
void sc_link_set_callbacks(struct sc_link *link, const struct sc_link_callbacks *cb, void *arg);
/* A short text naming the far end in log lines (e.g. "127.0.0.1:5000"). */
void sc_link_set_label(struct sc_link *link, const char *label);
/* Sends a heartbeat now (if none is outstanding); the answer arrives as
 * on_rtt. SC_ESTATE unless authenticated. */
int sc_link_ping(struct sc_link *link) SC_MUST_CHECK;

#endif
