/* transport/stream.c — a connected bufferevent with layers stacked on it:
 * bottom-up negotiation under one deadline, top-down close, and what the
 * layers know (transport/transport.h). Owns every level's bufferevent; a
 * layer frees only what it created. Never reads or writes payload bytes. */
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

struct sc_stream {
    struct event_base *base;
    struct level lv[SC_STREAM_LAYERS_MAX + 1];
    size_t n; /* ready levels, the bottom included */
    struct sockaddr_storage peer;
    socklen_t peer_len;

    enum neg_state neg;
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
        sc_sockaddr_format((const struct sockaddr *)&s->peer, out->peer, sizeof out->peer);
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

static void drop_starting(struct sc_stream *s)
{
    if (s->starting.ops) {
        if (s->starting.state)
            s->starting.ops->destroy(s->starting.state);
        memset(&s->starting, 0, sizeof s->starting);
    }
}

static void neg_stop_events(struct sc_stream *s)
{
    if (s->deadline)
        event_free(s->deadline);
    if (s->done_ev)
        event_free(s->done_ev);
    s->deadline = s->done_ev = NULL;
}

/* Records the outcome; the callback runs from the loop (on_done). */
static void neg_finish(struct sc_stream *s, int err, const char *why)
{
    if (s->neg != NEG_RUNNING)
        return;
    s->neg = NEG_DONE;
    s->err = err;
    snprintf(s->why, sizeof s->why, "%s", why ? why : "");
    event_del(s->deadline);
    event_active(s->done_ev, EV_TIMEOUT, 0);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_stream *s = arg;
    drop_starting(s); /* a failed layer is freed here, outside its own callbacks */
    neg_stop_events(s);
    s->neg = NEG_IDLE;
    s->cb(s, s->err, s->err ? s->why : "", s->cb_arg);
}

static void neg_next(struct sc_stream *s)
{
    while (s->neg == NEG_RUNNING) {
        if (s->nspecs == 0) {
            neg_finish(s, 0, NULL);
            return;
        }
        const struct sc_layer_spec *spec = &s->specs[0];
        int (*start)(struct sc_stream *, const void *, struct bufferevent *, void **) =
            s->role == SC_ROLE_CLIENT ? spec->ops->client_start : spec->ops->server_start;
        char why[96];
        if (!start || s->n > SC_STREAM_LAYERS_MAX) {
            snprintf(why, sizeof why, "%s: no %s side", spec->ops->name,
                     s->role == SC_ROLE_CLIENT ? "client" : "server");
            neg_finish(s, SC_EINVAL, why);
            return;
        }
        s->starting.ops = spec->ops;
        s->starting.state = NULL;
        s->in_start = true;
        s->advance = false;
        int err = start(s, spec->params, s->lv[s->n - 1].bev, &s->starting.state);
        s->in_start = false;
        if (err) {
            memset(&s->starting, 0, sizeof s->starting); /* it cleaned up itself */
            snprintf(why, sizeof why, "%s: %s", spec->ops->name, sc_strerror(err));
            neg_finish(s, err, why);
            return;
        }
        if (!s->advance)
            return; /* finishes later through sc_layer_ready/failed */
    }
}

void sc_layer_ready(struct sc_stream *s, struct bufferevent *above)
{
    if (s->neg != NEG_RUNNING || !s->starting.ops)
        return;
    /* Back-pressure through the layer: a filter stops taking bytes from
     * above while the level below holds this much (and refills as it
     * drains), so the link's own output bound holds on every layer. */
    struct bufferevent *below = s->lv[s->n - 1].bev;
    if (above != below)
        bufferevent_setwatermark(below, EV_WRITE, SC_LAYER_OUTPUT_HIGH_WATER_BYTES / 2,
                                 SC_LAYER_OUTPUT_HIGH_WATER_BYTES);
    s->lv[s->n] = s->starting;
    s->lv[s->n].bev = above;
    s->n++;
    memset(&s->starting, 0, sizeof s->starting);
    memmove(s->specs, s->specs + 1, (s->nspecs - 1) * sizeof s->specs[0]);
    s->nspecs--;
    if (s->in_start)
        s->advance = true; /* neg_next's loop goes on after start() returns */
    else
        neg_next(s);
}

void sc_layer_failed(struct sc_stream *s, int err, const char *why)
{
    if (s->neg != NEG_RUNNING || !s->starting.ops)
        return;
    char buf[160];
    snprintf(buf, sizeof buf, "%s: %s", s->starting.ops->name, why ? why : sc_strerror(err));
    neg_finish(s, err ? err : SC_EIO, buf);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_stream *s = arg;
    char why[96];
    snprintf(why, sizeof why, "%s: timed out",
             s->starting.ops ? s->starting.ops->name : "negotiation");
    neg_finish(s, SC_ETIMEDOUT, why);
}

int sc_stream_negotiate(struct sc_stream *s, enum sc_role role, const struct sc_layer_spec *layers,
                        size_t n, uint32_t timeout_ms, sc_stream_cb cb, void *arg)
{
    if (s->neg != NEG_IDLE || n > SC_STREAM_LAYERS_MAX || s->n - 1 + n > SC_STREAM_LAYERS_MAX)
        return SC_EINVAL;
    s->deadline = evtimer_new(s->base, on_deadline, s);
    s->done_ev = event_new(s->base, -1, 0, on_done, s);
    if (!s->deadline || !s->done_ev) {
        neg_stop_events(s);
        return SC_ENOMEM;
    }
    s->role = role;
    memcpy(s->specs, layers, n * sizeof *layers);
    s->nspecs = n;
    s->cb = cb;
    s->cb_arg = arg;
    s->err = 0;
    s->neg = NEG_RUNNING;
    struct timeval tv = sc_ms_to_tv(timeout_ms);
    evtimer_add(s->deadline, &tv);
    neg_next(s);
    return 0;
}

/* ---- ending ----------------------------------------------------------------- */

/* Ends a negotiation in progress without telling anyone. */
static void neg_abandon(struct sc_stream *s)
{
    drop_starting(s);
    neg_stop_events(s);
    s->neg = NEG_IDLE;
}

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
    neg_abandon(s);
    unstack(s, true);
    struct bufferevent *bottom = s->lv[0].bev;
    free(s);
    sc_closer_start(bottom, false, sc_mono_ms() + linger_ms, NULL, NULL);
}

void sc_stream_close_silent(struct sc_stream *s, uint64_t until_ms)
{
    if (!s)
        return;
    neg_abandon(s);
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
    neg_abandon(s);
    unstack(s, false);
    bufferevent_free(s->lv[0].bev);
    free(s);
}
