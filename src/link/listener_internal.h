/* link/listener_internal.h — the listener's inside, shared by listener.c
 * (accepting, handing links over) and listener_sources.c (the per-source
 * table: counts, token buckets, the oldest handshake of each source). */
#ifndef SC_LINK_LISTENER_INTERNAL_H
#define SC_LINK_LISTENER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "link/link_stream.h"
#include "secirc/listener.h"
#include "util/ratelimit.h"

#define SC_SOURCE_KEY_BYTES 9u /* family, then the IPv4 address or the IPv6 /64 */

struct tracked;

/* One source of connections. Slots are never freed, only reused for
 * another source once both counts are zero (its rate memory goes then). */
struct source {
    uint8_t key[SC_SOURCE_KEY_BYTES];
    bool used;
    uint32_t handshakes, links;
    struct sc_token_bucket bucket;
    struct tracked *oldest, *newest; /* its handshakes, oldest first */
};

/* A connection the listener started: negotiating transport layers, then
 * handshaking, then an authenticated link the owner has. */
enum tracked_phase { PHASE_LAYERS, PHASE_HANDSHAKE, PHASE_LINK };

struct tracked {
    struct sc_listener *l;
    struct tracked *prev, *next;         /* every tracked connection */
    struct tracked *src_prev, *src_next; /* handshakes of the same source */
    struct source *src;
    enum tracked_phase phase;
    bool counted_handshake;
    struct sc_stream *stream; /* PHASE_LAYERS only */
    struct sc_link *link;     /* from PHASE_HANDSHAKE on */
    uint64_t started_ms;
    int fd;
    char addr[64];
    uint8_t peer_id[SC_RELAY_ID_BYTES]; /* PHASE_LINK */
};

struct sources {
    struct source *slots;
    uint32_t mask;
    uint8_t hash_key[16];
};

int sc_sources_init(struct sources *t, uint32_t live_max) SC_MUST_CHECK;
void sc_sources_free(struct sources *t);
/* The source of `sa` (created or reused), or NULL when no slot is free. */
struct source *sc_sources_get(struct sources *t, const struct sockaddr *sa, uint32_t rate,
                              uint32_t burst, uint64_t now_ms);
/* The source with the most handshakes in progress (NULL if none). */
struct source *sc_sources_busiest(struct sources *t);
void sc_source_add_handshake(struct source *s, struct tracked *t);
void sc_source_remove_handshake(struct source *s, struct tracked *t);

#endif
