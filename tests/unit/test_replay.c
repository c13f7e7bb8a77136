/* test_replay.c — the message-1 replay memory: a replay within the mac1
 * window is caught, entries expire when their mac1 would no longer pass,
 * and a full memory refuses (fails closed) instead of forgetting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "link/replay.h"

static void test_replay_window(void **state)
{
    (void)state;
    struct sc_replay_cache *c;
    assert_int_equal(sc_replay_new(1024, &c), 0);
    uint8_t e[32];
    randombytes_buf(e, sizeof e);
    assert_int_equal(sc_replay_check(c, e, 100, 100), 0);
    assert_int_equal(sc_replay_check(c, e, 100, 100), SC_EEXIST);
    assert_int_equal(sc_replay_check(c, e, 100, 101), SC_EEXIST); /* mac1 of 100 passes at 101 */
    assert_int_equal(sc_replay_check(c, e, 101, 101), SC_EEXIST);
    /* at 102 a message of epoch 100 fails mac1 anyway: the entry is free */
    assert_int_equal(sc_replay_check(c, e, 102, 102), 0);
    uint8_t other[32];
    memcpy(other, e, sizeof other);
    other[31] ^= 1; /* differs only in the half not kept: treated as the same */
    assert_int_equal(sc_replay_check(c, other, 102, 102), SC_EEXIST);
    other[0] ^= 1;
    assert_int_equal(sc_replay_check(c, other, 102, 102), 0);
    sc_replay_free(c);
}

static void test_replay_full_fails_closed(void **state)
{
    (void)state;
    struct sc_replay_cache *c;
    assert_int_equal(sc_replay_new(64, &c), 0);
    int ok = 0, refused = 0;
    uint8_t e[32];
    for (int i = 0; i < 1000; i++) {
        randombytes_buf(e, sizeof e);
        int r = sc_replay_check(c, e, 7, 7);
        ok += r == 0;
        refused += r == SC_ELIMIT;
        assert_true(r == 0 || r == SC_ELIMIT);
    }
    assert_true(ok <= 64 && ok >= 32);
    assert_int_equal(ok + refused, 1000);
    /* two epochs later the memory is free again */
    randombytes_buf(e, sizeof e);
    assert_int_equal(sc_replay_check(c, e, 9, 9), 0);
    sc_replay_free(c);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_window),
        cmocka_unit_test(test_replay_full_fails_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
