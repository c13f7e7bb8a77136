/* util/ratelimit.c — token buckets and jittered backoff (util/ratelimit.h).
 * Never reads a clock and never allocates. */
#include "util/ratelimit.h"

static void refill(struct sc_token_bucket *b, uint64_t now_ms)
{
    uint64_t cap = (uint64_t)b->burst * 1000u;
    if (now_ms > b->last_ms) {
        uint64_t add = (now_ms - b->last_ms) * b->rate_per_s; /* ms * tokens/s = milli-tokens */
        b->milli_tokens = b->milli_tokens + add > cap ? cap : b->milli_tokens + add;
    }
    b->last_ms = now_ms;
}

void sc_token_bucket_init(struct sc_token_bucket *b, uint32_t rate_per_s, uint32_t burst,
                          uint64_t now_ms)
{
    b->rate_per_s = rate_per_s;
    b->burst = burst ? burst : 1;
    b->milli_tokens = (uint64_t)b->burst * 1000u;
    b->last_ms = now_ms;
}

bool sc_token_bucket_take(struct sc_token_bucket *b, uint64_t now_ms)
{
    if (b->rate_per_s == 0)
        return true;
    refill(b, now_ms);
    if (b->milli_tokens < 1000u)
        return false;
    b->milli_tokens -= 1000u;
    return true;
}

bool sc_token_bucket_full(const struct sc_token_bucket *b, uint64_t now_ms)
{
    if (b->rate_per_s == 0)
        return true;
    uint64_t have = b->milli_tokens;
    if (now_ms > b->last_ms)
        have += (now_ms - b->last_ms) * b->rate_per_s;
    return have >= (uint64_t)b->burst * 1000u;
}

uint32_t sc_backoff_next_ms(struct sc_backoff *b, uint32_t random32)
{
    uint64_t d = b->base_ms ? b->base_ms : 1;
    for (uint32_t i = 0; i < b->attempts && d < b->cap_ms; i++)
        d *= 2;
    if (b->cap_ms && d > b->cap_ms)
        d = b->cap_ms;
    if (b->attempts < UINT32_MAX)
        b->attempts++;
    uint64_t half = d / 2;
    return (uint32_t)(half + (uint64_t)random32 % (d - half + 1));
}

void sc_backoff_reset(struct sc_backoff *b) { b->attempts = 0; }
