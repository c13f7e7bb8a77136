/* relay/tor_control.c — the control-port client of relay/tor_control.h:
 * one state machine over one bufferevent (tor's control-spec.txt), bounded
 * lines and replies, SAFECOOKIE checked both ways, the onion key written
 * once with O_EXCL and mode 0600. Reconnects forever with backoff; a tor
 * that is absent is a state, never a loop. */
#include "relay/tor_control.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "util/hex.h"
#include "util/log.h"
#include "util/ratelimit.h"
#include "util/time.h"

#define LINE_MAX_BYTES 4096u
#define REPLY_LINES_MAX 32u
#define COOKIE_BYTES 32u
#define NONCE_BYTES 32u
#define KEY_TEXT_MAX 256u
#define RETRY_FIRST_MS 1000u
#define RETRY_MAX_MS 60000u
#define CONNECT_TIMEOUT_S 10

/* States: UNAVAILABLE -> CONNECTING -> PROTOCOLINFO -> [AUTHCHALLENGE] ->
 * AUTHENTICATE -> ADD_ONION -> PUBLISHED; any -> UNAVAILABLE. */
enum tc_state {
    TC_UNAVAILABLE,
    TC_CONNECTING,
    TC_PROTOCOLINFO,
    TC_AUTHCHALLENGE,
    TC_AUTHENTICATE,
    TC_ADD_ONION,
    TC_PUBLISHED,
};

static const char *const state_names[] = {
    [TC_UNAVAILABLE] = "unavailable", [TC_CONNECTING] = "connecting",
    [TC_PROTOCOLINFO] = "authenticating", [TC_AUTHCHALLENGE] = "authenticating",
    [TC_AUTHENTICATE] = "authenticating", [TC_ADD_ONION] = "adding",
    [TC_PUBLISHED] = "published",
};

struct sc_tor_control {
    struct event_base *base;
    char *host, *password, *key_file, *target_host;
    uint16_t port, virtual_port, target_port;
    struct bufferevent *bev;
    struct event *retry;
    struct sc_backoff backoff;
    enum tc_state state;
    char lines[REPLY_LINES_MAX][LINE_MAX_BYTES / 4];
    size_t nlines;
    bool in_data; /* inside a "250+" data block */
    bool m_null, m_password, m_cookie, m_safecookie;
    char cookie_file[512];
    uint8_t cookie[COOKIE_BYTES];
    uint8_t client_nonce[NONCE_BYTES];
    bool new_key;
    char address[80];
    sc_tor_control_cb cb;
    void *arg;
};

static void set_state(struct sc_tor_control *t, enum tc_state next)
{
    if (sc_log_enabled(SC_LOG_DEBUG))
        sc_log(SC_LOG_DEBUG, "tor.state", "from=%s to=%s", state_names[t->state], state_names[next]);
    t->state = next;
}

static void send_line(struct sc_tor_control *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_line(struct sc_tor_control *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(bufferevent_get_output(t->bev), fmt, ap);
    va_end(ap);
    evbuffer_add(bufferevent_get_output(t->bev), "\r\n", 2);
}

/* ---- failure and retry -------------------------------------------------------- */

static void schedule_connect(struct sc_tor_control *t)
{
    struct timeval tv = sc_ms_to_tv(sc_backoff_next_ms(&t->backoff, randombytes_random()));
    evtimer_add(t->retry, &tv);
}

static void unavailable(struct sc_tor_control *t, const char *why)
{
    bool was_published = t->state == TC_PUBLISHED;
    if (t->bev) {
        bufferevent_free(t->bev);
        t->bev = NULL;
    }
    sodium_memzero(t->cookie, sizeof t->cookie);
    set_state(t, TC_UNAVAILABLE);
    t->address[0] = '\0';
    sc_log(was_published ? SC_LOG_WARN : SC_LOG_INFO, "tor.unavailable",
           "control=%s:%u reason=tor_unavailable why=\"%s\"", t->host, t->port, why);
    if (t->cb)
        t->cb(false, NULL, why, t->arg);
    schedule_connect(t);
}

/* ---- replies --------------------------------------------------------------------- */

/* The value of KEY=VALUE in a reply line (quoted values unescaped). */
static bool field(const char *line, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p++) {
        if ((p != line && p[-1] != ' ') || p[klen] != '=')
            continue;
        const char *v = p + klen + 1;
        size_t n = 0;
        if (*v == '"') {
            for (v++; *v && *v != '"' && n + 1 < outlen; v++) {
                if (*v == '\\' && v[1])
                    v++;
                out[n++] = *v;
            }
        } else {
            while (*v && *v != ' ' && n + 1 < outlen)
                out[n++] = *v++;
        }
        out[n] = '\0';
        return true;
    }
    return false;
}

static void authenticate_with(struct sc_tor_control *t)
{
    if (t->password) {
        char quoted[512];
        size_t n = 0;
        for (const char *p = t->password; *p && n + 3 < sizeof quoted; p++) {
            if (*p == '"' || *p == '\\')
                quoted[n++] = '\\';
            quoted[n++] = *p;
        }
        quoted[n] = '\0';
        set_state(t, TC_AUTHENTICATE);
        send_line(t, "AUTHENTICATE \"%s\"", quoted);
        sodium_memzero(quoted, sizeof quoted);
        return;
    }
    if (t->m_null) {
        set_state(t, TC_AUTHENTICATE);
        send_line(t, "AUTHENTICATE");
        return;
    }
    if (!t->m_cookie && !t->m_safecookie) {
        unavailable(t, "tor offers no authentication we can do (set tor.control_password)");
        return;
    }
    /* Read the cookie (exactly 32 bytes). */
    int fd = open(t->cookie_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t got = fd >= 0 ? read(fd, t->cookie, sizeof t->cookie) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)sizeof t->cookie) {
        char why[640];
        snprintf(why, sizeof why, "cannot read the cookie file %s", t->cookie_file);
        unavailable(t, why);
        return;
    }
    if (t->m_safecookie) {
        randombytes_buf(t->client_nonce, sizeof t->client_nonce);
        char hex[2 * NONCE_BYTES + 1];
        sc_hex_encode(t->client_nonce, sizeof t->client_nonce, hex);
        set_state(t, TC_AUTHCHALLENGE);
        send_line(t, "AUTHCHALLENGE SAFECOOKIE %s", hex);
        return;
    }
    char hex[2 * COOKIE_BYTES + 1];
    sc_hex_encode(t->cookie, sizeof t->cookie, hex);
    set_state(t, TC_AUTHENTICATE);
    send_line(t, "AUTHENTICATE %s", hex);
    sodium_memzero(hex, sizeof hex);
}

static void safecookie_hmac(const struct sc_tor_control *t, const char *label,
                            const uint8_t server_nonce[NONCE_BYTES], uint8_t out[32])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const uint8_t *)label, strlen(label));
    crypto_auth_hmacsha256_update(&st, t->cookie, sizeof t->cookie);
    crypto_auth_hmacsha256_update(&st, t->client_nonce, sizeof t->client_nonce);
    crypto_auth_hmacsha256_update(&st, server_nonce, NONCE_BYTES);
    crypto_auth_hmacsha256_final(&st, out);
}

/* SAFECOOKIE: tor proves it knows the cookie too, then we do. */
static void on_challenge(struct sc_tor_control *t, const char *line)
{
    char sh[80], sn[80];
    uint8_t server_hash[32], server_nonce[NONCE_BYTES], want[32];
    if (!field(line, "SERVERHASH", sh, sizeof sh) || !field(line, "SERVERNONCE", sn, sizeof sn) ||
        sc_hex_decode(sh, strlen(sh), server_hash, sizeof server_hash) != 0 ||
        sc_hex_decode(sn, strlen(sn), server_nonce, sizeof server_nonce) != 0) {
        unavailable(t, "malformed AUTHCHALLENGE reply");
        return;
    }
    safecookie_hmac(t, "Tor safe cookie authentication server-to-controller hash", server_nonce, want);
    if (sodium_memcmp(want, server_hash, sizeof want) != 0) {
        unavailable(t, "tor's SAFECOOKIE proof does not match our cookie");
        return;
    }
    uint8_t mine[32];
    char hex[65];
    safecookie_hmac(t, "Tor safe cookie authentication controller-to-server hash", server_nonce, mine);
    sc_hex_encode(mine, sizeof mine, hex);
    set_state(t, TC_AUTHENTICATE);
    send_line(t, "AUTHENTICATE %s", hex);
    sodium_memzero(mine, sizeof mine);
}

/* The saved key ("ED25519-V3:base64"), or empty when there is none yet. */
static int read_key(const struct sc_tor_control *t, char *key, size_t keylen)
{
    key[0] = '\0';
    int fd = open(t->key_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : sc_translate_sys_error(errno);
    struct stat st;
    ssize_t got = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) == 0 &&
        st.st_uid == geteuid())
        got = read(fd, key, keylen - 1);
    close(fd);
    if (got <= 0)
        return SC_EPERM; /* unsafe mode, another owner, or unreadable */
    key[got] = '\0';
    key[strcspn(key, "\r\n")] = '\0';
    if (strncmp(key, "ED25519-V3:", 11) != 0 || strspn(key + 11,
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != strlen(key + 11))
        return SC_EFORMAT;
    return 0;
}

static int write_key(const struct sc_tor_control *t, const char *key)
{
    int fd = open(t->key_file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return sc_translate_sys_error(errno);
    size_t len = strlen(key);
    int err = fchmod(fd, 0600) == 0 && write(fd, key, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
                      fsync(fd) == 0
                  ? 0
                  : sc_translate_sys_error(errno);
    close(fd);
    if (err)
        unlink(t->key_file);
    return err;
}

static void add_onion(struct sc_tor_control *t)
{
    char key[KEY_TEXT_MAX];
    int err = read_key(t, key, sizeof key);
    if (err) {
        char why[640];
        snprintf(why, sizeof why, "onion key file %s: %s (mode 0600, ours, \"ED25519-V3:...\")",
                 t->key_file, sc_strerror(err));
        unavailable(t, why);
        return;
    }
    t->new_key = key[0] == '\0';
    set_state(t, TC_ADD_ONION);
    send_line(t, "ADD_ONION %s Port=%u,%s:%u", t->new_key ? "NEW:ED25519-V3" : key, t->virtual_port,
              t->target_host, t->target_port);
    sodium_memzero(key, sizeof key);
}

static void on_added(struct sc_tor_control *t)
{
    char id[64] = "", key[KEY_TEXT_MAX] = "";
    for (size_t i = 0; i < t->nlines; i++) {
        if (!id[0])
            field(t->lines[i], "ServiceID", id, sizeof id);
        if (!key[0])
            field(t->lines[i], "PrivateKey", key, sizeof key);
    }
    if (strlen(id) != 56) {
        unavailable(t, "ADD_ONION gave no v3 service ID");
        return;
    }
    if (t->new_key) {
        int err = key[0] ? write_key(t, key) : SC_EFORMAT;
        sodium_memzero(key, sizeof key);
        if (err) {
            char why[640];
            snprintf(why, sizeof why, "cannot keep the onion key in %s: %s", t->key_file,
                     sc_strerror(err));
            unavailable(t, why); /* a service we could not keep would change address */
            return;
        }
        sc_log(SC_LOG_INFO, "tor.onion_key_created", "file=%s mode=0600", t->key_file);
    }
    snprintf(t->address, sizeof t->address, "%s.onion", id);
    set_state(t, TC_PUBLISHED);
    sc_backoff_reset(&t->backoff);
    sc_log(SC_LOG_INFO, "tor.onion_published", "address=%s virtual_port=%u", t->address,
           t->virtual_port);
    if (t->cb)
        t->cb(true, t->address, NULL, t->arg);
}

/* One complete reply: `code` of its last line; the lines are in t->lines. */
static void on_reply(struct sc_tor_control *t, int code)
{
    const char *last = t->nlines ? t->lines[t->nlines - 1] : "";
    if (code != 250) {
        char why[600];
        snprintf(why, sizeof why, "tor answered %d %.300s", code, last);
        unavailable(t, why);
        return;
    }
    switch (t->state) {
    case TC_PROTOCOLINFO:
        for (size_t i = 0; i < t->nlines; i++) {
            char methods[200];
            if (strncmp(t->lines[i], "AUTH ", 5) != 0 || !field(t->lines[i], "METHODS", methods, sizeof methods))
                continue;
            char *save = NULL;
            for (char *m = strtok_r(methods, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
                t->m_null |= strcmp(m, "NULL") == 0;
                t->m_password |= strcmp(m, "HASHEDPASSWORD") == 0;
                t->m_cookie |= strcmp(m, "COOKIE") == 0;
                t->m_safecookie |= strcmp(m, "SAFECOOKIE") == 0;
            }
            field(t->lines[i], "COOKIEFILE", t->cookie_file, sizeof t->cookie_file);
        }
        authenticate_with(t);
        return;
    case TC_AUTHCHALLENGE:
        on_challenge(t, last);
        return;
    case TC_AUTHENTICATE:
        sodium_memzero(t->cookie, sizeof t->cookie);
        add_onion(t);
        return;
    case TC_ADD_ONION:
        on_added(t);
        return;
    default:
        return; /* asynchronous or late: nothing to do */
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct sc_tor_control *t = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line;
    size_t len;
    while (t->bev && (line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
        bool bad = len < 4 || len >= LINE_MAX_BYTES;
        if (t->in_data) { /* data block lines until "." */
            t->in_data = strcmp(line, ".") != 0;
            free(line);
            continue;
        }
        char sep = bad ? '\0' : line[3];
        int code = bad ? 0 : atoi(line);
        if (!bad && code >= 600) { /* asynchronous event: not ours */
            free(line);
            continue;
        }
        if (bad || (sep != ' ' && sep != '-' && sep != '+') || t->nlines >= REPLY_LINES_MAX) {
            free(line);
            unavailable(t, "malformed reply from the control port");
            return;
        }
        snprintf(t->lines[t->nlines++], sizeof t->lines[0], "%s", line + 4);
        t->in_data = sep == '+';
        free(line);
        if (sep == ' ') {
            on_reply(t, code);
            t->nlines = 0;
        }
    }
    if (t->bev && evbuffer_get_length(in) >= LINE_MAX_BYTES)
        unavailable(t, "overlong line from the control port");
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct sc_tor_control *t = arg;
    if (what & BEV_EVENT_CONNECTED) {
        set_state(t, TC_PROTOCOLINFO);
        t->m_null = t->m_password = t->m_cookie = t->m_safecookie = false;
        t->cookie_file[0] = '\0';
        t->nlines = 0;
        t->in_data = false;
        send_line(t, "PROTOCOLINFO 1");
        return;
    }
    unavailable(t, (what & BEV_EVENT_EOF) ? "tor closed the control connection"
                   : (what & BEV_EVENT_TIMEOUT) ? "control port timed out"
                                                : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void connect_now(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_tor_control *t = arg;
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    char hostport[300];
    snprintf(hostport, sizeof hostport, strchr(t->host, ':') ? "[%s]:%u" : "%s:%u", t->host, t->port);
    t->bev = bufferevent_socket_new(t->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!t->bev || evutil_parse_sockaddr_port(hostport, (struct sockaddr *)&ss, &sslen) != 0) {
        unavailable(t, "cannot make the control connection");
        return;
    }
    bufferevent_setcb(t->bev, on_read, NULL, on_event, t);
    struct timeval tv = {CONNECT_TIMEOUT_S, 0};
    bufferevent_set_timeouts(t->bev, &tv, NULL);
    bufferevent_enable(t->bev, EV_READ | EV_WRITE);
    set_state(t, TC_CONNECTING);
    if (bufferevent_socket_connect(t->bev, (struct sockaddr *)&ss, sslen) != 0)
        unavailable(t, "cannot connect to the control port");
}

int sc_tor_control_new(struct event_base *base, const struct sc_tor_control_config *cfg,
                       sc_tor_control_cb cb, void *arg, struct sc_tor_control **out)
{
    *out = NULL;
    if (!cfg->host || !cfg->port || !cfg->key_file || !cfg->target_host || !cfg->target_port ||
        !cfg->virtual_port)
        return SC_EINVAL;
    struct sc_tor_control *t = calloc(1, sizeof *t);
    if (!t)
        return SC_ENOMEM;
    t->base = base;
    t->host = strdup(cfg->host);
    t->password = cfg->password && cfg->password[0] ? strdup(cfg->password) : NULL;
    t->key_file = strdup(cfg->key_file);
    t->target_host = strdup(cfg->target_host);
    t->port = cfg->port;
    t->virtual_port = cfg->virtual_port;
    t->target_port = cfg->target_port;
    t->cb = cb;
    t->arg = arg;
    t->backoff = (struct sc_backoff){.base_ms = RETRY_FIRST_MS, .cap_ms = RETRY_MAX_MS};
    t->retry = evtimer_new(base, connect_now, t);
    if (!t->host || !t->key_file || !t->target_host || !t->retry ||
        (cfg->password && cfg->password[0] && !t->password)) {
        sc_tor_control_free(t);
        return SC_ENOMEM;
    }
    struct timeval now = {0, 0};
    evtimer_add(t->retry, &now);
    *out = t;
    return 0;
}

void sc_tor_control_free(struct sc_tor_control *t)
{
    if (!t)
        return;
    if (t->bev)
        bufferevent_free(t->bev);
    if (t->retry)
        event_free(t->retry);
    sodium_memzero(t->cookie, sizeof t->cookie);
    if (t->password) {
        sodium_memzero(t->password, strlen(t->password));
        free(t->password);
    }
    free(t->host);
    free(t->key_file);
    free(t->target_host);
    free(t);
}

const char *sc_tor_control_address(const struct sc_tor_control *t)
{
    return t && t->state == TC_PUBLISHED ? t->address : NULL;
}

const char *sc_tor_control_state(const struct sc_tor_control *t) { return state_names[t->state]; }
