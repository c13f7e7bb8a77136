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

/* The reason a transport layer's error counts under: the TLS errors have
 * their own (SC_ETLS tls_failed, SC_ETLSVERSION tls_version, SC_ETLSCERT
 * tls_cert); anything else is `fallback` (a listener: protocol_error; a
 * dialer: connect_failed). */
enum sc_reason sc_link_layer_reason(int err, enum sc_reason fallback);

/* Ends a handshake that has not authenticated yet the way a silent probe
 * ends: nothing more is sent, input is discarded until the link's
 * connection deadline, then a FIN (listener eviction under probe
 * resistance). on_closed fires with `reason`. */
void sc_link_end_silently(struct sc_link *link, enum sc_reason reason);

/* Transport layers (tls, websocket, …) every connection a listener accepts
 * negotiates as the server before its link starts, within the link's
 * connection_timeout. The specs are copied; their params must outlive the
 * listener. */
struct sc_listener;
int sc_listener_set_layers(struct sc_listener *l, const struct sc_layer_spec *layers,
                           size_t n) SC_MUST_CHECK;

#endif
