/* fuzz/fuzz_tls_server.c — libFuzzer target for the tls layer's server side
 * (transport/tls.c: the first-record check, then OpenSSL's handshake and
 * our failure classification) and for SPKI pin strings (tls_ctx.c).
 *
 * Input: FLAG(1) BYTES...
 *   FLAG bit 0 set: BYTES (up to 200) as a pin string through
 *     sc_tls_pin_parse: accepted only in its one canonical form.
 *   else: BYTES are everything a client sends (at once, then its FIN) to a
 *     tls layer negotiating as the server over a socketpair.
 * Checked: the negotiation always ends (within a bounded number of loop
 * turns) and never succeeds; its error is one the layer documents (ETLS,
 * ETLSVERSION, ETLSCERT, ECONNRESET). A broken property is
 * __builtin_trap(). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "transport/tls.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FLAG_PIN 0x01u
#define MAX_TURNS 200

static SSL_CTX *server_ctx;

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char dir[] = "/tmp/fuzz_tls-XXXXXX", cert[64], key[64], err[256];
    check(mkdtemp(dir) != NULL);
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    check(sc_tls_self_signed(cert, key, "fuzz.test", err, sizeof err) == 0);
    check(sc_tls_server_ctx_new(cert, key, TLS1_2_VERSION, &server_ctx, err, sizeof err) == 0);
    unlink(cert);
    unlink(key);
    rmdir(dir);
    return 0;
}

struct outcome {
    bool done;
    int err;
};

static void on_neg(struct sc_stream *s, int err, const char *why, void *arg)
{
    (void)s;
    (void)why;
    struct outcome *o = arg;
    o->done = true;
    o->err = err;
}

static void pin(const uint8_t *data, size_t size)
{
    char s[201];
    size_t n = size < 200 ? size : 200;
    memcpy(s, data, n);
    s[n] = '\0';
    uint8_t out[32];
    if (sc_tls_pin_parse(s, out) == 0)
        check(strncmp(s, "sha256//", 8) == 0 && strlen(s) == 52 && s[51] == '=');
}

static void server(const uint8_t *data, size_t size)
{
    struct event_base *base = event_base_new();
    int fds[2];
    check(base && socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    evutil_make_socket_nonblocking(fds[1]);
    struct bufferevent *bev = bufferevent_socket_new(base, fds[1], BEV_OPT_CLOSE_ON_FREE);
    struct sc_stream *s;
    check(bev && sc_stream_new(bev, NULL, 0, &s) == 0);
    struct sc_tls_params p = {.ctx = server_ctx};
    struct sc_layer_spec spec = {.ops = &sc_layer_tls, .params = &p};
    struct outcome o = {false, 0};
    check(sc_stream_negotiate(s, SC_ROLE_SERVER, &spec, 1, 10000, on_neg, &o) == 0);
    /* the socketpair holds far more than a fuzz input */
    if (size)
        check(write(fds[0], data, size) == (ssize_t)size);
    shutdown(fds[0], SHUT_WR);
    for (int i = 0; i < MAX_TURNS && !o.done; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    check(o.done);
    check(o.err == SC_ETLS || o.err == SC_ETLSVERSION || o.err == SC_ETLSCERT ||
          o.err == SC_ECONNRESET);
    sc_stream_free(s);
    close(fds[0]);
    sc_closers_finish_all(base);
    event_base_free(base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & FLAG_PIN)
        pin(data + 1, size - 1);
    else if (size - 1 <= 65536)
        server(data + 1, size - 1);
    return 0;
}
