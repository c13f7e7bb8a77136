/* transport/tcp.c — the bottom layer: listening sockets, accepted socket
 * bufferevents and socket tuning. Never reads or writes payload bytes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "secirc/limits.h"
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
    int idle = SC_TCP_KEEPALIVE_IDLE_S, intvl = SC_TCP_KEEPALIVE_INTERVAL_S,
        cnt = SC_TCP_KEEPALIVE_COUNT, lowat = SC_TCP_NOTSENT_LOWAT_BYTES;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    /* Epoll reports writable only while less than this is unsent, so the
     * kernel never holds megabytes in front of a PONG. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
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

void sc_bev_free_now(struct bufferevent *bev)
{
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0) {
        bufferevent_setfd(bev, -1);
        evutil_closesocket(fd);
    }
    bufferevent_free(bev);
}

void sc_sockaddr_unmap(const struct sockaddr *in, struct sockaddr_storage *out, socklen_t *outlen)
{
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)in;
    memset(out, 0, sizeof *out);
    if (in->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)out;
        v4->sin_family = AF_INET;
        v4->sin_port = in6->sin6_port;
        memcpy(&v4->sin_addr, &in6->sin6_addr.s6_addr[12], 4);
        *outlen = sizeof *v4;
    } else if (in->sa_family == AF_INET6) {
        memcpy(out, in, sizeof *in6);
        *outlen = sizeof *in6;
    } else if (in->sa_family == AF_INET) {
        memcpy(out, in, sizeof(struct sockaddr_in));
        *outlen = sizeof(struct sockaddr_in);
    } else {
        *outlen = 0;
    }
}

/* Largest read or write this layer does in one system call. */
#define TCP_IO_CHUNK_BYTES (256u * 1024u)
/* libevent 2.1's cap on one evbuffer_read() (EVBUFFER_MAX_READ). A read
 * that did not reach it emptied the socket: nothing more to take. */
#define LIBEVENT_READ_CAP_BYTES 4096u

/* Input-buffer callback: libevent has just read (at most 4 KiB); read what
 * else is already waiting in the socket, up to the read high-water mark.
 * Only bytes FIONREAD reports are read, so EOF and errors stay libevent's
 * to find. The guard stops the callback our own commit triggers.
 * This read-ahead can go once Debian ships libevent 2.2, whose
 * evbuffer_set_max_read() lifts the 4 KiB cap (EVBUFFER_MAX_READ_DEFAULT). */
static void on_input_grew(struct evbuffer *input, const struct evbuffer_cb_info *info, void *arg)
{
    static _Thread_local bool reading;
    struct bufferevent *bev = arg;
    if (info->n_added < LIBEVENT_READ_CAP_BYTES || reading)
        return;
    int fd = bufferevent_getfd(bev);
    int waiting = 0;
    if (fd < 0 || ioctl(fd, FIONREAD, &waiting) != 0 || waiting <= 0)
        return;
    size_t want = (size_t)waiting < TCP_IO_CHUNK_BYTES ? (size_t)waiting : TCP_IO_CHUNK_BYTES;
    size_t high = 0, have = evbuffer_get_length(input);
    if (bufferevent_getwatermark(bev, EV_READ, NULL, &high) == 0 && high) {
        if (have >= high)
            return;
        if (want > high - have)
            want = high - have;
    }
    struct evbuffer_iovec vec[2];
    int n = evbuffer_reserve_space(input, (ev_ssize_t)want, vec, 2);
    if (n <= 0)
        return;
    struct iovec iov[2];
    for (int i = 0; i < n; i++) {
        size_t len = vec[i].iov_len < want ? vec[i].iov_len : want;
        iov[i].iov_base = vec[i].iov_base;
        iov[i].iov_len = len;
        want -= len;
    }
    ssize_t got = readv(fd, iov, n);
    if (got <= 0) {
        evbuffer_commit_space(input, vec, 0);
        return;
    }
    size_t left = (size_t)got;
    for (int i = 0; i < n; i++) {
        vec[i].iov_len = left < iov[i].iov_len ? left : iov[i].iov_len;
        left -= vec[i].iov_len;
    }
    reading = true;
    evbuffer_commit_space(input, vec, n);
    reading = false;
}

void sc_tcp_bev_setup(struct bufferevent *bev)
{
    bufferevent_set_max_single_write(bev, TCP_IO_CHUNK_BYTES);
    evbuffer_add_cb(bufferevent_get_input(bev), on_input_grew, bev);
}

struct bufferevent *sc_tcp_bev_new(struct event_base *base, int fd)
{
    sc_tcp_tune(fd);
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return NULL;
    }
    sc_tcp_bev_setup(bev);
    return bev;
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct sc_tcp_listener *l = arg;
    struct sockaddr_storage peer;
    socklen_t peer_len = 0;
    sc_sockaddr_unmap(sa, &peer, &peer_len);
    (void)salen;
    l->cb(evconnlistener_get_base(lev), fd, (const struct sockaddr *)&peer, peer_len, l->arg);
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
        struct timeval tv = sc_ms_to_tv(SC_ACCEPT_PAUSE_MS);
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
        return e ? sc_translate_sys_error(e) : SC_EIO;
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
