/* transport/socks5.c — the `socks5` client layer: runs the SOCKS5
 * negotiation (transport/socks5_proto.c) over the connection to the proxy,
 * maps the proxy's answer to an error and a reason, and hands the same
 * bufferevent up once connected. It never resolves the target name, never
 * reads a byte past the proxy's reply, and never frees the level below. */
#include "transport/socks5.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <sodium.h>

#include "transport/onion.h"
#include "transport/socks5_proto.h"
#include "util/check.h"
#include "util/log.h"

struct socks5_layer {
    struct sc_stream *stream;
    struct bufferevent *below;
    struct sc_socks5 proto;
    bool onion;    /* the target ends in .onion */
    bool finished; /* ready or failed: below's callbacks are no longer ours */
    bool driving;  /* inside drive(): a nested call (a bufferevent that runs
                      callbacks from inside our own write) only asks again */
    bool again;
    short closed; /* BEV_EVENT_EOF/ERROR seen on below, handled once the input is read */
    int closed_errno;
};

/* What the proxy's message being read is called in a reason. */
static const char *awaited(enum sc_socks5_state state)
{
    switch (state) {
    case SC_SOCKS5_READ_METHOD:
        return "the method choice";
    case SC_SOCKS5_READ_AUTH:
        return "the authentication answer";
    case SC_SOCKS5_READ_REPLY:
        return "the CONNECT reply";
    default:
        return "the negotiation";
    }
}

static void fail(struct socks5_layer *x, int err, const char *why)
{
    x->finished = true;
    bufferevent_setcb(x->below, NULL, NULL, NULL, NULL);
    if (sc_log_enabled(SC_LOG_DEBUG))
        sc_log(SC_LOG_DEBUG, "socks5.failed", "state=%s result=%s code=0x%02x error=%s",
               sc_socks5_state_name(x->proto.state), sc_socks5_result_name(x->proto.result),
               x->proto.code, sc_err_name(err));
    sc_socks5_clear(&x->proto); /* wipes credentials not yet sent */
    sc_layer_failed(x->stream, err, why);
}

/* A reply code for an onion target that means Tor did not get there, when
 * the SocksPort lacks ExtendedErrors (Tor then answers with plain codes). */
static bool onion_failure(enum sc_socks5_result r)
{
    switch (r) {
    case SC_SOCKS5_R_GENERAL_FAILURE:
    case SC_SOCKS5_R_NETWORK_UNREACHABLE:
    case SC_SOCKS5_R_HOST_UNREACHABLE:
    case SC_SOCKS5_R_CONNECTION_REFUSED:
    case SC_SOCKS5_R_TTL_EXPIRED:
        return true;
    default:
        return false;
    }
}

/* The proxy's bytes ended the negotiation (err from sc_socks5_recv) while
 * `reading` was awaited: the error code and the words for it. */
static void fail_reply(struct socks5_layer *x, int err, enum sc_socks5_state reading)
{
    enum sc_socks5_result r = x->proto.result;
    uint8_t code = x->proto.code;
    const char *text = sc_socks5_result_text(r);
    char why[160];
    int e = SC_EPROXY;

    switch (r) {
    case SC_SOCKS5_R_NO_ACCEPTABLE_METHOD:
        e = SC_EPROXYAUTH;
        snprintf(why, sizeof why, "%s (0x%02x): we offered only %s", text, code,
                 x->proto.user_len ? "username/password" : "no authentication");
        break;
    case SC_SOCKS5_R_AUTH_FAILED:
        e = SC_EPROXYAUTH;
        snprintf(why, sizeof why, "%s (0x%02x)", text, code);
        break;
    case SC_SOCKS5_R_PROTOCOL_ERROR:
        if (err == SC_EVERSION)
            snprintf(why, sizeof why, "not a SOCKS5 server: version byte 0x%02x in %s", code,
                     awaited(reading));
        else
            snprintf(why, sizeof why, "%s: byte 0x%02x in %s", text, code, awaited(reading));
        break;
    default: /* the CONNECT reply's REP */
        if ((r >= SC_SOCKS5_R_ONION_DESC_NOT_FOUND && r <= SC_SOCKS5_R_ONION_INTRO_TIMEOUT) ||
            (x->onion && onion_failure(r)))
            e = SC_EONION;
        snprintf(why, sizeof why, "%s (0x%02x)", text, code);
        break;
    }
    fail(x, e, why);
}

static void ready(struct socks5_layer *x)
{
    x->finished = true;
    bufferevent_setcb(x->below, NULL, NULL, NULL, NULL);
    sc_log(SC_LOG_DEBUG, "socks5.connected", "onion=%d", x->onion);
    sc_socks5_clear(&x->proto);
    sc_layer_ready(x->stream, x->below);
    /* What the proxy relayed after its reply is the layer above's: it may
     * already be reading (started just now) or read it once it starts. */
    if (evbuffer_get_length(bufferevent_get_input(x->below)))
        bufferevent_trigger(x->below, EV_READ,
                            BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* The connection to the proxy ended before its answer was complete. */
static void fail_closed(struct socks5_layer *x)
{
    char why[160];
    if ((x->closed & BEV_EVENT_ERROR) && x->closed_errno)
        snprintf(why, sizeof why, "%s while waiting for %s",
                 evutil_socket_error_to_string(x->closed_errno), awaited(x->proto.state));
    else
        snprintf(why, sizeof why, "the proxy closed the connection while waiting for %s",
                 awaited(x->proto.state));
    fail(x, SC_EPROXY, why);
}

/* Sends what the state machine has to send and feeds it what the proxy
 * sent, until it waits for more bytes or has finished. */
static void step(struct socks5_layer *x)
{
    while (!x->finished) {
        switch (sc_socks5_want(&x->proto)) {
        case SC_SOCKS5_WANT_SEND: {
            uint8_t msg[SC_SOCKS5_SEND_MAX_BYTES];
            size_t n = 0;
            int err = sc_socks5_next_send(&x->proto, msg, sizeof msg, &n);
            SC_CHECK(err == 0, "socks5: next_send in %s: %s", sc_socks5_state_name(x->proto.state),
                     sc_strerror(err));
            int rc = bufferevent_write(x->below, msg, n);
            sodium_memzero(msg, sizeof msg); /* the RFC 1929 request holds the password */
            if (rc != 0) {
                fail(x, SC_ENOMEM, "cannot queue the request");
                return;
            }
            break;
        }
        case SC_SOCKS5_WANT_RECV: {
            struct evbuffer *in = bufferevent_get_input(x->below);
            struct evbuffer_iovec v;
            if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, NULL, &v, 1) < 1) {
                if (x->closed)
                    fail_closed(x);
                return; /* on_read calls again */
            }
            enum sc_socks5_state reading = x->proto.state;
            size_t used = 0;
            int err = sc_socks5_recv(&x->proto, v.iov_base, v.iov_len, &used);
            evbuffer_drain(in, used);
            if (err) {
                fail_reply(x, err, reading);
                return;
            }
            break;
        }
        case SC_SOCKS5_WANT_DONE:
            ready(x);
            return;
        case SC_SOCKS5_WANT_FAILED:
        default:
            return; /* fail_reply() has reported it */
        }
    }
}

static void drive(struct socks5_layer *x)
{
    if (x->driving) {
        x->again = true;
        return;
    }
    x->driving = true;
    do {
        x->again = false;
        step(x);
    } while (x->again && !x->finished);
    x->driving = false;
}

static void on_read(struct bufferevent *below, void *arg)
{
    (void)below;
    drive(arg);
}

static void on_event(struct bufferevent *below, short what, void *arg)
{
    (void)below;
    struct socks5_layer *x = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) || x->closed)
        return;
    x->closed = what;
    x->closed_errno = EVUTIL_SOCKET_ERROR();
    drive(x); /* a failure reply may be waiting in front of the close */
}

static int socks5_client_start(struct sc_stream *s, const void *params, struct bufferevent *below,
                               void **state)
{
    const struct sc_socks5_params *p = params;
    if (!p)
        return SC_EINVAL;
    struct socks5_layer *x = calloc(1, sizeof *x);
    if (!x)
        return SC_ENOMEM;
    const struct sc_socks5_config cfg = {
        .host = p->host, .port = p->port, .username = p->username, .password = p->password};
    int err = sc_socks5_init(&x->proto, &cfg);
    if (err) {
        sc_socks5_clear(&x->proto);
        free(x);
        return err;
    }
    x->stream = s;
    x->below = below;
    x->onion = sc_host_is_onion(p->host);
    *state = x;
    bufferevent_setcb(below, on_read, NULL, on_event, x);
    bufferevent_enable(below, EV_READ | EV_WRITE);
    drive(x); /* the greeting now; anything already read is fed too */
    return 0;
}

static void socks5_destroy(void *state)
{
    struct socks5_layer *x = state;
    if (!x->finished) /* abandoned mid-negotiation */
        bufferevent_setcb(x->below, NULL, NULL, NULL, NULL);
    sc_socks5_clear(&x->proto);
    free(x); /* the bufferevent handed up is below's: the stream frees it */
}

static void socks5_query(const void *state, struct sc_stream_info *info)
{
    const struct socks5_layer *x = state;
    if (x->onion)
        info->onion = true;
}

const struct sc_layer_ops sc_layer_socks5 = {
    .name = "socks5",
    .client_start = socks5_client_start,
    .server_start = NULL,
    .shutdown = NULL,
    .destroy = socks5_destroy,
    .query = socks5_query,
};
