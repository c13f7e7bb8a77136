/* tests/unit/test_onion.c — .onion names (transport/onion.h): the suffix
 * test and the v3 address check, with a published address, addresses built
 * here from a fixed Ed25519 key (checksum and base32 computed independently
 * of onion.c), and every way an address can be wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "transport/onion.h"

/* The Tor Project's website (torproject.org's Onion-Location). */
static const char torproject[] = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";

/* ---- building addresses, the other way round from onion.c -------------------- */

static void sha3_checksum(const uint8_t pub[32], uint8_t version, uint8_t out[2])
{
    uint8_t buf[15 + 32 + 1], digest[32];
    size_t dlen = 0;

    memcpy(buf, ".onion checksum", 15);
    memcpy(buf + 15, pub, 32);
    buf[47] = version;
    assert_int_equal(EVP_Q_digest(NULL, "SHA3-256", NULL, buf, sizeof buf, digest, &dlen), 1);
    assert_int_equal(dlen, 32);
    out[0] = digest[0];
    out[1] = digest[1];
}

/* RFC 4648 base32 of 35 bytes, lower case, no padding: 56 characters. */
static void base32_encode35(const uint8_t in[35], char out[57])
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    for (size_t i = 0; i < 56; i++) {
        size_t bit = i * 5;
        unsigned v = 0;
        for (size_t k = 0; k < 5; k++) {
            size_t b = bit + k;
            v = v << 1 | ((in[b / 8] >> (7 - b % 8)) & 1u);
        }
        out[i] = alphabet[v];
    }
    out[56] = '\0';
}

/* "<base32(pub || checksum || version)>.onion"; checksum as given. */
static void make_address(const uint8_t pub[32], const uint8_t checksum[2], uint8_t version,
                         char out[63])
{
    uint8_t raw[35];
    memcpy(raw, pub, 32);
    raw[32] = checksum[0];
    raw[33] = checksum[1];
    raw[34] = version;
    base32_encode35(raw, out);
    memcpy(out + 56, ".onion", 7);
}

static void fixed_pubkey(uint8_t pub[32])
{
    uint8_t seed[32], sk[64];
    for (unsigned i = 0; i < 32; i++)
        seed[i] = (uint8_t)i;
    assert_int_equal(crypto_sign_seed_keypair(pub, sk, seed), 0);
}

static void good_address(char out[63])
{
    uint8_t pub[32], sum[2];
    fixed_pubkey(pub);
    sha3_checksum(pub, 3, sum);
    make_address(pub, sum, 3, out);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_published_address(void **state)
{
    (void)state;
    char upper[sizeof torproject], www[100];

    assert_int_equal(sc_onion_v3_check(torproject), 0);
    for (size_t i = 0; i < sizeof torproject; i++)
        upper[i] = (char)(torproject[i] >= 'a' && torproject[i] <= 'z' ? torproject[i] - 32
                                                                       : torproject[i]);
    assert_int_equal(sc_onion_v3_check(upper), 0);
    snprintf(www, sizeof www, "www.%s", torproject);
    assert_int_equal(sc_onion_v3_check(www), 0);
    snprintf(www, sizeof www, "a-1.B.%s", torproject);
    assert_int_equal(sc_onion_v3_check(www), 0);
}

static void test_generated_address(void **state)
{
    (void)state;
    char addr[63], mixed[63];

    good_address(addr);
    assert_int_equal(sc_onion_v3_check(addr), 0);
    memcpy(mixed, addr, sizeof addr);
    for (size_t i = 0; i < 56; i += 2)
        if (mixed[i] >= 'a' && mixed[i] <= 'z')
            mixed[i] = (char)(mixed[i] - 32);
    memcpy(mixed + 56, ".OnIoN", 6);
    assert_int_equal(sc_onion_v3_check(mixed), 0);
    assert_true(sc_host_is_onion(addr));
}

static void test_bad_checksum(void **state)
{
    (void)state;
    uint8_t pub[32], sum[2];
    char addr[63];

    fixed_pubkey(pub);
    sha3_checksum(pub, 3, sum);
    sum[1] ^= 0x01;
    make_address(pub, sum, 3, addr);
    assert_int_equal(sc_onion_v3_check(addr), SC_EFORMAT);

    /* A typo in the key part of a published address. */
    char typo[sizeof torproject];
    memcpy(typo, torproject, sizeof torproject);
    typo[0] = typo[0] == 'a' ? 'b' : 'a';
    assert_int_equal(sc_onion_v3_check(typo), SC_EFORMAT);
}

static void test_bad_version(void **state)
{
    (void)state;
    static const uint8_t versions[] = {0, 2, 4, 0xff};
    uint8_t pub[32], sum[2];
    char addr[63];

    fixed_pubkey(pub);
    for (size_t i = 0; i < sizeof versions; i++) {
        sha3_checksum(pub, versions[i], sum); /* consistent checksum */
        make_address(pub, sum, versions[i], addr);
        assert_int_equal(sc_onion_v3_check(addr), SC_EVERSION);
    }
}

/* A key with a torsion component (or of small order) names no service. */
static void test_bad_pubkey(void **state)
{
    (void)state;
    static const char order8_hex[] =
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05";
    uint8_t pub[32], order8[32], twisted[32], sum[2];
    char addr[63];

    fixed_pubkey(pub);
    assert_int_equal(sodium_hex2bin(order8, 32, order8_hex, 64, NULL, NULL, NULL), 0);
    assert_int_equal(crypto_core_ed25519_add(twisted, pub, order8), 0);
    sha3_checksum(twisted, 3, sum);
    make_address(twisted, sum, 3, addr);
    assert_int_equal(sc_onion_v3_check(addr), SC_ECRYPTO);

    uint8_t identity[32] = {1};
    sha3_checksum(identity, 3, sum);
    make_address(identity, sum, 3, addr);
    assert_int_equal(sc_onion_v3_check(addr), SC_ECRYPTO);
}

static void test_bad_syntax(void **state)
{
    (void)state;
    char good[63], buf[400];
    good_address(good);

    /* v2 (16 characters) and wrong lengths. */
    assert_int_equal(sc_onion_v3_check("expyuzz4wqqyqhjn.onion"), SC_EFORMAT);
    snprintf(buf, sizeof buf, "%.55s.onion", good);
    assert_int_equal(sc_onion_v3_check(buf), SC_EFORMAT);
    snprintf(buf, sizeof buf, "a%s", good); /* 57 characters */
    assert_int_equal(sc_onion_v3_check(buf), SC_EFORMAT);
    /* Characters outside the base32 alphabet. */
    static const char bad_chars[] = {'0', '1', '8', '9', '=', '-', ' ', '\xc3'};
    for (size_t i = 0; i < sizeof bad_chars; i++) {
        memcpy(buf, good, sizeof good);
        buf[10] = bad_chars[i];
        assert_int_equal(sc_onion_v3_check(buf), SC_EFORMAT);
    }
    /* Suffixes. */
    snprintf(buf, sizeof buf, "%.56s", good);
    assert_int_equal(sc_onion_v3_check(buf), SC_EFORMAT);
    snprintf(buf, sizeof buf, "%.56s.onio", good);
    assert_int_equal(sc_onion_v3_check(buf), SC_EFORMAT);
    snprintf(buf, sizeof buf, "%s.", good);
    assert_int_equal(sc_onion_v3_check(buf), SC_EFORMAT);
    snprintf(buf, sizeof buf, "%.56s.onion.com", good);
    assert_int_equal(sc_onion_v3_check(buf), SC_EFORMAT);
    snprintf(buf, sizeof buf, "%.56s_onion", good);
    assert_int_equal(sc_onion_v3_check(buf), SC_EFORMAT);
    /* Subdomain labels. */
    static const char *const bad_prefixes[] = {".", "www..", "a_b.", "www", "a b.", "..", "é."};
    for (size_t i = 0; i < sizeof bad_prefixes / sizeof bad_prefixes[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", bad_prefixes[i], good);
        assert_int_equal(sc_onion_v3_check(buf), SC_EFORMAT);
    }
    char label64[70];
    memset(label64, 'a', 64);
    label64[64] = '\0';
    snprintf(buf, sizeof buf, "%s.%s", label64, good);
    assert_int_equal(sc_onion_v3_check(buf), SC_EFORMAT);
    snprintf(buf, sizeof buf, "%.63s.%s", label64, good);
    assert_int_equal(sc_onion_v3_check(buf), 0);
    /* Over 255 bytes in total, every label fine. */
    snprintf(buf, sizeof buf, "%.63s.%.63s.%.63s.%.63s.%s", label64, label64, label64, label64,
             good);
    assert_true(strlen(buf) > 255);
    assert_int_equal(sc_onion_v3_check(buf), SC_EFORMAT);
    snprintf(buf, sizeof buf, "%.63s.%.63s.%.62s.%s", label64, label64, label64, good);
    assert_int_equal(strlen(buf), 253);
    assert_int_equal(sc_onion_v3_check(buf), 0);

    assert_int_equal(sc_onion_v3_check(""), SC_EFORMAT);
    assert_int_equal(sc_onion_v3_check(".onion"), SC_EFORMAT);
    assert_int_equal(sc_onion_v3_check(NULL), SC_EINVAL);
}

static void test_host_is_onion(void **state)
{
    (void)state;
    static const char *const yes[] = {"x.onion", "X.ONION", "foo.onion.", "a.b.OnIon",
                                      "expyuzz4wqqyqhjn.onion", torproject};
    static const char *const no[] = {"",           "onion",       ".onion",    ".onion.",
                                     "onion.",     "foo.onionx",  "fooonion",  "foo.onion.com",
                                     "foo.onion..", "127.0.0.1", "example.com"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(sc_host_is_onion(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(sc_host_is_onion(no[i]));
    assert_false(sc_host_is_onion(NULL));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_address),
        cmocka_unit_test(test_generated_address),
        cmocka_unit_test(test_bad_checksum),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_bad_pubkey),
        cmocka_unit_test(test_bad_syntax),
        cmocka_unit_test(test_host_is_onion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
