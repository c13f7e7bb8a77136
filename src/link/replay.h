/* link/replay.h — a bounded memory of the message-1 ephemerals a
 * probe-resistant responder has answered, so a recorded message 1 replayed
 * later gets silence. Pure: the caller passes the mac1 epochs; no clock, no
 * I/O. Fails closed: when full of live entries, new ones are refused. */
#ifndef SC_LINK_REPLAY_H
#define SC_LINK_REPLAY_H

#include <stdint.h>

#include "secirc/error.h"

struct sc_replay_cache;

/* `entries` slots (rounded up to a power of two, at least 64). */
int sc_replay_new(uint32_t entries, struct sc_replay_cache **out) SC_MUST_CHECK;
void sc_replay_free(struct sc_replay_cache *c);
/* Records the ephemeral `e` whose mac1 matched epoch `mac1_epoch`, seen
 * during epoch `now_epoch`. 0: new (remembered until now_epoch reaches
 * mac1_epoch + 2, when its mac1 no longer passes); SC_EEXIST: seen before
 * in that window (a replay); SC_ELIMIT: no room (refuse it). */
int sc_replay_check(struct sc_replay_cache *c, const uint8_t e[32], uint64_t mac1_epoch,
                    uint64_t now_epoch) SC_MUST_CHECK;

#endif
