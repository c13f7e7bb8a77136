/* transport/websocket.c — the websocket layer: the HTTP/1.1 upgrade on the
 * level below (transport/ws_http.c), then a filter bufferevent whose input
 * is the payload of binary messages and whose output goes out as binary
 * frames (transport/ws_frame.c). It must never touch the socket, nor let a
 * peer grow a buffer past a head (8 KiB) or a message's bound. */
#include "transport/websocket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "secirc/limits.h"
#include "transport/ws_frame.h"
#include "transport/ws_http.h"
#include "util/check.h"
#include "util/log.h"

/* States: UPGRADING -> OPEN -> CLOSED, or (server) UPGRADING -> REFUSING
 * (an HTTP answer other than 101 is being written; the negotiation fails
 * once it is out). */
enum ws_state { WS_UPGRADING, WS_REFUSING, WS_OPEN, WS_CLOSED };

static const char *const ws_state_names[] = {
    [WS_UPGRADING] = "upgrading",
    [WS_REFUSING] = "refusing",
    [WS_OPEN] = "open",
    [WS_CLOSED] = "closed",
};

struct ws_layer {
    struct sc_stream *stream;
    struct bufferevent *below;
    struct bufferevent *bev; /* the filter we hand up, once open */
    enum sc_role role;
    enum ws_state state;
    size_t scan; /* where sc_http_head_find resumes */
    size_t max_message;
    size_t read_low, read_high; /* below's read watermarks before the upgrade */
    struct sc_ws_server_config server;
    char accept[SC_WS_ACCEPT_SIZE]; /* client: the Sec-WebSocket-Accept we expect */
    bool offered_subprotocol;
    struct sc_ws_conn *conn;
    int refuse_err;
    char refuse_why[96];
};

static void set_state(struct ws_layer *w, enum ws_state next)
{
    enum ws_state cur = w->state;
    bool ok = (cur == WS_UPGRADING && (next == WS_REFUSING || next == WS_OPEN)) ||
              (cur == WS_OPEN && next == WS_CLOSED);
    SC_CHECK(ok, "illegal websocket transition %s -> %s", ws_state_names[cur],
             ws_state_names[next]);
    w->state = next;
}

/* The close code that tells the peer why the stream's user ends it. */
static uint16_t close_code(enum sc_stream_end end)
{
    switch (end) {
    case SC_STREAM_END_GOING_AWAY: return SC_WS_CLOSE_GOING_AWAY;
    case SC_STREAM_END_PROTOCOL: return SC_WS_CLOSE_PROTOCOL;
    case SC_STREAM_END_POLICY: return SC_WS_CLOSE_POLICY;
    case SC_STREAM_END_TOO_BIG: return SC_WS_CLOSE_TOO_BIG;
    case SC_STREAM_END_INTERNAL: return SC_WS_CLOSE_INTERNAL;
    case SC_STREAM_END_NORMAL: break;
    }
    return SC_WS_CLOSE_NORMAL;
}

/* ---- open: frames both ways through a filter --------------------------------- */

static enum bufferevent_filter_result ws_in(struct evbuffer *src, struct evbuffer *dst,
                                            ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                            void *ctx)
{
    (void)mode;
    struct ws_layer *w = ctx;
    if (w->state != WS_OPEN) {
        evbuffer_drain(src, evbuffer_get_length(src)); /* after the close: nothing more */
        return BEV_NEED_MORE;
    }
    size_t before = evbuffer_get_length(dst);
    int r = sc_ws_conn_read(w->conn, src, dst, limit, bufferevent_get_output(w->below));
    bool produced = evbuffer_get_length(dst) != before;
    if (r == SC_WS_READ_OPEN)
        return produced ? BEV_OK : BEV_NEED_MORE;
    /* The peer closed, or broke the protocol: our close frame is queued
     * below; the layer above sees the end of its input and closes. */
    set_state(w, WS_CLOSED);
    struct sc_ws_conn_info info;
    sc_ws_conn_get_info(w->conn, &info);
    if (r < 0) {
        sc_layer_broken(w->stream, &sc_layer_websocket, r);
        if (sc_log_enabled(SC_LOG_DEBUG))
            sc_log(SC_LOG_DEBUG, "websocket.protocol_error", "sent=%u why=\"%s\"", info.close_sent,
                   info.why);
    } else if (sc_log_enabled(SC_LOG_DEBUG)) {
        sc_log(SC_LOG_DEBUG, "websocket.closed", "received=%u sent=%u", info.close_received,
               info.close_sent);
    }
    bufferevent_trigger_event(w->bev, BEV_EVENT_EOF | BEV_EVENT_READING, 0);
    return BEV_OK;
}

static enum bufferevent_filter_result ws_out(struct evbuffer *src, struct evbuffer *dst,
                                             ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                             void *ctx)
{
    (void)mode;
    struct ws_layer *w = ctx;
    if (w->state != WS_OPEN) {
        evbuffer_drain(src, evbuffer_get_length(src)); /* our close is out: nothing more */
        return BEV_OK;
    }
    size_t max = limit < 0 ? SIZE_MAX : (size_t)limit;
    int err = sc_ws_conn_write(w->conn, src, max, dst);
    if (err == SC_ECLOSED) {
        evbuffer_drain(src, evbuffer_get_length(src));
        return BEV_OK;
    }
    return err ? BEV_ERROR : BEV_OK;
}

static void fail(struct ws_layer *w, int err, const char *why)
{
    bufferevent_setcb(w->below, NULL, NULL, NULL, NULL);
    sc_layer_failed(w->stream, err, why);
}

/* The upgrade is done: frames from here on, in a filter whose callbacks run
 * from the loop like a socket's (transport.h). Bytes that came with the
 * upgrade are pushed through at once. */
static void go_open(struct ws_layer *w)
{
    bufferevent_setwatermark(w->below, EV_READ, w->read_low, w->read_high);
    int err = sc_ws_conn_new(w->role, w->max_message, &w->conn);
    if (!err) {
        w->bev = bufferevent_filter_new(w->below, ws_in, ws_out, BEV_OPT_DEFER_CALLBACKS, NULL, w);
        err = w->bev ? 0 : SC_ENOMEM;
    }
    if (err) {
        fail(w, err, "out of memory");
        return;
    }
    set_state(w, WS_OPEN);
    bufferevent_enable(w->bev, EV_READ | EV_WRITE);
    bool leftover = evbuffer_get_length(bufferevent_get_input(w->below)) != 0;
    sc_layer_ready(w->stream, w->bev);
    if (leftover)
        bufferevent_trigger(w->below, EV_READ, BEV_TRIG_IGNORE_WATERMARKS);
}

/* ---- the upgrade ------------------------------------------------------------------ */

static void client_answer(struct ws_layer *w, const uint8_t *buf, size_t n)
{
    struct sc_http_reply rep;
    memset(&rep, 0, sizeof rep);
    int r = sc_ws_client_parse(buf, n, w->accept, w->offered_subprotocol, &rep);
    if (r == 0)
        return;
    if (r < 0) {
        char why[96];
        if (r == SC_ECONNECT)
            snprintf(why, sizeof why, "server answered %d", rep.status);
        else
            snprintf(why, sizeof why, "%s", rep.why ? rep.why : sc_strerror(r));
        fail(w, r, why);
        return;
    }
    evbuffer_drain(bufferevent_get_input(w->below), rep.head_len);
    go_open(w);
}

/* The error a refused request ends the negotiation with. */
static int refusal_error(enum sc_ws_verdict v)
{
    switch (v) {
    case SC_WS_FORBIDDEN: return SC_EACCES;
    case SC_WS_UPGRADE_REQUIRED: return SC_EVERSION;
    case SC_WS_TOO_LARGE: return SC_ETOOBIG;
    case SC_WS_BAD_REQUEST: return SC_EFORMAT;
    default: return SC_ENOENT; /* the page, 404, 405: no upgrade asked for here */
    }
}

static void on_refusal_written(struct bufferevent *below, void *arg)
{
    struct ws_layer *w = arg;
    if (evbuffer_get_length(bufferevent_get_output(below)) == 0)
        fail(w, w->refuse_err, w->refuse_why);
}

static void on_upgrade_read(struct bufferevent *below, void *arg);
static void on_upgrade_event(struct bufferevent *below, short what, void *arg);

static void server_request(struct ws_layer *w, const uint8_t *buf, size_t n)
{
    struct sc_ws_request req;
    int r = sc_ws_server_parse(buf, n, &w->server, &req);
    if (r == 0)
        return;
    char reply[512];
    size_t len = 0;
    if (r < 0 || sc_ws_server_reply(&req, reply, sizeof reply, &len) != 0) {
        fail(w, r < 0 ? r : SC_EINVAL, "cannot answer the upgrade");
        return;
    }
    struct evbuffer *in = bufferevent_get_input(w->below);
    if (req.verdict == SC_WS_SWITCH) {
        evbuffer_drain(in, req.head_len);
        bufferevent_write(w->below, reply, len);
        go_open(w);
        return;
    }
    /* Answer like a web server, then fail once the answer is out (so even
     * a silent close after it cannot cut it). */
    evbuffer_drain(in, evbuffer_get_length(in));
    w->refuse_err = refusal_error(req.verdict);
    snprintf(w->refuse_why, sizeof w->refuse_why, "answered %d (%s)", (int)req.verdict,
             req.why ? req.why : "refused");
    set_state(w, WS_REFUSING);
    bufferevent_setcb(w->below, on_upgrade_read, on_refusal_written, on_upgrade_event, w);
    bufferevent_write(w->below, reply, len);
}

static void on_upgrade_read(struct bufferevent *below, void *arg)
{
    struct ws_layer *w = arg;
    struct evbuffer *in = bufferevent_get_input(below);
    size_t len = evbuffer_get_length(in);
    if (w->state != WS_UPGRADING) {
        evbuffer_drain(in, len);
        return;
    }
    if (len == 0)
        return;
    size_t n = len < SC_HTTP_HEAD_MAX_BYTES ? len : SC_HTTP_HEAD_MAX_BYTES;
    const uint8_t *buf = evbuffer_pullup(in, (ev_ssize_t)n);
    if (!buf) {
        fail(w, SC_ENOMEM, "out of memory");
        return;
    }
    if (sc_http_head_find(buf, n, &w->scan) == 0)
        return; /* n < SC_HTTP_HEAD_MAX_BYTES: more may complete it */
    if (w->role == SC_ROLE_CLIENT)
        client_answer(w, buf, n);
    else
        server_request(w, buf, n);
}

static void on_upgrade_event(struct bufferevent *below, short what, void *arg)
{
    (void)below;
    struct ws_layer *w = arg;
    if (w->state == WS_REFUSING)
        fail(w, w->refuse_err, w->refuse_why);
    else if (what & BEV_EVENT_EOF)
        fail(w, SC_ECONNRESET, "closed during the upgrade");
    else
        fail(w, SC_EIO, "error during the upgrade");
}

static struct ws_layer *ws_new(struct sc_stream *s, struct bufferevent *below, enum sc_role role,
                               const struct sc_ws_params *p)
{
    struct ws_layer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->stream = s;
    w->below = below;
    w->role = role;
    w->state = WS_UPGRADING;
    w->max_message = p && p->max_message_bytes ? p->max_message_bytes : SC_WS_MESSAGE_MAX_BYTES;
    if (p) {
        w->server.path = p->path;
        w->server.origins = p->origins;
        w->server.norigins = p->norigins;
    }
    return w;
}

/* Reads the upgrade's head on `below`, at most SC_HTTP_HEAD_MAX_BYTES at a
 * time (a longer head is refused whole, without reading on). */
static void listen_below(struct ws_layer *w)
{
    bufferevent_getwatermark(w->below, EV_READ, &w->read_low, &w->read_high);
    bufferevent_setwatermark(w->below, EV_READ, 0, SC_HTTP_HEAD_MAX_BYTES);
    bufferevent_setcb(w->below, on_upgrade_read, NULL, on_upgrade_event, w);
    bufferevent_enable(w->below, EV_READ | EV_WRITE);
}

static int ws_client_start(struct sc_stream *s, const void *params, struct bufferevent *below,
                           void **state)
{
    const struct sc_ws_params *p = params;
    if (!p || !p->host)
        return SC_EINVAL;
    struct ws_layer *w = ws_new(s, below, SC_ROLE_CLIENT, p);
    if (!w)
        return SC_ENOMEM;
    uint8_t nonce[SC_WS_KEY_RANDOM_BYTES];
    char key[SC_WS_KEY_SIZE];
    randombytes_buf(nonce, sizeof nonce);
    sc_ws_client_key(nonce, key);
    struct sc_ws_client_params cp = {.host = p->host,
                                     .port = p->port,
                                     .tls = p->tls,
                                     .path = p->path,
                                     .origin = p->origin,
                                     .subprotocol = p->subprotocol};
    char request[SC_HTTP_HEAD_MAX_BYTES];
    size_t n = 0;
    int err = sc_ws_accept_key(key, w->accept);
    if (!err)
        err = sc_ws_client_request(&cp, key, request, sizeof request, &n);
    if (err) {
        free(w);
        return err;
    }
    w->offered_subprotocol = p->subprotocol;
    *state = w;
    listen_below(w);
    bufferevent_write(below, request, n);
    return 0;
}

static int ws_server_start(struct sc_stream *s, const void *params, struct bufferevent *below,
                           void **state)
{
    struct ws_layer *w = ws_new(s, below, SC_ROLE_SERVER, params);
    if (!w)
        return SC_ENOMEM;
    *state = w;
    listen_below(w);
    if (evbuffer_get_length(bufferevent_get_input(below)))
        on_upgrade_read(below, w);
    return 0;
}

/* Top-down close: our close frame, with the code the stream's user chose. */
static void ws_shutdown(void *state)
{
    struct ws_layer *w = state;
    if (w->state != WS_OPEN)
        return;
    sc_ws_conn_close(w->conn, close_code(sc_stream_get_end(w->stream)),
                     bufferevent_get_output(w->below));
    set_state(w, WS_CLOSED);
}

static void ws_destroy(void *state)
{
    struct ws_layer *w = state;
    /* below's callbacks lead to w; the filter, which may outlive this
     * call (transport.h), lets go of them only once it is finalized */
    bufferevent_setcb(w->below, NULL, NULL, NULL, NULL);
    if (w->bev)
        bufferevent_free(w->bev);
    sc_ws_conn_free(w->conn);
    free(w);
}

const struct sc_layer_ops sc_layer_websocket = {
    .name = "websocket",
    .client_start = ws_client_start,
    .server_start = ws_server_start,
    .shutdown = ws_shutdown,
    .destroy = ws_destroy,
    .query = NULL, /* the name says the kind; ALPN stays the TLS layer's */
};
