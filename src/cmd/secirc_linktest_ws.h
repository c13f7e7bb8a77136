/* cmd/secirc_linktest_ws.h — `secirc link-test`'s WebSocket and HTTP proxy
 * options (--ws and friends, --http-proxy): their getopt table entries,
 * their usage text, and the websocket and http_connect layer specs they
 * ask for. Argument handling only; the layers are transport/websocket.c and
 * transport/http_connect.c. */
#ifndef SC_CMD_LINKTEST_WS_H
#define SC_CMD_LINKTEST_WS_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/http_connect.h"
#include "transport/websocket.h"

#define SC_LINKTEST_WS_ORIGINS_MAX 16

/* getopt_long values of these options (above every other option). */
enum {
    SC_LINKTEST_WS = 1200,
    SC_LINKTEST_WS_PATH,
    SC_LINKTEST_WS_ORIGIN,
    SC_LINKTEST_WS_ALLOW_ORIGIN,
    SC_LINKTEST_HTTP_PROXY,
    SC_LINKTEST_WS_END,
};

#define SC_LINKTEST_WS_OPTIONS                                                  \
    {"ws", no_argument, 0, SC_LINKTEST_WS},                                      \
    {"ws-path", required_argument, 0, SC_LINKTEST_WS_PATH},                      \
    {"ws-origin", required_argument, 0, SC_LINKTEST_WS_ORIGIN},                  \
    {"ws-allow-origin", required_argument, 0, SC_LINKTEST_WS_ALLOW_ORIGIN},      \
    {"http-proxy", required_argument, 0, SC_LINKTEST_HTTP_PROXY}

#define SC_LINKTEST_WS_USAGE                                                                 \
    "websocket options:\n"                                                                   \
    "  --ws                       WebSocket on top (both sides), path /relay\n"              \
    "  --ws-path PATH             the same, with another path\n"                             \
    "  --ws-origin ORIGIN         (connect) send this Origin\n"                              \
    "  --ws-allow-origin ORIGIN   (listen) allow this Origin; repeatable (default: any)\n"   \
    "  --http-proxy URL           (connect) through an HTTP CONNECT proxy,\n"                \
    "                             http://[USER:PASSWORD@]HOST:PORT\n"

struct sc_linktest_ws {
    bool on;                          /* --ws or --ws-path */
    struct sc_ws_params ws;
    const char *origins[SC_LINKTEST_WS_ORIGINS_MAX];
    bool use_proxy;                   /* --http-proxy */
    struct sc_http_proxy proxy_at;    /* where the dial goes */
    struct sc_http_connect_params tunnel;
};

/* One of these options (SC_LINKTEST_WS..SC_LINKTEST_WS_END - 1); 0, or 2
 * after a message on stderr. */
int sc_linktest_ws_option(struct sc_linktest_ws *x, int opt, const char *arg);
/* The http_connect layer spec a dial through --http-proxy starts with, for
 * the relay at host:port (the dial itself goes to x->proxy_at). */
struct sc_layer_spec sc_linktest_ws_tunnel(struct sc_linktest_ws *x, const char *host,
                                           uint16_t port);
/* The websocket layer spec (client: Host host:port, over TLS when `tls`). */
struct sc_layer_spec sc_linktest_ws_layer(struct sc_linktest_ws *x, const char *host, uint16_t port,
                                          bool tls);

#endif
