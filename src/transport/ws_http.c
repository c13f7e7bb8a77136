/* transport/ws_http.c — the WebSocket opening handshake in HTTP/1.1 (RFC
 * 6455 section 4) over the strict lexer of transport/http.c: accept keys,
 * the server's classification of a request and its answers, the client's
 * request and its check of the answer.
 * Pure: it must never read past the head it was given, allocate, log, or
 * offer or accept a WebSocket extension. */
#include "transport/ws_http.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* RFC 6455 section 1.3. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
#define WS_GUID_LEN (sizeof ws_guid - 1)
#define WS_KEY_CHARS 24u
#define WS_ACCEPT_KEY_MAX 64u /* longest key sc_ws_accept_key hashes */
#define AUTHORITY_MAX 272u    /* [253-byte host]:65535 */
#define ORIGIN_MAX 1024u

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (is_digit(c))
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* base64 of exactly 16 bytes: 22 alphabet characters, "==", and the last
 * character's 4 low bits zero (canonical, as every encoder writes it). */
static bool ws_key_valid(const char *k, size_t n)
{
    if (n != WS_KEY_CHARS || k[22] != '=' || k[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (b64_value((unsigned char)k[i]) < 0)
            return false;
    return (b64_value((unsigned char)k[21]) & 0x0f) == 0;
}

/* ---- keys ------------------------------------------------------------------- */

void sc_ws_client_key(const uint8_t random[SC_WS_KEY_RANDOM_BYTES], char out[SC_WS_KEY_SIZE])
{
    /* 16 bytes encode to 24 characters and a NUL: EVP_EncodeBlock cannot fail. */
    (void)EVP_EncodeBlock((unsigned char *)out, random, SC_WS_KEY_RANDOM_BYTES);
}

static int accept_from(const char *key, size_t n, char out[SC_WS_ACCEPT_SIZE])
{
    unsigned char in[WS_ACCEPT_KEY_MAX + WS_GUID_LEN];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (n > WS_ACCEPT_KEY_MAX)
        return SC_EINVAL;
    memcpy(in, key, n);
    memcpy(in + n, ws_guid, WS_GUID_LEN);
    if (EVP_Digest(in, n + WS_GUID_LEN, md, &md_len, EVP_sha1(), NULL) != 1 || md_len != 20)
        return SC_ECRYPTO;
    if (EVP_EncodeBlock((unsigned char *)out, md, 20) != (int)SC_WS_ACCEPT_SIZE - 1)
        return SC_ECRYPTO;
    return 0;
}

int sc_ws_accept_key(const char *client_key, char out[SC_WS_ACCEPT_SIZE])
{
    if (client_key == NULL || out == NULL)
        return SC_EINVAL;
    return accept_from(client_key, strnlen(client_key, WS_ACCEPT_KEY_MAX + 1), out);
}

/* ---- server: classifying a request ----------------------------------------- */

/* What the server needs from the field lines of a request. */
struct req_fields {
    unsigned hosts, keys, versions, origins;
    const char *host, *key, *version, *origin;
    size_t host_len, key_len, version_len, origin_len;
    bool upgrade_websocket, connection_upgrade, subprotocol, has_body;
};

static int verdict(struct sc_ws_request *req, enum sc_ws_verdict v, const char *why)
{
    req->verdict = v;
    req->why = why;
    return 1;
}

/* Reads every field line; returns NULL or the reason for a 400. */
static const char *read_request_fields(struct sc_http_lines *it, struct req_fields *rf)
{
    struct sc_http_field f;
    int r;

    while ((r = sc_http_next_field(it, &f)) == 1) {
        const char *v = f.value;
        size_t n = f.value_len;
        if (sc_http_ieq(f.name, f.name_len, "host")) {
            rf->hosts++, rf->host = v, rf->host_len = n;
        } else if (sc_http_ieq(f.name, f.name_len, "sec-websocket-key")) {
            rf->keys++, rf->key = v, rf->key_len = n;
        } else if (sc_http_ieq(f.name, f.name_len, "sec-websocket-version")) {
            rf->versions++, rf->version = v, rf->version_len = n;
        } else if (sc_http_ieq(f.name, f.name_len, "origin")) {
            rf->origins++, rf->origin = v, rf->origin_len = n;
        } else if (sc_http_ieq(f.name, f.name_len, "upgrade")) {
            if (sc_http_list_find(v, n, "websocket", true, true, &rf->upgrade_websocket) != 0)
                return "malformed Upgrade";
        } else if (sc_http_ieq(f.name, f.name_len, "connection")) {
            if (sc_http_list_find(v, n, "upgrade", true, false, &rf->connection_upgrade) != 0)
                return "malformed Connection";
        } else if (sc_http_ieq(f.name, f.name_len, "sec-websocket-protocol")) {
            if (sc_http_list_find(v, n, SC_WS_SUBPROTOCOL, false, false, &rf->subprotocol) != 0)
                return "malformed Sec-WebSocket-Protocol";
        } else if (sc_http_ieq(f.name, f.name_len, "transfer-encoding")) {
            rf->has_body = true;
        } else if (sc_http_ieq(f.name, f.name_len, "content-length")) {
            if (!sc_http_eq(v, n, "0"))
                rf->has_body = true;
        }
    }
    if (r < 0)
        return "malformed header field";
    if (rf->hosts != 1)
        return rf->hosts ? "duplicate Host" : "no Host";
    if (rf->keys > 1)
        return "duplicate Sec-WebSocket-Key";
    if (rf->versions > 1)
        return "duplicate Sec-WebSocket-Version";
    if (rf->origins > 1)
        return "duplicate Origin";
    /* A body on a GET would be read as WebSocket frames: refuse it. */
    if (rf->has_body)
        return "request with a body";
    return NULL;
}

/* Sec-WebSocket-Version syntax (RFC 6455 4.1): a decimal 0..255 without
 * leading zeros. *value is the number. */
static bool version_number(const char *s, size_t n, unsigned *value)
{
    unsigned v = 0;

    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *value = v;
    return v <= 255;
}

static bool origin_allowed(const struct sc_ws_server_config *cfg, const char *o, size_t n)
{
    for (size_t i = 0; i < cfg->norigins; i++)
        if (cfg->origins[i] != NULL && sc_http_ieq(o, n, cfg->origins[i]))
            return true;
    return false;
}

int sc_ws_server_parse(const uint8_t *buf, size_t len, const struct sc_ws_server_config *cfg,
                       struct sc_ws_request *req)
{
    static const struct sc_ws_server_config defaults = {NULL, NULL, 0};
    size_t head_len = 0, path_len = 0;

    if (req == NULL || (cfg != NULL && cfg->norigins > 0 && cfg->origins == NULL))
        return SC_EINVAL;
    cfg = cfg ? cfg : &defaults;
    const char *want = cfg->path ? cfg->path : SC_WS_PATH_DEFAULT;
    if (!sc_http_origin_form(want, strlen(want), &path_len) || path_len != strlen(want))
        return SC_EINVAL;
    memset(req, 0, sizeof *req);

    int r = sc_http_head_find(buf, len, &head_len);
    if (r == 0)
        return 0;
    if (r == SC_ETOOBIG)
        return verdict(req, SC_WS_TOO_LARGE, "request head too large");
    if (r < 0)
        return verdict(req, SC_WS_BAD_REQUEST, "bare CR, bare LF or NUL");
    req->head_len = head_len;

    /* request-line = method SP request-target SP HTTP-version (RFC 9112 3) */
    struct sc_http_lines it;
    sc_http_lines_init(&it, buf, head_len);
    const char *line;
    size_t n;
    if (!sc_http_next_line(&it, &line, &n))
        return verdict(req, SC_WS_BAD_REQUEST, "no request line");
    const char *sp1 = memchr(line, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line + n - (sp1 + 1))) : NULL;
    if (sp2 == NULL)
        return verdict(req, SC_WS_BAD_REQUEST, "malformed request line");
    const char *method = line, *target = sp1 + 1, *version = sp2 + 1;
    size_t method_len = (size_t)(sp1 - line), target_len = (size_t)(sp2 - target);
    size_t version_len = (size_t)(line + n - version);
    if (!sc_http_token(method, method_len) || !sc_http_version_ok(version, version_len))
        return verdict(req, SC_WS_BAD_REQUEST, "malformed request line");
    for (size_t i = 0; i < target_len; i++)
        if (target[i] <= ' ' || target[i] == 0x7f)
            return verdict(req, SC_WS_BAD_REQUEST, "malformed request line");

    struct req_fields rf;
    memset(&rf, 0, sizeof rf);
    const char *why = read_request_fields(&it, &rf);
    if (why != NULL)
        return verdict(req, SC_WS_BAD_REQUEST, why);

    if (!sc_http_eq(method, method_len, "GET"))
        return verdict(req, SC_WS_BAD_METHOD, "method not GET");
    if (!sc_http_eq(version, version_len, "HTTP/1.1"))
        return verdict(req, SC_WS_BAD_REQUEST, "not HTTP/1.1");
    if (!sc_http_origin_form(target, target_len, &path_len))
        return verdict(req, SC_WS_BAD_REQUEST, "request target not origin-form");
    if (rf.host_len == 0)
        return verdict(req, SC_WS_BAD_REQUEST, "empty Host");
    for (size_t i = 0; i < rf.host_len; i++)
        if (rf.host[i] == ' ' || rf.host[i] == '\t')
            return verdict(req, SC_WS_BAD_REQUEST, "malformed Host");

    bool upgrade = rf.upgrade_websocket || rf.keys > 0 || rf.versions > 0;
    if (!sc_http_eq(target, path_len, want)) {
        if (!upgrade && sc_http_eq(target, path_len, "/"))
            return verdict(req, SC_WS_PAGE, "plain GET");
        return verdict(req, SC_WS_NOT_FOUND, "unknown path");
    }
    if (!upgrade)
        return verdict(req, SC_WS_PAGE, "plain GET");

    unsigned ws_version = 0;
    if (!rf.upgrade_websocket)
        return verdict(req, SC_WS_BAD_REQUEST, "Upgrade lacks websocket");
    if (!rf.connection_upgrade)
        return verdict(req, SC_WS_BAD_REQUEST, "Connection lacks upgrade");
    if (rf.keys == 0)
        return verdict(req, SC_WS_BAD_REQUEST, "no Sec-WebSocket-Key");
    if (!ws_key_valid(rf.key, rf.key_len))
        return verdict(req, SC_WS_BAD_REQUEST, "Sec-WebSocket-Key not 16 bytes of base64");
    if (rf.versions == 0)
        return verdict(req, SC_WS_BAD_REQUEST, "no Sec-WebSocket-Version");
    if (!version_number(rf.version, rf.version_len, &ws_version))
        return verdict(req, SC_WS_BAD_REQUEST, "malformed Sec-WebSocket-Version");
    if (ws_version != 13)
        return verdict(req, SC_WS_UPGRADE_REQUIRED, "Sec-WebSocket-Version not 13");
    if (cfg->norigins > 0 && rf.origins > 0 && !origin_allowed(cfg, rf.origin, rf.origin_len))
        return verdict(req, SC_WS_FORBIDDEN, "Origin not allowed");

    r = accept_from(rf.key, rf.key_len, req->accept);
    if (r < 0)
        return r;
    req->subprotocol = rf.subprotocol;
    return verdict(req, SC_WS_SWITCH, "upgrade");
}

/* ---- server: answers ------------------------------------------------------- */

static bool out_ok(const char *out, size_t cap, const size_t *n)
{
    return n != NULL && (out != NULL || cap == 0);
}

int sc_ws_reply_switch(const char accept[SC_WS_ACCEPT_SIZE], bool subprotocol, char *out,
                       size_t cap, size_t *n)
{
    if (accept == NULL || strnlen(accept, SC_WS_ACCEPT_SIZE) != SC_WS_ACCEPT_SIZE - 1 ||
        !out_ok(out, cap, n))
        return SC_EINVAL;
    for (size_t i = 0; i < SC_WS_ACCEPT_SIZE - 1; i++)
        if (accept[i] != '=' && b64_value((unsigned char)accept[i]) < 0)
            return SC_EINVAL;
    return sc_http_emitted(
        snprintf(out, cap,
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n"
                 "%s"
                 "\r\n",
                 accept, subprotocol ? "Sec-WebSocket-Protocol: " SC_WS_SUBPROTOCOL "\r\n" : ""),
        cap, n);
}

struct status_text {
    enum sc_ws_verdict verdict;
    const char *reason, *fields, *connection, *body;
};

/* The page at 200 says what this is and nothing more: no version, no
 * identity, no path. */
static const struct status_text status_texts[] = {
    {SC_WS_PAGE, "OK", "", "close", "This is a secirc relay.\n"},
    {SC_WS_BAD_REQUEST, "Bad Request", "", "close", "Bad request.\n"},
    {SC_WS_FORBIDDEN, "Forbidden", "", "close", "Forbidden.\n"},
    {SC_WS_NOT_FOUND, "Not Found", "", "close", "Not found.\n"},
    {SC_WS_BAD_METHOD, "Method Not Allowed", "Allow: GET\r\n", "close", "Method not allowed.\n"},
    /* RFC 9110 15.5.22 and 7.8: a 426 names the protocol in Upgrade, and
     * whoever sends Upgrade also lists it in Connection. */
    {SC_WS_UPGRADE_REQUIRED, "Upgrade Required",
     "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n", "Upgrade, close",
     "WebSocket version 13 required.\n"},
    {SC_WS_TOO_LARGE, "Request Header Fields Too Large", "", "close",
     "Request header fields too large.\n"},
};

int sc_ws_reply_status(enum sc_ws_verdict verdict_code, char *out, size_t cap, size_t *n)
{
    if (!out_ok(out, cap, n))
        return SC_EINVAL;
    for (size_t i = 0; i < sizeof status_texts / sizeof status_texts[0]; i++) {
        const struct status_text *s = &status_texts[i];
        if (s->verdict != verdict_code)
            continue;
        return sc_http_emitted(snprintf(out, cap,
                                        "HTTP/1.1 %d %s\r\n"
                                        "%s"
                                        "Content-Type: text/plain; charset=utf-8\r\n"
                                        "Content-Length: %zu\r\n"
                                        "Connection: %s\r\n"
                                        "\r\n"
                                        "%s",
                                        (int)s->verdict, s->reason, s->fields, strlen(s->body),
                                        s->connection, s->body),
                               cap, n);
    }
    return SC_EINVAL;
}

int sc_ws_server_reply(const struct sc_ws_request *req, char *out, size_t cap, size_t *n)
{
    if (req == NULL)
        return SC_EINVAL;
    if (req->verdict == SC_WS_SWITCH)
        return sc_ws_reply_switch(req->accept, req->subprotocol, out, cap, n);
    return sc_ws_reply_status(req->verdict, out, cap, n);
}

/* ---- client: the upgrade request ------------------------------------------ */

/* Printable ASCII without spaces, 1..max bytes. */
static bool visible(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] >= 0x7f)
            return false;
    return true;
}

int sc_ws_client_request(const struct sc_ws_client_params *p, const char key[SC_WS_KEY_SIZE],
                         char *out, size_t cap, size_t *n)
{
    char auth[AUTHORITY_MAX];
    size_t path_len;

    if (p == NULL || key == NULL || !out_ok(out, cap, n))
        return SC_EINVAL;
    if (!ws_key_valid(key, strnlen(key, SC_WS_KEY_SIZE)))
        return SC_EINVAL;
    const char *path = p->path ? p->path : SC_WS_PATH_DEFAULT;
    if (strnlen(path, SC_HTTP_HEAD_MAX_BYTES) >= SC_HTTP_HEAD_MAX_BYTES ||
        !sc_http_origin_form(path, strlen(path), &path_len))
        return SC_EINVAL;
    if (p->origin != NULL && !visible(p->origin, ORIGIN_MAX))
        return SC_EINVAL;
    int r = sc_http_authority(p->host, p->port, p->tls ? 443 : 80, auth, sizeof auth);
    if (r < 0)
        return r;
    return sc_http_emitted(
        snprintf(out, cap,
                 "GET %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "%s%s%s%s"
                 "\r\n",
                 path, auth, key,
                 p->subprotocol ? "Sec-WebSocket-Protocol: " SC_WS_SUBPROTOCOL "\r\n" : "",
                 p->origin ? "Origin: " : "", p->origin ? p->origin : "", p->origin ? "\r\n" : ""),
        cap, n);
}

/* ---- client: the server's answer ------------------------------------------ */

static int fail(struct sc_http_reply *rep, int err, const char *why)
{
    rep->why = why;
    return err;
}

int sc_ws_client_parse(const uint8_t *buf, size_t len, const char accept[SC_WS_ACCEPT_SIZE],
                       bool offered_subprotocol, struct sc_http_reply *rep)
{
    struct sc_http_lines it;
    struct sc_http_field f;
    int minor = 0;
    unsigned upgrades = 0, accepts = 0, protocols = 0;
    bool upgrade_ok = false, connection_upgrade = false, accept_ok = false, protocol_ok = false;

    if (rep == NULL || accept == NULL)
        return SC_EINVAL;
    int r = sc_http_response_start(buf, len, rep, &it, &minor);
    if (r <= 0)
        return r;
    if (rep->status != 101)
        return fail(rep, SC_ECONNECT, "server did not switch protocols");
    if (minor != 1)
        return fail(rep, SC_EFORMAT, "101 not in HTTP/1.1");

    while ((r = sc_http_next_field(&it, &f)) == 1) {
        if (sc_http_ieq(f.name, f.name_len, "upgrade")) {
            /* RFC 6455 4.1: the value is "websocket", nothing else. */
            upgrades++;
            upgrade_ok = sc_http_ieq(f.value, f.value_len, "websocket");
        } else if (sc_http_ieq(f.name, f.name_len, "connection")) {
            if (sc_http_list_find(f.value, f.value_len, "upgrade", true, false,
                                  &connection_upgrade) != 0)
                return fail(rep, SC_EFORMAT, "malformed Connection");
        } else if (sc_http_ieq(f.name, f.name_len, "sec-websocket-accept")) {
            accepts++;
            accept_ok = f.value_len == SC_WS_ACCEPT_SIZE - 1 &&
                        strnlen(accept, SC_WS_ACCEPT_SIZE) == SC_WS_ACCEPT_SIZE - 1 &&
                        memcmp(f.value, accept, f.value_len) == 0;
        } else if (sc_http_ieq(f.name, f.name_len, "sec-websocket-protocol")) {
            protocols++;
            protocol_ok = sc_http_eq(f.value, f.value_len, SC_WS_SUBPROTOCOL);
        } else if (sc_http_ieq(f.name, f.name_len, "sec-websocket-extensions")) {
            return fail(rep, SC_EFORMAT, "server chose an extension we did not offer");
        }
    }
    if (r < 0)
        return fail(rep, SC_EFORMAT, "malformed header field");
    if (upgrades != 1 || !upgrade_ok)
        return fail(rep, SC_EFORMAT, "Upgrade is not websocket");
    if (!connection_upgrade)
        return fail(rep, SC_EFORMAT, "Connection lacks upgrade");
    if (accepts != 1 || !accept_ok)
        return fail(rep, SC_EAUTH, "wrong or missing Sec-WebSocket-Accept");
    if (protocols > 1 || (protocols == 1 && (!protocol_ok || !offered_subprotocol)))
        return fail(rep, SC_EFORMAT, "server chose a subprotocol we did not offer");
    rep->subprotocol = protocols == 1;
    rep->why = "upgraded";
    return 1;
}
