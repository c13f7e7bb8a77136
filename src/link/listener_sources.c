/* link/listener_sources.c — the listener's table of sources: one slot per
 * IPv4 address or IPv6 /64 (IPv4-mapped addresses are unmapped before they
 * get here), with its handshakes in progress (oldest first), its links and
 * its token bucket. A fixed table with SipHash under a random key and a
 * bounded probe: it never grows, and a sender cannot aim at one slot. */
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "link/listener_internal.h"

#define PROBE_SLOTS 32u

_Static_assert(sizeof ((struct sources *)0)->hash_key == crypto_shorthash_KEYBYTES,
               "siphash key size");

int sc_sources_init(struct sources *t, uint32_t live_max)
{
    uint32_t n = 1024;
    while (n < 4u * (uint64_t)live_max && n < (1u << 22))
        n *= 2;
    t->slots = calloc(n, sizeof *t->slots);
    if (!t->slots)
        return SC_ENOMEM;
    t->mask = n - 1;
    randombytes_buf(t->hash_key, sizeof t->hash_key);
    return 0;
}

void sc_sources_free(struct sources *t)
{
    free(t->slots);
    t->slots = NULL;
}

static void source_key(const struct sockaddr *sa, uint8_t key[SC_SOURCE_KEY_BYTES])
{
    memset(key, 0, SC_SOURCE_KEY_BYTES);
    key[0] = (uint8_t)sa->sa_family;
    if (sa->sa_family == AF_INET)
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    else if (sa->sa_family == AF_INET6)
        memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 8);
}

struct source *sc_sources_get(struct sources *t, const struct sockaddr *sa, uint32_t rate,
                              uint32_t burst, uint64_t now_ms)
{
    uint8_t key[SC_SOURCE_KEY_BYTES];
    source_key(sa, key);
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, sizeof key, t->hash_key);
    uint32_t start;
    memcpy(&start, h, sizeof start);
    struct source *fresh = NULL, *idle = NULL;
    for (uint32_t i = 0; i < PROBE_SLOTS; i++) {
        struct source *s = &t->slots[(start + i) & t->mask];
        if (s->used && memcmp(s->key, key, sizeof key) == 0)
            return s;
        if (!s->used && !fresh)
            fresh = s;
        /* An idle source whose bucket is full again has nothing to remember. */
        if (s->used && !s->handshakes && !s->links && !idle &&
            sc_token_bucket_full(&s->bucket, now_ms))
            idle = s;
    }
    struct source *s = fresh ? fresh : idle;
    if (!s) { /* no free slot: take any idle one, losing its rate memory */
        for (uint32_t i = 0; i < PROBE_SLOTS && !s; i++) {
            struct source *c = &t->slots[(start + i) & t->mask];
            if (!c->handshakes && !c->links)
                s = c;
        }
        if (!s)
            return NULL;
    }
    memset(s, 0, sizeof *s);
    memcpy(s->key, key, sizeof key);
    s->used = true;
    sc_token_bucket_init(&s->bucket, rate, burst, now_ms);
    return s;
}

struct source *sc_sources_busiest(struct sources *t)
{
    struct source *best = NULL;
    for (uint32_t i = 0; i <= t->mask; i++) {
        struct source *s = &t->slots[i];
        if (s->handshakes && (!best || s->handshakes > best->handshakes))
            best = s;
    }
    return best;
}

void sc_source_add_handshake(struct source *s, struct tracked *t)
{
    t->src_prev = s->newest;
    t->src_next = NULL;
    if (s->newest)
        s->newest->src_next = t;
    else
        s->oldest = t;
    s->newest = t;
    s->handshakes++;
}

void sc_source_remove_handshake(struct source *s, struct tracked *t)
{
    if (t->src_prev)
        t->src_prev->src_next = t->src_next;
    else
        s->oldest = t->src_next;
    if (t->src_next)
        t->src_next->src_prev = t->src_prev;
    else
        s->newest = t->src_prev;
    t->src_prev = t->src_next = NULL;
    s->handshakes--;
}
