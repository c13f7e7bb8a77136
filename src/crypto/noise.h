/* crypto/noise.h — the Noise Protocol Framework, revision 34, with
 * 25519 / ChaChaPoly / BLAKE2b: CipherState, SymmetricState and a
 * HandshakeState driven by a generic table of the 15 fundamental patterns.
 *
 * Pure functions over buffers: no sockets, no clocks, no logging. Randomness
 * is only used for ephemeral keys, and those can be injected, which makes
 * every run deterministic (the test vectors need that). Any failure leaves
 * the handshake in an error state in which every further call fails. */
#ifndef SC_CRYPTO_NOISE_H
#define SC_CRYPTO_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/aead.h"
#include "secirc/error.h"
#include "secirc/limits.h"

#define SC_NOISE_DH_BYTES 32u
#define SC_NOISE_HASH_BYTES 64u
#define SC_NOISE_KEY_BYTES 32u
#define SC_NOISE_TAG_BYTES 16u
#define SC_NOISE_NAME_MAX 64u

/* CipherState (Noise section 5.1). */
struct sc_noise_cipher {
    struct sc_aead aead; /* holds k; keyed only when has_key */
    uint64_t n;
    bool has_key;
};

/* InitializeKey(k): sets k, n = 0. */
int sc_noise_cipher_init_key(struct sc_noise_cipher *c, const uint8_t k[SC_NOISE_KEY_BYTES]) SC_MUST_CHECK;
/* Wipes the key and frees its context. Safe on a zeroed struct. */
void sc_noise_cipher_clear(struct sc_noise_cipher *c);
void sc_noise_cipher_set_nonce(struct sc_noise_cipher *c, uint64_t n);
/* EncryptWithAd: out gets ptlen + 16 bytes (ptlen bytes when no key).
 * out may alias pt. Fails with SC_ENOSPACE if outcap is too small, SC_ESTATE
 * when the nonce is exhausted (2^64-1). */
int sc_noise_encrypt(struct sc_noise_cipher *c, const uint8_t *ad, size_t adlen,
                     const uint8_t *pt, size_t ptlen, uint8_t *out, size_t outcap,
                     size_t *outlen) SC_MUST_CHECK;
/* DecryptWithAd: SC_EAUTH on a bad tag; the nonce advances only on success. */
int sc_noise_decrypt(struct sc_noise_cipher *c, const uint8_t *ad, size_t adlen,
                     const uint8_t *ct, size_t ctlen, uint8_t *out, size_t outcap,
                     size_t *outlen) SC_MUST_CHECK;
/* Rekey(): k = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes). */
int sc_noise_rekey(struct sc_noise_cipher *c) SC_MUST_CHECK;

/* SymmetricState (section 5.2). */
struct sc_noise_symmetric {
    struct sc_noise_cipher cipher;
    uint8_t ck[SC_NOISE_HASH_BYTES];
    uint8_t h[SC_NOISE_HASH_BYTES];
};

enum sc_noise_role {
    SC_NOISE_INITIATOR = 1,
    SC_NOISE_RESPONDER = 2,
};

/* HandshakeState states. Transitions:
 *   WRITE -> READ | WRITE (one-way patterns) | SPLIT   (after WriteMessage)
 *   READ  -> WRITE | READ (one-way patterns) | SPLIT   (after ReadMessage)
 *   SPLIT -> DONE                                      (after Split)
 *   any   -> FAILED                                    (on any error) */
enum sc_noise_hs_state {
    SC_NOISE_HS_NONE = 0,
    SC_NOISE_HS_WRITE,
    SC_NOISE_HS_READ,
    SC_NOISE_HS_SPLIT,
    SC_NOISE_HS_DONE,
    SC_NOISE_HS_FAILED,
};

struct sc_noise_pattern; /* one row of the pattern table in noise.c */

struct sc_noise_handshake {
    struct sc_noise_symmetric ss;
    const struct sc_noise_pattern *pattern;
    enum sc_noise_role role;
    enum sc_noise_hs_state state;
    unsigned msg_index; /* next message of the pattern */
    bool has_s, has_e, has_rs, has_re, e_injected;
    uint8_t s_priv[SC_NOISE_DH_BYTES], s_pub[SC_NOISE_DH_BYTES];
    uint8_t e_priv[SC_NOISE_DH_BYTES], e_pub[SC_NOISE_DH_BYTES];
    uint8_t rs[SC_NOISE_DH_BYTES], re[SC_NOISE_DH_BYTES];
};

/* Initialize(): protocol_name is the full name, e.g.
 * "Noise_XX_25519_ChaChaPoly_BLAKE2b"; any other DH/cipher/hash or an
 * unknown pattern gives SC_EINVAL. s_priv is our static key (NULL if the
 * pattern has none for this role); e_priv injects our ephemeral key (NULL:
 * generated from randombytes when first needed); rs_pub is the peer's
 * static public key when the pattern pre-sends it (NULL otherwise). A key the
 * pattern needs but is missing, or one it does not use, gives SC_EINVAL. */
int sc_noise_handshake_init(struct sc_noise_handshake *hs, const char *protocol_name,
                            enum sc_noise_role role, const uint8_t *prologue,
                            size_t prologue_len, const uint8_t *s_priv,
                            const uint8_t *e_priv, const uint8_t *rs_pub) SC_MUST_CHECK;
/* The same for a caller that keeps its static key pair: s_pub (given iff
 * s_priv is) must be s_priv's public key. It is not checked (a wrong one
 * makes the handshake fail); not deriving it saves one of each side's five
 * X25519 operations in XX. */
int sc_noise_handshake_init_keypair(struct sc_noise_handshake *hs, const char *protocol_name,
                                    enum sc_noise_role role, const uint8_t *prologue,
                                    size_t prologue_len, const uint8_t *s_priv,
                                    const uint8_t *s_pub, const uint8_t *e_priv,
                                    const uint8_t *rs_pub) SC_MUST_CHECK;
/* WriteMessage(payload, message_buffer): SC_ESTATE if it is not our turn,
 * SC_ETOOBIG if the message would exceed 65535 bytes, SC_ENOSPACE if outcap
 * is too small. */
int sc_noise_write_message(struct sc_noise_handshake *hs, const uint8_t *payload,
                           size_t payload_len, uint8_t *out, size_t outcap,
                           size_t *outlen) SC_MUST_CHECK;
/* ReadMessage(message, payload_buffer): SC_ESTATE out of turn, SC_ETOOBIG
 * over 65535 bytes, SC_ETRUNC if shorter than its tokens need, SC_EAUTH on a
 * decryption failure, SC_ECRYPTO on an invalid (low-order) DH result. */
int sc_noise_read_message(struct sc_noise_handshake *hs, const uint8_t *msg,
                          size_t msg_len, uint8_t *payload, size_t payload_cap,
                          size_t *payload_len) SC_MUST_CHECK;
/* Split(): only in state SPLIT. `send` gets our sending CipherState and
 * `recv` our receiving one (c1/c2 ordered by role). Wipes the chaining key. */
int sc_noise_split(struct sc_noise_handshake *hs, struct sc_noise_cipher *send,
                   struct sc_noise_cipher *recv) SC_MUST_CHECK;
/* GetHandshakeHash(): valid once the last message was processed. */
void sc_noise_handshake_hash(const struct sc_noise_handshake *hs, uint8_t out[SC_NOISE_HASH_BYTES]);
/* The peer's static public key, once received (or pre-known). */
int sc_noise_remote_static(const struct sc_noise_handshake *hs, uint8_t out[SC_NOISE_DH_BYTES]) SC_MUST_CHECK;
/* Wipes every secret (sodium_memzero) and frees contexts. */
void sc_noise_handshake_clear(struct sc_noise_handshake *hs);

#endif
