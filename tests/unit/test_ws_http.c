/* tests/unit/test_ws_http.c — the WebSocket opening handshake
 * (transport/ws_http.h) over buffers only: RFC 6455's key and sample
 * exchange byte for byte, every server verdict, every malformation the
 * server must answer 400 (or 431, 426), and the client's checks of a 101.
 * CONNECT is in test_http.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transport/ws_http.h"

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* RFC 6455 section 1.2, with CRLF line ends. */
static const char rfc_request[] = "GET /chat HTTP/1.1\r\n"
                                  "Host: server.example.com\r\n"
                                  "Upgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Origin: http://example.com\r\n"
                                  "Sec-WebSocket-Protocol: chat, superchat\r\n"
                                  "Sec-WebSocket-Version: 13\r\n"
                                  "\r\n";

/* A good upgrade to the default path; the %s goes before the blank line. */
#define UPGRADE_FMT                                                                                \
    "GET /relay HTTP/1.1\r\n"                                                                      \
    "Host: relay.example:8080\r\n"                                                                 \
    "Upgrade: websocket\r\n"                                                                       \
    "Connection: Upgrade\r\n"                                                                      \
    "Sec-WebSocket-Key: " RFC_KEY "\r\n"                                                           \
    "Sec-WebSocket-Version: 13\r\n"                                                                \
    "%s\r\n"

static const char good_101[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                               "\r\n";

/* Parses text (all of it) as a request; asserts a verdict came out. */
static enum sc_ws_verdict classify_n(const char *text, size_t len,
                                     const struct sc_ws_server_config *cfg,
                                     struct sc_ws_request *req)
{
    assert_int_equal(sc_ws_server_parse((const uint8_t *)text, len, cfg, req), 1);
    assert_non_null(req->why);
    return req->verdict;
}

static enum sc_ws_verdict classify(const char *text, const struct sc_ws_server_config *cfg,
                                   struct sc_ws_request *req)
{
    return classify_n(text, strlen(text), cfg, req);
}

/* UPGRADE_FMT with extra field lines. */
static enum sc_ws_verdict classify_upgrade(const char *extra, const struct sc_ws_server_config *cfg,
                                           struct sc_ws_request *req)
{
    char text[2048];
    snprintf(text, sizeof text, UPGRADE_FMT, extra);
    return classify(text, cfg, req);
}

/* The answer to req, as a string. */
static const char *reply(const struct sc_ws_request *req)
{
    static char out[1024];
    size_t n = 0;
    assert_int_equal(sc_ws_server_reply(req, out, sizeof out, &n), 0);
    assert_int_equal(n, strlen(out));
    return out;
}

/* Checks the shape every non-101 answer must have and returns its body. */
static const char *check_error_reply(const char *out, int status)
{
    char line[64];
    snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
    assert_memory_equal(out, line, strlen(line));
    const char *body = strstr(out, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    char cl[64];
    snprintf(cl, sizeof cl, "\r\nContent-Length: %zu\r\n", strlen(body));
    assert_non_null(strstr(out, cl));
    assert_non_null(strstr(out, "\r\nContent-Type: text/plain"));
    assert_true(strstr(out, "\r\nConnection: close\r\n") != NULL ||
                strstr(out, "\r\nConnection: Upgrade, close\r\n") != NULL);
    assert_null(strstr(out, "Server:"));
    assert_true(strlen(body) > 0 && strlen(body) < 100);
    return body;
}

/* ---- keys ------------------------------------------------------------------- */

static void test_accept_key_rfc(void **state)
{
    (void)state;
    char out[SC_WS_ACCEPT_SIZE];
    assert_int_equal(sc_ws_accept_key(RFC_KEY, out), 0);
    assert_string_equal(out, RFC_ACCEPT);
    /* Another key, checked against Python's hashlib + base64. */
    assert_int_equal(sc_ws_accept_key("AAECAwQFBgcICQoLDA0ODw==", out), 0);
    assert_string_equal(out, "Bz3qJYTGdOe8gUSpLosEdiLKDrk=");
    char longkey[80];
    memset(longkey, 'A', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    assert_int_equal(sc_ws_accept_key(longkey, out), SC_EINVAL);
}

static void test_client_key(void **state)
{
    (void)state;
    char key[SC_WS_KEY_SIZE];
    sc_ws_client_key((const uint8_t *)"the sample nonce", key);
    assert_string_equal(key, RFC_KEY);
    const uint8_t seq[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    sc_ws_client_key(seq, key);
    assert_string_equal(key, "AAECAwQFBgcICQoLDA0ODw==");
}

/* ---- server verdicts -------------------------------------------------------- */

static void test_rfc_sample_answered(void **state)
{
    (void)state;
    static const char *const origins[] = {"http://example.com"};
    struct sc_ws_server_config cfg = {"/chat", origins, 1};
    struct sc_ws_request req;

    assert_int_equal(classify(rfc_request, &cfg, &req), SC_WS_SWITCH);
    assert_int_equal(req.head_len, strlen(rfc_request));
    assert_string_equal(req.accept, RFC_ACCEPT);
    assert_false(req.subprotocol); /* "chat, superchat": we select neither */
    assert_string_equal(reply(&req), "HTTP/1.1 101 Switching Protocols\r\n"
                                     "Upgrade: websocket\r\n"
                                     "Connection: Upgrade\r\n"
                                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                     "\r\n");
}

static void test_subprotocol(void **state)
{
    (void)state;
    struct sc_ws_request req;

    assert_int_equal(classify_upgrade("Sec-WebSocket-Protocol: chat, secirc.v1\r\n", NULL, &req),
                     SC_WS_SWITCH);
    assert_true(req.subprotocol);
    assert_string_equal(reply(&req), "HTTP/1.1 101 Switching Protocols\r\n"
                                     "Upgrade: websocket\r\n"
                                     "Connection: Upgrade\r\n"
                                     "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                                     "Sec-WebSocket-Protocol: secirc.v1\r\n"
                                     "\r\n");
    /* Offered over two fields. */
    assert_int_equal(classify_upgrade("Sec-WebSocket-Protocol: chat\r\n"
                                      "Sec-WebSocket-Protocol: secirc.v1\r\n",
                                      NULL, &req),
                     SC_WS_SWITCH);
    assert_true(req.subprotocol);
    /* Only others, or another case: accepted without a subprotocol. */
    assert_int_equal(classify_upgrade("Sec-WebSocket-Protocol: SECIRC.V1, mqtt\r\n", NULL, &req),
                     SC_WS_SWITCH);
    assert_false(req.subprotocol);
    assert_null(strstr(reply(&req), "Sec-WebSocket-Protocol"));
    assert_int_equal(classify_upgrade("Sec-WebSocket-Protocol: a b\r\n", NULL, &req),
                     SC_WS_BAD_REQUEST);
}

static void test_extensions_declined(void **state)
{
    (void)state;
    struct sc_ws_request req;

    assert_int_equal(classify_upgrade("Sec-WebSocket-Extensions: permessage-deflate; "
                                      "client_max_window_bits\r\n",
                                      NULL, &req),
                     SC_WS_SWITCH);
    assert_null(strstr(reply(&req), "Extensions"));
}

static void test_origin_allow_list(void **state)
{
    (void)state;
    static const char *const origins[] = {"https://relay.example:8443", "http://example.com"};
    struct sc_ws_server_config cfg = {NULL, origins, 2};
    struct sc_ws_request req;

    assert_int_equal(classify_upgrade("Origin: HTTPS://Relay.Example:8443\r\n", &cfg, &req),
                     SC_WS_SWITCH);
    assert_int_equal(classify_upgrade("Origin: http://example.com\r\n", &cfg, &req), SC_WS_SWITCH);
    assert_int_equal(classify_upgrade("Origin: https://evil.example\r\n", &cfg, &req),
                     SC_WS_FORBIDDEN);
    assert_string_equal(check_error_reply(reply(&req), 403), "Forbidden.\n");
    assert_int_equal(classify_upgrade("Origin: https://relay.example\r\n", &cfg, &req),
                     SC_WS_FORBIDDEN);
    assert_int_equal(classify_upgrade("Origin: null\r\n", &cfg, &req), SC_WS_FORBIDDEN);
    /* No Origin: a non-browser client, allowed. */
    assert_int_equal(classify_upgrade("", &cfg, &req), SC_WS_SWITCH);
    /* An empty list allows every origin. */
    assert_int_equal(classify_upgrade("Origin: https://evil.example\r\n", NULL, &req),
                     SC_WS_SWITCH);
}

static void test_paths(void **state)
{
    (void)state;
    struct sc_ws_request req;
    char text[1024];
    static const struct {
        const char *target;
        enum sc_ws_verdict upgrade, plain;
    } cases[] = {
        {"/relay", SC_WS_SWITCH, SC_WS_PAGE},
        {"/relay?token=abc%20d", SC_WS_SWITCH, SC_WS_PAGE},
        {"/relay?", SC_WS_SWITCH, SC_WS_PAGE},
        {"/", SC_WS_NOT_FOUND, SC_WS_PAGE},
        {"/?x=1", SC_WS_NOT_FOUND, SC_WS_PAGE},
        {"/relay/", SC_WS_NOT_FOUND, SC_WS_NOT_FOUND},
        {"/Relay", SC_WS_NOT_FOUND, SC_WS_NOT_FOUND},
        {"/relayx", SC_WS_NOT_FOUND, SC_WS_NOT_FOUND},
        {"/other", SC_WS_NOT_FOUND, SC_WS_NOT_FOUND},
        {"/%72elay", SC_WS_NOT_FOUND, SC_WS_NOT_FOUND}, /* exact, no decoding */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text,
                 "GET %s HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 cases[i].target);
        assert_int_equal(classify(text, NULL, &req), cases[i].upgrade);
        snprintf(text, sizeof text, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", cases[i].target);
        assert_int_equal(classify(text, NULL, &req), cases[i].plain);
    }
    assert_int_equal(classify("GET /nope HTTP/1.1\r\nHost: h\r\n\r\n", NULL, &req),
                     SC_WS_NOT_FOUND);
    assert_string_equal(check_error_reply(reply(&req), 404), "Not found.\n");
    /* A configured path. */
    struct sc_ws_server_config cfg = {"/ws/v1", NULL, 0};
    snprintf(text, sizeof text,
             "GET /ws/v1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n");
    assert_int_equal(classify(text, &cfg, &req), SC_WS_SWITCH);
    assert_int_equal(classify(text, NULL, &req), SC_WS_NOT_FOUND);
    /* A config path that is not a plain origin-form path is refused. */
    struct sc_ws_server_config bad = {"relay", NULL, 0};
    assert_int_equal(sc_ws_server_parse((const uint8_t *)text, strlen(text), &bad, &req),
                     SC_EINVAL);
    bad.path = "/relay?x";
    assert_int_equal(sc_ws_server_parse((const uint8_t *)text, strlen(text), &bad, &req),
                     SC_EINVAL);
}

static void test_plain_page(void **state)
{
    (void)state;
    struct sc_ws_request req;

    /* Keep-alive and an Upgrade to something else are still a plain GET. */
    assert_int_equal(classify("GET /relay HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, "
                              "Upgrade\r\nUpgrade: h2c\r\nAccept: */*\r\n\r\n",
                              NULL, &req),
                     SC_WS_PAGE);
    const char *body = check_error_reply(reply(&req), 200);
    assert_string_equal(body, "This is a secirc relay.\n");
    for (const char *p = body; *p; p++)
        assert_false(*p >= '0' && *p <= '9'); /* no version numbers */
}

static void test_method_405(void **state)
{
    (void)state;
    struct sc_ws_request req;
    static const char *const reqs[] = {
        "POST /relay HTTP/1.1\r\nHost: h\r\n\r\n",
        "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
        "get /relay HTTP/1.1\r\nHost: h\r\n\r\n", /* methods are case-sensitive */
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT relay.example:443 HTTP/1.1\r\nHost: relay.example:443\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++)
        assert_int_equal(classify(reqs[i], NULL, &req), SC_WS_BAD_METHOD);
    const char *out = reply(&req);
    check_error_reply(out, 405);
    assert_non_null(strstr(out, "\r\nAllow: GET\r\n"));
}

static void test_version_426(void **state)
{
    (void)state;
    struct sc_ws_request req;
    char text[1024];

    snprintf(text, sizeof text,
             "GET /relay HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
             "Sec-WebSocket-Version: 8\r\n\r\n");
    assert_int_equal(classify(text, NULL, &req), SC_WS_UPGRADE_REQUIRED);
    const char *out = reply(&req);
    check_error_reply(out, 426);
    assert_non_null(strstr(out, "HTTP/1.1 426 Upgrade Required\r\n"));
    assert_non_null(strstr(out, "\r\nSec-WebSocket-Version: 13\r\n"));
    assert_non_null(strstr(out, "\r\nUpgrade: websocket\r\n"));
    static const char *const bad[] = {"13a", "013", "256", "", "1 3", "-13"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text,
                 "GET /relay HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
                 "Sec-WebSocket-Version: %s\r\n\r\n",
                 bad[i]);
        assert_int_equal(classify(text, NULL, &req), SC_WS_BAD_REQUEST);
    }
}

/* Requests the server must answer 400, each with what is wrong with it. */
static const char *const bad_requests[] = {
    /* bare LF */
    "GET /relay HTTP/1.1\nHost: h\n\n",
    "GET /relay HTTP/1.1\r\nHost: h\nUpgrade: websocket\r\n\r\n",
    /* bare CR */
    "GET /relay HTTP/1.1\r\nHost: h\rx\r\n\r\n",
    /* obs-fold */
    "GET /relay HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n  , h2c\r\n\r\n",
    "GET /relay HTTP/1.1\r\nHost: h\r\n\tx\r\n\r\n",
    /* a leading blank line, whitespace or a missing part in the request line */
    "\r\nGET /relay HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET  /relay HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /relay  HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /relay HTTP/1.1 \r\nHost: h\r\n\r\n",
    "GET /relay\r\nHost: h\r\n\r\n",
    "\r\n\r\n",
    /* versions */
    "GET /relay HTTP/1.0\r\nHost: h\r\n\r\n",
    "GET /relay HTTP/2.0\r\nHost: h\r\n\r\n",
    "GET /relay http/1.1\r\nHost: h\r\n\r\n",
    "GET /relay HTTP/1.10\r\nHost: h\r\n\r\n",
    /* targets that are not origin-form */
    "GET http://h/relay HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET * HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET relay HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /relay#frag HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /re%2 HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /re%zzlay HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /re\"lay HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /r\xc3\xa9lay HTTP/1.1\r\nHost: h\r\n\r\n",
    /* Host */
    "GET /relay HTTP/1.1\r\n\r\n",
    "GET /relay HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n",
    "GET /relay HTTP/1.1\r\nHost:\r\n\r\n",
    "GET /relay HTTP/1.1\r\nHost: a b\r\n\r\n",
    /* field syntax */
    "GET /relay HTTP/1.1\r\nHost : h\r\n\r\n",
    "GET /relay HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n",
    "GET /relay HTTP/1.1\r\nHost: h\r\nNo colon\r\n\r\n",
    "GET /relay HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n",
    "GET /relay HTTP/1.1\r\nHost: h\r\nX-A: a\x7fz\r\n\r\n",
    "GET /relay HTTP/1.1\r\nHost: h\r\nX(A): a\r\n\r\n",
    /* a body on a GET */
    "GET /relay HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    "GET /relay HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
};

/* Upgrades (to the right path) the server must answer 400: extra lines for
 * a request with Host and the rest given here. */
static const char *const bad_upgrades[] = {
    /* missing key */
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
    /* a key of 15 bytes, of 17 bytes, unpadded, bad alphabet, non-canonical, empty */
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\r\n",
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSE=\r\n",
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n",
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n",
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n",
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key:\r\n",
    /* duplicate key (even equal), duplicate version, duplicate Origin */
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Key: " RFC_KEY "\r\n",
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " RFC_KEY "\r\n",
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: " RFC_KEY "\r\nOrigin: http://a\r\nOrigin: http://a\r\n",
    /* no version */
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n",
    /* Connection without upgrade, or none */
    "Upgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: " RFC_KEY "\r\n",
    "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " RFC_KEY "\r\n",
    "Upgrade: websocket\r\nConnection: up grade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: " RFC_KEY "\r\n",
    /* Upgrade without websocket, or none, with the WebSocket fields */
    "Upgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: " RFC_KEY "\r\n",
    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " RFC_KEY "\r\n",
    "Upgrade: websocket/13\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: " RFC_KEY "\r\n",
    "Upgrade: web socket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: " RFC_KEY "\r\n",
};

static void test_malformed_400(void **state)
{
    (void)state;
    struct sc_ws_request req;
    char text[2048];

    for (size_t i = 0; i < sizeof bad_requests / sizeof bad_requests[0]; i++) {
        if (classify(bad_requests[i], NULL, &req) != SC_WS_BAD_REQUEST)
            fail_msg("bad_requests[%zu] got %d (%s)", i, req.verdict, req.why);
        check_error_reply(reply(&req), 400);
    }
    for (size_t i = 0; i < sizeof bad_upgrades / sizeof bad_upgrades[0]; i++) {
        snprintf(text, sizeof text, "GET /relay HTTP/1.1\r\nHost: h\r\n%s\r\n", bad_upgrades[i]);
        if (classify(text, NULL, &req) != SC_WS_BAD_REQUEST)
            fail_msg("bad_upgrades[%zu] got %d (%s)", i, req.verdict, req.why);
    }
    /* NUL inside a field value. */
    static const char nul[] = "GET /relay HTTP/1.1\r\nHost: h\0x\r\n\r\n";
    assert_int_equal(classify_n(nul, sizeof nul - 1, NULL, &req), SC_WS_BAD_REQUEST);
    /* A bare LF is refused before the head is complete. */
    assert_int_equal(classify("GET /relay HTTP/1.1\n", NULL, &req), SC_WS_BAD_REQUEST);
    /* Field names are case-insensitive, values trimmed, lists tolerate
     * empty elements. */
    assert_int_equal(classify("GET /relay HTTP/1.1\r\nhOsT:  h \r\nUPGRADE:\tWebSocket \r\n"
                              "connection: keep-alive, , UPGRADE\r\n"
                              "sec-websocket-key:   " RFC_KEY "\t\r\n"
                              "SEC-WEBSOCKET-VERSION: 13\r\nContent-Length: 0\r\n\r\n",
                              NULL, &req),
                     SC_WS_SWITCH);
    assert_string_equal(req.accept, RFC_ACCEPT);
}

/* A request padded to exactly `total` bytes of head. */
static size_t padded_request(char *buf, size_t total)
{
    static const char start[] = "GET /relay HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
                                "Sec-WebSocket-Version: 13\r\nX-Pad: ";
    size_t n = strlen(start);
    size_t pad = total - n - 4; /* the X-Pad value; then CRLF CRLF */
    memcpy(buf, start, n);
    memset(buf + n, 'a', pad);
    memcpy(buf + n + pad, "\r\n\r\n", 4);
    return n + pad + 4;
}

static void test_head_limit(void **state)
{
    (void)state;
    static char buf[SC_HTTP_HEAD_MAX_BYTES + 64];
    struct sc_ws_request req;

    size_t n = padded_request(buf, SC_HTTP_HEAD_MAX_BYTES);
    assert_int_equal(n, SC_HTTP_HEAD_MAX_BYTES);
    assert_int_equal(classify_n(buf, n, NULL, &req), SC_WS_SWITCH);
    assert_int_equal(req.head_len, SC_HTTP_HEAD_MAX_BYTES);

    n = padded_request(buf, SC_HTTP_HEAD_MAX_BYTES + 1);
    assert_int_equal(n, SC_HTTP_HEAD_MAX_BYTES + 1);
    assert_int_equal(classify_n(buf, n, NULL, &req), SC_WS_TOO_LARGE);
    const char *out = reply(&req);
    check_error_reply(out, 431);
    assert_non_null(strstr(out, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));

    /* Streaming: 8191 bytes without an end still need more, 8192 do not. */
    size_t pos = 0;
    memset(buf, 'a', sizeof buf);
    assert_int_equal(sc_http_head_find((uint8_t *)buf, SC_HTTP_HEAD_MAX_BYTES - 1, &pos), 0);
    assert_int_equal(sc_http_head_find((uint8_t *)buf, SC_HTTP_HEAD_MAX_BYTES, &pos), SC_ETOOBIG);
    assert_int_equal(sc_ws_server_parse((uint8_t *)buf, SC_HTTP_HEAD_MAX_BYTES - 1, NULL, &req), 0);
}

static void test_incomplete_and_trailing(void **state)
{
    (void)state;
    struct sc_ws_request req;
    size_t len = strlen(rfc_request);
    static const struct sc_ws_server_config cfg = {"/chat", NULL, 0};

    for (size_t i = 0; i < len; i++)
        assert_int_equal(sc_ws_server_parse((const uint8_t *)rfc_request, i, &cfg, &req), 0);

    /* Byte by byte with a kept position: complete exactly at the last byte. */
    size_t pos = 0;
    for (size_t i = 0; i < len; i++) {
        int r = sc_http_head_find((const uint8_t *)rfc_request, i + 1, &pos);
        assert_int_equal(r, i + 1 == len ? 1 : 0);
    }
    assert_int_equal(pos, len);

    /* The first frame in the same read stays for the WebSocket layer. */
    char buf[1024];
    memcpy(buf, rfc_request, len);
    memcpy(buf + len, "\x82\x85\x01\x02\x03\x04hello", 11);
    assert_int_equal(classify_n(buf, len + 11, &cfg, &req), SC_WS_SWITCH);
    assert_int_equal(req.head_len, len);
}

/* ---- server answers ----------------------------------------------------------- */

static void test_reply_builders(void **state)
{
    (void)state;
    static const enum sc_ws_verdict all[] = {
        SC_WS_PAGE,       SC_WS_BAD_REQUEST,      SC_WS_FORBIDDEN, SC_WS_NOT_FOUND,
        SC_WS_BAD_METHOD, SC_WS_UPGRADE_REQUIRED, SC_WS_TOO_LARGE};
    char out[512];
    size_t n, need;

    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        assert_int_equal(sc_ws_reply_status(all[i], out, sizeof out, &need), 0);
        check_error_reply(out, (int)all[i]);
        assert_int_equal(sc_ws_reply_status(all[i], out, need, &n), SC_ENOSPACE);
        assert_int_equal(sc_ws_reply_status(all[i], out, need + 1, &n), 0);
        assert_int_equal(n, need);
    }
    assert_int_equal(sc_ws_reply_status(SC_WS_SWITCH, out, sizeof out, &n), SC_EINVAL);
    assert_int_equal(sc_ws_reply_status((enum sc_ws_verdict)500, out, sizeof out, &n), SC_EINVAL);
    assert_int_equal(sc_ws_reply_switch(RFC_ACCEPT, true, out, 40, &n), SC_ENOSPACE);
    const char short_accept[SC_WS_ACCEPT_SIZE] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo";
    const char crlf_accept[SC_WS_ACCEPT_SIZE] = "s3pPLMBiTxaQ9kYG\r\nhZRbK+xOo=";
    assert_int_equal(sc_ws_reply_switch(short_accept, false, out, sizeof out, &n), SC_EINVAL);
    assert_int_equal(sc_ws_reply_switch(crlf_accept, false, out, sizeof out, &n), SC_EINVAL);
}

/* ---- client side ---------------------------------------------------------------- */

static void test_client_request(void **state)
{
    (void)state;
    char out[1024];
    size_t n, need;
    struct sc_ws_client_params p = {.host = "relay.example", .port = 80};

    assert_int_equal(sc_ws_client_request(&p, RFC_KEY, out, sizeof out, &need), 0);
    assert_string_equal(out, "GET /relay HTTP/1.1\r\n"
                             "Host: relay.example\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Key: " RFC_KEY "\r\n"
                             "Sec-WebSocket-Version: 13\r\n"
                             "\r\n");
    for (size_t cap = 0; cap <= need; cap++)
        assert_int_equal(sc_ws_client_request(&p, RFC_KEY, out, cap, &n), SC_ENOSPACE);

    p = (struct sc_ws_client_params){.host = "2001:db8::1",
                                     .port = 8443,
                                     .tls = true,
                                     .path = "/chat?room=1",
                                     .origin = "https://example.com",
                                     .subprotocol = true};
    assert_int_equal(sc_ws_client_request(&p, RFC_KEY, out, sizeof out, &n), 0);
    assert_string_equal(out, "GET /chat?room=1 HTTP/1.1\r\n"
                             "Host: [2001:db8::1]:8443\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Key: " RFC_KEY "\r\n"
                             "Sec-WebSocket-Version: 13\r\n"
                             "Sec-WebSocket-Protocol: secirc.v1\r\n"
                             "Origin: https://example.com\r\n"
                             "\r\n");
    static const struct {
        const char *host;
        uint16_t port;
        bool tls;
        const char *want;
    } hosts[] = {
        {"::1", 443, true, "Host: [::1]\r\n"},
        {"::1", 80, true, "Host: [::1]:80\r\n"},
        {"10.0.0.1", 443, false, "Host: 10.0.0.1:443\r\n"},
        {"x.onion", 80, false, "Host: x.onion\r\n"},
    };
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        p = (struct sc_ws_client_params){
            .host = hosts[i].host, .port = hosts[i].port, .tls = hosts[i].tls};
        assert_int_equal(sc_ws_client_request(&p, RFC_KEY, out, sizeof out, &n), 0);
        assert_non_null(strstr(out, hosts[i].want));
    }

    /* Nothing that could inject a field, or not be sent as is. */
    static const struct sc_ws_client_params bad[] = {
        {.host = "", .port = 80},
        {.host = NULL, .port = 80},
        {.host = "a b", .port = 80},
        {.host = "a\r\nX-Evil: 1", .port = 80},
        {.host = "[::1]", .port = 80},
        {.host = "fe80::1%eth0", .port = 80},
        {.host = "a", .port = 0},
        {.host = "a", .port = 80, .path = "relay"},
        {.host = "a", .port = 80, .path = "/a b"},
        {.host = "a", .port = 80, .path = "/a\r\nX: y"},
        {.host = "a", .port = 80, .origin = "http://a\r\nX: y"},
        {.host = "a", .port = 80, .origin = ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sc_ws_client_request(&bad[i], RFC_KEY, out, sizeof out, &n), SC_EINVAL);
    p = (struct sc_ws_client_params){.host = "a", .port = 80};
    const char short_key[SC_WS_KEY_SIZE] = "dGhlIHNhbXBsZSBub25j"; /* 15 bytes */
    assert_int_equal(sc_ws_client_request(&p, short_key, out, sizeof out, &n), SC_EINVAL);
}

static void test_round_trip(void **state)
{
    (void)state;
    char key[SC_WS_KEY_SIZE], accept[SC_WS_ACCEPT_SIZE], out[1024];
    const uint8_t rnd[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0xff};
    struct sc_ws_client_params p = {.host = "::1", .port = 4443, .subprotocol = true};
    struct sc_ws_request req;
    struct sc_http_reply rep;
    size_t n;

    sc_ws_client_key(rnd, key);
    assert_int_equal(sc_ws_accept_key(key, accept), 0);
    assert_int_equal(sc_ws_client_request(&p, key, out, sizeof out, &n), 0);
    assert_int_equal(classify(out, NULL, &req), SC_WS_SWITCH);
    assert_string_equal(req.accept, accept);
    assert_int_equal(sc_ws_server_reply(&req, out, sizeof out, &n), 0);
    assert_int_equal(sc_ws_client_parse((const uint8_t *)out, n, accept, true, &rep), 1);
    assert_int_equal(rep.status, 101);
    assert_int_equal(rep.head_len, n);
    assert_true(rep.subprotocol);
}

/* Runs the client check on text (all of it) with the RFC accept. */
static int client_check(const char *text, bool offered, struct sc_http_reply *rep)
{
    return sc_ws_client_parse((const uint8_t *)text, strlen(text), RFC_ACCEPT, offered, rep);
}

static void test_client_response(void **state)
{
    (void)state;
    struct sc_http_reply rep;
    char buf[1024];
    size_t len = strlen(good_101);

    /* Frames after the head are not consumed. */
    memcpy(buf, good_101, len);
    memcpy(buf + len,
           "\x82\x03"
           "abc",
           5);
    assert_int_equal(sc_ws_client_parse((uint8_t *)buf, len + 5, RFC_ACCEPT, false, &rep), 1);
    assert_int_equal(rep.head_len, len);
    assert_int_equal(rep.status, 101);
    assert_false(rep.subprotocol);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(sc_ws_client_parse((uint8_t *)buf, i, RFC_ACCEPT, false, &rep), 0);

    /* Any reason phrase, or none; names case-insensitive; Connection a list. */
    assert_int_equal(client_check("HTTP/1.1 101\r\nupgrade: WebSocket\r\nCONNECTION: x, upgrade\r\n"
                                  "sec-websocket-accept: " RFC_ACCEPT "\r\n\r\n",
                                  false, &rep),
                     1);
    assert_int_equal(
        client_check("HTTP/1.1 101 Web Socket Protocol Handshake\r\nUpgrade: "
                     "websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT
                     "\r\nSec-WebSocket-Protocol: secirc.v1\r\n\r\n",
                     true, &rep),
        1);
    assert_true(rep.subprotocol);

    static const struct {
        const char *text;
        bool offered;
        int err;
    } bad[] = {
        /* wrong, missing, twice, or differently cased accept */
        {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: Bz3qJYTGdOe8gUSpLosEdiLKDrk=\r\n\r\n",
         false, SC_EAUTH},
        {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false, SC_EAUTH},
        {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: "
         "Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\nSec-WebSocket-Accept: " RFC_ACCEPT
         "\r\n\r\n",
         false, SC_EAUTH},
        {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: S3PPLMBITXAQ9KYGZZHZRBK+XOO=\r\n\r\n",
         false, SC_EAUTH},
        /* missing or wrong Upgrade */
        {"HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
         false, SC_EFORMAT},
        {"HTTP/1.1 101 OK\r\nUpgrade: websocket, h2c\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
         false, SC_EFORMAT},
        /* Connection without upgrade */
        {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
         "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
         false, SC_EFORMAT},
        /* extensions we never offered */
        {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: "
         "Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT
         "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
         false, SC_EFORMAT},
        /* a subprotocol not offered, or another one */
        {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: "
         "Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT
         "\r\nSec-WebSocket-Protocol: secirc.v1\r\n\r\n",
         false, SC_EFORMAT},
        {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: "
         "Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
         true, SC_EFORMAT},
        /* syntax */
        {"HTTP/1.0 101 OK\r\nUpgrade: websocket\r\nConnection: "
         "Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
         false, SC_EFORMAT},
        {"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n Connection: "
         "Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
         false, SC_EFORMAT},
        {"HTTP/1.1 10 OK\r\n\r\n", false, SC_EFORMAT},
        {"HTTP/1.1 1011\r\n\r\n", false, SC_EFORMAT},
        {"ICY 200 OK\r\n\r\n", false, SC_EFORMAT},
        {"HTTP/1.1 101 OK\nUpgrade: websocket\n\n", false, SC_EFORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = client_check(bad[i].text, bad[i].offered, &rep);
        if (r != bad[i].err)
            fail_msg("bad[%zu]: %d (%s)", i, r, rep.why);
        assert_non_null(rep.why);
    }

    /* Other statuses come back as the code. */
    assert_int_equal(
        client_check("HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nNot found.", false, &rep),
        SC_ECONNECT);
    assert_int_equal(rep.status, 404);
    assert_int_equal(client_check("HTTP/1.0 403 Forbidden\r\n\r\n", false, &rep), SC_ECONNECT);
    assert_int_equal(rep.status, 403);

    /* Too big. */
    static char big[SC_HTTP_HEAD_MAX_BYTES + 1];
    memcpy(big, "HTTP/1.1 101 OK\r\nX: ", 20);
    memset(big + 20, 'a', sizeof big - 20);
    assert_int_equal(sc_ws_client_parse((uint8_t *)big, sizeof big, RFC_ACCEPT, false, &rep),
                     SC_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key_rfc),
        cmocka_unit_test(test_client_key),
        cmocka_unit_test(test_rfc_sample_answered),
        cmocka_unit_test(test_subprotocol),
        cmocka_unit_test(test_extensions_declined),
        cmocka_unit_test(test_origin_allow_list),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_plain_page),
        cmocka_unit_test(test_method_405),
        cmocka_unit_test(test_version_426),
        cmocka_unit_test(test_malformed_400),
        cmocka_unit_test(test_head_limit),
        cmocka_unit_test(test_incomplete_and_trailing),
        cmocka_unit_test(test_reply_builders),
        cmocka_unit_test(test_client_request),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_client_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
