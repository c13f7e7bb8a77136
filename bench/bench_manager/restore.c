/* bench/bench_manager/restore.c — bench_manager restore ROUNDS: how long a
 * relay with min_connections 3 and 6 candidates (each in its own process)
 * takes to have 3 peers linked again after one linked peer gets SIGKILL,
 * or SIGSTOP (frozen: only heartbeats notice). Fresh processes per round. */
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

struct rs_args {
    struct sc_identity *relay_id, *peer_ids[RS_PEERS];
    uint16_t ports[RS_PEERS];
    pid_t pids[RS_PEERS];
    int sig;               /* SIGKILL or SIGSTOP */
    unsigned settle_ms;    /* linked this long before the kill */
    int index;             /* restore peer: which one */
};

static void rs_timers(struct sc_manager_config *cfg)
{
    cfg->heartbeat_interval_ms = RS_HEARTBEAT_MS;
    cfg->heartbeat_miss_limit = RS_MISS_LIMIT;
    cfg->connection_timeout_ms = RS_TIMEOUT_MS;
    cfg->reconnect_interval_ms = RS_RETRY_MS;
    cfg->retry_delay_ms = RS_RETRY_MS;
    cfg->backoff_max_ms = 8 * RS_RETRY_MS;
}

/* A candidate: a manager with a listener, dialing nobody. */
static void rs_peer_main(void *arg, int fd)
{
    const struct rs_args *a = arg;
    struct event_base *base = child_base(fd);
    struct sc_manager_config cfg;
    sc_manager_config_defaults(&cfg);
    cfg.listeners = &loopback;
    cfg.n_listeners = 1;
    cfg.min_connections = 0;
    rs_timers(&cfg);
    struct sc_manager *m = start_manager(base, &cfg, a->peer_ids[a->index], NULL, NULL, fd);
    emit(fd, json_pack("{s:i}", "port", (int)sc_manager_listener_port(m, 0)));
    event_base_dispatch(base);
    child_fail(fd, "peer loop ended");
}

struct rs_relay {
    const struct rs_args *a;
    struct event_base *base;
    struct sc_manager *m;
    struct event *tick_ev, *check_ev;
    int fd;
    int phase; /* 0 linking, 1 settling, 2 killed: waiting for detection, 3 detected */
    int victim;
    double t_phase, t_kill, t_detect, t_candidate;
    enum sc_reason detect_reason;
};

static int rs_index_of(const struct rs_args *a, const uint8_t id[SC_RELAY_ID_BYTES])
{
    for (int i = 0; i < RS_PEERS; i++)
        if (memcmp(sc_identity_relay_id(a->peer_ids[i]), id, SC_RELAY_ID_BYTES) == 0)
            return i;
    return -1;
}

static void rs_on_path_state(struct sc_manager *m, const struct sc_path_info *info,
                             enum sc_path_state old, enum sc_reason reason, void *arg)
{
    (void)m;
    struct rs_relay *r = arg;
    int who = info->has_id ? rs_index_of(r->a, info->relay_id) : -1;
    if (r->phase == 2 && who == r->victim && old == SC_PATH_AUTHENTICATED) {
        r->phase = 3;
        r->t_detect = bench_now_s();
        r->detect_reason = reason;
    } else if (r->phase == 3 && who != r->victim && info->state == SC_PATH_AUTHENTICATED) {
        /* The peer is counted once this callback has returned. */
        r->t_candidate = bench_now_s();
        event_active(r->check_ev, EV_TIMEOUT, 0);
    }
}

static void rs_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rs_relay *r = arg;
    if (r->phase != 3 || linked_peers(r->m) < RS_MIN)
        return;
    emit(r->fd, json_pack("{s:s, s:f, s:f, s:f, s:s, s:i}", "signal",
                          r->a->sig == SIGKILL ? "KILL" : "STOP", "detect_ms",
                          1000 * (r->t_detect - r->t_kill), "restore_ms",
                          1000 * (r->t_candidate - r->t_kill), "redial_ms",
                          1000 * (r->t_candidate - r->t_detect), "reason",
                          sc_reason_name(r->detect_reason), "settle_ms", (int)r->a->settle_ms));
    event_base_loopbreak(r->base);
}

static void rs_relay_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rs_relay *r = arg;
    double t = bench_now_s();
    uint32_t linked = linked_peers(r->m);
    if (r->phase == 0 && linked == RS_MIN) {
        r->phase = 1;
        r->t_phase = t;
    } else if (r->phase == 0 && t - r->t_phase > LINK_UP_S) {
        child_fail(r->fd, "min_connections never reached");
    } else if (r->phase == 1 && linked != RS_MIN) {
        child_fail(r->fd, "the links did not stay up");
    } else if (r->phase == 1 && t - r->t_phase >= r->a->settle_ms / 1000.0) {
        struct sc_path_info paths[2 * RS_PEERS];
        size_t n = sc_manager_paths(r->m, paths, 2 * RS_PEERS);
        r->victim = -1;
        for (size_t i = 0; i < n && i < 2 * RS_PEERS && r->victim < 0; i++)
            if (paths[i].state == SC_PATH_AUTHENTICATED && paths[i].has_id)
                r->victim = rs_index_of(r->a, paths[i].relay_id);
        if (r->victim < 0)
            child_fail(r->fd, "no linked peer to kill");
        r->phase = 2;
        r->t_kill = bench_now_s();
        if (kill(r->a->pids[r->victim], r->a->sig) != 0)
            child_fail(r->fd, "kill failed");
    } else if (r->phase >= 2 && t - r->t_kill > RS_LIMIT_S) {
        child_fail(r->fd, r->phase == 2 ? "the dead peer was never noticed"
                                        : "min_connections was not restored");
    }
}

static void rs_relay_main(void *arg, int fd)
{
    struct rs_relay r;
    memset(&r, 0, sizeof r);
    r.a = arg;
    r.fd = fd;
    r.base = child_base(fd);
    struct sc_manager_config cfg;
    sc_manager_config_defaults(&cfg);
    cfg.min_connections = RS_MIN; /* no listener: it dials */
    rs_timers(&cfg);
    static const struct sc_manager_callbacks cb = {.on_path_state = rs_on_path_state};
    r.m = start_manager(r.base, &cfg, r.a->relay_id, &cb, &r, fd);
    for (int i = 0; i < RS_PEERS; i++) {
        struct sc_relay_spec spec = {.has_id = true, .type = SC_PATH_TCP, .host = "127.0.0.1",
                                     .port = r.a->ports[i], .priority = SC_PRIORITY_TRUSTED};
        memcpy(spec.id, sc_identity_relay_id(r.a->peer_ids[i]), SC_RELAY_ID_BYTES);
        if (sc_manager_add_relay(r.m, &spec, NULL) != 0)
            child_fail(fd, "add_relay");
    }
    r.tick_ev = event_new(r.base, -1, EV_PERSIST, rs_relay_tick, &r);
    r.check_ev = event_new(r.base, -1, 0, rs_check, &r);
    struct timeval tick = {0, 5000};
    if (!r.tick_ev || !r.check_ev || event_add(r.tick_ev, &tick) != 0)
        child_fail(fd, "out of memory");
    r.t_phase = bench_now_s();
    event_base_dispatch(r.base);
    _exit(0);
}

/* One round: fresh candidates and relay; one kill; the relay's report. */
static json_t *rs_round(struct rs_args *a)
{
    struct child peers[RS_PEERS], relay;
    json_t *out = NULL;
    int up = 0;
    for (int i = 0; i < RS_PEERS; i++) {
        a->index = i;
        spawn(&peers[i], rs_peer_main, a, 3600);
        a->pids[i] = peers[i].pid;
    }
    for (int i = 0; i < RS_PEERS; i++) {
        json_t *p = await_line(&peers[i], 10);
        if (p) {
            a->ports[i] = (uint16_t)json_integer_value(json_object_get(p, "port"));
            up++;
        }
        json_decref(p);
    }
    if (up == RS_PEERS) {
        spawn(&relay, rs_relay_main, a, LINK_UP_S + RS_LIMIT_S + 10);
        out = await_line(&relay, LINK_UP_S + RS_LIMIT_S + 10);
    } else {
        fprintf(stderr, "bench_manager: restore: a candidate did not start\n");
    }
    kill_children();
    for (int i = 0; i < RS_PEERS; i++)
        close(peers[i].fd);
    if (up == RS_PEERS)
        close(relay.fd);
    return out;
}

json_t *run_restore(long rounds)
{
    static struct rs_args a;
    memset(&a, 0, sizeof a);
    a.relay_id = identity_of(0x30, 0);
    for (int i = 0; i < RS_PEERS; i++)
        a.peer_ids[i] = identity_of(0x40, (uint32_t)i);
    json_t *out = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "candidates", RS_PEERS,
                            "min_connections", (int)RS_MIN, "heartbeat_interval_ms",
                            (int)RS_HEARTBEAT_MS, "heartbeat_miss_limit", (int)RS_MISS_LIMIT,
                            "connection_timeout_ms", (int)RS_TIMEOUT_MS, "retry_delay_ms",
                            (int)RS_RETRY_MS, "rounds", (int)rounds);
    static const int sigs[] = {SIGKILL, SIGSTOP};
    bool ok = true;
    for (size_t s = 0; s < 2 && ok; s++) {
        json_t *samples = json_array();
        double restore[64], detect[64];
        size_t n = 0;
        a.sig = sigs[s];
        for (long i = 0; i < rounds && ok; i++) {
            a.settle_ms = RS_SETTLE_MS + randombytes_uniform(1000); /* any heartbeat phase */
            json_t *o = rs_round(&a);
            if (!o) {
                ok = false;
                break;
            }
            restore[n] = json_real_value(json_object_get(o, "restore_ms"));
            detect[n++] = json_real_value(json_object_get(o, "detect_ms"));
            fprintf(human, "restore SIG%s round %ld: detected after %.1f ms (%s), %d peers again after %.1f ms\n",
                    s ? "STOP" : "KILL", i, detect[n - 1],
                    json_string_value(json_object_get(o, "reason")), (int)RS_MIN, restore[n - 1]);
            json_array_append_new(samples, o);
        }
        double mr = median(restore, n), md = median(detect, n);
        json_object_set_new(out, s ? "stop" : "kill",
                            json_pack("{s:f, s:f, s:o}", "restore_ms", mr, "detect_ms", md,
                                      "samples", samples));
        if (ok)
            fprintf(human, "restore SIG%s: median %.1f ms to %u peers again (detection %.1f ms), %ld rounds\n",
                    s ? "STOP" : "KILL", mr, RS_MIN, md, rounds);
    }
    sc_identity_free(a.relay_id);
    for (int i = 0; i < RS_PEERS; i++)
        sc_identity_free(a.peer_ids[i]);
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
}
