/* transport/http.h — strict, bounded HTTP/1.1 heads (RFC 9112 message
 * syntax) for the transports that speak a little HTTP: finding a head in
 * received bytes, a lexer for its lines and fields, and the client side of
 * an HTTP CONNECT proxy exchange (RFC 9110 9.3.6).
 * Pure: no sockets, no allocation, no logging; never reads past a head. */
#ifndef SC_TRANSPORT_HTTP_H
#define SC_TRANSPORT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secirc/error.h"

/* Largest head (start line, header fields and the closing blank line) we
 * read, in either direction. A longer one is refused without parsing. */
#define SC_HTTP_HEAD_MAX_BYTES 8192u

/* Incremental check for a complete head in buf[0..len): the caller keeps
 * appending received bytes to buf and calls again. *pos is where scanning
 * resumes: set it to 0 for a new buffer and keep it between calls, so the
 * total work is linear however the bytes arrive (stop calling after 1).
 * Returns 1 when the head is complete (*pos is then the head length, up to
 * and including CRLF CRLF; bytes after it are not part of the head), 0 when
 * more bytes are needed, SC_ETOOBIG when no head ends within the first
 * SC_HTTP_HEAD_MAX_BYTES, SC_EFORMAT at once on a bare LF, a bare CR or a
 * NUL; SC_EINVAL when *pos > len. */
int sc_http_head_find(const uint8_t *buf, size_t len, size_t *pos) SC_MUST_CHECK;

/* What a client learned from a response head. */
struct sc_http_reply {
    int status;       /* status code, 0 when no status line was read */
    size_t head_len;  /* once the head is complete: its length; the rest is not ours */
    bool subprotocol; /* WebSocket: the server selected SC_WS_SUBPROTOCOL */
    const char *why;  /* static reason, never bytes of the input */
};

/* --- HTTP CONNECT proxy client ------------------------------------------- */

/* "CONNECT host:port HTTP/1.1" with Host and, when user is not NULL,
 * Proxy-Authorization: Basic base64(user ":" password) (RFC 7617; password
 * NULL means empty). IPv6 literals go in brackets. Writes a NUL-terminated
 * head into out; *n excludes the NUL. SC_EINVAL for a bad host or port 0, a
 * user with ':', either credential with control characters or over 255
 * bytes; SC_ENOSPACE when cap is too small. */
int sc_http_connect_request(const char *host, uint16_t port, const char *user, const char *password,
                            char *out, size_t cap, size_t *n) SC_MUST_CHECK;
/* The proxy's answer in buf[0..len) (everything received so far): 0 when
 * the head is not complete yet; 1 for a 2xx (RFC 9110 9.3.6: the tunnel is
 * open; bytes after rep->head_len are the destination's, not consumed);
 * SC_EAUTH for 407; SC_ECONNECT for any other status (rep->status, so the
 * caller can say "http proxy: answered 403"); SC_EFORMAT; SC_ETOOBIG.
 * HTTP/1.0 answers are accepted, as many proxies send them. */
int sc_http_connect_parse(const uint8_t *buf, size_t len, struct sc_http_reply *rep) SC_MUST_CHECK;

/* --- the lexer (for transport/ws_http.c) ---------------------------------- */

/* The lines of a head that sc_http_head_find accepted. */
struct sc_http_lines {
    const char *p, *end;
};
struct sc_http_field {
    const char *name, *value; /* value trimmed of SP/HTAB */
    size_t name_len, value_len;
};

/* Starts reading buf[0..head_len), a head sc_http_head_find accepted. */
void sc_http_lines_init(struct sc_http_lines *it, const uint8_t *buf, size_t head_len);
/* Next line without its CRLF; false after the last one. */
bool sc_http_next_line(struct sc_http_lines *it, const char **line, size_t *n);
/* Next field line: 1 and *f; 0 at the blank line that ends the head;
 * SC_EFORMAT for obs-fold (RFC 9112 5.2), an empty or non-token name,
 * whitespace before the colon (RFC 9112 5.1) or a control character. */
int sc_http_next_field(struct sc_http_lines *it, struct sc_http_field *f) SC_MUST_CHECK;
/* Looks for `want` in a comma list (RFC 9110 5.6.1, empty elements
 * skipped) whose elements must be tokens, or with `slash` token "/" token.
 * Sets *found on a match (ASCII case-insensitive with `icase`); SC_EFORMAT
 * for an element that is not a token. */
int sc_http_list_find(const char *v, size_t n, const char *want, bool icase, bool slash,
                      bool *found) SC_MUST_CHECK;
/* Status line "HTTP/1.x SP 3DIGIT [SP reason]": *minor and *status
 * (100..599) or SC_EFORMAT. */
int sc_http_status_line(const char *s, size_t n, int *minor, int *status) SC_MUST_CHECK;
/* Start of a client's response parse: finds the head in buf[0..len) and
 * reads its status line. 0: need more; 1: rep->status, rep->head_len and
 * *minor set, *it at the first field; or SC_ETOOBIG / SC_EFORMAT with
 * rep->why. */
int sc_http_response_start(const uint8_t *buf, size_t len, struct sc_http_reply *rep,
                           struct sc_http_lines *it, int *minor) SC_MUST_CHECK;
/* "HTTP/" DIGIT "." DIGIT */
bool sc_http_version_ok(const char *s, size_t n);
/* origin-form request target (RFC 9112 3.2.1): "/" path ["?" query], no
 * fragment, valid %XX escapes. *path_len: the length without the query. */
bool sc_http_origin_form(const char *t, size_t n, size_t *path_len);
bool sc_http_token(const char *s, size_t n);
/* a[0..an) equals the string b (ASCII case-insensitive for sc_http_ieq). */
bool sc_http_ieq(const char *a, size_t an, const char *b);
bool sc_http_eq(const char *a, size_t an, const char *b);
/* host[:port] for Host and CONNECT into out: an IPv6 literal in brackets,
 * the port left out when it equals default_port (0: never). host: letters,
 * digits and "-._~:" only, 1..253 bytes; port not 0. SC_EINVAL, SC_ENOSPACE. */
int sc_http_authority(const char *host, uint16_t port, uint16_t default_port, char *out,
                      size_t cap) SC_MUST_CHECK;
/* An snprintf result into 0 (and *n) or SC_ENOSPACE when it did not fit cap. */
int sc_http_emitted(int r, size_t cap, size_t *n) SC_MUST_CHECK;

#endif
