/* util/ratelimit.h — token buckets and jittered exponential backoff.
 * Pure integer arithmetic over times the caller passes in (no clock read
 * here), so both are deterministic in tests. */
#ifndef SC_UTIL_RATELIMIT_H
#define SC_UTIL_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* A bucket holds at most `burst` tokens and refills `rate_per_s` tokens per
 * second; each event takes one. Counted in thousandths of a token. A rate
 * of 0 means unlimited. */
struct sc_token_bucket {
    uint32_t rate_per_s;
    uint32_t burst;
    uint64_t milli_tokens;
    uint64_t last_ms;
};

void sc_token_bucket_init(struct sc_token_bucket *b, uint32_t rate_per_s, uint32_t burst,
                          uint64_t now_ms);
/* Takes one token if there is one; false when over the rate. */
bool sc_token_bucket_take(struct sc_token_bucket *b, uint64_t now_ms);
/* True when the bucket is full again (nothing to remember about it). */
bool sc_token_bucket_full(const struct sc_token_bucket *b, uint64_t now_ms);

/* Exponential backoff with "equal jitter": attempt k (from 0) waits a
 * random time in [d/2, d] with d = min(cap, base * 2^k). Delays never
 * shrink from one attempt to the next until reset. */
struct sc_backoff {
    uint32_t base_ms;
    uint32_t cap_ms;
    uint32_t attempts;
};

/* The delay before the next attempt; counts the attempt. `random32` is a
 * uniformly random value supplied by the caller. */
uint32_t sc_backoff_next_ms(struct sc_backoff *b, uint32_t random32);
void sc_backoff_reset(struct sc_backoff *b);

#endif
