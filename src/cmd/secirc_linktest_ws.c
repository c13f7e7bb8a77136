/* cmd/secirc_linktest_ws.c — `secirc link-test`'s --ws and --http-proxy
 * options into websocket and http_connect layer specs. Argument handling
 * only: no I/O. */
#include "cmd/secirc_linktest_ws.h"

#include <stdio.h>

int sc_linktest_ws_option(struct sc_linktest_ws *x, int opt, const char *arg)
{
    switch (opt) {
    case SC_LINKTEST_WS:
        x->on = true;
        return 0;
    case SC_LINKTEST_WS_PATH:
        x->on = true;
        x->ws.path = arg;
        return 0;
    case SC_LINKTEST_WS_ORIGIN:
        x->ws.origin = arg;
        return 0;
    case SC_LINKTEST_WS_ALLOW_ORIGIN:
        if (x->ws.norigins == SC_LINKTEST_WS_ORIGINS_MAX) {
            fprintf(stderr, "secirc link-test: at most %d --ws-allow-origin\n",
                    SC_LINKTEST_WS_ORIGINS_MAX);
            return 2;
        }
        x->origins[x->ws.norigins++] = arg;
        return 0;
    case SC_LINKTEST_HTTP_PROXY:
        if (sc_http_proxy_parse(arg, &x->proxy_at) != 0) {
            fprintf(stderr, "secirc link-test: --http-proxy needs http://[USER:PASSWORD@]HOST:PORT\n");
            return 2;
        }
        x->use_proxy = true;
        return 0;
    default:
        return 2;
    }
}

struct sc_layer_spec sc_linktest_ws_tunnel(struct sc_linktest_ws *x, const char *host, uint16_t port)
{
    x->tunnel = (struct sc_http_connect_params){
        .host = host, .port = port,
        .user = x->proxy_at.has_user ? x->proxy_at.user : NULL,
        .password = x->proxy_at.has_user ? x->proxy_at.password : NULL};
    return (struct sc_layer_spec){.ops = &sc_layer_http_connect, .params = &x->tunnel};
}

struct sc_layer_spec sc_linktest_ws_layer(struct sc_linktest_ws *x, const char *host, uint16_t port,
                                          bool tls)
{
    x->ws.host = host;
    x->ws.port = port;
    x->ws.tls = tls;
    x->ws.subprotocol = true;
    x->ws.origins = x->origins;
    return (struct sc_layer_spec){.ops = &sc_layer_websocket, .params = &x->ws};
}
