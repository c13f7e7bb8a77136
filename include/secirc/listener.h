/* secirc/listener.h — accepts connections, runs the server side of each
 * transport layer and of the link handshake under one deadline, and hands
 * every authenticated link to its owner in one call.
 *
 * Hard limits that protect the process whatever the owner's policy says
 * (the manager adds priorities and eviction on top):
 *   - handshakes in progress, in total and per source (an IPv4 address, or
 *     an IPv6 /64; an IPv4-mapped IPv6 address counts as the IPv4 address);
 *     when the total is reached, the oldest handshake of the source with the
 *     most in progress makes room for the newcomer;
 *   - new connections per second, in total and per source (token buckets);
 *   - authenticated links: in total, per source and per peer identity;
 *     links_reserved of the total, and the last fd_reserve descriptors of the
 *     process, are only for peers the policy ranks above untrusted, so
 *     strangers can never lock a known peer out.
 * Over a limit a connection is refused at once and counted under its
 * reason (handshake_limit, rate_limited; busy, with a REJECT, for link
 * caps). A probe-resistant listener instead holds refused connections
 * silently until their connection_timeout, then closes with a FIN: to a
 * scanner a cap looks like any unanswered probe. */
#ifndef SECIRC_LISTENER_H
#define SECIRC_LISTENER_H

#include <stdint.h>

#include "secirc/link.h"

struct event_base;
struct sc_listener;

struct sc_listener_config {
    const char *address; /* "127.0.0.1", "::1", "0.0.0.0", "::" (dual stack), … */
    uint16_t port;       /* 0: any free port (see sc_listener_port) */
    int backlog;
    uint32_t max_handshakes;             /* SC_HANDSHAKES_MAX_DEFAULT */
    uint32_t max_handshakes_per_address; /* SC_HANDSHAKES_PER_ADDRESS_MAX_DEFAULT */
    uint32_t handshake_rate;             /* new connections/s, all sources; 0 = no limit */
    uint32_t handshake_burst;
    uint32_t handshake_rate_per_address; /* 0 = no limit */
    uint32_t handshake_burst_per_address;
    uint32_t max_links;                  /* authenticated links accepted here, at once */
    uint32_t max_links_per_address;      /* …from one source, for untrusted peers */
    uint32_t max_links_per_peer;         /* …with one relay identity */
    uint32_t links_reserved;             /* of max_links: not for untrusted peers */
    uint32_t fd_reserve;                 /* descriptors strangers never take */
    uint32_t max_tarpit;                 /* probe resistance: refused connections held */
    uint32_t replay_cache_entries;       /* probe resistance: message-1 replay memory */
    bool log_addresses;                  /* label links and log lines with peer addresses */
    /* Template for every accepted link (initiator is forced off). Its
     * policy callback (with cb_arg) decides each authenticated peer and
     * its priority; its other callbacks are installed on a link when the
     * link is handed over. */
    struct sc_link_config link;
    /* A link authenticated: it is the owner's from now on (its callbacks
     * are link.cb; the owner may set others with sc_link_set_callbacks) and
     * its on_closed goes to the owner. Links that never authenticate stay
     * the listener's and are only counted. */
    void (*on_link)(struct sc_listener *l, struct sc_link *link, void *arg);
    /* A connection ended without becoming a link: refused at accept, a
     * failed transport or link handshake, a probe, a REJECT. May be NULL;
     * the counts are in the stats either way. */
    void (*on_failed)(struct sc_listener *l, enum sc_reason reason, bool by_peer, void *arg);
    void *arg;
};

struct sc_listener_stats {
    uint64_t accepted;       /* connections taken and started */
    uint64_t refused;        /* turned away at accept: over a cap or a rate */
    uint64_t evicted;        /* handshakes ended early to make room */
    uint64_t authenticated;  /* links handed to the owner */
    uint32_t handshakes_in_progress;
    uint32_t links_open;     /* handed-over links still up */
    uint32_t tarpit;         /* refused connections held silently now */
    /* Every end, by reason: refusals under handshake_limit / rate_limited,
     * link-cap refusals under busy, then probe_dropped, timeout, … */
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
/* Stops accepting and ends every connection still handshaking (their
 * sockets are closed; no callback reaches the owner). Links already handed
 * over are the owner's and run on. NULL is fine. */
void sc_listener_free(struct sc_listener *l);

#endif
