/* tests/tools/badpeer.c — a misbehaving initiator for integration tests.
 *
 * Runs the real link handshake (the pure state machine, blocking socket),
 * then breaks the protocol in one chosen way and reports what the responder
 * did: "closed reason=NAME" when it sent CLOSE/REJECT, then "eof" or
 * "timeout". Test tool only: never built into the product.
 *
 * usage: badpeer HOST PORT KEYFILE MODE [EXPECT_ID]
 * modes: ok garbage flip truncate oversize big-message unknown-type
 *        bad-version replay early-data bad-mac1
 * With SC_TEST_LAYER=xor it speaks through link-test's xor layer: every
 * byte it sends and receives is XORed with 0x5c. With SC_TEST_LAYER=ws it
 * first upgrades to WebSocket (path /relay) and then sends every write in
 * one masked binary frame and reads the payload of the server's frames
 * (the library's ws_http and ws_frame on wslay, over the blocking socket).
 * With SC_TEST_LAYER=tls it speaks TLS 1.3 (OpenSSL, blocking) offering
 * ALPN secirc/1+cb, and binds its handshake to the session, as link-test
 * --tls does. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "crypto/noise.h"
#include "link/frame.h"
#include "link/handshake.h"
#include "secirc/identity.h"
#include "transport/ws_frame.h"
#include "transport/ws_http.h"
#include "transport/tls.h"
#include "util/hex.h"
#include "util/time.h"

static int fd = -1;
static struct sc_noise_cipher tx, rx;
static uint8_t wire_key; /* SC_TEST_LAYER=xor: 0x5c, else 0 */
/* SC_TEST_LAYER=ws: the frame state; wire bytes in, payload out, our frames */
static struct sc_ws_conn *ws;
static struct evbuffer *ws_in, *ws_payload, *ws_out, *ws_got;
static bool ws_closed;
static SSL *ssl;         /* SC_TEST_LAYER=tls */

static void die(const char *what)
{
    printf("error %s\n", what);
    exit(2);
}

static ssize_t wire_send(const void *p, size_t len)
{
    if (!ssl)
        return send(fd, p, len, MSG_NOSIGNAL);
    int n = SSL_write(ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
    return n > 0 ? n : -1;
}

/* > 0 bytes, 0 end of stream, < 0 error or timeout */
static ssize_t wire_recv(void *p, size_t len)
{
    if (!ssl)
        return recv(fd, p, len, 0);
    int n = SSL_read(ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int e = SSL_get_error(ssl, n);
    /* close_notify, or the end of TCP without it */
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0) ||
        (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING))
        return 0;
    return -1;
}

/* The end of our sending direction (a TLS close_notify first). */
static void wire_shutdown(void)
{
    if (ssl)
        SSL_shutdown(ssl);
    shutdown(fd, SHUT_WR);
}

/* TLS over the connected socket; the binding the link handshake uses. */
static void tls_start(const char *host, uint8_t binding[32])
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    static const unsigned char alpn[] = "\x0b" SC_TLS_ALPN_SECIRC_CB;
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) || !(ssl = SSL_new(ctx)) ||
        SSL_set_alpn_protos(ssl, alpn, sizeof alpn - 1) != 0 || SSL_set_fd(ssl, fd) != 1)
        die("tls setup");
    SSL_set_tlsext_host_name(ssl, host);
    SSL_CTX_free(ctx); /* the SSL keeps its reference */
    if (SSL_connect(ssl) != 1) {
        printf("tls_failed\n");
        exit(1);
    }
    static const char label[] = SC_TLS_BINDING_LABEL;
    if (SSL_export_keying_material(ssl, binding, 32, label, sizeof label - 1, NULL, 0, 0) != 1)
        die("tls exporter");
}

static void wire_xor(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] ^= wire_key;
}


static void send_raw(const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = wire_send(p, len);
        if (n <= 0) {
            printf("send_failed errno=%d\n", errno);
            exit(1);
        }
        p += n;
        len -= (size_t)n;
    }
}

/* Sends what ws_out holds (our frames). With `quiet`, a failure is not
 * reported: the answers the protocol gives (pong, close) may meet a socket
 * this tool already shut down for writing. */
static void ws_flush_as(bool quiet)
{
    size_t n = evbuffer_get_length(ws_out);
    const uint8_t *p = n ? evbuffer_pullup(ws_out, (ev_ssize_t)n) : NULL;
    if (!quiet && n)
        send_raw(p, n);
    else if (n)
        (void)!wire_send(p, n);
    evbuffer_drain(ws_out, n);
}

static void ws_flush(void) { ws_flush_as(false); }

static void send_all(const void *buf, size_t len)
{
    static uint8_t wire[SC_FRAME_WIRE_MAX_BYTES + 1024];
    if (len > sizeof wire)
        die("send too big");
    if (ws) {
        evbuffer_add(ws_payload, buf, len);
        if (sc_ws_conn_write(ws, ws_payload, len, ws_out) != 0)
            die("ws frame");
        ws_flush();
        return;
    }
    memcpy(wire, buf, len);
    wire_xor(wire, len);
    send_raw(wire, len);
}

/* 0 ok, 1 eof, 2 timeout/error: from the payload of the server's frames. */
static int ws_recv_all(uint8_t *p, size_t len)
{
    struct evbuffer *got = ws_got;
    while (evbuffer_get_length(got) < len) {
        if (ws_closed)
            return 1;
        uint8_t chunk[16384];
        ssize_t n = wire_recv(chunk, sizeof chunk);
        if (n == 0)
            return 1;
        if (n < 0)
            return 2;
        evbuffer_add(ws_in, chunk, (size_t)n);
        int r = sc_ws_conn_read(ws, ws_in, got, -1, ws_out);
        ws_flush_as(true);
        if (r != SC_WS_READ_OPEN)
            ws_closed = true;
    }
    evbuffer_remove(got, p, len);
    return 0;
}

/* 0 ok, 1 eof, 2 timeout/error */
static int recv_all(void *buf, size_t len)
{
    uint8_t *p = buf;
    if (ws)
        return ws_recv_all(p, len);
    while (len) {
        ssize_t n = wire_recv(p, len);
        if (n == 0)
            return 1;
        if (n < 0)
            return 2;
        wire_xor(p, (size_t)n);
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Builds and seals a frame from `body` (version byte included by caller). */
static size_t seal_frame(const uint8_t *body, size_t len, uint8_t *out)
{
    size_t n;
    if (sc_frame_seal_header(&tx, len, out) != 0 ||
        sc_noise_encrypt(&tx, NULL, 0, body, len, out + SC_FRAME_HEADER_BYTES, len + 16, &n) != 0)
        die("seal");
    return SC_FRAME_HEADER_BYTES + n;
}

static size_t relay_body(uint8_t *body, size_t payload_len)
{
    size_t n = 0;
    body[n++] = SC_FRAME_VERSION;
    uint8_t id[SC_MESSAGE_ID_BYTES] = {1, 2, 3};
    n += sc_frame_put_relay_header(body + n, id, 4, 0, payload_len);
    memset(body + n, 'x', payload_len);
    return n + payload_len;
}

/* Reads frames until EOF or timeout; prints what the responder said. */
static int read_verdicts(void)
{
    static uint8_t buf[SC_FRAME_WIRE_MAX_BYTES];
    for (;;) {
        uint8_t hdr[SC_FRAME_HEADER_BYTES];
        int r = recv_all(hdr, sizeof hdr);
        if (r == 1) {
            printf("eof\n");
            return 0;
        }
        if (r == 2) {
            printf("timeout\n");
            return 0;
        }
        size_t len;
        if (sc_frame_open_header(&rx, hdr, &len) != 0)
            die("open header");
        if (recv_all(buf, len + 16) != 0)
            die("short frame");
        size_t n;
        if (sc_noise_decrypt(&rx, NULL, 0, buf, len + 16, buf, len + 16, &n) != 0)
            die("open body");
        struct sc_frame_reader rd;
        struct sc_frame_msg m;
        if (sc_frame_reader_init(&rd, buf, n, SC_MESSAGE_PAYLOAD_MAX_BYTES) != 0)
            die("frame");
        bool rekey = false;
        int k;
        while ((k = sc_frame_next(&rd, &m)) == 1) {
            if (m.type == SC_MSG_CLOSE || m.type == SC_MSG_REJECT)
                printf("closed reason=%s by=peer\n", sc_reason_name(m.u.reason));
            else if (m.type == SC_MSG_ACCEPT)
                printf("accepted priority=%u\n", m.u.accept.priority);
            else if (m.type == SC_MSG_REKEY)
                rekey = true;
        }
        if (k < 0)
            die("frame parse");
        if (rekey && sc_noise_rekey(&rx) != 0)
            die("rekey");
        fflush(stdout);
    }
}

/* The upgrade by hand on the blocking socket; bytes after the 101 stay in
 * ws_in as the first frames. */
static void ws_upgrade(const char *host, uint16_t port)
{
    uint8_t nonce[SC_WS_KEY_RANDOM_BYTES];
    char key[SC_WS_KEY_SIZE], accept[SC_WS_ACCEPT_SIZE], req[1024];
    randombytes_buf(nonce, sizeof nonce);
    sc_ws_client_key(nonce, key);
    struct sc_ws_client_params p = {.host = host, .port = port, .subprotocol = true};
    size_t n;
    if (sc_ws_accept_key(key, accept) != 0 || sc_ws_client_request(&p, key, req, sizeof req, &n) != 0)
        die("ws request");
    send_raw((const uint8_t *)req, n);
    static uint8_t head[SC_HTTP_HEAD_MAX_BYTES];
    size_t have = 0;
    for (;;) {
        ssize_t r = wire_recv(head + have, sizeof head - have);
        if (r <= 0) {
            printf(r == 0 ? "eof\n" : "timeout\n");
            exit(0);
        }
        have += (size_t)r;
        struct sc_http_reply rep = {0};
        int k = sc_ws_client_parse(head, have, accept, true, &rep);
        if (k == 0 && have < sizeof head)
            continue;
        if (k != 1)
            die("ws upgrade refused");
        evbuffer_add(ws_in, head + rep.head_len, have - rep.head_len);
        if (sc_ws_conn_read(ws, ws_in, ws_got, -1, ws_out) != SC_WS_READ_OPEN)
            ws_closed = true;
        ws_flush();
        return;
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: badpeer HOST PORT KEYFILE MODE [EXPECT_ID]\n");
        return 2;
    }
    const char *mode = argv[4];
    const char *layer = getenv("SC_TEST_LAYER");
    bool use_ws = layer && strcmp(layer, "ws") == 0, tls = layer && strcmp(layer, "tls") == 0;
    if (layer && strcmp(layer, "xor") == 0)
        wire_key = 0x5c;
    else if (layer && layer[0] && !use_ws && !tls)
        die("SC_TEST_LAYER: only xor, ws or tls");
    struct sc_identity *id;
    char why[256];
    if (sc_identity_load(argv[3], &id, why, sizeof why) != 0)
        die(why);
    struct sc_link_key *lk;
    if (sc_link_key_generate(id, sc_unix_s() + 3600, &lk) != 0)
        die("link key");
    struct sc_hs_config hc = {.initiator = true, .identity = id, .link_key = lk,
                              .max_message_bytes = SC_MESSAGE_PAYLOAD_MAX_BYTES};
    if (argc > 5) {
        if (sc_relay_id_from_hex(argv[5], hc.expected_id) != 0)
            die("expect id");
        hc.has_expected_id = true;
    }
    fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 || connect(fd, (void *)&sa, sizeof sa) != 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (use_ws) {
        ws_in = evbuffer_new();
        ws_payload = evbuffer_new();
        ws_out = evbuffer_new();
        ws_got = evbuffer_new();
        if (!ws_in || !ws_payload || !ws_out || !ws_got || sc_ws_conn_new(SC_ROLE_CLIENT, 0, &ws) != 0)
            die("ws");
        ws_upgrade(argv[1], (uint16_t)atoi(argv[2]));
    }
    uint8_t binding[32];
    if (tls) {
        tls_start(argv[1], binding);
        hc.binding = binding;
        hc.binding_len = sizeof binding;
    }
    struct sc_handshake hs;
    if (sc_hs_init(&hs, &hc) != 0)
        die("hs init");

    uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES], m3[SC_HS_MSG3_BYTES];
    if (sc_hs_write_msg1(&hs, m1) != 0)
        die("msg1");
    if (strcmp(mode, "bad-mac1") == 0)
        m1[SC_HS_MSG1_BYTES - 1] ^= 1;
    send_all(m1, sizeof m1);
    int r = recv_all(m2, sizeof m2);
    if (r) {
        printf(r == 1 ? "eof\n" : "timeout\n");
        return 0;
    }
    if (sc_hs_read_msg2(&hs, m2, sc_unix_s()) != 0) {
        printf("handshake_failed reason=%s\n", sc_reason_name(hs.reason));
        return 1;
    }
    if (sc_hs_write_msg3(&hs, m3) != 0)
        die("msg3");
    uint8_t hash[SC_NOISE_HASH_BYTES];
    if (sc_hs_finish(&hs, &tx, &rx, hash) != 0)
        die("finish");
    static uint8_t body[SC_FRAME_BODY_MAX_BYTES + 64], frame[SC_FRAME_WIRE_MAX_BYTES + 64];
    if (strcmp(mode, "early-data") == 0) {
        uint8_t both[SC_HS_MSG3_BYTES + 256];
        memcpy(both, m3, sizeof m3);
        size_t n = seal_frame(body, relay_body(body, 10), both + sizeof m3);
        send_all(both, sizeof m3 + n);
        return read_verdicts();
    }
    send_all(m3, sizeof m3);

    /* Wait for ACCEPT (first frame). */
    uint8_t hdr[SC_FRAME_HEADER_BYTES];
    size_t len, n;
    if (recv_all(hdr, sizeof hdr) != 0 || sc_frame_open_header(&rx, hdr, &len) != 0 ||
        recv_all(frame, len + 16) != 0 ||
        sc_noise_decrypt(&rx, NULL, 0, frame, len + 16, frame, len + 16, &n) != 0)
        die("no accept");
    struct sc_frame_reader rd;
    struct sc_frame_msg m;
    if (sc_frame_reader_init(&rd, frame, n, SC_MESSAGE_PAYLOAD_MAX_BYTES) != 0 ||
        sc_frame_next(&rd, &m) != 1)
        die("accept frame");
    if (m.type == SC_MSG_REJECT) {
        printf("rejected reason=%s\n", sc_reason_name(m.u.reason));
        return 0;
    }
    if (m.type != SC_MSG_ACCEPT)
        die("first message not ACCEPT");
    printf("accepted priority=%u\n", m.u.accept.priority);
    fflush(stdout);

    if (strcmp(mode, "ok") == 0) {
        n = seal_frame(body, relay_body(body, 5), frame);
        send_all(frame, n);
        wire_shutdown();
    } else if (strcmp(mode, "garbage") == 0) {
        uint8_t junk[200];
        randombytes_buf(junk, sizeof junk);
        send_all(junk, sizeof junk);
    } else if (strcmp(mode, "flip") == 0) {
        n = seal_frame(body, relay_body(body, 100), frame);
        frame[SC_FRAME_HEADER_BYTES + 40] ^= 0x10;
        send_all(frame, n);
    } else if (strcmp(mode, "truncate") == 0) {
        n = seal_frame(body, relay_body(body, 100), frame);
        send_all(frame, n / 2);
        wire_shutdown();
    } else if (strcmp(mode, "oversize") == 0) {
        /* A sealed length over the maximum: only a keyed peer can do this. */
        uint8_t raw[2] = {0xff, 0xff};
        if (sc_noise_encrypt(&tx, NULL, 0, raw, 2, frame, sizeof frame, &n) != 0)
            die("seal raw");
        send_all(frame, n);
    } else if (strcmp(mode, "big-message") == 0) {
        /* Ignores the responder's announced max_message_bytes. */
        n = seal_frame(body, relay_body(body, 4000), frame);
        send_all(frame, n);
    } else if (strcmp(mode, "unknown-type") == 0) {
        size_t b = 0;
        body[b++] = SC_FRAME_VERSION;
        b += sc_frame_put_msg_header(body + b, (enum sc_msg_type)99, 4);
        memset(body + b, 0, 4);
        n = seal_frame(body, b + 4, frame);
        send_all(frame, n);
    } else if (strcmp(mode, "bad-version") == 0) {
        size_t b = relay_body(body, 5);
        body[0] = 2;
        n = seal_frame(body, b, frame);
        send_all(frame, n);
    } else if (strcmp(mode, "replay") == 0) {
        n = seal_frame(body, relay_body(body, 5), frame);
        send_all(frame, n);
        send_all(frame, n);
    } else {
        die("unknown mode");
    }
    int rc = read_verdicts();
    sc_noise_cipher_clear(&tx);
    sc_noise_cipher_clear(&rx);
    sc_link_key_free(lk);
    sc_identity_free(id);
    SSL_free(ssl);
    close(fd);
    return rc;
}
