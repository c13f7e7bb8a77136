/* transport/stream.c — a connected bufferevent with layers stacked on it:
 * bottom-up negotiation under one deadline, top-down close, and what the
 * layers know (transport/transport.h). Owns every level's bufferevent; a
 * layer frees only what it created. Never reads or writes payload bytes. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "secirc/limits.h"
#include "transport/transport.h"
#include "util/time.h"

struct level {
    const struct sc_layer_ops *ops; /* NULL for the bottom */
    void *state;
    struct bufferevent *bev; /* this level's top */
};

/* Negotiation: IDLE -> RUNNING -> DONE (outcome reported from the loop). */
enum neg_state { NEG_IDLE, NEG_RUNNING, NEG_DONE };

/* What only a negotiation needs: allocated for it, freed after. */
struct negotiation {
    enum sc_role role;
    struct sc_layer_spec specs[SC_STREAM_LAYERS_MAX];
    size_t nspecs;
    struct level starting;   /* the layer negotiating, not yet counted in n */
    bool in_start, advance;  /* sc_layer_ready() came from inside start() */
    struct event *deadline;
    struct event *done_ev;
    int err;
    char why[160];
    sc_stream_cb cb;
    void *cb_arg;
};

struct sc_stream {
    struct event_base *base;
    struct level lv[SC_STREAM_LAYERS_MAX + 1];
    uint8_t n; /* ready levels, the bottom included */
    enum neg_state neg;
    socklen_t peer_len;
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer;
    struct negotiation *ng; /* while negotiating */
    const struct sc_layer_ops *fault_ops; /* the layer that failed or broke */
    int fault_err;
    enum sc_stream_end end;
};

int sc_stream_new(struct bufferevent *bev, const struct sockaddr *peer, socklen_t peer_len,
                  struct sc_stream **out)
{
    *out = NULL;
    struct sc_stream *s = calloc(1, sizeof *s);
    if (!s) {
        bufferevent_free(bev);
        return SC_ENOMEM;
    }
    s->base = bufferevent_get_base(bev);
    s->lv[0].bev = bev;
    s->n = 1;
    if (peer && peer_len <= sizeof s->peer) {
        memcpy(&s->peer, peer, peer_len);
        s->peer_len = peer_len;
    }
    *out = s;
    return 0;
}

struct bufferevent *sc_stream_bev(const struct sc_stream *s) { return s->lv[s->n - 1].bev; }
struct event_base *sc_stream_base(const struct sc_stream *s) { return s->base; }

void sc_stream_get_info(const struct sc_stream *s, struct sc_stream_info *out)
{
    memset(out, 0, sizeof *out);
    if (s->peer_len) {
        memcpy(&out->peer_addr, &s->peer, s->peer_len);
        out->peer_addr_len = s->peer_len;
        sc_sockaddr_format(&s->peer.sa, out->peer, sizeof out->peer);
    } else {
        snprintf(out->peer, sizeof out->peer, "-");
    }
    size_t pos = (size_t)snprintf(out->transport, sizeof out->transport, "%s",
                                  bufferevent_getfd(s->lv[0].bev) >= 0 ? "tcp" : "pipe");
    for (size_t i = 1; i < s->n; i++) {
        if (pos < sizeof out->transport)
            pos += (size_t)snprintf(out->transport + pos, sizeof out->transport - pos, "+%s",
                                    s->lv[i].ops->name);
        if (s->lv[i].ops->query)
            s->lv[i].ops->query(s->lv[i].state, out);
    }
}

/* ---- negotiation ----------------------------------------------------------- */

static void drop_starting(struct negotiation *ng)
{
    if (ng->starting.ops) {
        if (ng->starting.state)
            ng->starting.ops->destroy(ng->starting.state);
        memset(&ng->starting, 0, sizeof ng->starting);
    }
}

/* Ends a negotiation's life: its layer in progress, its events, itself. */
static void neg_free(struct sc_stream *s)
{
    struct negotiation *ng = s->ng;
    if (!ng)
        return;
    drop_starting(ng);
    if (ng->deadline)
        event_free(ng->deadline);
    if (ng->done_ev)
        event_free(ng->done_ev);
    free(ng);
    s->ng = NULL;
    s->neg = NEG_IDLE;
}

/* Records the outcome; the callback runs from the loop (on_done). */
static void neg_finish(struct sc_stream *s, int err, const char *why)
{
    struct negotiation *ng = s->ng;
    if (s->neg != NEG_RUNNING)
        return;
    s->neg = NEG_DONE;
    ng->err = err;
    snprintf(ng->why, sizeof ng->why, "%s", why ? why : "");
    event_del(ng->deadline);
    event_active(ng->done_ev, EV_TIMEOUT, 0);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_stream *s = arg;
    struct negotiation *ng = s->ng;
    int err = ng->err;
    char why[sizeof ng->why];
    memcpy(why, ng->why, sizeof why);
    sc_stream_cb cb = ng->cb;
    void *cb_arg = ng->cb_arg;
    neg_free(s); /* a failed layer is freed here, outside its own callbacks */
    cb(s, err, err ? why : "", cb_arg);
}

static void neg_next(struct sc_stream *s)
{
    struct negotiation *ng = s->ng;
    while (s->neg == NEG_RUNNING) {
        if (ng->nspecs == 0) {
            neg_finish(s, 0, NULL);
            return;
        }
        const struct sc_layer_spec *spec = &ng->specs[0];
        int (*start)(struct sc_stream *, const void *, struct bufferevent *, void **) =
            ng->role == SC_ROLE_CLIENT ? spec->ops->client_start : spec->ops->server_start;
        char why[96];
        if (!start || s->n > SC_STREAM_LAYERS_MAX) {
            snprintf(why, sizeof why, "%s: no %s side", spec->ops->name,
                     ng->role == SC_ROLE_CLIENT ? "client" : "server");
            neg_finish(s, SC_EINVAL, why);
            return;
        }
        ng->starting.ops = spec->ops;
        ng->starting.state = NULL;
        ng->in_start = true;
        ng->advance = false;
        int err = start(s, spec->params, s->lv[s->n - 1].bev, &ng->starting.state);
        ng->in_start = false;
        if (err) {
            memset(&ng->starting, 0, sizeof ng->starting); /* it cleaned up itself */
            snprintf(why, sizeof why, "%s: %s", spec->ops->name, sc_strerror(err));
            neg_finish(s, err, why);
            return;
        }
        if (!ng->advance)
            return; /* finishes later through sc_layer_ready/failed */
    }
}

void sc_layer_ready(struct sc_stream *s, struct bufferevent *above)
{
    struct negotiation *ng = s->ng;
    if (s->neg != NEG_RUNNING || !ng->starting.ops)
        return;
    /* Back-pressure through the layer: a filter stops taking bytes from
     * above while the level below holds this much (and refills as it
     * drains), so the link's own output bound holds on every layer. */
    struct bufferevent *below = s->lv[s->n - 1].bev;
    if (above != below)
        bufferevent_setwatermark(below, EV_WRITE, SC_LAYER_OUTPUT_HIGH_WATER_BYTES / 2,
                                 SC_LAYER_OUTPUT_HIGH_WATER_BYTES);
    s->lv[s->n] = ng->starting;
    s->lv[s->n].bev = above;
    s->n++;
    memset(&ng->starting, 0, sizeof ng->starting);
    memmove(ng->specs, ng->specs + 1, (ng->nspecs - 1) * sizeof ng->specs[0]);
    ng->nspecs--;
    if (ng->in_start)
        ng->advance = true; /* neg_next's loop goes on after start() returns */
    else
        neg_next(s);
}

void sc_layer_failed(struct sc_stream *s, int err, const char *why)
{
    struct negotiation *ng = s->ng;
    if (s->neg != NEG_RUNNING || !ng->starting.ops)
        return;
    char buf[160];
    snprintf(buf, sizeof buf, "%s: %s", ng->starting.ops->name, why ? why : sc_strerror(err));
    s->fault_ops = ng->starting.ops;
    s->fault_err = err ? err : SC_EIO;
    neg_finish(s, s->fault_err, buf);
}

void sc_layer_broken(struct sc_stream *s, const struct sc_layer_ops *ops, int err)
{
    if (s->fault_ops)
        return; /* the first fault is the cause */
    s->fault_ops = ops;
    s->fault_err = err ? err : SC_EIO;
}

const struct sc_layer_ops *sc_stream_fault(const struct sc_stream *s, int *err)
{
    if (err)
        *err = s->fault_ops ? s->fault_err : 0;
    return s->fault_ops;
}

void sc_stream_set_end(struct sc_stream *s, enum sc_stream_end end) { s->end = end; }
enum sc_stream_end sc_stream_get_end(const struct sc_stream *s) { return s->end; }

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_stream *s = arg;
    char why[96];
    snprintf(why, sizeof why, "%s: timed out",
             s->ng->starting.ops ? s->ng->starting.ops->name : "negotiation");
    if (s->ng->starting.ops) {
        s->fault_ops = s->ng->starting.ops;
        s->fault_err = SC_ETIMEDOUT;
    }
    neg_finish(s, SC_ETIMEDOUT, why);
}

int sc_stream_negotiate(struct sc_stream *s, enum sc_role role, const struct sc_layer_spec *layers,
                        size_t n, uint32_t timeout_ms, sc_stream_cb cb, void *arg)
{
    if (s->neg != NEG_IDLE || n > SC_STREAM_LAYERS_MAX || s->n - 1u + n > SC_STREAM_LAYERS_MAX)
        return SC_EINVAL;
    struct negotiation *ng = calloc(1, sizeof *ng);
    if (!ng)
        return SC_ENOMEM;
    s->ng = ng;
    ng->deadline = evtimer_new(s->base, on_deadline, s);
    ng->done_ev = event_new(s->base, -1, 0, on_done, s);
    if (!ng->deadline || !ng->done_ev) {
        neg_free(s);
        return SC_ENOMEM;
    }
    ng->role = role;
    if (n)
        memcpy(ng->specs, layers, n * sizeof *layers); /* layers may be NULL when n is 0 */
    ng->nspecs = n;
    ng->cb = cb;
    ng->cb_arg = arg;
    s->neg = NEG_RUNNING;
    struct timeval tv = sc_ms_to_tv(timeout_ms);
    evtimer_add(ng->deadline, &tv);
    neg_next(s);
    return 0;
}

/* ---- ending ----------------------------------------------------------------- */

/* Frees levels n-1..1; with `polite` each first pushes what it holds down
 * and writes its goodbye into the level below. */
static void unstack(struct sc_stream *s, bool polite)
{
    while (s->n > 1) {
        struct level *lv = &s->lv[--s->n];
        if (polite) {
            if (lv->bev != s->lv[s->n - 1].bev)
                bufferevent_flush(lv->bev, EV_WRITE, BEV_FINISHED);
            if (lv->ops->shutdown)
                lv->ops->shutdown(lv->state);
        }
        lv->ops->destroy(lv->state);
        memset(lv, 0, sizeof *lv);
    }
}

void sc_stream_close(struct sc_stream *s, uint32_t linger_ms)
{
    if (!s)
        return;
    neg_free(s); /* a negotiation in progress ends untold */
    unstack(s, true);
    struct bufferevent *bottom = s->lv[0].bev;
    free(s);
    sc_closer_start(bottom, false, sc_mono_ms() + linger_ms, NULL, NULL);
}

void sc_stream_close_silent(struct sc_stream *s, uint64_t until_ms)
{
    if (!s)
        return;
    neg_free(s); /* a negotiation in progress ends untold */
    unstack(s, false);
    struct bufferevent *bottom = s->lv[0].bev;
    free(s);
    evbuffer_drain(bufferevent_get_output(bottom), evbuffer_get_length(bufferevent_get_output(bottom)));
    sc_closer_start(bottom, true, until_ms, NULL, NULL);
}

void sc_stream_free(struct sc_stream *s)
{
    if (!s)
        return;
    neg_free(s); /* a negotiation in progress ends untold */
    unstack(s, false);
    sc_bev_free_now(s->lv[0].bev);
    free(s);
}
