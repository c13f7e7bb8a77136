/* secirc/listener.h — accepts connections and runs the responder side of
 * the link handshake on each, under caps on handshakes in progress (in total
 * and per source address: IPv4 address or IPv6 /64). A connection over a cap
 * is closed at once and counted, never queued. */
#ifndef SECIRC_LISTENER_H
#define SECIRC_LISTENER_H

#include <stdint.h>

#include "secirc/link.h"

struct event_base;
struct sc_listener;

struct sc_listener_config {
    const char *address; /* "127.0.0.1", "::1", "0.0.0.0", … */
    uint16_t port;       /* 0: any free port (see sc_listener_port) */
    int backlog;
    uint32_t max_handshakes;             /* SC_HANDSHAKES_MAX_DEFAULT */
    uint32_t max_handshakes_per_address; /* SC_HANDSHAKES_PER_ADDRESS_MAX_DEFAULT */
    /* Template for every accepted link (initiator is forced off). Callbacks
     * fire for each link with cb_arg; on_closed fires for every link the
     * listener started, authenticated or not. */
    struct sc_link_config link;
};

struct sc_listener_stats {
    uint64_t accepted;         /* connections taken and given a link */
    uint64_t refused;          /* closed at once: over a handshake cap */
    uint64_t authenticated;
    uint32_t handshakes_in_progress;
    uint32_t links_open;
    /* Every link end, by reason (probe_dropped, timeout, decrypt_failed, …). */
    uint64_t closed[SC_REASON_COUNT];
};

void sc_listener_config_defaults(struct sc_listener_config *cfg);
int sc_listener_new(struct event_base *base, const struct sc_listener_config *cfg,
                    struct sc_listener **out) SC_MUST_CHECK;
uint16_t sc_listener_port(const struct sc_listener *l);
void sc_listener_get_stats(const struct sc_listener *l, struct sc_listener_stats *out);
/* New links use `key` from now on; links already up keep theirs. The key is
 * read during each accept only, so the old one may be freed after this. */
void sc_listener_set_link_key(struct sc_listener *l, const struct sc_link_key *key);
/* Stops accepting; links already started keep running on their own. */
void sc_listener_free(struct sc_listener *l);

#endif
