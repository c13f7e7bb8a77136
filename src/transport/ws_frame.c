/* transport/ws_frame.c — WebSocket frames on wslay's event API (RFC 6455
 * section 5): binary payload streamed through (wslay's no-buffering mode, so
 * a message is never held whole), message size summed over fragments, text
 * refused with 1003, pings answered and the close handshake run by wslay.
 * Never reads past what it is given, never grows a buffer for a message. */
#include "transport/ws_frame.h"

#include <stdlib.h>

#include <event2/buffer.h>
#include <sodium.h>
#include <wslay/wslay.h>

#include "secirc/limits.h"

struct sc_ws_conn {
    wslay_event_context_ptr ctx;
    enum sc_role role;
    uint64_t max_message;
    /* The buffers of the call in progress (wslay's callbacks use them). */
    struct evbuffer *wire, *payload, *out;
    ssize_t limit;
    size_t appended;
    bool data_frame;        /* the frame being received is binary/continuation */
    uint64_t message_bytes; /* of the message being received, so far announced */
    uint64_t pongs;
    uint16_t close_sent, close_received;
    int error; /* set once the input broke the protocol */
    const char *why;
    bool done; /* nothing more is read */
};

/* ---- wslay's callbacks ---------------------------------------------------- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *arg)
{
    (void)flags;
    struct sc_ws_conn *c = arg;
    if (c->limit >= 0 && c->appended >= (size_t)c->limit) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    int n = evbuffer_remove(c->wire, buf, len);
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    return n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *arg)
{
    (void)flags;
    struct sc_ws_conn *c = arg;
    if (evbuffer_add(c->out, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

/* RFC 6455 5.3: a fresh, unpredictable mask for every frame a client sends. */
static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *arg)
{
    (void)ctx;
    (void)arg;
    randombytes_buf(buf, len);
    return 0;
}

/* Our own verdict on the input: close with `code`, read nothing more. */
static void fail(struct sc_ws_conn *c, int err, uint16_t code, const char *why)
{
    if (c->error)
        return;
    c->error = err;
    c->why = why;
    (void)wslay_event_queue_close(c->ctx, code, NULL, 0);
    wslay_event_shutdown_read(c->ctx);
}

static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *p)
{
    (void)ctx;
    struct sc_ws_conn *c = p;
    c->data_frame = !wslay_is_ctrl_frame(arg->opcode);
    if (!c->data_frame || c->error)
        return;
    if (arg->opcode == WSLAY_TEXT_FRAME) {
        fail(c, SC_EVERSION, SC_WS_CLOSE_UNSUPPORTED, "text message (binary only)");
        return;
    }
    if (arg->opcode == WSLAY_BINARY_FRAME)
        c->message_bytes = 0;
    /* Both terms are below 2^63 (wslay refuses more), so the sum fits. */
    c->message_bytes += arg->payload_length;
    if (c->message_bytes > c->max_message)
        fail(c, SC_ETOOBIG, SC_WS_CLOSE_TOO_BIG, "message too big");
}

static void on_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *p)
{
    (void)ctx;
    struct sc_ws_conn *c = p;
    if (!c->data_frame || c->error || arg->data_length == 0)
        return;
    if (evbuffer_add(c->payload, arg->data, arg->data_length) != 0) {
        fail(c, SC_ENOMEM, SC_WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    c->appended += arg->data_length;
}

static void on_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                       void *p)
{
    (void)ctx;
    struct sc_ws_conn *c = p;
    if (arg->opcode == WSLAY_PONG)
        c->pongs++;
    else if (arg->opcode == WSLAY_CONNECTION_CLOSE)
        c->close_received = arg->status_code ? arg->status_code : 1005;
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .genmask_callback = genmask_cb,
    .on_frame_recv_start_callback = on_frame_start,
    .on_frame_recv_chunk_callback = on_frame_chunk,
    .on_msg_recv_callback = on_message,
};

static int context_new(enum sc_role role, const struct wslay_event_callbacks *cb, void *arg,
                       wslay_event_context_ptr *out)
{
    int r = role == SC_ROLE_SERVER ? wslay_event_context_server_init(out, cb, arg)
                                   : wslay_event_context_client_init(out, cb, arg);
    return r ? SC_ENOMEM : 0;
}

/* ---- life cycle -------------------------------------------------------------- */

int sc_ws_conn_new(enum sc_role role, size_t max_message_bytes, struct sc_ws_conn **out)
{
    *out = NULL;
    struct sc_ws_conn *c = calloc(1, sizeof *c);
    if (!c)
        return SC_ENOMEM;
    c->role = role;
    c->max_message = max_message_bytes ? max_message_bytes : SC_WS_MESSAGE_MAX_BYTES;
    c->why = "";
    if (context_new(role, &callbacks, c, &c->ctx) != 0) {
        free(c);
        return SC_ENOMEM;
    }
    /* Stream the payload through: a message is never held whole. wslay then
     * checks each frame against the limit; on_frame_start sums fragments. */
    wslay_event_config_set_no_buffering(c->ctx, 1);
    wslay_event_config_set_max_recv_msg_length(c->ctx, c->max_message);
    /* No extension is ever negotiated: any RSV bit is a protocol error. */
    wslay_event_config_set_allowed_rsv_bits(c->ctx, WSLAY_RSV_NONE);
    *out = c;
    return 0;
}

void sc_ws_conn_free(struct sc_ws_conn *c)
{
    if (!c)
        return;
    wslay_event_context_free(c->ctx);
    free(c);
}

static void note_close_sent(struct sc_ws_conn *c)
{
    if (!c->close_sent && wslay_event_get_close_sent(c->ctx))
        c->close_sent = wslay_event_get_status_code_sent(c->ctx);
}

/* After a malformed frame wslay has queued a close without a status code;
 * the peer should learn it was a protocol error, so a throw-away context of
 * the same side writes a 1002 instead (the queued one is never sent). */
static void close_malformed(struct sc_ws_conn *c)
{
    static const struct wslay_event_callbacks cb = {.send_callback = send_cb,
                                                    .genmask_callback = genmask_cb};
    wslay_event_context_ptr once;
    if (context_new(c->role, &cb, c, &once) != 0)
        return;
    if (wslay_event_queue_close(once, SC_WS_CLOSE_PROTOCOL, NULL, 0) == 0 &&
        wslay_event_send(once) == 0)
        c->close_sent = SC_WS_CLOSE_PROTOCOL;
    wslay_event_context_free(once);
}

/* wslay refused the input by itself (unmasked or masked against the role,
 * RSV bits, a bad opcode, continuation out of place, a frame over the
 * limit, text not UTF-8, a bad close code): its close code says which. */
static void adopt_wslay_verdict(struct sc_ws_conn *c)
{
    switch (c->close_sent) {
    case SC_WS_CLOSE_TOO_BIG:
        c->error = SC_ETOOBIG;
        c->why = "message too big";
        break;
    case SC_WS_CLOSE_BAD_DATA:
        c->error = SC_EFORMAT;
        c->why = "text not UTF-8";
        break;
    default:
        c->error = SC_EFORMAT;
        c->why = "protocol error (mask, reserved bits, opcode or fragments)";
        break;
    }
}

int sc_ws_conn_read(struct sc_ws_conn *c, struct evbuffer *wire, struct evbuffer *payload,
                    ssize_t limit, struct evbuffer *out)
{
    if (c->done) {
        evbuffer_drain(wire, evbuffer_get_length(wire));
        return c->error ? c->error : SC_WS_READ_CLOSED;
    }
    c->wire = wire;
    c->payload = payload;
    c->out = out;
    c->limit = limit;
    c->appended = 0;
    int r = wslay_event_recv(c->ctx);
    if (r == WSLAY_ERR_NOMEM) {
        c->error = SC_ENOMEM;
        c->why = "out of memory";
        c->done = true;
    } else if (r != 0) {
        if (!c->error) {
            c->error = SC_EFORMAT;
            c->why = "malformed frame header";
        }
        close_malformed(c);
        c->done = true;
    } else {
        if (wslay_event_send(c->ctx) != 0 && !c->error) {
            c->error = SC_ENOMEM;
            c->why = "out of memory";
        }
        note_close_sent(c);
        if (!wslay_event_get_read_enabled(c->ctx)) {
            c->done = true;
            if (!c->error && !wslay_event_get_close_received(c->ctx))
                adopt_wslay_verdict(c);
        }
    }
    c->wire = c->payload = c->out = NULL;
    if (!c->done)
        return SC_WS_READ_OPEN;
    evbuffer_drain(wire, evbuffer_get_length(wire));
    return c->error ? c->error : SC_WS_READ_CLOSED;
}

int sc_ws_conn_write(struct sc_ws_conn *c, struct evbuffer *payload, size_t max,
                     struct evbuffer *out)
{
    int err = 0;
    size_t len;
    c->out = out;
    while (max > 0 && (len = evbuffer_get_length(payload)) > 0) {
        size_t n = len < max ? len : max;
        if (n > SC_WS_FRAME_MAX_BYTES)
            n = SC_WS_FRAME_MAX_BYTES;
        const uint8_t *p = evbuffer_pullup(payload, (ev_ssize_t)n);
        if (!p) {
            err = SC_ENOMEM;
            break;
        }
        struct wslay_event_msg m = {.opcode = WSLAY_BINARY_FRAME, .msg = p, .msg_length = n};
        int r = wslay_event_queue_msg(c->ctx, &m);
        if (r != 0) {
            err = r == WSLAY_ERR_NO_MORE_MSG ? SC_ECLOSED : SC_ENOMEM;
            break;
        }
        evbuffer_drain(payload, n);
        max -= n;
        if (wslay_event_send(c->ctx) != 0) {
            err = SC_ENOMEM;
            break;
        }
    }
    c->out = NULL;
    return err;
}

void sc_ws_conn_close(struct sc_ws_conn *c, uint16_t code, struct evbuffer *out)
{
    if (c->close_sent)
        return;
    c->out = out;
    if (wslay_event_queue_close(c->ctx, code, NULL, 0) == 0)
        (void)wslay_event_send(c->ctx);
    note_close_sent(c);
    c->out = NULL;
}

int sc_ws_conn_ping(struct sc_ws_conn *c, const uint8_t *data, size_t len, struct evbuffer *out)
{
    if (len > 125)
        return SC_EINVAL;
    struct wslay_event_msg m = {.opcode = WSLAY_PING, .msg = data, .msg_length = len};
    c->out = out;
    int r = wslay_event_queue_msg(c->ctx, &m);
    if (r == 0)
        r = wslay_event_send(c->ctx);
    c->out = NULL;
    if (r == WSLAY_ERR_NO_MORE_MSG)
        return SC_ECLOSED;
    return r ? SC_ENOMEM : 0;
}

void sc_ws_conn_get_info(const struct sc_ws_conn *c, struct sc_ws_conn_info *out)
{
    out->pongs_received = c->pongs;
    out->close_sent = c->close_sent;
    out->close_received = c->close_received;
    out->why = c->error ? c->why : "";
}
