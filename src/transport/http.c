/* transport/http.c — strict HTTP/1.1 head lexer (RFC 9112 message syntax)
 * and the client side of HTTP CONNECT.
 * Pure: it must never read past the head it was given, allocate, log, or
 * accept obs-fold, bare CR/LF, NUL or control characters. */
#include "transport/http.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#define HOST_MAX 253u       /* DNS name; IP literals are shorter */
#define CREDENTIAL_MAX 255u /* proxy user and password, each */

/* ---- character classes (RFC 9110 5.6.2, RFC 3986 2) ------------------------ */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_tchar(unsigned char c)
{
    return is_digit(c) || is_alpha(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* Field-value and reason-phrase bytes: VCHAR, SP, HTAB, obs-text. */
static bool is_text(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* unreserved / sub-delims / ":" / "@" (a pchar without pct-encoded). */
static bool is_pchar(unsigned char c)
{
    return is_digit(c) || is_alpha(c) || (c != 0 && strchr("-._~!$&'()*+,;=:@", c) != NULL);
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

bool sc_http_ieq(const char *a, size_t an, const char *b)
{
    if (an != strlen(b))
        return false;
    for (size_t i = 0; i < an; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

bool sc_http_eq(const char *a, size_t an, const char *b)
{
    return an == strlen(b) && memcmp(a, b, an) == 0;
}

bool sc_http_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

bool sc_http_origin_form(const char *t, size_t n, size_t *path_len)
{
    size_t plen = n;

    if (n == 0 || t[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '%') {
            if (n - i < 3 || !is_hex((unsigned char)t[i + 1]) || !is_hex((unsigned char)t[i + 2]))
                return false;
            i += 2;
        } else if (c == '?') {
            if (plen == n)
                plen = i;
        } else if (c != '/' && !is_pchar(c)) {
            return false;
        }
    }
    *path_len = plen;
    return true;
}

bool sc_http_version_ok(const char *s, size_t n)
{
    return n == 8 && memcmp(s, "HTTP/", 5) == 0 && is_digit((unsigned char)s[5]) && s[6] == '.' &&
           is_digit((unsigned char)s[7]);
}

/* ---- the head: lines and fields -------------------------------------------- */

int sc_http_head_find(const uint8_t *buf, size_t len, size_t *pos)
{
    if (pos == NULL || *pos > len || (buf == NULL && len != 0))
        return SC_EINVAL;
    size_t lim = len < SC_HTTP_HEAD_MAX_BYTES ? len : SC_HTTP_HEAD_MAX_BYTES;
    size_t i = *pos;
    for (; i < lim; i++) {
        uint8_t c = buf[i];
        if (c == 0)
            return SC_EFORMAT;
        if (i > 0 && buf[i - 1] == '\r' && c != '\n')
            return SC_EFORMAT; /* bare CR */
        if (c == '\n') {
            if (i == 0 || buf[i - 1] != '\r')
                return SC_EFORMAT; /* bare LF */
            if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
                *pos = i + 1;
                return 1;
            }
        }
    }
    *pos = i;
    return len >= SC_HTTP_HEAD_MAX_BYTES ? SC_ETOOBIG : 0;
}

void sc_http_lines_init(struct sc_http_lines *it, const uint8_t *buf, size_t head_len)
{
    it->p = (const char *)buf;
    it->end = (const char *)buf + head_len;
}

/* Every CR of an accepted head is followed by LF: a line ends at its CR. */
bool sc_http_next_line(struct sc_http_lines *it, const char **line, size_t *n)
{
    if (it->p >= it->end)
        return false;
    const char *cr = memchr(it->p, '\r', (size_t)(it->end - it->p));
    if (cr == NULL || it->end - cr < 2)
        return false;
    *line = it->p;
    *n = (size_t)(cr - it->p);
    it->p = cr + 2;
    return true;
}

int sc_http_next_field(struct sc_http_lines *it, struct sc_http_field *f)
{
    const char *line;
    size_t n, i = 0;

    if (!sc_http_next_line(it, &line, &n))
        return SC_EFORMAT;
    if (n == 0)
        return 0;
    if (is_ows((unsigned char)line[0]))
        return SC_EFORMAT;
    while (i < n && is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i == n || line[i] != ':')
        return SC_EFORMAT;
    for (size_t k = i + 1; k < n; k++)
        if (!is_text((unsigned char)line[k]))
            return SC_EFORMAT;
    size_t b = i + 1, e = n;
    while (b < e && is_ows((unsigned char)line[b]))
        b++;
    while (e > b && is_ows((unsigned char)line[e - 1]))
        e--;
    f->name = line;
    f->name_len = i;
    f->value = line + b;
    f->value_len = e - b;
    return 1;
}

int sc_http_list_find(const char *v, size_t n, const char *want, bool icase, bool slash,
                      bool *found)
{
    size_t i = 0;

    while (i < n) {
        size_t b = i, e;
        while (i < n && v[i] != ',')
            i++;
        e = i++;
        while (b < e && is_ows((unsigned char)v[b]))
            b++;
        while (e > b && is_ows((unsigned char)v[e - 1]))
            e--;
        if (e == b)
            continue;
        const char *el = v + b;
        size_t el_len = e - b;
        const char *sl = slash ? memchr(el, '/', el_len) : NULL;
        size_t name_len = sl ? (size_t)(sl - el) : el_len;
        if (!sc_http_token(el, name_len) ||
            (sl != NULL && !sc_http_token(sl + 1, el_len - name_len - 1)))
            return SC_EFORMAT;
        if (icase ? sc_http_ieq(el, el_len, want) : sc_http_eq(el, el_len, want))
            *found = true;
    }
    return 0;
}

int sc_http_status_line(const char *s, size_t n, int *minor, int *status)
{
    /* A missing SP before an empty reason phrase is tolerated. */
    if (n < 12 || !sc_http_version_ok(s, 8) || s[5] != '1' || s[8] != ' ')
        return SC_EFORMAT;
    if (s[9] < '1' || s[9] > '5' || !is_digit((unsigned char)s[10]) ||
        !is_digit((unsigned char)s[11]))
        return SC_EFORMAT;
    if (n > 12 && s[12] != ' ')
        return SC_EFORMAT;
    for (size_t i = 13; i < n; i++)
        if (!is_text((unsigned char)s[i]))
            return SC_EFORMAT;
    *minor = s[7] - '0';
    *status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    return 0;
}

int sc_http_response_start(const uint8_t *buf, size_t len, struct sc_http_reply *rep,
                           struct sc_http_lines *it, int *minor)
{
    const char *line;
    size_t n, head_len = 0;

    memset(rep, 0, sizeof *rep);
    rep->why = "incomplete head";
    int r = sc_http_head_find(buf, len, &head_len);
    if (r == 0)
        return 0;
    if (r < 0) {
        rep->why = r == SC_ETOOBIG ? "response head too large" : "bare CR, bare LF or NUL";
        return r;
    }
    rep->head_len = head_len;
    sc_http_lines_init(it, buf, head_len);
    if (!sc_http_next_line(it, &line, &n) ||
        sc_http_status_line(line, n, minor, &rep->status) != 0) {
        rep->why = "malformed status line";
        return SC_EFORMAT;
    }
    return 1;
}

/* ---- building heads ------------------------------------------------------- */

int sc_http_emitted(int r, size_t cap, size_t *n)
{
    if (r < 0)
        return SC_EINVAL;
    if ((size_t)r >= cap)
        return SC_ENOSPACE;
    *n = (size_t)r;
    return 0;
}

int sc_http_authority(const char *host, uint16_t port, uint16_t default_port, char *out, size_t cap)
{
    size_t unused;
    bool v6 = false;
    int r;

    if (host == NULL || port == 0)
        return SC_EINVAL;
    size_t hl = strnlen(host, HOST_MAX + 1);
    if (hl == 0 || hl > HOST_MAX)
        return SC_EINVAL;
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!is_digit(c) && !is_alpha(c) && strchr("-._~:", c) == NULL)
            return SC_EINVAL;
        v6 |= c == ':';
    }
    if (port == default_port)
        r = v6 ? snprintf(out, cap, "[%s]", host) : snprintf(out, cap, "%s", host);
    else if (v6)
        r = snprintf(out, cap, "[%s]:%u", host, (unsigned)port);
    else
        r = snprintf(out, cap, "%s:%u", host, (unsigned)port);
    return sc_http_emitted(r, cap, &unused);
}

/* ---- HTTP CONNECT --------------------------------------------------------- */

static bool credential_ok(const char *s, bool is_user)
{
    size_t n = strnlen(s, CREDENTIAL_MAX + 1);
    if (n > CREDENTIAL_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        /* RFC 7617 2: no control characters; no ':' in the user-id. */
        if (c < 0x20 || c == 0x7f || (is_user && c == ':'))
            return false;
    }
    return true;
}

int sc_http_connect_request(const char *host, uint16_t port, const char *user, const char *password,
                            char *out, size_t cap, size_t *n)
{
    char auth[HOST_MAX + 16];
    char pair[2 * CREDENTIAL_MAX + 2];
    char basic[4 * ((sizeof pair + 2) / 3) + 1];

    if (n == NULL || (out == NULL && cap != 0))
        return SC_EINVAL;
    int r = sc_http_authority(host, port, 0, auth, sizeof auth);
    if (r < 0)
        return r;
    if (user == NULL)
        return sc_http_emitted(
            snprintf(out, cap, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", auth, auth), cap, n);
    if (password == NULL)
        password = "";
    if (!credential_ok(user, true) || !credential_ok(password, false))
        return SC_EINVAL;
    int pl = snprintf(pair, sizeof pair, "%s:%s", user, password);
    if (pl < 0 || (size_t)pl >= sizeof pair)
        return SC_EINVAL;
    (void)EVP_EncodeBlock((unsigned char *)basic, (const unsigned char *)pair, pl);
    r = sc_http_emitted(snprintf(out, cap,
                                 "CONNECT %s HTTP/1.1\r\n"
                                 "Host: %s\r\n"
                                 "Proxy-Authorization: Basic %s\r\n"
                                 "\r\n",
                                 auth, auth, basic),
                        cap, n);
    OPENSSL_cleanse(pair, sizeof pair);
    OPENSSL_cleanse(basic, sizeof basic);
    return r;
}

int sc_http_connect_parse(const uint8_t *buf, size_t len, struct sc_http_reply *rep)
{
    struct sc_http_lines it;
    struct sc_http_field f;
    int minor = 0;

    if (rep == NULL)
        return SC_EINVAL;
    int r = sc_http_response_start(buf, len, rep, &it, &minor);
    if (r <= 0)
        return r;
    if (rep->status == 407) {
        rep->why = "proxy wants authentication";
        return SC_EAUTH;
    }
    /* RFC 9110 9.3.6: any 2xx means the tunnel is open. */
    if (rep->status < 200 || rep->status > 299) {
        rep->why = "proxy refused the tunnel";
        return SC_ECONNECT;
    }
    while ((r = sc_http_next_field(&it, &f)) == 1)
        ;
    if (r < 0) {
        rep->why = "malformed header field";
        return SC_EFORMAT;
    }
    rep->why = "tunnel open";
    return 1;
}
