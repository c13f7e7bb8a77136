/* transport/ws_http.h — the HTTP/1.1 text of the WebSocket opening handshake
 * (RFC 6455 section 4): accept keys, the client's request and its check of
 * the answer, the server's classification of a request and its answers.
 * The websocket layer calls it with the bytes it received (transport/http.h
 * finds the end of a head incrementally).
 * Pure and bounded: no sockets, no libevent, no allocation, no logging, no
 * randomness of its own. It never consumes bytes past the end of a head. */
#ifndef SC_TRANSPORT_WS_HTTP_H
#define SC_TRANSPORT_WS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secirc/error.h"
#include "transport/http.h"

/* Sec-WebSocket-Key: base64 of 16 random bytes, 24 characters, + NUL. */
#define SC_WS_KEY_RANDOM_BYTES 16u
#define SC_WS_KEY_SIZE 25u
/* Sec-WebSocket-Accept: base64 of a SHA-1, 28 characters, + NUL. */
#define SC_WS_ACCEPT_SIZE 29u
/* The one subprotocol we offer and select. */
#define SC_WS_SUBPROTOCOL "secirc.v1"
/* Path of the relay endpoint when the config names none. */
#define SC_WS_PATH_DEFAULT "/relay"

/* --- keys --------------------------------------------------------------- */

/* Sec-WebSocket-Key from 16 random bytes (the caller draws them, e.g. with
 * randombytes_buf): 24 base64 characters and a NUL. */
void sc_ws_client_key(const uint8_t random[SC_WS_KEY_RANDOM_BYTES], char out[SC_WS_KEY_SIZE]);
/* Sec-WebSocket-Accept for a key: base64(SHA-1(key || RFC 6455 GUID)),
 * 28 characters and a NUL. SC_EINVAL for a key longer than 64 characters,
 * SC_ECRYPTO if OpenSSL fails. */
int sc_ws_accept_key(const char *client_key, char out[SC_WS_ACCEPT_SIZE]) SC_MUST_CHECK;

/* --- server side -------------------------------------------------------- */

struct sc_ws_server_config {
    /* Path of the relay endpoint, origin-form without a query ("/relay");
     * NULL means SC_WS_PATH_DEFAULT. Compared exactly with the request's
     * path, its query string left out. */
    const char *path;
    /* Allowed Origin values, exact but ASCII case-insensitive
     * ("https://relay.example:8443"). With none (norigins 0) every origin is
     * allowed. With some, an upgrade whose Origin is not listed gets 403; an
     * upgrade without Origin is still allowed: browsers always send Origin,
     * so its absence means a non-browser client (another relay), which the
     * link handshake authenticates anyway. */
    const char *const *origins;
    size_t norigins;
};

/* What the server does with a request. The value is the status it answers. */
enum sc_ws_verdict {
    SC_WS_SWITCH = 101,           /* upgrade to the relay path */
    SC_WS_PAGE = 200,             /* plain GET of the relay path or "/": a short page */
    SC_WS_BAD_REQUEST = 400,      /* malformed */
    SC_WS_FORBIDDEN = 403,        /* Origin not in the allow-list */
    SC_WS_NOT_FOUND = 404,        /* any other path, upgrade or not */
    SC_WS_BAD_METHOD = 405,       /* not GET */
    SC_WS_UPGRADE_REQUIRED = 426, /* Sec-WebSocket-Version other than 13 */
    SC_WS_TOO_LARGE = 431,        /* head over SC_HTTP_HEAD_MAX_BYTES */
};

struct sc_ws_request {
    enum sc_ws_verdict verdict;
    /* Length of the head; 0 when none was found (TOO_LARGE, bare LF, ...).
     * For SWITCH, bytes after it are the client's first frames. */
    size_t head_len;
    /* SWITCH: the Sec-WebSocket-Accept value to answer with. */
    char accept[SC_WS_ACCEPT_SIZE];
    /* SWITCH: the client offered SC_WS_SUBPROTOCOL, so we select it. When it
     * offered only other subprotocols we select none and still accept: the
     * RFC lets the server answer without Sec-WebSocket-Protocol, and the
     * client decides whether to go on (ours does; the link handshake
     * decides what the peer is). */
    bool subprotocol;
    /* Short static reason for the log ("duplicate Sec-WebSocket-Key"),
     * never bytes of the request. */
    const char *why;
};

/* Classifies the request in buf[0..len) (everything received so far; call
 * it once sc_http_head_find said the head is complete, or on every read).
 * Returns 0 when the head is not complete yet (read more), 1 when *req holds
 * the verdict (the server answers with sc_ws_server_reply and, for anything
 * but SWITCH, closes), SC_EINVAL for a bad config, SC_ECRYPTO if SHA-1 fails.
 * A head over SC_HTTP_HEAD_MAX_BYTES is TOO_LARGE: we answer 431 (RFC 6585)
 * rather than a bare 400, so a client sees which limit it hit.
 * Order of checks: message syntax, a duplicate Host / Sec-WebSocket-Key /
 * Sec-WebSocket-Version / Origin, or a body (400); method (405); HTTP/1.1,
 * origin-form target, one non-empty Host (400); path (404; a plain GET of
 * "/" gets the page); plain GET, i.e. no Upgrade: websocket and no
 * Sec-WebSocket-Key/-Version (200); Upgrade, Connection, key (400);
 * version (426); Origin (403). Sec-WebSocket-Extensions are never an error: we decline
 * them by not answering them (RFC 6455 9.1). */
int sc_ws_server_parse(const uint8_t *buf, size_t len, const struct sc_ws_server_config *cfg,
                       struct sc_ws_request *req) SC_MUST_CHECK;

/* Writes the answer to a classified request into out (NUL-terminated; *n
 * excludes the NUL). SC_ENOSPACE when cap is too small. */
int sc_ws_server_reply(const struct sc_ws_request *req, char *out, size_t cap,
                       size_t *n) SC_MUST_CHECK;
/* The 101 answer: Upgrade, Connection, Sec-WebSocket-Accept and, when
 * subprotocol, Sec-WebSocket-Protocol: secirc.v1. No extensions. */
int sc_ws_reply_switch(const char accept[SC_WS_ACCEPT_SIZE], bool subprotocol, char *out,
                       size_t cap, size_t *n) SC_MUST_CHECK;
/* Any other answer (200, 400, 403, 404, 405, 426, 431): a short text/plain
 * body with Content-Length, Connection: close, no Server field; 405 adds
 * Allow: GET; 426 adds Upgrade: websocket and Sec-WebSocket-Version: 13 (and
 * so says "Connection: Upgrade, close", RFC 9110 7.8). SC_EINVAL for
 * SC_WS_SWITCH. */
int sc_ws_reply_status(enum sc_ws_verdict verdict, char *out, size_t cap, size_t *n) SC_MUST_CHECK;

/* --- client side -------------------------------------------------------- */

struct sc_ws_client_params {
    const char *host; /* name or IP literal (IPv6 without brackets, no zone) */
    uint16_t port;
    bool tls;           /* wss: the default port is 443, not 80 */
    const char *path;   /* origin-form, may carry a query; NULL: SC_WS_PATH_DEFAULT */
    const char *origin; /* NULL: no Origin field */
    bool subprotocol;   /* offer Sec-WebSocket-Protocol: secirc.v1 */
};

/* The upgrade request: GET, Host (":port" when not the default, IPv6 in
 * brackets), Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version:
 * 13, then the optional Sec-WebSocket-Protocol and Origin. Never offers
 * extensions. SC_EINVAL for a host, path or origin that could not be sent as
 * is (empty, control characters, spaces, ...); SC_ENOSPACE. */
int sc_ws_client_request(const struct sc_ws_client_params *p, const char key[SC_WS_KEY_SIZE],
                         char *out, size_t cap, size_t *n) SC_MUST_CHECK;

/* Checks the server's answer to our upgrade request in buf[0..len).
 * Returns 0 when the head is not complete yet, 1 when the upgrade is
 * accepted (rep->head_len bytes are the head; bytes after it are the first
 * WebSocket frames, not consumed). Errors (rep->status and rep->why set):
 * SC_ECONNECT for a status other than 101 ("websocket: server answered
 * 404"), SC_EAUTH for a missing or wrong Sec-WebSocket-Accept, SC_EFORMAT for
 * a malformed head, a missing Upgrade/Connection token, a subprotocol we did
 * not offer or any Sec-WebSocket-Extensions (we offered none), SC_ETOOBIG
 * for a head over SC_HTTP_HEAD_MAX_BYTES. */
int sc_ws_client_parse(const uint8_t *buf, size_t len, const char accept[SC_WS_ACCEPT_SIZE],
                       bool offered_subprotocol, struct sc_http_reply *rep) SC_MUST_CHECK;

#endif
