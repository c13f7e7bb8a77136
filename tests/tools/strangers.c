/* tests/tools/strangers.c — many strangers at once, for the link-cap tests:
 * N links to one listener, each with a fresh identity and link key, each
 * from its own source address, through the library's real dial and link.
 * Test tool only: never installed, never part of the library. */

/* usage: strangers HOST PORT RELAY_ID N SOURCE
 *   RELAY_ID  the listener's ID (mac1 names it), or "-" for none
 *   SOURCE    "A.B.C": link k (1..N, N <= 254) comes from A.B.C.k;
 *             "A.B.C.D": every link comes from that one address
 * Prints one line per event: "linked k", "refused k reason=R" (ended
 * before authentication: a REJECT, a close at accept, a failed dial),
 * "closed k reason=R" (a link that was up ended), and "summary linked=A
 * refused=B" once every handshake has ended. Heartbeats are answered, so
 * links stay up until stdin ends or SIGTERM/SIGINT. SC_TEST_LAYER=xor or
 * tls dials through that layer, as link-test does under the tests. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "link/link_stream.h"
#include "secirc/identity.h"
#include "secirc/link.h"
#include "secirc/log.h"
#include "transport/tls.h"
#include "transport/transport.h"
#include "transport/websocket.h"
#include "util/time.h"

#define STRANGERS_MAX 254
/* How long an ending waits for the links to finish closing. */
#define QUIT_WAIT_MS 3000u

struct stranger {
    struct strangers *all;
    int k;
    char source[64];
    struct sc_identity *identity;
    struct sc_dial *dial;
    struct sc_link *link; /* from the dial's end until on_closed */
    bool linked, ended;
};

struct strangers {
    struct event_base *base;
    const char *host;
    uint16_t port;
    bool has_expected;
    uint8_t expected[SC_RELAY_ID_BYTES];
    int n, over, linked, refused, live;
    bool summarised, quitting;
    struct stranger s[STRANGERS_MAX];
    struct event *stdin_ev, *sigterm_ev, *sigint_ev, *quit_ev;
    struct sc_tls_params tls; /* SC_TEST_LAYER=tls */
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void maybe_summary(struct strangers *a)
{
    if (a->summarised || a->over < a->n)
        return;
    a->summarised = true;
    say("summary linked=%d refused=%d", a->linked, a->refused);
}

static void maybe_exit(struct strangers *a)
{
    if (a->quitting && a->live == 0)
        event_base_loopexit(a->base, NULL);
}

/* The handshake of stranger s is over, one way or the other. */
static void handshake_over(struct stranger *s, bool linked, enum sc_reason reason)
{
    struct strangers *a = s->all;
    if (linked) {
        a->linked++;
        say("linked %d", s->k);
    } else {
        a->refused++;
        say("refused %d reason=%s", s->k, sc_reason_name(reason));
    }
    a->over++;
    maybe_summary(a);
}

static void on_authenticated(struct sc_link *link, void *arg)
{
    (void)link;
    struct stranger *s = arg;
    s->linked = true;
    handshake_over(s, true, SC_REASON_NONE);
}

static void on_closed(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg)
{
    (void)link;
    (void)by_peer;
    struct stranger *s = arg;
    s->link = NULL;
    s->ended = true;
    s->all->live--;
    if (s->linked)
        say("closed %d reason=%s", s->k, sc_reason_name(reason));
    else
        handshake_over(s, false, reason);
    maybe_exit(s->all);
}

static const struct sc_link_callbacks callbacks = {
    .on_authenticated = on_authenticated,
    .on_closed = on_closed,
};

static void on_dialed(struct sc_stream *stream, int err, const char *why, void *arg)
{
    (void)why;
    struct stranger *s = arg;
    struct strangers *a = s->all;
    s->dial = NULL;
    struct sc_link_key *key = NULL;
    if (!err)
        err = sc_link_key_generate(s->identity, sc_unix_s() + 3600, &key);
    if (err) {
        sc_stream_free(stream);
        a->live--;
        s->ended = true;
        handshake_over(s, false, SC_REASON_CONNECT_FAILED);
        maybe_exit(a);
        return;
    }
    struct sc_link_config lc;
    sc_link_config_defaults(&lc); /* heartbeats on: PINGs are answered */
    lc.identity = s->identity;
    lc.link_key = key;
    lc.initiator = true;
    lc.has_expected_id = a->has_expected;
    memcpy(lc.expected_id, a->expected, SC_RELAY_ID_BYTES);
    lc.cb = callbacks;
    lc.cb_arg = s;
    err = sc_link_start(a->base, stream, &lc, NULL, &s->link); /* it took the stream */
    sc_link_key_free(key);                                    /* read only at the start */
    if (err) {
        s->link = NULL;
        a->live--;
        s->ended = true;
        handshake_over(s, false, SC_REASON_IO_ERROR);
        maybe_exit(a);
    }
}

static void on_quit_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopexit(((struct strangers *)arg)->base, NULL);
}

/* Ends everything: dials stop, links close (telling the peer "shutdown"),
 * and the loop ends once they are closed or after QUIT_WAIT_MS. */
static void quit(struct strangers *a)
{
    if (a->quitting)
        return;
    a->quitting = true;
    if (a->stdin_ev)
        event_del(a->stdin_ev);
    for (int i = 0; i < a->n; i++) {
        struct stranger *s = &a->s[i];
        if (s->dial) {
            sc_dial_cancel(s->dial);
            s->dial = NULL;
            s->ended = true;
            a->live--;
        }
        if (s->link)
            sc_link_close(s->link, SC_REASON_SHUTDOWN);
    }
    a->quit_ev = evtimer_new(a->base, on_quit_timeout, a);
    struct timeval tv = sc_ms_to_tv(QUIT_WAIT_MS);
    if (a->quit_ev)
        evtimer_add(a->quit_ev, &tv);
    maybe_exit(a);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char buf[512];
    if (read(fd, buf, sizeof buf) <= 0)
        quit(arg); /* end of input (or an error): let go of the links */
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    quit(arg);
}

static int usage(void)
{
    fprintf(stderr, "usage: strangers HOST PORT RELAY_ID|- N SOURCE_PREFIX|SOURCE_ADDRESS\n");
    return 2;
}

static int start(struct strangers *a, const char *source)
{
    int dots = 0;
    for (const char *p = source; *p; p++)
        dots += *p == '.';
    for (int i = 0; i < a->n; i++) {
        struct stranger *s = &a->s[i];
        s->all = a;
        s->k = i + 1;
        if (dots == 3)
            snprintf(s->source, sizeof s->source, "%s", source);
        else
            snprintf(s->source, sizeof s->source, "%s.%d", source, s->k);
        if (sc_identity_generate(&s->identity) != 0) {
            fprintf(stderr, "strangers: identity generation failed\n");
            return 1;
        }
        struct sc_dial_spec spec = {.host = a->host,
                                    .port = a->port,
                                    .source_address = s->source,
                                    .timeout_ms = SC_CONNECTION_TIMEOUT_MS_DEFAULT};
        /* The test-only xor layer, WebSocket or TLS, as the tests'
         * SC_TEST_LAYER asks (the params are read during the dial: static). */
        static const struct sc_xor_params xor_params = {.key = 0x5c};
        static struct sc_ws_params ws_params = {.subprotocol = true};
        const char *layer = getenv("SC_TEST_LAYER");
        if (layer && strcmp(layer, "xor") == 0) {
            spec.nlayers = 1;
            spec.layers[0] = (struct sc_layer_spec){.ops = &sc_layer_xor, .params = &xor_params};
        } else if (layer && strcmp(layer, "ws") == 0) {
            ws_params.host = a->host;
            ws_params.port = a->port;
            spec.nlayers = 1;
            spec.layers[0] = (struct sc_layer_spec){.ops = &sc_layer_websocket, .params = &ws_params};
        } else if (layer && strcmp(layer, "tls") == 0) {
            if (!a->tls.ctx) {
                char err[256];
                if (sc_tls_client_ctx_new(0, SC_TLS_VERIFY_NONE, NULL, &a->tls.ctx, err,
                                          sizeof err) != 0) {
                    fprintf(stderr, "strangers: %s\n", err);
                    return 1;
                }
                a->tls.host = a->host;
                a->tls.channel_binding = true;
            }
            spec.nlayers = 1;
            spec.layers[0] = (struct sc_layer_spec){.ops = &sc_layer_tls, .params = &a->tls};
        }
        if (sc_dial_start(a->base, &spec, on_dialed, s, &s->dial) != 0) {
            s->dial = NULL;
            s->ended = true;
            handshake_over(s, false, SC_REASON_CONNECT_FAILED);
            continue;
        }
        a->live++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 6)
        return usage();
    static struct strangers a;
    a.host = argv[1];
    long port = strtol(argv[2], NULL, 10);
    a.n = atoi(argv[4]);
    if (port <= 0 || port > 65535 || a.n <= 0 || a.n > STRANGERS_MAX)
        return usage();
    a.port = (uint16_t)port;
    if (strcmp(argv[3], "-") != 0) {
        if (sc_relay_id_from_hex(argv[3], a.expected) != 0)
            return usage();
        a.has_expected = true;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { /* N sockets and a few more */
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    sc_log_set_level(SC_LOG_WARN); /* the lines above are the output */
    a.base = event_base_new();
    if (!a.base)
        return 1;
    a.stdin_ev = event_new(a.base, 0, EV_READ | EV_PERSIST, on_stdin, &a);
    a.sigterm_ev = evsignal_new(a.base, SIGTERM, on_signal, &a);
    a.sigint_ev = evsignal_new(a.base, SIGINT, on_signal, &a);
    int rc = 1;
    if (a.stdin_ev && a.sigterm_ev && a.sigint_ev) {
        event_add(a.stdin_ev, NULL);
        event_add(a.sigterm_ev, NULL);
        event_add(a.sigint_ev, NULL);
        rc = start(&a, argv[5]);
        maybe_summary(&a);
        if (rc == 0)
            event_base_dispatch(a.base);
    }
    for (int i = 0; i < a.n; i++) {
        sc_dial_cancel(a.s[i].dial);
        sc_link_free(a.s[i].link); /* on_closed clears the pointer */
    }
    struct event *evs[] = {a.stdin_ev, a.sigterm_ev, a.sigint_ev, a.quit_ev};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i])
            event_free(evs[i]);
    sc_link_finish_lingering(a.base);
    event_base_free(a.base);
    SSL_CTX_free(a.tls.ctx);
    for (int i = 0; i < a.n; i++)
        sc_identity_free(a.s[i].identity);
    return rc;
}
