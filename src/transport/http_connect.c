/* transport/http_connect.c — the http_connect layer: CONNECT host:port to
 * the proxy below (with Basic credentials when configured), the proxy's
 * answer checked by transport/http.c, then the level below handed up as it
 * is, the destination's first bytes left in it. It must never read past the
 * proxy's head, nor more than SC_HTTP_HEAD_MAX_BYTES of it. */
#include "transport/http_connect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/crypto.h>

#include "transport/http.h"

struct connect_layer {
    struct sc_stream *stream;
    struct bufferevent *below;
    size_t scan; /* where sc_http_head_find resumes */
    size_t read_low, read_high;
    bool done; /* below is the next layer's now */
};

static void finish(struct connect_layer *c)
{
    c->done = true;
    bufferevent_setcb(c->below, NULL, NULL, NULL, NULL);
    bufferevent_setwatermark(c->below, EV_READ, c->read_low, c->read_high);
}

static void fail(struct connect_layer *c, int err, const char *why)
{
    finish(c);
    sc_layer_failed(c->stream, err, why);
}

static void on_read(struct bufferevent *below, void *arg)
{
    struct connect_layer *c = arg;
    struct evbuffer *in = bufferevent_get_input(below);
    size_t len = evbuffer_get_length(in);
    if (len == 0)
        return;
    size_t n = len < SC_HTTP_HEAD_MAX_BYTES ? len : SC_HTTP_HEAD_MAX_BYTES;
    const uint8_t *buf = evbuffer_pullup(in, (ev_ssize_t)n);
    if (!buf) {
        fail(c, SC_ENOMEM, "out of memory");
        return;
    }
    if (sc_http_head_find(buf, n, &c->scan) == 0)
        return;
    struct sc_http_reply rep;
    memset(&rep, 0, sizeof rep);
    int r = sc_http_connect_parse(buf, n, &rep);
    if (r == 0)
        return;
    if (r < 0) {
        char why[96];
        if (r == SC_EAUTH)
            snprintf(why, sizeof why, "proxy wants authentication (407)");
        else if (r == SC_ECONNECT)
            snprintf(why, sizeof why, "proxy answered %d", rep.status);
        else
            snprintf(why, sizeof why, "%s", rep.why ? rep.why : sc_strerror(r));
        /* The proxy's errors, whichever kind of proxy (secirc/error.h). */
        fail(c, r == SC_EAUTH ? SC_EPROXYAUTH : r == SC_ECONNECT ? SC_EPROXY : r, why);
        return;
    }
    evbuffer_drain(in, rep.head_len);
    finish(c);
    sc_layer_ready(c->stream, below); /* the next layer starts on it now */
}

static void on_event(struct bufferevent *below, short what, void *arg)
{
    (void)below;
    struct connect_layer *c = arg;
    fail(c, (what & BEV_EVENT_EOF) ? SC_ECONNRESET : SC_EIO,
         (what & BEV_EVENT_EOF) ? "proxy closed the connection" : "error talking to the proxy");
}

static int connect_client_start(struct sc_stream *s, const void *params, struct bufferevent *below,
                                void **state)
{
    const struct sc_http_connect_params *p = params;
    if (!p)
        return SC_EINVAL;
    char request[1024];
    size_t n = 0;
    int err = sc_http_connect_request(p->host, p->port, p->user, p->password, request,
                                      sizeof request, &n);
    if (err) {
        OPENSSL_cleanse(request, sizeof request);
        return err;
    }
    struct connect_layer *c = calloc(1, sizeof *c);
    if (!c) {
        OPENSSL_cleanse(request, sizeof request);
        return SC_ENOMEM;
    }
    c->stream = s;
    c->below = below;
    *state = c;
    bufferevent_getwatermark(below, EV_READ, &c->read_low, &c->read_high);
    bufferevent_setwatermark(below, EV_READ, 0, SC_HTTP_HEAD_MAX_BYTES);
    bufferevent_setcb(below, on_read, NULL, on_event, c);
    bufferevent_enable(below, EV_READ | EV_WRITE);
    bufferevent_write(below, request, n);
    OPENSSL_cleanse(request, sizeof request); /* it may carry credentials */
    return 0;
}

static void connect_destroy(void *state)
{
    struct connect_layer *c = state;
    if (!c->done)
        finish(c);
    free(c);
}

const struct sc_layer_ops sc_layer_http_connect = {
    .name = "http_connect",
    .client_start = connect_client_start,
    .server_start = NULL,
    .shutdown = NULL,
    .destroy = connect_destroy,
    .query = NULL,
};

int sc_http_proxy_parse(const char *url, struct sc_http_proxy *out)
{
    memset(out, 0, sizeof *out);
    struct evhttp_uri *u = url ? evhttp_uri_parse_with_flags(url, 0) : NULL;
    if (!u)
        return SC_EINVAL;
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    const char *path = evhttp_uri_get_path(u), *info = evhttp_uri_get_userinfo(u);
    int port = evhttp_uri_get_port(u);
    bool ok = scheme && strcasecmp(scheme, "http") == 0 && host && host[0] && port > 0 &&
              port <= 65535 && !evhttp_uri_get_query(u) && !evhttp_uri_get_fragment(u) &&
              (!path || !path[0] || strcmp(path, "/") == 0);
    if (ok) {
        /* evhttp keeps an IPv6 literal's brackets; a dial wants it bare */
        size_t n = strlen(host);
        if (host[0] == '[' && n > 2 && host[n - 1] == ']')
            ok = (size_t)snprintf(out->host, sizeof out->host, "%.*s", (int)(n - 2), host + 1) < sizeof out->host;
        else
            ok = (size_t)snprintf(out->host, sizeof out->host, "%s", host) < sizeof out->host;
        out->port = (uint16_t)port;
    }
    if (ok && info) {
        const char *colon = strchr(info, ':');
        size_t ulen = colon ? (size_t)(colon - info) : strlen(info);
        ok = ulen > 0 && ulen < sizeof out->user &&
             strlen(colon ? colon + 1 : "") < sizeof out->password;
        if (ok) {
            memcpy(out->user, info, ulen);
            snprintf(out->password, sizeof out->password, "%s", colon ? colon + 1 : "");
            out->has_user = true;
        }
    }
    evhttp_uri_free(u);
    if (!ok) {
        OPENSSL_cleanse(out, sizeof *out);
        return SC_EINVAL;
    }
    return 0;
}
