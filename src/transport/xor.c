/* transport/xor.c — a trivial layer used only by tests: every byte is
 * XORed with a fixed value in both directions through a libevent filter
 * bufferevent; optionally the client first sends one hello byte ('X') that
 * the server waits for. It proves the layer seam (client and server negotiation
 * under the deadline, leftover bytes, top-down close): the link suite runs
 * over it unchanged. Not a cipher; never offered to operators. */
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "transport/transport.h"

#define XOR_HELLO 0x58u

struct xor_layer {
    struct sc_stream *stream;
    struct bufferevent *below;
    struct bufferevent *bev; /* the filter we hand up */
    uint8_t key;
    bool hello;
};

static enum bufferevent_filter_result xor_copy(struct evbuffer *src, struct evbuffer *dst,
                                               ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                               void *ctx)
{
    (void)mode;
    const struct xor_layer *x = ctx;
    size_t want = evbuffer_get_length(src);
    if (limit >= 0 && want > (size_t)limit)
        want = (size_t)limit;
    while (want) {
        struct evbuffer_iovec in;
        if (evbuffer_peek(src, (ev_ssize_t)want, NULL, &in, 1) < 1)
            break;
        size_t n = in.iov_len < want ? in.iov_len : want;
        struct evbuffer_iovec out;
        if (evbuffer_reserve_space(dst, (ev_ssize_t)n, &out, 1) != 1)
            return BEV_ERROR;
        const uint8_t *p = in.iov_base;
        uint8_t *q = out.iov_base;
        for (size_t i = 0; i < n; i++)
            q[i] = p[i] ^ x->key;
        out.iov_len = n;
        evbuffer_commit_space(dst, &out, 1);
        evbuffer_drain(src, n);
        want -= n;
    }
    return BEV_OK;
}

/* Stacks the filter and hands it up; bytes that arrived with the hello are
 * pushed through it at once. Its callbacks are deferred to the loop, as a
 * socket's are: a filter otherwise calls the user's write callback from
 * inside the user's own write to it. */
static void stack_filter(struct xor_layer *x)
{
    x->bev = bufferevent_filter_new(x->below, xor_copy, xor_copy, BEV_OPT_DEFER_CALLBACKS, NULL, x);
    if (!x->bev) {
        sc_layer_failed(x->stream, SC_ENOMEM, "out of memory");
        return;
    }
    bufferevent_enable(x->bev, EV_READ | EV_WRITE);
    sc_layer_ready(x->stream, x->bev);
    if (evbuffer_get_length(bufferevent_get_input(x->below)))
        bufferevent_trigger(x->below, EV_READ, BEV_TRIG_IGNORE_WATERMARKS);
}

static void on_hello(struct bufferevent *below, void *arg)
{
    struct xor_layer *x = arg;
    struct evbuffer *in = bufferevent_get_input(below);
    uint8_t hello;
    if (evbuffer_remove(in, &hello, 1) != 1)
        return;
    bufferevent_setcb(below, NULL, NULL, NULL, NULL);
    if (hello != XOR_HELLO) {
        sc_layer_failed(x->stream, SC_EFORMAT, "bad hello");
        return;
    }
    stack_filter(x);
}

static void on_hello_event(struct bufferevent *below, short what, void *arg)
{
    struct xor_layer *x = arg;
    (void)what;
    bufferevent_setcb(below, NULL, NULL, NULL, NULL);
    sc_layer_failed(x->stream, SC_ECONNRESET, "closed before the hello");
}

static struct xor_layer *xor_new(struct sc_stream *s, const void *params,
                                 struct bufferevent *below)
{
    struct xor_layer *x = calloc(1, sizeof *x);
    if (x) {
        x->stream = s;
        x->below = below;
        const struct sc_xor_params *p = params;
        x->key = p ? p->key : 0x5c;
        x->hello = p && p->hello;
    }
    return x;
}

static int xor_client_start(struct sc_stream *s, const void *params, struct bufferevent *below,
                            void **state)
{
    struct xor_layer *x = xor_new(s, params, below);
    if (!x)
        return SC_ENOMEM;
    *state = x;
    if (x->hello) {
        uint8_t hello = XOR_HELLO;
        bufferevent_write(below, &hello, 1);
    }
    stack_filter(x);
    return 0;
}

static int xor_server_start(struct sc_stream *s, const void *params, struct bufferevent *below,
                            void **state)
{
    struct xor_layer *x = xor_new(s, params, below);
    if (!x)
        return SC_ENOMEM;
    *state = x;
    if (!x->hello) {
        stack_filter(x);
        return 0;
    }
    bufferevent_setcb(below, on_hello, NULL, on_hello_event, x);
    bufferevent_enable(below, EV_READ | EV_WRITE);
    if (evbuffer_get_length(bufferevent_get_input(below)))
        on_hello(below, x);
    return 0;
}

static void xor_destroy(void *state)
{
    struct xor_layer *x = state;
    /* below's callbacks lead to x; the filter may outlive this call */
    bufferevent_setcb(x->below, NULL, NULL, NULL, NULL);
    if (x->bev)
        bufferevent_free(x->bev);
    free(x);
}

const struct sc_layer_ops sc_layer_xor = {
    .name = "xor",
    .client_start = xor_client_start,
    .server_start = xor_server_start,
    .shutdown = NULL,
    .destroy = xor_destroy,
    .query = NULL,
};
