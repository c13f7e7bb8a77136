/* test_websocket.c — the websocket layer (transport/websocket.c) with a
 * client and a server back to back over an in-memory bufferevent pair:
 * upgrade, bytes both ways, close codes chosen by the stream's user, a
 * refused upgrade, the http_connect layer against a fake proxy; and the
 * frame engine (transport/ws_frame.c) over evbuffers: fragments
 * reassembled with pings between them, ping/pong, close codes, 1009 over
 * the size bound, 1003 for text, 1002 for masking, RSV bits and bad
 * headers, and the read limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "secirc/limits.h"
#include "secirc/log.h"
#include "transport/http_connect.h"
#include "transport/websocket.h"
#include "transport/ws_frame.h"
#include "util/time.h"

/* ---- frames by hand ------------------------------------------------------------ */

/* One frame into out; returns its length. A client's frames are masked. */
static size_t frame(uint8_t *out, int fin, int rsv, int opcode, const uint8_t *payload, size_t n,
                    int masked)
{
    size_t p = 0;
    out[p++] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | opcode);
    uint8_t mbit = masked ? 0x80 : 0;
    if (n < 126) {
        out[p++] = (uint8_t)(mbit | n);
    } else if (n < 65536) {
        out[p++] = (uint8_t)(mbit | 126);
        out[p++] = (uint8_t)(n >> 8);
        out[p++] = (uint8_t)n;
    } else {
        out[p++] = (uint8_t)(mbit | 127);
        for (int i = 7; i >= 0; i--)
            out[p++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    if (masked) {
        memcpy(out + p, key, 4);
        p += 4;
    }
    for (size_t i = 0; i < n && payload; i++)
        out[p + i] = masked ? payload[i] ^ key[i % 4] : payload[i];
    return p + n;
}

struct conns {
    struct sc_ws_conn *client, *server;
    struct evbuffer *c2s, *s2c, *payload, *tmp;
};

static void conns_new(struct conns *c)
{
    assert_int_equal(sc_ws_conn_new(SC_ROLE_CLIENT, 0, &c->client), 0);
    assert_int_equal(sc_ws_conn_new(SC_ROLE_SERVER, 0, &c->server), 0);
    c->c2s = evbuffer_new();
    c->s2c = evbuffer_new();
    c->payload = evbuffer_new();
    c->tmp = evbuffer_new();
}

static void conns_free(struct conns *c)
{
    sc_ws_conn_free(c->client);
    sc_ws_conn_free(c->server);
    evbuffer_free(c->c2s);
    evbuffer_free(c->s2c);
    evbuffer_free(c->payload);
    evbuffer_free(c->tmp);
}

/* Feeds hand-made bytes to the server; returns what its read says. */
static int feed_server(struct conns *c, const uint8_t *bytes, size_t n)
{
    evbuffer_add(c->c2s, bytes, n);
    return sc_ws_conn_read(c->server, c->c2s, c->payload, -1, c->s2c);
}

/* The close code the server's answer in s2c carries, as the client reads it. */
static uint16_t close_code_to_client(struct conns *c)
{
    int r = sc_ws_conn_read(c->client, c->s2c, c->tmp, -1, c->c2s);
    assert_int_equal(r, SC_WS_READ_CLOSED);
    struct sc_ws_conn_info info;
    sc_ws_conn_get_info(c->client, &info);
    return info.close_received;
}

static void test_frames_both_ways(void **state)
{
    (void)state;
    struct conns c;
    conns_new(&c);
    static uint8_t big[200000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    evbuffer_add(c.tmp, big, sizeof big);
    assert_int_equal(sc_ws_conn_write(c.client, c.tmp, SIZE_MAX, c.c2s), 0);
    assert_int_equal(evbuffer_get_length(c.tmp), 0);
    /* 200000 bytes in frames of at most 64 KiB: 4 frames, masked (14-byte headers) */
    assert_int_equal(evbuffer_get_length(c.c2s), sizeof big + 3 * 14 + 8);
    assert_int_equal(sc_ws_conn_read(c.server, c.c2s, c.payload, -1, c.s2c), SC_WS_READ_OPEN);
    assert_int_equal(evbuffer_get_length(c.payload), sizeof big);
    assert_memory_equal(evbuffer_pullup(c.payload, -1), big, sizeof big);
    evbuffer_drain(c.payload, sizeof big);
    /* the server's frames are not masked: header 10 + payload */
    evbuffer_add(c.tmp, big, 1000);
    assert_int_equal(sc_ws_conn_write(c.server, c.tmp, SIZE_MAX, c.s2c), 0);
    assert_int_equal(evbuffer_get_length(c.s2c), 1000 + 4);
    assert_int_equal(sc_ws_conn_read(c.client, c.s2c, c.payload, -1, c.c2s), SC_WS_READ_OPEN);
    assert_memory_equal(evbuffer_pullup(c.payload, -1), big, 1000);
    conns_free(&c);
}

static void test_fragments_with_pings(void **state)
{
    (void)state;
    struct conns c;
    conns_new(&c);
    uint8_t wire[512];
    size_t n = 0;
    n += frame(wire + n, 0, 0, 0x2, (const uint8_t *)"frag", 4, 1);
    n += frame(wire + n, 1, 0, 0x9, (const uint8_t *)"p1", 2, 1); /* ping mid-message */
    n += frame(wire + n, 0, 0, 0x0, (const uint8_t *)"men", 3, 1);
    n += frame(wire + n, 1, 0, 0x0, (const uint8_t *)"ted", 3, 1);
    /* byte by byte: the reassembly must not depend on how bytes arrive */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(feed_server(&c, wire + i, 1), SC_WS_READ_OPEN);
    assert_int_equal(evbuffer_get_length(c.payload), 10);
    assert_memory_equal(evbuffer_pullup(c.payload, -1), "fragmented", 10);
    /* the ping got its pong, with the ping's data, unmasked */
    uint8_t pong[4];
    assert_int_equal(evbuffer_get_length(c.s2c), 4);
    evbuffer_copyout(c.s2c, pong, 4);
    assert_memory_equal(pong, "\x8a\x02p1", 4);
    conns_free(&c);
}

static void test_ping_pong(void **state)
{
    (void)state;
    struct conns c;
    conns_new(&c);
    assert_int_equal(sc_ws_conn_ping(c.client, (const uint8_t *)"hello", 5, c.c2s), 0);
    assert_int_equal(sc_ws_conn_read(c.server, c.c2s, c.payload, -1, c.s2c), SC_WS_READ_OPEN);
    assert_int_equal(sc_ws_conn_read(c.client, c.s2c, c.tmp, -1, c.c2s), SC_WS_READ_OPEN);
    struct sc_ws_conn_info info;
    sc_ws_conn_get_info(c.client, &info);
    assert_int_equal(info.pongs_received, 1);
    assert_int_equal(evbuffer_get_length(c.payload) + evbuffer_get_length(c.tmp), 0);
    uint8_t too_long[126] = {0};
    assert_int_equal(sc_ws_conn_ping(c.client, too_long, sizeof too_long, c.c2s), SC_EINVAL);
    conns_free(&c);
}

static void test_close_handshake_codes(void **state)
{
    (void)state;
    const uint16_t codes[] = {1000, 1001, 1002, 1008, 1009, 1011};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        struct conns c;
        conns_new(&c);
        sc_ws_conn_close(c.client, codes[i], c.c2s);
        sc_ws_conn_close(c.client, 1000, c.c2s); /* a second close says nothing */
        assert_int_equal(sc_ws_conn_read(c.server, c.c2s, c.payload, -1, c.s2c), SC_WS_READ_CLOSED);
        struct sc_ws_conn_info info;
        sc_ws_conn_get_info(c.server, &info);
        assert_int_equal(info.close_received, codes[i]);
        assert_int_equal(info.close_sent, codes[i]); /* the echo RFC 6455 5.5.1 asks for */
        assert_int_equal(close_code_to_client(&c), codes[i]);
        /* after its close nothing more goes out */
        evbuffer_add(c.tmp, "x", 1);
        assert_int_equal(sc_ws_conn_write(c.server, c.tmp, SIZE_MAX, c.s2c), SC_ECLOSED);
        conns_free(&c);
    }
}

static void test_too_big_is_1009(void **state)
{
    (void)state;
    /* one frame over the bound: refused from its header */
    struct conns c;
    conns_new(&c);
    uint8_t head[16] = {0};
    size_t n = frame(head, 1, 0, 0x2, NULL, SC_WS_MESSAGE_MAX_BYTES + 1, 1);
    n -= SC_WS_MESSAGE_MAX_BYTES; /* the header and one byte: wslay starts a frame at its first byte */
    assert_int_equal(feed_server(&c, head, n), SC_ETOOBIG);
    assert_int_equal(evbuffer_get_length(c.payload), 0);
    assert_int_equal(close_code_to_client(&c), 1009);
    conns_free(&c);

    /* fragments each under it, together over it */
    conns_new(&c);
    static uint8_t wire[2 * 40100], part[40000];
    n = frame(wire, 0, 0, 0x2, part, sizeof part, 1);
    n += frame(wire + n, 1, 0, 0x0, part, sizeof part, 1);
    assert_int_equal(feed_server(&c, wire, n), SC_ETOOBIG);
    struct sc_ws_conn_info info;
    sc_ws_conn_get_info(c.server, &info);
    assert_string_equal(info.why, "message too big");
    assert_int_equal(close_code_to_client(&c), 1009);
    /* once failed it reads nothing more */
    assert_int_equal(feed_server(&c, wire, 10), SC_ETOOBIG);
    assert_int_equal(evbuffer_get_length(c.c2s), 0);
    conns_free(&c);

    /* exactly at the bound is fine */
    conns_new(&c);
    static uint8_t max_wire[SC_WS_MESSAGE_MAX_BYTES + 16], max_msg[SC_WS_MESSAGE_MAX_BYTES];
    n = frame(max_wire, 1, 0, 0x2, max_msg, sizeof max_msg, 1);
    assert_int_equal(feed_server(&c, max_wire, n), SC_WS_READ_OPEN);
    assert_int_equal(evbuffer_get_length(c.payload), SC_WS_MESSAGE_MAX_BYTES);
    conns_free(&c);
}

/* A frame the server must refuse, and the code its close carries. */
static void refused(const uint8_t *bytes, size_t n, int err, uint16_t code)
{
    struct conns c;
    conns_new(&c);
    assert_int_equal(feed_server(&c, bytes, n), err);
    assert_int_equal(evbuffer_get_length(c.payload), 0);
    assert_int_equal(close_code_to_client(&c), code);
    conns_free(&c);
}

static void test_protocol_errors(void **state)
{
    (void)state;
    uint8_t f[64];
    refused(f, frame(f, 1, 0, 0x1, (const uint8_t *)"text", 4, 1), SC_EVERSION, 1003);
    refused(f, frame(f, 1, 0, 0x2, (const uint8_t *)"bare", 4, 0), SC_EFORMAT, 1002); /* unmasked */
    refused(f, frame(f, 1, 4, 0x2, (const uint8_t *)"rsv1", 4, 1), SC_EFORMAT, 1002); /* deflate bit */
    refused(f, frame(f, 1, 0, 0x3, (const uint8_t *)"op3", 3, 1), SC_EFORMAT, 1002); /* reserved opcode */
    refused(f, frame(f, 1, 0, 0x0, (const uint8_t *)"cont", 4, 1), SC_EFORMAT, 1002); /* no start */
    refused(f, frame(f, 0, 0, 0x9, (const uint8_t *)"frag", 4, 1), SC_EFORMAT, 1002); /* fragmented ping */
    /* a 16-bit length for 5 bytes (not minimal): malformed header, still a 1002 */
    const uint8_t long_len[] = {0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4, 'a', 'b', 'c', 'd', 'e'};
    refused(long_len, sizeof long_len, SC_EFORMAT, 1002);
    /* a 64-bit length with the top bit set */
    const uint8_t huge[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    refused(huge, sizeof huge, SC_EFORMAT, 1002);

    /* the client refuses a masked frame from the server */
    struct conns c;
    conns_new(&c);
    size_t n = frame(f, 1, 0, 0x2, (const uint8_t *)"mask", 4, 1);
    evbuffer_add(c.s2c, f, n);
    assert_int_equal(sc_ws_conn_read(c.client, c.s2c, c.payload, -1, c.c2s), SC_EFORMAT);
    assert_int_equal(sc_ws_conn_read(c.server, c.c2s, c.tmp, -1, c.s2c), SC_WS_READ_CLOSED);
    struct sc_ws_conn_info info;
    sc_ws_conn_get_info(c.server, &info);
    assert_int_equal(info.close_received, 1002);
    conns_free(&c);
}

static void test_read_limit(void **state)
{
    (void)state;
    struct conns c;
    conns_new(&c);
    static uint8_t wire[3 * 20100], part[20000];
    size_t n = 0;
    for (int i = 0; i < 3; i++)
        n += frame(wire + n, 1, 0, 0x2, part, sizeof part, 1);
    evbuffer_add(c.c2s, wire, n);
    assert_int_equal(sc_ws_conn_read(c.server, c.c2s, c.payload, 5000, c.s2c), SC_WS_READ_OPEN);
    size_t got = evbuffer_get_length(c.payload);
    assert_true(got >= 5000 && got <= 5000 + 4096);
    assert_true(evbuffer_get_length(c.c2s) > 0); /* the rest waits where it was */
    assert_int_equal(sc_ws_conn_read(c.server, c.c2s, c.payload, -1, c.s2c), SC_WS_READ_OPEN);
    assert_int_equal(evbuffer_get_length(c.payload), 3 * sizeof part);
    conns_free(&c);
}

/* ---- the layers over a bufferevent pair ------------------------------------------ */

struct end {
    struct sc_stream *stream;
    bool attach; /* take the top's callbacks in the negotiation callback, as a link does */
    bool done, eof;
    int err;
    char why[160];
    struct evbuffer *got;
};

static struct event_base *g_base;

static bool contains(struct evbuffer *b, const char *what, size_t n)
{
    return evbuffer_search(b, what, n, NULL).pos >= 0;
}

static void end_listen(struct end *e);

static void on_negotiated(struct sc_stream *s, int err, const char *why, void *arg)
{
    (void)s;
    struct end *e = arg;
    e->done = true;
    e->err = err;
    snprintf(e->why, sizeof e->why, "%s", why);
    if (e->attach && !err)
        end_listen(e);
}

static void on_top_read(struct bufferevent *bev, void *arg)
{
    struct end *e = arg;
    evbuffer_add_buffer(e->got, bufferevent_get_input(bev));
}

static void on_top_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct end *e = arg;
    if (what & BEV_EVENT_EOF)
        e->eof = true;
}

static bool run_until(bool *flag1, bool *flag2)
{
    uint64_t deadline = sc_mono_ms() + 5000;
    while (!(*flag1 && *flag2) && sc_mono_ms() < deadline)
        event_base_loop(g_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    return *flag1 && *flag2;
}

/* Client and server ends of a pair, each a stream negotiating its layers. */
static void pair_start(struct end *cl, struct end *sv, const struct sc_layer_spec *cl_layers,
                       size_t ncl, const struct sc_layer_spec *sv_layers, size_t nsv)
{
    memset(cl, 0, sizeof *cl);
    memset(sv, 0, sizeof *sv);
    struct bufferevent *pair[2];
    assert_int_equal(bufferevent_pair_new(g_base, BEV_OPT_DEFER_CALLBACKS, pair), 0);
    assert_int_equal(sc_stream_new(pair[0], NULL, 0, &cl->stream), 0);
    assert_int_equal(sc_stream_new(pair[1], NULL, 0, &sv->stream), 0);
    cl->got = evbuffer_new();
    sv->got = evbuffer_new();
    assert_int_equal(sc_stream_negotiate(cl->stream, SC_ROLE_CLIENT, cl_layers, ncl, 3000,
                                         on_negotiated, cl), 0);
    if (nsv)
        assert_int_equal(sc_stream_negotiate(sv->stream, SC_ROLE_SERVER, sv_layers, nsv, 3000,
                                             on_negotiated, sv), 0);
}

static void end_listen(struct end *e)
{
    struct bufferevent *top = sc_stream_bev(e->stream);
    bufferevent_setcb(top, on_top_read, NULL, on_top_event, e);
    bufferevent_enable(top, EV_READ | EV_WRITE);
}

static void end_free(struct end *e)
{
    sc_stream_free(e->stream);
    evbuffer_free(e->got);
}

static const struct sc_ws_params client_params = {.host = "relay.example", .port = 8080,
                                                  .subprotocol = true};
static const struct sc_ws_params server_params = {.path = NULL};

static bool has_both(struct end *a, struct end *b, size_t n)
{
    return evbuffer_get_length(a->got) >= n && evbuffer_get_length(b->got) >= n;
}

static void test_layer_bytes_both_ways(void **state)
{
    (void)state;
    struct end cl, sv;
    struct sc_layer_spec c_spec = {&sc_layer_websocket, &client_params};
    struct sc_layer_spec s_spec = {&sc_layer_websocket, &server_params};
    pair_start(&cl, &sv, &c_spec, 1, &s_spec, 1);
    assert_true(run_until(&cl.done, &sv.done));
    assert_int_equal(cl.err, 0);
    assert_int_equal(sv.err, 0);
    struct sc_stream_info info;
    sc_stream_get_info(cl.stream, &info);
    assert_string_equal(info.transport, "pipe+websocket");
    end_listen(&cl);
    end_listen(&sv);
    static uint8_t data[300000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13 + 1);
    bufferevent_write(sc_stream_bev(cl.stream), data, sizeof data);
    bufferevent_write(sc_stream_bev(sv.stream), data, sizeof data);
    uint64_t deadline = sc_mono_ms() + 5000;
    while (!has_both(&cl, &sv, sizeof data) && sc_mono_ms() < deadline)
        event_base_loop(g_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(evbuffer_get_length(sv.got), sizeof data);
    assert_int_equal(evbuffer_get_length(cl.got), sizeof data);
    assert_memory_equal(evbuffer_pullup(sv.got, -1), data, sizeof data);
    assert_memory_equal(evbuffer_pullup(cl.got, -1), data, sizeof data);
    end_free(&cl);
    end_free(&sv);
}

static char g_log[2048];

static void capture_log(enum sc_log_level level, const char *event, const char *fields, void *arg)
{
    (void)level;
    (void)arg;
    size_t len = strlen(g_log);
    snprintf(g_log + len, sizeof g_log - len, "%s %s\n", event, fields);
}

/* The stream's user says why it ends; the peer's layer hears the code. */
static void test_layer_close_code(void **state)
{
    (void)state;
    const struct {
        enum sc_stream_end end;
        const char *heard;
    } cases[] = {
        {SC_STREAM_END_NORMAL, "received=1000"},  {SC_STREAM_END_GOING_AWAY, "received=1001"},
        {SC_STREAM_END_PROTOCOL, "received=1002"}, {SC_STREAM_END_POLICY, "received=1008"},
        {SC_STREAM_END_TOO_BIG, "received=1009"},  {SC_STREAM_END_INTERNAL, "received=1011"},
    };
    sc_log_set_handler(capture_log, NULL);
    sc_log_set_level(SC_LOG_DEBUG);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct end cl, sv;
        struct sc_layer_spec c_spec = {&sc_layer_websocket, &client_params};
        struct sc_layer_spec s_spec = {&sc_layer_websocket, &server_params};
        pair_start(&cl, &sv, &c_spec, 1, &s_spec, 1);
        assert_true(run_until(&cl.done, &sv.done));
        end_listen(&sv);
        bufferevent_write(sc_stream_bev(cl.stream), "last words", 10);
        g_log[0] = '\0';
        sc_stream_set_end(cl.stream, cases[i].end);
        sc_stream_close(cl.stream, 100);
        bool yes = true;
        assert_true(run_until(&sv.eof, &yes));
        assert_int_equal(evbuffer_get_length(sv.got), 10); /* flushed before the close */
        assert_non_null(strstr(g_log, cases[i].heard));
        assert_null(sc_stream_fault(sv.stream, NULL)); /* a close is no fault */
        end_free(&sv);
        evbuffer_free(cl.got);
        sc_closers_finish_all(g_base);
    }
    sc_log_set_handler(NULL, NULL);
    sc_log_set_level(SC_LOG_WARN);
}

/* A text frame from the client, right behind its upgrade: the server's
 * layer breaks, tells the stream (websocket, SC_EVERSION) and ends its
 * input, which whoever took the stream in the negotiation callback sees. */
static void test_layer_broken_by_peer(void **state)
{
    (void)state;
    struct end cl, sv;
    struct sc_layer_spec s_spec = {&sc_layer_websocket, &server_params};
    /* the client side is a bare pair end: the test speaks WebSocket by hand */
    pair_start(&cl, &sv, NULL, 0, &s_spec, 1);
    static const char req[] = "GET /relay HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    struct bufferevent *raw = sc_stream_bev(cl.stream);
    uint8_t f[64];
    size_t n = frame(f, 1, 0, 0x1, (const uint8_t *)"hi", 2, 1);
    sv.attach = true;
    bufferevent_write(raw, req, sizeof req - 1);
    bufferevent_write(raw, f, n);
    end_listen(&cl);
    assert_true(run_until(&sv.done, &cl.done)); /* cl.done: its empty negotiation */
    assert_int_equal(sv.err, 0);
    bool yes = true;
    assert_true(run_until(&sv.eof, &yes));
    int err = 0;
    assert_ptr_equal(sc_stream_fault(sv.stream, &err), &sc_layer_websocket);
    assert_int_equal(err, SC_EVERSION);
    /* on the wire: the 101, then a close 1003 */
    uint64_t deadline = sc_mono_ms() + 2000;
    while (!contains(cl.got, "\x88\x02\x03\xeb", 4) && sc_mono_ms() < deadline)
        event_base_loop(g_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    const char *got = (const char *)evbuffer_pullup(cl.got, -1);
    assert_non_null(got);
    assert_memory_equal(got, "HTTP/1.1 101 ", 13);
    assert_true(contains(cl.got, "\x88\x02\x03\xeb", 4));
    end_free(&cl);
    end_free(&sv);
}

static void test_layer_refused_upgrade(void **state)
{
    (void)state;
    struct end cl, sv;
    static const struct sc_ws_params other = {.host = "relay.example", .port = 80,
                                              .path = "/other"};
    struct sc_layer_spec c_spec = {&sc_layer_websocket, &other};
    struct sc_layer_spec s_spec = {&sc_layer_websocket, &server_params};
    pair_start(&cl, &sv, &c_spec, 1, &s_spec, 1);
    assert_true(run_until(&cl.done, &sv.done));
    assert_int_equal(cl.err, SC_ECONNECT);
    assert_string_equal(cl.why, "websocket: server answered 404");
    assert_int_equal(sv.err, SC_ENOENT);
    assert_string_equal(sv.why, "websocket: answered 404 (unknown path)");
    assert_ptr_equal(sc_stream_fault(sv.stream, NULL), &sc_layer_websocket);
    end_free(&cl);
    end_free(&sv);

    /* an Origin outside the server's list: 403 */
    static const char *const allowed[] = {"https://ok.example"};
    static const struct sc_ws_params strict = {.origins = allowed, .norigins = 1};
    static const struct sc_ws_params evil = {.host = "relay.example", .port = 80,
                                             .origin = "https://evil.example"};
    struct sc_layer_spec c2 = {&sc_layer_websocket, &evil};
    struct sc_layer_spec s2 = {&sc_layer_websocket, &strict};
    pair_start(&cl, &sv, &c2, 1, &s2, 1);
    assert_true(run_until(&cl.done, &sv.done));
    assert_string_equal(cl.why, "websocket: server answered 403");
    assert_int_equal(sv.err, SC_EACCES);
    end_free(&cl);
    end_free(&sv);
}

/* A fake proxy: the server end reads the CONNECT and answers `answer`. */
static void run_proxy(struct end *px, const char *answer)
{
    uint64_t deadline = sc_mono_ms() + 2000;
    while (!contains(px->got, "\r\n\r\n", 4) && sc_mono_ms() < deadline)
        event_base_loop(g_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_true(evbuffer_search(px->got, "\r\n\r\n", 4, NULL).pos > 0);
    bufferevent_write(sc_stream_bev(px->stream), answer, strlen(answer));
}

static void test_http_connect_layer(void **state)
{
    (void)state;
    struct end cl, px;
    static const struct sc_http_connect_params auth = {.host = "relay.example", .port = 443,
                                                       .user = "alice", .password = "secret"};
    struct sc_layer_spec layers[2] = {{&sc_layer_http_connect, &auth},
                                      {&sc_layer_websocket, &client_params}};
    pair_start(&cl, &px, layers, 2, NULL, 0);
    end_listen(&px);
    run_proxy(&px, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
    bool yes = true;
    assert_true(run_until(&cl.done, &yes));
    assert_int_equal(cl.err, SC_EPROXYAUTH);
    assert_string_equal(cl.why, "http_connect: proxy wants authentication (407)");
    const char *req = (const char *)evbuffer_pullup(px.got, -1);
    assert_memory_equal(req, "CONNECT relay.example:443 HTTP/1.1\r\n", 36);
    assert_non_null(strstr(req, "Proxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n"));
    end_free(&cl);
    end_free(&px);

    /* 200: the tunnel is open and the websocket layer upgrades through it */
    pair_start(&cl, &px, layers, 2, NULL, 0);
    end_listen(&px);
    run_proxy(&px, "HTTP/1.1 200 Connection established\r\n\r\n");
    uint64_t deadline = sc_mono_ms() + 2000;
    while (!contains(px.got, "GET /relay HTTP/1.1", 19) &&
           sc_mono_ms() < deadline)
        event_base_loop(g_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_true(evbuffer_search(px.got, "GET /relay HTTP/1.1\r\nHost: relay.example:8080\r\n", 47,
                                NULL).pos > 0);
    assert_false(cl.done);
    end_free(&cl);
    end_free(&px);

    /* another status */
    pair_start(&cl, &px, layers, 2, NULL, 0);
    end_listen(&px);
    run_proxy(&px, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    assert_true(run_until(&cl.done, &yes));
    assert_int_equal(cl.err, SC_EPROXY);
    assert_string_equal(cl.why, "http_connect: proxy answered 403");
    end_free(&cl);
    end_free(&px);
}

static int setup(void **state)
{
    (void)state;
    g_base = event_base_new();
    return g_base ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sc_closers_finish_all(g_base);
    event_base_free(g_base);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_both_ways),
        cmocka_unit_test(test_fragments_with_pings),
        cmocka_unit_test(test_ping_pong),
        cmocka_unit_test(test_close_handshake_codes),
        cmocka_unit_test(test_too_big_is_1009),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_read_limit),
        cmocka_unit_test(test_layer_bytes_both_ways),
        cmocka_unit_test(test_layer_close_code),
        cmocka_unit_test(test_layer_broken_by_peer),
        cmocka_unit_test(test_layer_refused_upgrade),
        cmocka_unit_test(test_http_connect_layer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
