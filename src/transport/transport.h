/* transport/transport.h — byte streams as a chain of layers.
 *
 * A dial connects `tcp` and then starts each further layer (socks5, tls,
 * websocket, …) on top of the one below, bottom-up and without blocking,
 * like curl's connection filters; each layer turns a connected bufferevent
 * into a connected bufferevent (a libevent filter) or fails with a reason.
 * The caller gets the top bufferevent and never learns which layers are under
 * it. This layer knows nothing of links, peers or policy. */
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
struct sc_dial;

/* One layer above tcp. `ops` is the layer type's static table; `params`
 * its settings (owned by the caller, valid until the dial finishes). */
struct sc_layer_ops {
    const char *name;
    /* Starts the layer's client negotiation over `below`, which it takes
     * over. Finishes later with sc_dial_layer_ready() or _failed(); may also
     * finish before returning. Returns an error only if it could not start
     * (then it has freed `below`). */
    int (*client_start)(struct sc_dial *dial, const void *params, struct bufferevent *below,
                        void **state);
    /* Abandons a negotiation in progress (frees its bufferevents). */
    void (*cancel)(void *state);
};

struct sc_layer_spec {
    const struct sc_layer_ops *ops;
    const void *params;
};

#define SC_DIAL_LAYERS_MAX 4

struct sc_dial_spec {
    const char *host; /* name or IPv4/IPv6 literal for the tcp connect */
    uint16_t port;
    uint32_t timeout_ms; /* whole dial: connect and every layer */
    struct evdns_base *dns; /* for host names; NULL only for literals */
    size_t nlayers;
    struct sc_layer_spec layers[SC_DIAL_LAYERS_MAX];
};

/* Done: bev is the connected top of the stack (now the caller's) and err 0;
 * or bev NULL, err < 0 and `why` a short reason ("connection refused",
 * "timeout", "socks5: host unreachable", …). Fires exactly once, never
 * from inside sc_dial_start(). */
typedef void (*sc_dial_cb)(struct bufferevent *bev, int err, const char *why, void *arg);

int sc_dial_start(struct event_base *base, const struct sc_dial_spec *spec, sc_dial_cb cb,
                  void *arg, struct sc_dial **out) SC_MUST_CHECK;
/* Abandons a dial in progress; its callback will not fire. NULL is fine. */
void sc_dial_cancel(struct sc_dial *dial);

/* For layer implementations: the layer's negotiation finished. */
void sc_dial_layer_ready(struct sc_dial *dial, struct bufferevent *above);
void sc_dial_layer_failed(struct sc_dial *dial, int err, const char *why);
struct event_base *sc_dial_base(const struct sc_dial *dial);

/* --- tcp ---------------------------------------------------------------- */

/* TCP_NODELAY and keepalive on a connected socket. */
void sc_tcp_tune(int fd);
/* Makes a socket bufferevent move data in large pieces: libevent 2.1 reads
 * at most 4 KiB per wakeup (EVBUFFER_MAX_READ), so after each of its reads
 * this also takes what the socket already holds (FIONREAD), never past the
 * bufferevent's read high-water mark; writes go out up to 256 KiB at once. */
void sc_tcp_bev_setup(struct bufferevent *bev);

struct sc_tcp_listener;
/* Called for every accepted connection with a socket bufferevent (now the
 * callee's) and the peer address. */
typedef void (*sc_accept_cb)(struct bufferevent *bev, const struct sockaddr *addr,
                             socklen_t addrlen, void *arg);
/* Listens on addr:port (port 0 picks a free one; see sc_tcp_listener_port). */
int sc_tcp_listener_new(struct event_base *base, const char *addr, uint16_t port, int backlog,
                        sc_accept_cb cb, void *arg, struct sc_tcp_listener **out) SC_MUST_CHECK;
uint16_t sc_tcp_listener_port(const struct sc_tcp_listener *l);
void sc_tcp_listener_free(struct sc_tcp_listener *l);

/* "1.2.3.4:5" or "[::1]:5" into out (at least 64 bytes). */
void sc_sockaddr_format(const struct sockaddr *sa, char *out, size_t outlen);

#endif
