/* link/replay.c — the replay cache of link/replay.h: open addressing over
 * a fixed table, SipHash with a per-cache random key (an attacker cannot
 * aim at one bucket), a bounded probe sequence, expired slots reused. Never
 * grows after creation. */
#include "link/replay.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Slots looked at per lookup: bounded work per message 1. */
#define PROBE_SLOTS 32u

struct slot {
    uint8_t e[16];   /* first half of the ephemeral: random for honest peers */
    uint64_t expires; /* epoch at which the slot is free again; 0 = empty */
};

struct sc_replay_cache {
    uint32_t mask;
    uint8_t key[crypto_shorthash_KEYBYTES];
    struct slot *slots;
};

int sc_replay_new(uint32_t entries, struct sc_replay_cache **out)
{
    *out = NULL;
    uint32_t n = 64;
    while (n < entries && n < (1u << 24))
        n *= 2;
    struct sc_replay_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->slots = calloc(n, sizeof *c->slots))) {
        free(c);
        return SC_ENOMEM;
    }
    c->mask = n - 1;
    randombytes_buf(c->key, sizeof c->key);
    *out = c;
    return 0;
}

void sc_replay_free(struct sc_replay_cache *c)
{
    if (!c)
        return;
    free(c->slots);
    free(c);
}

int sc_replay_check(struct sc_replay_cache *c, const uint8_t e[32], uint64_t mac1_epoch,
                    uint64_t now_epoch)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, e, sizeof ((struct slot *)0)->e, c->key);
    uint32_t start;
    memcpy(&start, h, sizeof start);
    struct slot *free_slot = NULL;
    for (uint32_t i = 0; i < PROBE_SLOTS && i <= c->mask; i++) {
        struct slot *s = &c->slots[(start + i) & c->mask];
        bool live = s->expires > now_epoch;
        if (live && sodium_memcmp(s->e, e, sizeof s->e) == 0)
            return SC_EEXIST;
        if (!live && !free_slot)
            free_slot = s;
    }
    if (!free_slot)
        return SC_ELIMIT;
    memcpy(free_slot->e, e, sizeof free_slot->e);
    free_slot->expires = mac1_epoch + 2;
    return 0;
}
