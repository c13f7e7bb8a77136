/* relay/control.h — the daemon's control socket: a Unix-domain stream
 * socket (mode 0600) speaking JSON-RPC 2.0, one request per line and one
 * response per line (docs/CONFIG.md, "Control socket protocol"). It calls
 * only relay/daemon.h; it never reaches into the manager or the links, and
 * never replaces a file that is not a stale socket. */
#ifndef SC_RELAY_CONTROL_H
#define SC_RELAY_CONTROL_H

#include <stddef.h>

/* Longest request line, without its LF; a longer one gets error -32600 and
 * the connection is closed. */
#define SC_CONTROL_LINE_MAX_BYTES (64u * 1024u)
/* Clients connected at once; one more is told so and closed. */
#define SC_CONTROL_CLIENTS_MAX 64u
/* Output queued for one client. A client over it is not read from until it
 * has read its responses; a `watch` client over it when an event comes is
 * closed (it does not keep up). */
#define SC_CONTROL_OUTPUT_MAX_BYTES (1024u * 1024u)
/* A client being closed (after an oversized line, or refused) gets this long
 * to read what is queued for it. */
#define SC_CONTROL_CLOSE_FLUSH_MS 5000u

struct sc_daemon;
struct sc_control;

/* Opens the control socket at `socket_path` on sc_daemon_base(d) and serves
 * it until sc_control_free. A stale socket file (nothing listening: connect
 * fails with ECONNREFUSED) is removed first; any other existing file, or a
 * socket someone listens on, is an error. Returns NULL with a one-line
 * message in err on failure. */
struct sc_control *sc_control_new(struct sc_daemon *d, const char *socket_path, char *err,
                                  size_t errlen);

/* Closes the socket and every client (unsubscribing watchers) and removes
 * the socket file if it is still the one we made. NULL is fine. Called from
 * inside a control request (e.g. by sc_daemon_reload), it closes the socket
 * at once and frees the clients after that request returns. */
void sc_control_free(struct sc_control *c);

#endif
