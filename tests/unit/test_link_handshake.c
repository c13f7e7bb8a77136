/* tests/unit/test_link_handshake.c — the link handshake (link/handshake.h)
 * driven purely in memory: both sides exchange their fixed-size messages
 * through buffers, with identities from fixed seeds.
 *
 * Where a test needs a payload that no honest sc_hs side would send (another
 * version, a forged certificate), the peer is played by the bare Noise engine
 * (crypto/noise.h) with the same protocol name, prologue and static key: the
 * payload is chosen before encryption without any hook in handshake.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "link/handshake.h"

#define DAY_S 86400u
#define INI_MAX 40000u /* max_message_bytes the initiator announces */
#define RES_MAX 50000u /* ... and the responder */

/* Identities A, B, C and their link keys, made once for the whole group. */
static struct sc_identity *id_a, *id_b, *id_c;
static struct sc_link_key *lk_a, *lk_a2, *lk_b, *lk_c, *lk_a_expired;
static uint64_t g_now;

static const uint8_t e_ini[32] = {0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
                                  0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26,
                                  0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30};
static const uint8_t e_res[32] = {0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b,
                                  0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96,
                                  0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0};

static struct sc_identity *identity_from(uint8_t fill)
{
    uint8_t seed[32];
    struct sc_identity *id = NULL;

    memset(seed, fill, sizeof seed);
    assert_int_equal(sc_identity_from_seed(seed, &id), 0);
    return id;
}

static struct sc_link_key *link_key(const struct sc_identity *id, uint64_t expiry)
{
    struct sc_link_key *lk = NULL;

    assert_int_equal(sc_link_key_generate(id, expiry, &lk), 0);
    return lk;
}

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    g_now = (uint64_t)time(NULL);
    id_a = identity_from(0xa1);
    id_b = identity_from(0xb2);
    id_c = identity_from(0xc3);
    lk_a = link_key(id_a, g_now + DAY_S);
    lk_a2 = link_key(id_a, g_now + DAY_S);
    lk_b = link_key(id_b, g_now + DAY_S);
    lk_c = link_key(id_c, g_now + DAY_S);
    lk_a_expired = link_key(id_a, g_now - 3600); /* beyond SC_CERT_CLOCK_SKEW_S */
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sc_link_key_free(lk_a);
    sc_link_key_free(lk_a2);
    sc_link_key_free(lk_b);
    sc_link_key_free(lk_c);
    sc_link_key_free(lk_a_expired);
    sc_identity_free(id_a);
    sc_identity_free(id_b);
    sc_identity_free(id_c);
    return 0;
}

static struct sc_hs_config config(bool initiator, const struct sc_identity *id,
                                  const struct sc_link_key *lk)
{
    struct sc_hs_config c;

    memset(&c, 0, sizeof c);
    c.initiator = initiator;
    c.identity = id;
    c.link_key = lk;
    c.max_message_bytes = initiator ? INI_MAX : RES_MAX;
    c.now_unix = g_now;
    return c;
}

static void expect(struct sc_hs_config *c, const struct sc_identity *peer)
{
    c->has_expected_id = true;
    memcpy(c->expected_id, sc_identity_relay_id(peer), SC_RELAY_ID_BYTES);
}

/* The Noise state is wiped (after finish or a failure). */
static void assert_wiped(const struct sc_handshake *hs)
{
    assert_true(sodium_is_zero((const unsigned char *)&hs->noise, sizeof hs->noise));
}

static void assert_failed(const struct sc_handshake *hs, int err, int want_err, enum sc_reason why)
{
    assert_true(err < 0);
    if (want_err != 0)
        assert_int_equal(err, want_err);
    assert_int_equal(hs->state, SC_HS_FAILED);
    assert_int_equal(hs->reason, why);
    assert_wiped(hs);
}

/* ---- a whole handshake ------------------------------------------------------------ */

struct run {
    struct sc_handshake ini, res;
    uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES], m3[SC_HS_MSG3_BYTES];
    struct sc_noise_cipher ini_send, ini_recv, res_send, res_recv;
    uint8_t ini_hash[SC_NOISE_HASH_BYTES], res_hash[SC_NOISE_HASH_BYTES];
};

static void run_full(struct run *r, const struct sc_hs_config *ic, const struct sc_hs_config *rc)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(sc_hs_init(&r->ini, ic), 0);
    assert_int_equal(sc_hs_init(&r->res, rc), 0);
    assert_int_equal(r->ini.state, SC_HS_START);
    assert_int_equal(sc_hs_write_msg1(&r->ini, r->m1), 0);
    assert_int_equal(r->ini.state, SC_HS_SENT_MSG1);
    assert_int_equal(sc_hs_read_msg1(&r->res, r->m1), 0);
    assert_int_equal(r->res.state, SC_HS_GOT_MSG1);
    assert_int_equal(sc_hs_write_msg2(&r->res, r->m2), 0);
    assert_int_equal(r->res.state, SC_HS_SENT_MSG2);
    assert_int_equal(sc_hs_read_msg2(&r->ini, r->m2, g_now), 0);
    assert_int_equal(r->ini.state, SC_HS_GOT_MSG2);
    assert_int_equal(sc_hs_write_msg3(&r->ini, r->m3), 0);
    assert_int_equal(r->ini.state, SC_HS_SENT_MSG3);
    assert_int_equal(sc_hs_read_msg3(&r->res, r->m3, g_now), 0);
    assert_int_equal(r->res.state, SC_HS_GOT_MSG3);
    assert_int_equal(sc_hs_finish(&r->ini, &r->ini_send, &r->ini_recv, r->ini_hash), 0);
    assert_int_equal(sc_hs_finish(&r->res, &r->res_send, &r->res_recv, r->res_hash), 0);
    assert_int_equal(r->ini.state, SC_HS_DONE);
    assert_int_equal(r->res.state, SC_HS_DONE);
    assert_wiped(&r->ini);
    assert_wiped(&r->res);
}

static void run_clear(struct run *r)
{
    sc_hs_clear(&r->ini);
    sc_hs_clear(&r->res);
    sc_noise_cipher_clear(&r->ini_send);
    sc_noise_cipher_clear(&r->ini_recv);
    sc_noise_cipher_clear(&r->res_send);
    sc_noise_cipher_clear(&r->res_recv);
}

/* Sends a few messages from tx to rx; rx's own sending key must not open them. */
static void check_direction(struct sc_noise_cipher *tx, struct sc_noise_cipher *rx,
                            struct sc_noise_cipher *wrong)
{
    for (int i = 0; i < 3; i++) {
        uint8_t pt[40], ct[64], back[64];
        size_t ct_len = 0, back_len = 0;

        memset(pt, 0x30 + i, sizeof pt);
        assert_int_equal(sc_noise_encrypt(tx, NULL, 0, pt, sizeof pt, ct, sizeof ct, &ct_len), 0);
        assert_int_equal(sc_noise_decrypt(wrong, NULL, 0, ct, ct_len, back, sizeof back, &back_len),
                         SC_EAUTH);
        assert_int_equal(sc_noise_decrypt(rx, NULL, 0, ct, ct_len, back, sizeof back, &back_len), 0);
        assert_int_equal(back_len, sizeof pt);
        assert_memory_equal(back, pt, sizeof pt);
    }
}

static uint32_t clamp_max(uint32_t v)
{
    return v > SC_MESSAGE_PAYLOAD_MAX_BYTES ? SC_MESSAGE_PAYLOAD_MAX_BYTES : v;
}

static void check_run(struct run *r, const struct sc_hs_config *ic, const struct sc_hs_config *rc)
{
    assert_memory_equal(r->ini_hash, r->res_hash, SC_NOISE_HASH_BYTES);
    assert_false(sodium_is_zero(r->ini_hash, SC_NOISE_HASH_BYTES));
    check_direction(&r->ini_send, &r->res_recv, &r->res_send);
    check_direction(&r->res_send, &r->ini_recv, &r->ini_send);

    assert_memory_equal(r->ini.peer_id, sc_identity_relay_id(rc->identity), SC_RELAY_ID_BYTES);
    assert_memory_equal(r->res.peer_id, sc_identity_relay_id(ic->identity), SC_RELAY_ID_BYTES);
    assert_memory_equal(r->ini.peer_link_key, rc->link_key->pub, SC_LINK_KEY_BYTES);
    assert_memory_equal(r->res.peer_link_key, ic->link_key->pub, SC_LINK_KEY_BYTES);
    assert_int_equal(r->ini.peer_max_message, clamp_max(rc->max_message_bytes));
    assert_int_equal(r->res.peer_max_message, clamp_max(ic->max_message_bytes));
    assert_int_equal(r->ini.version, 1);
    assert_int_equal(r->res.version, 1);
    assert_int_equal(r->ini.peer_features, 0);
    assert_int_equal(r->res.peer_features, 0);
    /* mac1 named the responder iff the initiator knew its ID. */
    assert_int_equal(r->res.mac1_named_us, ic->has_expected_id);

    /* mac1 on the wire: over e, keyed by the expected ID or by zeros. */
    static const uint8_t zeros[SC_RELAY_ID_BYTES];
    uint8_t mac[SC_HS_MAC1_BYTES];
    sc_hs_mac1(ic->has_expected_id ? ic->expected_id : zeros, g_now / SC_MAC1_EPOCH_S, r->m1, 32,
               mac);
    assert_memory_equal(r->m1 + 32, mac, SC_HS_MAC1_BYTES);
}

/* Channel binding: the same bytes on both sides link (and change the
 * handshake hash); different bytes, or bytes on one side only (a TLS
 * session terminated in between), fail at message 2. */
static void test_channel_binding(void **state)
{
    (void)state;
    uint8_t b1[32], b2[32];
    memset(b1, 0x11, sizeof b1);
    memset(b2, 0x22, sizeof b2);
    struct sc_hs_config ic = config(true, id_a, lk_a), rc = config(false, id_b, lk_b);
    struct run plain, bound;
    run_full(&plain, &ic, &rc);
    ic.binding = rc.binding = b1;
    ic.binding_len = rc.binding_len = sizeof b1;
    run_full(&bound, &ic, &rc);
    check_run(&bound, &ic, &rc);
    assert_memory_not_equal(plain.ini_hash, bound.ini_hash, SC_NOISE_HASH_BYTES);
    run_clear(&plain);
    run_clear(&bound);
    for (int k = 0; k < 2; k++) {
        struct sc_handshake ini, res;
        uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES];
        ic.binding = b1;
        rc.binding = k == 0 ? b2 : NULL; /* k 1: the responder sees no TLS at all */
        rc.binding_len = k == 0 ? sizeof b2 : 0;
        assert_int_equal(sc_hs_init(&ini, &ic), 0);
        assert_int_equal(sc_hs_init(&res, &rc), 0);
        assert_int_equal(sc_hs_write_msg1(&ini, m1), 0);
        assert_int_equal(sc_hs_read_msg1(&res, m1), 0);
        assert_int_equal(sc_hs_write_msg2(&res, m2), 0);
        assert_failed(&ini, sc_hs_read_msg2(&ini, m2, g_now), 0, SC_REASON_HANDSHAKE_FAILED);
        sc_hs_clear(&ini);
        sc_hs_clear(&res);
    }
    ic.binding_len = SC_HS_BINDING_MAX_BYTES + 1;
    struct sc_handshake hs;
    assert_int_equal(sc_hs_init(&hs, &ic), SC_EINVAL);
}

static void test_full_tofu(void **state)
{
    (void)state;
    struct sc_hs_config ic = config(true, id_a, lk_a), rc = config(false, id_b, lk_b);
    struct run r;

    run_full(&r, &ic, &rc);
    check_run(&r, &ic, &rc);
    run_clear(&r);
}

static void test_full_expected_id(void **state)
{
    (void)state;
    struct sc_hs_config ic = config(true, id_a, lk_a), rc = config(false, id_b, lk_b);
    struct run r;

    expect(&ic, id_b);
    run_full(&r, &ic, &rc);
    check_run(&r, &ic, &rc);
    run_clear(&r);
}

static void test_full_probe_resistance(void **state)
{
    (void)state;
    struct sc_hs_config ic = config(true, id_c, lk_c), rc = config(false, id_a, lk_a);
    struct run r;

    expect(&ic, id_a);
    rc.probe_resistance = true;
    run_full(&r, &ic, &rc);
    check_run(&r, &ic, &rc);
    run_clear(&r);
}

static void honest_payload(uint8_t p[SC_HS_PAYLOAD_BYTES], const struct sc_identity *id,
                           const struct sc_link_key *lk, uint32_t max_message);
static void expect_payload(const struct sc_link_key *lk, const uint8_t payload[SC_HS_PAYLOAD_BYTES],
                           int want_err, enum sc_reason why);

/* An announced max_message must be 64..65497: the bounds pass, anything
 * else is a protocol error on the reading side. */
static void test_full_max_message(void **state)
{
    (void)state;
    struct sc_hs_config ic = config(true, id_a, lk_a), rc = config(false, id_b, lk_b);
    struct run r;

    ic.max_message_bytes = SC_MESSAGE_PAYLOAD_MAX_BYTES;
    rc.max_message_bytes = SC_MESSAGE_PAYLOAD_MIN_BYTES;
    run_full(&r, &ic, &rc);
    check_run(&r, &ic, &rc);
    assert_int_equal(r.res.peer_max_message, SC_MESSAGE_PAYLOAD_MAX_BYTES);
    assert_int_equal(r.ini.peer_max_message, SC_MESSAGE_PAYLOAD_MIN_BYTES);
    run_clear(&r);

    static const uint32_t bad[] = {0, 1, SC_MESSAGE_PAYLOAD_MIN_BYTES - 1,
                                   SC_MESSAGE_PAYLOAD_MAX_BYTES + 1, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t p[SC_HS_PAYLOAD_BYTES];
        honest_payload(p, id_a, lk_a, bad[i]);
        expect_payload(lk_a, p, SC_EFORMAT, SC_REASON_PROTOCOL_ERROR);
    }
}

/* Two handshakes between the same relays end with different keys. */
static void test_fresh_sessions(void **state)
{
    (void)state;
    struct sc_hs_config ic = config(true, id_a, lk_a), rc = config(false, id_b, lk_b);
    struct run r1, r2;

    run_full(&r1, &ic, &rc);
    run_full(&r2, &ic, &rc);
    assert_memory_not_equal(r1.m1, r2.m1, 32);
    assert_memory_not_equal(r1.ini_hash, r2.ini_hash, SC_NOISE_HASH_BYTES);
    /* A session's ciphertext does not open in the other session. */
    uint8_t ct[32], pt[16] = {0};
    size_t n = 0;
    assert_int_equal(sc_noise_encrypt(&r1.ini_send, NULL, 0, pt, sizeof pt, ct, sizeof ct, &n), 0);
    assert_int_equal(sc_noise_decrypt(&r2.res_recv, NULL, 0, ct, n, pt, sizeof pt, &n), SC_EAUTH);
    run_clear(&r1);
    run_clear(&r2);
}

/* ---- identity checks ------------------------------------------------------------ */

static void test_identity_mismatch(void **state)
{
    (void)state;
    struct sc_hs_config ic = config(true, id_a, lk_a), rc = config(false, id_b, lk_b);
    struct sc_handshake ini, res;
    uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES];

    expect(&ic, id_c); /* but B answers */

    /* Without probe resistance B answers (mac1 names C, not B) and the
     * initiator refuses B's identity. */
    assert_int_equal(sc_hs_init(&ini, &ic), 0);
    assert_int_equal(sc_hs_init(&res, &rc), 0);
    assert_int_equal(sc_hs_write_msg1(&ini, m1), 0);
    assert_int_equal(sc_hs_read_msg1(&res, m1), 0);
    assert_false(res.mac1_named_us);
    assert_int_equal(sc_hs_write_msg2(&res, m2), 0);
    assert_failed(&ini, sc_hs_read_msg2(&ini, m2, g_now), SC_EAUTH, SC_REASON_IDENTITY_MISMATCH);
    sc_hs_clear(&ini);
    sc_hs_clear(&res);

    /* With it, B stays silent at message 1. */
    rc.probe_resistance = true;
    assert_int_equal(sc_hs_init(&ini, &ic), 0);
    assert_int_equal(sc_hs_init(&res, &rc), 0);
    assert_int_equal(sc_hs_write_msg1(&ini, m1), 0);
    assert_failed(&res, sc_hs_read_msg1(&res, m1), SC_EAUTH, SC_REASON_PROBE_DROPPED);
    sc_hs_clear(&ini);
    sc_hs_clear(&res);
}

/* Both ends are the same relay (same identity, also the same link key). */
static void test_self_connection(void **state)
{
    (void)state;
    const struct sc_link_key *ini_keys[] = {lk_a2, lk_a};

    for (int i = 0; i < 2; i++) {
        for (int known = 0; known < 2; known++) {
            struct sc_hs_config ic = config(true, id_a, ini_keys[i]), rc = config(false, id_a, lk_a);
            struct sc_handshake ini, res;
            uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES];

            if (known)
                expect(&ic, id_a);
            assert_int_equal(sc_hs_init(&ini, &ic), 0);
            assert_int_equal(sc_hs_init(&res, &rc), 0);
            assert_int_equal(sc_hs_write_msg1(&ini, m1), 0);
            assert_int_equal(sc_hs_read_msg1(&res, m1), 0);
            assert_int_equal(sc_hs_write_msg2(&res, m2), 0);
            assert_failed(&ini, sc_hs_read_msg2(&ini, m2, g_now), SC_EAUTH, SC_REASON_SELF);
            sc_hs_clear(&ini);
            sc_hs_clear(&res);
        }
    }
}

/* ---- probe resistance (mac1) ------------------------------------------------------ */

static void test_probe_unknown_id_dropped(void **state)
{
    (void)state;
    struct sc_hs_config ic = config(true, id_a, lk_a), rc = config(false, id_b, lk_b);
    struct sc_handshake ini, res;
    uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES];

    rc.probe_resistance = true;
    assert_int_equal(sc_hs_init(&ini, &ic), 0);
    assert_int_equal(sc_hs_init(&res, &rc), 0);
    assert_int_equal(sc_hs_write_msg1(&ini, m1), 0);
    assert_failed(&res, sc_hs_read_msg1(&res, m1), SC_EAUTH, SC_REASON_PROBE_DROPPED);
    /* Silent: nothing more comes out of the responder. */
    assert_int_equal(sc_hs_write_msg2(&res, m2), SC_ESTATE);
    sc_hs_clear(&ini);
    sc_hs_clear(&res);

    /* Without the option the same (trust on first use) initiator is taken. */
    rc.probe_resistance = false;
    assert_int_equal(sc_hs_init(&ini, &ic), 0);
    assert_int_equal(sc_hs_init(&res, &rc), 0);
    assert_int_equal(sc_hs_write_msg1(&ini, m1), 0);
    assert_int_equal(sc_hs_read_msg1(&res, m1), 0);
    assert_false(res.mac1_named_us);
    assert_int_equal(sc_hs_write_msg2(&res, m2), 0);
    assert_int_equal(sc_hs_read_msg2(&ini, m2, g_now), 0);
    sc_hs_clear(&ini);
    sc_hs_clear(&res);
}

/* Scanner bytes: silence with probe resistance. Without it message 1 is
 * taken whatever its mac1 (mac1_named_us false), and an all-zero
 * (low-order) e fails when the responder computes ee for message 2. */
static void test_probe_garbage(void **state)
{
    (void)state;
    uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES];

    for (int probe = 0; probe < 2; probe++) {
        for (int k = 0; k < 3; k++) {
            struct sc_hs_config rc = config(false, id_b, lk_b);
            struct sc_handshake res;

            rc.probe_resistance = probe;
            if (k == 0)
                memset(m1, 0, sizeof m1);
            else if (k == 1)
                memset(m1, 0xff, sizeof m1);
            else
                randombytes_buf(m1, sizeof m1);
            assert_int_equal(sc_hs_init(&res, &rc), 0);
            if (probe) {
                assert_failed(&res, sc_hs_read_msg1(&res, m1), SC_EAUTH, SC_REASON_PROBE_DROPPED);
            } else {
                assert_int_equal(sc_hs_read_msg1(&res, m1), 0);
                assert_false(res.mac1_named_us);
                if (k == 0)
                    assert_failed(&res, sc_hs_write_msg2(&res, m2), 0, SC_REASON_HANDSHAKE_FAILED);
            }
            sc_hs_clear(&res);
        }
    }
}

/* Every flipped bit of message 1 (e and mac1). With probe resistance each
 * one is dropped in silence. Without it, message 1 is taken, a flipped mac1
 * bit only means "mac1 did not name us" (the handshake completes), and a
 * flipped e bit makes the initiator refuse message 2. */
static void test_probe_flipped_msg1(void **state)
{
    (void)state;
    struct sc_hs_config ic = config(true, id_a, lk_a);
    struct sc_handshake ini;
    uint8_t m1[SC_HS_MSG1_BYTES], m1_again[SC_HS_MSG1_BYTES];

    expect(&ic, id_b);
    ic.e_priv = e_ini;
    assert_int_equal(sc_hs_init(&ini, &ic), 0);
    assert_int_equal(sc_hs_write_msg1(&ini, m1), 0);
    sc_hs_clear(&ini);

    for (int probe = 0; probe < 2; probe++) {
        for (unsigned bit = 0; bit <= 8 * SC_HS_MSG1_BYTES; bit++) {
            struct sc_hs_config rc = config(false, id_b, lk_b);
            struct sc_handshake res;
            uint8_t bad[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES];
            bool genuine = bit == 8 * SC_HS_MSG1_BYTES, in_e = bit < 8 * 32;

            rc.probe_resistance = probe;
            memcpy(bad, m1, sizeof bad);
            if (!genuine)
                bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            assert_int_equal(sc_hs_init(&res, &rc), 0);
            if (probe && !genuine) {
                assert_failed(&res, sc_hs_read_msg1(&res, bad), SC_EAUTH, SC_REASON_PROBE_DROPPED);
                sc_hs_clear(&res);
                continue;
            }
            assert_int_equal(sc_hs_read_msg1(&res, bad), 0);
            assert_int_equal(res.mac1_named_us, genuine);
            int err = sc_hs_write_msg2(&res, m2);
            if (err) { /* only a low-order e could do this */
                assert_true(in_e);
                assert_failed(&res, err, 0, SC_REASON_HANDSHAKE_FAILED);
                sc_hs_clear(&res);
                continue;
            }
            assert_int_equal(sc_hs_init(&ini, &ic), 0);
            assert_int_equal(sc_hs_write_msg1(&ini, m1_again), 0);
            assert_memory_equal(m1_again, m1, sizeof m1);
            if (in_e && !genuine)
                assert_failed(&ini, sc_hs_read_msg2(&ini, m2, g_now), 0, SC_REASON_HANDSHAKE_FAILED);
            else
                assert_int_equal(sc_hs_read_msg2(&ini, m2, g_now), 0);
            sc_hs_clear(&ini);
            sc_hs_clear(&res);
        }
    }
}

/* mac1 recomputed independently with libsodium's generic hash, and against
 * the test vector of docs/PROTOCOL.md (from Python's hashlib.blake2b). */
static void test_mac1_independent(void **state)
{
    (void)state;
    uint8_t relay_id[SC_RELAY_ID_BYTES], msg[100], kin[14 + SC_RELAY_ID_BYTES + 8], key[32];
    const uint64_t epoch = 14725933; /* 2025-12-30T16:26:00Z / 120 s */
    uint8_t want[SC_HS_MAC1_BYTES], got[SC_HS_MAC1_BYTES];
    const uint8_t *ids[] = {relay_id, sc_identity_relay_id(id_a), sc_identity_relay_id(id_b)};

    assert_int_equal(sizeof SC_HS_MAC1_LABEL - 1, 14);
    for (unsigned i = 0; i < sizeof relay_id; i++)
        relay_id[i] = (uint8_t)i;
    for (unsigned i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(0x40 + i);

    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        static const size_t lens[] = {0, 1, 32, 48, 100};
        memcpy(kin, "secirc mac1 v2", 14);
        memcpy(kin + 14, ids[k], SC_RELAY_ID_BYTES);
        for (int b = 0; b < 8; b++)
            kin[14 + SC_RELAY_ID_BYTES + b] = (uint8_t)(epoch >> (56 - 8 * b));
        assert_int_equal(crypto_generichash(key, sizeof key, kin, sizeof kin, NULL, 0), 0);
        for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
            assert_int_equal(crypto_generichash(want, sizeof want, msg, lens[j], key, sizeof key), 0);
            sc_hs_mac1(ids[k], epoch, msg, lens[j], got);
            assert_memory_equal(got, want, sizeof want);
        }
    }

    /* hashlib.blake2b(m, digest_size=16, key=hashlib.blake2b(
     *   b"secirc mac1 v2" + id + epoch.to_bytes(8, "big"), digest_size=32).digest()),
     * m = 40..5f, epoch 14725933 (docs/PROTOCOL.md, "mac1"). */
    static const uint8_t py_id_0_31[16] = {0x68, 0x56, 0xfb, 0xe0, 0x2b, 0xda, 0x1a, 0x70,
                                           0xc4, 0x34, 0x40, 0x5a, 0x1d, 0x06, 0xa6, 0x1d};
    static const uint8_t py_zero_id[16] = {0x3a, 0xb3, 0x38, 0x2a, 0x01, 0xf1, 0x1a, 0x78,
                                           0x81, 0x14, 0x45, 0x52, 0x7b, 0xf2, 0xae, 0x5e};
    static const uint8_t zeros[SC_RELAY_ID_BYTES];
    sc_hs_mac1(relay_id, epoch, msg, 32, got);
    assert_memory_equal(got, py_id_0_31, 16);
    sc_hs_mac1(zeros, epoch, msg, 32, got);
    assert_memory_equal(got, py_zero_id, 16);
    /* Another epoch, another mac1: a recorded message 1 goes stale. */
    sc_hs_mac1(relay_id, epoch + 2, msg, 32, got);
    assert_memory_not_equal(got, py_id_0_31, 16);
}

/* ---- tampered messages 2 and 3 ---------------------------------------------------- */

/* Every bit of message 2: the initiator (same injected ephemeral each time,
 * so message 1 and the expected message 2 are the same) refuses it. */
static void test_flipped_msg2(void **state)
{
    (void)state;
    struct sc_hs_config ic = config(true, id_a, lk_a), rc = config(false, id_b, lk_b);
    struct sc_handshake ini, res;
    uint8_t m1[SC_HS_MSG1_BYTES], m1_again[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES];

    ic.e_priv = e_ini;
    assert_int_equal(sc_hs_init(&ini, &ic), 0);
    assert_int_equal(sc_hs_init(&res, &rc), 0);
    assert_int_equal(sc_hs_write_msg1(&ini, m1), 0);
    assert_int_equal(sc_hs_read_msg1(&res, m1), 0);
    assert_int_equal(sc_hs_write_msg2(&res, m2), 0);
    sc_hs_clear(&ini);
    sc_hs_clear(&res);

    for (unsigned bit = 0; bit <= 8 * SC_HS_MSG2_BYTES; bit++) {
        uint8_t bad[SC_HS_MSG2_BYTES];
        bool genuine = bit == 8 * SC_HS_MSG2_BYTES; /* last round: unflipped */

        memcpy(bad, m2, sizeof bad);
        if (!genuine)
            bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(sc_hs_init(&ini, &ic), 0);
        assert_int_equal(sc_hs_write_msg1(&ini, m1_again), 0);
        assert_memory_equal(m1_again, m1, sizeof m1);
        if (genuine)
            assert_int_equal(sc_hs_read_msg2(&ini, bad, g_now), 0);
        else
            assert_failed(&ini, sc_hs_read_msg2(&ini, bad, g_now), 0, SC_REASON_HANDSHAKE_FAILED);
        sc_hs_clear(&ini);
    }
}

static void test_flipped_msg3(void **state)
{
    (void)state;
    struct sc_hs_config ic = config(true, id_a, lk_a), rc = config(false, id_b, lk_b);
    struct run r;

    ic.e_priv = e_ini;
    rc.e_priv = e_res;
    run_full(&r, &ic, &rc);
    run_clear(&r);

    for (unsigned bit = 0; bit <= 8 * SC_HS_MSG3_BYTES; bit++) {
        struct sc_handshake res;
        uint8_t bad[SC_HS_MSG3_BYTES], m2[SC_HS_MSG2_BYTES];
        bool genuine = bit == 8 * SC_HS_MSG3_BYTES;

        memcpy(bad, r.m3, sizeof bad);
        if (!genuine)
            bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(sc_hs_init(&res, &rc), 0);
        assert_int_equal(sc_hs_read_msg1(&res, r.m1), 0);
        assert_int_equal(sc_hs_write_msg2(&res, m2), 0);
        assert_memory_equal(m2, r.m2, sizeof m2);
        if (genuine)
            assert_int_equal(sc_hs_read_msg3(&res, bad, g_now), 0);
        else
            assert_failed(&res, sc_hs_read_msg3(&res, bad, g_now), 0, SC_REASON_HANDSHAKE_FAILED);
        sc_hs_clear(&res);
    }
}

/* Message 3 of one session replayed into another (fresh responder
 * ephemeral): it does not verify. */
static void test_replayed_msg3(void **state)
{
    (void)state;
    struct sc_hs_config ic = config(true, id_a, lk_a), rc = config(false, id_b, lk_b);
    struct sc_handshake res;
    uint8_t m2[SC_HS_MSG2_BYTES];
    struct run r;

    ic.e_priv = e_ini;
    run_full(&r, &ic, &rc); /* the responder's ephemeral is random */
    run_clear(&r);
    assert_int_equal(sc_hs_init(&res, &rc), 0);
    assert_int_equal(sc_hs_read_msg1(&res, r.m1), 0); /* replayed message 1 is taken... */
    assert_int_equal(sc_hs_write_msg2(&res, m2), 0);
    assert_memory_not_equal(m2, r.m2, sizeof m2);
    assert_failed(&res, sc_hs_read_msg3(&res, r.m3, g_now), 0, SC_REASON_HANDSHAKE_FAILED);
    sc_hs_clear(&res);
}

/* ---- certificates ------------------------------------------------------------ */

/* Runs ic/rc up to the reader that must fail; `at` is 2 or 3. */
static void expect_fail_at(int at, struct sc_hs_config *ic, struct sc_hs_config *rc, uint64_t now,
                           int want_err, enum sc_reason why)
{
    struct sc_handshake ini, res;
    uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES], m3[SC_HS_MSG3_BYTES];

    assert_int_equal(sc_hs_init(&ini, ic), 0);
    assert_int_equal(sc_hs_init(&res, rc), 0);
    assert_int_equal(sc_hs_write_msg1(&ini, m1), 0);
    assert_int_equal(sc_hs_read_msg1(&res, m1), 0);
    assert_int_equal(sc_hs_write_msg2(&res, m2), 0);
    if (at == 2) {
        assert_failed(&ini, sc_hs_read_msg2(&ini, m2, now), want_err, why);
    } else {
        assert_int_equal(sc_hs_read_msg2(&ini, m2, now), 0);
        assert_int_equal(sc_hs_write_msg3(&ini, m3), 0);
        if (want_err == 0) {
            assert_int_equal(sc_hs_read_msg3(&res, m3, now), 0);
        } else {
            assert_failed(&res, sc_hs_read_msg3(&res, m3, now), want_err, why);
        }
    }
    sc_hs_clear(&ini);
    sc_hs_clear(&res);
}

static void test_cert_expired(void **state)
{
    (void)state;
    /* The responder's link key expired a minute ago. */
    struct sc_hs_config ic = config(true, id_b, lk_b), rc = config(false, id_a, lk_a_expired);
    expect_fail_at(2, &ic, &rc, g_now, SC_EEXPIRED, SC_REASON_CERT_EXPIRED);
    expect(&ic, id_a);
    expect_fail_at(2, &ic, &rc, g_now, SC_EEXPIRED, SC_REASON_CERT_EXPIRED);

    /* The initiator's. */
    struct sc_hs_config ic2 = config(true, id_a, lk_a_expired), rc2 = config(false, id_b, lk_b);
    expect_fail_at(3, &ic2, &rc2, g_now, SC_EEXPIRED, SC_REASON_CERT_EXPIRED);
}

/* now == expiry is expired, one second before is fine, on both readers. */
static void test_cert_expiry_boundary(void **state)
{
    (void)state;
    uint64_t exp_b = lk_b->cert.expiry_unix;
    struct sc_hs_config ic = config(true, id_a, lk_a), rc = config(false, id_b, lk_b);

    assert_true(lk_a->cert.expiry_unix >= exp_b);
    const uint64_t skew = SC_CERT_CLOCK_SKEW_S;
    expect_fail_at(2, &ic, &rc, exp_b + skew, SC_EEXPIRED, SC_REASON_CERT_EXPIRED);
    expect_fail_at(2, &ic, &rc, exp_b + 1000000, SC_EEXPIRED, SC_REASON_CERT_EXPIRED);
    expect_fail_at(2, &ic, &rc, UINT64_MAX, SC_EEXPIRED, SC_REASON_CERT_EXPIRED);
    expect_fail_at(3, &ic, &rc, exp_b + skew - 1, 0, SC_REASON_NONE);

    /* The initiator's key runs out first: message 2 still reads, message 3
     * is expired from its expiry second (plus the allowed skew) on. */
    struct sc_link_key *lk_short = link_key(id_a, g_now + 100);
    struct sc_hs_config ic2 = config(true, id_a, lk_short);
    expect_fail_at(3, &ic2, &rc, g_now + 99 + skew, 0, SC_REASON_NONE);
    expect_fail_at(3, &ic2, &rc, g_now + 100 + skew, SC_EEXPIRED, SC_REASON_CERT_EXPIRED);
    expect_fail_at(3, &ic2, &rc, g_now + 5000 + skew, SC_EEXPIRED, SC_REASON_CERT_EXPIRED);
    sc_link_key_free(lk_short);
}

/* A certificate valid for longer than max_cert_lifetime (plus the skew)
 * from now is refused: a stolen long-lived link key is worth little. */
static void test_cert_lifetime_ceiling(void **state)
{
    (void)state;
    const uint64_t limit = SC_CERT_LIFETIME_MAX_S_DEFAULT + SC_CERT_CLOCK_SKEW_S;
    struct sc_hs_config ic = config(true, id_a, lk_a);
    struct sc_link_key *at = link_key(id_b, g_now + limit);
    struct sc_link_key *over = link_key(id_b, g_now + limit + 1);
    struct sc_hs_config rc_at = config(false, id_b, at), rc_over = config(false, id_b, over);
    expect_fail_at(3, &ic, &rc_at, g_now, 0, SC_REASON_NONE);
    expect_fail_at(2, &ic, &rc_over, g_now, SC_EAUTH, SC_REASON_CERT_INVALID);
    /* A configured ceiling applies to both readers. */
    struct sc_hs_config ic_short = config(true, id_a, lk_a);
    ic_short.max_cert_lifetime_s = 60;
    expect_fail_at(2, &ic_short, &rc_at, g_now, SC_EAUTH, SC_REASON_CERT_INVALID);
    struct sc_hs_config rc_short = config(false, id_b, lk_b);
    rc_short.max_cert_lifetime_s = 60;
    struct sc_link_key *lk_day = link_key(id_a, g_now + DAY_S);
    struct sc_hs_config ic_day = config(true, id_a, lk_day);
    expect_fail_at(3, &ic_day, &rc_short, g_now, SC_EAUTH, SC_REASON_CERT_INVALID);
    sc_link_key_free(lk_day);
    sc_link_key_free(at);
    sc_link_key_free(over);
}

/* A link key certified by another identity than the one in the payload. */
static void test_cert_other_signer(void **state)
{
    (void)state;
    /* Responder claims A but its link key is certified by B. */
    struct sc_hs_config ic = config(true, id_c, lk_c), rc = config(false, id_a, lk_b);
    expect_fail_at(2, &ic, &rc, g_now, SC_EAUTH, SC_REASON_CERT_INVALID);
    expect(&ic, id_a);
    expect_fail_at(2, &ic, &rc, g_now, SC_EAUTH, SC_REASON_CERT_INVALID);

    /* Initiator claims C with a key certified by A. */
    struct sc_hs_config ic2 = config(true, id_c, lk_a), rc2 = config(false, id_b, lk_b);
    expect_fail_at(3, &ic2, &rc2, g_now, SC_EAUTH, SC_REASON_CERT_INVALID);
}

/* ---- payloads chosen before encryption (peer played by bare Noise) ----------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* The payload an honest side sends (layout of handshake.c's encoder):
 * format(1) vmin(1) vmax(1) reserved(1) features(4) relay_id(32)
 * cert_expiry(8) cert_signature(64) max_message(4) zero(12). */
static void honest_payload(uint8_t p[SC_HS_PAYLOAD_BYTES], const struct sc_identity *id,
                           const struct sc_link_key *lk, uint32_t max_message)
{
    memset(p, 0, SC_HS_PAYLOAD_BYTES);
    p[0] = 1;
    p[1] = 1;
    p[2] = 1;
    memcpy(p + 8, sc_identity_relay_id(id), SC_RELAY_ID_BYTES);
    put_be64(p + 40, lk->cert.expiry_unix);
    memcpy(p + 48, lk->cert.signature, SC_SIGNATURE_BYTES);
    put_be32(p + 112, max_message);
}

static void noise_init(struct sc_noise_handshake *n, bool initiator, const struct sc_link_key *lk)
{
    assert_int_equal(sc_noise_handshake_init(n, SC_HS_PROTOCOL_NAME,
                                             initiator ? SC_NOISE_INITIATOR : SC_NOISE_RESPONDER,
                                             (const uint8_t *)SC_HS_PROLOGUE,
                                             sizeof SC_HS_PROLOGUE - 1, lk->priv, NULL, NULL),
                     0);
}

/* A real responder (rc) against a bare-Noise initiator with static key lk
 * that sends `payload` in message 3. Returns what sc_hs_read_msg3 returned;
 * *res and *fake are left for the caller to inspect and clear. If seen is
 * not NULL it gets the responder's payload from message 2. */
static int fake_initiator(const struct sc_hs_config *rc, const struct sc_link_key *lk,
                          const uint8_t payload[SC_HS_PAYLOAD_BYTES], struct sc_handshake *res,
                          struct sc_noise_handshake *fake, uint8_t *seen)
{
    uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES], m3[SC_HS_MSG3_BYTES];
    uint8_t got[SC_HS_PAYLOAD_BYTES];
    size_t n = 0;

    noise_init(fake, true, lk);
    assert_int_equal(sc_hs_init(res, rc), 0);
    assert_int_equal(sc_noise_write_message(fake, NULL, 0, m1, sizeof m1, &n), 0);
    assert_int_equal(n, 32);
    sc_hs_mac1(sc_identity_relay_id(rc->identity), rc->now_unix / SC_MAC1_EPOCH_S, m1, 32, m1 + 32);
    assert_int_equal(sc_hs_read_msg1(res, m1), 0);
    assert_int_equal(sc_hs_write_msg2(res, m2), 0);
    assert_int_equal(sc_noise_read_message(fake, m2, sizeof m2, got, sizeof got, &n), 0);
    assert_int_equal(n, SC_HS_PAYLOAD_BYTES);
    if (seen)
        memcpy(seen, got, sizeof got);
    assert_int_equal(sc_noise_write_message(fake, payload, SC_HS_PAYLOAD_BYTES, m3, sizeof m3, &n), 0);
    assert_int_equal(n, SC_HS_MSG3_BYTES);
    return sc_hs_read_msg3(res, m3, g_now);
}

/* A real initiator (ic) against a bare-Noise responder with static key lk
 * that sends `payload` in message 2. Returns sc_hs_read_msg2's result. */
static int fake_responder(const struct sc_hs_config *ic, const struct sc_link_key *lk,
                          const uint8_t payload[SC_HS_PAYLOAD_BYTES], struct sc_handshake *ini,
                          struct sc_noise_handshake *fake)
{
    uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES];
    size_t n = 0;

    noise_init(fake, false, lk);
    assert_int_equal(sc_hs_init(ini, ic), 0);
    assert_int_equal(sc_hs_write_msg1(ini, m1), 0);
    assert_int_equal(sc_noise_read_message(fake, m1, 32, NULL, 0, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(sc_noise_write_message(fake, payload, SC_HS_PAYLOAD_BYTES, m2, sizeof m2, &n), 0);
    assert_int_equal(n, SC_HS_MSG2_BYTES);
    return sc_hs_read_msg2(ini, m2, g_now);
}

/* Runs `payload` (claimed by a peer with link key lk) into both readers:
 * message 2 (initiator C reads it) and message 3 (responder C reads it). */
static void expect_payload(const struct sc_link_key *lk, const uint8_t payload[SC_HS_PAYLOAD_BYTES],
                           int want_err, enum sc_reason why)
{
    struct sc_hs_config ic = config(true, id_c, lk_c), rc = config(false, id_c, lk_c);
    struct sc_noise_handshake fake;
    struct sc_handshake hs;
    int err;

    err = fake_responder(&ic, lk, payload, &hs, &fake);
    if (want_err == 0)
        assert_int_equal(err, 0);
    else
        assert_failed(&hs, err, want_err, why);
    sc_hs_clear(&hs);
    sc_noise_handshake_clear(&fake);

    err = fake_initiator(&rc, lk, payload, &hs, &fake, NULL);
    if (want_err == 0)
        assert_int_equal(err, 0);
    else
        assert_failed(&hs, err, want_err, why);
    sc_hs_clear(&hs);
    sc_noise_handshake_clear(&fake);
}

/* What honest sides put in their payloads, byte for byte, and a bare-Noise
 * initiator sending the same layout completes a working session. */
static void test_payload_layout(void **state)
{
    (void)state;
    struct sc_hs_config rc = config(false, id_b, lk_b), ic = config(true, id_c, lk_c);
    struct sc_noise_handshake fake;
    struct sc_handshake hs;
    uint8_t mine[SC_HS_PAYLOAD_BYTES], seen[SC_HS_PAYLOAD_BYTES], want[SC_HS_PAYLOAD_BYTES];
    uint8_t m3[SC_HS_MSG3_BYTES];
    size_t n = 0;

    /* Responder B's payload as the fake initiator A decrypts it. */
    honest_payload(mine, id_a, lk_a, 1234);
    assert_int_equal(fake_initiator(&rc, lk_a, mine, &hs, &fake, seen), 0);
    honest_payload(want, id_b, lk_b, RES_MAX);
    assert_memory_equal(seen, want, sizeof want);
    assert_memory_equal(hs.peer_id, sc_identity_relay_id(id_a), SC_RELAY_ID_BYTES);
    assert_memory_equal(hs.peer_link_key, lk_a->pub, SC_LINK_KEY_BYTES);
    assert_int_equal(hs.peer_max_message, 1234);
    assert_true(hs.mac1_named_us); /* the fake used B's ID */

    /* The session works both ways. */
    struct sc_noise_cipher fs, fr, rs, rr;
    uint8_t h[SC_NOISE_HASH_BYTES], fh[SC_NOISE_HASH_BYTES];
    sc_noise_handshake_hash(&fake, fh);
    assert_int_equal(sc_noise_split(&fake, &fs, &fr), 0);
    assert_int_equal(sc_hs_finish(&hs, &rs, &rr, h), 0);
    assert_memory_equal(h, fh, sizeof h);
    check_direction(&fs, &rr, &rs);
    check_direction(&rs, &fr, &fs);
    sc_noise_cipher_clear(&fs);
    sc_noise_cipher_clear(&fr);
    sc_noise_cipher_clear(&rs);
    sc_noise_cipher_clear(&rr);
    sc_hs_clear(&hs);
    sc_noise_handshake_clear(&fake);

    /* Initiator C's payload as a fake responder B decrypts it from msg 3. */
    honest_payload(mine, id_b, lk_b, 99);
    assert_int_equal(fake_responder(&ic, lk_b, mine, &hs, &fake), 0);
    assert_int_equal(hs.peer_max_message, 99);
    assert_int_equal(sc_hs_write_msg3(&hs, m3), 0);
    assert_int_equal(sc_noise_read_message(&fake, m3, sizeof m3, seen, sizeof seen, &n), 0);
    assert_int_equal(n, SC_HS_PAYLOAD_BYTES);
    honest_payload(want, id_c, lk_c, INI_MAX);
    assert_memory_equal(seen, want, sizeof want);
    sc_hs_clear(&hs);
    sc_noise_handshake_clear(&fake);
}

static void test_payload_versions(void **state)
{
    (void)state;
    static const struct {
        uint8_t format, vmin, vmax;
        bool ok;
    } cases[] = {
        {1, 1, 1, true},    {1, 0, 1, true},    {1, 1, 255, true},  {1, 0, 255, true},
        {1, 2, 2, false},   {1, 2, 255, false}, {1, 255, 255, false}, {1, 0, 0, false},
        {1, 1, 0, false},   {1, 255, 0, false}, {1, 2, 1, false},   {0, 1, 1, false},
        {2, 1, 1, false},   {255, 1, 1, false},
    };
    uint8_t p[SC_HS_PAYLOAD_BYTES];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        honest_payload(p, id_a, lk_a, 500);
        p[0] = cases[i].format;
        p[1] = cases[i].vmin;
        p[2] = cases[i].vmax;
        expect_payload(lk_a, p, cases[i].ok ? 0 : SC_EVERSION, SC_REASON_PROTOCOL_VERSION);
    }

    /* The agreed version and the peer's fields on success. */
    struct sc_hs_config ic = config(true, id_c, lk_c);
    struct sc_noise_handshake fake;
    struct sc_handshake hs;
    honest_payload(p, id_a, lk_a, SC_MESSAGE_PAYLOAD_MAX_BYTES);
    p[1] = 0;
    p[2] = 200;
    put_be32(p + 4, 0xdeadbeefu);
    assert_int_equal(fake_responder(&ic, lk_a, p, &hs, &fake), 0);
    assert_int_equal(hs.version, 1);
    assert_int_equal(hs.peer_features, 0xdeadbeefu);
    assert_int_equal(hs.peer_max_message, SC_MESSAGE_PAYLOAD_MAX_BYTES);
    sc_hs_clear(&hs);
    sc_noise_handshake_clear(&fake);
}

/* The certificate must bind the Noise static key the peer proved. */
static void test_payload_certificates(void **state)
{
    (void)state;
    uint8_t p[SC_HS_PAYLOAD_BYTES];

    /* Honest, for reference. */
    honest_payload(p, id_a, lk_a, 64);
    expect_payload(lk_a, p, 0, SC_REASON_NONE);

    /* A's genuine certificate for link key a2, sent over link key a. */
    honest_payload(p, id_a, lk_a2, 64);
    expect_payload(lk_a, p, SC_EAUTH, SC_REASON_CERT_INVALID);

    /* Another relay's ID with A's certificate. */
    honest_payload(p, id_a, lk_a, 64);
    memcpy(p + 8, sc_identity_relay_id(id_b), SC_RELAY_ID_BYTES);
    expect_payload(lk_a, p, SC_EAUTH, SC_REASON_CERT_INVALID);

    /* Expiry moved: the signature no longer holds (authenticity first, so
     * CERT_INVALID even when the new expiry is in the past). */
    static const uint64_t expiries[] = {0, 1, 1000, UINT64_MAX};
    for (size_t i = 0; i < sizeof expiries / sizeof expiries[0]; i++) {
        honest_payload(p, id_a, lk_a, 64);
        put_be64(p + 40, expiries[i]);
        expect_payload(lk_a, p, SC_EAUTH, SC_REASON_CERT_INVALID);
    }

    /* Every signature byte flipped, and an all-zero signature. */
    for (unsigned i = 0; i < SC_SIGNATURE_BYTES; i += 7) {
        honest_payload(p, id_a, lk_a, 64);
        p[48 + i] ^= 0x01;
        expect_payload(lk_a, p, SC_EAUTH, SC_REASON_CERT_INVALID);
    }
    honest_payload(p, id_a, lk_a, 64);
    memset(p + 48, 0, SC_SIGNATURE_BYTES);
    expect_payload(lk_a, p, SC_EAUTH, SC_REASON_CERT_INVALID);

    /* An all-zero (small-order) relay ID. */
    honest_payload(p, id_a, lk_a, 64);
    memset(p + 8, 0, SC_RELAY_ID_BYTES);
    expect_payload(lk_a, p, SC_EAUTH, SC_REASON_CERT_INVALID);

    /* Genuine but expired. */
    honest_payload(p, id_a, lk_a_expired, 64);
    expect_payload(lk_a_expired, p, SC_EEXPIRED, SC_REASON_CERT_EXPIRED);

    /* A genuine certificate of the reader's own identity (C certifies a
     * second link key): SELF on both readers. */
    struct sc_link_key *lk_c2 = link_key(id_c, g_now + DAY_S);
    honest_payload(p, id_c, lk_c2, 64);
    expect_payload(lk_c2, p, SC_EAUTH, SC_REASON_SELF);
    sc_link_key_free(lk_c2);
}

/* ---- state machine ------------------------------------------------------------ */

enum op { OP_W1, OP_R1, OP_W2, OP_R2, OP_W3, OP_R3, OP_FINISH, OP_COUNT };

static int do_op(struct sc_handshake *hs, enum op op, const uint8_t *in)
{
    uint8_t out[SC_HS_MSG2_BYTES], hash[SC_NOISE_HASH_BYTES];
    struct sc_noise_cipher s, r;
    int err;

    switch (op) {
    case OP_W1:
        return sc_hs_write_msg1(hs, out);
    case OP_R1:
        return sc_hs_read_msg1(hs, in);
    case OP_W2:
        return sc_hs_write_msg2(hs, out);
    case OP_R2:
        return sc_hs_read_msg2(hs, in, g_now);
    case OP_W3:
        return sc_hs_write_msg3(hs, out);
    case OP_R3:
        return sc_hs_read_msg3(hs, in, g_now);
    default:
        memset(&s, 0, sizeof s);
        memset(&r, 0, sizeof r);
        err = sc_hs_finish(hs, &s, &r, hash);
        sc_noise_cipher_clear(&s);
        sc_noise_cipher_clear(&r);
        return err;
    }
}

/* The one call each state allows. */
static enum op allowed_op(const struct sc_handshake *hs)
{
    switch (hs->state) {
    case SC_HS_START:
        return hs->initiator ? OP_W1 : OP_R1;
    case SC_HS_SENT_MSG1:
        return OP_R2;
    case SC_HS_GOT_MSG2:
        return OP_W3;
    case SC_HS_SENT_MSG3:
    case SC_HS_GOT_MSG3:
        return OP_FINISH;
    case SC_HS_GOT_MSG1:
        return OP_W2;
    case SC_HS_SENT_MSG2:
        return OP_R3;
    default:
        return OP_COUNT; /* DONE, FAILED: nothing */
    }
}

/* Brings a fresh pair `steps` steps into a handshake (0..8); the
 * initiator knows the responder's ID, so probe resistance may be on. */
static void advance_probe(struct run *r, int steps, bool probe)
{
    struct sc_hs_config ic = config(true, id_a, lk_a), rc = config(false, id_b, lk_b);
    uint8_t h[SC_NOISE_HASH_BYTES];

    expect(&ic, id_b);
    rc.probe_resistance = probe;
    memset(r, 0, sizeof *r);
    assert_int_equal(sc_hs_init(&r->ini, &ic), 0);
    assert_int_equal(sc_hs_init(&r->res, &rc), 0);
    for (int i = 0; i < steps; i++) {
        switch (i) {
        case 0: assert_int_equal(sc_hs_write_msg1(&r->ini, r->m1), 0); break;
        case 1: assert_int_equal(sc_hs_read_msg1(&r->res, r->m1), 0); break;
        case 2: assert_int_equal(sc_hs_write_msg2(&r->res, r->m2), 0); break;
        case 3: assert_int_equal(sc_hs_read_msg2(&r->ini, r->m2, g_now), 0); break;
        case 4: assert_int_equal(sc_hs_write_msg3(&r->ini, r->m3), 0); break;
        case 5: assert_int_equal(sc_hs_read_msg3(&r->res, r->m3, g_now), 0); break;
        case 6: assert_int_equal(sc_hs_finish(&r->ini, &r->ini_send, &r->ini_recv, h), 0); break;
        default: assert_int_equal(sc_hs_finish(&r->res, &r->res_send, &r->res_recv, h), 0); break;
        }
    }
}

static void advance(struct run *r, int steps)
{
    advance_probe(r, steps, false);
}

/* At every point of a handshake, every call but the allowed one is
 * SC_ESTATE on either side (each probed on a fresh pair). */
static void test_out_of_order(void **state)
{
    (void)state;
    static const uint8_t junk[SC_HS_MSG2_BYTES];
    int refused = 0;

    for (int steps = 0; steps <= 8; steps++) {
        for (int side = 0; side < 2; side++) {
            for (int op = 0; op < OP_COUNT; op++) {
                struct run r;
                advance(&r, steps);
                struct sc_handshake *hs = side ? &r.res : &r.ini;
                if (allowed_op(hs) != (enum op)op) {
                    /* For a read, pass the genuine message where one exists. */
                    const uint8_t *in = op == OP_R1 ? r.m1 : op == OP_R2 ? r.m2 : op == OP_R3 ? r.m3 : junk;
                    assert_int_equal(do_op(hs, (enum op)op, in), SC_ESTATE);
                    refused++;
                }
                run_clear(&r);
            }
        }
    }
    assert_true(refused > 100);

    /* The examples of the brief, spelled out. */
    struct run r;
    advance(&r, 0);
    assert_int_equal(sc_hs_write_msg2(&r.res, r.m2), SC_ESTATE); /* before reading msg 1 */
    run_clear(&r);
    advance(&r, 4);
    assert_int_equal(sc_hs_read_msg2(&r.ini, r.m2, g_now), SC_ESTATE); /* twice */
    run_clear(&r);
    advance(&r, 3);
    uint8_t h[SC_NOISE_HASH_BYTES];
    assert_int_equal(sc_hs_finish(&r.res, &r.res_send, &r.res_recv, h), SC_ESTATE);
    run_clear(&r);
}

/* After a failure every call is refused, also the genuine next message. */
static void test_calls_after_failure(void **state)
{
    (void)state;
    for (int where = 0; where < 3; where++) {
        struct run r;
        struct sc_handshake *hs;
        uint8_t bad[SC_HS_MSG2_BYTES];

        advance_probe(&r, where == 0 ? 1 : where == 1 ? 3 : 5, where == 0);
        if (where == 0) { /* probe-resistant responder, broken mac1 */
            memcpy(bad, r.m1, SC_HS_MSG1_BYTES);
            bad[40] ^= 1;
            hs = &r.res;
            assert_int_equal(sc_hs_read_msg1(hs, bad), SC_EAUTH);
        } else if (where == 1) { /* initiator, broken message 2 */
            memcpy(bad, r.m2, SC_HS_MSG2_BYTES);
            bad[100] ^= 1;
            hs = &r.ini;
            assert_true(sc_hs_read_msg2(hs, bad, g_now) < 0);
        } else { /* responder, broken message 3 */
            memcpy(bad, r.m3, SC_HS_MSG3_BYTES);
            bad[0] ^= 1;
            hs = &r.res;
            assert_true(sc_hs_read_msg3(hs, bad, g_now) < 0);
        }
        assert_int_equal(hs->state, SC_HS_FAILED);
        assert_wiped(hs);
        enum sc_reason why = hs->reason;
        for (int op = 0; op < OP_COUNT; op++) {
            const uint8_t *in = op == OP_R1 ? r.m1 : op == OP_R2 ? r.m2 : op == OP_R3 ? r.m3 : bad;
            assert_int_equal(do_op(hs, (enum op)op, in), SC_ESTATE);
            assert_int_equal(hs->state, SC_HS_FAILED);
            assert_int_equal(hs->reason, why);
        }
        run_clear(&r);
    }
}

static void test_init_and_clear(void **state)
{
    (void)state;
    struct sc_hs_config c = config(true, id_a, lk_a);
    struct sc_handshake hs;

    c.identity = NULL;
    assert_int_equal(sc_hs_init(&hs, &c), SC_EINVAL);
    sc_hs_clear(&hs);
    c = config(false, id_a, NULL);
    assert_int_equal(sc_hs_init(&hs, &c), SC_EINVAL);
    sc_hs_clear(&hs);

    /* Clear on a zeroed struct, twice, and in the middle of a handshake. */
    memset(&hs, 0, sizeof hs);
    sc_hs_clear(&hs);
    sc_hs_clear(&hs);
    struct run r;
    advance(&r, 3);
    sc_hs_clear(&r.ini);
    sc_hs_clear(&r.res);
    assert_wiped(&r.ini);
    assert_wiped(&r.res);
    run_clear(&r);
    run_clear(&r);
}

/* ---- determinism ------------------------------------------------------------ */

static void test_deterministic(void **state)
{
    (void)state;
    struct sc_hs_config ic = config(true, id_a, lk_a), rc = config(false, id_b, lk_b);
    struct run r1, r2, r3;

    expect(&ic, id_b);
    ic.e_priv = e_ini;
    rc.e_priv = e_res;
    run_full(&r1, &ic, &rc);
    run_full(&r2, &ic, &rc);
    assert_memory_equal(r1.m1, r2.m1, sizeof r1.m1);
    assert_memory_equal(r1.m2, r2.m2, sizeof r1.m2);
    assert_memory_equal(r1.m3, r2.m3, sizeof r1.m3);
    assert_memory_equal(r1.ini_hash, r2.ini_hash, SC_NOISE_HASH_BYTES);
    check_run(&r2, &ic, &rc);

    /* The message 1 ephemeral is the injected key's public half. */
    uint8_t e_pub[32];
    assert_int_equal(crypto_scalarmult_base(e_pub, e_ini), 0);
    assert_memory_equal(r1.m1, e_pub, 32);
    assert_int_equal(crypto_scalarmult_base(e_pub, e_res), 0);
    assert_memory_equal(r1.m2, e_pub, 32);

    /* Another responder ephemeral: the same message 1, all else differs. */
    uint8_t e_other[32];
    memset(e_other, 0x5c, sizeof e_other);
    rc.e_priv = e_other;
    run_full(&r3, &ic, &rc);
    assert_memory_equal(r3.m1, r1.m1, sizeof r1.m1);
    assert_memory_not_equal(r3.m2, r1.m2, sizeof r1.m2);
    assert_memory_not_equal(r3.m3, r1.m3, sizeof r1.m3);
    assert_memory_not_equal(r3.ini_hash, r1.ini_hash, SC_NOISE_HASH_BYTES);
    run_clear(&r1);
    run_clear(&r2);
    run_clear(&r3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_tofu),
        cmocka_unit_test(test_full_expected_id),
        cmocka_unit_test(test_full_probe_resistance),
        cmocka_unit_test(test_full_max_message),
        cmocka_unit_test(test_fresh_sessions),
        cmocka_unit_test(test_identity_mismatch),
        cmocka_unit_test(test_self_connection),
        cmocka_unit_test(test_probe_unknown_id_dropped),
        cmocka_unit_test(test_probe_garbage),
        cmocka_unit_test(test_probe_flipped_msg1),
        cmocka_unit_test(test_mac1_independent),
        cmocka_unit_test(test_flipped_msg2),
        cmocka_unit_test(test_flipped_msg3),
        cmocka_unit_test(test_replayed_msg3),
        cmocka_unit_test(test_cert_expired),
        cmocka_unit_test(test_cert_expiry_boundary),
        cmocka_unit_test(test_cert_lifetime_ceiling),
        cmocka_unit_test(test_channel_binding),
        cmocka_unit_test(test_cert_other_signer),
        cmocka_unit_test(test_payload_layout),
        cmocka_unit_test(test_payload_versions),
        cmocka_unit_test(test_payload_certificates),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_calls_after_failure),
        cmocka_unit_test(test_init_and_clear),
        cmocka_unit_test(test_deterministic),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
