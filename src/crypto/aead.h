/* crypto/aead.h — ChaCha20-Poly1305 (IETF, RFC 8439) through OpenSSL EVP.
 *
 * One struct sc_aead holds an EVP context keyed once and reused for every
 * message (only the nonce changes), which is what makes it as fast as a raw
 * EVP loop. No I/O; never logs. */
#ifndef SC_CRYPTO_AEAD_H
#define SC_CRYPTO_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "secirc/error.h"

#define SC_AEAD_KEY_BYTES 32u
#define SC_AEAD_NONCE_BYTES 12u
#define SC_AEAD_TAG_BYTES 16u

struct evp_cipher_ctx_st;

struct sc_aead {
    struct evp_cipher_ctx_st *ctx; /* NULL until sc_aead_set_key() */
    int mode;                      /* 1 keyed for encrypt, 0 for decrypt, -1 none */
    uint8_t key[SC_AEAD_KEY_BYTES];
};

/* Keys (or re-keys) the context; allocates the EVP context on first use. */
int sc_aead_set_key(struct sc_aead *a, const uint8_t key[SC_AEAD_KEY_BYTES]) SC_MUST_CHECK;
/* Wipes the key and frees the context. Safe on a zeroed struct. */
void sc_aead_clear(struct sc_aead *a);
/* ct must hold len + 16 bytes; pt and ct may be the same buffer. */
int sc_aead_encrypt(struct sc_aead *a, const uint8_t nonce[SC_AEAD_NONCE_BYTES],
                    const uint8_t *ad, size_t adlen, const uint8_t *pt, size_t len,
                    uint8_t *ct) SC_MUST_CHECK;
/* ctlen includes the tag; pt must hold ctlen - 16 bytes; may alias ct.
 * Returns SC_EAUTH when the tag does not verify (pt content is then
 * unspecified and must not be used). */
int sc_aead_decrypt(struct sc_aead *a, const uint8_t nonce[SC_AEAD_NONCE_BYTES],
                    const uint8_t *ad, size_t adlen, const uint8_t *ct, size_t ctlen,
                    uint8_t *pt) SC_MUST_CHECK;

#endif
