/* bench/bench_manager/broadcast.c — bench_manager broadcast SECONDS: a relay
 * alone in its process broadcasts 64-byte messages to 50 linked peers (50
 * managers in a second process, which dial it) as fast as back-pressure
 * allows; messages delivered per second are counted where they arrive. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "bench_manager/bench_manager.h"
#include "secirc/link.h"

struct bc_args {
    const struct sc_identity *relay_id;
    struct sc_identity *peer_ids[BC_PEERS];
    double seconds;
    uint16_t port;
};

struct bc_relay {
    const struct bc_args *a;
    struct event_base *base;
    struct sc_manager *m;
    struct event *tick_ev, *pump_ev;
    int fd;
    int phase; /* 0 linking, 1 settling, 2 warm-up, 3 window, 4 measured */
    double t_phase, win_t0, win_cpu0;
    uint64_t seq, broadcasts, copies, partial, win_broadcasts0, win_copies0, win_partial0;
    uint8_t payload[BC_SIZE];
};

/* As many broadcasts as the queues take, BC_BATCH per loop turn; after a
 * broadcast that a full queue cut short, a pause of BC_WAIT_US. A timer
 * (not event_active) resumes, so the loop serves the sockets in between. */
static void bc_pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bc_relay *r = arg;
    for (int i = 0; i < BC_BATCH; i++) {
        uint8_t id[SC_MESSAGE_ID_BYTES] = {0};
        r->seq++;
        memcpy(id, &r->seq, sizeof r->seq);
        int n = sc_manager_broadcast(r->m, id, 1, SC_RELAY_FLAG_BROADCAST, r->payload, BC_SIZE, NULL);
        if (n < 0)
            child_fail(r->fd, sc_strerror(n));
        r->broadcasts++;
        r->copies += (uint64_t)n;
        if (n < BC_PEERS) {
            r->partial++;
            struct timeval tv = {0, BC_WAIT_US};
            evtimer_add(r->pump_ev, &tv);
            return;
        }
    }
    struct timeval zero = {0, 0};
    evtimer_add(r->pump_ev, &zero);
}

static void bc_relay_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bc_relay *r = arg;
    double t = bench_now_s();
    switch (r->phase) {
    case 0:
        if (linked_peers(r->m) == BC_PEERS) {
            r->phase = 1;
            r->t_phase = t;
        } else if (t - r->t_phase > LINK_UP_S) {
            child_fail(r->fd, "the peers did not link up");
        }
        return;
    case 1: /* settled: start */
        if (t - r->t_phase < 0.5)
            return;
        r->phase = 2;
        r->t_phase = t;
        bc_pump(-1, 0, r);
        return;
    case 2:
        if (t - r->t_phase < WARMUP_S)
            return;
        r->phase = 3;
        r->win_t0 = t;
        r->win_cpu0 = bench_cpu_self_s();
        r->win_broadcasts0 = r->broadcasts;
        r->win_copies0 = r->copies;
        r->win_partial0 = r->partial;
        return;
    case 3: {
        if (t - r->win_t0 < r->a->seconds)
            return;
        r->phase = 4;
        double secs = t - r->win_t0, cpu = bench_cpu_self_s() - r->win_cpu0;
        double copies = (double)(r->copies - r->win_copies0);
        double bc = (double)(r->broadcasts - r->win_broadcasts0);
        emit(r->fd, json_pack("{s:f, s:f, s:f, s:f, s:I, s:i}", "sender_window_s", secs,
                              "copies_per_s", copies / secs, "broadcasts_per_s", bc / secs,
                              "sender_cpu_pct", 100.0 * cpu / secs, "partial_broadcasts",
                              (json_int_t)(r->partial - r->win_partial0), "linked",
                              (int)linked_peers(r->m)));
        return; /* and goes on sending until it is stopped */
    }
    default:
        return;
    }
}

static void bc_relay_main(void *arg, int fd)
{
    struct bc_relay r;
    memset(&r, 0, sizeof r);
    r.a = arg;
    r.fd = fd;
    r.base = child_base(fd);
    memset(r.payload, 'b', sizeof r.payload);
    struct sc_manager_config cfg;
    sc_manager_config_defaults(&cfg);
    cfg.listeners = &loopback;
    cfg.n_listeners = 1;
    cfg.min_connections = 0; /* the peers dial */
    open_caps(&cfg, BC_PEERS);
    r.m = start_manager(r.base, &cfg, r.a->relay_id, NULL, NULL, fd);
    r.tick_ev = event_new(r.base, -1, EV_PERSIST, bc_relay_tick, &r);
    r.pump_ev = evtimer_new(r.base, bc_pump, &r);
    struct timeval tick = {0, 10000};
    if (!r.tick_ev || !r.pump_ev || event_add(r.tick_ev, &tick) != 0)
        child_fail(fd, "out of memory");
    r.t_phase = bench_now_s();
    emit(fd, json_pack("{s:i}", "port", (int)sc_manager_listener_port(r.m, 0)));
    event_base_dispatch(r.base);
    child_fail(fd, "relay loop ended");
}

struct bc_rx;
struct bc_slot {
    struct bc_rx *rx;
    uint64_t got, win0;
};

struct bc_rx {
    const struct bc_args *a;
    struct event_base *base;
    struct sc_manager *m[BC_PEERS];
    struct bc_slot slot[BC_PEERS];
    struct event *tick_ev;
    int fd;
    int phase; /* 0 waiting for traffic, 1 warm-up, 2 window, 3 measured */
    uint64_t total, win0, wrong;
    double t_first, win_t0, win_cpu0, t_start;
};

static void bc_on_message(struct sc_manager *m, const uint8_t peer[SC_RELAY_ID_BYTES],
                          uint32_t path_id, const struct sc_relay_message *msg, void *arg)
{
    (void)m;
    (void)peer;
    (void)path_id;
    struct bc_slot *s = arg;
    struct bc_rx *rx = s->rx;
    if (msg->len != BC_SIZE) {
        rx->wrong++;
        return;
    }
    s->got++;
    rx->total++;
    if (rx->phase == 0) {
        rx->phase = 1;
        rx->t_first = bench_now_s();
    }
}

static void bc_rx_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bc_rx *rx = arg;
    double t = bench_now_s();
    if (rx->phase == 0 && t - rx->t_start > LINK_UP_S + 5)
        child_fail(rx->fd, "no broadcast arrived");
    if (rx->phase == 1 && t - rx->t_first >= WARMUP_S) {
        rx->phase = 2;
        rx->win_t0 = t;
        rx->win_cpu0 = bench_cpu_self_s();
        rx->win0 = rx->total;
        for (int i = 0; i < BC_PEERS; i++)
            rx->slot[i].win0 = rx->slot[i].got;
    } else if (rx->phase == 2 && t - rx->win_t0 >= rx->a->seconds) {
        rx->phase = 3;
        double secs = t - rx->win_t0, cpu = bench_cpu_self_s() - rx->win_cpu0;
        uint64_t lo = UINT64_MAX, hi = 0;
        for (int i = 0; i < BC_PEERS; i++) {
            uint64_t d = rx->slot[i].got - rx->slot[i].win0;
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        if (rx->wrong)
            child_fail(rx->fd, "a message of the wrong size arrived");
        emit(rx->fd, json_pack("{s:f, s:I, s:f, s:f, s:f, s:f}", "window_s", secs, "delivered",
                               (json_int_t)(rx->total - rx->win0), "delivered_per_s",
                               (double)(rx->total - rx->win0) / secs, "receiver_min_per_s",
                               (double)lo / secs, "receiver_max_per_s", (double)hi / secs,
                               "receivers_cpu_pct", 100.0 * cpu / secs));
    }
}

static void bc_rx_main(void *arg, int fd)
{
    struct bc_rx rx;
    memset(&rx, 0, sizeof rx);
    rx.a = arg;
    rx.fd = fd;
    rx.base = child_base(fd);
    rx.t_start = bench_now_s();
    static const struct sc_manager_callbacks cb = {.on_message = bc_on_message};
    struct sc_relay_spec spec = {.has_id = true, .type = SC_PATH_TCP, .host = "127.0.0.1",
                                 .port = rx.a->port, .priority = SC_PRIORITY_TRUSTED};
    memcpy(spec.id, sc_identity_relay_id(rx.a->relay_id), SC_RELAY_ID_BYTES);
    for (int i = 0; i < BC_PEERS; i++) {
        struct sc_manager_config cfg;
        sc_manager_config_defaults(&cfg);
        cfg.min_connections = 1; /* dial the relay; no listener */
        cfg.retry_delay_ms = 200;
        cfg.backoff_max_ms = 1000;
        cfg.reconnect_interval_ms = 500;
        rx.slot[i].rx = &rx;
        rx.m[i] = start_manager(rx.base, &cfg, rx.a->peer_ids[i], &cb, &rx.slot[i], fd);
        if (sc_manager_add_relay(rx.m[i], &spec, NULL) != 0)
            child_fail(fd, "add_relay");
    }
    rx.tick_ev = event_new(rx.base, -1, EV_PERSIST, bc_rx_tick, &rx);
    struct timeval tick = {0, 10000};
    if (!rx.tick_ev || event_add(rx.tick_ev, &tick) != 0)
        child_fail(fd, "out of memory");
    event_base_dispatch(rx.base);
    child_fail(fd, "receivers loop ended");
}

json_t *run_broadcast(double seconds)
{
    static struct bc_args a; /* static: the children's copies stay valid */
    memset(&a, 0, sizeof a);
    a.seconds = seconds;
    a.relay_id = identity_of(0x01, 0);
    for (int i = 0; i < BC_PEERS; i++)
        a.peer_ids[i] = identity_of(0x10, (uint32_t)i);
    double limit = LINK_UP_S + WARMUP_S + seconds + 30;
    struct child relay, rx;
    spawn(&relay, bc_relay_main, &a, limit);
    json_t *port = await_line(&relay, 10);
    json_t *out = NULL;
    if (!port) {
        fprintf(stderr, "bench_manager: broadcast: the relay did not start\n");
    } else {
        a.port = (uint16_t)json_integer_value(json_object_get(port, "port"));
        json_decref(port);
        spawn(&rx, bc_rx_main, &a, limit);
        fprintf(human, "broadcast: relay pid %d, receivers pid %d\n", (int)relay.pid, (int)rx.pid);
        json_t *sent = await_line(&relay, limit);
        json_t *got = sent ? await_line(&rx, limit) : NULL;
        if (sent && got) {
            out = json_pack("{s:i, s:I, s:f}", "peers", BC_PEERS, "size", (json_int_t)BC_SIZE,
                            "seconds", seconds);
            json_object_update(out, sent);
            json_object_update(out, got);
        } else {
            fprintf(stderr, "bench_manager: broadcast: no result\n");
        }
        json_decref(sent);
        json_decref(got);
    }
    kill_children();
    sc_identity_free((struct sc_identity *)a.relay_id);
    for (int i = 0; i < BC_PEERS; i++)
        sc_identity_free(a.peer_ids[i]);
    if (out)
        fprintf(human,
                "broadcast: %d peers, %u B: %.0f msg/s delivered (per receiver %.0f..%.0f), "
                "%.0f copies/s sent, %.0f broadcasts/s; cpu sender %.0f%% receivers %.0f%%\n",
                BC_PEERS, BC_SIZE, json_real_value(json_object_get(out, "delivered_per_s")),
                json_real_value(json_object_get(out, "receiver_min_per_s")),
                json_real_value(json_object_get(out, "receiver_max_per_s")),
                json_real_value(json_object_get(out, "copies_per_s")),
                json_real_value(json_object_get(out, "broadcasts_per_s")),
                json_real_value(json_object_get(out, "sender_cpu_pct")),
                json_real_value(json_object_get(out, "receivers_cpu_pct")));
    return out;
}
