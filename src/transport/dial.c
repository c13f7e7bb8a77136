/* transport/dial.c — an outgoing connection as a stream: the tcp connect
 * (host names through evdns, every resolved address in turn), then each
 * configured layer as a client, all under one deadline. Reports once, never
 * from inside sc_dial_start(); never touches what a layer does with its
 * bufferevent, and never blocks on name resolution. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "secirc/limits.h"
#include "transport/transport.h"
#include "util/check.h"
#include "util/log.h"
#include "util/time.h"

/* Dial states: RESOLVING -> CONNECTING (address by address) -> LAYERS ->
 * DONE; any -> DONE. */
enum dial_state { DIAL_RESOLVING, DIAL_CONNECTING, DIAL_LAYERS, DIAL_DONE };

static const char *const dial_state_names[] = {
    [DIAL_RESOLVING] = "resolving",
    [DIAL_CONNECTING] = "connecting",
    [DIAL_LAYERS] = "layers",
    [DIAL_DONE] = "done",
};

struct sc_dial {
    struct event_base *base;
    struct sc_dial_spec spec;
    char host[256];
    char source[64];
    enum dial_state state;
    struct evdns_getaddrinfo_request *resolve;
    struct evutil_addrinfo *addrs, *next_addr;
    int last_errno;
    struct bufferevent *bev; /* tcp bev while connecting */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    struct sc_stream *stream; /* once connected; the result when done */
    struct event *timer;
    struct event *done_ev;
    uint64_t deadline_ms;
    int err;
    const struct sc_layer_ops *fault_ops; /* the layer that failed it */
    int fault_err;
    char why[320];
    sc_dial_cb cb;
    void *arg;
};

/* Every change of state goes through here (curl's socksstate()). */
static void set_state(struct sc_dial *d, enum dial_state next)
{
    enum dial_state cur = d->state;
    bool ok = next == DIAL_DONE ? cur != DIAL_DONE : (unsigned)next == (unsigned)cur + 1;
    SC_CHECK(ok, "illegal dial transition %s -> %s", dial_state_names[cur], dial_state_names[next]);
    if (sc_log_enabled(SC_LOG_DEBUG))
        sc_log(SC_LOG_DEBUG, "dial.state", "host=%s port=%u from=%s to=%s", d->host, d->spec.port,
               dial_state_names[cur], dial_state_names[next]);
    d->state = next;
}

static void dial_destroy(struct sc_dial *d)
{
    if (d->resolve)
        evdns_getaddrinfo_cancel(d->resolve); /* its callback runs now, with CANCEL */
    if (d->addrs)
        evutil_freeaddrinfo(d->addrs);
    if (d->bev)
        bufferevent_free(d->bev);
    sc_stream_free(d->stream);
    if (d->timer)
        event_free(d->timer);
    if (d->done_ev)
        event_free(d->done_ev);
    free(d);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_dial *d = arg;
    struct sc_stream *stream = d->err ? NULL : d->stream;
    if (!d->err)
        d->stream = NULL;
    d->cb(stream, d->err, d->err ? d->why : "", d->arg);
    dial_destroy(d);
}

/* Records the outcome and reports it from the event loop. */
static void finish(struct sc_dial *d, int err, const char *why)
{
    if (d->state == DIAL_DONE)
        return;
    set_state(d, DIAL_DONE);
    d->err = err;
    snprintf(d->why, sizeof d->why, "%s", why ? why : "");
    if (err && d->bev) {
        bufferevent_free(d->bev);
        d->bev = NULL;
    }
    if (err && d->stream) {
        /* A layer's last words (a TLS alert: "bad certificate", "protocol
         * version") still go out, so the server can tell why. */
        sc_stream_close(d->stream, SC_STREAM_LINGER_PREAUTH_MS);
        d->stream = NULL;
    }
    if (d->addrs) {
        evutil_freeaddrinfo(d->addrs);
        d->addrs = d->next_addr = NULL;
    }
    event_del(d->timer);
    event_active(d->done_ev, EV_TIMEOUT, 0);
}

static void on_layers(struct sc_stream *stream, int err, const char *why, void *arg)
{
    struct sc_dial *d = arg;
    d->fault_ops = sc_stream_fault(stream, &d->fault_err);
    finish(d, err, why);
}

const struct sc_layer_ops *sc_dial_fault(const struct sc_dial *dial, int *err)
{
    if (err)
        *err = dial->fault_ops ? dial->fault_err : 0;
    return dial->fault_ops;
}

/* Connected: the socket becomes a stream and the layers start on it, with
 * what is left of the dial's deadline. */
static void start_layers(struct sc_dial *d)
{
    struct bufferevent *bev = d->bev;
    d->bev = NULL;
    int err = sc_stream_new(bev, (const struct sockaddr *)&d->peer, d->peer_len, &d->stream);
    if (err) {
        finish(d, err, "out of memory");
        return;
    }
    set_state(d, DIAL_LAYERS);
    if (d->spec.nlayers == 0) {
        finish(d, 0, NULL);
        return;
    }
    uint64_t now = sc_mono_ms();
    uint32_t left = d->deadline_ms > now ? (uint32_t)(d->deadline_ms - now) : 1;
    err = sc_stream_negotiate(d->stream, SC_ROLE_CLIENT, d->spec.layers, d->spec.nlayers, left,
                              on_layers, d);
    if (err)
        finish(d, err, "cannot start the layers");
}

static void on_tcp_event(struct bufferevent *bev, short what, void *arg);

/* With a source address: a socket of the target's family bound to it
 * before the connect. */
static int bind_source(struct sc_dial *d, const struct evutil_addrinfo *ai)
{
    if (!d->source[0])
        return 0;
    struct evutil_addrinfo hints = {.ai_family = ai->ai_family, .ai_socktype = SOCK_STREAM,
                                    .ai_flags = EVUTIL_AI_NUMERICHOST | EVUTIL_AI_PASSIVE};
    struct evutil_addrinfo *src = NULL;
    if (evutil_getaddrinfo(d->source, NULL, &hints, &src) != 0 || !src) {
        d->last_errno = EADDRNOTAVAIL;
        return -1;
    }
    evutil_socket_t fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -1 : bind(fd, src->ai_addr, (socklen_t)src->ai_addrlen);
    if (rc != 0)
        d->last_errno = errno;
    evutil_freeaddrinfo(src);
    if (rc != 0) {
        if (fd >= 0)
            evutil_closesocket(fd);
        return -1;
    }
    bufferevent_setfd(d->bev, fd);
    return 0;
}

/* Connects to the next resolved address; fails the dial when none is left. */
static void try_next_address(struct sc_dial *d)
{
    while (d->next_addr) {
        struct evutil_addrinfo *ai = d->next_addr;
        d->next_addr = ai->ai_next;
        d->bev = bufferevent_socket_new(d->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!d->bev) {
            finish(d, SC_ENOMEM, "out of memory");
            return;
        }
        bufferevent_setcb(d->bev, NULL, NULL, on_tcp_event, d);
        sc_tcp_bev_setup(d->bev);
        if (ai->ai_addrlen <= sizeof d->peer) {
            memcpy(&d->peer, ai->ai_addr, ai->ai_addrlen);
            d->peer_len = (socklen_t)ai->ai_addrlen;
        }
        if (bind_source(d, ai) == 0 &&
            bufferevent_socket_connect(d->bev, ai->ai_addr, (int)ai->ai_addrlen) == 0)
            return; /* on_tcp_event tells how it went */
        if (!d->last_errno)
            d->last_errno = EVUTIL_SOCKET_ERROR();
        bufferevent_free(d->bev);
        d->bev = NULL;
    }
    int err = d->last_errno ? sc_translate_sys_error(d->last_errno) : SC_ECONNECT;
    finish(d, err, d->last_errno ? evutil_socket_error_to_string(d->last_errno) : "connection failed");
}

static void on_tcp_event(struct bufferevent *bev, short what, void *arg)
{
    struct sc_dial *d = arg;
    if (d->state != DIAL_CONNECTING)
        return;
    if (what & BEV_EVENT_CONNECTED) {
        sc_tcp_tune(bufferevent_getfd(bev));
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        evutil_freeaddrinfo(d->addrs);
        d->addrs = d->next_addr = NULL;
        start_layers(d);
        return;
    }
    d->last_errno = EVUTIL_SOCKET_ERROR();
    bufferevent_free(d->bev);
    d->bev = NULL;
    try_next_address(d);
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct sc_dial *d = arg;
    if (result == EVUTIL_EAI_CANCEL)
        return; /* dial_destroy() is freeing d */
    d->resolve = NULL;
    if (d->state != DIAL_RESOLVING) {
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    if (result != 0 || !res) {
        char why[320];
        snprintf(why, sizeof why, "cannot resolve %s: %s", d->host,
                 result ? evutil_gai_strerror(result) : "no address");
        finish(d, SC_ERESOLVE, why);
        return;
    }
    d->addrs = d->next_addr = res;
    set_state(d, DIAL_CONNECTING);
    try_next_address(d);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_dial *d = arg;
    if (d->state == DIAL_LAYERS)
        return; /* the stream's negotiation has the same deadline */
    finish(d, SC_ETIMEDOUT, d->state == DIAL_RESOLVING ? "name resolution timed out"
                                                       : "connect timed out");
}

int sc_dial_start(struct event_base *base, const struct sc_dial_spec *spec, sc_dial_cb cb,
                  void *arg, struct sc_dial **out)
{
    *out = NULL;
    if (!spec->host || !spec->port || spec->nlayers > SC_STREAM_LAYERS_MAX ||
        strlen(spec->host) >= sizeof ((struct sc_dial *)0)->host ||
        (spec->source_address && strlen(spec->source_address) >= sizeof ((struct sc_dial *)0)->source))
        return SC_EINVAL;
    struct sc_dial *d = calloc(1, sizeof *d);
    if (!d)
        return SC_ENOMEM;
    d->base = base;
    d->spec = *spec;
    snprintf(d->host, sizeof d->host, "%s", spec->host);
    d->spec.host = d->host;
    snprintf(d->source, sizeof d->source, "%s", spec->source_address ? spec->source_address : "");
    d->spec.source_address = NULL;
    d->cb = cb;
    d->arg = arg;
    d->state = DIAL_RESOLVING;
    d->timer = evtimer_new(base, on_timeout, d);
    d->done_ev = event_new(base, -1, 0, on_done, d);
    if (!d->timer || !d->done_ev) {
        dial_destroy(d);
        return SC_ENOMEM;
    }
    d->deadline_ms = sc_mono_ms() + spec->timeout_ms;
    struct timeval tv = sc_ms_to_tv(spec->timeout_ms);
    evtimer_add(d->timer, &tv);
    *out = d;
    char port[8];
    snprintf(port, sizeof port, "%u", spec->port);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                    .ai_protocol = IPPROTO_TCP,
                                    .ai_flags = spec->dns ? 0 : EVUTIL_AI_NUMERICHOST};
    if (spec->dns) {
        /* May answer at once (literals, hosts file): on_resolved copes, and
         * finish() defers the user callback either way. */
        d->resolve = evdns_getaddrinfo(spec->dns, d->host, port, &hints, on_resolved, d);
    } else {
        struct evutil_addrinfo *res = NULL;
        int r = evutil_getaddrinfo(d->host, port, &hints, &res);
        on_resolved(r, res, d);
    }
    return 0;
}

void sc_dial_cancel(struct sc_dial *dial)
{
    if (dial)
        dial_destroy(dial);
}
