/* tests/unit/test_noise_vectors.c — the published cacophony vectors for the
 * 15 fundamental patterns with 25519 / ChaChaPoly / BLAKE2b.
 *
 * Reads $SC_VECTORS_DIR/noise-25519-chachapoly-blake2b.json and runs every
 * vector as its own cmocka test, byte for byte: handshake messages, Split,
 * then transport messages. A missing file or fewer than 15 vectors fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "crypto/noise.h"

#define VECTOR_FILE "noise-25519-chachapoly-blake2b.json"
#define VECTORS_MIN 15u
#define MSG_MAX 1024u

static const char *const fundamental[] = {"N",  "K",  "X",  "NN", "NK", "NX", "KN", "KK",
                                          "KX", "XN", "XK", "XX", "IN", "IK", "IX"};

struct vector_file {
    char path[1024];
    json_t *root;
    json_t *vectors;
    char error[1400];
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the hex string field `key` of `obj` into out; fails the test on
 * bad hex or when it does not fit. Returns the length. */
static size_t hex_field(const json_t *obj, const char *key, uint8_t *out, size_t cap)
{
    const char *hex = json_string_value(json_object_get(obj, key));
    size_t len, i;

    if (hex == NULL)
        fail_msg("field %s missing or not a string", key);
    len = strlen(hex);
    assert_int_equal(len % 2, 0);
    assert_true(len / 2 <= cap);
    for (i = 0; i < len / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        assert_true(hi >= 0 && lo >= 0);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return len / 2;
}

/* An optional 32-byte key: returns NULL when the vector has no such field. */
static const uint8_t *key_field(const json_t *obj, const char *key, uint8_t out[32])
{
    if (json_object_get(obj, key) == NULL)
        return NULL;
    assert_int_equal(hex_field(obj, key, out, 32), 32);
    return out;
}

static void test_vector_file(void **state)
{
    const struct vector_file *vf = *state;
    size_t i, j, count;

    if (vf->root == NULL)
        fail_msg("%s", vf->error);
    count = json_array_size(vf->vectors);
    print_message("%zu vectors in %s\n", count, vf->path);
    assert_true(count >= VECTORS_MIN);
    /* Every fundamental pattern must be there. */
    for (i = 0; i < sizeof fundamental / sizeof fundamental[0]; i++) {
        unsigned seen = 0;
        for (j = 0; j < count; j++) {
            const char *p = json_string_value(json_object_get(json_array_get(vf->vectors, j), "pattern"));
            if (p != NULL && strcmp(p, fundamental[i]) == 0)
                seen++;
        }
        if (seen == 0)
            fail_msg("no vector for pattern %s", fundamental[i]);
    }
}

/* Initiator or responder through either init function. */
static int init_side(struct sc_noise_handshake *hs, const char *name, enum sc_noise_role role,
                     const uint8_t *prologue, size_t prologue_len, const uint8_t *s,
                     const uint8_t *e, const uint8_t *rs, bool keypair)
{
    uint8_t s_pub[32];

    if (!keypair || s == NULL)
        return sc_noise_handshake_init(hs, name, role, prologue, prologue_len, s, e, rs);
    assert_int_equal(crypto_scalarmult_base(s_pub, s), 0);
    return sc_noise_handshake_init_keypair(hs, name, role, prologue, prologue_len, s, s_pub, e, rs);
}

/* One vector, end to end; keypair: our static public keys are given. */
static void check_vector(const json_t *v, bool keypair)
{
    const char *name = json_string_value(json_object_get(v, "name"));
    const char *pattern = json_string_value(json_object_get(v, "pattern"));
    const json_t *messages = json_object_get(v, "messages");
    uint8_t iprologue[256], rprologue[256];
    uint8_t is[32], ie[32], irs[32], rs[32], re[32], rrs[32];
    const uint8_t *is_p, *ie_p, *irs_p, *rs_p, *re_p, *rrs_p;
    size_t iprologue_len, rprologue_len, i, handshake_messages = 0;
    struct sc_noise_handshake ini, res;
    struct sc_noise_cipher isend, irecv, rsend, rrecv;
    uint8_t hi[SC_NOISE_HASH_BYTES], hr[SC_NOISE_HASH_BYTES];
    bool one_way, split = false;

    assert_non_null(name);
    assert_non_null(pattern);
    assert_true(json_is_array(messages));
    one_way = strlen(pattern) == 1;

    iprologue_len = hex_field(v, "init_prologue", iprologue, sizeof iprologue);
    rprologue_len = hex_field(v, "resp_prologue", rprologue, sizeof rprologue);
    is_p = key_field(v, "init_static", is);
    ie_p = key_field(v, "init_ephemeral", ie);
    irs_p = key_field(v, "init_remote_static", irs); /* responder's public */
    rs_p = key_field(v, "resp_static", rs);
    re_p = key_field(v, "resp_ephemeral", re);
    rrs_p = key_field(v, "resp_remote_static", rrs); /* initiator's public */
    /* In the one-way patterns the responder sends no ephemeral; the vectors
     * still list one, which our API refuses as unused. */
    if (one_way)
        re_p = NULL;

    assert_int_equal(init_side(&ini, name, SC_NOISE_INITIATOR, iprologue, iprologue_len, is_p, ie_p,
                               irs_p, keypair),
                     0);
    assert_int_equal(init_side(&res, name, SC_NOISE_RESPONDER, rprologue, rprologue_len, rs_p, re_p,
                               rrs_p, keypair),
                     0);

    for (i = 0; i < json_array_size(messages); i++) {
        const json_t *m = json_array_get(messages, i);
        uint8_t payload[MSG_MAX], expect[MSG_MAX], out[MSG_MAX], got[MSG_MAX];
        size_t payload_len = hex_field(m, "payload", payload, sizeof payload);
        size_t expect_len = hex_field(m, "ciphertext", expect, sizeof expect);
        size_t out_len = 0, got_len = 0;
        /* cacophony: senders keep alternating after the handshake, starting
         * with the initiator at message 0; one-way: always the initiator. */
        bool from_initiator = one_way || i % 2 == 0;

        if (!split) {
            struct sc_noise_handshake *w = from_initiator ? &ini : &res;
            struct sc_noise_handshake *r = from_initiator ? &res : &ini;

            assert_int_equal(w->state, SC_NOISE_HS_WRITE);
            assert_int_equal(r->state, SC_NOISE_HS_READ);
            assert_int_equal(sc_noise_write_message(w, payload, payload_len, out, sizeof out, &out_len), 0);
            assert_int_equal(out_len, expect_len);
            assert_memory_equal(out, expect, expect_len);
            assert_int_equal(sc_noise_read_message(r, out, out_len, got, sizeof got, &got_len), 0);
            assert_int_equal(got_len, payload_len);
            assert_memory_equal(got, payload, payload_len);
            handshake_messages++;
            if (ini.state == SC_NOISE_HS_SPLIT) {
                assert_int_equal(res.state, SC_NOISE_HS_SPLIT);
                sc_noise_handshake_hash(&ini, hi);
                sc_noise_handshake_hash(&res, hr);
                assert_memory_equal(hi, hr, sizeof hi);
                if (json_object_get(v, "handshake_hash") != NULL) {
                    uint8_t hv[SC_NOISE_HASH_BYTES];
                    assert_int_equal(hex_field(v, "handshake_hash", hv, sizeof hv), sizeof hv);
                    assert_memory_equal(hi, hv, sizeof hv);
                }
                assert_int_equal(sc_noise_split(&ini, &isend, &irecv), 0);
                assert_int_equal(sc_noise_split(&res, &rsend, &rrecv), 0);
                assert_int_equal(ini.state, SC_NOISE_HS_DONE);
                assert_int_equal(res.state, SC_NOISE_HS_DONE);
                split = true;
            }
        } else {
            struct sc_noise_cipher *enc = from_initiator ? &isend : &rsend;
            struct sc_noise_cipher *dec = from_initiator ? &rrecv : &irecv;

            assert_int_equal(sc_noise_encrypt(enc, NULL, 0, payload, payload_len, out, sizeof out, &out_len), 0);
            assert_int_equal(out_len, expect_len);
            assert_memory_equal(out, expect, expect_len);
            assert_int_equal(sc_noise_decrypt(dec, NULL, 0, out, out_len, got, sizeof got, &got_len), 0);
            assert_int_equal(got_len, payload_len);
            assert_memory_equal(got, payload, payload_len);
        }
    }
    assert_true(split);
    /* XN, XK, XX have three handshake messages, the other two-way patterns
     * two, the one-way patterns one. */
    assert_int_equal(handshake_messages, one_way ? 1 : pattern[0] == 'X' ? 3 : 2);

    /* Each side ends up with the other's static public key when it has one. */
    if (is_p != NULL) {
        uint8_t pub[32], got_rs[32];
        assert_int_equal(crypto_scalarmult_base(pub, is_p), 0);
        assert_int_equal(sc_noise_remote_static(&res, got_rs), 0);
        assert_memory_equal(got_rs, pub, 32);
    } else {
        uint8_t got_rs[32];
        assert_int_equal(sc_noise_remote_static(&res, got_rs), SC_ENOENT);
    }
    if (rs_p != NULL) {
        uint8_t pub[32], got_rs[32];
        assert_int_equal(crypto_scalarmult_base(pub, rs_p), 0);
        assert_int_equal(sc_noise_remote_static(&ini, got_rs), 0);
        assert_memory_equal(got_rs, pub, 32);
    }

    sc_noise_cipher_clear(&isend);
    sc_noise_cipher_clear(&irecv);
    sc_noise_cipher_clear(&rsend);
    sc_noise_cipher_clear(&rrecv);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);
}

static void test_vector(void **state)
{
    check_vector(*state, false);
    check_vector(*state, true);
}

static void load_vectors(struct vector_file *vf)
{
    const char *dir = getenv("SC_VECTORS_DIR");
    json_error_t err;

    memset(vf, 0, sizeof *vf);
    if (dir == NULL || *dir == '\0') {
        snprintf(vf->error, sizeof vf->error, "SC_VECTORS_DIR is not set");
        return;
    }
    if ((size_t)snprintf(vf->path, sizeof vf->path, "%s/%s", dir, VECTOR_FILE) >= sizeof vf->path) {
        snprintf(vf->error, sizeof vf->error, "SC_VECTORS_DIR is too long");
        return;
    }
    vf->root = json_load_file(vf->path, 0, &err);
    if (vf->root == NULL) {
        snprintf(vf->error, sizeof vf->error, "%s:%d: %s", vf->path, err.line, err.text);
        return;
    }
    vf->vectors = json_object_get(vf->root, "vectors");
    if (!json_is_array(vf->vectors)) {
        snprintf(vf->error, sizeof vf->error, "%s: no \"vectors\" array", vf->path);
        json_decref(vf->root);
        vf->root = NULL;
        vf->vectors = NULL;
    }
}

int main(void)
{
    struct vector_file vf;
    struct CMUnitTest *tests;
    size_t count, i;
    int failed;

    load_vectors(&vf);
    count = vf.vectors != NULL ? json_array_size(vf.vectors) : 0;
    tests = calloc(count + 1, sizeof *tests);
    if (tests == NULL)
        return 1;
    tests[0] = (struct CMUnitTest){"vector_file_has_15_patterns", test_vector_file, NULL, NULL, &vf};
    for (i = 0; i < count; i++) {
        json_t *v = json_array_get(vf.vectors, i);
        const char *name = json_string_value(json_object_get(v, "name"));
        tests[1 + i] = (struct CMUnitTest){name != NULL ? name : "unnamed vector", test_vector,
                                           NULL, NULL, v};
    }
    failed = _cmocka_run_group_tests("noise_vectors", tests, count + 1, NULL, NULL);
    free(tests);
    json_decref(vf.root);
    return failed;
}
