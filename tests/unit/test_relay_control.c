/* test_relay_control.c — the control socket (relay/control*.c) against a
 * fake of relay/daemon.h below: every JSON-RPC error, params, notifications;
 * then the real socket on an event loop: mode 0600, stale and foreign files,
 * order, the 64 KiB line and 64-client bounds, a watcher that stops reading,
 * clients that vanish, sc_control_free inside a request. Waits are bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "relay/control.h"
#include "relay/control_rpc.h"
#include "relay/daemon.h"
#include "util/time.h"

/* ---- the fake daemon -------------------------------------------------------------------- */

struct sc_daemon {
    struct event_base *base;
    int status_calls;
    char last_id[80];
    char last_text[256];
    int fail_next; /* the next connect/send/reload fails with "fake failure" */
    sc_daemon_event_cb cb;
    void *cb_arg;
    uint64_t handle;
    int unsubscribed;
    struct sc_control *free_on_reload; /* reload calls sc_control_free on it */
};

static struct sc_daemon fake;

struct event_base *sc_daemon_base(const struct sc_daemon *d) { return d->base; }

json_t *sc_daemon_status_json(struct sc_daemon *d)
{
    d->status_calls++;
    return json_pack("{s:s,s:i}", "relay_id", "ab", "uptime_s", 5);
}

json_t *sc_daemon_peers_json(struct sc_daemon *d)
{
    (void)d;
    return json_pack("[{s:i}]", "path_id", 1);
}

json_t *sc_daemon_explain_json(struct sc_daemon *d, const char *hex, char *err, size_t errlen)
{
    snprintf(d->last_id, sizeof d->last_id, "%s", hex);
    if (d->fail_next) {
        d->fail_next = 0;
        snprintf(err, errlen, "fake failure");
        return NULL;
    }
    return json_pack("{s:s}", "text", "linked");
}

static int fake_result(struct sc_daemon *d, char *err, size_t errlen)
{
    if (d->fail_next) {
        d->fail_next = 0;
        snprintf(err, errlen, "fake failure");
        return SC_ENOENT;
    }
    return 0;
}

int sc_daemon_send(struct sc_daemon *d, const char *hex, const char *text, char id[33], char *err,
                   size_t errlen)
{
    snprintf(d->last_id, sizeof d->last_id, "%s", hex);
    snprintf(d->last_text, sizeof d->last_text, "%s", text);
    snprintf(id, 33, "0123456789abcdef0123456789abcdef");
    return fake_result(d, err, errlen);
}

int sc_daemon_broadcast(struct sc_daemon *d, const char *text, char id[33], char *err,
                        size_t errlen)
{
    snprintf(d->last_text, sizeof d->last_text, "%s", text);
    snprintf(id, 33, "fedcba9876543210fedcba9876543210");
    int rc = fake_result(d, err, errlen);
    return rc != 0 ? rc : 3;
}

int sc_daemon_connect(struct sc_daemon *d, const char *hex, char *err, size_t errlen)
{
    snprintf(d->last_id, sizeof d->last_id, "%s", hex);
    return fake_result(d, err, errlen);
}

int sc_daemon_disconnect(struct sc_daemon *d, const char *hex, char *err, size_t errlen)
{
    snprintf(d->last_id, sizeof d->last_id, "%s", hex);
    return fake_result(d, err, errlen);
}

int sc_daemon_reload(struct sc_daemon *d, char *err, size_t errlen)
{
    if (d->free_on_reload != NULL) {
        sc_control_free(d->free_on_reload);
        d->free_on_reload = NULL;
    }
    return fake_result(d, err, errlen);
}

int sc_daemon_rotate_link_key(struct sc_daemon *d, char *err, size_t errlen)
{
    return fake_result(d, err, errlen);
}

uint64_t sc_daemon_subscribe(struct sc_daemon *d, sc_daemon_event_cb cb, void *arg)
{
    d->cb = cb;
    d->cb_arg = arg;
    return ++d->handle;
}

void sc_daemon_unsubscribe(struct sc_daemon *d, uint64_t handle)
{
    if (handle == d->handle) {
        d->cb = NULL;
        d->unsubscribed++;
    }
}

/* ---- the RPC layer alone ----------------------------------------------------------------- */

static int fake_watch_calls;
static int fake_watch(void *arg)
{
    (void)arg;
    fake_watch_calls++;
    return 0;
}

static json_t *call(const char *line)
{
    const struct sc_control_rpc_client who = {&fake, fake_watch, NULL};
    json_t *r = (json_t *)1;
    assert_int_equal(sc_control_rpc_handle(&who, line, strlen(line), &r), 0);
    return r;
}

/* Asserts an error response with `code`, id `id_json` (compact JSON) and a
 * message containing `part`. */
static void expect_error(const char *line, int code, const char *id_json, const char *part)
{
    json_t *r = call(line);
    if (r == NULL)
        fail_msg("no response to %s", line);
    json_t *e = json_object_get(r, "error");
    if (json_integer_value(json_object_get(e, "code")) != code)
        fail_msg("%s: want code %d, got %s", line, code, json_dumps(r, JSON_COMPACT));
    char *id = json_dumps(json_object_get(r, "id"), JSON_COMPACT | JSON_ENCODE_ANY);
    assert_string_equal(id, id_json);
    free(id);
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(msg);
    if (strstr(msg, part) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", line, msg, part);
    assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
    assert_null(json_object_get(r, "result"));
    json_decref(r);
}

static json_t *expect_result(const char *line)
{
    json_t *r = call(line);
    assert_non_null(r);
    if (json_object_get(r, "error") != NULL)
        fail_msg("%s: %s", line, json_dumps(r, JSON_COMPACT));
    json_t *res = json_incref(json_object_get(r, "result"));
    assert_non_null(res);
    json_decref(r);
    return res;
}

#define ID64 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void test_rpc_errors(void **state)
{
    (void)state;
    expect_error("not json", -32700, "null", "parse error");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"", -32700, "null", "parse error");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"status\"}", -32700, "null",
                 "duplicate");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"} x", -32700, "null", "parse");
    expect_error("42", -32600, "null", "JSON object");
    expect_error("\"status\"", -32600, "null", "JSON object");
    expect_error("[]", -32600, "null", "batch");
    expect_error("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}]", -32600, "null", "batch");
    expect_error("{\"id\":7,\"method\":\"status\"}", -32600, "7", "jsonrpc");
    expect_error("{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"status\"}", -32600, "7", "jsonrpc");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":\"a\"}", -32600, "\"a\"", "method");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":5}", -32600, "\"a\"", "method");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"status\"}", -32600, "null", "id");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"status\"}", -32600, "null", "id");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\",\"params\":3}", -32600, "1",
                 "params");
    /* invalid requests are answered even without an id */
    expect_error("{\"jsonrpc\":\"2.0\",\"method\":1}", -32600, "null", "method");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"nope\"}", -32601, "null",
                 "method not found: 'nope'");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":2.5,\"method\":\"Status\"}", -32601, "2.5", "'Status'");
}

static void test_rpc_params(void **state)
{
    (void)state;
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"explain\"}", -32602, "1",
                 "missing param 'relay_id'");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"explain\",\"params\":{\"relay_id\":"
                 "\"abc\"}}",
                 -32602, "1", "invalid param 'relay_id'");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"connect\",\"params\":{\"relay_id\":"
                 "5}}",
                 -32602, "1", "invalid param 'relay_id'");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"disconnect\",\"params\":{\"relay_id\":"
                 "\"" ID64 "\",\"force\":true}}",
                 -32602, "1", "unknown param 'force'");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"send\",\"params\":{\"to\":\"" ID64
                 "\"}}",
                 -32602, "1", "missing param 'message'");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"send\",\"params\":{\"message\":1}}",
                 -32602, "1", "missing param 'to'");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"send\",\"params\":[\"" ID64 "\",1]}",
                 -32602, "1", "params by name");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\",\"params\":{\"x\":1}}",
                 -32602, "1", "unknown param 'x'; status takes no params");
    /* a long, multi-byte param name is echoed cut on a character boundary */
    char line[600];
    char name[300] = "";
    for (int i = 0; i < 100; i++)
        strcat(name, "\xc3\xa9"); /* é */
    snprintf(line, sizeof line,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\",\"params\":{\"%s\":1}}", name);
    json_t *r = call(line);
    const char *msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "...'"));
    assert_true(strlen(msg) < 200);
    json_decref(r);
    /* no params, [] and {} are all fine for a method without params */
    json_decref(expect_result("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\",\"params\":[]}"));
    json_decref(expect_result("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\",\"params\":{}}"));
}

static void test_rpc_methods(void **state)
{
    (void)state;
    json_t *r = call("{\"jsonrpc\":\"2.0\",\"id\":\"x1\",\"method\":\"status\"}");
    assert_string_equal(json_string_value(json_object_get(r, "id")), "x1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "uptime_s")),
                     5);
    json_decref(r);

    json_t *res = expect_result("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"peers\"}");
    assert_true(json_is_array(res));
    json_decref(res);

    /* relay IDs reach the daemon in lowercase */
    res = expect_result("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"explain\",\"params\":{"
                        "\"relay_id\":\"00112233445566778899AABBCCDDEEFF00112233445566778899AABBCC"
                        "DDEEFF\"}}");
    assert_string_equal(fake.last_id, ID64);
    assert_string_equal(json_string_value(json_object_get(res, "text")), "linked");
    json_decref(res);

    res = expect_result("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"send\",\"params\":{\"to\":\"" ID64
                        "\",\"message\":{\"type\": \"relay_message\", \"n\": [1, 2]}}}");
    assert_string_equal(fake.last_text, "{\"type\":\"relay_message\",\"n\":[1,2]}");
    assert_string_equal(json_string_value(json_object_get(res, "id")),
                        "0123456789abcdef0123456789abcdef");
    json_decref(res);

    res = expect_result(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"broadcast\",\"params\":{\"message\":\"hi\"}}");
    assert_string_equal(fake.last_text, "\"hi\"");
    assert_int_equal(json_integer_value(json_object_get(res, "peers")), 3);
    json_decref(res);

    const char *ok[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"connect\",\"params\":{\"relay_id\":\"" ID64 "\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"disconnect\",\"params\":{\"relay_id\":\"" ID64
        "\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"reload\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"rotate-link-key\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\"}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        json_decref(expect_result(ok[i]));
    assert_int_equal(fake_watch_calls, 1);

    /* the daemon's refusal, with its message */
    for (size_t i = 0; i < 4; i++) {
        fake.fail_next = 1;
        expect_error(ok[i], -32000, "1", "fake failure");
    }
    fake.fail_next = 1;
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"broadcast\",\"params\":{\"message\":"
                 "null}}",
                 -32000, "1", "fake failure");
}

static void test_rpc_notifications(void **state)
{
    (void)state;
    int before = fake.status_calls;
    assert_null(call("{\"jsonrpc\":\"2.0\",\"method\":\"status\"}"));
    assert_int_equal(fake.status_calls, before + 1); /* run, not answered */
    assert_null(call("{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}"));
    assert_null(call("{\"jsonrpc\":\"2.0\",\"method\":\"explain\",\"params\":{}}"));
    fake.fail_next = 1;
    assert_null(call("{\"jsonrpc\":\"2.0\",\"method\":\"reload\"}"));
    /* "id": null is a request, not a notification */
    json_t *r = call("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"status\"}");
    assert_non_null(r);
    assert_true(json_is_null(json_object_get(r, "id")));
    json_decref(r);
}

/* ---- the socket ------------------------------------------------------------------------ */

static char dir[64], sock_path[96];

static int setup_socket(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sc-control-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(sock_path, sizeof sock_path, "%s/c.sock", dir);
    fake.base = event_base_new();
    fake.cb = NULL;
    fake.unsubscribed = 0;
    return fake.base != NULL ? 0 : -1;
}

static int teardown_socket(void **state)
{
    (void)state;
    unlink(sock_path);
    rmdir(dir);
    event_base_free(fake.base);
    fake.base = NULL;
    return 0;
}

struct cl {
    int fd;
    char buf[4 << 20];
    size_t len;
    bool eof;
};

static struct cl *cl_connect(void)
{
    struct cl *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock_path);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    return c;
}

static void cl_close(struct cl *c)
{
    close(c->fd);
    free(c);
}

static void cl_write(struct cl *c, const char *s, size_t n)
{
    size_t off = 0;
    uint64_t deadline = sc_mono_ms() + 5000;
    while (off < n) {
        ssize_t w = send(c->fd, s + off, n - off, MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        else if (errno == EAGAIN)
            event_base_loop(fake.base, EVLOOP_NONBLOCK);
        else
            fail_msg("send: %s", strerror(errno));
        if (sc_mono_ms() > deadline)
            fail_msg("cannot write %zu bytes", n);
    }
}

static void cl_pull(struct cl *c)
{
    while (!c->eof && c->len < sizeof c->buf) {
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n > 0)
            c->len += (size_t)n;
        else if (n == 0 || (errno != EAGAIN && errno != EINTR))
            c->eof = true;
        else
            break;
    }
}

/* The next line the server sent (parsed), running the loop until it comes;
 * NULL on EOF. */
static json_t *cl_line(struct cl *c)
{
    uint64_t deadline = sc_mono_ms() + 5000;
    for (;;) {
        cl_pull(c);
        char *lf = memchr(c->buf, '\n', c->len);
        if (lf != NULL) {
            size_t n = (size_t)(lf - c->buf);
            json_error_t e;
            json_t *v = json_loadb(c->buf, n, 0, &e);
            if (v == NULL)
                fail_msg("bad line from the server: %s", e.text);
            memmove(c->buf, lf + 1, c->len - n - 1);
            c->len -= n + 1;
            return v;
        }
        if (c->eof)
            return NULL;
        if (sc_mono_ms() > deadline)
            fail_msg("no line from the server within 5 s");
        event_base_loop(fake.base, EVLOOP_NONBLOCK);
        struct pollfd p = {c->fd, POLLIN, 0};
        poll(&p, 1, 1);
    }
}

static void cl_request(struct cl *c, const char *line)
{
    cl_write(c, line, strlen(line));
}

/* Runs the loop until cond() or 5 s. */
static void pump_until(bool (*cond)(void), const char *what)
{
    uint64_t deadline = sc_mono_ms() + 5000;
    while (!cond()) {
        if (sc_mono_ms() > deadline)
            fail_msg("timed out waiting for %s", what);
        event_base_loop(fake.base, EVLOOP_NONBLOCK);
        poll(NULL, 0, 1);
    }
}

static struct sc_control *open_control(void)
{
    char err[256] = "";
    struct sc_control *ctl = sc_control_new(&fake, sock_path, err, sizeof err);
    if (ctl == NULL)
        fail_msg("sc_control_new: %s", err);
    return ctl;
}

static void test_socket_file(void **state)
{
    (void)state;
    struct sc_control *ctl = open_control();
    struct stat st;
    assert_int_equal(lstat(sock_path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    /* a second one on the same path: someone listens */
    char err[256] = "";
    assert_null(sc_control_new(&fake, sock_path, err, sizeof err));
    assert_non_null(strstr(err, "another process is listening"));
    sc_control_free(ctl);
    assert_int_equal(lstat(sock_path, &st), -1); /* removed */

    /* a stale socket (nobody listens) is replaced */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock_path);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    close(s);
    ctl = open_control();
    sc_control_free(ctl);

    /* a regular file is never replaced */
    FILE *f = fopen(sock_path, "w");
    assert_non_null(f);
    fputs("keep me\n", f);
    fclose(f);
    assert_null(sc_control_new(&fake, sock_path, err, sizeof err));
    assert_non_null(strstr(err, "not a socket"));
    assert_int_equal(lstat(sock_path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(sock_path);

    /* a path too long for sun_path */
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    assert_null(sc_control_new(&fake, longp, err, sizeof err));
    assert_non_null(strstr(err, "1 to 107 bytes"));
}

static int code_of(json_t *r)
{
    return (int)json_integer_value(json_object_get(json_object_get(r, "error"), "code"));
}

static void test_socket_order_and_framing(void **state)
{
    (void)state;
    struct sc_control *ctl = open_control();
    struct cl *c = cl_connect();
    /* three requests in one write, a notification between them; a blank line */
    cl_request(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\n"
                  "{\"jsonrpc\":\"2.0\",\"method\":\"status\"}\n\n"
                  "nonsense\n"
                  "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"peers\"}\r\n");
    json_t *r = cl_line(c);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
    json_decref(r);
    r = cl_line(c); /* the blank line: a parse error, like any non-JSON line */
    assert_int_equal(code_of(r), -32700);
    json_decref(r);
    r = cl_line(c);
    assert_int_equal(code_of(r), -32700);
    json_decref(r);
    r = cl_line(c);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 3);
    assert_true(json_is_array(json_object_get(r, "result")));
    json_decref(r);
    /* one request in pieces */
    cl_request(c, "{\"jsonrpc\":\"2.0\",");
    event_base_loop(fake.base, EVLOOP_NONBLOCK);
    cl_request(c, "\"id\":4,\"method\":\"status\"}\n");
    r = cl_line(c);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 4);
    json_decref(r);
    /* the last request without its LF, then EOF: answered, then closed */
    cl_request(c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"status\"}");
    shutdown(c->fd, SHUT_WR);
    r = cl_line(c);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 5);
    json_decref(r);
    assert_null(cl_line(c));
    cl_close(c);
    sc_control_free(ctl);
}

/* A request line of exactly `n` bytes (padded with an extra member). */
static char *line_of(size_t n)
{
    const char *head = "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"status\",\"pad\":\"";
    char *s = malloc(n + 2);
    memset(s, 'x', n);
    memcpy(s, head, strlen(head));
    s[n - 2] = '"';
    s[n - 1] = '}';
    s[n] = '\n';
    s[n + 1] = '\0';
    return s;
}

static void test_socket_line_bound(void **state)
{
    (void)state;
    struct sc_control *ctl = open_control();
    struct cl *c = cl_connect();
    char *full = line_of(SC_CONTROL_LINE_MAX_BYTES);
    cl_write(c, full, SC_CONTROL_LINE_MAX_BYTES + 1);
    json_t *r = cl_line(c);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 9);
    assert_non_null(json_object_get(r, "result"));
    json_decref(r);
    free(full);

    struct cl *other = cl_connect();
    char *over = line_of(SC_CONTROL_LINE_MAX_BYTES + 1);
    cl_write(c, over, SC_CONTROL_LINE_MAX_BYTES + 2);
    free(over);
    r = cl_line(c);
    assert_int_equal(code_of(r), -32600);
    assert_true(json_is_null(json_object_get(r, "id")));
    json_decref(r);
    assert_null(cl_line(c)); /* closed */
    cl_close(c);
    /* no LF at all: refused once the bound is passed, not buffered on */
    c = cl_connect();
    char *junk = malloc(3 * SC_CONTROL_LINE_MAX_BYTES);
    memset(junk, '{', 3 * SC_CONTROL_LINE_MAX_BYTES);
    size_t sent = 0;
    while (sent < 3 * SC_CONTROL_LINE_MAX_BYTES) {
        ssize_t w = send(c->fd, junk + sent, 3 * SC_CONTROL_LINE_MAX_BYTES - sent, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server closed, or its buffers are full */
        sent += (size_t)w;
        event_base_loop(fake.base, EVLOOP_NONBLOCK);
    }
    free(junk);
    r = cl_line(c);
    assert_int_equal(code_of(r), -32600);
    json_decref(r);
    cl_close(c);
    /* the other client is still served */
    cl_request(other, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"status\"}\n");
    r = cl_line(other);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 2);
    json_decref(r);
    cl_close(other);
    sc_control_free(ctl);
}

static void test_socket_client_bound(void **state)
{
    (void)state;
    struct sc_control *ctl = open_control();
    struct cl *c[SC_CONTROL_CLIENTS_MAX];
    for (int round = 0; round < 2; round++) {
        for (unsigned i = 0; i < SC_CONTROL_CLIENTS_MAX; i++) {
            c[i] = cl_connect();
            cl_request(c[i], "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\n");
            event_base_loop(fake.base, EVLOOP_NONBLOCK);
        }
        json_t *r = cl_line(c[SC_CONTROL_CLIENTS_MAX - 1]);
        assert_non_null(json_object_get(r, "result"));
        json_decref(r);
        struct cl *extra = cl_connect();
        r = cl_line(extra);
        assert_int_equal(code_of(r), -32000);
        assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "error"),
                                                                 "message")),
                               "too many"));
        json_decref(r);
        assert_null(cl_line(extra));
        cl_close(extra);
        /* all of them hang up, some before reading their answer: the slots
         * come back (second round) */
        for (unsigned i = 0; i < SC_CONTROL_CLIENTS_MAX; i++)
            cl_close(c[i]);
        for (int k = 0; k < 100; k++) { /* the hang-ups are ready at once */
            event_base_loop(fake.base, EVLOOP_NONBLOCK);
            poll(NULL, 0, 1);
        }
    }
    sc_control_free(ctl);
}

static bool watcher_gone(void) { return fake.unsubscribed > 0; }

static void test_socket_watch(void **state)
{
    (void)state;
    struct sc_control *ctl = open_control();
    struct cl *w = cl_connect();
    cl_request(w, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\"}\n");
    json_t *r = cl_line(w);
    assert_true(json_is_true(json_object_get(json_object_get(r, "result"), "watching")));
    json_decref(r);
    assert_non_null(fake.cb);
    fake.cb(json_pack("{s:s,s:i}", "event", "path", "path_id", 3), fake.cb_arg);
    r = cl_line(w);
    assert_string_equal(json_string_value(json_object_get(r, "method")), "event");
    assert_null(json_object_get(r, "id"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "params"), "path_id")),
                     3);
    json_decref(r);
    /* the watcher stops reading: once over 1 MiB is queued, it is dropped */
    char big[8192];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct cl *other = cl_connect();
    for (int i = 0; i < 1000 && fake.cb != NULL && fake.unsubscribed == 0; i++) {
        fake.cb(json_pack("{s:s,s:s}", "event", "message", "body", big), fake.cb_arg);
        event_base_loop(fake.base, EVLOOP_NONBLOCK);
    }
    pump_until(watcher_gone, "the slow watcher to be dropped");
    /* it gets what was written before, then EOF; the other client is fine */
    int events = 0;
    while ((r = cl_line(w)) != NULL) {
        events++;
        json_decref(r);
    }
    assert_true(events >= 1);
    cl_close(w);
    cl_request(other, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"status\"}\n");
    r = cl_line(other);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 2);
    json_decref(r);

    /* a watcher that hangs up is unsubscribed, and events meanwhile are harmless */
    fake.unsubscribed = 0;
    w = cl_connect();
    cl_request(w, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\"}\n");
    json_decref(cl_line(w));
    cl_close(w);
    for (int i = 0; i < 3 && fake.cb != NULL; i++) {
        fake.cb(json_pack("{s:s}", "event", "path"), fake.cb_arg);
        event_base_loop(fake.base, EVLOOP_NONBLOCK);
    }
    pump_until(watcher_gone, "the closed watcher to be unsubscribed");
    cl_close(other);
    sc_control_free(ctl);
}

static void test_socket_free_inside_request(void **state)
{
    (void)state;
    struct sc_control *ctl = open_control();
    struct cl *w = cl_connect();
    cl_request(w, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\"}\n");
    json_decref(cl_line(w));
    struct cl *c = cl_connect();
    fake.unsubscribed = 0;
    fake.free_on_reload = ctl;
    cl_request(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"reload\"}\n");
    assert_null(cl_line(c)); /* the socket went away under the request */
    assert_null(cl_line(w));
    pump_until(watcher_gone, "the watcher to be unsubscribed");
    struct stat st;
    assert_int_equal(lstat(sock_path, &st), -1);
    cl_close(c);
    cl_close(w);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as secircd does */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpc_errors),
        cmocka_unit_test(test_rpc_params),
        cmocka_unit_test(test_rpc_methods),
        cmocka_unit_test(test_rpc_notifications),
        cmocka_unit_test_setup_teardown(test_socket_file, setup_socket, teardown_socket),
        cmocka_unit_test_setup_teardown(test_socket_order_and_framing, setup_socket,
                                        teardown_socket),
        cmocka_unit_test_setup_teardown(test_socket_line_bound, setup_socket, teardown_socket),
        cmocka_unit_test_setup_teardown(test_socket_client_bound, setup_socket, teardown_socket),
        cmocka_unit_test_setup_teardown(test_socket_watch, setup_socket, teardown_socket),
        cmocka_unit_test_setup_teardown(test_socket_free_inside_request, setup_socket,
                                        teardown_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
