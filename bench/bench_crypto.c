/* bench/bench_crypto.c — what the link's crypto costs, measured in one run,
 * single thread: full Noise_XX handshakes against the bound set by their
 * X25519 operations, and ChaCha20-Poly1305 through our CipherState against a
 * raw OpenSSL EVP loop and libsodium.
 *
 *   bench_crypto [--seconds S] [--json]
 *
 * Each figure runs for about S seconds (default 1). Human-readable lines go
 * to stdout, or to stderr with --json, which prints one JSON object on
 * stdout. Never used by the library; exits non-zero only if a primitive
 * fails, not when a target is missed. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "crypto/noise.h"

#define XX "Noise_XX_25519_ChaChaPoly_BLAKE2b"
#define AEAD_MAX_BYTES 16384u
#define CHECK(expr)                                                      \
    do {                                                                 \
        if (!(expr)) {                                                   \
            fprintf(stderr, "bench_crypto: %s failed (%s:%d)\n", #expr, \
                    __FILE__, __LINE__);                                 \
            exit(2);                                                     \
        }                                                                \
    } while (0)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs fn(arg) in batches until `seconds` have passed; returns calls/s. */
static double rate(void (*fn)(void *), void *arg, double seconds, unsigned batch)
{
    double start = now_s(), elapsed;
    uint64_t calls = 0;

    fn(arg); /* warm-up: first-use allocations, page faults, provider fetch */
    do {
        for (unsigned i = 0; i < batch; i++)
            fn(arg);
        calls += batch;
        elapsed = now_s() - start;
    } while (elapsed < seconds);
    return (double)calls / elapsed;
}

/* ---- (a) full XX handshakes ------------------------------------------------ */

struct hs_bench {
    uint8_t is[32], rs[32], is_pub[32], rs_pub[32];
    bool keypair; /* static public keys given, as a link with its key pair does */
};

static int hs_init(struct sc_noise_handshake *hs, const struct hs_bench *b, bool initiator)
{
    static const uint8_t prologue[] = "secirc/1";
    enum sc_noise_role role = initiator ? SC_NOISE_INITIATOR : SC_NOISE_RESPONDER;
    const uint8_t *s = initiator ? b->is : b->rs, *s_pub = initiator ? b->is_pub : b->rs_pub;

    if (b->keypair)
        return sc_noise_handshake_init_keypair(hs, XX, role, prologue, sizeof prologue, s, s_pub,
                                               NULL, NULL);
    return sc_noise_handshake_init(hs, XX, role, prologue, sizeof prologue, s, NULL, NULL);
}

static void xx_handshake(void *arg)
{
    const struct hs_bench *b = arg;
    struct sc_noise_handshake ini, res;
    struct sc_noise_cipher isend, irecv, rsend, rrecv;
    uint8_t m[256], p[16];
    size_t len, plen;

    CHECK(hs_init(&ini, b, true) == 0);
    CHECK(hs_init(&res, b, false) == 0);
    CHECK(sc_noise_write_message(&ini, NULL, 0, m, sizeof m, &len) == 0);
    CHECK(sc_noise_read_message(&res, m, len, p, sizeof p, &plen) == 0);
    CHECK(sc_noise_write_message(&res, NULL, 0, m, sizeof m, &len) == 0);
    CHECK(sc_noise_read_message(&ini, m, len, p, sizeof p, &plen) == 0);
    CHECK(sc_noise_write_message(&ini, NULL, 0, m, sizeof m, &len) == 0);
    CHECK(sc_noise_read_message(&res, m, len, p, sizeof p, &plen) == 0);
    CHECK(sc_noise_split(&ini, &isend, &irecv) == 0);
    CHECK(sc_noise_split(&res, &rsend, &rrecv) == 0);
    sc_noise_cipher_clear(&isend);
    sc_noise_cipher_clear(&irecv);
    sc_noise_cipher_clear(&rsend);
    sc_noise_cipher_clear(&rrecv);
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);
}

/* ---- (b) primitives -------------------------------------------------------------- */

struct prim_bench {
    uint8_t scalar[32], point[32], out[32];
    uint8_t sig[crypto_sign_BYTES], pk[crypto_sign_PUBLICKEYBYTES], msg[64];
};

static void x25519_base(void *arg)
{
    struct prim_bench *b = arg;

    CHECK(crypto_scalarmult_base(b->out, b->scalar) == 0);
    b->scalar[0] ^= b->out[0]; /* a data dependency between calls */
}

static void x25519(void *arg)
{
    struct prim_bench *b = arg;

    CHECK(crypto_scalarmult(b->out, b->scalar, b->point) == 0);
    b->scalar[0] ^= b->out[0];
}

static void ed25519_verify(void *arg)
{
    struct prim_bench *b = arg;

    CHECK(crypto_sign_verify_detached(b->sig, b->msg, sizeof b->msg, b->pk) == 0);
}

/* ---- (c) AEAD ---------------------------------------------------------------------- */

struct aead_bench {
    size_t len;
    uint8_t key[32];
    uint8_t *in, *out;
    uint64_t n;
    struct sc_noise_cipher cs;
    EVP_CIPHER_CTX *evp;
};

static void aead_cipherstate(void *arg)
{
    struct aead_bench *b = arg;
    size_t outlen;

    CHECK(sc_noise_encrypt(&b->cs, NULL, 0, b->in, b->len, b->out, b->len + 16, &outlen) == 0);
}

static void make_nonce(uint8_t nonce[12], uint64_t n)
{
    memset(nonce, 0, 4);
    for (unsigned i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

/* The reference: key set once, per message only the nonce. */
static void aead_raw_evp(void *arg)
{
    struct aead_bench *b = arg;
    uint8_t nonce[12];
    int outl;

    make_nonce(nonce, b->n++);
    CHECK(EVP_EncryptInit_ex(b->evp, NULL, NULL, NULL, nonce) == 1);
    CHECK(EVP_EncryptUpdate(b->evp, b->out, &outl, b->in, (int)b->len) == 1);
    CHECK(EVP_EncryptFinal_ex(b->evp, b->out + b->len, &outl) == 1);
    CHECK(EVP_CIPHER_CTX_ctrl(b->evp, EVP_CTRL_AEAD_GET_TAG, 16, b->out + b->len) == 1);
}

static void aead_libsodium(void *arg)
{
    struct aead_bench *b = arg;
    uint8_t nonce[12];
    unsigned long long clen;

    make_nonce(nonce, b->n++);
    CHECK(crypto_aead_chacha20poly1305_ietf_encrypt(b->out, &clen, b->in, b->len, NULL, 0, NULL,
                                                    nonce, b->key) == 0);
}

struct aead_result {
    size_t bytes;
    double cipherstate, evp, sodium; /* MB/s, 10^6 bytes */
};

static void bench_aead(size_t len, double seconds, struct aead_result *r)
{
    struct aead_bench b;
    const unsigned rounds = 3; /* interleaved, best of each, to damp drift */
    const unsigned batch = len >= 16384 ? 16 : len >= 1024 ? 256 : 4096;
    uint8_t nonce[12] = {0};

    memset(&b, 0, sizeof b);
    memset(r, 0, sizeof *r);
    b.len = len;
    randombytes_buf(b.key, sizeof b.key);
    CHECK((b.in = malloc(AEAD_MAX_BYTES)) != NULL);
    CHECK((b.out = malloc(AEAD_MAX_BYTES + 16)) != NULL);
    randombytes_buf(b.in, AEAD_MAX_BYTES);
    CHECK(sc_noise_cipher_init_key(&b.cs, b.key) == 0);
    CHECK((b.evp = EVP_CIPHER_CTX_new()) != NULL);
    CHECK(EVP_EncryptInit_ex(b.evp, EVP_chacha20_poly1305(), NULL, b.key, nonce) == 1);

    r->bytes = len;
    for (unsigned i = 0; i < rounds; i++) {
        double evp = rate(aead_raw_evp, &b, seconds / rounds, batch) * (double)len / 1e6;
        double cs = rate(aead_cipherstate, &b, seconds / rounds, batch) * (double)len / 1e6;
        double na = rate(aead_libsodium, &b, seconds / rounds, batch) * (double)len / 1e6;
        if (evp > r->evp)
            r->evp = evp;
        if (cs > r->cipherstate)
            r->cipherstate = cs;
        if (na > r->sodium)
            r->sodium = na;
    }
    EVP_CIPHER_CTX_free(b.evp);
    sc_noise_cipher_clear(&b.cs);
    free(b.in);
    free(b.out);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_crypto [--seconds S] [--json]\n");
    exit(1);
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {64, 1024, 16384};
    struct aead_result aead[3];
    struct hs_bench hb;
    struct prim_bench pb;
    double seconds = 1.0, hs_rate, hs_derive_rate, base_rate, sm_rate, verify_rate, bound, hs_pct;
    bool json = false;
    FILE *human;
    uint8_t sk[crypto_sign_SECRETKEYBYTES];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            char *end;
            seconds = strtod(argv[++i], &end);
            if (*end != '\0' || !(seconds > 0.0 && seconds <= 600.0))
                usage();
        } else
            usage();
    }
    human = json ? stderr : stdout;
    CHECK(sodium_init() >= 0);

    fprintf(human, "bench_crypto: %.2f s per figure, single thread; libsodium %s, %s\n", seconds,
            sodium_version_string(), OpenSSL_version(OPENSSL_VERSION));

    /* (a) handshakes: fixed statics, fresh random ephemerals each time. */
    randombytes_buf(hb.is, sizeof hb.is);
    randombytes_buf(hb.rs, sizeof hb.rs);
    CHECK(crypto_scalarmult_base(hb.is_pub, hb.is) == 0);
    CHECK(crypto_scalarmult_base(hb.rs_pub, hb.rs) == 0);
    hb.keypair = true;
    hs_rate = rate(xx_handshake, &hb, seconds, 8);
    /* The same through sc_noise_handshake_init(), which derives each side's
     * static public key every time: one more scalarmult_base per side. */
    hb.keypair = false;
    hs_derive_rate = rate(xx_handshake, &hb, seconds, 8);

    /* (b) the primitives under them. */
    randombytes_buf(pb.scalar, sizeof pb.scalar);
    randombytes_buf(pb.msg, sizeof pb.msg);
    CHECK(crypto_scalarmult_base(pb.point, pb.scalar) == 0);
    CHECK(crypto_sign_keypair(pb.pk, sk) == 0);
    CHECK(crypto_sign_detached(pb.sig, NULL, pb.msg, sizeof pb.msg, sk) == 0);
    sodium_memzero(sk, sizeof sk);
    base_rate = rate(x25519_base, &pb, seconds, 32);
    sm_rate = rate(x25519, &pb, seconds, 32);
    verify_rate = rate(ed25519_verify, &pb, seconds, 32);
    /* XX: each side makes one ephemeral (base) and three DHs (ee, es, se). */
    bound = 1.0 / (2.0 / base_rate + 6.0 / sm_rate);
    hs_pct = 100.0 * hs_rate / bound;

    fprintf(human, "noise XX handshake (both sides, empty payloads): %10.0f /s\n", hs_rate);
    fprintf(human, "  same, static public keys derived each time:   %10.0f /s\n", hs_derive_rate);
    fprintf(human, "x25519 scalarmult_base:                         %10.0f /s\n", base_rate);
    fprintf(human, "x25519 scalarmult:                              %10.0f /s\n", sm_rate);
    fprintf(human, "ed25519 verify:                                 %10.0f /s\n", verify_rate);
    fprintf(human, "XX bound 1/(2*t_base + 6*t_scalarmult):         %10.0f /s\n", bound);
    fprintf(human, "handshake rate vs bound:                        %9.1f %%  (target >= 80%%: %s)\n",
            hs_pct, hs_pct >= 80.0 ? "met" : "MISSED");
    fprintf(human, "  deriving static public keys:                  %9.1f %%\n",
            100.0 * hs_derive_rate / bound);

    /* (c) AEAD throughput. */
    fprintf(human, "chacha20-poly1305 encrypt, MB/s (10^6 bytes):\n");
    fprintf(human, "  %7s %12s %12s %12s %14s\n", "bytes", "CipherState", "raw EVP", "libsodium",
            "CS % of EVP");
    for (size_t i = 0; i < 3; i++) {
        bench_aead(sizes[i], seconds, &aead[i]);
        fprintf(human, "  %7zu %12.1f %12.1f %12.1f %13.1f%%\n", aead[i].bytes, aead[i].cipherstate,
                aead[i].evp, aead[i].sodium, 100.0 * aead[i].cipherstate / aead[i].evp);
    }
    fprintf(human, "CipherState at 16 KiB vs raw EVP: %.1f %% (target >= 95%%: %s)\n",
            100.0 * aead[2].cipherstate / aead[2].evp,
            aead[2].cipherstate >= 0.95 * aead[2].evp ? "met" : "MISSED");

    if (json) {
        json_t *root = json_object(), *rows = json_array();
        char *text;

        for (size_t i = 0; i < 3; i++) {
            json_array_append_new(
                rows, json_pack("{s:I, s:f, s:f, s:f, s:f}", "bytes", (json_int_t)aead[i].bytes,
                                "cipherstate_mb_s", aead[i].cipherstate, "raw_evp_mb_s", aead[i].evp,
                                "libsodium_mb_s", aead[i].sodium, "cipherstate_pct_of_evp",
                                100.0 * aead[i].cipherstate / aead[i].evp));
        }
        json_object_set_new(root, "seconds_per_figure", json_real(seconds));
        json_object_set_new(root, "libsodium", json_string(sodium_version_string()));
        json_object_set_new(root, "openssl", json_string(OpenSSL_version(OPENSSL_VERSION)));
        json_object_set_new(root, "xx_handshakes_per_s", json_real(hs_rate));
        json_object_set_new(root, "xx_handshakes_derive_static_pub_per_s", json_real(hs_derive_rate));
        json_object_set_new(root, "xx_derive_pct_of_bound", json_real(100.0 * hs_derive_rate / bound));
        json_object_set_new(root, "x25519_scalarmult_base_per_s", json_real(base_rate));
        json_object_set_new(root, "x25519_scalarmult_per_s", json_real(sm_rate));
        json_object_set_new(root, "ed25519_verify_per_s", json_real(verify_rate));
        json_object_set_new(root, "xx_bound_per_s", json_real(bound));
        json_object_set_new(root, "xx_pct_of_bound", json_real(hs_pct));
        json_object_set_new(root, "aead", rows);
        text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(6));
        CHECK(text != NULL);
        printf("%s\n", text);
        free(text);
        json_decref(root);
    }
    return 0;
}
