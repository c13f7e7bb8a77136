/* relay/http.h — the daemon's HTTP status server (libevent evhttp): GET
 * /status, /peers (JSON) and /metrics (Prometheus text). Reads the daemon
 * only through relay/daemon.h; never changes anything, never serves a path
 * it does not list, never binds an address it was not given. */
#ifndef SC_RELAY_HTTP_H
#define SC_RELAY_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct sc_daemon;
struct sc_http;

/* Largest request head (request line and header fields) read. */
#define SC_HTTP_SERVER_MAX_HEADERS_BYTES 8192
/* Largest request body read (bodies are never used; a small one is read so
 * that a POST gets its 405 rather than a 413). */
#define SC_HTTP_SERVER_MAX_BODY_BYTES 4096
/* A connection idle this long while reading or writing is closed. */
#define SC_HTTP_SERVER_TIMEOUT_S 10

/* Listens on `bind` (an IPv4 or IPv6 literal) and `port` (0: any free port,
 * see sc_http_port; the daemon decides whether to run the server at all)
 * on the daemon's event base. Every response closes its connection.
 * Returns NULL and writes one line to err when the address is not a
 * literal or the socket cannot be bound. */
struct sc_http *sc_http_new(struct sc_daemon *d, const char *bind, uint16_t port, char *err,
                            size_t errlen);
/* The port it listens on (the one chosen by the kernel for port 0). */
uint16_t sc_http_port(const struct sc_http *h);
/* Closes the listener and every connection still open. NULL is fine. */
void sc_http_free(struct sc_http *h);

#endif
