/* transport/websocket.h — the `websocket` layer (RFC 6455): the HTTP/1.1
 * upgrade over the level below (tcp, tls or a proxy tunnel), then a plain
 * byte stream carried in binary frames for the layer above. It never
 * touches a socket and never knows what the link above it is. */
#ifndef SC_TRANSPORT_WEBSOCKET_H
#define SC_TRANSPORT_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/transport.h"

/* Parameters of the websocket layer (struct sc_layer_spec.params; NULL
 * means every default, server side only). Strings are the caller's and
 * must stay valid until the negotiation ends.
 *
 * Client: GET `path` with Host `host`[:`port`] (the relay's own name and
 * port, also through a proxy), Sec-WebSocket-Version 13, optionally
 * `origin` and the subprotocol secirc.v1; no extension is offered. The
 * answer must be 101 with the exact Sec-WebSocket-Accept.
 * Server: an upgrade of `path` gets 101 (with secirc.v1 when offered, no
 * extension ever: permessage-deflate is declined, docs/DESIGN.md); a plain
 * GET of `path` or "/" a short page (200); any other path 404; another
 * method 405; a Sec-WebSocket-Version other than 13 gets 426 naming 13; an
 * Origin outside a non-empty `origins` 403; a malformed request 400; a head
 * over 8 KiB 431. Every answer but 101 ends the negotiation (it fails with
 * the status in its reason) once the answer is written.
 * Open: the peer's close frame, or a protocol error in its frames (then
 * sc_stream_fault names this layer), reaches the layer above once, as
 * BEV_EVENT_EOF: take the bufferevent in the negotiation callback, as the
 * link does. Our close frame's code comes from sc_stream_set_end. */
struct sc_ws_params {
    const char *path; /* both sides; NULL: "/relay" */
    /* client */
    const char *host; /* name or IP literal of the relay (IPv6 without brackets) */
    uint16_t port;
    bool tls;           /* under wss: Host omits :443 rather than :80 */
    const char *origin; /* NULL: no Origin field */
    bool subprotocol;   /* offer secirc.v1 */
    /* server */
    const char *const *origins; /* allowed Origin values; none: any */
    size_t norigins;
    /* both: largest message taken (fragments summed); 0: SC_WS_MESSAGE_MAX_BYTES */
    size_t max_message_bytes;
};
extern const struct sc_layer_ops sc_layer_websocket;

#endif
