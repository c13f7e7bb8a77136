/* tests/unit/test_frame.c — transport frames (link/frame.h) without sockets.
 *
 * A sender and a receiver CipherState keyed with the same fixed key stand in
 * for the two ends of a link: frames are sealed on one and opened on the
 * other with their nonces in step. Then every path by which the sealed
 * length or the strict body reader must refuse input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "link/frame.h"

#define WIRE_CAP (SC_FRAME_WIRE_MAX_BYTES + 64u)

/* Both ends of one direction of a link. */
struct pipe_end {
    struct sc_noise_cipher tx, rx;
};

static void pipe_open(struct pipe_end *p)
{
    uint8_t key[SC_NOISE_KEY_BYTES];

    memset(p, 0, sizeof *p);
    for (unsigned i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(0xa0 + i);
    assert_int_equal(sc_noise_cipher_init_key(&p->tx, key), 0);
    assert_int_equal(sc_noise_cipher_init_key(&p->rx, key), 0);
}

static void pipe_close(struct pipe_end *p)
{
    sc_noise_cipher_clear(&p->tx);
    sc_noise_cipher_clear(&p->rx);
}

/* Seals body[0..len) as one frame: header(18) || body(len) || tag(16). */
static size_t seal_frame(struct sc_noise_cipher *tx, const uint8_t *body, size_t len, uint8_t *wire)
{
    size_t n = 0;

    assert_int_equal(sc_frame_seal_header(tx, len, wire), 0);
    assert_int_equal(sc_noise_encrypt(tx, NULL, 0, body, len, wire + SC_FRAME_HEADER_BYTES,
                                      WIRE_CAP - SC_FRAME_HEADER_BYTES, &n),
                     0);
    assert_int_equal(n, len + SC_FRAME_TAG_BYTES);
    return SC_FRAME_HEADER_BYTES + n;
}

/* Opens a frame the way the link does: header first, then exactly the body
 * length it announced. Returns 0 or the first error. */
static int open_frame(struct sc_noise_cipher *rx, const uint8_t *wire, size_t wire_len,
                      uint8_t *body, size_t *body_len)
{
    size_t len = 0, n = 0;
    int err = sc_frame_open_header(rx, wire, &len);

    if (err)
        return err;
    if (wire_len != SC_FRAME_HEADER_BYTES + len + SC_FRAME_TAG_BYTES)
        return SC_ETRUNC;
    err = sc_noise_decrypt(rx, NULL, 0, wire + SC_FRAME_HEADER_BYTES, len + SC_FRAME_TAG_BYTES,
                           body, SC_FRAME_BODY_MAX_BYTES, &n);
    if (err)
        return err;
    assert_int_equal(n, len);
    *body_len = n;
    return 0;
}

/* Reads a decrypted body with max_payload and returns the first error, or
 * 0 after `want` messages and a clean end. */
static int read_all(const uint8_t *body, size_t len, size_t max_payload, int *count)
{
    struct sc_frame_reader r;
    struct sc_frame_msg m;
    int err = sc_frame_reader_init(&r, body, len, max_payload);

    *count = 0;
    if (err)
        return err;
    for (int i = 0; i < 100000; i++) {
        err = sc_frame_next(&r, &m);
        if (err != 1)
            return err;
        (*count)++;
    }
    fail_msg("reader did not end");
    return -1;
}

/* A body that is the version byte and one message of `type` with `len`
 * bytes of body filled with `fill`. */
static size_t one_message(uint8_t *body, uint8_t type, size_t len, uint8_t fill)
{
    body[0] = SC_FRAME_VERSION;
    body[1] = type;
    body[2] = (uint8_t)(len >> 8);
    body[3] = (uint8_t)len;
    memset(body + 4, fill, len);
    return 4 + len;
}

static int read_one(uint8_t type, size_t len, uint8_t fill)
{
    static uint8_t body[SC_FRAME_BODY_MAX_BYTES];
    int count;

    return read_all(body, one_message(body, type, len, fill), SC_MESSAGE_PAYLOAD_MAX_BYTES, &count);
}

/* ---- round trip ------------------------------------------------------------ */

static const uint8_t id1[SC_MESSAGE_ID_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t id2[SC_MESSAGE_ID_BYTES] = {0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87,
                                                 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f};

/* Every message type in one body, REKEY last. */
static size_t build_all_types(uint8_t *body)
{
    static const char hello[] = "hello, relay";
    struct sc_accept_info acc = {.priority = SC_PRIORITY_TRUSTED,
                                 .max_message_bytes = 0x0000fed9u, /* 65241 */
                                 .heartbeat_interval_ms = 0xfedcba98u};
    size_t n = 0;

    body[n++] = SC_FRAME_VERSION;
    n += sc_frame_put_accept(body + n, &acc);
    n += sc_frame_put_relay_header(body + n, id1, 7, 0, sizeof hello - 1);
    memcpy(body + n, hello, sizeof hello - 1);
    n += sizeof hello - 1;
    n += sc_frame_put_relay_header(body + n, id2, 255, SC_RELAY_FLAG_BROADCAST, 0);
    n += sc_frame_put_nonce(body + n, SC_MSG_PING, 0x0102030405060708ull);
    n += sc_frame_put_nonce(body + n, SC_MSG_PONG, UINT64_MAX);
    n += sc_frame_put_reason(body + n, SC_MSG_REJECT, SC_REASON_BUSY);
    n += sc_frame_put_msg_header(body + n, SC_MSG_PADDING, 5);
    memset(body + n, 0, 5);
    n += 5;
    n += sc_frame_put_msg_header(body + n, SC_MSG_PADDING, 0);
    n += sc_frame_put_reason(body + n, SC_MSG_CLOSE, 0xbeef);
    n += sc_frame_put_msg_header(body + n, SC_MSG_REKEY, 0);
    return n;
}

static void check_all_types(const uint8_t *body, size_t len)
{
    struct sc_frame_reader r;
    struct sc_frame_msg m;

    assert_int_equal(sc_frame_reader_init(&r, body, len, 1000), 0);

    assert_int_equal(sc_frame_next(&r, &m), 1);
    assert_int_equal(m.type, SC_MSG_ACCEPT);
    assert_int_equal(m.u.accept.priority, SC_PRIORITY_TRUSTED);
    assert_int_equal(m.u.accept.max_message_bytes, 0x0000fed9u);
    assert_int_equal(m.u.accept.heartbeat_interval_ms, 0xfedcba98u);

    assert_int_equal(sc_frame_next(&r, &m), 1);
    assert_int_equal(m.type, SC_MSG_RELAY);
    assert_memory_equal(m.u.relay.id, id1, SC_MESSAGE_ID_BYTES);
    assert_int_equal(m.u.relay.hop_limit, 7);
    assert_int_equal(m.u.relay.flags, 0);
    assert_int_equal(m.u.relay.len, 12);
    assert_memory_equal(m.u.relay.payload, "hello, relay", 12);
    assert_true(m.u.relay.payload >= body && m.u.relay.payload + m.u.relay.len <= body + len);

    assert_int_equal(sc_frame_next(&r, &m), 1);
    assert_int_equal(m.type, SC_MSG_RELAY);
    assert_memory_equal(m.u.relay.id, id2, SC_MESSAGE_ID_BYTES);
    assert_int_equal(m.u.relay.hop_limit, 255);
    assert_int_equal(m.u.relay.flags, SC_RELAY_FLAG_BROADCAST);
    assert_int_equal(m.u.relay.len, 0);

    assert_int_equal(sc_frame_next(&r, &m), 1);
    assert_int_equal(m.type, SC_MSG_PING);
    assert_true(m.u.nonce == 0x0102030405060708ull);

    assert_int_equal(sc_frame_next(&r, &m), 1);
    assert_int_equal(m.type, SC_MSG_PONG);
    assert_true(m.u.nonce == UINT64_MAX);

    assert_int_equal(sc_frame_next(&r, &m), 1);
    assert_int_equal(m.type, SC_MSG_REJECT);
    assert_int_equal(m.u.reason, SC_REASON_BUSY);

    assert_int_equal(sc_frame_next(&r, &m), 1);
    assert_int_equal(m.type, SC_MSG_PADDING);
    assert_int_equal(sc_frame_next(&r, &m), 1);
    assert_int_equal(m.type, SC_MSG_PADDING);

    assert_int_equal(sc_frame_next(&r, &m), 1);
    assert_int_equal(m.type, SC_MSG_CLOSE);
    assert_int_equal(m.u.reason, 0xbeef);

    assert_int_equal(sc_frame_next(&r, &m), 1);
    assert_int_equal(m.type, SC_MSG_REKEY);

    assert_int_equal(sc_frame_next(&r, &m), 0);
    assert_int_equal(sc_frame_next(&r, &m), 0); /* stays at the end */
}

static void test_roundtrip_all_types(void **state)
{
    (void)state;
    static uint8_t body[512], wire[WIRE_CAP], got[SC_FRAME_BODY_MAX_BYTES];
    struct pipe_end p;
    size_t len = build_all_types(body), got_len = 0;

    pipe_open(&p);
    /* Several frames in a row: the nonces of both ends stay in step. */
    for (int i = 0; i < 5; i++) {
        size_t wire_len = seal_frame(&p.tx, body, len, wire);
        assert_int_equal(wire_len, SC_FRAME_HEADER_BYTES + len + SC_FRAME_TAG_BYTES);
        /* Nothing of the body (or its length) is in clear. */
        assert_memory_not_equal(wire + SC_FRAME_HEADER_BYTES, body, len);
        assert_int_equal(open_frame(&p.rx, wire, wire_len, got, &got_len), 0);
        assert_int_equal(got_len, len);
        assert_memory_equal(got, body, len);
        check_all_types(got, got_len);
    }
    assert_true(p.tx.n == 10 && p.rx.n == 10);
    pipe_close(&p);
}

/* The encoders write the layout the reader expects, byte for byte. */
static void test_encoders_bytes(void **state)
{
    (void)state;
    uint8_t b[64];
    struct sc_accept_info acc = {.priority = 6, .max_message_bytes = 0x01020304u,
                                 .heartbeat_interval_ms = 0x0a0b0c0du};

    assert_int_equal(sc_frame_put_msg_header(b, SC_MSG_PADDING, 0x1234), 3);
    assert_memory_equal(b, "\x08\x12\x34", 3);

    assert_int_equal(sc_frame_put_nonce(b, SC_MSG_PING, 0x1122334455667788ull), 11);
    assert_memory_equal(b, "\x02\x00\x08\x11\x22\x33\x44\x55\x66\x77\x88", 11);
    assert_int_equal(sc_frame_put_nonce(b, SC_MSG_PONG, 1), 11);
    assert_memory_equal(b, "\x03\x00\x08\x00\x00\x00\x00\x00\x00\x00\x01", 11);

    assert_int_equal(sc_frame_put_reason(b, SC_MSG_REJECT, 0x0d), 5);
    assert_memory_equal(b, "\x05\x00\x02\x00\x0d", 5);
    assert_int_equal(sc_frame_put_reason(b, SC_MSG_CLOSE, 0xabcd), 5);
    assert_memory_equal(b, "\x06\x00\x02\xab\xcd", 5);

    assert_int_equal(sc_frame_put_accept(b, &acc), 3 + SC_ACCEPT_BYTES);
    assert_memory_equal(b, "\x04\x00\x0a\x06\x00\x01\x02\x03\x04\x0a\x0b\x0c\x0d", 13);

    assert_int_equal(sc_frame_put_relay_header(b, id1, 9, 1, 0x100), 3 + SC_RELAY_HEADER_BYTES);
    assert_memory_equal(b, "\x01\x01\x12", 3); /* 18 + 256 = 0x112 */
    assert_memory_equal(b + 3, id1, SC_MESSAGE_ID_BYTES);
    assert_int_equal(b[19], 9);
    assert_int_equal(b[20], 1);

    assert_int_equal(sc_frame_put_msg_header(b, SC_MSG_REKEY, 0), 3);
    assert_memory_equal(b, "\x07\x00\x00", 3);
}

/* ---- sealed length -------------------------------------------------------- */

static void test_seal_header_bounds(void **state)
{
    (void)state;
    uint8_t hdr[SC_FRAME_HEADER_BYTES];
    struct pipe_end p;
    size_t len = 0;

    pipe_open(&p);
    assert_int_equal(sc_frame_seal_header(&p.tx, 0, hdr), SC_ETOOBIG);
    assert_int_equal(sc_frame_seal_header(&p.tx, SC_FRAME_BODY_MAX_BYTES + 1, hdr), SC_ETOOBIG);
    assert_int_equal(sc_frame_seal_header(&p.tx, 65535, hdr), SC_ETOOBIG);
    assert_int_equal(sc_frame_seal_header(&p.tx, 65536, hdr), SC_ETOOBIG);
    assert_int_equal(sc_frame_seal_header(&p.tx, SIZE_MAX, hdr), SC_ETOOBIG);
    /* A refused length uses no nonce: the next header still opens. */
    assert_true(p.tx.n == 0);

    assert_int_equal(sc_frame_seal_header(&p.tx, 1, hdr), 0);
    assert_int_equal(sc_frame_open_header(&p.rx, hdr, &len), 0);
    assert_int_equal(len, 1);
    assert_int_equal(sc_frame_seal_header(&p.tx, SC_FRAME_BODY_MAX_BYTES, hdr), 0);
    assert_int_equal(sc_frame_open_header(&p.rx, hdr, &len), 0);
    assert_int_equal(len, SC_FRAME_BODY_MAX_BYTES);
    assert_int_equal(sc_frame_seal_header(&p.tx, 0x0102, hdr), 0);
    assert_int_equal(sc_frame_open_header(&p.rx, hdr, &len), 0);
    assert_int_equal(len, 0x0102);
    pipe_close(&p);
}

/* Seals a raw 2-byte length, as a hostile peer could. */
static void seal_raw_len(struct sc_noise_cipher *tx, uint16_t v, uint8_t hdr[SC_FRAME_HEADER_BYTES])
{
    uint8_t raw[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    size_t n = 0;

    assert_int_equal(sc_noise_encrypt(tx, NULL, 0, raw, sizeof raw, hdr, SC_FRAME_HEADER_BYTES, &n), 0);
    assert_int_equal(n, SC_FRAME_HEADER_BYTES);
}

static void test_open_header_bounds(void **state)
{
    (void)state;
    static const struct {
        uint16_t v;
        int want;
    } cases[] = {
        {0, SC_ETOOBIG},
        {1, 0},
        {SC_FRAME_BODY_MAX_BYTES, 0},
        {SC_FRAME_BODY_MAX_BYTES + 1, SC_ETOOBIG},
        {0xfff0, SC_ETOOBIG},
        {0xffff, SC_ETOOBIG},
        {0x8000, 0},
    };
    uint8_t hdr[SC_FRAME_HEADER_BYTES];
    struct pipe_end p;

    pipe_open(&p);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = 12345;
        seal_raw_len(&p.tx, cases[i].v, hdr);
        assert_int_equal(sc_frame_open_header(&p.rx, hdr, &len), cases[i].want);
        if (cases[i].want == 0)
            assert_int_equal(len, cases[i].v);
        else
            assert_int_equal(len, 12345); /* untouched: nothing to size a buffer by */
    }
    pipe_close(&p);
}

static void test_flipped_header(void **state)
{
    (void)state;
    uint8_t hdr[SC_FRAME_HEADER_BYTES], bad[SC_FRAME_HEADER_BYTES];
    struct pipe_end p;
    size_t len = 0;

    pipe_open(&p);
    assert_int_equal(sc_frame_seal_header(&p.tx, 300, hdr), 0);
    for (unsigned bit = 0; bit < 8 * SC_FRAME_HEADER_BYTES; bit++) {
        memcpy(bad, hdr, sizeof hdr);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(sc_frame_open_header(&p.rx, bad, &len), SC_EAUTH);
    }
    /* Failures did not move the receiver's nonce: the genuine one opens. */
    assert_true(p.rx.n == 0);
    assert_int_equal(sc_frame_open_header(&p.rx, hdr, &len), 0);
    assert_int_equal(len, 300);
    pipe_close(&p);
}

static void test_flipped_body(void **state)
{
    (void)state;
    static uint8_t body[512], wire[WIRE_CAP], bad[WIRE_CAP], got[SC_FRAME_BODY_MAX_BYTES];
    struct pipe_end p;
    size_t len = build_all_types(body), got_len = 0;

    pipe_open(&p);
    size_t wire_len = seal_frame(&p.tx, body, len, wire);
    for (size_t i = SC_FRAME_HEADER_BYTES; i < wire_len; i++) {
        for (unsigned bit = 0; bit < 8; bit += 3) {
            memcpy(bad, wire, wire_len);
            bad[i] ^= (uint8_t)(1u << bit);
            sc_noise_cipher_set_nonce(&p.rx, 0);
            assert_int_equal(open_frame(&p.rx, bad, wire_len, got, &got_len), SC_EAUTH);
        }
    }
    sc_noise_cipher_set_nonce(&p.rx, 0);
    assert_int_equal(open_frame(&p.rx, wire, wire_len, got, &got_len), 0);
    check_all_types(got, got_len);
    pipe_close(&p);
}

/* A header or a whole frame played again, or frames swapped, do not open. */
static void test_replay_and_reorder(void **state)
{
    (void)state;
    static uint8_t body[64], w1[WIRE_CAP], w2[WIRE_CAP], got[SC_FRAME_BODY_MAX_BYTES];
    struct pipe_end p;
    size_t n = 0, got_len = 0, len = 0;

    pipe_open(&p);
    body[n++] = SC_FRAME_VERSION;
    n += sc_frame_put_nonce(body + n, SC_MSG_PING, 42);
    size_t l1 = seal_frame(&p.tx, body, n, w1);
    size_t l2 = seal_frame(&p.tx, body, n, w2);

    /* Frame 2 before frame 1: its header was sealed under nonce 2. */
    assert_int_equal(sc_frame_open_header(&p.rx, w2, &len), SC_EAUTH);
    assert_int_equal(open_frame(&p.rx, w1, l1, got, &got_len), 0);
    /* Frame 1 again: the header's nonce is behind now. */
    assert_int_equal(sc_frame_open_header(&p.rx, w1, &len), SC_EAUTH);
    /* Frame 2's header opens once (nonce 2), not a second time. */
    assert_int_equal(sc_noise_decrypt(&p.rx, NULL, 0, w2, SC_FRAME_HEADER_BYTES, got, sizeof got, &len),
                     0);
    assert_int_equal(sc_noise_decrypt(&p.rx, NULL, 0, w2, SC_FRAME_HEADER_BYTES, got, sizeof got, &len),
                     SC_EAUTH);
    assert_int_equal(sc_noise_decrypt(&p.rx, NULL, 0, w2 + SC_FRAME_HEADER_BYTES,
                                      l2 - SC_FRAME_HEADER_BYTES, got, sizeof got, &len),
                     0);
    pipe_close(&p);
}

/* A frame cut short or with its sealed body swapped for another frame's. */
static void test_body_from_other_frame(void **state)
{
    (void)state;
    static uint8_t body[64], w1[WIRE_CAP], w2[WIRE_CAP], mix[WIRE_CAP], got[SC_FRAME_BODY_MAX_BYTES];
    struct pipe_end p;
    size_t n = 0, got_len = 0;

    pipe_open(&p);
    body[n++] = SC_FRAME_VERSION;
    n += sc_frame_put_nonce(body + n, SC_MSG_PONG, 7);
    size_t l1 = seal_frame(&p.tx, body, n, w1);
    size_t l2 = seal_frame(&p.tx, body, n, w2);
    assert_int_equal(l1, l2);
    memcpy(mix, w1, SC_FRAME_HEADER_BYTES);
    memcpy(mix + SC_FRAME_HEADER_BYTES, w2 + SC_FRAME_HEADER_BYTES, l2 - SC_FRAME_HEADER_BYTES);
    assert_int_equal(open_frame(&p.rx, mix, l1, got, &got_len), SC_EAUTH);
    pipe_close(&p);
}

/* ---- strict reader ------------------------------------------------------------ */

static void test_reader_version(void **state)
{
    (void)state;
    uint8_t body[16];
    struct sc_frame_reader r;
    size_t n = 0;

    body[n++] = SC_FRAME_VERSION;
    n += sc_frame_put_reason(body + n, SC_MSG_CLOSE, 1);
    assert_int_equal(sc_frame_reader_init(&r, body, n, 0), 0);
    static const uint8_t bad_versions[] = {0, 2, 0x7f, 0x81, 0xff};
    for (size_t i = 0; i < sizeof bad_versions; i++) {
        body[0] = bad_versions[i];
        assert_int_equal(sc_frame_reader_init(&r, body, n, 0), SC_EVERSION);
    }
}

static void test_reader_empty(void **state)
{
    (void)state;
    uint8_t body[4] = {SC_FRAME_VERSION, SC_MSG_PADDING, 0, 0};
    struct sc_frame_reader r;
    struct sc_frame_msg m;

    assert_int_equal(sc_frame_reader_init(&r, body, 0, 100), SC_EFORMAT);
    /* The version byte alone carries no message. */
    assert_int_equal(sc_frame_reader_init(&r, body, 1, 100), SC_EFORMAT);
    /* Version byte and a cut message header. */
    assert_int_equal(sc_frame_reader_init(&r, body, 2, 100), SC_EFORMAT);
    assert_int_equal(sc_frame_reader_init(&r, body, 3, 100), SC_EFORMAT);
    /* The smallest valid body: one empty PADDING. */
    assert_int_equal(sc_frame_reader_init(&r, body, 4, 100), 0);
    assert_int_equal(sc_frame_next(&r, &m), 1);
    assert_int_equal(m.type, SC_MSG_PADDING);
    assert_int_equal(sc_frame_next(&r, &m), 0);
}

static void test_reader_truncated(void **state)
{
    (void)state;
    uint8_t body[128];
    struct sc_frame_reader r;
    struct sc_frame_msg m;
    size_t n = 0;
    int count;

    /* A valid PING, then 1 and 2 bytes of a next message header. */
    body[n++] = SC_FRAME_VERSION;
    n += sc_frame_put_nonce(body + n, SC_MSG_PING, 5);
    body[n] = SC_MSG_PONG;
    body[n + 1] = 0;
    body[n + 2] = 8;
    assert_int_equal(read_all(body, n + 1, 100, &count), SC_EFORMAT);
    assert_int_equal(count, 1);
    assert_int_equal(read_all(body, n + 2, 100, &count), SC_EFORMAT);
    assert_int_equal(count, 1);
    /* Whole header, body cut at every length short of 8. */
    for (size_t cut = 0; cut < 8; cut++) {
        memset(body + n + 3, 0x55, 8);
        assert_int_equal(read_all(body, n + 3 + cut, 100, &count), SC_EFORMAT);
        assert_int_equal(count, 1);
    }
    assert_int_equal(read_all(body, n + 3 + 8, 100, &count), 0);
    assert_int_equal(count, 2);

    /* Each message kind announcing one byte more than the body holds. */
    static const uint8_t types[] = {SC_MSG_RELAY, SC_MSG_PING, SC_MSG_PONG, SC_MSG_ACCEPT,
                                    SC_MSG_REJECT, SC_MSG_CLOSE, SC_MSG_REKEY, SC_MSG_PADDING};
    for (size_t i = 0; i < sizeof types; i++) {
        size_t len = types[i] == SC_MSG_RELAY    ? 30
                     : types[i] == SC_MSG_ACCEPT ? SC_ACCEPT_BYTES
                     : types[i] == SC_MSG_PING || types[i] == SC_MSG_PONG ? 8
                     : types[i] == SC_MSG_REKEY  ? 0
                                                 : 2;
        size_t full = one_message(body, types[i], len + 1, 0);
        assert_int_equal(sc_frame_reader_init(&r, body, full - 1, 1000), 0);
        assert_int_equal(sc_frame_next(&r, &m), SC_EFORMAT);
    }

    /* A length that points far beyond the body. */
    n = one_message(body, SC_MSG_PADDING, 4, 0);
    body[2] = 0xff;
    body[3] = 0xff;
    assert_int_equal(read_all(body, n, 100, &count), SC_EFORMAT);
    assert_int_equal(count, 0);
}

static void test_reader_unknown_type(void **state)
{
    (void)state;
    static const uint8_t unknown[] = {0, 9, 10, 0x40, 0x80, 0xff};
    for (size_t i = 0; i < sizeof unknown; i++) {
        assert_int_equal(read_one(unknown[i], 0, 0), SC_EFORMAT);
        assert_int_equal(read_one(unknown[i], 8, 0), SC_EFORMAT);
    }
    /* Unknown after a known message. */
    uint8_t body[32];
    size_t n = 0;
    int count;
    body[n++] = SC_FRAME_VERSION;
    n += sc_frame_put_nonce(body + n, SC_MSG_PING, 1);
    n += sc_frame_put_msg_header(body + n, (enum sc_msg_type)9, 0);
    assert_int_equal(read_all(body, n, 100, &count), SC_EFORMAT);
    assert_int_equal(count, 1);
}

static void test_reader_wrong_lengths(void **state)
{
    (void)state;
    /* Fixed-size messages: every length but the right one is refused. */
    static const struct {
        uint8_t type;
        size_t len;
    } fixed[] = {{SC_MSG_PING, 8}, {SC_MSG_PONG, 8}, {SC_MSG_REJECT, 2},
                 {SC_MSG_CLOSE, 2}, {SC_MSG_ACCEPT, SC_ACCEPT_BYTES}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        /* (ACCEPT filled with 0x02 reads as priority 2, max_message 0x02020202:
         * still refused, see test_reader_accept_values) */
        for (size_t len = 0; len <= 20; len++)
            assert_int_equal(read_one(fixed[i].type, len, 2),
                             len == fixed[i].len && fixed[i].type != SC_MSG_ACCEPT ? 0 : SC_EFORMAT);
        assert_int_equal(read_one(fixed[i].type, 300, 0), SC_EFORMAT);
        assert_int_equal(read_one(fixed[i].type, SC_FRAME_BODY_MAX_BYTES - 4, 0), SC_EFORMAT);
    }
}

static void test_reader_accept_reserved(void **state)
{
    (void)state;
    uint8_t body[32];
    struct sc_accept_info acc = {.priority = 2, .max_message_bytes = 64, .heartbeat_interval_ms = 1};
    struct sc_frame_reader r;
    struct sc_frame_msg m;
    size_t n = 1;

    body[0] = SC_FRAME_VERSION;
    n += sc_frame_put_accept(body + n, &acc);
    for (unsigned v = 0; v < 256; v++) {
        body[1 + SC_MSG_HEADER_BYTES + 1] = (uint8_t)v; /* the reserved byte */
        assert_int_equal(sc_frame_reader_init(&r, body, n, 0), 0);
        assert_int_equal(sc_frame_next(&r, &m), v == 0 ? 1 : SC_EFORMAT);
    }
}

/* ACCEPT: only the five priority classes and a max_message of 64..65497. */
static uint32_t accept_result(uint8_t priority, uint32_t max_message)
{
    uint8_t body[32];
    struct sc_accept_info acc = {.priority = priority, .max_message_bytes = max_message};
    struct sc_frame_reader r;
    struct sc_frame_msg m;
    size_t n = 1;
    body[0] = SC_FRAME_VERSION;
    n += sc_frame_put_accept(body + n, &acc);
    assert_int_equal(sc_frame_reader_init(&r, body, n, 0), 0);
    return (uint32_t)sc_frame_next(&r, &m);
}

static void test_reader_accept_values(void **state)
{
    (void)state;
    for (unsigned p = 0; p < 256; p++)
        assert_int_equal(accept_result((uint8_t)p, 1000),
                         p == 2 || p == 4 || p == 6 || p == 8 || p == 10 ? 1 : (uint32_t)SC_EFORMAT);
    assert_int_equal(accept_result(6, 0), (uint32_t)SC_EFORMAT);
    assert_int_equal(accept_result(6, SC_MESSAGE_PAYLOAD_MIN_BYTES - 1), (uint32_t)SC_EFORMAT);
    assert_int_equal(accept_result(6, SC_MESSAGE_PAYLOAD_MIN_BYTES), 1);
    assert_int_equal(accept_result(6, SC_MESSAGE_PAYLOAD_MAX_BYTES), 1);
    assert_int_equal(accept_result(6, SC_MESSAGE_PAYLOAD_MAX_BYTES + 1), (uint32_t)SC_EFORMAT);
    assert_int_equal(accept_result(6, UINT32_MAX), (uint32_t)SC_EFORMAT);
}

/* A RELAY must still be allowed to cross the link it arrives on. */
static void test_reader_relay_hop_limit(void **state)
{
    (void)state;
    uint8_t body[64];
    int count;
    for (unsigned hop = 0; hop < 3; hop++) {
        size_t n = 1;
        body[0] = SC_FRAME_VERSION;
        n += sc_frame_put_relay_header(body + n, id1, (uint8_t)hop, 0, 0);
        assert_int_equal(read_all(body, n, 100, &count), hop == 0 ? SC_EFORMAT : 0);
    }
}

static void test_reader_rekey(void **state)
{
    (void)state;
    uint8_t body[64];
    size_t n;
    int count;

    /* REKEY alone, last. */
    n = one_message(body, SC_MSG_REKEY, 0, 0);
    assert_int_equal(read_all(body, n, 0, &count), 0);
    assert_int_equal(count, 1);

    /* REKEY followed by anything: not last. */
    n += sc_frame_put_nonce(body + n, SC_MSG_PING, 1);
    assert_int_equal(read_all(body, n, 0, &count), SC_EFORMAT);
    assert_int_equal(count, 0);
    n = one_message(body, SC_MSG_REKEY, 0, 0);
    n += sc_frame_put_msg_header(body + n, SC_MSG_PADDING, 0);
    assert_int_equal(read_all(body, n, 0, &count), SC_EFORMAT);
    n = one_message(body, SC_MSG_REKEY, 0, 0);
    n += sc_frame_put_msg_header(body + n, SC_MSG_REKEY, 0);
    assert_int_equal(read_all(body, n, 0, &count), SC_EFORMAT);

    /* REKEY with a body, last or not. */
    for (size_t len = 1; len < 20; len++) {
        n = one_message(body, SC_MSG_REKEY, len, 0);
        assert_int_equal(read_all(body, n, 0, &count), SC_EFORMAT);
        assert_int_equal(count, 0);
    }

    /* After other messages, REKEY last is fine. */
    n = 0;
    body[n++] = SC_FRAME_VERSION;
    n += sc_frame_put_nonce(body + n, SC_MSG_PING, 1);
    n += sc_frame_put_reason(body + n, SC_MSG_CLOSE, 1);
    n += sc_frame_put_msg_header(body + n, SC_MSG_REKEY, 0);
    assert_int_equal(read_all(body, n, 0, &count), 0);
    assert_int_equal(count, 3);
}

static void test_reader_relay_short(void **state)
{
    (void)state;
    for (size_t len = 0; len < SC_RELAY_HEADER_BYTES; len++)
        assert_int_equal(read_one(SC_MSG_RELAY, len, 0x33), SC_EFORMAT);
    /* Exactly the relay header: an empty payload. */
    uint8_t body[32];
    struct sc_frame_reader r;
    struct sc_frame_msg m;
    size_t n = one_message(body, SC_MSG_RELAY, SC_RELAY_HEADER_BYTES, 0x33);
    assert_int_equal(sc_frame_reader_init(&r, body, n, 0), 0);
    assert_int_equal(sc_frame_next(&r, &m), 1);
    assert_int_equal(m.type, SC_MSG_RELAY);
    assert_int_equal(m.u.relay.len, 0);
    assert_int_equal(m.u.relay.hop_limit, 0x33);
    assert_int_equal(sc_frame_next(&r, &m), 0);
}

static void test_reader_relay_max_payload(void **state)
{
    (void)state;
    static uint8_t body[SC_FRAME_BODY_MAX_BYTES], wire[WIRE_CAP], got[SC_FRAME_BODY_MAX_BYTES];
    struct sc_frame_reader r;
    struct sc_frame_msg m;
    size_t n;

    /* Small limit: limit accepted, limit + 1 refused as too big. */
    for (size_t max = 0; max < 40; max += 13) {
        n = 1 + sc_frame_put_relay_header(body + 1, id1, 1, 0, max);
        body[0] = SC_FRAME_VERSION;
        memset(body + n, 0x5a, max);
        n += max;
        assert_int_equal(sc_frame_reader_init(&r, body, n, max), 0);
        assert_int_equal(sc_frame_next(&r, &m), 1);
        assert_int_equal(m.u.relay.len, max);
        assert_int_equal(sc_frame_reader_init(&r, body, n, max - (max > 0)), 0);
        assert_int_equal(sc_frame_next(&r, &m), max > 0 ? SC_ETOOBIG : 1);
    }

    /* The largest payload in the largest frame, sealed and opened. */
    struct pipe_end p;
    size_t got_len = 0;
    pipe_open(&p);
    n = 1 + sc_frame_put_relay_header(body + 1, id2, 3, SC_RELAY_FLAG_BROADCAST,
                                      SC_MESSAGE_PAYLOAD_MAX_BYTES);
    body[0] = SC_FRAME_VERSION;
    for (size_t i = 0; i < SC_MESSAGE_PAYLOAD_MAX_BYTES; i++)
        body[n + i] = (uint8_t)(i * 7);
    n += SC_MESSAGE_PAYLOAD_MAX_BYTES;
    assert_int_equal(n, SC_FRAME_BODY_MAX_BYTES);
    size_t wire_len = seal_frame(&p.tx, body, n, wire);
    assert_int_equal(wire_len, SC_FRAME_WIRE_MAX_BYTES);
    assert_int_equal(open_frame(&p.rx, wire, wire_len, got, &got_len), 0);
    assert_int_equal(sc_frame_reader_init(&r, got, got_len, SC_MESSAGE_PAYLOAD_MAX_BYTES), 0);
    assert_int_equal(sc_frame_next(&r, &m), 1);
    assert_int_equal(m.u.relay.len, SC_MESSAGE_PAYLOAD_MAX_BYTES);
    assert_memory_equal(m.u.relay.payload, body + n - SC_MESSAGE_PAYLOAD_MAX_BYTES,
                        SC_MESSAGE_PAYLOAD_MAX_BYTES);
    assert_int_equal(sc_frame_next(&r, &m), 0);
    assert_int_equal(sc_frame_reader_init(&r, got, got_len, SC_MESSAGE_PAYLOAD_MAX_BYTES - 1), 0);
    assert_int_equal(sc_frame_next(&r, &m), SC_ETOOBIG);
    pipe_close(&p);
}

/* PADDING takes any length, including the whole body. */
static void test_reader_padding(void **state)
{
    (void)state;
    static uint8_t body[SC_FRAME_BODY_MAX_BYTES];
    int count;

    size_t n = one_message(body, SC_MSG_PADDING, SC_FRAME_BODY_MAX_BYTES - 4, 0xee);
    assert_int_equal(read_all(body, n, 0, &count), 0);
    assert_int_equal(count, 1);
    /* Many small messages in one frame. */
    n = 1;
    body[0] = SC_FRAME_VERSION;
    for (int i = 0; i < 1000; i++)
        n += sc_frame_put_nonce(body + n, i % 2 ? SC_MSG_PING : SC_MSG_PONG, (uint64_t)i);
    assert_int_equal(read_all(body, n, 0, &count), 0);
    assert_int_equal(count, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_types),
        cmocka_unit_test(test_encoders_bytes),
        cmocka_unit_test(test_seal_header_bounds),
        cmocka_unit_test(test_open_header_bounds),
        cmocka_unit_test(test_flipped_header),
        cmocka_unit_test(test_flipped_body),
        cmocka_unit_test(test_replay_and_reorder),
        cmocka_unit_test(test_body_from_other_frame),
        cmocka_unit_test(test_reader_version),
        cmocka_unit_test(test_reader_empty),
        cmocka_unit_test(test_reader_truncated),
        cmocka_unit_test(test_reader_unknown_type),
        cmocka_unit_test(test_reader_wrong_lengths),
        cmocka_unit_test(test_reader_accept_reserved),
        cmocka_unit_test(test_reader_accept_values),
        cmocka_unit_test(test_reader_relay_hop_limit),
        cmocka_unit_test(test_reader_rekey),
        cmocka_unit_test(test_reader_relay_short),
        cmocka_unit_test(test_reader_relay_max_payload),
        cmocka_unit_test(test_reader_padding),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
