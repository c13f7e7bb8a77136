/* fuzz/fuzz_noise_read.c — libFuzzer target for the three Noise XX readers.
 *
 * The first input byte (mod 3) picks the reader, the rest is the message:
 *   0  responder reads message 1   (-> e)
 *   1  initiator reads message 2   (<- e, ee, s, es), after writing message 1
 *   2  responder reads message 3   (-> s, se), after a fixed 1/2 exchange
 * All keys are fixed, so a run is deterministic and seeds stay valid. When a
 * read succeeds the handshake goes on one step, so the keys just read reach
 * the DH code too. Every handshake and cipher is cleared (ASan checks leaks). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/noise.h"

#define XX "Noise_XX_25519_ChaChaPoly_BLAKE2b"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t prologue[] = "secirc/1";

/* Fixed keys, shared with the seed files in fuzz/corpus/fuzz_noise_read/. */
static void fixed_key(uint8_t k[SC_NOISE_DH_BYTES], uint8_t v)
{
    memset(k, v, SC_NOISE_DH_BYTES);
}

static void must(int ok)
{
    if (!ok)
        abort(); /* the fixed part of the exchange must never fail */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t payload[SC_NOISE_MAX_MESSAGE_BYTES];
    struct sc_noise_handshake ini, res;
    struct sc_noise_cipher send, recv;
    uint8_t is[32], ie[32], rs[32], re[32], m[256];
    size_t len, plen;
    unsigned which;

    if (size < 1)
        return 0;
    which = data[0] % 3u;
    data++;
    size--;

    fixed_key(is, 0x11);
    fixed_key(ie, 0x12);
    fixed_key(rs, 0x21);
    fixed_key(re, 0x22);
    must(sc_noise_handshake_init(&ini, XX, SC_NOISE_INITIATOR, prologue, sizeof prologue, is, ie,
                                 NULL) == 0);
    must(sc_noise_handshake_init(&res, XX, SC_NOISE_RESPONDER, prologue, sizeof prologue, rs, re,
                                 NULL) == 0);

    switch (which) {
    case 0:
        if (sc_noise_read_message(&res, data, size, payload, sizeof payload, &plen) == 0) {
            /* ee with the fuzzed e (a low-order point must fail cleanly). */
            if (sc_noise_write_message(&res, payload, plen > 64 ? 64 : plen, m, sizeof m, &len) == 0)
                must(res.state == SC_NOISE_HS_READ);
        }
        break;
    case 1:
        must(sc_noise_write_message(&ini, NULL, 0, m, sizeof m, &len) == 0);
        if (sc_noise_read_message(&ini, data, size, payload, sizeof payload, &plen) == 0) {
            must(sc_noise_write_message(&ini, NULL, 0, m, sizeof m, &len) == 0);
            must(sc_noise_split(&ini, &send, &recv) == 0);
            sc_noise_cipher_clear(&send);
            sc_noise_cipher_clear(&recv);
        }
        break;
    default:
        must(sc_noise_write_message(&ini, NULL, 0, m, sizeof m, &len) == 0);
        must(sc_noise_read_message(&res, m, len, payload, sizeof payload, &plen) == 0);
        must(sc_noise_write_message(&res, NULL, 0, m, sizeof m, &len) == 0);
        must(sc_noise_read_message(&ini, m, len, payload, sizeof payload, &plen) == 0);
        if (sc_noise_read_message(&res, data, size, payload, sizeof payload, &plen) == 0) {
            must(sc_noise_split(&res, &send, &recv) == 0);
            sc_noise_cipher_clear(&send);
            sc_noise_cipher_clear(&recv);
        }
        break;
    }
    sc_noise_handshake_clear(&ini);
    sc_noise_handshake_clear(&res);
    return 0;
}
