/* link/link_stream.h — what the library's own owners of links (the
 * listener, the manager) need beyond secirc/link.h: starting a link on a
 * transport stream under a deadline that began earlier, an observer that
 * sees every end before the owner does, and the stream's facts. */
#ifndef SC_LINK_STREAM_H
#define SC_LINK_STREAM_H

#include <stdint.h>

#include "link/replay.h"
#include "secirc/link.h"
#include "transport/transport.h"

struct sc_link_start {
    /* Monotonic ms when the connection began (accept or dial): the
     * handshake must end by started_ms + connection_timeout_ms. 0 = now. */
    uint64_t started_ms;
    /* Responder with probe resistance: the listener's replay cache, or NULL. */
    struct sc_replay_cache *replay;
};

/* Like sc_link_new, over a stream (taken over, freed on error too). */
int sc_link_start(struct event_base *base, struct sc_stream *stream,
                  const struct sc_link_config *cfg, const struct sc_link_start *start,
                  struct sc_link **out) SC_MUST_CHECK;

/* Called for every end of the link, just before on_closed (a listener
 * keeps its counts with it, whoever owns the link by then). NULL detaches. */
typedef void (*sc_link_observer)(struct sc_link *link, enum sc_reason reason, bool by_peer,
                                 void *arg);
void sc_link_set_observer(struct sc_link *link, sc_link_observer fn, void *arg);

/* The transport's facts (peer address, layers, ALPN, onion). */
void sc_link_stream_info(const struct sc_link *link, struct sc_stream_info *out);

/* Ends a handshake that has not authenticated yet the way a silent probe
 * ends: nothing more is sent, input is discarded until the link's
 * connection deadline, then a FIN (listener eviction under probe
 * resistance). on_closed fires with `reason`. */
void sc_link_end_silently(struct sc_link *link, enum sc_reason reason);

/* The reason a transport layer's failure counts under, from the layer and
 * error that sc_stream_fault or sc_dial_fault report: a layer's deadline is
 * timeout, the peer leaving mid-negotiation peer_closed; the TLS errors
 * (SC_ETLS tls_failed, SC_ETLSVERSION tls_version, SC_ETLSCERT tls_cert) and
 * the proxies' (SC_EPROXY proxy_failed, SC_EPROXYAUTH proxy_auth_failed,
 * SC_EONION onion_unreachable) their own; else the websocket layer
 * websocket_failed, http_connect proxy_failed, anything else
 * protocol_error. */
enum sc_reason sc_link_layer_reason(const struct sc_layer_ops *layer, int err);

/* Transport layers (tls, websocket, …) every connection a listener accepts
 * negotiates as the server before its link starts, within the link's
 * connection_timeout. The specs are copied; their params must outlive the
 * listener. */
struct sc_listener;
int sc_listener_set_layers(struct sc_listener *l, const struct sc_layer_spec *layers,
                           size_t n) SC_MUST_CHECK;

/* The reason a dial through a SOCKS5 proxy (a tcp connection to the proxy,
 * then the socks5 layer) that failed with `err` counts under:
 * SC_ECONNREFUSED tor_unavailable (the proxy's own port refused: the socks5
 * layer never reports it), SC_EPROXYAUTH proxy_auth_failed, SC_EONION
 * onion_unreachable, SC_EPROXY proxy_failed; anything else `fallback`
 * (e.g. connect_failed, or what a layer above socks5 maps its error to). */
enum sc_reason sc_link_socks5_reason(int err, enum sc_reason fallback);

#endif
