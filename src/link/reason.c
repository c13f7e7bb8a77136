/* link/reason.c — names and texts of close/reject reasons (secirc/link.h),
 * and the reasons transport layer errors count under. Pure table lookups. */
#include <string.h>

#include "link/link_stream.h"
#include "secirc/link.h"
#include "transport/http_connect.h"
#include "transport/websocket.h"

static const char *const names[] = {
#define SC_REASON_NAME(name, code, str, text) [code] = str,
    SC_REASON_MAP(SC_REASON_NAME)
#undef SC_REASON_NAME
};

static const char *const texts[] = {
#define SC_REASON_TEXT(name, code, str, text) [code] = text,
    SC_REASON_MAP(SC_REASON_TEXT)
#undef SC_REASON_TEXT
};

const char *sc_reason_name(unsigned reason)
{
    return reason < SC_REASON_COUNT && names[reason] ? names[reason] : "unknown";
}

const char *sc_reason_text(unsigned reason)
{
    return reason < SC_REASON_COUNT && texts[reason] ? texts[reason] : "unknown reason";
}

int sc_reason_parse(const char *name)
{
    for (unsigned i = 0; i < SC_REASON_COUNT; i++)
        if (names[i] && strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

enum sc_reason sc_link_layer_reason(const struct sc_layer_ops *layer, int err)
{
    switch (err) {
    case SC_ETIMEDOUT:
        return SC_REASON_TIMEOUT;
    case SC_ECONNRESET:
        return SC_REASON_PEER_CLOSED;
    case SC_ETLS:
        return SC_REASON_TLS_FAILED;
    case SC_ETLSVERSION:
        return SC_REASON_TLS_VERSION;
    case SC_ETLSCERT:
        return SC_REASON_TLS_CERT;
    case SC_EPROXY:
    case SC_EPROXYAUTH:
    case SC_EONION:
        return sc_link_socks5_reason(err, SC_REASON_PROXY_FAILED);
    default:
        if (layer == &sc_layer_websocket)
            return SC_REASON_WEBSOCKET_FAILED;
        if (layer == &sc_layer_http_connect)
            return SC_REASON_PROXY_FAILED;
        return SC_REASON_PROTOCOL_ERROR;
    }
}
