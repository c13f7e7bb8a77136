/* transport/closer.c — the last moments of a connection: write what is
 * queued, FIN, discard what the peer still sends until its FIN or a
 * deadline, then close; or, silently, only discard until the deadline.
 * Input is always drained before close(), so no close ever sends a reset.
 * Never delivers a byte to anyone. */
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "transport/transport.h"
#include "util/time.h"

/* Reads at most this much per wakeup while discarding. */
#define DRAIN_CHUNK_BYTES 16384
/* recv() calls in the final drain before close(): bounded even if the peer
 * keeps sending. */
#define FINAL_DRAIN_READS 64
/* Pieces of queued output handed to the kernel when a close is cut short. */
#define FINAL_WRITE_IOVECS 8

struct sc_closer {
    struct sc_closer *prev, *next; /* every closer still lingering */
    struct event_base *base;
    struct bufferevent *bev;
    struct event *timer;
    bool silent;
    bool fin_sent;
    bool peer_fin; /* the peer's FIN came while ours was still queued */
    sc_closer_cb done;
    void *arg;
};

/* Lingering closes belong to no one; this list lets a program end those of
 * its event base before it frees the base (sc_closers_finish_all). */
static struct sc_closer *lingering;
static pthread_mutex_t lingering_lock = PTHREAD_MUTEX_INITIALIZER;

static void remember(struct sc_closer *c)
{
    pthread_mutex_lock(&lingering_lock);
    c->next = lingering;
    if (lingering)
        lingering->prev = c;
    lingering = c;
    pthread_mutex_unlock(&lingering_lock);
}

static void forget(struct sc_closer *c)
{
    pthread_mutex_lock(&lingering_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        lingering = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&lingering_lock);
}

static void drain_socket(int fd)
{
    char buf[4096];
    for (int i = 0; i < FINAL_DRAIN_READS; i++)
        if (recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0)
            break;
}

/* A graceful close ended early (the program exits) still hands the kernel
 * what it queued, as far as the socket takes it without blocking: under a
 * layer a link's CLOSE may be waiting here. (The bufferevent's output
 * cannot be drained by us, so it is read in place; it is freed next.) */
static void write_queued(struct bufferevent *bev, int fd)
{
    struct evbuffer_iovec vec[FINAL_WRITE_IOVECS];
    int n = evbuffer_peek(bufferevent_get_output(bev), -1, NULL, vec, FINAL_WRITE_IOVECS);
    if (n <= 0)
        return;
    struct iovec iov[FINAL_WRITE_IOVECS];
    size_t count = (size_t)n < FINAL_WRITE_IOVECS ? (size_t)n : FINAL_WRITE_IOVECS;
    for (size_t i = 0; i < count; i++) {
        iov[i].iov_base = vec[i].iov_base;
        iov[i].iov_len = vec[i].iov_len;
    }
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = count};
    (void)sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void sc_closer_finish(struct sc_closer *c)
{
    forget(c);
    int fd = bufferevent_getfd(c->bev);
    if (fd >= 0 && !c->silent)
        write_queued(c->bev, fd);
    if (fd >= 0)
        drain_socket(fd);
    sc_bev_free_now(c->bev); /* a FIN, as nothing is left unread */
    event_free(c->timer);
    if (c->done)
        c->done(c, c->arg);
    free(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void send_fin(struct sc_closer *c)
{
    int fd = bufferevent_getfd(c->bev);
    if (!c->fin_sent && fd >= 0)
        (void)shutdown(fd, SHUT_WR);
    c->fin_sent = true;
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct sc_closer *c = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    send_fin(c);
    if (c->peer_fin)
        sc_closer_finish(c);
}

/* The peer's FIN ends a graceful close only once what we queued is out
 * (a layer's bytes, e.g. a CLOSE frame, may still be waiting here). */
static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct sc_closer *c = arg;
    if (what == (BEV_EVENT_READING | BEV_EVENT_EOF) && !c->silent &&
        evbuffer_get_length(bufferevent_get_output(bev)) != 0) {
        c->peer_fin = true;
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        sc_closer_finish(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sc_closer_finish(arg);
}

struct sc_closer *sc_closer_start(struct bufferevent *bev, bool silent, uint64_t until_ms,
                                  sc_closer_cb done, void *arg)
{
    struct sc_closer *c = calloc(1, sizeof *c);
    struct event *timer = c ? evtimer_new(bufferevent_get_base(bev), on_timer, c) : NULL;
    if (!timer) {
        free(c);
        sc_bev_free_now(bev); /* out of memory: close at once */
        return NULL;
    }
    c->base = bufferevent_get_base(bev);
    c->bev = bev;
    c->timer = timer;
    c->silent = silent;
    c->done = done;
    c->arg = arg;
    bufferevent_setwatermark(bev, EV_READ, 0, DRAIN_CHUNK_BYTES);
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    bufferevent_setcb(bev, on_read, silent ? NULL : on_write, on_event, c);
    on_read(bev, c);
    uint64_t now = sc_mono_ms();
    if (bufferevent_getfd(bev) < 0)
        until_ms = now; /* not a socket: nothing to wait for */
    remember(c);
    if (until_ms <= now && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        sc_closer_finish(c); /* nothing to wait for: close now */
        return NULL;
    }
    struct timeval tv = sc_ms_to_tv(until_ms > now ? until_ms - now : 0);
    evtimer_add(timer, &tv);
    if (silent) {
        bufferevent_disable(bev, EV_WRITE);
        bufferevent_enable(bev, EV_READ);
    } else {
        bufferevent_enable(bev, EV_READ | EV_WRITE);
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            send_fin(c);
    }
    return c;
}

void sc_closers_finish_all(struct event_base *base)
{
    /* One non-blocking turn of the loop first (the loop has ended: this
     * is teardown): a layer's bufferevent freed in the last turn may still
     * have a deferred callback queued, which holds a reference on it (and
     * on the level below); event_base_free() would drop that callback
     * without releasing the reference. */
    event_base_loop(base, EVLOOP_NONBLOCK);
    for (;;) {
        pthread_mutex_lock(&lingering_lock);
        struct sc_closer *c = lingering;
        while (c && c->base != base)
            c = c->next;
        pthread_mutex_unlock(&lingering_lock);
        if (!c)
            return;
        sc_closer_finish(c);
    }
}
