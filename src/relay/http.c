/* relay/http.c — the status server: GET /status, /peers and /metrics over
 * evhttp, bounded head and body sizes, an idle timeout, one request per
 * connection. Answers from what relay/daemon.h offers, read in one loop
 * turn; never changes the daemon, never echoes request bytes back, and on
 * a loopback address answers only requests that name a loopback host. */
#include "relay/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "relay/daemon.h"
#include "relay/metrics.h"
#include "util/hex.h"
#include "util/log.h"

struct sc_http {
    struct sc_daemon *d;
    struct evhttp *http;
    uint16_t port;
    bool loopback; /* bound to a loopback address: DNS rebinding is refused */
};

#define ALL_METHODS                                                                         \
    (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)

/* evhttp names no 403. */
#define STATUS_FORBIDDEN 403

static const char content_json[] = "application/json";
static const char content_metrics[] = "text/plain; version=0.0.4; charset=utf-8";
static const char content_text[] = "text/plain; charset=utf-8";

/* ---- addresses -------------------------------------------------------------------------------- */

static bool ipv4_is_loopback(const struct in_addr *a)
{
    return (ntohl(a->s_addr) >> 24) == 127u;
}

static bool ipv6_is_loopback(const struct in6_addr *a)
{
    if (IN6_IS_ADDR_LOOPBACK(a))
        return true;
    if (!IN6_IS_ADDR_V4MAPPED(a))
        return false;
    struct in_addr v4;
    memcpy(&v4, &a->s6_addr[12], sizeof v4);
    return ipv4_is_loopback(&v4);
}

/* 1 for a loopback literal, 0 for another literal, -1 for no literal. */
static int literal_is_loopback(const char *s)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, s, &v4) == 1)
        return ipv4_is_loopback(&v4);
    if (inet_pton(AF_INET6, s, &v6) == 1)
        return ipv6_is_loopback(&v6);
    return -1;
}

/* A Host header a browser can only send for a loopback server: "localhost"
 * or a loopback literal, with or without a port. Anything else on a
 * loopback server is a DNS rebinding attempt (a page of some site whose
 * name now points to 127.0.0.1). */
static bool host_is_loopback(const char *host)
{
    char name[64];
    size_t len = strlen(host);
    const char *end;
    if (host[0] == '[') {
        end = strchr(host, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return false;
        host++;
    } else {
        end = strchr(host, ':');
        if (end == NULL)
            end = host + len;
        else if (strchr(end + 1, ':') != NULL)
            return false;
    }
    size_t n = (size_t)(end - host);
    if (n == 0 || n >= sizeof name)
        return false;
    memcpy(name, host, n);
    name[n] = '\0';
    return strcasecmp(name, "localhost") == 0 || literal_is_loopback(name) == 1;
}

/* ---- responses -------------------------------------------------------------------------------- */

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    /* Failures here leave a header out; the reply still goes. */
    (void)evhttp_add_header(h, "Content-Type", type);
    (void)evhttp_add_header(h, "Cache-Control", "no-store");
    (void)evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    (void)evhttp_add_header(h, "Connection", "close");
    evhttp_send_reply(req, code, reason, NULL);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *body = evhttp_request_get_output_buffer(req);
    (void)evbuffer_drain(body, evbuffer_get_length(body));
    (void)evbuffer_add_printf(body, "%s\n", text);
    reply(req, code, reason, content_text);
}

static int dump_to_evbuffer(const char *buf, size_t size, void *arg)
{
    return evbuffer_add(arg, buf, size) == 0 ? 0 : -1;
}

/* A new reference is consumed. */
static void reply_json(struct evhttp_request *req, json_t *value)
{
    struct evbuffer *body = evhttp_request_get_output_buffer(req);
    int r = value != NULL ? json_dump_callback(value, dump_to_evbuffer, body, JSON_COMPACT) : -1;
    json_decref(value);
    if (r != 0 || evbuffer_add(body, "\n", 1) != 0) {
        reply_text(req, HTTP_INTERNAL, "Internal Server Error", "out of memory");
        return;
    }
    reply(req, HTTP_OK, "OK", content_json);
}

/* ---- /metrics --------------------------------------------------------------------------------- */

static int collect(struct sc_daemon *d, struct sc_metrics_snapshot *s)
{
    memset(s, 0, sizeof *s);
    struct sc_manager *m = sc_daemon_manager(d);
    const struct sc_relay_config *cfg = sc_daemon_config(d);

    size_t n = sc_manager_paths(m, NULL, 0);
    struct sc_path_info *info = NULL;
    if (n > 0 && (info = calloc(n, sizeof *info)) == NULL)
        return SC_ENOMEM;
    size_t got = sc_manager_paths(m, info, n);
    for (size_t i = 0; i < got && i < n; i++) {
        unsigned st = (unsigned)info[i].state, t = (unsigned)info[i].type;
        if (st < SC_METRICS_PATH_STATES && t < SC_METRICS_PATH_TYPES)
            s->paths[st][t]++;
        s->reconnects += info[i].reconnects;
    }
    free(info);

    json_t *status = sc_daemon_status_json(d);
    json_int_t up = json_integer_value(json_object_get(status, "uptime_s"));
    s->uptime_s = up > 0 ? (uint64_t)up : 0;
    json_decref(status);

    sc_hex_encode(sc_manager_relay_id(m), SC_RELAY_ID_BYTES, s->relay_id_hex);
    s->min_connections = cfg->manager.min_connections;
    s->max_connections = cfg->manager.max_connections;
    sc_manager_get_status(m, &s->status);
    sc_manager_listener_stats(m, &s->listener);
    sc_daemon_get_metrics(d, &s->daemon);
    memcpy(s->rtt_bounds_s, sc_daemon_rtt_bounds_s, sizeof s->rtt_bounds_s);
    return 0;
}

static void reply_metrics(struct evhttp_request *req, struct sc_daemon *d)
{
    struct sc_metrics_snapshot *s = malloc(sizeof *s);
    struct evbuffer *body = evhttp_request_get_output_buffer(req);
    int r = s != NULL ? collect(d, s) : SC_ENOMEM;
    if (r == 0)
        r = sc_metrics_format(s, body);
    free(s);
    if (r != 0) {
        reply_text(req, HTTP_INTERNAL, "Internal Server Error", "out of memory");
        return;
    }
    reply(req, HTTP_OK, "OK", content_metrics);
}

/* ---- dispatch --------------------------------------------------------------------------------- */

enum endpoint { EP_NONE, EP_STATUS, EP_PEERS, EP_METRICS };

static enum endpoint endpoint_of(struct evhttp_request *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL)
        return EP_NONE;
    if (strcmp(path, "/status") == 0)
        return EP_STATUS;
    if (strcmp(path, "/peers") == 0)
        return EP_PEERS;
    if (strcmp(path, "/metrics") == 0)
        return EP_METRICS;
    return EP_NONE;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct sc_http *h = arg;
    const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    if (h->loopback && host != NULL && !host_is_loopback(host)) {
        reply_text(req, STATUS_FORBIDDEN, "Forbidden",
                   "this server answers only requests for a loopback host");
        return;
    }
    enum endpoint ep = endpoint_of(req);
    if (ep == EP_NONE) {
        reply_text(req, HTTP_NOTFOUND, "Not Found", "not found: try /status, /peers or /metrics");
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        (void)evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
        reply_text(req, HTTP_BADMETHOD, "Method Not Allowed", "only GET is allowed");
        return;
    }
    switch (ep) {
    case EP_STATUS: {
        /* Not our onion address: whoever reads this over the network could
         * tie it to this host's address. The control socket shows it. */
        json_t *status = sc_daemon_status_json(h->d);
        json_object_del(json_object_get(status, "tor"), "onion_address");
        reply_json(req, status);
        break;
    }
    case EP_PEERS:
        reply_json(req, sc_daemon_peers_json(h->d));
        break;
    case EP_METRICS:
        reply_metrics(req, h->d);
        break;
    case EP_NONE:
        break;
    }
}

/* ---- life cycle ------------------------------------------------------------------------------- */

struct sc_http *sc_http_new(struct sc_daemon *d, const char *bind, uint16_t port, char *err,
                            size_t errlen)
{
    int loopback = bind != NULL ? literal_is_loopback(bind) : -1;
    if (d == NULL || loopback < 0) {
        snprintf(err, errlen, "http: bind address must be an IPv4 or IPv6 literal, not '%s'",
                 bind != NULL ? bind : "(none)");
        return NULL;
    }
    struct sc_http *h = calloc(1, sizeof *h);
    if (h == NULL || (h->http = evhttp_new(sc_daemon_base(d))) == NULL) {
        snprintf(err, errlen, "http: out of memory");
        free(h);
        return NULL;
    }
    h->d = d;
    h->loopback = loopback == 1;
    evhttp_set_allowed_methods(h->http, ALL_METHODS); /* the others get our 405 */
    evhttp_set_max_headers_size(h->http, SC_HTTP_SERVER_MAX_HEADERS_BYTES);
    evhttp_set_max_body_size(h->http, SC_HTTP_SERVER_MAX_BODY_BYTES);
    evhttp_set_timeout(h->http, SC_HTTP_SERVER_TIMEOUT_S);
    evhttp_set_gencb(h->http, on_request, h);

    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(h->http, bind, port);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (sock == NULL ||
        getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) != 0) {
        int e = sc_translate_sys_error(errno);
        snprintf(err, errlen, "http: cannot listen on %s port %u: %s", bind, (unsigned)port,
                 sc_strerror(e != 0 ? e : SC_ESYS));
        sc_http_free(h);
        return NULL;
    }
    h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    sc_log(SC_LOG_INFO, "http.listening", "address=%s port=%u", bind, (unsigned)h->port);
    return h;
}

uint16_t sc_http_port(const struct sc_http *h)
{
    return h->port;
}

void sc_http_free(struct sc_http *h)
{
    if (h == NULL)
        return;
    if (h->http != NULL)
        evhttp_free(h->http);
    free(h);
}
