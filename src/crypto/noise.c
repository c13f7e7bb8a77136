/* crypto/noise.c — the Noise Protocol Framework (revision 34) with
 * 25519 / ChaChaPoly / BLAKE2b on libsodium and OpenSSL EVP: CipherState,
 * SymmetricState, and a HandshakeState driven by a table of the 15
 * fundamental patterns, one step per token (the WireGuard noise.c way).
 *
 * Pure functions over buffers: never does I/O, never logs, never lets an
 * unauthenticated byte out, never leaves a secret in a temporary. */
#include "crypto/noise.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define BLAKE2B_BLOCK_BYTES 128u /* BLOCKLEN of BLAKE2b (spec section 4.3) */

/* ---- pattern table (spec section 7) ---------------------------------------- */

enum token {
    TOK_END = 0, /* terminates a message's token list */
    TOK_E,
    TOK_S,
    TOK_EE,
    TOK_ES,
    TOK_SE,
    TOK_SS,
};

#define PATTERN_MESSAGES_MAX 3u
#define PATTERN_TOKENS_MAX 6u /* IX message 2 has 5 tokens, plus TOK_END */

/* One handshake pattern. Message i is sent by the initiator when i is even
 * (patterns alternate, and the one-way patterns have a single message). The
 * fundamental patterns' pre-messages only ever carry a static key. */
struct sc_noise_pattern {
    const char *name;
    bool pre_initiator_s; /* "-> s" before "..." */
    bool pre_responder_s; /* "<- s" before "..." */
    unsigned n_messages;
    uint8_t tokens[PATTERN_MESSAGES_MAX][PATTERN_TOKENS_MAX];
};

static const struct sc_noise_pattern patterns[] = {
    /* one-way (7.4) */
    {"N", false, true, 1, {{TOK_E, TOK_ES}}},
    {"K", true, true, 1, {{TOK_E, TOK_ES, TOK_SS}}},
    {"X", false, true, 1, {{TOK_E, TOK_ES, TOK_S, TOK_SS}}},
    /* interactive (7.5) */
    {"NN", false, false, 2, {{TOK_E}, {TOK_E, TOK_EE}}},
    {"NK", false, true, 2, {{TOK_E, TOK_ES}, {TOK_E, TOK_EE}}},
    {"NX", false, false, 2, {{TOK_E}, {TOK_E, TOK_EE, TOK_S, TOK_ES}}},
    {"KN", true, false, 2, {{TOK_E}, {TOK_E, TOK_EE, TOK_SE}}},
    {"KK", true, true, 2, {{TOK_E, TOK_ES, TOK_SS}, {TOK_E, TOK_EE, TOK_SE}}},
    {"KX", true, false, 2, {{TOK_E}, {TOK_E, TOK_EE, TOK_SE, TOK_S, TOK_ES}}},
    {"XN", false, false, 3, {{TOK_E}, {TOK_E, TOK_EE}, {TOK_S, TOK_SE}}},
    {"XK", false, true, 3, {{TOK_E, TOK_ES}, {TOK_E, TOK_EE}, {TOK_S, TOK_SE}}},
    {"XX", false, false, 3, {{TOK_E}, {TOK_E, TOK_EE, TOK_S, TOK_ES}, {TOK_S, TOK_SE}}},
    {"IN", false, false, 2, {{TOK_E, TOK_S}, {TOK_E, TOK_EE, TOK_SE}}},
    {"IK", false, true, 2, {{TOK_E, TOK_ES, TOK_S, TOK_SS}, {TOK_E, TOK_EE, TOK_SE}}},
    {"IX", false, false, 2, {{TOK_E, TOK_S}, {TOK_E, TOK_EE, TOK_SE, TOK_S, TOK_ES}}},
};

static const struct sc_noise_pattern *find_pattern(const char *protocol_name, size_t *name_len)
{
    static const char prefix[] = "Noise_";
    static const char suffix[] = "_25519_ChaChaPoly_BLAKE2b";
    const size_t prefix_len = sizeof prefix - 1, suffix_len = sizeof suffix - 1;
    size_t len, pattern_len, i;

    if (protocol_name == NULL)
        return NULL;
    len = strnlen(protocol_name, SC_NOISE_NAME_MAX + 1);
    if (len > SC_NOISE_NAME_MAX || len <= prefix_len + suffix_len)
        return NULL;
    if (memcmp(protocol_name, prefix, prefix_len) != 0 ||
        memcmp(protocol_name + len - suffix_len, suffix, suffix_len) != 0)
        return NULL;
    pattern_len = len - prefix_len - suffix_len;
    for (i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        if (strlen(patterns[i].name) == pattern_len &&
            memcmp(patterns[i].name, protocol_name + prefix_len, pattern_len) == 0) {
            *name_len = len;
            return &patterns[i];
        }
    }
    return NULL;
}

static enum sc_noise_role sender_of(unsigned msg_index)
{
    return msg_index % 2 == 0 ? SC_NOISE_INITIATOR : SC_NOISE_RESPONDER;
}

/* Does `role` use its static key anywhere in the pattern? */
static bool uses_static(const struct sc_noise_pattern *p, enum sc_noise_role role)
{
    const bool initiator = role == SC_NOISE_INITIATOR;
    unsigned i;
    const uint8_t *t;

    if (initiator ? p->pre_initiator_s : p->pre_responder_s)
        return true;
    for (i = 0; i < p->n_messages; i++) {
        for (t = p->tokens[i]; *t != TOK_END; t++) {
            if (*t == TOK_SS || (*t == TOK_S && sender_of(i) == role) ||
                (*t == TOK_SE && initiator) || (*t == TOK_ES && !initiator))
                return true;
        }
    }
    return false;
}

/* Does `role` send an ephemeral key? */
static bool sends_ephemeral(const struct sc_noise_pattern *p, enum sc_noise_role role)
{
    unsigned i;
    const uint8_t *t;

    for (i = 0; i < p->n_messages; i++) {
        if (sender_of(i) != role)
            continue;
        for (t = p->tokens[i]; *t != TOK_END; t++) {
            if (*t == TOK_E)
                return true;
        }
    }
    return false;
}

/* ---- HASH, HMAC, HKDF (spec sections 4.3 and 5.2) ------------------------ */

static void hash2(uint8_t out[SC_NOISE_HASH_BYTES], const uint8_t *a, size_t alen,
                  const uint8_t *b, size_t blen)
{
    crypto_generichash_blake2b_state st;

    crypto_generichash_blake2b_init(&st, NULL, 0, SC_NOISE_HASH_BYTES);
    if (alen != 0)
        crypto_generichash_blake2b_update(&st, a, alen);
    if (blen != 0)
        crypto_generichash_blake2b_update(&st, b, blen);
    crypto_generichash_blake2b_final(&st, out, SC_NOISE_HASH_BYTES);
    sodium_memzero(&st, sizeof st);
}

/* HMAC-BLAKE2b(key, a || b), key at most HASHLEN bytes (always the case
 * here: it is a chaining key or an HKDF temp key). */
static void hmac(uint8_t out[SC_NOISE_HASH_BYTES], const uint8_t key[SC_NOISE_HASH_BYTES],
                 const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    crypto_generichash_blake2b_state st;
    uint8_t pad[BLAKE2B_BLOCK_BYTES], inner[SC_NOISE_HASH_BYTES];
    size_t i;

    memset(pad, 0x36, sizeof pad);
    for (i = 0; i < SC_NOISE_HASH_BYTES; i++)
        pad[i] ^= key[i];
    crypto_generichash_blake2b_init(&st, NULL, 0, SC_NOISE_HASH_BYTES);
    crypto_generichash_blake2b_update(&st, pad, sizeof pad);
    if (alen != 0)
        crypto_generichash_blake2b_update(&st, a, alen);
    if (blen != 0)
        crypto_generichash_blake2b_update(&st, b, blen);
    crypto_generichash_blake2b_final(&st, inner, sizeof inner);

    memset(pad, 0x5c, sizeof pad);
    for (i = 0; i < SC_NOISE_HASH_BYTES; i++)
        pad[i] ^= key[i];
    crypto_generichash_blake2b_init(&st, NULL, 0, SC_NOISE_HASH_BYTES);
    crypto_generichash_blake2b_update(&st, pad, sizeof pad);
    crypto_generichash_blake2b_update(&st, inner, sizeof inner);
    crypto_generichash_blake2b_final(&st, out, SC_NOISE_HASH_BYTES);

    sodium_memzero(&st, sizeof st);
    sodium_memzero(pad, sizeof pad);
    sodium_memzero(inner, sizeof inner);
}

/* HKDF(chaining_key, ikm, 2). out1/out2 may alias chaining_key. */
static void hkdf2(uint8_t out1[SC_NOISE_HASH_BYTES], uint8_t out2[SC_NOISE_HASH_BYTES],
                  const uint8_t chaining_key[SC_NOISE_HASH_BYTES], const uint8_t *ikm,
                  size_t ikm_len)
{
    static const uint8_t one = 0x01, two = 0x02;
    uint8_t temp_key[SC_NOISE_HASH_BYTES], o1[SC_NOISE_HASH_BYTES];

    hmac(temp_key, chaining_key, ikm, ikm_len, NULL, 0);
    hmac(o1, temp_key, &one, 1, NULL, 0);
    hmac(out2, temp_key, o1, sizeof o1, &two, 1);
    memcpy(out1, o1, sizeof o1);
    sodium_memzero(temp_key, sizeof temp_key);
    sodium_memzero(o1, sizeof o1);
}

/* ---- CipherState (section 5.1) ----------------------------------------------- */

int sc_noise_cipher_init_key(struct sc_noise_cipher *c, const uint8_t k[SC_NOISE_KEY_BYTES])
{
    int ret;

    if (c == NULL || k == NULL)
        return SC_EINVAL;
    c->has_key = false;
    c->n = 0;
    ret = sc_aead_set_key(&c->aead, k);
    if (ret != 0)
        return ret;
    c->has_key = true;
    return 0;
}

void sc_noise_cipher_clear(struct sc_noise_cipher *c)
{
    if (c == NULL)
        return;
    sc_aead_clear(&c->aead);
    c->n = 0;
    c->has_key = false;
}

void sc_noise_cipher_set_nonce(struct sc_noise_cipher *c, uint64_t n)
{
    if (c != NULL)
        c->n = n;
}

/* ChaChaPoly nonce: 32 zero bits, then n as 64-bit little-endian. */
static void make_nonce(uint8_t nonce[SC_AEAD_NONCE_BYTES], uint64_t n)
{
    unsigned i;

    memset(nonce, 0, 4);
    for (i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

int sc_noise_encrypt(struct sc_noise_cipher *c, const uint8_t *ad, size_t adlen,
                     const uint8_t *pt, size_t ptlen, uint8_t *out, size_t outcap,
                     size_t *outlen)
{
    uint8_t nonce[SC_AEAD_NONCE_BYTES];
    int ret;

    if (outlen != NULL)
        *outlen = 0;
    if (c == NULL || outlen == NULL || out == NULL || (pt == NULL && ptlen != 0) ||
        (ad == NULL && adlen != 0))
        return SC_EINVAL;
    if (!c->has_key) {
        if (ptlen > outcap)
            return SC_ENOSPACE;
        if (ptlen != 0 && out != pt)
            memmove(out, pt, ptlen);
        *outlen = ptlen;
        return 0;
    }
    if (ptlen > outcap || outcap - ptlen < SC_NOISE_TAG_BYTES)
        return SC_ENOSPACE;
    if (c->n == UINT64_MAX) /* 2^64-1 is reserved (section 5.1) */
        return SC_ESTATE;
    make_nonce(nonce, c->n);
    ret = sc_aead_encrypt(&c->aead, nonce, ad, adlen, pt, ptlen, out);
    if (ret != 0)
        return ret;
    c->n++;
    *outlen = ptlen + SC_NOISE_TAG_BYTES;
    return 0;
}

int sc_noise_decrypt(struct sc_noise_cipher *c, const uint8_t *ad, size_t adlen,
                     const uint8_t *ct, size_t ctlen, uint8_t *out, size_t outcap,
                     size_t *outlen)
{
    uint8_t nonce[SC_AEAD_NONCE_BYTES];
    int ret;

    if (outlen != NULL)
        *outlen = 0;
    if (c == NULL || outlen == NULL || (ct == NULL && ctlen != 0) || (ad == NULL && adlen != 0))
        return SC_EINVAL;
    if (!c->has_key) {
        if (ctlen > outcap)
            return SC_ENOSPACE;
        if (ctlen != 0 && out == NULL)
            return SC_EINVAL;
        if (ctlen != 0 && out != ct)
            memmove(out, ct, ctlen);
        *outlen = ctlen;
        return 0;
    }
    if (ctlen < SC_NOISE_TAG_BYTES)
        return SC_ETRUNC;
    if (ctlen - SC_NOISE_TAG_BYTES > outcap)
        return SC_ENOSPACE;
    if (c->n == UINT64_MAX)
        return SC_ESTATE;
    make_nonce(nonce, c->n);
    ret = sc_aead_decrypt(&c->aead, nonce, ad, adlen, ct, ctlen, out);
    if (ret != 0)
        return ret; /* n does not advance on failure */
    c->n++;
    *outlen = ctlen - SC_NOISE_TAG_BYTES;
    return 0;
}

int sc_noise_rekey(struct sc_noise_cipher *c)
{
    static const uint8_t zeros[SC_NOISE_KEY_BYTES];
    uint8_t nonce[SC_AEAD_NONCE_BYTES], block[SC_NOISE_KEY_BYTES + SC_NOISE_TAG_BYTES];
    int ret;

    if (c == NULL)
        return SC_EINVAL;
    if (!c->has_key)
        return SC_ESTATE;
    make_nonce(nonce, UINT64_MAX);
    ret = sc_aead_encrypt(&c->aead, nonce, NULL, 0, zeros, sizeof zeros, block);
    if (ret != 0)
        goto out;
    ret = sc_aead_set_key(&c->aead, block); /* first 32 bytes; n unchanged */
out:
    sodium_memzero(block, sizeof block);
    return ret;
}

/* ---- SymmetricState (section 5.2) ---------------------------------------------- */

static void mix_hash(struct sc_noise_symmetric *ss, const uint8_t *data, size_t len)
{
    hash2(ss->h, ss->h, sizeof ss->h, data, len);
}

static int mix_key(struct sc_noise_symmetric *ss, const uint8_t *ikm, size_t ikm_len)
{
    uint8_t temp_k[SC_NOISE_HASH_BYTES];
    int ret;

    hkdf2(ss->ck, temp_k, ss->ck, ikm, ikm_len);
    ret = sc_noise_cipher_init_key(&ss->cipher, temp_k); /* truncated to 32 bytes */
    sodium_memzero(temp_k, sizeof temp_k);
    return ret;
}

static int encrypt_and_hash(struct sc_noise_symmetric *ss, const uint8_t *pt, size_t len,
                            uint8_t *out, size_t outcap, size_t *outlen)
{
    int ret = sc_noise_encrypt(&ss->cipher, ss->h, sizeof ss->h, pt, len, out, outcap, outlen);

    if (ret == 0)
        mix_hash(ss, out, *outlen);
    return ret;
}

/* The next h is computed before decrypting, so out may alias ct. */
static int decrypt_and_hash(struct sc_noise_symmetric *ss, const uint8_t *ct, size_t len,
                            uint8_t *out, size_t outcap, size_t *outlen)
{
    uint8_t h_next[SC_NOISE_HASH_BYTES];
    int ret;

    hash2(h_next, ss->h, sizeof ss->h, ct, len);
    ret = sc_noise_decrypt(&ss->cipher, ss->h, sizeof ss->h, ct, len, out, outcap, outlen);
    if (ret == 0)
        memcpy(ss->h, h_next, sizeof h_next);
    sodium_memzero(h_next, sizeof h_next);
    return ret;
}

/* ---- HandshakeState (section 5.3) ------------------------------------------------- */

/* The only place hs->state changes; see the transition list in noise.h. */
static void set_state(struct sc_noise_handshake *hs, enum sc_noise_hs_state next)
{
    bool allowed;

    switch (hs->state) {
    case SC_NOISE_HS_NONE:
        allowed = next == SC_NOISE_HS_WRITE || next == SC_NOISE_HS_READ ||
                  next == SC_NOISE_HS_FAILED;
        break;
    case SC_NOISE_HS_WRITE:
    case SC_NOISE_HS_READ:
        allowed = next == SC_NOISE_HS_WRITE || next == SC_NOISE_HS_READ ||
                  next == SC_NOISE_HS_SPLIT || next == SC_NOISE_HS_FAILED;
        break;
    case SC_NOISE_HS_SPLIT:
        allowed = next == SC_NOISE_HS_DONE || next == SC_NOISE_HS_FAILED;
        break;
    case SC_NOISE_HS_DONE:
    case SC_NOISE_HS_FAILED:
        allowed = next == SC_NOISE_HS_FAILED;
        break;
    default:
        allowed = false;
        break;
    }
    if (!allowed)
        abort(); /* broken invariant, never input-driven */
    hs->state = next;
}

/* State after message msg_index has been written or read. */
static void next_turn(struct sc_noise_handshake *hs)
{
    if (hs->msg_index >= hs->pattern->n_messages)
        set_state(hs, SC_NOISE_HS_SPLIT);
    else if (sender_of(hs->msg_index) == hs->role)
        set_state(hs, SC_NOISE_HS_WRITE);
    else
        set_state(hs, SC_NOISE_HS_READ);
}

/* Wipes every secret and enters FAILED, from which every call fails. */
static void fail(struct sc_noise_handshake *hs)
{
    sc_noise_cipher_clear(&hs->ss.cipher);
    sodium_memzero(hs->ss.ck, sizeof hs->ss.ck);
    sodium_memzero(hs->ss.h, sizeof hs->ss.h);
    sodium_memzero(hs->s_priv, sizeof hs->s_priv);
    sodium_memzero(hs->e_priv, sizeof hs->e_priv);
    hs->has_s = hs->has_e = hs->e_injected = false;
    set_state(hs, SC_NOISE_HS_FAILED);
}

/* MixKey(DH(priv, pub)); an all-zero result (low-order point) is refused. */
static int mix_dh(struct sc_noise_handshake *hs, const uint8_t priv[SC_NOISE_DH_BYTES],
                  bool has_priv, const uint8_t pub[SC_NOISE_DH_BYTES], bool has_pub)
{
    uint8_t shared[SC_NOISE_DH_BYTES];
    int ret;

    if (!has_priv || !has_pub) {
        ret = SC_ESTATE;
        goto out;
    }
    if (crypto_scalarmult(shared, priv, pub) != 0 || sodium_is_zero(shared, sizeof shared)) {
        ret = SC_ECRYPTO;
        goto out;
    }
    ret = mix_key(&hs->ss, shared, sizeof shared);
out:
    sodium_memzero(shared, sizeof shared);
    return ret;
}

/* The DH tokens, the same for the writer and the reader. "es" is always the
 * initiator's ephemeral with the responder's static, "se" the converse. */
static int dh_token(struct sc_noise_handshake *hs, enum token tok)
{
    const bool initiator = hs->role == SC_NOISE_INITIATOR;

    switch (tok) {
    case TOK_EE: /* ee */
        return mix_dh(hs, hs->e_priv, hs->has_e, hs->re, hs->has_re);
    case TOK_ES: /* es */
        return initiator ? mix_dh(hs, hs->e_priv, hs->has_e, hs->rs, hs->has_rs)
                         : mix_dh(hs, hs->s_priv, hs->has_s, hs->re, hs->has_re);
    case TOK_SE: /* se */
        return initiator ? mix_dh(hs, hs->s_priv, hs->has_s, hs->re, hs->has_re)
                         : mix_dh(hs, hs->e_priv, hs->has_e, hs->rs, hs->has_rs);
    case TOK_SS: /* ss */
        return mix_dh(hs, hs->s_priv, hs->has_s, hs->rs, hs->has_rs);
    default:
        return SC_ESTATE;
    }
}

/* Bytes of the next message besides the payload: its keys, their tags, and
 * the payload's tag, given whether a key is set along the way. */
static size_t message_overhead(const struct sc_noise_handshake *hs)
{
    bool has_key = hs->ss.cipher.has_key;
    size_t len = 0;
    const uint8_t *t;

    for (t = hs->pattern->tokens[hs->msg_index]; *t != TOK_END; t++) {
        if (*t == TOK_E)
            len += SC_NOISE_DH_BYTES;
        else if (*t == TOK_S)
            len += SC_NOISE_DH_BYTES + (has_key ? SC_NOISE_TAG_BYTES : 0);
        else
            has_key = true;
    }
    return len + (has_key ? SC_NOISE_TAG_BYTES : 0);
}

/* Initialize(); s_pub NULL: derived from s_priv. */
static int handshake_setup(struct sc_noise_handshake *hs, const char *protocol_name,
                           enum sc_noise_role role, const uint8_t *prologue, size_t prologue_len,
                           const uint8_t *s_priv, const uint8_t *s_pub, const uint8_t *e_priv,
                           const uint8_t *rs_pub)
{
    const struct sc_noise_pattern *p;
    size_t name_len = 0;
    bool need_rs;
    int ret;

    if (hs == NULL)
        return SC_EINVAL;
    memset(hs, 0, sizeof *hs);
    if (sodium_init() < 0) {
        ret = SC_ECRYPTO;
        goto out;
    }
    p = find_pattern(protocol_name, &name_len);
    if (p == NULL || (role != SC_NOISE_INITIATOR && role != SC_NOISE_RESPONDER) ||
        (prologue == NULL && prologue_len != 0)) {
        ret = SC_EINVAL;
        goto out;
    }
    hs->pattern = p;
    hs->role = role;
    need_rs = role == SC_NOISE_INITIATOR ? p->pre_responder_s : p->pre_initiator_s;
    if ((s_priv != NULL) != uses_static(p, role) || (rs_pub != NULL) != need_rs ||
        (e_priv != NULL && !sends_ephemeral(p, role))) {
        ret = SC_EINVAL;
        goto out;
    }
    if (s_priv != NULL) {
        memcpy(hs->s_priv, s_priv, sizeof hs->s_priv);
        if (s_pub != NULL) {
            memcpy(hs->s_pub, s_pub, sizeof hs->s_pub);
        } else if (crypto_scalarmult_base(hs->s_pub, hs->s_priv) != 0) {
            ret = SC_ECRYPTO;
            goto out;
        }
        hs->has_s = true;
    }
    if (e_priv != NULL) {
        memcpy(hs->e_priv, e_priv, sizeof hs->e_priv);
        hs->e_injected = true;
    }
    if (rs_pub != NULL) {
        memcpy(hs->rs, rs_pub, sizeof hs->rs);
        hs->has_rs = true;
    }

    /* InitializeSymmetric(protocol_name): the name fits in HASHLEN (at most
     * SC_NOISE_NAME_MAX = 64 bytes), so h is the name zero-padded. */
    memcpy(hs->ss.h, protocol_name, name_len);
    memcpy(hs->ss.ck, hs->ss.h, sizeof hs->ss.ck);
    mix_hash(&hs->ss, prologue, prologue_len);
    /* Pre-messages: the initiator's keys first, then the responder's. */
    if (p->pre_initiator_s)
        mix_hash(&hs->ss, role == SC_NOISE_INITIATOR ? hs->s_pub : hs->rs, SC_NOISE_DH_BYTES);
    if (p->pre_responder_s)
        mix_hash(&hs->ss, role == SC_NOISE_RESPONDER ? hs->s_pub : hs->rs, SC_NOISE_DH_BYTES);
    next_turn(hs);
    ret = 0;
out:
    if (ret != 0)
        fail(hs);
    return ret;
}

int sc_noise_handshake_init(struct sc_noise_handshake *hs, const char *protocol_name,
                            enum sc_noise_role role, const uint8_t *prologue,
                            size_t prologue_len, const uint8_t *s_priv,
                            const uint8_t *e_priv, const uint8_t *rs_pub)
{
    return handshake_setup(hs, protocol_name, role, prologue, prologue_len, s_priv, NULL, e_priv,
                           rs_pub);
}

int sc_noise_handshake_init_keypair(struct sc_noise_handshake *hs, const char *protocol_name,
                                    enum sc_noise_role role, const uint8_t *prologue,
                                    size_t prologue_len, const uint8_t *s_priv,
                                    const uint8_t *s_pub, const uint8_t *e_priv,
                                    const uint8_t *rs_pub)
{
    if (hs != NULL && (s_priv == NULL) != (s_pub == NULL)) {
        memset(hs, 0, sizeof *hs);
        fail(hs);
        return SC_EINVAL;
    }
    return handshake_setup(hs, protocol_name, role, prologue, prologue_len, s_priv, s_pub, e_priv,
                           rs_pub);
}

int sc_noise_write_message(struct sc_noise_handshake *hs, const uint8_t *payload,
                           size_t payload_len, uint8_t *out, size_t outcap, size_t *outlen)
{
    const uint8_t *t;
    size_t need, off = 0, n;
    int ret;

    if (hs == NULL)
        return SC_EINVAL;
    if (outlen != NULL)
        *outlen = 0;
    if (hs->state != SC_NOISE_HS_WRITE) {
        ret = SC_ESTATE;
        goto out;
    }
    if (out == NULL || outlen == NULL || (payload == NULL && payload_len != 0)) {
        ret = SC_EINVAL;
        goto out;
    }
    need = message_overhead(hs);
    if (need > SC_NOISE_MAX_MESSAGE_BYTES || payload_len > SC_NOISE_MAX_MESSAGE_BYTES - need) {
        ret = SC_ETOOBIG;
        goto out;
    }
    if (need + payload_len > outcap) {
        ret = SC_ENOSPACE;
        goto out;
    }

    for (t = hs->pattern->tokens[hs->msg_index]; *t != TOK_END; t++) {
        switch (*t) {
        case TOK_E: /* e */
            if (hs->has_e) {
                ret = SC_ESTATE;
                goto out;
            }
            if (!hs->e_injected)
                randombytes_buf(hs->e_priv, sizeof hs->e_priv);
            if (crypto_scalarmult_base(hs->e_pub, hs->e_priv) != 0) {
                ret = SC_ECRYPTO;
                goto out;
            }
            hs->has_e = true;
            memcpy(out + off, hs->e_pub, sizeof hs->e_pub);
            mix_hash(&hs->ss, hs->e_pub, sizeof hs->e_pub);
            off += sizeof hs->e_pub;
            break;
        case TOK_S: /* s */
            if (!hs->has_s) {
                ret = SC_ESTATE;
                goto out;
            }
            ret = encrypt_and_hash(&hs->ss, hs->s_pub, sizeof hs->s_pub, out + off,
                                   outcap - off, &n);
            if (ret != 0)
                goto out;
            off += n;
            break;
        default: /* ee, es, se, ss */
            ret = dh_token(hs, (enum token)*t);
            if (ret != 0)
                goto out;
            break;
        }
    }
    /* payload */
    ret = encrypt_and_hash(&hs->ss, payload, payload_len, out + off, outcap - off, &n);
    if (ret != 0)
        goto out;
    off += n;
    hs->msg_index++;
    next_turn(hs);
    *outlen = off;
out:
    if (ret != 0)
        fail(hs);
    return ret;
}

int sc_noise_read_message(struct sc_noise_handshake *hs, const uint8_t *msg, size_t msg_len,
                          uint8_t *payload, size_t payload_cap, size_t *payload_len)
{
    uint8_t rs[SC_NOISE_DH_BYTES];
    const uint8_t *t;
    size_t need, off = 0, n, s_len;
    int ret;

    if (hs == NULL)
        return SC_EINVAL;
    if (payload_len != NULL)
        *payload_len = 0;
    if (hs->state != SC_NOISE_HS_READ) {
        ret = SC_ESTATE;
        goto out;
    }
    if ((msg == NULL && msg_len != 0) || payload_len == NULL) {
        ret = SC_EINVAL;
        goto out;
    }
    if (msg_len > SC_NOISE_MAX_MESSAGE_BYTES) {
        ret = SC_ETOOBIG;
        goto out;
    }
    need = message_overhead(hs);
    if (msg_len < need) {
        ret = SC_ETRUNC;
        goto out;
    }
    if (msg_len - need > payload_cap) {
        ret = SC_ENOSPACE;
        goto out;
    }

    for (t = hs->pattern->tokens[hs->msg_index]; *t != TOK_END; t++) {
        switch (*t) {
        case TOK_E: /* e */
            if (hs->has_re) {
                ret = SC_ESTATE;
                goto out;
            }
            memcpy(hs->re, msg + off, sizeof hs->re);
            hs->has_re = true;
            mix_hash(&hs->ss, hs->re, sizeof hs->re);
            off += sizeof hs->re;
            break;
        case TOK_S: /* s */
            if (hs->has_rs) {
                ret = SC_ESTATE;
                goto out;
            }
            s_len = SC_NOISE_DH_BYTES + (hs->ss.cipher.has_key ? SC_NOISE_TAG_BYTES : 0);
            ret = decrypt_and_hash(&hs->ss, msg + off, s_len, rs, sizeof rs, &n);
            if (ret != 0)
                goto out;
            memcpy(hs->rs, rs, sizeof hs->rs);
            hs->has_rs = true;
            off += s_len;
            break;
        default: /* ee, es, se, ss */
            ret = dh_token(hs, (enum token)*t);
            if (ret != 0)
                goto out;
            break;
        }
    }
    /* payload */
    ret = decrypt_and_hash(&hs->ss, msg + off, msg_len - off, payload, payload_cap, &n);
    if (ret != 0)
        goto out;
    hs->msg_index++;
    next_turn(hs);
    *payload_len = n;
out:
    sodium_memzero(rs, sizeof rs);
    if (ret != 0)
        fail(hs);
    return ret;
}

int sc_noise_split(struct sc_noise_handshake *hs, struct sc_noise_cipher *send,
                   struct sc_noise_cipher *recv)
{
    uint8_t k1[SC_NOISE_HASH_BYTES], k2[SC_NOISE_HASH_BYTES];
    bool outputs_set = false;
    int ret;

    if (hs == NULL)
        return SC_EINVAL;
    if (hs->state != SC_NOISE_HS_SPLIT) {
        ret = SC_ESTATE;
        goto out;
    }
    if (send == NULL || recv == NULL || send == recv) {
        ret = SC_EINVAL;
        goto out;
    }
    /* send and recv are outputs: whatever they held is overwritten. */
    memset(send, 0, sizeof *send);
    memset(recv, 0, sizeof *recv);
    outputs_set = true;
    hkdf2(k1, k2, hs->ss.ck, NULL, 0);
    /* c1 carries initiator -> responder, c2 responder -> initiator. */
    ret = sc_noise_cipher_init_key(hs->role == SC_NOISE_INITIATOR ? send : recv, k1);
    if (ret != 0)
        goto out;
    ret = sc_noise_cipher_init_key(hs->role == SC_NOISE_INITIATOR ? recv : send, k2);
    if (ret != 0)
        goto out;
    /* Keep h (GetHandshakeHash) and rs; nothing else is needed any more. */
    sc_noise_cipher_clear(&hs->ss.cipher);
    sodium_memzero(hs->ss.ck, sizeof hs->ss.ck);
    sodium_memzero(hs->s_priv, sizeof hs->s_priv);
    sodium_memzero(hs->e_priv, sizeof hs->e_priv);
    hs->has_s = hs->has_e = false;
    set_state(hs, SC_NOISE_HS_DONE);
out:
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    if (ret != 0) {
        if (outputs_set) {
            sc_noise_cipher_clear(send);
            sc_noise_cipher_clear(recv);
        }
        fail(hs);
    }
    return ret;
}

void sc_noise_handshake_hash(const struct sc_noise_handshake *hs, uint8_t out[SC_NOISE_HASH_BYTES])
{
    if (hs != NULL && out != NULL)
        memcpy(out, hs->ss.h, SC_NOISE_HASH_BYTES);
}

int sc_noise_remote_static(const struct sc_noise_handshake *hs, uint8_t out[SC_NOISE_DH_BYTES])
{
    if (hs == NULL || out == NULL)
        return SC_EINVAL;
    if (!hs->has_rs)
        return SC_ENOENT;
    memcpy(out, hs->rs, SC_NOISE_DH_BYTES);
    return 0;
}

void sc_noise_handshake_clear(struct sc_noise_handshake *hs)
{
    if (hs == NULL)
        return;
    sc_noise_cipher_clear(&hs->ss.cipher);
    sodium_memzero(hs, sizeof *hs);
}
