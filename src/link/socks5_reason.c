/* link/socks5_reason.c — which reason (secirc/link.h) a dial through a
 * SOCKS5 proxy that failed counts under, from the transport's error code
 * (transport/socks5.h). A pure mapping: no I/O, no state. */
#include "link/link_stream.h"

enum sc_reason sc_link_socks5_reason(int err, enum sc_reason fallback)
{
    switch (err) {
    case SC_ECONNREFUSED:
        return SC_REASON_TOR_UNAVAILABLE;
    case SC_EPROXYAUTH:
        return SC_REASON_PROXY_AUTH_FAILED;
    case SC_EONION:
        return SC_REASON_ONION_UNREACHABLE;
    case SC_EPROXY:
        return SC_REASON_PROXY_FAILED;
    default:
        return fallback;
    }
}
