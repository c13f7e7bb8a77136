/* tests/unit/test_http.c — the HTTP CONNECT proxy exchange
 * (transport/http.h) over buffers only: the request with and without Basic
 * credentials (RFC 7617's example), and every kind of proxy answer: the
 * tunnel open with the destination's first bytes left unconsumed, 407,
 * other refusals by their code, malformed and oversized heads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transport/http.h"
#include "transport/http_connect.h"

static int find(const char *text, size_t len, size_t *pos)
{
    *pos = 0;
    return sc_http_head_find((const uint8_t *)text, len, pos);
}

static void test_head_find(void **state)
{
    (void)state;
    size_t pos;

    assert_int_equal(find("A\r\n\r\nrest", 9, &pos), 1);
    assert_int_equal(pos, 5);
    assert_int_equal(find("A\r\n\r", 4, &pos), 0);
    assert_int_equal(find("", 0, &pos), 0);
    assert_int_equal(find("A\n", 2, &pos), SC_EFORMAT); /* bare LF */
    assert_int_equal(find("\n", 1, &pos), SC_EFORMAT);
    assert_int_equal(find("A\rB", 3, &pos), SC_EFORMAT);        /* bare CR */
    assert_int_equal(find("A\0\r\n\r\n", 6, &pos), SC_EFORMAT); /* NUL */
    /* A CR at the end waits for the next byte. */
    assert_int_equal(find("A\r", 2, &pos), 0);
    pos = 3;
    assert_int_equal(sc_http_head_find((const uint8_t *)"AB", 2, &pos), SC_EINVAL);

    /* A head ending exactly at the bound is complete; one byte later is not. */
    static char buf[SC_HTTP_HEAD_MAX_BYTES + 1];
    memset(buf, 'a', sizeof buf);
    memcpy(buf + SC_HTTP_HEAD_MAX_BYTES - 4, "\r\n\r\n", 4);
    assert_int_equal(find(buf, sizeof buf, &pos), 1);
    assert_int_equal(pos, SC_HTTP_HEAD_MAX_BYTES);
    memset(buf, 'a', sizeof buf);
    memcpy(buf + SC_HTTP_HEAD_MAX_BYTES - 3, "\r\n\r\n", 4);
    assert_int_equal(find(buf, sizeof buf, &pos), SC_ETOOBIG);
}

static void test_connect_request(void **state)
{
    (void)state;
    char out[1024];
    size_t n, need;

    assert_int_equal(
        sc_http_connect_request("relay.example", 443, NULL, NULL, out, sizeof out, &need), 0);
    assert_string_equal(out, "CONNECT relay.example:443 HTTP/1.1\r\n"
                             "Host: relay.example:443\r\n"
                             "\r\n");
    assert_int_equal(sc_http_connect_request("relay.example", 443, NULL, NULL, out, need, &n),
                     SC_ENOSPACE);
    /* RFC 7617 section 2's example. */
    assert_int_equal(
        sc_http_connect_request("2001:db8::1", 80, "Aladdin", "open sesame", out, sizeof out, &n),
        0);
    assert_string_equal(out, "CONNECT [2001:db8::1]:80 HTTP/1.1\r\n"
                             "Host: [2001:db8::1]:80\r\n"
                             "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"
                             "\r\n");
    assert_int_equal(n, strlen(out));
    assert_int_equal(sc_http_connect_request("h", 1, "proxyuser", NULL, out, sizeof out, &n), 0);
    assert_non_null(strstr(out, "Proxy-Authorization: Basic cHJveHl1c2VyOg==\r\n"));

    char longpw[300];
    memset(longpw, 'p', sizeof longpw - 1);
    longpw[sizeof longpw - 1] = 0;
    assert_int_equal(sc_http_connect_request("h", 1, "a:b", "c", out, sizeof out, &n), SC_EINVAL);
    assert_int_equal(sc_http_connect_request("h", 1, "a", "c\r\nX: y", out, sizeof out, &n),
                     SC_EINVAL);
    assert_int_equal(sc_http_connect_request("h", 1, "a", longpw, out, sizeof out, &n), SC_EINVAL);
    assert_int_equal(sc_http_connect_request("h", 0, NULL, NULL, out, sizeof out, &n), SC_EINVAL);
    assert_int_equal(sc_http_connect_request("h/x", 1, NULL, NULL, out, sizeof out, &n), SC_EINVAL);
    assert_int_equal(sc_http_connect_request("h", 1, "a", "b", out, 40, &n), SC_ENOSPACE);
}

static int connect_check(const char *text, struct sc_http_reply *rep)
{
    return sc_http_connect_parse((const uint8_t *)text, strlen(text), rep);
}

static void test_connect_parse(void **state)
{
    (void)state;
    struct sc_http_reply rep;
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";

    /* The destination's first bytes in the same read are not consumed. */
    assert_int_equal(connect_check("HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0-x", &rep),
                     1);
    assert_int_equal(rep.head_len, strlen(ok));
    assert_int_equal(rep.status, 200);
    for (size_t i = 0; i < strlen(ok); i++)
        assert_int_equal(sc_http_connect_parse((const uint8_t *)ok, i, &rep), 0);
    assert_int_equal(connect_check("HTTP/1.0 200 OK\r\nProxy-Agent: p\r\n\r\n", &rep), 1);

    assert_int_equal(connect_check("HTTP/1.1 407 Proxy Authentication Required\r\n"
                                   "Proxy-Authenticate: Basic realm=\"p\"\r\n\r\n",
                                   &rep),
                     SC_EAUTH);
    assert_int_equal(rep.status, 407);
    assert_int_equal(connect_check("HTTP/1.1 502 Bad Gateway\r\n\r\n", &rep), SC_ECONNECT);
    assert_int_equal(rep.status, 502);
    assert_int_equal(connect_check("HTTP/1.1 403 Forbidden\r\n\r\n", &rep), SC_ECONNECT);
    assert_int_equal(rep.status, 403);

    assert_int_equal(connect_check("HTTP/1.1 200 OK\r\n folded\r\n\r\n", &rep), SC_EFORMAT);
    assert_int_equal(connect_check("HTTP/1.1 200 OK\nX: y\n\n", &rep), SC_EFORMAT);
    assert_int_equal(connect_check("HTTP/2 200\r\n\r\n", &rep), SC_EFORMAT);
    assert_int_equal(connect_check("HTTP/1.1 2000 OK\r\n\r\n", &rep), SC_EFORMAT);
    assert_int_equal(connect_check("HTTP/1.1 600 Odd\r\n\r\n", &rep), SC_EFORMAT);
    assert_int_equal(connect_check("HTTP/1.1 200 O\x01K\r\n\r\n", &rep), SC_EFORMAT);

    static char big[SC_HTTP_HEAD_MAX_BYTES + 1];
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', sizeof big - 20);
    assert_int_equal(sc_http_connect_parse((uint8_t *)big, sizeof big, &rep), SC_ETOOBIG);
}

static void test_proxy_parse(void **state)
{
    (void)state;
    struct sc_http_proxy p;
    assert_int_equal(sc_http_proxy_parse("http://alice:s3cret@proxy.example:3128", &p), 0);
    assert_string_equal(p.host, "proxy.example");
    assert_int_equal(p.port, 3128);
    assert_true(p.has_user);
    assert_string_equal(p.user, "alice");
    assert_string_equal(p.password, "s3cret");
    assert_int_equal(sc_http_proxy_parse("http://[::1]:8888/", &p), 0);
    assert_string_equal(p.host, "::1");
    assert_int_equal(p.port, 8888);
    assert_false(p.has_user);
    assert_int_equal(sc_http_proxy_parse("HTTP://bob@127.0.0.1:1", &p), 0);
    assert_string_equal(p.user, "bob");
    assert_string_equal(p.password, "");
    static const char *const bad[] = {
        "https://proxy:443", "http://proxy", "http://proxy:0", "http://proxy:65536",
        "http://proxy:80/path", "http://proxy:80?q", "http://proxy:80#f", "proxy:80",
        "http://:80", "http://:pw@proxy:80", "", "http://[::1:80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(sc_http_proxy_parse(bad[i], &p), SC_EINVAL);
        assert_false(p.has_user);
    }
    assert_int_equal(sc_http_proxy_parse(NULL, &p), SC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_find),
        cmocka_unit_test(test_connect_request),
        cmocka_unit_test(test_connect_parse),
        cmocka_unit_test(test_proxy_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
