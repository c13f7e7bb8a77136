/* relay/mesh.h — de-duplication of flooded relay messages by message ID:
 * a bounded, time-windowed memory. Pure: the caller passes the time; no
 * I/O. When full, the oldest IDs are forgotten first (a forgotten ID can at
 * worst be delivered twice, never lost). */
#ifndef SC_RELAY_MESH_H
#define SC_RELAY_MESH_H

#include <stdbool.h>
#include <stdint.h>

#include "secirc/error.h"
#include "secirc/link.h"

struct sc_dedup;

/* Remembers up to max_entries IDs for window_ms each. */
int sc_dedup_new(uint32_t max_entries, uint64_t window_ms, struct sc_dedup **out) SC_MUST_CHECK;
void sc_dedup_free(struct sc_dedup *d);
/* True if `id` was seen within the window; otherwise remembers it (now)
 * and returns false. */
bool sc_dedup_seen(struct sc_dedup *d, const uint8_t id[SC_MESSAGE_ID_BYTES], uint64_t now_ms);
uint32_t sc_dedup_count(const struct sc_dedup *d);

#endif
