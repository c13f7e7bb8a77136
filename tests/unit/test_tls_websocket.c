/* test_tls_websocket.c — websocket over tls (wss: tcp -> tls -> websocket)
 * over a socketpair, ended from either side: by an orderly close (the
 * last bytes, then the close frame with its code, then close_notify, then
 * FIN), by an abortive free, and by a link over it closing. OpenSSL's
 * large blocks are fenced here (unmapped-for-good on free), so anything
 * that touches a freed TLS session crashes the test instead of passing by
 * luck. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "link/link_stream.h"
#include "secirc/identity.h"
#include "secirc/log.h"
#include "transport/tls.h"
#include "transport/websocket.h"
#include "util/time.h"

/* ---- OpenSSL's memory, fenced ------------------------------------------------------
 * libssl is not built with ASan, and a freed block's stale bytes often
 * still work, so a use after free inside OpenSSL can pass unnoticed (or
 * crash only in a release build, by chance). While `fence_on`, every block
 * of FENCE_MIN_BYTES or more (an SSL, record buffers) gets pages of its
 * own, made inaccessible when freed and never given out again: a later
 * use faults at once, in every build. */
#define FENCE_MIN_BYTES 4096

struct block_head {
    size_t size;   /* what was asked for */
    size_t mapped; /* bytes mapped for a fenced block; 0 when from malloc */
};

static bool fence_on;

static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    struct block_head *h;
    if (fence_on && n >= FENCE_MIN_BYTES) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        size_t len = (sizeof *h + n + page - 1) / page * page;
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        h = p;
        h->mapped = len;
    } else {
        h = malloc(sizeof *h + n);
        if (!h)
            return NULL;
        h->mapped = 0;
    }
    h->size = n;
    return h + 1;
}

static void ossl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (!p)
        return;
    struct block_head *h = (struct block_head *)p - 1;
    size_t mapped = h->mapped;
    if (mapped) {
        if (mprotect(h, mapped, PROT_NONE) != 0)
            abort(); /* the fence itself failed: nothing here could be trusted */
        (void)madvise(h, mapped, MADV_DONTNEED); /* the memory goes, the addresses stay */
    } else {
        free(h);
    }
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    if (!p)
        return ossl_malloc(n, file, line);
    if (n == 0) {
        ossl_free(p, file, line);
        return NULL;
    }
    void *q = ossl_malloc(n, file, line);
    if (!q)
        return NULL;
    size_t old = ((struct block_head *)p - 1)->size;
    memcpy(q, p, old < n ? old : n);
    ossl_free(p, file, line);
    return q;
}

/* ---- certificates, contexts ------------------------------------------------------- */

static char dir[64], cert[128], key[128];
static SSL_CTX *server_ctx, *client_ctx;

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/secirc-wss-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    char err[256];
    if (sc_tls_self_signed(cert, key, "127.0.0.1", err, sizeof err) != 0 ||
        sc_tls_server_ctx_new(cert, key, 0, &server_ctx, err, sizeof err) != 0 ||
        sc_tls_client_ctx_new(0, SC_TLS_VERIFY_NONE, NULL, &client_ctx, err, sizeof err) != 0) {
        fprintf(stderr, "tls setup: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
    unlink(cert);
    unlink(key);
    rmdir(dir);
    return 0;
}

/* ---- two ends of a socketpair, each tcp -> tls -> websocket ---------------------- */

struct end {
    struct sc_stream *s;
    int fd;
    bool done, eof;
    int err;
    struct evbuffer *got;
};

static struct event_base *g_base;
static char g_log[4096];

static void capture_log(enum sc_log_level level, const char *event, const char *fields, void *arg)
{
    (void)level;
    (void)arg;
    size_t len = strlen(g_log);
    snprintf(g_log + len, sizeof g_log - len, "%s %s\n", event, fields);
}

static void on_neg(struct sc_stream *s, int err, const char *why, void *arg)
{
    (void)s;
    (void)why;
    struct end *e = arg;
    e->done = true;
    e->err = err;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct end *e = arg;
    evbuffer_add_buffer(e->got, bufferevent_get_input(bev));
}

static void on_written(struct bufferevent *bev, void *arg)
{
    (void)bev;
    (void)arg; /* there, as a link's is: a write leaves this callback scheduled */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct end *e = arg;
    on_read(bev, arg);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        e->eof = true;
}

static bool fd_closed(int fd)
{
    return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

/* Turns the loop until cond(arg) holds or ms pass; returns cond(arg). */
static bool pump(bool (*cond)(const void *), const void *arg, uint64_t ms)
{
    uint64_t deadline = sc_mono_ms() + ms;
    while (!cond(arg) && sc_mono_ms() < deadline) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(g_base, &tv);
        event_base_loop(g_base, EVLOOP_ONCE);
    }
    return cond(arg);
}

static bool both_done(const void *arg)
{
    const struct end *e = arg;
    return e[0].done && e[1].done;
}

static bool is_eof(const void *arg) { return ((const struct end *)arg)->eof; }
static bool is_closed(const void *arg) { return fd_closed(*(const int *)arg); }

static bool close_notify_received(const void *arg)
{
    struct bufferevent *tls = bufferevent_get_underlying(sc_stream_bev(((const struct end *)arg)->s));
    SSL *ssl = tls ? bufferevent_openssl_get_ssl(tls) : NULL;
    return ssl && (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN);
}

/* ends[0] the client, ends[1] the server, both negotiated. */
static void wss_pair(struct end ends[2])
{
    /* valid until the negotiations end, before this returns */
    struct sc_tls_params ctp = {.ctx = client_ctx, .channel_binding = true};
    struct sc_tls_params stp = {.ctx = server_ctx};
    struct sc_ws_params cw = {.host = "127.0.0.1", .port = 443, .tls = true, .subprotocol = true};
    struct sc_ws_params sw = {.path = NULL};
    const struct sc_layer_spec layers[2][2] = {{{&sc_layer_tls, &ctp}, {&sc_layer_websocket, &cw}},
                                               {{&sc_layer_tls, &stp}, {&sc_layer_websocket, &sw}}};
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    for (int i = 0; i < 2; i++) {
        memset(&ends[i], 0, sizeof ends[i]);
        ends[i].fd = fds[i];
        evutil_make_socket_nonblocking(fds[i]);
        struct bufferevent *bottom = bufferevent_socket_new(g_base, fds[i], BEV_OPT_CLOSE_ON_FREE);
        assert_non_null(bottom);
        assert_int_equal(sc_stream_new(bottom, NULL, 0, &ends[i].s), 0);
        assert_int_equal(sc_stream_negotiate(ends[i].s, i ? SC_ROLE_SERVER : SC_ROLE_CLIENT,
                                             layers[i], 2, 5000, on_neg, &ends[i]),
                         0);
    }
    assert_true(pump(both_done, ends, 5000));
    assert_int_equal(ends[0].err, 0);
    assert_int_equal(ends[1].err, 0);
    struct sc_stream_info info;
    sc_stream_get_info(ends[0].s, &info);
    assert_string_equal(info.transport, "tcp+tls+websocket");
    assert_true(info.has_binding);
}

static void fence_start(void **state)
{
    (void)state;
    g_base = event_base_new();
    assert_non_null(g_base);
    fence_on = true;
}

static void fence_end(void)
{
    sc_link_finish_lingering(g_base);
    event_base_free(g_base);
    fence_on = false;
}

enum how { CLIENT_CLOSES, SERVER_CLOSES, CLIENT_FREES, SERVER_FREES };

/* One side writes its last words and ends its stream while its callbacks
 * are still scheduled; the other reads to the end, then closes too. */
static void stream_ends(void **state, enum how how)
{
    fence_start(state);
    struct end ends[2];
    wss_pair(ends);
    bool client = how == CLIENT_CLOSES || how == CLIENT_FREES;
    bool polite = how == CLIENT_CLOSES || how == SERVER_CLOSES;
    struct end *closing = &ends[client ? 0 : 1], *other = &ends[client ? 1 : 0];
    for (int i = 0; i < 2; i++) {
        ends[i].got = evbuffer_new();
        struct bufferevent *top = sc_stream_bev(ends[i].s);
        bufferevent_setcb(top, on_read, on_written, on_event, &ends[i]);
        bufferevent_enable(top, EV_READ | EV_WRITE);
    }
    g_log[0] = '\0';
    sc_log_set_handler(capture_log, NULL);
    sc_log_set_level(SC_LOG_DEBUG);
    bufferevent_write(sc_stream_bev(closing->s), "last words", 10);
    sc_stream_set_end(closing->s, SC_STREAM_END_GOING_AWAY);
    if (polite)
        sc_stream_close(closing->s, 2000);
    else
        sc_stream_free(closing->s);
    assert_true(pump(is_eof, other, 5000));
    if (polite) {
        /* top-down: the bytes, the close frame through TLS (else no
         * code), then TLS's close_notify */
        assert_int_equal(evbuffer_get_length(other->got), 10);
        assert_memory_equal(evbuffer_pullup(other->got, -1), "last words", 10);
        assert_non_null(strstr(g_log, "websocket.closed received=1001"));
        assert_null(sc_stream_fault(other->s, NULL));
        assert_true(pump(close_notify_received, other, 5000));
    } else {
        assert_null(strstr(g_log, "websocket.closed")); /* abortive: nothing said */
    }
    sc_log_set_handler(NULL, NULL);
    sc_log_set_level(SC_LOG_WARN);
    sc_stream_close(other->s, 2000);
    /* both sockets end (FIN both ways) while the loop runs what the
     * closes left scheduled */
    assert_true(pump(is_closed, &closing->fd, 5000));
    assert_true(pump(is_closed, &other->fd, 5000));
    evbuffer_free(ends[0].got);
    evbuffer_free(ends[1].got);
    fence_end();
}

static void test_client_closes(void **state) { stream_ends(state, CLIENT_CLOSES); }
static void test_server_closes(void **state) { stream_ends(state, SERVER_CLOSES); }
static void test_client_frees(void **state) { stream_ends(state, CLIENT_FREES); }
static void test_server_frees(void **state) { stream_ends(state, SERVER_FREES); }

/* ---- a link over wss, closed by either side ------------------------------------- */

struct linkside {
    bool up, closed;
    enum sc_reason reason;
};

static void l_up(struct sc_link *link, void *arg)
{
    (void)link;
    ((struct linkside *)arg)->up = true;
}

static void l_closed(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg)
{
    (void)link;
    (void)by_peer;
    struct linkside *l = arg;
    l->closed = true;
    l->reason = reason;
}

static bool both_up(const void *arg)
{
    const struct linkside *l = arg;
    return l[0].up && l[1].up;
}

static bool both_closed(const void *arg)
{
    const struct linkside *l = arg;
    return l[0].closed && l[1].closed;
}

static bool both_fds_closed(const void *arg)
{
    const struct end *e = arg;
    return fd_closed(e[0].fd) && fd_closed(e[1].fd);
}

static void link_closes(void **state, bool initiator_closes)
{
    fence_start(state);
    struct end ends[2];
    wss_pair(ends);
    struct sc_identity *id[2];
    struct sc_link_key *lk[2];
    struct linkside side[2] = {{0}, {0}};
    struct sc_link *link[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sc_identity_generate(&id[i]), 0);
        assert_int_equal(sc_link_key_generate(id[i], sc_unix_s() + 3600, &lk[i]), 0);
        struct sc_link_config cfg;
        sc_link_config_defaults(&cfg);
        cfg.identity = id[i];
        cfg.link_key = lk[i];
        cfg.initiator = i == 0; /* the tls and websocket client */
        cfg.cb.on_authenticated = l_up;
        cfg.cb.on_closed = l_closed;
        cfg.cb_arg = &side[i];
        assert_int_equal(sc_link_start(g_base, ends[i].s, &cfg, NULL, &link[i]), 0);
    }
    assert_true(pump(both_up, side, 5000));
    sc_link_close(link[initiator_closes ? 0 : 1], SC_REASON_LOCAL_CLOSE);
    assert_true(pump(both_closed, side, 5000));
    assert_int_equal(side[0].reason, SC_REASON_LOCAL_CLOSE);
    assert_int_equal(side[1].reason, SC_REASON_LOCAL_CLOSE);
    assert_true(pump(both_fds_closed, ends, 5000));
    for (int i = 0; i < 2; i++) {
        sc_link_key_free(lk[i]);
        sc_identity_free(id[i]);
    }
    fence_end();
}

static void test_link_initiator_closes(void **state) { link_closes(state, true); }
static void test_link_responder_closes(void **state) { link_closes(state, false); }

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* a socket whose peer is gone, as in the daemon */
    /* before OpenSSL allocates anything */
    if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)) {
        fprintf(stderr, "OpenSSL allocated before main: its memory cannot be fenced\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_closes),
        cmocka_unit_test(test_server_closes),
        cmocka_unit_test(test_client_frees),
        cmocka_unit_test(test_server_frees),
        cmocka_unit_test(test_link_initiator_closes),
        cmocka_unit_test(test_link_responder_closes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
