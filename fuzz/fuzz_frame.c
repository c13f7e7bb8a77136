/* fuzz/fuzz_frame.c — libFuzzer target for transport frames (link/frame.h).
 *
 * The first input byte picks the path (bit 0):
 *   0  the rest is max_payload (2 bytes, big-endian) and a decrypted frame
 *      body: sc_frame_reader_init, then sc_frame_next until the end or an
 *      error. Every message returned must lie inside the body, respect
 *      max_payload, re-encode to exactly its input bytes with the
 *      sc_frame_put_* encoders, and REKEY must be last.
 *   1  the next 18 bytes are a sealed length opened with a fixed-key
 *      CipherState at nonce 0 (fail, or a length in 1..SC_FRAME_BODY_MAX_BYTES);
 *      the first 2 of them, as a length, also go through seal + open.
 * A broken property is __builtin_trap(). Nothing is kept between inputs but
 * the two keyed CipherStates (their nonces are reset for every input).
 *
 * With SC_FUZZ_WRITE_SEEDS=DIR set, the target writes its seed files into
 * DIR and exits (fuzz/corpus/fuzz_frame/ was made that way). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link/frame.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sc_noise_cipher tx, rx;

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

static void keys_init(void)
{
    uint8_t key[SC_NOISE_KEY_BYTES];

    for (unsigned i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(0x40 + i);
    check(sc_noise_cipher_init_key(&tx, key) == 0);
    check(sc_noise_cipher_init_key(&rx, key) == 0);
}

/* Re-encodes `m` and compares it with the bytes it was read from. */
static void check_reencode(const struct sc_frame_msg *m, const uint8_t *from, size_t from_len)
{
    static uint8_t enc[SC_FRAME_BODY_MAX_BYTES + 64];
    size_t n = 0;

    switch (m->type) {
    case SC_MSG_RELAY:
        n = sc_frame_put_relay_header(enc, m->u.relay.id, m->u.relay.hop_limit, m->u.relay.flags,
                                      m->u.relay.len);
        memcpy(enc + n, m->u.relay.payload, m->u.relay.len);
        n += m->u.relay.len;
        break;
    case SC_MSG_PING:
    case SC_MSG_PONG:
        n = sc_frame_put_nonce(enc, m->type, m->u.nonce);
        break;
    case SC_MSG_ACCEPT:
        n = sc_frame_put_accept(enc, &m->u.accept);
        break;
    case SC_MSG_REJECT:
    case SC_MSG_CLOSE:
        n = sc_frame_put_reason(enc, m->type, m->u.reason);
        break;
    case SC_MSG_REKEY:
        n = sc_frame_put_msg_header(enc, m->type, 0);
        break;
    case SC_MSG_PADDING:
        /* Content is not decoded: only the header can be checked. */
        check(from_len >= SC_MSG_HEADER_BYTES);
        n = sc_frame_put_msg_header(enc, m->type, from_len - SC_MSG_HEADER_BYTES);
        memcpy(enc + n, from + n, from_len - n);
        n = from_len;
        break;
    default:
        check(0); /* an unknown type was returned as a message */
    }
    check(n == from_len && memcmp(enc, from, n) == 0);
}

static void read_body(const uint8_t *data, size_t size)
{
    if (size < 2)
        return;
    size_t max_payload = (size_t)data[0] << 8 | data[1];
    size_t len = size - 2;
    /* An exact-size copy, so that any read past the body is caught. */
    uint8_t *body = malloc(len ? len : 1);
    check(body != NULL);
    memcpy(body, data + 2, len);

    struct sc_frame_reader r;
    int err = sc_frame_reader_init(&r, body, len, max_payload);
    if (len >= 1 + SC_MSG_HEADER_BYTES && body[0] == SC_FRAME_VERSION)
        check(err == 0);
    else
        check(err == SC_EFORMAT || err == SC_EVERSION);
    if (err == 0) {
        bool rekey_seen = false;
        size_t count = 0;
        for (;;) {
            const uint8_t *before = r.p;
            struct sc_frame_msg m;
            err = sc_frame_next(&r, &m);
            if (err != 1)
                break;
            check(!rekey_seen);
            check(++count <= len / SC_MSG_HEADER_BYTES);
            check(r.p > before && r.p <= body + len);
            if (m.type == SC_MSG_RELAY) {
                check(m.u.relay.len <= max_payload);
                check(m.u.relay.id >= body && m.u.relay.id + SC_MESSAGE_ID_BYTES <= body + len);
                check(m.u.relay.payload >= body && m.u.relay.payload + m.u.relay.len <= body + len);
            }
            if (m.type == SC_MSG_ACCEPT)
                check(before[SC_MSG_HEADER_BYTES + 1] == 0);
            rekey_seen = m.type == SC_MSG_REKEY;
            check_reencode(&m, before, (size_t)(r.p - before));
        }
        check(err == 0 || err == SC_EFORMAT || err == SC_ETOOBIG);
        check(!rekey_seen || err == 0); /* REKEY is last: the end follows */
        if (err == 0)
            check(r.p == r.end);
    }
    free(body);
}

static void open_header(const uint8_t *data, size_t size)
{
    uint8_t hdr[SC_FRAME_HEADER_BYTES];
    size_t len = SIZE_MAX;

    if (size < SC_FRAME_HEADER_BYTES)
        return;
    sc_noise_cipher_set_nonce(&rx, 0);
    int err = sc_frame_open_header(&rx, data, &len);
    if (err == 0)
        check(len >= 1 && len <= SC_FRAME_BODY_MAX_BYTES);
    else
        check((err == SC_EAUTH || err == SC_ETOOBIG) && len == SIZE_MAX);

    /* The first two bytes as a length: seal refuses exactly what open would. */
    size_t want = (size_t)data[0] << 8 | data[1];
    sc_noise_cipher_set_nonce(&tx, 0);
    sc_noise_cipher_set_nonce(&rx, 0);
    err = sc_frame_seal_header(&tx, want, hdr);
    if (want == 0 || want > SC_FRAME_BODY_MAX_BYTES) {
        check(err == SC_ETOOBIG);
        return;
    }
    check(err == 0);
    len = 0;
    check(sc_frame_open_header(&rx, hdr, &len) == 0 && len == want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        open_header(data + 1, size - 1);
    else
        read_body(data + 1, size - 1);
    return 0;
}

/* ---- seeds ------------------------------------------------------------------ */

static void write_seed(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    check(f != NULL && fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

static void write_seeds(const char *dir)
{
    static const uint8_t id[SC_MESSAGE_ID_BYTES] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4,
                                                    5, 6, 7, 8, 9, 10, 11, 12};
    struct sc_accept_info acc = {.priority = 8, .max_message_bytes = 65497,
                                 .heartbeat_interval_ms = 30000};
    uint8_t b[512];
    size_t n;

    /* flag 0, max_payload, body */
    n = 0;
    b[n++] = 0;
    b[n++] = 0x01; /* max_payload 256 */
    b[n++] = 0x00;
    b[n++] = SC_FRAME_VERSION;
    n += sc_frame_put_accept(b + n, &acc);
    n += sc_frame_put_relay_header(b + n, id, 8, 0, 5);
    memcpy(b + n, "hello", 5);
    n += 5;
    n += sc_frame_put_nonce(b + n, SC_MSG_PING, 0x0102030405060708ull);
    n += sc_frame_put_nonce(b + n, SC_MSG_PONG, 42);
    n += sc_frame_put_reason(b + n, SC_MSG_REJECT, 13);
    n += sc_frame_put_reason(b + n, SC_MSG_CLOSE, 1);
    n += sc_frame_put_msg_header(b + n, SC_MSG_PADDING, 4);
    memset(b + n, 0, 4);
    n += 4;
    n += sc_frame_put_msg_header(b + n, SC_MSG_REKEY, 0);
    write_seed(dir, "body-all-types", b, n);

    n = 3;
    b[n++] = SC_FRAME_VERSION;
    n += sc_frame_put_relay_header(b + n, id, 1, SC_RELAY_FLAG_BROADCAST, 0);
    n += sc_frame_put_relay_header(b + n, id, 255, 0, 16);
    memset(b + n, 0x77, 16);
    n += 16;
    write_seed(dir, "body-relays", b, n);

    n = 3;
    b[n++] = SC_FRAME_VERSION;
    n += sc_frame_put_msg_header(b + n, SC_MSG_REKEY, 0);
    write_seed(dir, "body-rekey", b, n);

    n = 3;
    b[n++] = SC_FRAME_VERSION;
    n += sc_frame_put_accept(b + n, &acc);
    write_seed(dir, "body-accept", b, n);

    /* flag 1: sealed lengths under the fixed key at nonce 0. */
    static const uint16_t lens[] = {1, 300, SC_FRAME_BODY_MAX_BYTES};
    static const char *const names[] = {"header-1", "header-300", "header-max"};
    for (size_t i = 0; i < 3; i++) {
        b[0] = 1;
        sc_noise_cipher_set_nonce(&tx, 0);
        check(sc_frame_seal_header(&tx, lens[i], b + 1) == 0);
        write_seed(dir, names[i], b, 1 + SC_FRAME_HEADER_BYTES);
    }
    /* A length of 0 and of 0xffff, sealed raw, as a hostile peer could. */
    static const uint8_t raw[2][2] = {{0, 0}, {0xff, 0xff}};
    for (size_t i = 0; i < 2; i++) {
        b[0] = 1;
        sc_noise_cipher_set_nonce(&tx, 0);
        check(sc_noise_encrypt(&tx, NULL, 0, raw[i], 2, b + 1, SC_FRAME_HEADER_BYTES, &n) == 0);
        write_seed(dir, i ? "header-raw-ffff" : "header-raw-0", b, 1 + SC_FRAME_HEADER_BYTES);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    keys_init();
    const char *dir = getenv("SC_FUZZ_WRITE_SEEDS");
    if (dir != NULL) {
        write_seeds(dir);
        exit(0);
    }
    return 0;
}
