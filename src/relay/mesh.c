/* relay/mesh.c — the de-duplication memory of relay/mesh.h: a ring of IDs
 * in arrival order (so the oldest go first) indexed by an open-addressing
 * hash under a random SipHash key. Fixed size; never grows. */
#include "relay/mesh.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    uint8_t id[SC_MESSAGE_ID_BYTES];
    uint64_t at_ms;
    bool used;
};

struct sc_dedup {
    struct entry *ring;    /* max entries, in arrival order */
    uint32_t *index;       /* hash slots: ring position + 1, 0 = empty */
    uint32_t max, head, count, mask;
    uint64_t window_ms;
    uint8_t key[crypto_shorthash_KEYBYTES];
};

int sc_dedup_new(uint32_t max_entries, uint64_t window_ms, struct sc_dedup **out)
{
    *out = NULL;
    if (max_entries == 0 || max_entries > (1u << 24))
        return SC_EINVAL;
    struct sc_dedup *d = calloc(1, sizeof *d);
    uint32_t slots = 16;
    while (slots < 2u * max_entries)
        slots *= 2;
    if (!d || !(d->ring = calloc(max_entries, sizeof *d->ring)) ||
        !(d->index = calloc(slots, sizeof *d->index))) {
        sc_dedup_free(d);
        return SC_ENOMEM;
    }
    d->max = max_entries;
    d->mask = slots - 1;
    d->window_ms = window_ms;
    randombytes_buf(d->key, sizeof d->key);
    *out = d;
    return 0;
}

void sc_dedup_free(struct sc_dedup *d)
{
    if (!d)
        return;
    free(d->ring);
    free(d->index);
    free(d);
}

static uint32_t slot_of(const struct sc_dedup *d, const uint8_t id[SC_MESSAGE_ID_BYTES])
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, id, SC_MESSAGE_ID_BYTES, d->key);
    uint32_t s;
    memcpy(&s, h, sizeof s);
    return s & d->mask;
}

/* Finds the index slot holding `id`, or the empty slot where it would go. */
static uint32_t *find(struct sc_dedup *d, const uint8_t id[SC_MESSAGE_ID_BYTES])
{
    for (uint32_t i = slot_of(d, id);; i = (i + 1) & d->mask) {
        uint32_t *s = &d->index[i];
        if (*s == 0 || memcmp(d->ring[*s - 1].id, id, SC_MESSAGE_ID_BYTES) == 0)
            return s;
    }
}

/* Removes the index entry of ring position `pos` (backward-shift deletion,
 * so lookups never stop at a hole). */
static void unindex(struct sc_dedup *d, uint32_t pos)
{
    uint32_t i = (uint32_t)(find(d, d->ring[pos].id) - d->index);
    d->index[i] = 0;
    for (uint32_t j = (i + 1) & d->mask; d->index[j]; j = (j + 1) & d->mask) {
        uint32_t home = slot_of(d, d->ring[d->index[j] - 1].id);
        /* Move j back to i if its home is not in (i, j]. */
        if (((j - home) & d->mask) >= ((j - i) & d->mask)) {
            d->index[i] = d->index[j];
            d->index[j] = 0;
            i = j;
        }
    }
    d->ring[pos].used = false;
}

/* Forgets what is older than the window, and makes room for one more. */
static void expire(struct sc_dedup *d, uint64_t now_ms)
{
    while (d->count) {
        uint32_t oldest = (d->head + d->max - d->count) % d->max;
        struct entry *e = &d->ring[oldest];
        if (d->count < d->max && now_ms - e->at_ms < d->window_ms)
            break;
        unindex(d, oldest);
        d->count--;
    }
}

bool sc_dedup_seen(struct sc_dedup *d, const uint8_t id[SC_MESSAGE_ID_BYTES], uint64_t now_ms)
{
    expire(d, now_ms);
    uint32_t *s = find(d, id);
    if (*s)
        return true;
    struct entry *e = &d->ring[d->head];
    memcpy(e->id, id, SC_MESSAGE_ID_BYTES);
    e->at_ms = now_ms;
    e->used = true;
    *s = d->head + 1;
    d->head = (d->head + 1) % d->max;
    d->count++;
    return false;
}

uint32_t sc_dedup_count(const struct sc_dedup *d) { return d->count; }
