/* transport/socks5.h — the `socks5` transport layer: a client reaching a
 * target through a SOCKS5 proxy (Tor's SOCKS port) over the level below,
 * the connection to the proxy. It drives transport/socks5_proto.h, then
 * hands up the same bufferevent (SOCKS adds no framing). It never resolves
 * the target (the proxy does: no DNS leak) and never has a server side. */
#ifndef SC_TRANSPORT_SOCKS5_H
#define SC_TRANSPORT_SOCKS5_H

#include <stdint.h>

#include "transport/transport.h"

/* params of sc_layer_socks5 (copied when the layer starts). */
struct sc_socks5_params {
    /* The target, sent to the proxy as a name (ATYP 0x03) even when it is
     * an address literal: 1..255 bytes of printable ASCII. */
    const char *host;
    uint16_t port; /* 1..65535 */
    /* Both NULL: no authentication. Both set (1..255 bytes each): RFC 1929
     * username/password, the only method offered, e.g. Tor stream isolation
     * credentials from sc_socks5_isolation_creds(). */
    const char *username;
    const char *password;
};

/* Client side only (server_start is NULL). A bad params (host, port, only
 * one credential) fails to start with SC_EINVAL. The negotiation ends, under
 * the stream's deadline (SC_ETIMEDOUT, "socks5: timed out"), with:
 *   ready        the proxy connected us: the stream's top is the same
 *                bufferevent as below; bytes the proxy sent after its reply
 *                stay in its input for the layer above;
 *   SC_EPROXYAUTH the proxy refused our credentials or our only method;
 *   SC_EONION    Tor could not reach the onion service: its extended replies
 *                0xF0..0xF7, or, for a .onion target, a general failure,
 *                network/host unreachable, connection refused or TTL expired;
 *   SC_EPROXY    any other failure reply, a malformed reply, or the proxy
 *                closed or reset the connection during the negotiation.
 * `why` names the reply and its code: "host unreachable (0x04)",
 * "onion service descriptor can not be found (0xf0)". SC_ECONNREFUSED never
 * comes from this layer: on a dial through a proxy it means the proxy's own
 * port refused the connection (no tor running). query() sets info->onion
 * when the target ends in ".onion". */
extern const struct sc_layer_ops sc_layer_socks5;

#endif
