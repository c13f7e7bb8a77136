/* transport/transport.h — byte streams as a chain of layers.
 *
 * A stream is a connected socket bufferevent with layers stacked on it
 * (http_connect and websocket here, a test layer, socks5 and tls), like curl's connection
 * filters. Layers start bottom-up without blocking, on the client or the
 * server side, under one deadline; they close top-down (each layer's goodbye,
 * then the TCP FIN). Whoever holds the stream reads and writes its top
 * bufferevent and never learns which layers are under it. This layer knows
 * nothing of links, peers or policy. */
#ifndef SC_TRANSPORT_H
#define SC_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "secirc/error.h"

struct event_base;
struct evdns_base;
struct bufferevent;
struct sc_stream;

/* --- layers ---------------------------------------------------------------- */

/* What a stream can tell about itself (filled bottom-up by every layer). */
struct sc_stream_info {
    char peer[64];                  /* "1.2.3.4:5", "[::1]:5", or "-" when not a socket */
    struct sockaddr_storage peer_addr;
    socklen_t peer_addr_len;        /* 0 when unknown */
    char transport[64];             /* layer names bottom-up: "tcp", "tcp+xor", "tcp+tls" */
    char alpn[32];                  /* ALPN a layer negotiated, or "" */
    bool onion;                     /* reached through Tor to an onion service */
    bool has_binding;               /* a layer gives channel-binding bytes */
    uint8_t binding[32];            /* e.g. the TLS exporter value */
};

enum sc_role { SC_ROLE_CLIENT, SC_ROLE_SERVER };

/* One layer type: a static table, like curl's struct Curl_cftype. A layer
 * never touches the socket: it reads and writes the bufferevent below it
 * (typically through bufferevent_filter_new or bufferevent_openssl_filter_new
 * WITHOUT BEV_OPT_CLOSE_ON_FREE: the stream owns and frees every level).
 * The bufferevent a layer hands up runs its callbacks from the loop, like a
 * socket's (BEV_OPT_DEFER_CALLBACKS): never from inside a write to it. */
struct sc_layer_ops {
    const char *name;
    /* Start the layer's negotiation over `below` (connected). Set *state
     * first; then finish, now or later, with sc_layer_ready() or
     * sc_layer_failed(). Returns an error only if it could not start (then
     * it has freed what it allocated and must not call either). NULL when
     * the layer has no such side. */
    int (*client_start)(struct sc_stream *s, const void *params, struct bufferevent *below,
                        void **state);
    int (*server_start)(struct sc_stream *s, const void *params, struct bufferevent *below,
                        void **state);
    /* Top-down close: queue this layer's goodbye (TLS close_notify,
     * WebSocket close frame) into the bufferevent below, synchronously.
     * Called only once the layer is ready. May be NULL. */
    void (*shutdown)(void *state);
    /* Frees the layer's state and the bufferevent it handed up (never the
     * one below). Called once, in negotiation or after. libevent may keep
     * that bufferevent alive past this call (a filter stacked on it, or a
     * deferred callback, holds a reference until the loop lets it go), so
     * destroy first cuts what could still reach the state it frees: the
     * callbacks it set on below, and (tls) its own reads and writes. */
    void (*destroy)(void *state);
    /* Adds what the layer knows (ALPN, onion, binding) to info. May be NULL. */
    void (*query)(const void *state, struct sc_stream_info *info);
};

struct sc_layer_spec {
    const struct sc_layer_ops *ops;
    const void *params; /* owned by the caller, valid until negotiation ends */
};

#define SC_STREAM_LAYERS_MAX 4

/* For layer implementations: negotiation done; `above` is the layer's
 * connected bufferevent (may be `below` itself for a layer that only talks
 * during negotiation, like SOCKS5). */
void sc_layer_ready(struct sc_stream *s, struct bufferevent *above);
/* Negotiation failed: `why` is a short reason ("server answered 404"). */
void sc_layer_failed(struct sc_stream *s, int err, const char *why);
/* After sc_layer_ready: the layer's own protocol broke (a malformed
 * WebSocket frame, say). Records `ops` and err for the stream's user
 * (sc_stream_fault); the layer has queued its goodbye below and then
 * reports the end of its input upward (BEV_EVENT_EOF on the bufferevent it
 * handed up), so the user closes politely and the goodbye goes out. */
void sc_layer_broken(struct sc_stream *s, const struct sc_layer_ops *ops, int err);

/* A test-only layer that XORs every byte with a fixed value both ways. It
 * proves the seam: the whole link suite runs over it (link-test --layer
 * xor). With `hello`, the client first sends one byte that the server waits
 * for, a negotiation a slow client can stall (link-test --layer xor-hello).
 * params: const struct sc_xor_params * (NULL: key 0x5c, no hello). */
struct sc_xor_params {
    uint8_t key;
    bool hello;
};
extern const struct sc_layer_ops sc_layer_xor;

/* --- streams ----------------------------------------------------------------- */

/* Wraps a connected bufferevent (a socket, or anything else such as one end
 * of a bufferevent pair) as a stream without layers. Takes it over (it is
 * freed with the stream, also on error). `peer` may be NULL. */
int sc_stream_new(struct bufferevent *bev, const struct sockaddr *peer, socklen_t peer_len,
                  struct sc_stream **out) SC_MUST_CHECK;
/* The top of the stack: what the stream's user reads and writes. */
struct bufferevent *sc_stream_bev(const struct sc_stream *s);
struct event_base *sc_stream_base(const struct sc_stream *s);
void sc_stream_get_info(const struct sc_stream *s, struct sc_stream_info *out);

/* The layer whose negotiation failed (also by its deadline) or whose
 * protocol broke afterwards (sc_layer_broken), and its error in *err (may
 * be NULL); NULL when no layer did. The stream's user maps it to a reason. */
const struct sc_layer_ops *sc_stream_fault(const struct sc_stream *s, int *err);

/* Why the stream's user ends the stream, for layers whose goodbye carries
 * a reason (a WebSocket close code; docs/PROTOCOL.md): set it before
 * sc_stream_close. A layer reads it in its shutdown. Default NORMAL. */
enum sc_stream_end {
    SC_STREAM_END_NORMAL,     /* done, or the peer went away (WebSocket 1000) */
    SC_STREAM_END_GOING_AWAY, /* this side shuts down (1001) */
    SC_STREAM_END_PROTOCOL,   /* the peer broke the protocol above (1002) */
    SC_STREAM_END_POLICY,     /* refused: not allowed, a limit, a deadline (1008) */
    SC_STREAM_END_TOO_BIG,    /* over a size limit (1009) */
    SC_STREAM_END_INTERNAL,   /* a failure on this side (1011) */
};
void sc_stream_set_end(struct sc_stream *s, enum sc_stream_end end);
enum sc_stream_end sc_stream_get_end(const struct sc_stream *s);

/* Negotiation finished: err 0 and the stream ready, or err < 0 and `why`.
 * Either way the stream is the callee's again (to use, close or free). */
typedef void (*sc_stream_cb)(struct sc_stream *s, int err, const char *why, void *arg);

/* Starts `n` layers bottom-up on the stream, each as `role`, all within
 * timeout_ms. cb fires exactly once, never from inside this call, unless
 * this returns an error. Freeing the stream abandons the negotiation. */
int sc_stream_negotiate(struct sc_stream *s, enum sc_role role, const struct sc_layer_spec *layers,
                        size_t n, uint32_t timeout_ms, sc_stream_cb cb, void *arg) SC_MUST_CHECK;

/* Orderly close, top-down: each layer's goodbye, then what is queued is
 * written, then a TCP FIN; reads are discarded until the peer's FIN or
 * linger_ms, so the connection never ends with a reset. Detached: the
 * stream is gone for the caller when this returns. */
void sc_stream_close(struct sc_stream *s, uint32_t linger_ms);
/* Says nothing more (no layer goodbye, nothing queued is flushed), reads
 * and discards until `until_ms` (monotonic), then closes with a FIN: how a
 * probe-resistant relay ends a connection it will not answer. */
void sc_stream_close_silent(struct sc_stream *s, uint64_t until_ms);
/* Abortive: frees everything now (unread input may cause a reset). NULL ok. */
void sc_stream_free(struct sc_stream *s);

/* --- lingering closes ---------------------------------------------------------- */

struct sc_closer;
typedef void (*sc_closer_cb)(struct sc_closer *c, void *arg);
/* Takes over a bufferevent (socket or not). Graceful: writes its output,
 * sends FIN, discards input until the peer's FIN or `until_ms`. Silent:
 * discards input until `until_ms` (or the peer's FIN), then closes. done
 * (may be NULL) fires once, when the socket is closed: from inside this
 * call (returning NULL) when the deadline has passed and nothing is
 * queued. */
struct sc_closer *sc_closer_start(struct bufferevent *bev, bool silent, uint64_t until_ms,
                                  sc_closer_cb done, void *arg);
/* Ends a lingering close now (input drained first, so no reset; a graceful
 * one first writes what it still queues, as far as the socket takes it
 * without blocking); done fires. */
void sc_closer_finish(struct sc_closer *c);
/* Ends every lingering close on `base` now, after one non-blocking turn
 * of the loop that lets bufferevents freed in the last turn go: call once
 * the loop has ended (never from its callbacks), before freeing the base. */
void sc_closers_finish_all(struct event_base *base);

/* --- dialing ------------------------------------------------------------------ */

struct sc_dial_spec {
    const char *host; /* name or IPv4/IPv6 literal for the tcp connect */
    uint16_t port;
    const char *source_address; /* local address to bind, or NULL */
    uint32_t timeout_ms;        /* whole dial: resolve, connect and every layer */
    struct evdns_base *dns;     /* for host names; NULL only for literals */
    size_t nlayers;
    struct sc_layer_spec layers[SC_STREAM_LAYERS_MAX];
};

struct sc_dial;
/* Done: stream is the connected stream (now the callee's) and err 0; or
 * stream NULL, err < 0 (an SC_E* code that keeps the system's cause, e.g.
 * SC_ECONNREFUSED) and `why` a short reason ("connection refused",
 * "xor: timed out", …). Fires exactly once, never from inside
 * sc_dial_start(). */
typedef void (*sc_dial_cb)(struct sc_stream *stream, int err, const char *why, void *arg);

int sc_dial_start(struct event_base *base, const struct sc_dial_spec *spec, sc_dial_cb cb,
                  void *arg, struct sc_dial **out) SC_MUST_CHECK;
/* Inside the dial's callback only: the layer that failed the dial and its
 * error, as sc_stream_fault says; NULL when no layer did (DNS, the tcp
 * connect, or the deadline before any layer started). */
const struct sc_layer_ops *sc_dial_fault(const struct sc_dial *dial, int *err);
/* Abandons a dial in progress; its callback will not fire. NULL is fine. */
void sc_dial_cancel(struct sc_dial *dial);

/* --- tcp ------------------------------------------------------------------------ */

/* TCP_NODELAY, keepalive and a short unsent queue (TCP_NOTSENT_LOWAT) on a
 * connected socket. */
void sc_tcp_tune(int fd);
/* Makes a socket bufferevent move data in large pieces: libevent 2.1 reads
 * at most 4 KiB per wakeup (EVBUFFER_MAX_READ), so after each of its reads
 * this also takes what the socket already holds (FIONREAD), never past the
 * bufferevent's read high-water mark; writes go out up to 256 KiB at once. */
void sc_tcp_bev_setup(struct bufferevent *bev);

struct sc_tcp_listener;
/* Called for every accepted connection with its socket (now the callee's:
 * close it, or make it a bufferevent with sc_tcp_bev_new) and the peer
 * address (an IPv4-mapped IPv6 address given as the IPv4 one). Nothing is
 * spent on a connection before the callee decides to keep it. */
typedef void (*sc_accept_cb)(struct event_base *base, int fd, const struct sockaddr *addr,
                             socklen_t addrlen, void *arg);
/* A tuned socket bufferevent (sc_tcp_tune, sc_tcp_bev_setup) that owns fd;
 * NULL when out of memory (fd closed then). */
struct bufferevent *sc_tcp_bev_new(struct event_base *base, int fd);
/* Listens on addr:port (port 0 picks a free one; see sc_tcp_listener_port).
 * An IPv6 wildcard ("::") accepts IPv4 too (dual stack). */
int sc_tcp_listener_new(struct event_base *base, const char *addr, uint16_t port, int backlog,
                        sc_accept_cb cb, void *arg, struct sc_tcp_listener **out) SC_MUST_CHECK;
uint16_t sc_tcp_listener_port(const struct sc_tcp_listener *l);
void sc_tcp_listener_free(struct sc_tcp_listener *l);

/* Frees a bufferevent and closes its socket NOW: libevent 2.1 closes it
 * only when the event loop next runs (bufferevent finalizers), which lets a
 * burst of accepts run out of descriptors while closed ones still count. */
void sc_bev_free_now(struct bufferevent *bev);

/* "1.2.3.4:5" or "[::1]:5" into out (at least 64 bytes). */
void sc_sockaddr_format(const struct sockaddr *sa, char *out, size_t outlen);
/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) rewritten as the IPv4
 * address it is; any other address copied unchanged. */
void sc_sockaddr_unmap(const struct sockaddr *in, struct sockaddr_storage *out, socklen_t *outlen);

#endif
