/* test_ratelimit.c — token buckets (burst, refill, unlimited) and the
 * jittered exponential backoff the manager will use (bounds, growth, cap,
 * reset), with times and randomness passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/ratelimit.h"

static void test_bucket_burst_then_rate(void **state)
{
    (void)state;
    struct sc_token_bucket b;
    sc_token_bucket_init(&b, 10, 30, 1000);
    for (int i = 0; i < 30; i++)
        assert_true(sc_token_bucket_take(&b, 1000));
    assert_false(sc_token_bucket_take(&b, 1000));
    assert_false(sc_token_bucket_take(&b, 1099)); /* 0.99 tokens */
    assert_true(sc_token_bucket_take(&b, 1100));  /* one token per 100 ms */
    assert_false(sc_token_bucket_take(&b, 1100));
    /* one second: ten more, not eleven */
    int got = 0;
    for (int i = 0; i < 20; i++)
        got += sc_token_bucket_take(&b, 2100);
    assert_int_equal(got, 10);
    assert_false(sc_token_bucket_full(&b, 2100));
    assert_true(sc_token_bucket_full(&b, 2100 + 3000)); /* refilled to the burst */
    /* never more than the burst, however long it rested */
    got = 0;
    for (int i = 0; i < 100; i++)
        got += sc_token_bucket_take(&b, 1000000);
    assert_int_equal(got, 30);
}

static void test_bucket_unlimited_and_clock(void **state)
{
    (void)state;
    struct sc_token_bucket b;
    sc_token_bucket_init(&b, 0, 0, 5);
    for (int i = 0; i < 100000; i++)
        assert_true(sc_token_bucket_take(&b, 5));
    sc_token_bucket_init(&b, 1, 1, 5000);
    assert_true(sc_token_bucket_take(&b, 5000));
    assert_false(sc_token_bucket_take(&b, 4000)); /* time going back gives nothing */
    assert_true(sc_token_bucket_take(&b, 6000));
}

static void test_backoff_bounds_and_growth(void **state)
{
    (void)state;
    struct sc_backoff b = {.base_ms = 1000, .cap_ms = 300000};
    uint32_t prev = 0;
    for (uint32_t k = 0; k < 20; k++) {
        uint64_t d = 1000;
        for (uint32_t i = 0; i < k && d < 300000; i++)
            d *= 2;
        if (d > 300000)
            d = 300000;
        uint32_t lo = sc_backoff_next_ms(&(struct sc_backoff){b.base_ms, b.cap_ms, k}, 0);
        uint32_t hi = sc_backoff_next_ms(&(struct sc_backoff){b.base_ms, b.cap_ms, k}, UINT32_MAX);
        assert_true(lo >= d / 2 && hi <= d && lo <= hi);
        uint32_t got = sc_backoff_next_ms(&b, k * 2654435761u);
        assert_true(got >= d / 2 && got <= d);
        assert_true(got >= prev / 2); /* delays never collapse */
        if (k > 0 && d < 300000)
            assert_true(got >= prev || got >= d / 2); /* attempt k >= attempt k-1's lower bound */
        prev = got;
    }
    assert_int_equal(b.attempts, 20);
    sc_backoff_reset(&b);
    assert_true(sc_backoff_next_ms(&b, 12345) <= 1000);
}

static void test_backoff_jitter_spreads(void **state)
{
    (void)state;
    /* Many relays with the same schedule must not redial at one instant. */
    uint32_t seen_min = UINT32_MAX, seen_max = 0;
    for (uint32_t r = 0; r < 1000; r++) {
        struct sc_backoff b = {.base_ms = 30000, .cap_ms = 300000, .attempts = 2};
        uint32_t d = sc_backoff_next_ms(&b, r * 2246822519u + 374761393u);
        seen_min = d < seen_min ? d : seen_min;
        seen_max = d > seen_max ? d : seen_max;
    }
    assert_true(seen_min >= 60000 && seen_max <= 120000);
    assert_true(seen_max - seen_min >= 50000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_burst_then_rate),
        cmocka_unit_test(test_bucket_unlimited_and_clock),
        cmocka_unit_test(test_backoff_bounds_and_growth),
        cmocka_unit_test(test_backoff_jitter_spreads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
