/* fuzz/fuzz_ws_upgrade.c — libFuzzer target for the HTTP heads of the
 * WebSocket upgrade and of CONNECT (transport/ws_http.h, transport/http.h).
 *
 * Every input goes, as an exact-size copy (so any read past it is caught),
 * to the server's request parser (default config, and "/chat" with an Origin
 * allow-list), the client's 101 check (with and without a subprotocol
 * offered) and the CONNECT answer parser. Properties, each a
 * __builtin_trap() when broken:
 *   - results are only the documented ones; a head length never passes the
 *     input or SC_HTTP_HEAD_MAX_BYTES and always ends in CRLF CRLF;
 *   - finding the head in two pieces (split where the first byte says) gives
 *     what one call gives;
 *   - every verdict has an answer, and the client check accepts our own 101
 *     for the request's key;
 *   - an accepted 101 / CONNECT answer says 101 / 2xx. */
#include <stdlib.h>
#include <string.h>

#include "transport/ws_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

static void check_head_len(const uint8_t *buf, size_t len, size_t head_len)
{
    check(head_len >= 4 && head_len <= len && head_len <= SC_HTTP_HEAD_MAX_BYTES);
    check(memcmp(buf + head_len - 4, "\r\n\r\n", 4) == 0);
}

static void find_in_pieces(const uint8_t *buf, size_t len)
{
    size_t whole = 0, pos = 0;
    int r1 = sc_http_head_find(buf, len, &whole);
    check(r1 == 0 || r1 == 1 || r1 == SC_ETOOBIG || r1 == SC_EFORMAT);
    if (r1 == 1)
        check_head_len(buf, len, whole);
    if (r1 == 0)
        check(len < SC_HTTP_HEAD_MAX_BYTES);

    size_t split = len ? buf[0] % (len + 1) : 0;
    int r2 = sc_http_head_find(buf, split, &pos);
    if (r2 == 0)
        r2 = sc_http_head_find(buf, len, &pos);
    check(r2 == r1);
    if (r1 == 1)
        check(pos == whole);
}

static void server(const uint8_t *buf, size_t len, const struct sc_ws_server_config *cfg)
{
    struct sc_ws_request req;
    char out[1024];
    size_t n = 0;

    int r = sc_ws_server_parse(buf, len, cfg, &req);
    check(r == 0 || r == 1);
    if (r == 0)
        return;
    check(req.why != NULL);
    switch (req.verdict) {
    case SC_WS_SWITCH:
    case SC_WS_PAGE:
    case SC_WS_FORBIDDEN:
    case SC_WS_NOT_FOUND:
    case SC_WS_BAD_METHOD:
    case SC_WS_UPGRADE_REQUIRED:
        check_head_len(buf, len, req.head_len);
        break;
    case SC_WS_BAD_REQUEST:
        if (req.head_len != 0)
            check_head_len(buf, len, req.head_len);
        break;
    case SC_WS_TOO_LARGE:
        check(req.head_len == 0 && len >= SC_HTTP_HEAD_MAX_BYTES);
        break;
    default:
        check(0);
    }
    check(sc_ws_server_reply(&req, out, sizeof out, &n) == 0 && n == strlen(out));
    if (req.verdict == SC_WS_SWITCH) {
        struct sc_http_reply rep;
        check(strlen(req.accept) == SC_WS_ACCEPT_SIZE - 1);
        check(sc_ws_client_parse((const uint8_t *)out, n, req.accept, true, &rep) == 1);
        check(rep.head_len == n && rep.subprotocol == req.subprotocol);
    }
}

static void client(const uint8_t *buf, size_t len, bool offered)
{
    struct sc_http_reply rep;

    int r = sc_ws_client_parse(buf, len, RFC_ACCEPT, offered, &rep);
    check(rep.why != NULL);
    switch (r) {
    case 0:
        check(len < SC_HTTP_HEAD_MAX_BYTES);
        break;
    case 1:
        check(rep.status == 101 && (offered || !rep.subprotocol));
        check_head_len(buf, len, rep.head_len);
        break;
    case SC_ECONNECT:
        check(rep.status >= 100 && rep.status <= 599 && rep.status != 101);
        check_head_len(buf, len, rep.head_len);
        break;
    case SC_EAUTH:
        check(rep.status == 101);
        break;
    case SC_EFORMAT:
    case SC_ETOOBIG:
        break;
    default:
        check(0);
    }
}

static void proxy(const uint8_t *buf, size_t len)
{
    struct sc_http_reply rep;

    int r = sc_http_connect_parse(buf, len, &rep);
    check(rep.why != NULL);
    switch (r) {
    case 0:
        check(len < SC_HTTP_HEAD_MAX_BYTES);
        break;
    case 1:
        check(rep.status >= 200 && rep.status <= 299);
        check_head_len(buf, len, rep.head_len);
        break;
    case SC_EAUTH:
        check(rep.status == 407);
        break;
    case SC_ECONNECT:
        check(rep.status >= 100 && rep.status <= 599);
        break;
    case SC_EFORMAT:
    case SC_ETOOBIG:
        break;
    default:
        check(0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const origins[] = {"http://example.com", "https://relay.example:8443"};
    static const struct sc_ws_server_config chat = {"/chat", origins, 2};

    uint8_t *buf = malloc(size ? size : 1);
    check(buf != NULL);
    memcpy(buf, data, size);
    find_in_pieces(buf, size);
    server(buf, size, NULL);
    server(buf, size, &chat);
    client(buf, size, false);
    client(buf, size, true);
    proxy(buf, size);
    free(buf);
    return 0;
}
