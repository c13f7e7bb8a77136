/* secirc/identity.h — relay identity (Ed25519), relay IDs, link keys (X25519)
 * and link-key certificates.
 *
 * A relay's identity is an Ed25519 key pair kept in a key file of mode 0600;
 * its relay ID is the 32-byte public key, written as 64 lowercase hex
 * characters. The identity signs a short certificate for each link key:
 *   sig = Ed25519-sign(identity, "secirc link key v1" || x25519_pub || expiry_be64)
 * Secrets live in sodium_malloc'd memory and are wiped when freed.
 * File and certificate formats: docs/PROTOCOL.md. */
#ifndef SECIRC_IDENTITY_H
#define SECIRC_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "secirc/error.h"

#define SC_RELAY_ID_BYTES 32u
#define SC_RELAY_ID_HEX_LEN 64u
#define SC_SIGNATURE_BYTES 64u
#define SC_LINK_KEY_BYTES 32u
/* Encoded certificate: identity(32) link_pub(32) expiry_be64(8) sig(64). */
#define SC_LINK_CERT_BYTES 136u
#define SC_KEYFILE_BYTES 92u

struct sc_identity; /* opaque */

/* Fresh identity from the system RNG. Calls sodium_init() if needed. */
int sc_identity_generate(struct sc_identity **out) SC_MUST_CHECK;
/* Deterministic identity from a 32-byte seed (tests, benchmarks). */
int sc_identity_from_seed(const uint8_t seed[32], struct sc_identity **out) SC_MUST_CHECK;
/* Writes a new key file with mode 0600. Never overwrites: SC_EEXIST if the
 * path exists. */
int sc_identity_save(const struct sc_identity *id, const char *path) SC_MUST_CHECK;
/* Loads a key file. Refuses (with a one-line reason in `why`) a file owned
 * by another user than the one running (SC_EPERM, naming both users, as
 * ssh does), one readable or writable by group or others (SC_EPERM),
 * truncated or of the
 * wrong size (SC_ETRUNC / SC_EFORMAT), of another format version
 * (SC_EVERSION), or whose checksum or public key does not match (SC_EFORMAT).
 * `why` may be NULL. */
int sc_identity_load(const char *path, struct sc_identity **out, char *why,
                     size_t whylen) SC_MUST_CHECK;
/* Parses a key file image already in memory (no permission check). */
int sc_identity_parse(const uint8_t *buf, size_t len, struct sc_identity **out, char *why,
                      size_t whylen) SC_MUST_CHECK;
void sc_identity_free(struct sc_identity *id);
/* The relay ID (Ed25519 public key); valid while id lives. */
const uint8_t *sc_identity_relay_id(const struct sc_identity *id);
int sc_identity_sign(const struct sc_identity *id, const uint8_t *msg, size_t len,
                     uint8_t sig[SC_SIGNATURE_BYTES]) SC_MUST_CHECK;

/* 64 lowercase hex characters and a NUL. */
void sc_relay_id_to_hex(const uint8_t id[SC_RELAY_ID_BYTES], char out[SC_RELAY_ID_HEX_LEN + 1]);
/* Strict: exactly 64 hex digits. SC_EFORMAT otherwise. */
int sc_relay_id_from_hex(const char *hex, uint8_t out[SC_RELAY_ID_BYTES]) SC_MUST_CHECK;

struct sc_link_cert {
    uint8_t identity[SC_RELAY_ID_BYTES];
    uint8_t link_pub[SC_LINK_KEY_BYTES];
    uint64_t expiry_unix; /* seconds */
    uint8_t signature[SC_SIGNATURE_BYTES];
};

/* An X25519 link key with its certificate, in locked, read-only memory
 * (sodium_malloc, then sodium_mprotect_readonly): never write to it. The
 * private half is wiped on free. */
struct sc_link_key {
    uint8_t priv[SC_LINK_KEY_BYTES];
    uint8_t pub[SC_LINK_KEY_BYTES];
    struct sc_link_cert cert;
};

/* New random link key, certified by `id` until expiry_unix. */
int sc_link_key_generate(const struct sc_identity *id, uint64_t expiry_unix,
                         struct sc_link_key **out) SC_MUST_CHECK;
void sc_link_key_free(struct sc_link_key *key);

void sc_link_cert_encode(const struct sc_link_cert *cert, uint8_t out[SC_LINK_CERT_BYTES]);
void sc_link_cert_decode(const uint8_t in[SC_LINK_CERT_BYTES], struct sc_link_cert *cert);
/* 0 if the signature by cert->identity over cert->link_pub and expiry is
 * valid, link_pub equals `link_pub` (the key seen in the handshake;
 * constant-time compare) and now_unix < expiry. SC_EAUTH for a bad signature
 * or another key, SC_EEXPIRED for an expired certificate. */
int sc_link_cert_verify(const struct sc_link_cert *cert, const uint8_t link_pub[SC_LINK_KEY_BYTES],
                        uint64_t now_unix) SC_MUST_CHECK;

#endif
