/* crypto/aead.c — ChaCha20-Poly1305 (IETF, RFC 8439) through OpenSSL EVP.
 *
 * The EVP context is keyed once per direction and reused: per message only
 * the nonce is set, so the per-message cost is the same as a raw EVP loop.
 * Never logs, never touches I/O; the key is wiped in sc_aead_clear(). */
#include "crypto/aead.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>

/* mode values of struct sc_aead: which direction the EVP context is
 * initialised for (cipher + key). MODE_NONE: keyed, not yet initialised. */
#define MODE_NONE (-1)
#define MODE_DECRYPT 0
#define MODE_ENCRYPT 1

int sc_aead_set_key(struct sc_aead *a, const uint8_t key[SC_AEAD_KEY_BYTES])
{
    if (a == NULL || key == NULL)
        return SC_EINVAL;
    if (a->ctx == NULL) {
        a->ctx = EVP_CIPHER_CTX_new();
        if (a->ctx == NULL)
            return SC_ENOMEM;
    }
    if (a->key != key)
        memcpy(a->key, key, SC_AEAD_KEY_BYTES);
    /* The cipher is (re)initialised with the new key on the next use, in
     * whichever direction that use needs. */
    a->mode = MODE_NONE;
    return 0;
}

void sc_aead_clear(struct sc_aead *a)
{
    if (a == NULL)
        return;
    if (a->ctx != NULL) {
        /* EVP_CIPHER_CTX_free() cleanses the cipher's key schedule. */
        EVP_CIPHER_CTX_free(a->ctx);
        a->ctx = NULL;
    }
    sodium_memzero(a->key, sizeof a->key);
    a->mode = MODE_NONE;
}

/* Sets the nonce for one message; a change of direction (or a new key)
 * re-initialises cipher and key first. */
static int start_message(struct sc_aead *a, const uint8_t nonce[SC_AEAD_NONCE_BYTES], int enc)
{
    if (a->ctx == NULL)
        return SC_ESTATE;
    if (a->mode != enc) {
        a->mode = MODE_NONE;
        if (EVP_CipherInit_ex(a->ctx, EVP_chacha20_poly1305(), NULL, a->key, nonce, enc) != 1)
            return SC_ECRYPTO;
        a->mode = enc;
        return 0;
    }
    if (EVP_CipherInit_ex(a->ctx, NULL, NULL, NULL, nonce, enc) != 1)
        return SC_ECRYPTO;
    return 0;
}

int sc_aead_encrypt(struct sc_aead *a, const uint8_t nonce[SC_AEAD_NONCE_BYTES],
                    const uint8_t *ad, size_t adlen, const uint8_t *pt, size_t len,
                    uint8_t *ct)
{
    int outl, ret;

    if (a == NULL || nonce == NULL || ct == NULL || (ad == NULL && adlen != 0) ||
        (pt == NULL && len != 0))
        return SC_EINVAL;
    if (len > (size_t)INT_MAX - SC_AEAD_TAG_BYTES || adlen > (size_t)INT_MAX)
        return SC_ETOOBIG;
    ret = start_message(a, nonce, MODE_ENCRYPT);
    if (ret != 0)
        return ret;
    if (adlen != 0 && EVP_CipherUpdate(a->ctx, NULL, &outl, ad, (int)adlen) != 1)
        return SC_ECRYPTO;
    if (len != 0 && EVP_CipherUpdate(a->ctx, ct, &outl, pt, (int)len) != 1)
        return SC_ECRYPTO;
    if (EVP_CipherFinal_ex(a->ctx, ct + len, &outl) != 1)
        return SC_ECRYPTO;
    if (EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_GET_TAG, (int)SC_AEAD_TAG_BYTES, ct + len) != 1)
        return SC_ECRYPTO;
    return 0;
}

int sc_aead_decrypt(struct sc_aead *a, const uint8_t nonce[SC_AEAD_NONCE_BYTES],
                    const uint8_t *ad, size_t adlen, const uint8_t *ct, size_t ctlen,
                    uint8_t *pt)
{
    uint8_t tag[SC_AEAD_TAG_BYTES];
    size_t len;
    int outl, ret;

    if (a == NULL || nonce == NULL || ct == NULL || (ad == NULL && adlen != 0))
        return SC_EINVAL;
    if (ctlen < SC_AEAD_TAG_BYTES)
        return SC_ETRUNC;
    len = ctlen - SC_AEAD_TAG_BYTES;
    if (pt == NULL && len != 0)
        return SC_EINVAL;
    if (len > (size_t)INT_MAX || adlen > (size_t)INT_MAX)
        return SC_ETOOBIG;
    /* Copy the tag first: pt may alias ct (it never reaches the tag, but
     * the copy keeps ct strictly read-only from OpenSSL's point of view). */
    memcpy(tag, ct + len, sizeof tag);
    ret = start_message(a, nonce, MODE_DECRYPT);
    if (ret != 0)
        return ret;
    if (adlen != 0 && EVP_CipherUpdate(a->ctx, NULL, &outl, ad, (int)adlen) != 1)
        return SC_ECRYPTO;
    if (len != 0 && EVP_CipherUpdate(a->ctx, pt, &outl, ct, (int)len) != 1)
        return SC_ECRYPTO;
    if (EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, (int)sizeof tag, tag) != 1)
        return SC_ECRYPTO;
    /* Final writes no bytes for this cipher; `tag` (already handed to the
     * context) is a safe place for it, unlike pt + len, which is past pt. */
    if (EVP_CipherFinal_ex(a->ctx, tag, &outl) != 1) {
        /* Unauthenticated plaintext never leaves this function. */
        if (len != 0)
            sodium_memzero(pt, len);
        return SC_EAUTH;
    }
    return 0;
}
