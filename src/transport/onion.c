/* transport/onion.c — .onion host names: the suffix test and the strict v3
 * address check (base32, SHA3-256 checksum, version, Ed25519 point).
 * Pure: no I/O, no allocation; it must never accept a v3 address that Tor
 * would refuse. */
#include "transport/onion.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <sodium.h>

#define SUFFIX ".onion"
#define SUFFIX_LEN (sizeof SUFFIX - 1)
#define HOST_MAX_BYTES 255u
#define LABEL_MAX_BYTES 63u
/* 56 base32 characters * 5 bits = 280 bits = 35 bytes. */
#define DECODED_BYTES 35u
#define VERSION_V3 3u

bool sc_host_is_onion(const char *host)
{
    if (host == NULL)
        return false;
    size_t n = strnlen(host, HOST_MAX_BYTES + 2);
    if (n > 0 && host[n - 1] == '.')
        n--; /* one trailing dot: the same name, fully qualified */
    return n > SUFFIX_LEN && strncasecmp(host + n - SUFFIX_LEN, SUFFIX, SUFFIX_LEN) == 0;
}

/* RFC 4648 base32 digit value, either case, or -1. */
static int base32_value(char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

/* Decodes exactly SC_ONION_V3_LABEL_LEN characters (no padding needed:
 * 280 bits fill 35 bytes). */
static int base32_decode_label(const char *in, uint8_t out[DECODED_BYTES])
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;

    for (size_t i = 0; i < SC_ONION_V3_LABEL_LEN; i++) {
        int v = base32_value(in[i]);
        if (v < 0)
            return SC_EFORMAT;
        acc = (acc << 5 | (uint32_t)v) & 0xfffu; /* at most 12 live bits */
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n == DECODED_BYTES && bits == 0 ? 0 : SC_EFORMAT;
}

/* Subdomain labels before the address: "a.b." (each 1..63 of LDH). */
static bool subdomains_ok(const char *p, size_t len)
{
    size_t label = 0;

    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        bool ldh = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-';
        if (!ldh || ++label > LABEL_MAX_BYTES)
            return false;
    }
    return label == 0; /* ends with the '.' before the address label */
}

static int onion_checksum(const uint8_t pub[SC_ONION_V3_PUBKEY_BYTES], uint8_t version,
                          uint8_t digest[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int dlen = 0;
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha3_256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, SC_ONION_V3_CHECKSUM_LABEL,
                              sizeof SC_ONION_V3_CHECKSUM_LABEL - 1) == 1 &&
             EVP_DigestUpdate(ctx, pub, SC_ONION_V3_PUBKEY_BYTES) == 1 &&
             EVP_DigestUpdate(ctx, &version, 1) == 1 && EVP_DigestFinal_ex(ctx, digest, &dlen) == 1 &&
             dlen == 32;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : SC_ECRYPTO;
}

int sc_onion_v3_check(const char *host)
{
    uint8_t raw[DECODED_BYTES];
    uint8_t digest[32];

    if (host == NULL)
        return SC_EINVAL;
    size_t n = strnlen(host, HOST_MAX_BYTES + 1);
    if (n > HOST_MAX_BYTES || n < SC_ONION_V3_LABEL_LEN + SUFFIX_LEN)
        return SC_EFORMAT;
    if (strncasecmp(host + n - SUFFIX_LEN, SUFFIX, SUFFIX_LEN) != 0)
        return SC_EFORMAT;
    size_t start = n - SUFFIX_LEN - SC_ONION_V3_LABEL_LEN;
    if (!subdomains_ok(host, start))
        return SC_EFORMAT;
    if (base32_decode_label(host + start, raw) != 0)
        return SC_EFORMAT;
    const uint8_t *pub = raw;
    const uint8_t *checksum = raw + SC_ONION_V3_PUBKEY_BYTES;
    uint8_t version = raw[SC_ONION_V3_PUBKEY_BYTES + 2];
    if (version != VERSION_V3)
        return SC_EVERSION;
    int err = onion_checksum(pub, version, digest);
    if (err)
        return err;
    if (checksum[0] != digest[0] || checksum[1] != digest[1])
        return SC_EFORMAT;
    if (sodium_init() < 0 || crypto_core_ed25519_is_valid_point(pub) != 1)
        return SC_ECRYPTO;
    return 0;
}
