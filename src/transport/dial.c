/* transport/dial.c — an outgoing connection as a chain of layers: the tcp
 * connect (host names through evdns), then each configured layer in turn,
 * all under one deadline. Reports once, never from inside sc_dial_start();
 * never touches what a layer above does with its bufferevent. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "transport/transport.h"

/* Dial states: CONNECTING -> LAYER (i = 0..n-1) -> DONE; any -> DONE. */
enum dial_state { DIAL_CONNECTING, DIAL_LAYER, DIAL_DONE };

struct sc_dial {
    struct event_base *base;
    struct sc_dial_spec spec;
    char host[256];
    enum dial_state state;
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

static void on_tcp_event(struct bufferevent *bev, short what, void *arg)
{
    struct sc_dial *d = arg;
    if (d->state != DIAL_CONNECTING)
        return;
    if (what & BEV_EVENT_CONNECTED) {
        sc_tcp_tune(bufferevent_getfd(bev));
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        start_layer(d);
        return;
    }
    int dns_err = bufferevent_socket_get_dns_error(bev);
    if (dns_err) {
        char why[320];
        snprintf(why, sizeof why, "cannot resolve %s: %s", d->host, evutil_gai_strerror(dns_err));
        finish(d, SC_ERESOLVE, why);
        return;
    }
    int e = EVUTIL_SOCKET_ERROR();
    finish(d, SC_ECONNECT, e ? evutil_socket_error_to_string(e) : "connection failed");
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_dial *d = arg;
    finish(d, SC_ETIMEDOUT, d->state == DIAL_CONNECTING ? "connect timed out" : "layer timed out");
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
    d->state = DIAL_CONNECTING;
    d->timer = evtimer_new(base, on_timeout, d);
    d->done_ev = event_new(base, -1, 0, on_done, d);
    d->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!d->timer || !d->done_ev || !d->bev) {
        dial_destroy(d);
        return SC_ENOMEM;
    }
    struct timeval tv = {spec->timeout_ms / 1000, (spec->timeout_ms % 1000) * 1000};
    evtimer_add(d->timer, &tv);
    bufferevent_setcb(d->bev, NULL, NULL, on_tcp_event, d);
    /* Errors found inside connect_hostname are reported through on_tcp_event
     * (possibly right now); finish() defers the user callback either way. */
    if (bufferevent_socket_connect_hostname(d->bev, spec->dns, AF_UNSPEC, d->host, spec->port) < 0 &&
        d->state == DIAL_CONNECTING)
        finish(d, SC_ECONNECT, "connect failed");
    *out = d;
    return 0;
}

void sc_dial_cancel(struct sc_dial *dial)
{
    if (dial)
        dial_destroy(dial);
}
