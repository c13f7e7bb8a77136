/* tests/unit/test_socks5_layer.c — the socks5 transport layer
 * (transport/socks5.h) over an in-memory bufferevent pair, against a
 * scripted proxy on the other end: byte-exact greeting, RFC 1929 request and
 * CONNECT, replies dripped one byte per loop turn, application bytes after
 * the reply left for the layer above (raw, under an xor layer, a real link),
 * every reply code mapped to its error, text and reason, a proxy that closes
 * or is not SOCKS at all, the negotiation deadline, bad parameters. */
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

#include "link/link_stream.h"
#include "secirc/identity.h"
#include "secirc/link.h"
#include "transport/socks5.h"
#include "transport/transport.h"
#include "util/time.h"

/* ---- a scripted proxy ------------------------------------------------------ */

/* The proxy waits for `expect` (exactly), then answers `reply`. */
struct step {
    const uint8_t *expect;
    size_t expect_len;
    const uint8_t *reply;
    size_t reply_len;
};
#define STEP(e, r) {(e), sizeof(e), (r), sizeof(r)}
#define STEP_SILENT(e) {(e), sizeof(e), NULL, 0}

struct proxy {
    struct bufferevent *bev;
    struct evbuffer *got;     /* received, not yet matched */
    const struct step *steps;
    size_t nsteps, at;
    bool mismatch;
    bool drip;                /* replies one byte per loop turn */
    struct evbuffer *pending; /* what drip still has to send */
    struct event *drip_ev;
    bool close_after;         /* frees its end once the script is done */
    /* after the last step: the end becomes a responder link (cfg set) */
    const struct sc_link_config *link_cfg;
    struct sc_link *link;
};

struct outcome {
    bool done;
    int err;
    char why[200];
};

struct fixture {
    struct event_base *base;
    struct sc_stream *stream;
    struct bufferevent *client_end;
    struct proxy px;
    struct outcome res;
};

static void on_drip(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct proxy *px = arg;
    uint8_t b;
    if (px->bev && evbuffer_remove(px->pending, &b, 1) == 1)
        bufferevent_write(px->bev, &b, 1);
    if (evbuffer_get_length(px->pending)) {
        struct timeval tv = {0, 1000};
        evtimer_add(px->drip_ev, &tv);
    }
}

static void proxy_send(struct proxy *px, const uint8_t *data, size_t len)
{
    if (!len)
        return;
    if (!px->drip) {
        bufferevent_write(px->bev, data, len);
        return;
    }
    evbuffer_add(px->pending, data, len);
    on_drip(-1, 0, px);
}

static void proxy_read(struct bufferevent *bev, void *arg)
{
    struct proxy *px = arg;
    evbuffer_add_buffer(px->got, bufferevent_get_input(bev));
    while (px->at < px->nsteps && evbuffer_get_length(px->got) >= px->steps[px->at].expect_len) {
        const struct step *st = &px->steps[px->at++];
        uint8_t buf[600];
        assert_true(st->expect_len <= sizeof buf);
        evbuffer_remove(px->got, buf, st->expect_len);
        if (memcmp(buf, st->expect, st->expect_len) != 0)
            px->mismatch = true;
        proxy_send(px, st->reply, st->reply_len);
    }
    if (px->at < px->nsteps)
        return;
    if (px->close_after) {
        bufferevent_flush(px->bev, EV_WRITE, BEV_FINISHED); /* the other end sees EOF */
        bufferevent_free(px->bev);
        px->bev = NULL;
    } else if (px->link_cfg) {
        struct bufferevent *b = px->bev;
        px->bev = NULL;
        assert_int_equal(sc_link_new(bufferevent_get_base(b), b, px->link_cfg, &px->link), 0);
    }
}

static void on_negotiated(struct sc_stream *s, int err, const char *why, void *arg)
{
    (void)s;
    struct outcome *o = arg;
    o->done = true;
    o->err = err;
    snprintf(o->why, sizeof o->why, "%s", why);
}

/* A stream over one end of a pair (callbacks deferred, as a socket's are,
 * unless `immediate`), the script on the other. */
static void setup(struct fixture *f, const struct step *steps, size_t nsteps, bool immediate)
{
    memset(f, 0, sizeof *f);
    f->base = event_base_new();
    assert_non_null(f->base);
    struct bufferevent *ends[2];
    int opts = BEV_OPT_CLOSE_ON_FREE | (immediate ? 0 : BEV_OPT_DEFER_CALLBACKS);
    assert_int_equal(bufferevent_pair_new(f->base, opts, ends), 0);
    f->client_end = ends[0];
    assert_int_equal(sc_stream_new(ends[0], NULL, 0, &f->stream), 0);
    f->px.bev = ends[1];
    f->px.got = evbuffer_new();
    f->px.pending = evbuffer_new();
    f->px.drip_ev = evtimer_new(f->base, on_drip, &f->px);
    f->px.steps = steps;
    f->px.nsteps = nsteps;
    bufferevent_setcb(ends[1], proxy_read, NULL, NULL, &f->px);
    bufferevent_enable(ends[1], EV_READ | EV_WRITE);
}

static bool run_until(struct fixture *f, bool (*cond)(struct fixture *), uint64_t limit_ms)
{
    uint64_t deadline = sc_mono_ms() + limit_ms;
    while (!cond(f) && sc_mono_ms() < deadline)
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    return cond(f);
}

static bool negotiated(struct fixture *f) { return f->res.done; }

static void negotiate(struct fixture *f, const struct sc_layer_spec *layers, size_t n,
                      uint32_t timeout_ms)
{
    assert_int_equal(sc_stream_negotiate(f->stream, SC_ROLE_CLIENT, layers, n, timeout_ms,
                                         on_negotiated, &f->res),
                     0);
    assert_false(f->res.done); /* never from inside the call */
    assert_true(run_until(f, negotiated, 5000));
}

static void teardown(struct fixture *f)
{
    sc_stream_free(f->stream);
    if (f->px.link)
        sc_link_free(f->px.link);
    if (f->px.bev)
        bufferevent_free(f->px.bev);
    event_free(f->px.drip_ev);
    evbuffer_free(f->px.got);
    evbuffer_free(f->px.pending);
    sc_link_finish_lingering(f->base);
    event_base_free(f->base);
}

static struct sc_layer_spec socks5_spec(const struct sc_socks5_params *p)
{
    struct sc_layer_spec spec = {.ops = &sc_layer_socks5, .params = p};
    return spec;
}

/* ---- byte layouts (RFC 1928, RFC 1929) -------------------------------------- */

static const uint8_t greet_noauth[] = {0x05, 0x01, 0x00};
static const uint8_t greet_userpass[] = {0x05, 0x01, 0x02};
static const uint8_t method_noauth[] = {0x05, 0x00};
static const uint8_t method_userpass[] = {0x05, 0x02};
static const uint8_t method_none[] = {0x05, 0xff};
/* 01 ULEN "alice" PLEN "s3cret" */
static const uint8_t auth_alice[] = {0x01, 0x05, 'a', 'l', 'i', 'c', 'e',
                                     0x06, 's', '3', 'c', 'r', 'e', 't'};
static const uint8_t auth_ok[] = {0x01, 0x00};
static const uint8_t auth_bad[] = {0x01, 0x01};
/* CONNECT relay.example:4000 as a name: 05 01 00 03 0d "relay.example" 0f a0 */
static const uint8_t connect_relay[] = {0x05, 0x01, 0x00, 0x03, 0x0d, 'r', 'e', 'l', 'a',
                                        'y',  '.',  'e',  'x',  'a',  'm', 'p', 'l', 'e',
                                        0x0f, 0xa0};
/* CONNECT 127.0.0.1:80: an address literal still goes as a name (ATYP 3) */
static const uint8_t connect_literal[] = {0x05, 0x01, 0x00, 0x03, 0x09, '1', '2', '7',
                                          '.',  '0',  '.',  '0',  '.',  '1', 0x00, 0x50};
static const uint8_t reply_ok_v4[] = {0x05, 0x00, 0x00, 0x01, 10, 0, 0, 1, 0x1f, 0x90};
/* success with an IPv6 BND.ADDR, then 8 bytes of the target's own data */
static const uint8_t reply_ok_v6_trailing[] = {
    0x05, 0x00, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8, 0,   0,   0,   0,   0,   0,   0, 0,
    0,    0,    0,    1,    0x00, 0x50, 'T',  'R',  'A', 'I', 'L', 'I', 'N', 'G'};

static const struct sc_socks5_params relay_noauth = {.host = "relay.example", .port = 4000};
static const struct sc_socks5_params relay_alice = {
    .host = "relay.example", .port = 4000, .username = "alice", .password = "s3cret"};

static size_t input_len(struct bufferevent *bev)
{
    return evbuffer_get_length(bufferevent_get_input(bev));
}

/* ---- success ------------------------------------------------------------------ */

static bool top_has_trailing(struct fixture *f)
{
    return input_len(sc_stream_bev(f->stream)) >= 8;
}

static void check_trailing_left(struct fixture *f)
{
    /* SOCKS adds no framing: the stream's top is the connection itself,
     * holding exactly what the target sent after the reply (dripped: some
     * of it still on its way) */
    struct bufferevent *top = sc_stream_bev(f->stream);
    assert_ptr_equal(top, f->client_end);
    if (f->px.drip)
        assert_true(run_until(f, top_has_trailing, 2000));
    assert_int_equal(input_len(top), 8);
    char buf[8];
    assert_int_equal(evbuffer_remove(bufferevent_get_input(top), buf, 8), 8);
    assert_memory_equal(buf, "TRAILING", 8);
}

static void noauth_connect(bool immediate, bool drip)
{
    static const struct step script[] = {STEP(greet_noauth, method_noauth),
                                         STEP(connect_relay, reply_ok_v6_trailing)};
    struct fixture f;
    setup(&f, script, 2, immediate);
    f.px.drip = drip;
    struct sc_layer_spec spec = socks5_spec(&relay_noauth);
    negotiate(&f, &spec, 1, 5000);
    assert_int_equal(f.res.err, 0);
    assert_false(f.px.mismatch);
    assert_int_equal(f.px.at, 2);
    assert_int_equal(evbuffer_get_length(f.px.got), 0); /* nothing more was sent */
    check_trailing_left(&f);
    struct sc_stream_info info;
    sc_stream_get_info(f.stream, &info);
    assert_string_equal(info.transport, "pipe+socks5");
    assert_false(info.onion);
    teardown(&f);
}

static void test_noauth_connect(void **state)
{
    (void)state;
    noauth_connect(false, false);
}

/* The proxy's replies arrive one byte per loop turn (short reads). */
static void test_short_reads(void **state)
{
    (void)state;
    noauth_connect(false, true);
}

/* A bufferevent that runs its callbacks from inside writes: the proxy
 * answers while the layer is still writing its request. */
static void test_immediate_callbacks(void **state)
{
    (void)state;
    noauth_connect(true, false);
}

static void test_userpass_connect(void **state)
{
    (void)state;
    static const struct step script[] = {STEP(greet_userpass, method_userpass),
                                         STEP(auth_alice, auth_ok),
                                         STEP(connect_relay, reply_ok_v4)};
    struct fixture f;
    setup(&f, script, 3, false);
    f.px.drip = true;
    struct sc_layer_spec spec = socks5_spec(&relay_alice);
    negotiate(&f, &spec, 1, 5000);
    assert_int_equal(f.res.err, 0);
    assert_false(f.px.mismatch);
    assert_int_equal(f.px.at, 3);
    assert_int_equal(evbuffer_get_length(f.px.got), 0);
    assert_int_equal(input_len(sc_stream_bev(f.stream)), 0);
    teardown(&f);
}

/* An IPv4 literal is not parsed, let alone resolved: it goes out as a name. */
static void test_literal_sent_as_name(void **state)
{
    (void)state;
    static const struct step script[] = {STEP(greet_noauth, method_noauth),
                                         STEP(connect_literal, reply_ok_v4)};
    static const struct sc_socks5_params p = {.host = "127.0.0.1", .port = 80};
    struct fixture f;
    setup(&f, script, 2, false);
    struct sc_layer_spec spec = socks5_spec(&p);
    negotiate(&f, &spec, 1, 5000);
    assert_int_equal(f.res.err, 0);
    assert_false(f.px.mismatch);
    teardown(&f);
}

static const char onion_host[] = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion";

/* 05 01 00 03 LEN HOST PORT: the CONNECT request for host:port. */
static size_t connect_request(const char *host, uint16_t port, uint8_t *out)
{
    size_t hl = strlen(host);
    memcpy(out, "\x05\x01\x00\x03", 4);
    out[4] = (uint8_t)hl;
    memcpy(out + 5, host, hl);
    out[5 + hl] = (uint8_t)(port >> 8);
    out[6 + hl] = (uint8_t)port;
    return 7 + hl;
}

static void test_onion_query(void **state)
{
    (void)state;
    uint8_t connect_onion[300];
    size_t n = connect_request(onion_host, 443, connect_onion);
    assert_int_equal(n, 7 + 62);
    const struct step script[] = {STEP(greet_noauth, method_noauth),
                                  {connect_onion, n, reply_ok_v4, sizeof reply_ok_v4}};
    static const struct sc_socks5_params p = {.host = onion_host, .port = 443};
    struct fixture f;
    setup(&f, script, 2, false);
    struct sc_layer_spec spec = socks5_spec(&p);
    negotiate(&f, &spec, 1, 5000);
    assert_int_equal(f.res.err, 0);
    assert_false(f.px.mismatch);
    struct sc_stream_info info;
    sc_stream_get_info(f.stream, &info);
    assert_true(info.onion);
    teardown(&f);
}

/* ---- what follows the reply reaches the layer above --------------------------- */

static bool top_has_hello(struct fixture *f)
{
    return input_len(sc_stream_bev(f->stream)) >= 5;
}

static void test_trailing_under_xor(void **state)
{
    (void)state;
    /* the reply and the target's first bytes ("hello" XOR 0x5c) in one write */
    static const uint8_t reply_and_hello[] = {0x05, 0x00, 0x00, 0x01, 10,        0,
                                              0,    1,    0x1f, 0x90, 'h' ^ 0x5c, 'e' ^ 0x5c,
                                              'l' ^ 0x5c, 'l' ^ 0x5c, 'o' ^ 0x5c};
    static const struct step script[] = {STEP(greet_noauth, method_noauth),
                                         STEP(connect_relay, reply_and_hello)};
    static const struct sc_xor_params xp = {.key = 0x5c, .hello = false};
    struct fixture f;
    setup(&f, script, 2, false);
    struct sc_layer_spec specs[2] = {socks5_spec(&relay_noauth), {&sc_layer_xor, &xp}};
    negotiate(&f, specs, 2, 5000);
    assert_int_equal(f.res.err, 0);
    struct bufferevent *top = sc_stream_bev(f.stream);
    assert_ptr_not_equal(top, f.client_end);
    assert_true(run_until(&f, top_has_hello, 2000));
    char buf[8];
    assert_int_equal(evbuffer_remove(bufferevent_get_input(top), buf, sizeof buf), 5);
    assert_memory_equal(buf, "hello", 5);
    struct sc_stream_info info;
    sc_stream_get_info(f.stream, &info);
    assert_string_equal(info.transport, "pipe+socks5+xor");
    teardown(&f);
}

/* A secure link through the layer: the proxy's end becomes the responder
 * once it has answered, the stream's top the initiator. */
struct linkside {
    bool up, got_message;
};
static void ls_up(struct sc_link *link, void *arg)
{
    (void)link;
    ((struct linkside *)arg)->up = true;
}
static void ls_message(struct sc_link *link, const struct sc_relay_message *m, void *arg)
{
    (void)link;
    if (m->len == 5 && memcmp(m->payload, "ping!", 5) == 0)
        ((struct linkside *)arg)->got_message = true;
}
static void ls_closed(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg)
{
    (void)link;
    (void)reason;
    (void)by_peer;
    (void)arg;
}
static struct linkside g_ini, g_res;
static bool links_up(struct fixture *f)
{
    (void)f;
    return g_ini.up && g_res.up;
}
static bool messages_both_ways(struct fixture *f)
{
    (void)f;
    return g_ini.got_message && g_res.got_message;
}

static void test_link_through_layer(void **state)
{
    (void)state;
    static const struct step script[] = {STEP(greet_userpass, method_userpass),
                                         STEP(auth_alice, auth_ok),
                                         STEP(connect_relay, reply_ok_v4)};
    memset(&g_ini, 0, sizeof g_ini);
    memset(&g_res, 0, sizeof g_res);
    struct sc_identity *id_i, *id_r;
    struct sc_link_key *key_i, *key_r;
    assert_int_equal(sc_identity_generate(&id_i), 0);
    assert_int_equal(sc_identity_generate(&id_r), 0);
    assert_int_equal(sc_link_key_generate(id_i, sc_unix_s() + 3600, &key_i), 0);
    assert_int_equal(sc_link_key_generate(id_r, sc_unix_s() + 3600, &key_r), 0);
    static const struct sc_link_callbacks cbs = {
        .on_authenticated = ls_up, .on_message = ls_message, .on_closed = ls_closed};
    struct sc_link_config ci, cr;
    sc_link_config_defaults(&ci);
    sc_link_config_defaults(&cr);
    ci.identity = id_i;
    ci.link_key = key_i;
    ci.initiator = true;
    ci.has_expected_id = true;
    memcpy(ci.expected_id, sc_identity_relay_id(id_r), SC_RELAY_ID_BYTES);
    ci.cb = cbs;
    ci.cb_arg = &g_ini;
    cr.identity = id_r;
    cr.link_key = key_r;
    cr.cb = cbs;
    cr.cb_arg = &g_res;

    struct fixture f;
    setup(&f, script, 3, false);
    f.px.link_cfg = &cr;
    struct sc_layer_spec spec = socks5_spec(&relay_alice);
    negotiate(&f, &spec, 1, 5000);
    assert_int_equal(f.res.err, 0);
    assert_non_null(f.px.link);
    struct sc_link *ini;
    assert_int_equal(sc_link_start(f.base, f.stream, &ci, NULL, &ini), 0);
    f.stream = NULL; /* the link owns it */
    assert_true(run_until(&f, links_up, 5000));
    struct sc_stream_info info;
    sc_link_stream_info(ini, &info);
    assert_string_equal(info.transport, "pipe+socks5");
    uint8_t id[SC_MESSAGE_ID_BYTES] = {1};
    assert_int_equal(sc_link_send(ini, id, 8, 0, "ping!", 5), 0);
    id[0] = 2;
    assert_int_equal(sc_link_send(f.px.link, id, 8, 0, "ping!", 5), 0);
    assert_true(run_until(&f, messages_both_ways, 5000));
    sc_link_free(ini);
    teardown(&f);
    sc_link_key_free(key_i);
    sc_link_key_free(key_r);
    sc_identity_free(id_i);
    sc_identity_free(id_r);
}

/* ---- failures ------------------------------------------------------------------ */

/* Runs the no-auth script up to a CONNECT answered with REP `rep` (and a
 * full IPv4 reply, as a proxy sends it) for `host`; returns the outcome. */
static struct outcome connect_reply(const char *host, uint8_t rep)
{
    uint8_t connect_req[300];
    size_t n = connect_request(host, 4000, connect_req);
    uint8_t reply[10] = {0x05, rep, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
    const struct step script[] = {STEP(greet_noauth, method_noauth),
                                  {connect_req, n, reply, sizeof reply}};
    const struct sc_socks5_params p = {.host = host, .port = 4000};
    struct fixture f;
    setup(&f, script, 2, false);
    struct sc_layer_spec spec = socks5_spec(&p);
    negotiate(&f, &spec, 1, 5000);
    assert_false(f.px.mismatch);
    struct outcome o = f.res;
    teardown(&f);
    return o;
}

static void test_every_reply_code(void **state)
{
    (void)state;
    static const struct {
        uint8_t rep;
        int err;
        const char *why;
        enum sc_reason reason;
    } cases[] = {
        {0x01, SC_EPROXY, "socks5: general SOCKS server failure (0x01)", SC_REASON_PROXY_FAILED},
        {0x02, SC_EPROXY, "socks5: connection not allowed by ruleset (0x02)", SC_REASON_PROXY_FAILED},
        {0x03, SC_EPROXY, "socks5: network unreachable (0x03)", SC_REASON_PROXY_FAILED},
        {0x04, SC_EPROXY, "socks5: host unreachable (0x04)", SC_REASON_PROXY_FAILED},
        {0x05, SC_EPROXY, "socks5: connection refused (0x05)", SC_REASON_PROXY_FAILED},
        {0x06, SC_EPROXY, "socks5: TTL expired (0x06)", SC_REASON_PROXY_FAILED},
        {0x07, SC_EPROXY, "socks5: command not supported (0x07)", SC_REASON_PROXY_FAILED},
        {0x08, SC_EPROXY, "socks5: address type not supported (0x08)", SC_REASON_PROXY_FAILED},
        {0x09, SC_EPROXY, "socks5: unknown SOCKS reply code (0x09)", SC_REASON_PROXY_FAILED},
        {0x80, SC_EPROXY, "socks5: unknown SOCKS reply code (0x80)", SC_REASON_PROXY_FAILED},
        {0xf0, SC_EONION, "socks5: onion service descriptor can not be found (0xf0)",
         SC_REASON_ONION_UNREACHABLE},
        {0xf1, SC_EONION, "socks5: onion service descriptor is invalid (0xf1)",
         SC_REASON_ONION_UNREACHABLE},
        {0xf2, SC_EONION, "socks5: onion service introduction failed (0xf2)",
         SC_REASON_ONION_UNREACHABLE},
        {0xf3, SC_EONION, "socks5: onion service rendezvous failed (0xf3)",
         SC_REASON_ONION_UNREACHABLE},
        {0xf4, SC_EONION, "socks5: onion service missing client authorization (0xf4)",
         SC_REASON_ONION_UNREACHABLE},
        {0xf5, SC_EONION, "socks5: onion service wrong client authorization (0xf5)",
         SC_REASON_ONION_UNREACHABLE},
        {0xf6, SC_EONION, "socks5: onion service invalid address (0xf6)",
         SC_REASON_ONION_UNREACHABLE},
        {0xf7, SC_EONION, "socks5: onion service introduction timed out (0xf7)",
         SC_REASON_ONION_UNREACHABLE},
        {0xf8, SC_EPROXY, "socks5: unknown SOCKS reply code (0xf8)", SC_REASON_PROXY_FAILED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct outcome o = connect_reply("relay.example", cases[i].rep);
        assert_true(o.done);
        assert_int_equal(o.err, cases[i].err);
        assert_string_equal(o.why, cases[i].why);
        assert_int_equal(sc_link_socks5_reason(o.err, SC_REASON_CONNECT_FAILED), cases[i].reason);
    }
}

/* For an onion target, Tor's plain codes (no ExtendedErrors) that mean it
 * did not get there count as onion_unreachable; the proxy's own refusals
 * (ruleset, command, address type) do not. */
static void test_onion_plain_codes(void **state)
{
    (void)state;
    static const struct {
        uint8_t rep;
        int err;
    } cases[] = {{0x01, SC_EONION}, {0x03, SC_EONION}, {0x04, SC_EONION}, {0x05, SC_EONION},
                 {0x06, SC_EONION}, {0x02, SC_EPROXY}, {0x07, SC_EPROXY}, {0x08, SC_EPROXY},
                 {0x09, SC_EPROXY}, {0xf2, SC_EONION}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct outcome o = connect_reply(onion_host, cases[i].rep);
        assert_int_equal(o.err, cases[i].err);
    }
    struct outcome o = connect_reply(onion_host, 0x04);
    assert_string_equal(o.why, "socks5: host unreachable (0x04)");
}

static struct outcome run_script(const struct step *script, size_t n,
                                 const struct sc_socks5_params *p, bool close_after,
                                 uint32_t timeout_ms)
{
    struct fixture f;
    setup(&f, script, n, false);
    f.px.close_after = close_after;
    struct sc_layer_spec spec = socks5_spec(p);
    negotiate(&f, &spec, 1, timeout_ms);
    assert_false(f.px.mismatch);
    struct outcome o = f.res;
    teardown(&f);
    return o;
}

static void test_auth_failures(void **state)
{
    (void)state;
    static const struct step bad_password[] = {STEP(greet_userpass, method_userpass),
                                               STEP(auth_alice, auth_bad)};
    struct outcome o = run_script(bad_password, 2, &relay_alice, false, 5000);
    assert_int_equal(o.err, SC_EPROXYAUTH);
    assert_string_equal(o.why, "socks5: username/password authentication failed (0x01)");
    assert_int_equal(sc_link_socks5_reason(o.err, SC_REASON_CONNECT_FAILED),
                     SC_REASON_PROXY_AUTH_FAILED);

    /* a proxy without username/password: the credentials (Tor's stream
     * isolation) are never silently dropped */
    static const struct step no_userpass[] = {STEP(greet_userpass, method_none)};
    o = run_script(no_userpass, 1, &relay_alice, false, 5000);
    assert_int_equal(o.err, SC_EPROXYAUTH);
    assert_string_equal(o.why, "socks5: no acceptable authentication method (0xff): we offered "
                               "only username/password");

    /* a proxy that insists on credentials we do not have */
    static const struct step wants_auth[] = {STEP(greet_noauth, method_none)};
    o = run_script(wants_auth, 1, &relay_noauth, false, 5000);
    assert_int_equal(o.err, SC_EPROXYAUTH);
    assert_string_equal(o.why, "socks5: no acceptable authentication method (0xff): we offered "
                               "only no authentication");
}

static void test_not_socks(void **state)
{
    (void)state;
    static const uint8_t http[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    static const struct step script[] = {{greet_noauth, sizeof greet_noauth, http, sizeof http - 1}};
    struct outcome o = run_script(script, 1, &relay_noauth, false, 5000);
    assert_int_equal(o.err, SC_EPROXY);
    assert_string_equal(o.why, "socks5: not a SOCKS5 server: version byte 0x48 in the method choice");

    /* a method we did not offer */
    static const uint8_t gssapi[] = {0x05, 0x01};
    static const struct step script2[] = {STEP(greet_noauth, gssapi)};
    o = run_script(script2, 1, &relay_noauth, false, 5000);
    assert_int_equal(o.err, SC_EPROXY);
    assert_string_equal(o.why, "socks5: malformed SOCKS5 reply: byte 0x01 in the method choice");

    /* a reply with a non-zero RSV */
    static const uint8_t bad_rsv[] = {0x05, 0x00, 0x01, 0x01, 0, 0, 0, 0, 0, 0};
    static const struct step script3[] = {STEP(greet_noauth, method_noauth),
                                          STEP(connect_relay, bad_rsv)};
    o = run_script(script3, 2, &relay_noauth, false, 5000);
    assert_int_equal(o.err, SC_EPROXY);
    assert_string_equal(o.why, "socks5: malformed SOCKS5 reply: byte 0x01 in the CONNECT reply");
}

static void test_proxy_closes(void **state)
{
    (void)state;
    static const struct step after_greeting[] = {STEP_SILENT(greet_noauth)};
    struct outcome o = run_script(after_greeting, 1, &relay_noauth, true, 5000);
    assert_int_equal(o.err, SC_EPROXY);
    assert_string_equal(o.why,
                        "socks5: the proxy closed the connection while waiting for the method choice");

    /* half a reply, then the close */
    static const uint8_t half[] = {0x05, 0x00, 0x00};
    static const struct step mid_reply[] = {STEP(greet_noauth, method_noauth),
                                            STEP(connect_relay, half)};
    o = run_script(mid_reply, 2, &relay_noauth, true, 5000);
    assert_int_equal(o.err, SC_EPROXY);
    assert_string_equal(o.why,
                        "socks5: the proxy closed the connection while waiting for the CONNECT reply");

    /* a failure reply right before the close still names the reply */
    static const uint8_t refused[] = {0x05, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
    static const struct step refused_close[] = {STEP(greet_noauth, method_noauth),
                                                STEP(connect_relay, refused)};
    o = run_script(refused_close, 2, &relay_noauth, true, 5000);
    assert_int_equal(o.err, SC_EPROXY);
    assert_string_equal(o.why, "socks5: connection refused (0x05)");
}

static void test_deadline(void **state)
{
    (void)state;
    /* the proxy takes the greeting and says nothing */
    static const struct step silent[] = {STEP_SILENT(greet_noauth)};
    uint64_t t0 = sc_mono_ms();
    struct outcome o = run_script(silent, 1, &relay_noauth, false, 200);
    uint64_t dt = sc_mono_ms() - t0;
    assert_int_equal(o.err, SC_ETIMEDOUT);
    assert_string_equal(o.why, "socks5: timed out");
    assert_true(dt >= 190 && dt < 3000);

    /* the reply dripped slower than the deadline allows */
    static const struct step slow[] = {STEP(greet_noauth, method_noauth),
                                       STEP(connect_relay, reply_ok_v4)};
    struct fixture f;
    setup(&f, slow, 2, false);
    f.px.drip = true;
    struct sc_layer_spec spec = socks5_spec(&relay_noauth);
    negotiate(&f, &spec, 1, 1);
    assert_int_equal(f.res.err, SC_ETIMEDOUT);
    teardown(&f);
}

static void test_bad_params(void **state)
{
    (void)state;
    static const struct step none[] = {STEP_SILENT(greet_noauth)};
    char long_host[257];
    memset(long_host, 'a', 256);
    long_host[256] = '\0'; /* one byte over SOCKS5's 255 */
    const struct sc_socks5_params bad[] = {
        {.host = NULL, .port = 1},
        {.host = "", .port = 1},
        {.host = "relay.example", .port = 0},
        {.host = "relay example", .port = 1},
        {.host = long_host, .port = 1},
        {.host = "relay.example", .port = 1, .username = "u"},
        {.host = "relay.example", .port = 1, .password = "p"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fixture f;
        setup(&f, none, 1, false);
        struct sc_layer_spec spec = socks5_spec(&bad[i]);
        negotiate(&f, &spec, 1, 5000);
        assert_int_equal(f.res.err, SC_EINVAL);
        assert_string_equal(f.res.why, "socks5: invalid argument");
        assert_int_equal(evbuffer_get_length(f.px.got), 0); /* nothing went out */
        assert_int_equal(f.px.at, 0);
        teardown(&f);
    }
    struct fixture f;
    setup(&f, none, 1, false);
    struct sc_layer_spec spec = socks5_spec(NULL);
    negotiate(&f, &spec, 1, 5000);
    assert_int_equal(f.res.err, SC_EINVAL);
    teardown(&f);
}

/* The server side does not exist. */
static void test_no_server_side(void **state)
{
    (void)state;
    assert_null(sc_layer_socks5.server_start);
    static const struct step none[] = {STEP_SILENT(greet_noauth)};
    struct fixture f;
    setup(&f, none, 1, false);
    struct sc_layer_spec spec = socks5_spec(&relay_noauth);
    assert_int_equal(sc_stream_negotiate(f.stream, SC_ROLE_SERVER, &spec, 1, 5000, on_negotiated,
                                         &f.res),
                     0);
    assert_true(run_until(&f, negotiated, 5000));
    assert_int_equal(f.res.err, SC_EINVAL);
    assert_string_equal(f.res.why, "socks5: no server side");
    teardown(&f);
}

static void test_reason_mapping(void **state)
{
    (void)state;
    /* the proxy's own port refusing the connection: no tor running */
    assert_int_equal(sc_link_socks5_reason(SC_ECONNREFUSED, SC_REASON_CONNECT_FAILED),
                     SC_REASON_TOR_UNAVAILABLE);
    assert_int_equal(sc_link_socks5_reason(SC_ETIMEDOUT, SC_REASON_CONNECT_FAILED),
                     SC_REASON_CONNECT_FAILED);
    assert_int_equal(sc_link_socks5_reason(SC_EHOSTUNREACH, SC_REASON_IO_ERROR),
                     SC_REASON_IO_ERROR);
    assert_string_equal(sc_reason_name(SC_REASON_PROXY_FAILED), "proxy_failed");
    assert_string_equal(sc_reason_name(SC_REASON_PROXY_AUTH_FAILED), "proxy_auth_failed");
    assert_string_equal(sc_reason_name(SC_REASON_TOR_UNAVAILABLE), "tor_unavailable");
    assert_string_equal(sc_reason_name(SC_REASON_ONION_UNREACHABLE), "onion_unreachable");
    assert_int_equal(sc_reason_parse("tor_unavailable"), SC_REASON_TOR_UNAVAILABLE);
    assert_string_equal(sc_err_name(SC_EPROXYAUTH), "EPROXYAUTH");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noauth_connect),
        cmocka_unit_test(test_short_reads),
        cmocka_unit_test(test_immediate_callbacks),
        cmocka_unit_test(test_userpass_connect),
        cmocka_unit_test(test_literal_sent_as_name),
        cmocka_unit_test(test_onion_query),
        cmocka_unit_test(test_trailing_under_xor),
        cmocka_unit_test(test_link_through_layer),
        cmocka_unit_test(test_every_reply_code),
        cmocka_unit_test(test_onion_plain_codes),
        cmocka_unit_test(test_auth_failures),
        cmocka_unit_test(test_not_socks),
        cmocka_unit_test(test_proxy_closes),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_no_server_side),
        cmocka_unit_test(test_reason_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
