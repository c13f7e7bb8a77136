/* transport/http_connect.h — the `http_connect` layer: a tunnel through an
 * HTTP CONNECT proxy (RFC 9110 9.3.6), client side only. It talks only
 * during the negotiation (transport/http.c builds and checks the exchange),
 * then hands up the level below unchanged. It never touches a socket. */
#ifndef SC_TRANSPORT_HTTP_CONNECT_H
#define SC_TRANSPORT_HTTP_CONNECT_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/transport.h"

/* Parameters of the http_connect layer (client side only): CONNECT
 * host:port through the proxy the layer below is connected to, with Basic
 * authentication when `user` is set (password NULL means empty). It talks
 * only during the negotiation, then hands up the level below unchanged: it
 * sits right above tcp (tcp -> http_connect -> [tls] -> websocket). A 407
 * fails with SC_EPROXYAUTH ("proxy wants authentication (407)"), another
 * status with SC_EPROXY ("proxy answered 403"). */
struct sc_http_connect_params {
    const char *host; /* the relay's name or IP literal */
    uint16_t port;
    const char *user, *password;
};
extern const struct sc_layer_ops sc_layer_http_connect;

/* A proxy given as http://[USER[:PASSWORD]@]HOST:PORT[/] (HOST a name or an
 * [IPv6] literal; PORT required): 0, or SC_EINVAL for anything else (another
 * scheme, a path, a query, a field too long). The password may be empty. */
struct sc_http_proxy {
    char host[256];
    uint16_t port;
    bool has_user;
    char user[128], password[128];
};
int sc_http_proxy_parse(const char *url, struct sc_http_proxy *out) SC_MUST_CHECK;

#endif
