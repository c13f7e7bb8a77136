/* tests/unit/test_socks5.c — the SOCKS5 client state machine
 * (transport/socks5_proto.h) against byte-exact RFC 1928/1929 exchanges,
 * without sockets: greetings, sub-negotiation, CONNECT, every reply code,
 * malformed replies, any split of the server's bytes, calls out of turn,
 * and the per-peer stream isolation credentials. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "transport/socks5_proto.h"

/* "example.onion" port 443: 05 01 00 03 0d "example.onion" 01 bb */
static const uint8_t connect_example[] = {0x05, 0x01, 0x00, 0x03, 0x0d, 'e', 'x', 'a', 'm', 'p',
                                          'l',  'e',  '.',  'o',  'n',  'i', 'o', 'n', 0x01, 0xbb};

/* Replies that succeed, with BND.ADDR of each ATYP. */
static const uint8_t reply_ipv4[] = {0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1, 0x23, 0x82};
static const uint8_t reply_ipv6[] = {0x05, 0x00, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                     0,    0,    0,    0,    0,    0,    0,    1,    0x00, 0x50};
static const uint8_t reply_domain[] = {0x05, 0x00, 0x00, 0x03, 0x09, 'l', 'o', 'c', 'a',
                                       'l',  'h',  'o',  's',  't',  0x1f, 0x90};

/* ---- helpers ------------------------------------------------------------------ */

static void start(struct sc_socks5 *s, const char *host, uint16_t port, const char *user,
                  const char *pass)
{
    struct sc_socks5_config cfg = {.host = host, .port = port, .username = user, .password = pass};
    assert_int_equal(sc_socks5_init(s, &cfg), 0);
    assert_int_equal(s->state, SC_SOCKS5_SEND_GREETING);
    assert_int_equal(sc_socks5_want(s), SC_SOCKS5_WANT_SEND);
}

/* The next message must be exactly `want` (len bytes). */
static void expect_send(struct sc_socks5 *s, const uint8_t *want, size_t len)
{
    uint8_t out[SC_SOCKS5_SEND_MAX_BYTES];
    size_t n = 12345;

    assert_int_equal(sc_socks5_want(s), SC_SOCKS5_WANT_SEND);
    assert_int_equal(sc_socks5_next_send(s, out, sizeof out, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(out, want, len);
    assert_int_equal(sc_socks5_want(s), SC_SOCKS5_WANT_RECV);
}

/* Feeds all of in[0..len) in one call; returns the call's result. */
static int feed_whole(struct sc_socks5 *s, const uint8_t *in, size_t len, size_t *consumed)
{
    return sc_socks5_recv(s, in, len, consumed);
}

/* Feeds one byte per call while the machine wants bytes; returns the last
 * call's result and the total consumed. */
static int feed_bytewise(struct sc_socks5 *s, const uint8_t *in, size_t len, size_t *consumed)
{
    int err = 0;

    *consumed = 0;
    while (*consumed < len && sc_socks5_want(s) == SC_SOCKS5_WANT_RECV) {
        size_t c = 99;
        err = sc_socks5_recv(s, in + *consumed, 1, &c);
        assert_int_equal(c, 1);
        *consumed += c;
        if (err)
            break;
    }
    return err;
}

/* A machine without credentials, past the greeting and method selection,
 * with its CONNECT for example.onion:443 sent. */
static void to_reply_noauth(struct sc_socks5 *s)
{
    static const uint8_t method[] = {0x05, 0x00};
    size_t c = 0;

    start(s, "example.onion", 443, NULL, NULL);
    expect_send(s, (const uint8_t *)"\x05\x01\x00", 3);
    assert_int_equal(sc_socks5_recv(s, method, sizeof method, &c), 0);
    assert_int_equal(c, 2);
    expect_send(s, connect_example, sizeof connect_example);
    assert_int_equal(s->state, SC_SOCKS5_READ_REPLY);
}

static void check_failed(struct sc_socks5 *s, enum sc_socks5_result r, uint8_t code)
{
    assert_int_equal(s->state, SC_SOCKS5_FAILED);
    assert_int_equal(sc_socks5_want(s), SC_SOCKS5_WANT_FAILED);
    assert_int_equal(s->result, r);
    assert_int_equal(s->code, code);
}

/* ---- byte-exact exchanges -------------------------------------------------- */

static void test_noauth_exchange(void **state)
{
    (void)state;
    struct sc_socks5 s;
    to_reply_noauth(&s);
    size_t c = 0;
    assert_int_equal(feed_whole(&s, reply_ipv4, sizeof reply_ipv4, &c), 0);
    assert_int_equal(c, sizeof reply_ipv4);
    assert_int_equal(sc_socks5_want(&s), SC_SOCKS5_WANT_DONE);
    assert_int_equal(s.result, SC_SOCKS5_R_SUCCEEDED);
    assert_string_equal(sc_socks5_result_name(s.result), "succeeded");
}

static void test_userpass_exchange(void **state)
{
    (void)state;
    static const uint8_t method[] = {0x05, 0x02};
    static const uint8_t auth_req[] = {0x01, 0x04, 'u', 's', 'e', 'r', 0x06, 's', 'e', 'c', 'r', 'e', 't'};
    static const uint8_t auth_ok[] = {0x01, 0x00};
    static const uint8_t zeros[SC_SOCKS5_CRED_MAX_BYTES] = {0};
    struct sc_socks5 s;
    size_t c = 0;

    start(&s, "example.onion", 443, "user", "secret");
    expect_send(&s, (const uint8_t *)"\x05\x01\x02", 3);
    assert_int_equal(sc_socks5_recv(&s, method, sizeof method, &c), 0);
    assert_int_equal(c, 2);
    assert_int_equal(s.state, SC_SOCKS5_SEND_AUTH);
    expect_send(&s, auth_req, sizeof auth_req);
    /* The credentials do not outlive their one use. */
    assert_memory_equal(s.user, zeros, sizeof s.user);
    assert_memory_equal(s.pass, zeros, sizeof s.pass);
    assert_int_equal(sc_socks5_recv(&s, auth_ok, sizeof auth_ok, &c), 0);
    assert_int_equal(c, 2);
    expect_send(&s, connect_example, sizeof connect_example);
    assert_int_equal(feed_whole(&s, reply_domain, sizeof reply_domain, &c), 0);
    assert_int_equal(c, sizeof reply_domain);
    assert_int_equal(sc_socks5_want(&s), SC_SOCKS5_WANT_DONE);
}

/* The longest credentials: 01 ff <255> ff <255>, 513 bytes. */
static void test_userpass_max_lengths(void **state)
{
    (void)state;
    char user[256], pass[256];
    uint8_t want[SC_SOCKS5_SEND_MAX_BYTES];
    struct sc_socks5 s;
    size_t c = 0;

    memset(user, 'u', 255);
    user[255] = '\0';
    memset(pass, 0xfe, 255); /* RFC 1929 carries any byte */
    pass[255] = '\0';
    start(&s, "h", 1, user, pass);
    expect_send(&s, (const uint8_t *)"\x05\x01\x02", 3);
    assert_int_equal(sc_socks5_recv(&s, (const uint8_t *)"\x05\x02", 2, &c), 0);
    want[0] = 0x01;
    want[1] = 0xff;
    memset(want + 2, 'u', 255);
    want[257] = 0xff;
    memset(want + 258, 0xfe, 255);
    /* One byte short of room: refused, nothing changes. */
    uint8_t out[SC_SOCKS5_SEND_MAX_BYTES];
    size_t n = 7;
    assert_int_equal(sc_socks5_next_send(&s, out, sizeof out - 1, &n), SC_ENOSPACE);
    assert_int_equal(n, 0);
    assert_int_equal(s.state, SC_SOCKS5_SEND_AUTH);
    expect_send(&s, want, sizeof want);
}

/* Host names go out as ATYP 0x03 verbatim, IP literals included. */
static void test_connect_always_domain(void **state)
{
    (void)state;
    static const char *const hosts[] = {"127.0.0.1", "::1", "[2001:db8::1]", "a"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        struct sc_socks5 s;
        uint8_t want[300];
        size_t hl = strlen(hosts[i]), c = 0;

        start(&s, hosts[i], 0x1234, NULL, NULL);
        expect_send(&s, (const uint8_t *)"\x05\x01\x00", 3);
        assert_int_equal(sc_socks5_recv(&s, (const uint8_t *)"\x05\x00", 2, &c), 0);
        memcpy(want, "\x05\x01\x00\x03", 4);
        want[4] = (uint8_t)hl;
        memcpy(want + 5, hosts[i], hl);
        want[5 + hl] = 0x12;
        want[6 + hl] = 0x34;
        expect_send(&s, want, 7 + hl);
    }
}

static void test_connect_max_host(void **state)
{
    (void)state;
    char host[256];
    uint8_t want[262];
    struct sc_socks5 s;
    size_t c = 0;

    memset(host, 'h', 255);
    host[255] = '\0';
    start(&s, host, 65535, NULL, NULL);
    expect_send(&s, (const uint8_t *)"\x05\x01\x00", 3);
    assert_int_equal(sc_socks5_recv(&s, (const uint8_t *)"\x05\x00", 2, &c), 0);
    memcpy(want, "\x05\x01\x00\x03\xff", 5);
    memset(want + 5, 'h', 255);
    want[260] = 0xff;
    want[261] = 0xff;
    expect_send(&s, want, sizeof want);
}

/* ---- replies: every BND type, any split, trailing bytes ----------------- */

static void test_replies_all_splits(void **state)
{
    (void)state;
    static const struct {
        const uint8_t *p;
        size_t n;
    } replies[] = {{reply_ipv4, sizeof reply_ipv4},
                   {reply_ipv6, sizeof reply_ipv6},
                   {reply_domain, sizeof reply_domain}};
    static const uint8_t app[] = "\x00\x30secirc link bytes";

    for (size_t i = 0; i < 3; i++) {
        uint8_t buf[64];
        memcpy(buf, replies[i].p, replies[i].n);
        memcpy(buf + replies[i].n, app, sizeof app);
        size_t total = replies[i].n + sizeof app;

        for (int mode = 0; mode < 4; mode++) {
            struct sc_socks5 s;
            size_t c = 0;
            to_reply_noauth(&s);
            switch (mode) {
            case 0: /* exactly the reply */
                assert_int_equal(feed_whole(&s, buf, replies[i].n, &c), 0);
                break;
            case 1: /* reply and application bytes in one read */
                assert_int_equal(feed_whole(&s, buf, total, &c), 0);
                break;
            case 2: /* one byte at a time */
                assert_int_equal(feed_bytewise(&s, buf, total, &c), 0);
                break;
            default: { /* every two-piece split */
                for (size_t cut = 1; cut < replies[i].n; cut++) {
                    size_t c1 = 0, c2 = 0;
                    to_reply_noauth(&s);
                    assert_int_equal(sc_socks5_recv(&s, buf, cut, &c1), 0);
                    assert_int_equal(c1, cut);
                    assert_int_equal(sc_socks5_want(&s), SC_SOCKS5_WANT_RECV);
                    assert_int_equal(sc_socks5_recv(&s, buf + cut, total - cut, &c2), 0);
                    assert_int_equal(c1 + c2, replies[i].n);
                    assert_int_equal(sc_socks5_want(&s), SC_SOCKS5_WANT_DONE);
                }
                c = replies[i].n;
                break;
            }
            }
            /* Never a byte past the reply: the rest is the caller's. */
            assert_int_equal(c, replies[i].n);
            assert_int_equal(sc_socks5_want(&s), SC_SOCKS5_WANT_DONE);
            assert_int_equal(s.result, SC_SOCKS5_R_SUCCEEDED);
        }
    }
}

/* Bytes after the method answer are not taken as part of it. */
static void test_bytes_after_method_left(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x05, 0x00, 0x05, 0x00, 0x00, 0x01, 1, 2, 3, 4, 0, 80, 'x'};
    struct sc_socks5 s;
    size_t c = 0;

    start(&s, "example.onion", 443, NULL, NULL);
    expect_send(&s, (const uint8_t *)"\x05\x01\x00", 3);
    assert_int_equal(sc_socks5_recv(&s, in, sizeof in, &c), 0);
    assert_int_equal(c, 2);
    expect_send(&s, connect_example, sizeof connect_example);
    size_t c2 = 0;
    assert_int_equal(sc_socks5_recv(&s, in + c, sizeof in - c, &c2), 0);
    assert_int_equal(c2, 10);
    assert_int_equal(sc_socks5_want(&s), SC_SOCKS5_WANT_DONE);
}

static void test_truncated_reply_needs_more(void **state)
{
    (void)state;
    struct sc_socks5 s;
    size_t c = 0;

    to_reply_noauth(&s);
    assert_int_equal(sc_socks5_recv(&s, reply_ipv6, 21, &c), 0);
    assert_int_equal(c, 21);
    assert_int_equal(sc_socks5_want(&s), SC_SOCKS5_WANT_RECV);
    assert_int_equal(s.result, SC_SOCKS5_R_PENDING);
    assert_int_equal(sc_socks5_recv(&s, reply_ipv6, 0, &c), 0); /* empty read */
    assert_int_equal(c, 0);
    assert_int_equal(sc_socks5_want(&s), SC_SOCKS5_WANT_RECV);
    assert_int_equal(sc_socks5_recv(&s, reply_ipv6 + 21, 1, &c), 0);
    assert_int_equal(c, 1);
    assert_int_equal(sc_socks5_want(&s), SC_SOCKS5_WANT_DONE);
}

/* ---- every failure outcome ---------------------------------------------------- */

static void test_every_reply_code(void **state)
{
    (void)state;
    static const struct {
        uint8_t rep;
        const char *name;
    } codes[] = {
        {0x01, "general_failure"},     {0x02, "not_allowed"},
        {0x03, "network_unreachable"}, {0x04, "host_unreachable"},
        {0x05, "connection_refused"},  {0x06, "ttl_expired"},
        {0x07, "command_not_supported"}, {0x08, "address_type_not_supported"},
        {0xf0, "onion_desc_not_found"}, {0xf1, "onion_desc_invalid"},
        {0xf2, "onion_intro_failed"},  {0xf3, "onion_rend_failed"},
        {0xf4, "onion_missing_client_auth"}, {0xf5, "onion_bad_client_auth"},
        {0xf6, "onion_bad_address"},   {0xf7, "onion_intro_timeout"},
        {0x09, "unknown_reply"},       {0x80, "unknown_reply"},
        {0xef, "unknown_reply"},       {0xf8, "unknown_reply"},
        {0xff, "unknown_reply"},
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        /* Tor's failure reply: BND 0.0.0.0:0, then it closes. */
        uint8_t reply[10] = {0x05, codes[i].rep, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            struct sc_socks5 s;
            size_t c = 0;
            to_reply_noauth(&s);
            int err = bytewise ? feed_bytewise(&s, reply, sizeof reply, &c)
                               : feed_whole(&s, reply, sizeof reply, &c);
            assert_int_equal(err, SC_ECONNECT);
            assert_int_equal(c, 2); /* decided on REP */
            check_failed(&s, s.result, codes[i].rep);
            assert_string_equal(sc_socks5_result_name(s.result), codes[i].name);
            assert_true(strlen(sc_socks5_result_text(s.result)) > 0);
        }
    }
}

static void test_result_texts(void **state)
{
    (void)state;
    assert_string_equal(sc_socks5_result_text(SC_SOCKS5_R_HOST_UNREACHABLE), "host unreachable");
    assert_string_equal(sc_socks5_result_text(SC_SOCKS5_R_ONION_DESC_NOT_FOUND),
                        "onion service descriptor can not be found");
    assert_string_equal(sc_socks5_result_text(SC_SOCKS5_R_ONION_INTRO_TIMEOUT),
                        "onion service introduction timed out");
    /* Every outcome has a distinct name and a text. */
    for (int i = 0; i < SC_SOCKS5_R_COUNT; i++) {
        const char *n = sc_socks5_result_name((enum sc_socks5_result)i);
        assert_true(n[0] != '\0' && strcmp(n, "?") != 0);
        assert_true(sc_socks5_result_text((enum sc_socks5_result)i)[0] != '\0');
        for (int j = 0; j < i; j++)
            assert_string_not_equal(n, sc_socks5_result_name((enum sc_socks5_result)j));
    }
    assert_string_equal(sc_socks5_result_name((enum sc_socks5_result)SC_SOCKS5_R_COUNT), "?");
    assert_string_equal(sc_socks5_result_text((enum sc_socks5_result)-1), "?");
    assert_string_equal(sc_socks5_state_name(SC_SOCKS5_READ_REPLY), "read_reply");
    assert_string_equal(sc_socks5_state_name(SC_SOCKS5_CONNECTED), "connected");
    assert_string_equal(sc_socks5_state_name((enum sc_socks5_state)99), "?");
}

static void test_no_acceptable_method(void **state)
{
    (void)state;
    for (int creds = 0; creds < 2; creds++) {
        struct sc_socks5 s;
        size_t c = 0;
        start(&s, "example.onion", 443, creds ? "u" : NULL, creds ? "p" : NULL);
        expect_send(&s, (const uint8_t *)(creds ? "\x05\x01\x02" : "\x05\x01\x00"), 3);
        assert_int_equal(sc_socks5_recv(&s, (const uint8_t *)"\x05\xff", 2, &c), SC_EAUTH);
        assert_int_equal(c, 2);
        check_failed(&s, SC_SOCKS5_R_NO_ACCEPTABLE_METHOD, 0xff);
        assert_string_equal(sc_socks5_result_name(s.result), "no_acceptable_method");
    }
}

/* A method we did not offer is a protocol error, not a downgrade. */
static void test_method_not_offered(void **state)
{
    (void)state;
    static const struct {
        int creds;
        uint8_t method;
    } cases[] = {{1, 0x00}, {0, 0x02}, {0, 0x01}, {1, 0x03}, {0, 0x80}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sc_socks5 s;
        uint8_t in[2] = {0x05, cases[i].method};
        size_t c = 0;
        start(&s, "h", 1, cases[i].creds ? "u" : NULL, cases[i].creds ? "p" : NULL);
        expect_send(&s, (const uint8_t *)(cases[i].creds ? "\x05\x01\x02" : "\x05\x01\x00"), 3);
        assert_int_equal(sc_socks5_recv(&s, in, 2, &c), SC_EFORMAT);
        check_failed(&s, SC_SOCKS5_R_PROTOCOL_ERROR, cases[i].method);
    }
}

static void to_read_auth(struct sc_socks5 *s)
{
    size_t c = 0;
    start(s, "example.onion", 443, "u", "p");
    expect_send(s, (const uint8_t *)"\x05\x01\x02", 3);
    assert_int_equal(sc_socks5_recv(s, (const uint8_t *)"\x05\x02", 2, &c), 0);
    expect_send(s, (const uint8_t *)"\x01\x01u\x01p", 5);
}

static void test_auth_failure(void **state)
{
    (void)state;
    static const uint8_t statuses[] = {0x01, 0x02, 0xff};
    for (size_t i = 0; i < sizeof statuses; i++) {
        struct sc_socks5 s;
        uint8_t in[3] = {0x01, statuses[i], 0x05};
        size_t c = 0;
        to_read_auth(&s);
        assert_int_equal(sc_socks5_recv(&s, in, sizeof in, &c), SC_EAUTH);
        assert_int_equal(c, 2);
        check_failed(&s, SC_SOCKS5_R_AUTH_FAILED, statuses[i]);
        assert_string_equal(sc_socks5_result_name(s.result), "auth_failed");
    }
    /* A SOCKS5 VER where the sub-negotiation VER belongs. */
    struct sc_socks5 s;
    size_t c = 0;
    to_read_auth(&s);
    assert_int_equal(sc_socks5_recv(&s, (const uint8_t *)"\x05\x00", 2, &c), SC_EVERSION);
    assert_int_equal(c, 1);
    check_failed(&s, SC_SOCKS5_R_PROTOCOL_ERROR, 0x05);
}

static void test_wrong_version(void **state)
{
    (void)state;
    struct sc_socks5 s;
    size_t c = 0;

    /* An HTTP proxy on the SOCKS port: refused on the first byte. */
    start(&s, "h", 1, NULL, NULL);
    expect_send(&s, (const uint8_t *)"\x05\x01\x00", 3);
    assert_int_equal(sc_socks5_recv(&s, (const uint8_t *)"HTTP/1.0 400", 12, &c), SC_EVERSION);
    assert_int_equal(c, 1);
    check_failed(&s, SC_SOCKS5_R_PROTOCOL_ERROR, 'H');
    assert_string_equal(sc_socks5_result_name(s.result), "protocol_error");

    /* SOCKS4-style reply byte in the CONNECT reply. */
    to_reply_noauth(&s);
    assert_int_equal(sc_socks5_recv(&s, (const uint8_t *)"\x04\x00\x00\x01", 4, &c), SC_EVERSION);
    assert_int_equal(c, 1);
    check_failed(&s, SC_SOCKS5_R_PROTOCOL_ERROR, 0x04);
}

static void test_malformed_reply(void **state)
{
    (void)state;
    static const struct {
        uint8_t in[6];
        size_t consumed;
        uint8_t code;
    } cases[] = {
        {{0x05, 0x00, 0x01, 0x01, 0, 0}, 3, 0x01}, /* RSV not 0 */
        {{0x05, 0x00, 0x00, 0x00, 0, 0}, 4, 0x00}, /* ATYP 0 */
        {{0x05, 0x00, 0x00, 0x02, 0, 0}, 4, 0x02}, /* ATYP 2 */
        {{0x05, 0x00, 0x00, 0x05, 0, 0}, 4, 0x05}, /* ATYP 5 */
        {{0x05, 0x00, 0x00, 0x03, 0, 0}, 5, 0x00}, /* domain length 0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            struct sc_socks5 s;
            size_t c = 0;
            to_reply_noauth(&s);
            int err = bytewise ? feed_bytewise(&s, cases[i].in, 6, &c)
                               : feed_whole(&s, cases[i].in, 6, &c);
            assert_int_equal(err, SC_EFORMAT);
            assert_int_equal(c, cases[i].consumed);
            check_failed(&s, SC_SOCKS5_R_PROTOCOL_ERROR, cases[i].code);
        }
    }
}

/* ---- calls out of turn ---------------------------------------------------------- */

static void test_out_of_order(void **state)
{
    (void)state;
    uint8_t out[SC_SOCKS5_SEND_MAX_BYTES];
    size_t n = 0, c = 5;
    struct sc_socks5 s;

    start(&s, "example.onion", 443, NULL, NULL);
    /* Receiving before the greeting is out. */
    assert_int_equal(sc_socks5_recv(&s, (const uint8_t *)"\x05\x00", 2, &c), SC_ESTATE);
    assert_int_equal(c, 0);
    assert_int_equal(s.state, SC_SOCKS5_SEND_GREETING);
    /* A greeting that does not fit changes nothing. */
    assert_int_equal(sc_socks5_next_send(&s, out, 2, &n), SC_ENOSPACE);
    assert_int_equal(s.state, SC_SOCKS5_SEND_GREETING);
    expect_send(&s, (const uint8_t *)"\x05\x01\x00", 3);
    /* Sending twice without an answer. */
    assert_int_equal(sc_socks5_next_send(&s, out, sizeof out, &n), SC_ESTATE);
    assert_int_equal(n, 0);
    assert_int_equal(s.state, SC_SOCKS5_READ_METHOD);
    assert_int_equal(sc_socks5_recv(&s, (const uint8_t *)"\x05\x00", 2, &c), 0);
    /* Receiving while the CONNECT is still to be sent. */
    assert_int_equal(sc_socks5_recv(&s, reply_ipv4, sizeof reply_ipv4, &c), SC_ESTATE);
    assert_int_equal(c, 0);
    assert_int_equal(s.state, SC_SOCKS5_SEND_CONNECT);
    assert_int_equal(sc_socks5_next_send(&s, out, sizeof connect_example - 1, &n), SC_ENOSPACE);
    expect_send(&s, connect_example, sizeof connect_example);
    assert_int_equal(sc_socks5_recv(&s, reply_ipv4, sizeof reply_ipv4, &c), 0);
    /* Connected: nothing more to send or read. */
    assert_int_equal(sc_socks5_next_send(&s, out, sizeof out, &n), SC_ESTATE);
    assert_int_equal(sc_socks5_recv(&s, reply_ipv4, sizeof reply_ipv4, &c), SC_ESTATE);
    assert_int_equal(c, 0);
    assert_int_equal(s.state, SC_SOCKS5_CONNECTED);

    /* Failed: the same. */
    to_reply_noauth(&s);
    assert_int_equal(sc_socks5_recv(&s, (const uint8_t *)"\x05\x04", 2, &c), SC_ECONNECT);
    assert_int_equal(sc_socks5_next_send(&s, out, sizeof out, &n), SC_ESTATE);
    assert_int_equal(sc_socks5_recv(&s, reply_ipv4, sizeof reply_ipv4, &c), SC_ESTATE);
    check_failed(&s, SC_SOCKS5_R_HOST_UNREACHABLE, 0x04);
}

static void test_bad_config(void **state)
{
    (void)state;
    char long_host[257], long_cred[257];
    memset(long_host, 'h', 256);
    long_host[256] = '\0';
    memset(long_cred, 'c', 256);
    long_cred[256] = '\0';
    const struct sc_socks5_config bad[] = {
        {.host = "h", .port = 0},
        {.host = NULL, .port = 1},
        {.host = "", .port = 1},
        {.host = long_host, .port = 1},
        {.host = "a b", .port = 1},
        {.host = "a\nb", .port = 1},
        {.host = "a\x7f", .port = 1},
        {.host = "caf\xc3\xa9", .port = 1},
        {.host = "h", .port = 1, .username = "u"},
        {.host = "h", .port = 1, .password = "p"},
        {.host = "h", .port = 1, .username = "", .password = "p"},
        {.host = "h", .port = 1, .username = "u", .password = ""},
        {.host = "h", .port = 1, .username = long_cred, .password = "p"},
        {.host = "h", .port = 1, .username = "u", .password = long_cred},
    };
    uint8_t out[SC_SOCKS5_SEND_MAX_BYTES];
    size_t n = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sc_socks5 s;
        assert_int_equal(sc_socks5_init(&s, &bad[i]), SC_EINVAL);
        assert_int_equal(sc_socks5_next_send(&s, out, sizeof out, &n), SC_ESTATE);
    }
    struct sc_socks5 s;
    assert_int_equal(sc_socks5_init(&s, NULL), SC_EINVAL);
}

/* ---- stream isolation ------------------------------------------------------------- */

static void test_isolation_creds(void **state)
{
    (void)state;
    static const char peer_a[] = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    static const char peer_b[] = "example.onion:443";
    struct sc_socks5_isolation a, a2, b;
    uint8_t h[32];
    char hex[65], want[32];

    assert_int_equal(sc_socks5_isolation_creds(peer_a, &a), 0);
    assert_int_equal(sc_socks5_isolation_creds(peer_a, &a2), 0);
    assert_int_equal(sc_socks5_isolation_creds(peer_b, &b), 0);
    /* "secirc-" + first 16 hex digits of BLAKE2b-256(peer key), password "x". */
    crypto_generichash(h, sizeof h, (const uint8_t *)peer_a, strlen(peer_a), NULL, 0);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(want, sizeof want, "secirc-%.16s", hex);
    assert_string_equal(a.username, want);
    assert_int_equal(strlen(a.username), SC_SOCKS5_ISOLATION_USER_LEN);
    assert_string_equal(a.password, "x");
    assert_string_equal(a.username, a2.username);
    assert_string_not_equal(a.username, b.username);
    assert_int_equal(strncmp(b.username, "secirc-", 7), 0);

    assert_int_equal(sc_socks5_isolation_creds("", &b), SC_EINVAL);
    assert_int_equal(sc_socks5_isolation_creds(NULL, &b), SC_EINVAL);

    /* They are valid RFC 1929 credentials. */
    struct sc_socks5 s;
    size_t c = 0;
    uint8_t req[3 + SC_SOCKS5_ISOLATION_USER_LEN + 1];
    start(&s, "example.onion", 443, a.username, a.password);
    expect_send(&s, (const uint8_t *)"\x05\x01\x02", 3);
    assert_int_equal(sc_socks5_recv(&s, (const uint8_t *)"\x05\x02", 2, &c), 0);
    req[0] = 0x01;
    req[1] = SC_SOCKS5_ISOLATION_USER_LEN;
    memcpy(req + 2, a.username, SC_SOCKS5_ISOLATION_USER_LEN);
    req[2 + SC_SOCKS5_ISOLATION_USER_LEN] = 1;
    req[3 + SC_SOCKS5_ISOLATION_USER_LEN] = 'x';
    expect_send(&s, req, sizeof req);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noauth_exchange),
        cmocka_unit_test(test_userpass_exchange),
        cmocka_unit_test(test_userpass_max_lengths),
        cmocka_unit_test(test_connect_always_domain),
        cmocka_unit_test(test_connect_max_host),
        cmocka_unit_test(test_replies_all_splits),
        cmocka_unit_test(test_bytes_after_method_left),
        cmocka_unit_test(test_truncated_reply_needs_more),
        cmocka_unit_test(test_every_reply_code),
        cmocka_unit_test(test_result_texts),
        cmocka_unit_test(test_no_acceptable_method),
        cmocka_unit_test(test_method_not_offered),
        cmocka_unit_test(test_auth_failure),
        cmocka_unit_test(test_wrong_version),
        cmocka_unit_test(test_malformed_reply),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_isolation_creds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
