/* tests/unit/test_noise_negative.c — what the Noise engine must refuse.
 *
 * Tampered, replayed, reordered, oversized and out-of-turn messages for XX
 * (the link handshake) and IK (payload encrypted from message 1), transport
 * replay/reorder, rekey, and the AEAD context switching direction. Keys are
 * fixed, so every run is the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/aead.h"
#include "crypto/noise.h"

#define XX "Noise_XX_25519_ChaChaPoly_BLAKE2b"
#define IK "Noise_IK_25519_ChaChaPoly_BLAKE2b"
#define MSG_CAP (SC_NOISE_MAX_MESSAGE_BYTES + 64u)

static const uint8_t prologue[] = "secirc/1";

struct keys {
    uint8_t is[32], ie[32], rs[32], re[32];
    uint8_t is_pub[32], rs_pub[32];
};

static void fixed_keys(struct keys *k, uint8_t seed)
{
    memset(k->is, seed + 1, 32);
    memset(k->ie, seed + 2, 32);
    memset(k->rs, seed + 3, 32);
    memset(k->re, seed + 4, 32);
    assert_int_equal(crypto_scalarmult_base(k->is_pub, k->is), 0);
    assert_int_equal(crypto_scalarmult_base(k->rs_pub, k->rs), 0);
}

/* Fresh initiator/responder for `name` (XX or IK) with keys k. */
static void pair(struct sc_noise_handshake *ini, struct sc_noise_handshake *res, const char *name,
                 const struct keys *k)
{
    bool ik = strcmp(name, IK) == 0;

    assert_int_equal(sc_noise_handshake_init(ini, name, SC_NOISE_INITIATOR, prologue, sizeof prologue,
                                             k->is, k->ie, ik ? k->rs_pub : NULL),
                     0);
    assert_int_equal(sc_noise_handshake_init(res, name, SC_NOISE_RESPONDER, prologue, sizeof prologue,
                                             k->rs, k->re, NULL),
                     0);
}

struct msg {
    uint8_t b[512];
    size_t len;
};

static void write_ok(struct sc_noise_handshake *hs, const char *payload, struct msg *m)
{
    assert_int_equal(sc_noise_write_message(hs, (const uint8_t *)payload, strlen(payload), m->b,
                                            sizeof m->b, &m->len),
                     0);
}

static void read_ok(struct sc_noise_handshake *hs, const struct msg *m, const char *payload)
{
    uint8_t got[512];
    size_t got_len;

    assert_int_equal(sc_noise_read_message(hs, m->b, m->len, got, sizeof got, &got_len), 0);
    assert_int_equal(got_len, strlen(payload));
    assert_memory_equal(got, payload, got_len);
}

static int read_msg(struct sc_noise_handshake *hs, const struct msg *m)
{
    uint8_t got[512];
    size_t got_len;

    return sc_noise_read_message(hs, m->b, m->len, got, sizeof got, &got_len);
}

/* The valid messages of one deterministic handshake. */
struct transcript {
    struct msg m[3];
    unsigned n;
};

static const char *const payloads[3] = {"hello responder", "hello initiator", "third"};

static void run_handshake(const char *name, const struct keys *k, struct transcript *t,
                          struct sc_noise_handshake *ini, struct sc_noise_handshake *res)
{
    unsigned i;

    pair(ini, res, name, k);
    t->n = strcmp(name, XX) == 0 ? 3 : 2;
    for (i = 0; i < t->n; i++) {
        struct sc_noise_handshake *w = i % 2 == 0 ? ini : res, *r = i % 2 == 0 ? res : ini;
        write_ok(w, payloads[i], &t->m[i]);
        read_ok(r, &t->m[i], payloads[i]);
    }
    assert_int_equal(ini->state, SC_NOISE_HS_SPLIT);
    assert_int_equal(res->state, SC_NOISE_HS_SPLIT);
}

static void transcript_of(const char *name, const struct keys *k, struct transcript *t)
{
    struct sc_noise_handshake ini, res;

    run_handshake(name, k, t, &ini, &res);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);
}

/* Every call on a failed handshake fails. */
static void assert_dead(struct sc_noise_handshake *hs)
{
    struct sc_noise_cipher a, b;
    struct msg m;
    uint8_t buf[64];
    size_t len;

    assert_int_equal(hs->state, SC_NOISE_HS_FAILED);
    assert_int_equal(sc_noise_write_message(hs, NULL, 0, m.b, sizeof m.b, &m.len), SC_ESTATE);
    assert_int_equal(sc_noise_read_message(hs, buf, 32, buf, sizeof buf, &len), SC_ESTATE);
    assert_int_equal(sc_noise_split(hs, &a, &b), SC_ESTATE);
    assert_int_equal(hs->state, SC_NOISE_HS_FAILED);
}

/* Flips every bit of message `target` in turn: the handshake must fail, at
 * the reader of that message, or (for a message read in clear) at the next
 * message's reader. */
static void flip_every_bit(const char *name, unsigned target, bool detected_later)
{
    struct keys k;
    struct transcript t;
    size_t byte;
    unsigned bit, i;

    fixed_keys(&k, 0);
    transcript_of(name, &k, &t);
    for (byte = 0; byte < t.m[target].len; byte++) {
        for (bit = 0; bit < 8; bit++) {
            struct sc_noise_handshake ini, res;
            struct msg bad = t.m[target];
            int rc = 0;

            bad.b[byte] ^= (uint8_t)(1u << bit);
            pair(&ini, &res, name, &k);
            for (i = 0; i < target; i++) {
                struct sc_noise_handshake *w = i % 2 == 0 ? &ini : &res, *r = i % 2 == 0 ? &res : &ini;
                struct msg m;
                write_ok(w, payloads[i], &m);
                read_ok(r, &m, payloads[i]);
            }
            {
                struct sc_noise_handshake *w = target % 2 == 0 ? &ini : &res;
                struct sc_noise_handshake *r = target % 2 == 0 ? &res : &ini;
                struct msg m;
                write_ok(w, payloads[target], &m);
                assert_memory_equal(m.b, t.m[target].b, m.len); /* deterministic */
                rc = read_msg(r, &bad);
                if (!detected_later) {
                    assert_int_not_equal(rc, 0);
                    assert_dead(r);
                } else {
                    struct msg next;
                    /* Read in clear, so accepted; the reader's reply (or the
                     * peer's reading of it) must then fail. */
                    assert_int_equal(rc, 0);
                    rc = sc_noise_write_message(r, (const uint8_t *)"x", 1, next.b, sizeof next.b,
                                                &next.len);
                    if (rc == 0) {
                        rc = read_msg(w, &next);
                        assert_int_not_equal(rc, 0);
                        assert_dead(w);
                    } else {
                        assert_dead(r);
                    }
                }
            }
            sc_noise_handshake_clear(&ini);
            sc_noise_handshake_clear(&res);
        }
    }
}

static void test_xx_flip_msg1_detected_at_msg2(void **state)
{
    (void)state;
    /* XX message 1 is `e` plus a clear payload: nothing to check yet, but h
     * differs, so the initiator's read of message 2 fails. */
    flip_every_bit(XX, 0, true);
}

static void test_xx_flip_msg2(void **state)
{
    (void)state;
    flip_every_bit(XX, 1, false);
}

static void test_xx_flip_msg3(void **state)
{
    (void)state;
    flip_every_bit(XX, 2, false);
}

static void test_ik_flip_msg1(void **state)
{
    (void)state;
    flip_every_bit(IK, 0, false);
}

static void test_ik_flip_msg2(void **state)
{
    (void)state;
    flip_every_bit(IK, 1, false);
}

static void test_xx_truncated(void **state)
{
    struct keys k;
    struct transcript t;
    unsigned target;
    size_t len;

    (void)state;
    fixed_keys(&k, 0);
    transcript_of(XX, &k, &t);
    for (target = 1; target < 3; target++) {
        for (len = 0; len < t.m[target].len; len++) {
            struct sc_noise_handshake ini, res;
            struct msg m, cut = t.m[target];
            unsigned i;

            cut.len = len;
            pair(&ini, &res, XX, &k);
            for (i = 0; i < target; i++) {
                write_ok(i % 2 == 0 ? &ini : &res, payloads[i], &m);
                read_ok(i % 2 == 0 ? &res : &ini, &m, payloads[i]);
            }
            write_ok(target % 2 == 0 ? &ini : &res, payloads[target], &m);
            assert_int_not_equal(read_msg(target % 2 == 0 ? &res : &ini, &cut), 0);
            sc_noise_handshake_clear(&ini);
            sc_noise_handshake_clear(&res);
        }
    }
    /* Shorter than the tokens need: ETRUNC, before any crypto. */
    {
        struct sc_noise_handshake ini, res;
        pair(&ini, &res, XX, &k);
        assert_int_equal(sc_noise_read_message(&res, t.m[0].b, 31, NULL, 0, &len), SC_ETRUNC);
        assert_dead(&res);
        sc_noise_handshake_clear(&ini);
        sc_noise_handshake_clear(&res);
    }
}

static void test_xx_replay(void **state)
{
    struct keys k, k2;
    struct transcript t;
    struct sc_noise_handshake ini, res;
    struct msg m;

    (void)state;
    fixed_keys(&k, 0);
    transcript_of(XX, &k, &t);

    /* The same message read twice: the second read is out of turn. */
    pair(&ini, &res, XX, &k);
    write_ok(&ini, payloads[0], &m);
    read_ok(&res, &m, payloads[0]);
    assert_int_equal(read_msg(&res, &m), SC_ESTATE);
    assert_dead(&res);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    pair(&ini, &res, XX, &k);
    write_ok(&ini, payloads[0], &m);
    read_ok(&res, &m, payloads[0]);
    write_ok(&res, payloads[1], &m);
    read_ok(&ini, &m, payloads[1]);
    assert_int_equal(read_msg(&ini, &m), SC_ESTATE);
    assert_dead(&ini);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    /* An old message 2 fed to a new handshake (other initiator ephemeral). */
    fixed_keys(&k2, 0);
    memset(k2.ie, 0x77, sizeof k2.ie);
    pair(&ini, &res, XX, &k2);
    write_ok(&ini, payloads[0], &m);
    assert_int_equal(read_msg(&ini, &t.m[1]), SC_EAUTH);
    assert_dead(&ini);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    /* An old message 3 fed to a new responder (other responder ephemeral). */
    fixed_keys(&k2, 0);
    memset(k2.re, 0x66, sizeof k2.re);
    pair(&ini, &res, XX, &k2);
    write_ok(&ini, payloads[0], &m);
    read_ok(&res, &m, payloads[0]);
    write_ok(&res, payloads[1], &m);
    read_ok(&ini, &m, payloads[1]);
    assert_int_equal(read_msg(&res, &t.m[2]), SC_EAUTH);
    assert_dead(&res);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);
}

static void test_too_big(void **state)
{
    struct keys k;
    struct sc_noise_handshake ini, res;
    uint8_t *payload = calloc(1, MSG_CAP), *out = calloc(1, MSG_CAP), *got = calloc(1, MSG_CAP);
    size_t len, got_len;

    (void)state;
    assert_non_null(payload);
    assert_non_null(out);
    assert_non_null(got);
    fixed_keys(&k, 0);

    /* Write: message 1 of XX is 32 + payload bytes. 65535 is the limit. */
    pair(&ini, &res, XX, &k);
    assert_int_equal(sc_noise_write_message(&ini, payload, SC_NOISE_MAX_MESSAGE_BYTES - 32 + 1, out,
                                            MSG_CAP, &len),
                     SC_ETOOBIG);
    assert_dead(&ini);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    /* Exactly 65535 bytes is fine both ways. */
    pair(&ini, &res, XX, &k);
    assert_int_equal(sc_noise_write_message(&ini, payload, SC_NOISE_MAX_MESSAGE_BYTES - 32, out,
                                            MSG_CAP, &len),
                     0);
    assert_int_equal(len, SC_NOISE_MAX_MESSAGE_BYTES);
    assert_int_equal(sc_noise_read_message(&res, out, len, got, MSG_CAP, &got_len), 0);
    assert_int_equal(got_len, SC_NOISE_MAX_MESSAGE_BYTES - 32);
    /* Message 2 carries a key: 32 + 48 + payload + 16. */
    assert_int_equal(sc_noise_write_message(&res, payload, SC_NOISE_MAX_MESSAGE_BYTES - 96 + 1, out,
                                            MSG_CAP, &len),
                     SC_ETOOBIG);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    /* Read: 65536 bytes refused before anything is parsed. */
    pair(&ini, &res, XX, &k);
    assert_int_equal(sc_noise_read_message(&res, out, SC_NOISE_MAX_MESSAGE_BYTES + 1, got, MSG_CAP,
                                           &got_len),
                     SC_ETOOBIG);
    assert_dead(&res);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    /* An output buffer too small is ENOSPACE, not an overflow. */
    pair(&ini, &res, XX, &k);
    assert_int_equal(sc_noise_write_message(&ini, payload, 10, out, 41, &len), SC_ENOSPACE);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    free(payload);
    free(out);
    free(got);
}

static void test_out_of_order(void **state)
{
    struct keys k;
    struct sc_noise_handshake ini, res;
    struct sc_noise_cipher a, b;
    struct msg m;

    (void)state;
    fixed_keys(&k, 0);

    /* Responder writing first. */
    pair(&ini, &res, XX, &k);
    assert_int_equal(sc_noise_write_message(&res, NULL, 0, m.b, sizeof m.b, &m.len), SC_ESTATE);
    assert_dead(&res);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    /* Initiator reading first (a valid message 1, from another handshake). */
    pair(&ini, &res, XX, &k);
    write_ok(&ini, "", &m);
    sc_noise_handshake_clear(&ini);
    assert_int_equal(sc_noise_handshake_init(&ini, XX, SC_NOISE_INITIATOR, prologue, sizeof prologue,
                                             k.is, k.ie, NULL),
                     0);
    assert_int_equal(read_msg(&ini, &m), SC_ESTATE);
    assert_dead(&ini);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    /* Split before the end, on each side, at each step. */
    pair(&ini, &res, XX, &k);
    assert_int_equal(sc_noise_split(&ini, &a, &b), SC_ESTATE);
    assert_dead(&ini);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    pair(&ini, &res, XX, &k);
    write_ok(&ini, "", &m);
    read_ok(&res, &m, "");
    write_ok(&res, "", &m);
    read_ok(&ini, &m, "");
    assert_int_equal(sc_noise_split(&res, &a, &b), SC_ESTATE);
    assert_dead(&res);
    assert_int_equal(sc_noise_split(&ini, &a, &b), SC_ESTATE);
    assert_dead(&ini);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    /* After Split, no more handshake messages and no second Split. */
    pair(&ini, &res, XX, &k);
    write_ok(&ini, "", &m);
    read_ok(&res, &m, "");
    write_ok(&res, "", &m);
    read_ok(&ini, &m, "");
    write_ok(&ini, "", &m);
    {
        struct msg extra;
        assert_int_equal(sc_noise_write_message(&ini, NULL, 0, extra.b, sizeof extra.b, &extra.len),
                         SC_ESTATE);
        assert_int_equal(extra.len, 0);
    }
    assert_dead(&ini);
    read_ok(&res, &m, "");
    assert_int_equal(sc_noise_split(&res, &a, &b), 0);
    sc_noise_cipher_clear(&a);
    sc_noise_cipher_clear(&b);
    assert_int_equal(res.state, SC_NOISE_HS_DONE);
    assert_int_equal(sc_noise_split(&res, &a, &b), SC_ESTATE);
    assert_dead(&res);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    /* A one-way pattern: the responder never writes. */
    {
        uint8_t rs_pub[32];
        assert_int_equal(crypto_scalarmult_base(rs_pub, k.rs), 0);
        assert_int_equal(sc_noise_handshake_init(&ini, "Noise_N_25519_ChaChaPoly_BLAKE2b",
                                                 SC_NOISE_INITIATOR, NULL, 0, NULL, k.ie, rs_pub),
                         0);
        assert_int_equal(sc_noise_handshake_init(&res, "Noise_N_25519_ChaChaPoly_BLAKE2b",
                                                 SC_NOISE_RESPONDER, NULL, 0, k.rs, NULL, NULL),
                         0);
        assert_int_equal(sc_noise_write_message(&res, NULL, 0, m.b, sizeof m.b, &m.len), SC_ESTATE);
        write_ok(&ini, "one way", &m);
        assert_int_equal(ini.state, SC_NOISE_HS_SPLIT);
        sc_noise_handshake_clear(&ini);
        sc_noise_handshake_clear(&res);
    }
}

static void test_bad_init(void **state)
{
    static const char *const bad_names[] = {
        "Noise_XX_25519_AESGCM_SHA256",
        "Noise_XX_448_ChaChaPoly_BLAKE2b",
        "Noise_XX_25519_ChaChaPoly_BLAKE2s",
        "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b",
        "Noise_XXfallback_25519_ChaChaPoly_BLAKE2b",
        "Noise__25519_ChaChaPoly_BLAKE2b",
        "Noise_xx_25519_ChaChaPoly_BLAKE2b",
        "NoisePSK_XX_25519_ChaChaPoly_BLAKE2b",
        "Noise_XX_25519_ChaChaPoly_BLAKE2b_",
        "Noise_XX_25519_ChaChaPoly_BLAKE2b\n",
        "Noise_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX_25519_ChaChaPoly_BLAKE2b",
        "",
    };
    struct keys k;
    struct sc_noise_handshake hs;
    size_t i;

    (void)state;
    fixed_keys(&k, 0);
    for (i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        assert_int_equal(sc_noise_handshake_init(&hs, bad_names[i], SC_NOISE_INITIATOR, NULL, 0, k.is,
                                                 NULL, NULL),
                         SC_EINVAL);
        assert_dead(&hs);
        sc_noise_handshake_clear(&hs);
    }
    assert_int_equal(sc_noise_handshake_init(&hs, NULL, SC_NOISE_INITIATOR, NULL, 0, k.is, NULL, NULL),
                     SC_EINVAL);
    sc_noise_handshake_clear(&hs);
    assert_int_equal(sc_noise_handshake_init(&hs, XX, (enum sc_noise_role)3, NULL, 0, k.is, NULL, NULL),
                     SC_EINVAL);
    sc_noise_handshake_clear(&hs);
    /* XX needs our static key, and no remote static. */
    assert_int_equal(sc_noise_handshake_init(&hs, XX, SC_NOISE_INITIATOR, NULL, 0, NULL, NULL, NULL),
                     SC_EINVAL);
    sc_noise_handshake_clear(&hs);
    assert_int_equal(sc_noise_handshake_init(&hs, XX, SC_NOISE_INITIATOR, NULL, 0, k.is, NULL, k.rs_pub),
                     SC_EINVAL);
    sc_noise_handshake_clear(&hs);
    /* NN has no static keys at all; IK's initiator must know the responder. */
    assert_int_equal(sc_noise_handshake_init(&hs, "Noise_NN_25519_ChaChaPoly_BLAKE2b",
                                             SC_NOISE_INITIATOR, NULL, 0, k.is, NULL, NULL),
                     SC_EINVAL);
    sc_noise_handshake_clear(&hs);
    assert_int_equal(sc_noise_handshake_init(&hs, IK, SC_NOISE_INITIATOR, NULL, 0, k.is, NULL, NULL),
                     SC_EINVAL);
    sc_noise_handshake_clear(&hs);
    /* The responder of a one-way pattern has no ephemeral to inject. */
    assert_int_equal(sc_noise_handshake_init(&hs, "Noise_N_25519_ChaChaPoly_BLAKE2b",
                                             SC_NOISE_RESPONDER, NULL, 0, k.rs, k.re, NULL),
                     SC_EINVAL);
    sc_noise_handshake_clear(&hs);
    /* A prologue pointer is needed when its length is not 0. */
    assert_int_equal(sc_noise_handshake_init(&hs, XX, SC_NOISE_INITIATOR, NULL, 4, k.is, NULL, NULL),
                     SC_EINVAL);
    sc_noise_handshake_clear(&hs);
}

/* sc_noise_handshake_init_keypair() gives the same transcript as deriving
 * the public key; a missing half of the pair or a wrong public key fails. */
static void test_init_keypair(void **state)
{
    struct keys k;
    struct transcript t;
    struct sc_noise_handshake ini, res;
    struct msg m;
    uint8_t wrong[32];
    unsigned i;

    (void)state;
    fixed_keys(&k, 0);
    transcript_of(XX, &k, &t);
    assert_int_equal(sc_noise_handshake_init_keypair(&ini, XX, SC_NOISE_INITIATOR, prologue,
                                                     sizeof prologue, k.is, k.is_pub, k.ie, NULL),
                     0);
    assert_int_equal(sc_noise_handshake_init_keypair(&res, XX, SC_NOISE_RESPONDER, prologue,
                                                     sizeof prologue, k.rs, k.rs_pub, k.re, NULL),
                     0);
    for (i = 0; i < 3; i++) {
        write_ok(i % 2 == 0 ? &ini : &res, payloads[i], &m);
        assert_int_equal(m.len, t.m[i].len);
        assert_memory_equal(m.b, t.m[i].b, m.len);
        read_ok(i % 2 == 0 ? &res : &ini, &m, payloads[i]);
    }
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    assert_int_equal(sc_noise_handshake_init_keypair(&ini, XX, SC_NOISE_INITIATOR, NULL, 0, k.is, NULL,
                                                     NULL, NULL),
                     SC_EINVAL);
    assert_dead(&ini);
    sc_noise_handshake_clear(&ini);
    assert_int_equal(sc_noise_handshake_init_keypair(&ini, XX, SC_NOISE_INITIATOR, NULL, 0, NULL,
                                                     k.is_pub, NULL, NULL),
                     SC_EINVAL);
    assert_dead(&ini);
    sc_noise_handshake_clear(&ini);

    /* A public key that is not ours: the responder's message 2 makes the
     * initiator fail (its es is computed against the wrong key). */
    memcpy(wrong, k.rs_pub, sizeof wrong);
    wrong[0] ^= 0x10;
    assert_int_equal(sc_noise_handshake_init(&ini, XX, SC_NOISE_INITIATOR, prologue, sizeof prologue,
                                             k.is, k.ie, NULL),
                     0);
    assert_int_equal(sc_noise_handshake_init_keypair(&res, XX, SC_NOISE_RESPONDER, prologue,
                                                     sizeof prologue, k.rs, wrong, k.re, NULL),
                     0);
    write_ok(&ini, "", &m);
    read_ok(&res, &m, "");
    write_ok(&res, "", &m);
    assert_int_equal(read_msg(&ini, &m), SC_EAUTH);
    assert_dead(&ini);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);
}

/* A prologue mismatch fails at the first encrypted payload. */
static void test_prologue_mismatch(void **state)
{
    struct keys k;
    struct sc_noise_handshake ini, res;
    struct msg m;

    (void)state;
    fixed_keys(&k, 0);
    assert_int_equal(sc_noise_handshake_init(&ini, XX, SC_NOISE_INITIATOR, (const uint8_t *)"secirc/1", 8,
                                             k.is, k.ie, NULL),
                     0);
    assert_int_equal(sc_noise_handshake_init(&res, XX, SC_NOISE_RESPONDER, (const uint8_t *)"secirc/2", 8,
                                             k.rs, k.re, NULL),
                     0);
    write_ok(&ini, "", &m);
    read_ok(&res, &m, "");
    write_ok(&res, "", &m);
    assert_int_equal(read_msg(&ini, &m), SC_EAUTH);
    assert_dead(&ini);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);
}

/* A low-order ephemeral from the peer gives an all-zero DH: SC_ECRYPTO. */
static void test_low_order_point(void **state)
{
    struct keys k;
    struct sc_noise_handshake ini, res;
    struct transcript t;
    struct msg m;

    (void)state;
    fixed_keys(&k, 0);
    pair(&ini, &res, XX, &k);
    memset(m.b, 0, 32);
    m.len = 32;
    read_ok(&res, &m, "");
    assert_int_equal(sc_noise_write_message(&res, NULL, 0, m.b, sizeof m.b, &m.len), SC_ECRYPTO);
    assert_dead(&res);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);

    /* IK: the responder's first DH (es) is in message 1 already. */
    transcript_of(IK, &k, &t);
    pair(&ini, &res, IK, &k);
    m = t.m[0];
    memset(m.b, 0, 32);
    assert_int_equal(read_msg(&res, &m), SC_ECRYPTO);
    assert_dead(&res);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);
}

/* A complete XX handshake, then transport ciphers on both sides. */
static void xx_session(struct sc_noise_cipher *isend, struct sc_noise_cipher *irecv,
                       struct sc_noise_cipher *rsend, struct sc_noise_cipher *rrecv)
{
    struct keys k;
    struct transcript t;
    struct sc_noise_handshake ini, res;
    uint8_t hi[SC_NOISE_HASH_BYTES], hr[SC_NOISE_HASH_BYTES], rs[32];

    fixed_keys(&k, 0);
    run_handshake(XX, &k, &t, &ini, &res);
    sc_noise_handshake_hash(&ini, hi);
    sc_noise_handshake_hash(&res, hr);
    assert_memory_equal(hi, hr, sizeof hi);
    assert_int_equal(sc_noise_remote_static(&ini, rs), 0);
    assert_memory_equal(rs, k.rs_pub, 32);
    assert_int_equal(sc_noise_remote_static(&res, rs), 0);
    assert_memory_equal(rs, k.is_pub, 32);
    assert_int_equal(sc_noise_split(&ini, isend, irecv), 0);
    assert_int_equal(sc_noise_split(&res, rsend, rrecv), 0);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);
}

static void seal(struct sc_noise_cipher *c, const char *text, struct msg *m)
{
    assert_int_equal(sc_noise_encrypt(c, NULL, 0, (const uint8_t *)text, strlen(text), m->b, sizeof m->b,
                                      &m->len),
                     0);
}

static int open_msg(struct sc_noise_cipher *c, const struct msg *m, const char *expect)
{
    uint8_t got[512];
    size_t len;
    int rc = sc_noise_decrypt(c, NULL, 0, m->b, m->len, got, sizeof got, &len);

    if (rc == 0) {
        assert_int_equal(len, strlen(expect));
        assert_memory_equal(got, expect, len);
    }
    return rc;
}

static void clear4(struct sc_noise_cipher *a, struct sc_noise_cipher *b, struct sc_noise_cipher *c,
                   struct sc_noise_cipher *d)
{
    sc_noise_cipher_clear(a);
    sc_noise_cipher_clear(b);
    sc_noise_cipher_clear(c);
    sc_noise_cipher_clear(d);
}

static void test_transport_replay_reorder(void **state)
{
    struct sc_noise_cipher isend, irecv, rsend, rrecv;
    struct msg m1, m2, m3, back;

    (void)state;
    xx_session(&isend, &irecv, &rsend, &rrecv);
    seal(&isend, "one", &m1);
    seal(&isend, "two", &m2);
    seal(&isend, "three", &m3);

    assert_int_equal(open_msg(&rrecv, &m1, "one"), 0);
    /* Replay of message 1. */
    assert_int_equal(open_msg(&rrecv, &m1, "one"), SC_EAUTH);
    /* Reordered: 3 before 2. */
    assert_int_equal(open_msg(&rrecv, &m3, "three"), SC_EAUTH);
    /* The failures did not move the nonce: 2 then 3 still work. */
    assert_int_equal(rrecv.n, 1);
    assert_int_equal(open_msg(&rrecv, &m2, "two"), 0);
    assert_int_equal(open_msg(&rrecv, &m3, "three"), 0);
    /* A flipped bit anywhere in a transport message. */
    seal(&rsend, "back to you", &back);
    for (size_t i = 0; i < back.len; i++) {
        struct msg bad = back;
        bad.b[i] ^= 0x80;
        assert_int_equal(open_msg(&irecv, &bad, "back to you"), SC_EAUTH);
    }
    assert_int_equal(open_msg(&irecv, &back, "back to you"), 0);
    /* Wrong direction: the initiator's send key is not its receive key. */
    seal(&isend, "loop", &m1);
    assert_int_equal(open_msg(&irecv, &m1, "loop"), SC_EAUTH);
    /* Shorter than a tag. */
    m1.len = 15;
    assert_int_equal(open_msg(&rrecv, &m1, ""), SC_ETRUNC);
    /* The nonce 2^64-1 is never used. */
    sc_noise_cipher_set_nonce(&isend, UINT64_MAX);
    assert_int_equal(sc_noise_encrypt(&isend, NULL, 0, (const uint8_t *)"x", 1, m1.b, sizeof m1.b, &m1.len),
                     SC_ESTATE);
    sc_noise_cipher_set_nonce(&irecv, UINT64_MAX);
    assert_int_equal(open_msg(&irecv, &back, ""), SC_ESTATE);
    clear4(&isend, &irecv, &rsend, &rrecv);
}

static void test_rekey(void **state)
{
    struct sc_noise_cipher isend, irecv, rsend, rrecv;
    struct msg m;

    (void)state;
    xx_session(&isend, &irecv, &rsend, &rrecv);
    seal(&isend, "before", &m);
    assert_int_equal(open_msg(&rrecv, &m, "before"), 0);

    /* Rekey on the sender only: the receiver cannot decrypt. */
    assert_int_equal(sc_noise_rekey(&isend), 0);
    seal(&isend, "after", &m);
    assert_int_equal(open_msg(&rrecv, &m, "after"), SC_EAUTH);
    /* Rekey on the receiver too: in step again (n was not reset). */
    assert_int_equal(sc_noise_rekey(&rrecv), 0);
    assert_int_equal(isend.n, rrecv.n + 1);
    assert_int_equal(open_msg(&rrecv, &m, "after"), 0);

    /* Both sides of the other direction, between messages. */
    seal(&rsend, "r1", &m);
    assert_int_equal(open_msg(&irecv, &m, "r1"), 0);
    assert_int_equal(sc_noise_rekey(&rsend), 0);
    assert_int_equal(sc_noise_rekey(&irecv), 0);
    seal(&rsend, "r2", &m);
    assert_int_equal(open_msg(&irecv, &m, "r2"), 0);
    /* Rekey on the receiver only. */
    assert_int_equal(sc_noise_rekey(&irecv), 0);
    seal(&rsend, "r3", &m);
    assert_int_equal(open_msg(&irecv, &m, "r3"), SC_EAUTH);
    clear4(&isend, &irecv, &rsend, &rrecv);

    /* No key, no rekey. */
    {
        struct sc_noise_cipher none;
        memset(&none, 0, sizeof none);
        assert_int_equal(sc_noise_rekey(&none), SC_ESTATE);
        sc_noise_cipher_clear(&none);
    }
}

static void test_aead_switch_direction(void **state)
{
    static const uint8_t ad[] = "associated";
    struct sc_aead a;
    uint8_t key[32], nonce[12], pt[300], ct[316], ref[316], back[300];
    unsigned long long ref_len;
    int round;

    (void)state;
    memset(&a, 0, sizeof a);
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof pt; i++)
        pt[i] = (uint8_t)i;
    memset(nonce, 0, sizeof nonce);
    /* Not keyed yet. */
    assert_int_equal(sc_aead_encrypt(&a, nonce, NULL, 0, pt, sizeof pt, ct), SC_ESTATE);
    assert_int_equal(sc_aead_set_key(&a, key), 0);

    for (round = 0; round < 4; round++) {
        nonce[4] = (uint8_t)round;
        assert_int_equal(sc_aead_encrypt(&a, nonce, ad, sizeof ad, pt, sizeof pt, ct), 0);
        assert_int_equal(crypto_aead_chacha20poly1305_ietf_encrypt(ref, &ref_len, pt, sizeof pt, ad, sizeof ad,
                                                                   NULL, nonce, key),
                         0);
        assert_int_equal(ref_len, sizeof ct);
        assert_memory_equal(ct, ref, sizeof ct);
        /* Same context, other direction. */
        assert_int_equal(sc_aead_decrypt(&a, nonce, ad, sizeof ad, ct, sizeof ct, back), 0);
        assert_memory_equal(back, pt, sizeof pt);
        /* In place, both ways. */
        memcpy(back, pt, sizeof pt);
        {
            uint8_t buf[316];
            memcpy(buf, pt, sizeof pt);
            assert_int_equal(sc_aead_encrypt(&a, nonce, ad, sizeof ad, buf, sizeof pt, buf), 0);
            assert_memory_equal(buf, ref, sizeof buf);
            assert_int_equal(sc_aead_decrypt(&a, nonce, ad, sizeof ad, buf, sizeof buf, buf), 0);
            assert_memory_equal(buf, pt, sizeof pt);
        }
        /* Wrong tag, wrong ad, wrong nonce: SC_EAUTH, on the same context. */
        ct[sizeof ct - 1] ^= 1;
        assert_int_equal(sc_aead_decrypt(&a, nonce, ad, sizeof ad, ct, sizeof ct, back), SC_EAUTH);
        ct[sizeof ct - 1] ^= 1;
        assert_int_equal(sc_aead_decrypt(&a, nonce, ad, sizeof ad - 1, ct, sizeof ct, back), SC_EAUTH);
        nonce[11] ^= 1;
        assert_int_equal(sc_aead_decrypt(&a, nonce, ad, sizeof ad, ct, sizeof ct, back), SC_EAUTH);
        nonce[11] ^= 1;
        /* Empty plaintext and no ad. */
        assert_int_equal(sc_aead_encrypt(&a, nonce, NULL, 0, NULL, 0, ct), 0);
        assert_int_equal(sc_aead_decrypt(&a, nonce, NULL, 0, ct, 16, NULL), 0);
    }
    /* Re-keying an existing context takes effect in both directions. */
    key[0] ^= 0xff;
    assert_int_equal(sc_aead_set_key(&a, key), 0);
    assert_int_equal(sc_aead_decrypt(&a, nonce, ad, sizeof ad, ref, sizeof ref, back), SC_EAUTH);
    assert_int_equal(sc_aead_encrypt(&a, nonce, ad, sizeof ad, pt, sizeof pt, ct), 0);
    assert_memory_not_equal(ct, ref, sizeof ct);
    assert_int_equal(sc_aead_decrypt(&a, nonce, ad, sizeof ad, ct, sizeof ct, back), 0);
    assert_memory_equal(back, pt, sizeof pt);

    sc_aead_clear(&a);
    assert_null(a.ctx);
    assert_true(sodium_is_zero(a.key, sizeof a.key));
    sc_aead_clear(&a); /* twice is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xx_flip_msg1_detected_at_msg2),
        cmocka_unit_test(test_xx_flip_msg2),
        cmocka_unit_test(test_xx_flip_msg3),
        cmocka_unit_test(test_ik_flip_msg1),
        cmocka_unit_test(test_ik_flip_msg2),
        cmocka_unit_test(test_xx_truncated),
        cmocka_unit_test(test_xx_replay),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_bad_init),
        cmocka_unit_test(test_init_keypair),
        cmocka_unit_test(test_prologue_mismatch),
        cmocka_unit_test(test_low_order_point),
        cmocka_unit_test(test_transport_replay_reorder),
        cmocka_unit_test(test_rekey),
        cmocka_unit_test(test_aead_switch_direction),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
