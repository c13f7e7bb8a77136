/* link/link_timers.c — the secure link's timers, one event per purpose,
 * armed and cleared only by hooks named after what happened (WireGuard's
 * timers.c): start, authenticated, closing, progress, finalized. Time-based
 * rekey needs no timer: it rides on the next frame after the interval. */
#include <stdlib.h>

#include <event2/event.h>

#include "link/link_internal.h"
#include "util/time.h"

static void arm(struct event *ev, uint64_t ms)
{
    struct timeval tv = sc_ms_to_tv(ms);
    evtimer_add(ev, &tv);
}

/* connection_timeout: the handshake (or the silence after a probe) is over. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_link *link = arg;
    switch (link->state) {
    case SC_LINK_HANDSHAKING:
    case SC_LINK_KEYED: {
        /* Under probe resistance a connection that never completed a
         * message 1 is a probe, whatever it sent. */
        bool probe = !link->cfg.initiator && link->cfg.probe_resistance && link->hs &&
                     link->hs->state == SC_HS_START;
        link_end(link, probe ? SC_REASON_PROBE_DROPPED : SC_REASON_TIMEOUT, false, END_NOW);
        break;
    }
    case SC_LINK_PROBE_DRAIN:
        link_finalize(link, true);
        break;
    default:
        break;
    }
}

/* Heartbeat tick: any authenticated frame since the last tick proves the
 * peer alive; ticks without one are misses. A PING goes out unless one is
 * still unanswered (it may wait behind the peer's bulk data). */
static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_link *link = arg;
    if (link->state != SC_LINK_AUTHENTICATED)
        return;
    if (link->heard) {
        link->heard = false;
        link->stats.heartbeats_missed = 0;
    } else if (++link->stats.heartbeats_missed >= link->cfg.heartbeat_miss_limit) {
        link_fail(link, SC_REASON_HEARTBEAT_TIMEOUT);
        return;
    }
    if (!link->ping_outstanding)
        link_send_ping(link);
}

/* Closing made no progress for SC_LINK_LINGER_MS (or hit its limit). */
static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    link_finalize(arg, true); /* drop what did not leave */
}

/* The peer's link-key certificate expired while the link was up. */
static void on_cert_expiry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_link *link = arg;
    if (link->state == SC_LINK_AUTHENTICATED)
        link_end(link, SC_REASON_CERT_EXPIRED, false, END_ORDERLY);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_link *link = arg;
    if (link->state == SC_LINK_CLOSING || link->state == SC_LINK_AWAIT_PEER_CLOSE)
        link_close_progress(link);
    else
        link_write_frames(link);
}

static void on_teardown(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    link_teardown(arg);
}

int link_timers_init(struct sc_link *link)
{
    struct link_timers *t = &link->t;
    /* The linger timer is made when closing starts, and the deadline is
     * freed at authentication: an idle link holds four events. */
    t->deadline = evtimer_new(link->base, on_deadline, link);
    t->heartbeat = event_new(link->base, -1, EV_PERSIST, on_heartbeat, link);
    t->cert = evtimer_new(link->base, on_cert_expiry, link);
    t->flush = event_new(link->base, -1, 0, on_flush, link);
    t->teardown = event_new(link->base, -1, 0, on_teardown, link);
    if (!t->deadline || !t->heartbeat || !t->cert || !t->flush || !t->teardown)
        return SC_ENOMEM;
    return 0;
}

void link_timers_free(struct sc_link *link)
{
    struct event **all[] = {&link->t.deadline, &link->t.heartbeat, &link->t.linger,
                            &link->t.cert,     &link->t.flush,     &link->t.teardown};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (*all[i])
            event_free(*all[i]);
        *all[i] = NULL;
    }
}

void link_timers_on_start(struct sc_link *link)
{
    uint64_t now = sc_mono_ms();
    arm(link->t.deadline, link->deadline_ms > now ? link->deadline_ms - now : 0);
}

void link_timers_on_authenticated(struct sc_link *link)
{
    event_free(link->t.deadline);
    link->t.deadline = NULL;
    if (link->heartbeat_ms)
        arm(link->t.heartbeat, link->heartbeat_ms);
    uint64_t now = sc_unix_s(), until = link->peer_cert_expiry + SC_CERT_CLOCK_SKEW_S;
    arm(link->t.cert, until > now ? (until - now) * 1000u : 0);
}

void link_timers_on_closing(struct sc_link *link)
{
    evtimer_del(link->t.heartbeat);
    evtimer_del(link->t.cert);
    if (link->t.deadline)
        evtimer_del(link->t.deadline);
    if (!link->t.linger)
        link->t.linger = evtimer_new(link->base, on_linger, link);
}

/* Restarts the no-progress timer, never past the close's absolute limit. */
void link_timers_on_progress(struct sc_link *link)
{
    if (!link->t.linger) { /* out of memory for a timer: no waiting either */
        link_finalize(link, true);
        return;
    }
    uint64_t now = sc_mono_ms();
    uint64_t left = link->close_deadline_ms > now ? link->close_deadline_ms - now : 0;
    arm(link->t.linger, left < SC_LINK_LINGER_MS ? left : SC_LINK_LINGER_MS);
}

void link_timers_on_finalized(struct sc_link *link)
{
    if (link->t.deadline)
        evtimer_del(link->t.deadline);
    if (link->t.linger)
        evtimer_del(link->t.linger);
    evtimer_del(link->t.heartbeat);
    evtimer_del(link->t.cert);
    event_del(link->t.flush);
    event_active(link->t.teardown, EV_TIMEOUT, 0);
}
