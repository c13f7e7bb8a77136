/* transport/dial.c — an outgoing connection as a chain of layers: the tcp
 * connect (host names through evdns, every resolved address in turn), then
 * each configured layer, all under one deadline. Reports once, never from
 * inside sc_dial_start(); never touches what a layer above does with its
 * bufferevent, and never blocks on name resolution. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "transport/transport.h"

/* Dial states: RESOLVING -> CONNECTING (address by address) -> LAYER
 * (i = 0..n-1) -> DONE; any -> DONE. */
enum dial_state { DIAL_RESOLVING, DIAL_CONNECTING, DIAL_LAYER, DIAL_DONE };

struct sc_dial {
    struct event_base *base;
    struct sc_dial_spec spec;
    char host[256];
    enum dial_state state;
    struct evdns_getaddrinfo_request *resolve;
    struct evutil_addrinfo *addrs, *next_addr;
    int last_errno;
    size_t layer;            /* index of the layer negotiating */
    void *layer_state;
    struct bufferevent *bev; /* tcp bev while connecting; result when done */
    struct event *timer;
    struct event *done_ev;
    int err;
    char why[320];
    sc_dial_cb cb;
    void *arg;
};

struct event_base *sc_dial_base(const struct sc_dial *dial) { return dial->base; }

static void dial_destroy(struct sc_dial *d)
{
    if (d->resolve)
        evdns_getaddrinfo_cancel(d->resolve); /* its callback runs now, with CANCEL */
    if (d->addrs)
        evutil_freeaddrinfo(d->addrs);
    if (d->state == DIAL_LAYER && d->layer_state && d->spec.layers[d->layer].ops->cancel)
        d->spec.layers[d->layer].ops->cancel(d->layer_state);
    if (d->bev)
        bufferevent_free(d->bev);
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
    struct bufferevent *bev = d->err ? NULL : d->bev;
    if (!d->err)
        d->bev = NULL;
    d->cb(bev, d->err, d->err ? d->why : "", d->arg);
    dial_destroy(d);
}

/* Records the outcome and reports it from the event loop. */
static void finish(struct sc_dial *d, int err, const char *why)
{
    if (d->state == DIAL_DONE)
        return;
    if (err && d->state == DIAL_LAYER && d->layer_state && d->spec.layers[d->layer].ops->cancel)
        d->spec.layers[d->layer].ops->cancel(d->layer_state);
    d->layer_state = NULL;
    d->state = DIAL_DONE;
    d->err = err;
    snprintf(d->why, sizeof d->why, "%s", why ? why : "");
    if (err && d->bev) {
        bufferevent_free(d->bev);
        d->bev = NULL;
    }
    if (d->addrs) {
        evutil_freeaddrinfo(d->addrs);
        d->addrs = d->next_addr = NULL;
    }
    event_del(d->timer);
    event_active(d->done_ev, EV_TIMEOUT, 0);
}

static void start_layer(struct sc_dial *d)
{
    if (d->layer >= d->spec.nlayers) {
        finish(d, 0, NULL);
        return;
    }
    struct bufferevent *below = d->bev;
    d->bev = NULL;
    d->state = DIAL_LAYER;
    const struct sc_layer_spec *l = &d->spec.layers[d->layer];
    void *state = NULL;
    size_t index = d->layer;
    int err = l->ops->client_start(d, l->params, below, &state);
    if (!err && d->state == DIAL_LAYER && d->layer == index)
        d->layer_state = state; /* still negotiating (it may have finished inside) */
    if (err) {
        d->layer_state = NULL;
        char why[96];
        snprintf(why, sizeof why, "%s: %s", l->ops->name, sc_strerror(err));
        finish(d, err, why);
    }
}

void sc_dial_layer_ready(struct sc_dial *d, struct bufferevent *above)
{
    if (d->state != DIAL_LAYER)
        return;
    d->layer_state = NULL;
    d->bev = above;
    d->layer++;
    start_layer(d);
}

void sc_dial_layer_failed(struct sc_dial *d, int err, const char *why)
{
    if (d->state != DIAL_LAYER)
        return;
    d->layer_state = NULL; /* the layer cleaned up before reporting */
    char buf[96];
    snprintf(buf, sizeof buf, "%s: %s", d->spec.layers[d->layer].ops->name, why);
    finish(d, err, buf);
}

static void on_tcp_event(struct bufferevent *bev, short what, void *arg);

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
        if (bufferevent_socket_connect(d->bev, ai->ai_addr, (int)ai->ai_addrlen) == 0)
            return; /* on_tcp_event tells how it went */
        d->last_errno = EVUTIL_SOCKET_ERROR();
        bufferevent_free(d->bev);
        d->bev = NULL;
    }
    finish(d, SC_ECONNECT,
           d->last_errno ? evutil_socket_error_to_string(d->last_errno) : "connection failed");
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
        start_layer(d);
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
    d->state = DIAL_CONNECTING;
    try_next_address(d);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_dial *d = arg;
    finish(d, SC_ETIMEDOUT, d->state == DIAL_RESOLVING    ? "name resolution timed out"
                            : d->state == DIAL_CONNECTING ? "connect timed out"
                                                          : "layer timed out");
}

int sc_dial_start(struct event_base *base, const struct sc_dial_spec *spec, sc_dial_cb cb,
                  void *arg, struct sc_dial **out)
{
    *out = NULL;
    if (!spec->host || !spec->port || spec->nlayers > SC_DIAL_LAYERS_MAX ||
        strlen(spec->host) >= sizeof ((struct sc_dial *)0)->host)
        return SC_EINVAL;
    struct sc_dial *d = calloc(1, sizeof *d);
    if (!d)
        return SC_ENOMEM;
    d->base = base;
    d->spec = *spec;
    snprintf(d->host, sizeof d->host, "%s", spec->host);
    d->spec.host = d->host;
    d->cb = cb;
    d->arg = arg;
    d->state = DIAL_RESOLVING;
    d->timer = evtimer_new(base, on_timeout, d);
    d->done_ev = event_new(base, -1, 0, on_done, d);
    if (!d->timer || !d->done_ev) {
        dial_destroy(d);
        return SC_ENOMEM;
    }
    struct timeval tv = {spec->timeout_ms / 1000, (spec->timeout_ms % 1000) * 1000};
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
