/* transport/tcp.c — the bottom layer: listening sockets, accepted socket
 * bufferevents and socket tuning. Never reads or writes payload bytes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "transport/transport.h"
#include "util/log.h"
#include "util/time.h"

struct sc_tcp_listener {
    struct evconnlistener *lev;
    struct event *resume; /* re-enables accepting after EMFILE */
    sc_accept_cb cb;
    void *arg;
    uint16_t port;
    struct sc_log_ratelimit rl;
};

void sc_tcp_tune(int fd)
{
    if (fd < 0)
        return;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    int idle = 60, intvl = 10, cnt = 6;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

void sc_sockaddr_format(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(out, outlen, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(out, outlen, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(out, outlen, "unknown");
    }
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct sc_tcp_listener *l = arg;
    sc_tcp_tune(fd);
    struct bufferevent *bev =
        bufferevent_socket_new(evconnlistener_get_base(lev), fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    l->cb(bev, sa, (socklen_t)salen, l->arg);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_tcp_listener *l = arg;
    evconnlistener_enable(l->lev);
}

/* Out of descriptors: a level-triggered listener would spin, so pause
 * accepting for a moment instead. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    struct sc_tcp_listener *l = arg;
    int e = EVUTIL_SOCKET_ERROR();
    long long sup = sc_log_ratelimit_pass(&l->rl, sc_mono_ms());
    if (sup >= 0)
        sc_log(SC_LOG_WARN, "tcp.accept_error", "port=%u error=\"%s\" suppressed=%lld", l->port,
               evutil_socket_error_to_string(e), sup);
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        evconnlistener_disable(lev);
        struct timeval tv = {0, 100 * 1000};
        evtimer_add(l->resume, &tv);
    }
}

int sc_tcp_listener_new(struct event_base *base, const char *addr, uint16_t port, int backlog,
                        sc_accept_cb cb, void *arg, struct sc_tcp_listener **out)
{
    *out = NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sslen;
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        sslen = sizeof *in;
    } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        sslen = sizeof *in6;
    } else {
        return SC_EINVAL;
    }
    struct sc_tcp_listener *l = calloc(1, sizeof *l);
    if (!l)
        return SC_ENOMEM;
    l->cb = cb;
    l->arg = arg;
    l->rl = (struct sc_log_ratelimit)SC_LOG_RATELIMIT_INIT(1000);
    l->resume = evtimer_new(base, on_resume, l);
    l->lev = evconnlistener_new_bind(base, on_accept, l,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                         LEV_OPT_CLOSE_ON_EXEC,
                                     backlog, (struct sockaddr *)&ss, (int)sslen);
    if (!l->lev || !l->resume) {
        int e = errno;
        sc_tcp_listener_free(l);
        return e == EADDRINUSE ? SC_EEXIST : SC_EIO;
    }
    evconnlistener_set_error_cb(l->lev, on_accept_error);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(evconnlistener_get_fd(l->lev), (struct sockaddr *)&bound, &blen) == 0)
        l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    *out = l;
    return 0;
}

uint16_t sc_tcp_listener_port(const struct sc_tcp_listener *l) { return l->port; }

void sc_tcp_listener_free(struct sc_tcp_listener *l)
{
    if (!l)
        return;
    if (l->lev)
        evconnlistener_free(l->lev);
    if (l->resume)
        event_free(l->resume);
    free(l);
}
