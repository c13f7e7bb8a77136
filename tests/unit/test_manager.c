/* test_manager.c — the connection manager with real TCP sockets on
 * 127.0.0.1: several managers in one process on one event base, intervals
 * in milliseconds. Priorities and limits, restoring the minimum, eviction
 * and busy, jittered backoff to FAILED and back, failover of queued
 * messages, broadcast, simultaneous dials, explain, and a 20-relay mesh that loses
 * and regains five relays. Every wait is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "manager/manager_internal.h"
#include "secirc/log.h"
#include "secirc/manager.h"
#include "util/time.h"

#define MAX_RELAYS 24
#define MAX_EVENTS 256

struct relay;

struct dial_event {
    uint32_t path_id;
    uint64_t at_ms;
};

struct relay {
    struct sc_identity *id;
    struct sc_manager *m;
    struct sc_manager_config cfg;
    uint16_t port;
    bool running;
    uint64_t received;
    uint8_t last_from[SC_RELAY_ID_BYTES];
    uint64_t undelivered;
    uint8_t undelivered_ids[64][SC_MESSAGE_ID_BYTES];
    struct dial_event dials[MAX_EVENTS];
    size_t ndials;
    uint32_t seen[4096]; /* message counter by first id byte pair, for exactly-once */
};

struct net {
    struct event_base *base;
    struct relay r[MAX_RELAYS];
    size_t n;
};

static const struct sc_listen_spec loopback[] = {{.address = "127.0.0.1", .type = SC_PATH_TCP}};

static void on_message(struct sc_manager *m, const uint8_t peer[SC_RELAY_ID_BYTES], uint32_t path_id,
                       const struct sc_relay_message *msg, void *arg)
{
    (void)m;
    (void)path_id;
    struct relay *r = arg;
    r->received++;
    memcpy(r->last_from, peer, SC_RELAY_ID_BYTES);
    r->seen[(msg->id[0] << 4 | msg->id[1]) % 4096]++;
}

static void on_path_state(struct sc_manager *m, const struct sc_path_info *info,
                          enum sc_path_state old, enum sc_reason reason, void *arg)
{
    (void)m;
    (void)old;
    (void)reason;
    struct relay *r = arg;
    if (info->state == SC_PATH_CONNECTING && r->ndials < MAX_EVENTS)
        r->dials[r->ndials++] = (struct dial_event){info->path_id, sc_mono_ms()};
}

static void on_undelivered(struct sc_manager *m, const uint8_t peer[SC_RELAY_ID_BYTES],
                           const uint8_t msg_id[SC_MESSAGE_ID_BYTES], enum sc_reason reason,
                           void *arg)
{
    (void)m;
    (void)peer;
    (void)reason;
    struct relay *r = arg;
    if (r->undelivered < 64)
        memcpy(r->undelivered_ids[r->undelivered], msg_id, SC_MESSAGE_ID_BYTES);
    r->undelivered++;
}

static const struct sc_manager_callbacks callbacks = {
    .on_message = on_message, .on_path_state = on_path_state, .on_undelivered = on_undelivered};

/* Millisecond timers so that each scenario takes a second or two. */
static void fast_config(struct sc_manager_config *c)
{
    sc_manager_config_defaults(c);
    c->listeners = loopback;
    c->n_listeners = 1;
    c->connection_timeout_ms = 2000;
    c->heartbeat_interval_ms = 200;
    c->reconnect_interval_ms = 100;
    c->retry_delay_ms = 100;
    c->backoff_max_ms = 800;
    c->healthy_after_ms = 500;
    c->grace_period_ms = 0;
    c->failed_cooldown_ms = 1500;
    c->busy_retry_ms = 400;
    c->max_connections = 10;
    c->min_connections = 3;
    c->handshake_rate_per_address = 0; /* every relay dials from 127.0.0.1 */
    c->handshake_rate = 0;
    c->max_handshakes_per_address = 512;
    c->max_links_per_address = 1024;
}

static struct net *net_new(size_t n)
{
    struct net *net = calloc(1, sizeof *net);
    assert_non_null(net);
    net->base = event_base_new();
    assert_non_null(net->base);
    net->n = n;
    for (size_t i = 0; i < n; i++) {
        uint8_t seed[32] = {(uint8_t)(i + 1), 0x5e};
        assert_int_equal(sc_identity_from_seed(seed, &net->r[i].id), 0);
        fast_config(&net->r[i].cfg);
    }
    return net;
}

static const uint8_t *rid(const struct net *net, size_t i) { return sc_identity_relay_id(net->r[i].id); }

static void start_relay(struct net *net, size_t i)
{
    struct relay *r = &net->r[i];
    struct sc_listen_spec spec[2];
    for (size_t k = 0; k < r->cfg.n_listeners; k++) {
        spec[k] = r->cfg.listeners[k];
        spec[k].port = r->port; /* 0 the first time: any free port */
    }
    struct sc_manager_config cfg = r->cfg;
    cfg.listeners = spec;
    assert_int_equal(sc_manager_new(net->base, &cfg, r->id, &callbacks, r, &r->m), 0);
    assert_int_equal(sc_manager_start(r->m), 0);
    struct sc_manager_status st;
    sc_manager_get_status(r->m, &st);
    r->port = st.tcp_port;
    r->running = true;
}

static void stop_relay(struct net *net, size_t i)
{
    sc_manager_free(net->r[i].m);
    net->r[i].m = NULL;
    net->r[i].running = false;
}

static uint32_t add_path(struct net *net, size_t from, size_t to, uint8_t priority)
{
    struct sc_relay_spec s = {.has_id = true, .type = SC_PATH_TCP, .host = "127.0.0.1",
                              .port = net->r[to].port, .priority = priority};
    memcpy(s.id, rid(net, to), SC_RELAY_ID_BYTES);
    uint32_t path;
    assert_int_equal(sc_manager_add_relay(net->r[from].m, &s, &path), 0);
    return path;
}

static void net_free(struct net *net)
{
    for (size_t i = 0; i < net->n; i++) {
        sc_manager_free(net->r[i].m);
        sc_identity_free(net->r[i].id);
    }
    sc_link_finish_lingering(net->base);
    event_base_free(net->base);
    free(net);
}

static uint32_t linked(const struct net *net, size_t i)
{
    struct sc_manager_status st;
    sc_manager_get_status(net->r[i].m, &st);
    return st.connected_peers;
}

static bool is_linked(const struct net *net, size_t i, size_t j)
{
    struct sc_explain e;
    sc_manager_explain(net->r[i].m, rid(net, j), &e);
    return e.verdict == SC_EXPLAIN_LINKED;
}

/* Runs the loop until cond(net, arg) or the deadline. */
static bool run_until(struct net *net, bool (*cond)(struct net *, void *), void *arg, uint64_t ms)
{
    uint64_t end = sc_mono_ms() + ms;
    while (!cond(net, arg) && sc_mono_ms() < end)
        event_base_loop(net->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    return cond(net, arg);
}

/* Runs the loop for `ms` (to observe that something does NOT happen). */
static void run_for(struct net *net, uint64_t ms)
{
    uint64_t end = sc_mono_ms() + ms;
    while (sc_mono_ms() < end)
        event_base_loop(net->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static bool peer_linked(struct net *net, void *arg)
{
    return is_linked(net, 0, *(size_t *)arg);
}

static bool links_at_least(struct net *net, void *arg)
{
    const uint32_t *want = arg; /* {relay, count} */
    return linked(net, want[0]) >= want[1];
}

/* ---- priorities and limits ------------------------------------------------------------ */

/* With 6 candidates and max_connections 3, exactly 3 peers authenticate,
 * the 3 of highest priority; when one of them dies, the minimum is restored
 * within one backoff period. */
static void test_max_and_priorities(void **state)
{
    (void)state;
    struct net *net = net_new(7);
    static const uint8_t prio[7] = {0, 2, 4, 10, 6, 8, 2};
    for (size_t i = 1; i < 7; i++)
        start_relay(net, i);
    net->r[0].cfg.max_connections = 3;
    net->r[0].cfg.min_connections = 3;
    start_relay(net, 0);
    for (size_t i = 1; i < 7; i++)
        add_path(net, 0, i, prio[i]);
    uint32_t want[2] = {0, 3};
    assert_true(run_until(net, links_at_least, want, 5000));
    run_for(net, 500); /* nothing more comes up */
    assert_int_equal(linked(net, 0), 3);
    assert_true(is_linked(net, 0, 3) && is_linked(net, 0, 5) && is_linked(net, 0, 4));
    assert_false(is_linked(net, 0, 1) || is_linked(net, 0, 2) || is_linked(net, 0, 6));
    struct sc_explain e;
    sc_manager_explain(net->r[0].m, rid(net, 1), &e);
    assert_int_equal(e.verdict, SC_EXPLAIN_LIMIT_REACHED);

    /* Kill the priority-8 peer: the next best (4) comes up within one
     * backoff period (retry_delay 100 ms; the check runs on every loss). */
    stop_relay(net, 5);
    uint64_t t0 = sc_mono_ms();
    size_t two = 2;
    assert_true(run_until(net, peer_linked, &two, 3000));
    uint64_t took = sc_mono_ms() - t0;
    assert_int_equal(linked(net, 0), 3);
    assert_false(is_linked(net, 0, 5));
    print_message("min_connections restored in %llu ms after the peer closed\n",
                  (unsigned long long)took);
    net_free(net);
}

/* ---- eviction and busy --------------------------------------------------------------- */

static bool evicted_one(struct net *net, void *arg)
{
    (void)arg;
    return is_linked(net, 0, 3) && linked(net, 0) == 2;
}

static bool busy_seen(struct net *net, void *arg)
{
    (void)arg;
    struct sc_explain e;
    sc_manager_explain(net->r[4].m, rid(net, 0), &e);
    return e.verdict == SC_EXPLAIN_REFUSED_BUSY;
}

/* A full relay: a higher-priority inbound peer evicts the weakest; a lower
 * one is refused with busy. */
static void test_eviction_and_busy(void **state)
{
    (void)state;
    struct net *net = net_new(5);
    net->r[0].cfg.max_connections = 2;
    net->r[0].cfg.min_connections = 0;
    start_relay(net, 0);
    for (size_t i = 1; i < 5; i++)
        start_relay(net, i);
    /* Relay 0 ranks 1 and 2 as untrusted (2), 3 as trusted (8), and knows
     * nothing of 4; it cannot reach them itself (dead endpoints). */
    static const uint8_t rank[4] = {0, 2, 2, 8};
    for (size_t i = 1; i < 4; i++) {
        struct sc_relay_spec s = {.has_id = true, .type = SC_PATH_TCP, .host = "127.0.0.1",
                                  .port = (uint16_t)i, .priority = rank[i]};
        memcpy(s.id, rid(net, i), SC_RELAY_ID_BYTES);
        assert_int_equal(sc_manager_add_relay(net->r[0].m, &s, NULL), 0);
    }
    add_path(net, 1, 0, 6);
    add_path(net, 2, 0, 6);
    uint32_t want[2] = {0, 2};
    assert_true(run_until(net, links_at_least, want, 5000));
    assert_true(is_linked(net, 0, 1) && is_linked(net, 0, 2));
    add_path(net, 3, 0, 6); /* trusted: evicts one of the untrusted two */
    assert_true(run_until(net, evicted_one, NULL, 5000));
    size_t victim = is_linked(net, 0, 1) ? 2 : 1;
    struct sc_explain e;
    sc_manager_explain(net->r[0].m, rid(net, victim), &e);
    assert_int_equal(e.verdict, SC_EXPLAIN_EVICTED);
    assert_memory_equal(e.other, rid(net, 3), SC_RELAY_ID_BYTES);
    assert_int_equal(e.other_priority, 8);
    add_path(net, 4, 0, 6); /* unknown (untrusted): refused busy */
    assert_true(run_until(net, busy_seen, NULL, 5000));
    assert_false(is_linked(net, 0, 4));
    net_free(net);
}

/* ---- backoff, FAILED, recovery ------------------------------------------------------------- */

static bool path_failed(struct net *net, void *arg)
{
    struct sc_path_info info;
    assert_int_equal(sc_manager_path_info(net->r[0].m, *(uint32_t *)arg, &info), 0);
    return info.state == SC_PATH_FAILED;
}

static bool path_reconnecting(struct net *net, void *arg)
{
    struct sc_path_info info;
    assert_int_equal(sc_manager_path_info(net->r[0].m, *(uint32_t *)arg, &info), 0);
    return info.state == SC_PATH_RECONNECTING;
}

static bool peer1_linked(struct net *net, void *arg)
{
    (void)arg;
    return is_linked(net, 0, 1);
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/* A peer that is down: growing, jittered delays, FAILED after
 * max_retry_attempts, and linked again once it is back. */
static void test_backoff_failed_recovery(void **state)
{
    (void)state;
    struct net *net = net_new(2);
    net->r[0].cfg.max_retry_attempts = 4;
    net->r[0].cfg.retry_delay_ms = 200;
    net->r[0].cfg.backoff_max_ms = 1600;
    net->r[0].cfg.failed_cooldown_ms = 2500;
    start_relay(net, 0);
    net->r[1].port = free_port(); /* nobody listens there yet */
    uint32_t path = add_path(net, 0, 1, 6);
    assert_true(run_until(net, path_reconnecting, &path, 3000));
    struct sc_explain e;
    sc_manager_explain(net->r[0].m, rid(net, 1), &e);
    assert_int_equal(e.verdict, SC_EXPLAIN_BACKING_OFF);
    assert_int_equal(e.failures, 1);
    assert_int_equal(e.last_reason, SC_REASON_CONNECT_FAILED);
    assert_true(e.until_unix >= sc_unix_s());
    assert_true(run_until(net, path_failed, &path, 8000));
    struct relay *r = &net->r[0];
    assert_int_equal(r->ndials, 4);
    for (size_t k = 1; k < r->ndials; k++) {
        uint64_t gap = r->dials[k].at_ms - r->dials[k - 1].at_ms;
        uint64_t d = 200u << (k - 1);
        print_message("attempt %zu after %llu ms (allowed %llu..%llu)\n", k, (unsigned long long)gap,
                      (unsigned long long)d / 2, (unsigned long long)d + 50);
        assert_true(gap >= d / 2 && gap <= d + 50);
    }
    sc_manager_explain(r->m, rid(net, 1), &e);
    assert_int_equal(e.verdict, SC_EXPLAIN_FAILED);
    assert_int_equal(e.failures, 4);
    assert_int_equal(e.last_reason, SC_REASON_CONNECT_FAILED);
    /* No dial during the cool-down, then the peer is back and linked. */
    start_relay(net, 1);
    run_for(net, 1000);
    assert_int_equal(r->ndials, 4);
    assert_true(run_until(net, peer1_linked, NULL, 5000));
    assert_int_equal(r->ndials, 5);
    net_free(net);
}

/* ---- failover ------------------------------------------------------------------------------- */

static bool both_paths_up(struct net *net, void *arg)
{
    const uint32_t *paths = arg;
    struct sc_path_info a, b;
    return sc_manager_path_info(net->r[0].m, paths[0], &a) == 0 &&
           sc_manager_path_info(net->r[0].m, paths[1], &b) == 0 &&
           a.state == SC_PATH_AUTHENTICATED && b.state == SC_PATH_AUTHENTICATED;
}

static bool received_n(struct net *net, void *arg)
{
    return net->r[1].received >= *(uint64_t *)arg;
}

static bool undelivered_n(struct net *net, void *arg)
{
    return net->r[0].undelivered >= *(uint64_t *)arg;
}

/* The manager link currently on a path (test access to the inside). */
static struct sc_link *path_link(struct net *net, size_t i, uint32_t path)
{
    struct mpath *p = sc_mgr_path_find(net->r[i].m, path);
    return p && p->link ? p->link->link : NULL;
}

/* Messages queued on a path that dies move to the peer's other path; with
 * no other path each is reported undelivered with its ID. */
static void test_failover(void **state)
{
    (void)state;
    static const struct sc_listen_spec two[] = {{.address = "127.0.0.1"}, {.address = "127.0.0.2"}};
    struct net *net = net_new(2);
    net->r[1].cfg.listeners = two;
    net->r[1].cfg.n_listeners = 2;
    net->r[1].port = free_port(); /* the same port on both addresses */
    start_relay(net, 1);
    start_relay(net, 0);
    uint32_t paths[2];
    paths[0] = add_path(net, 0, 1, 6);
    struct sc_relay_spec s = {.has_id = true, .type = SC_PATH_TCP, .host = "127.0.0.2",
                              .port = net->r[1].port, .priority = 6};
    memcpy(s.id, rid(net, 1), SC_RELAY_ID_BYTES);
    assert_int_equal(sc_manager_add_relay(net->r[0].m, &s, &paths[1]), 0);
    assert_true(run_until(net, both_paths_up, paths, 5000));

    /* 200 messages queued (not framed before the loop runs), then the path
     * they went to dies abruptly. */
    uint8_t ids[200][SC_MESSAGE_ID_BYTES];
    for (int i = 0; i < 200; i++) {
        char text[32];
        snprintf(text, sizeof text, "message %d", i);
        assert_int_equal(sc_manager_send(net->r[0].m, rid(net, 1), text, strlen(text), ids[i]), 0);
    }
    /* (the sends spread over both paths as their queues grow) */
    struct sc_link *used = NULL;
    uint32_t most = 0;
    for (int k = 0; k < 2; k++) {
        struct sc_link *l = path_link(net, 0, paths[k]);
        struct sc_link_stats st;
        sc_link_get_stats(l, &st);
        if (st.queued_messages > most) {
            most = st.queued_messages;
            used = l;
        }
    }
    assert_true(most > 0);
    print_message("%u of 200 queued messages on the path that dies\n", most);
    sc_link_free(used);
    uint64_t want = 200;
    assert_true(run_until(net, received_n, &want, 5000));
    run_for(net, 300);
    assert_int_equal(net->r[1].received, 200); /* each exactly once */
    assert_int_equal(net->r[0].undelivered, 0);

    /* One path only: every queued message is reported. */
    struct sc_path_info info;
    uint32_t survivor = sc_manager_path_info(net->r[0].m, paths[0], &info) == 0 &&
                                info.state == SC_PATH_AUTHENTICATED
                            ? paths[0]
                            : paths[1];
    assert_int_equal(sc_manager_remove_path(net->r[0].m, survivor == paths[0] ? paths[1] : paths[0]), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(sc_manager_send(net->r[0].m, rid(net, 1), "x", 1, ids[i]), 0);
    sc_link_free(path_link(net, 0, survivor));
    want = 50;
    assert_true(run_until(net, undelivered_n, &want, 1000));
    for (int i = 0; i < 50; i++)
        assert_memory_equal(net->r[0].undelivered_ids[i], ids[i], SC_MESSAGE_ID_BYTES);
    net_free(net);
}

/* ---- broadcast --------------------------------------------------------------------------------- */

static bool four_linked_two_paths(struct net *net, void *arg)
{
    return linked(net, 0) == 4 && both_paths_up(net, arg);
}

static bool copies_arrived(struct net *net, void *arg)
{
    const uint64_t *want = arg; /* by relay */
    for (size_t i = 1; i < net->n; i++)
        if (net->r[i].received < want[i])
            return false;
    return true;
}

/* A broadcast reaches every linked peer exactly once (a peer linked over
 * two paths too), never the excluded one, and says how many peers it went
 * to. */
static void test_broadcast(void **state)
{
    (void)state;
    static const struct sc_listen_spec two[] = {{.address = "127.0.0.1"}, {.address = "127.0.0.2"}};
    struct net *net = net_new(5);
    net->r[1].cfg.listeners = two;
    net->r[1].cfg.n_listeners = 2;
    net->r[1].port = free_port(); /* the same port on both addresses */
    for (size_t i = 1; i < 5; i++)
        start_relay(net, i);
    net->r[0].cfg.min_connections = 4;
    start_relay(net, 0);
    uint32_t paths[2];
    paths[0] = add_path(net, 0, 1, 6);
    struct sc_relay_spec s = {.has_id = true, .type = SC_PATH_TCP, .host = "127.0.0.2",
                              .port = net->r[1].port, .priority = 6};
    memcpy(s.id, rid(net, 1), SC_RELAY_ID_BYTES);
    assert_int_equal(sc_manager_add_relay(net->r[0].m, &s, &paths[1]), 0);
    for (size_t i = 2; i < 5; i++)
        add_path(net, 0, i, 6);
    assert_true(run_until(net, four_linked_two_paths, paths, 5000));

    uint8_t id[SC_MESSAGE_ID_BYTES] = {0xb1};
    assert_int_equal(sc_manager_broadcast(net->r[0].m, id, 2, SC_RELAY_FLAG_BROADCAST, "all but 2", 9,
                                          rid(net, 2)),
                     3);
    uint64_t once[5] = {0, 1, 0, 1, 1};
    assert_true(run_until(net, copies_arrived, once, 3000));
    id[0] = 0xb2;
    assert_int_equal(sc_manager_broadcast(net->r[0].m, id, 2, SC_RELAY_FLAG_BROADCAST, "all", 3, NULL), 4);
    uint64_t twice[5] = {0, 2, 1, 2, 2};
    assert_true(run_until(net, copies_arrived, twice, 3000));
    run_for(net, 300); /* no second copy follows */
    for (size_t i = 1; i < 5; i++)
        assert_int_equal(net->r[i].received, twice[i]);
    assert_memory_equal(net->r[2].last_from, rid(net, 0), SC_RELAY_ID_BYTES);
    net_free(net);
}

/* ---- simultaneous dials ---------------------------------------------------------------------- */

static bool one_link_each(struct net *net, void *arg)
{
    (void)arg;
    struct sc_manager_status a, b;
    sc_manager_get_status(net->r[0].m, &a);
    sc_manager_get_status(net->r[1].m, &b);
    return a.connected_peers == 1 && b.connected_peers == 1 && a.active_connections == 1 &&
           b.active_connections == 1;
}

/* Both relays dial each other at the same moment: exactly one link is
 * left, on both sides, and it stays. */
static void test_simultaneous_dials(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        struct net *net = net_new(2);
        start_relay(net, 0);
        start_relay(net, 1);
        add_path(net, 0, 1, 6);
        add_path(net, 1, 0, 6);
        assert_true(run_until(net, one_link_each, NULL, 5000));
        run_for(net, 700);
        assert_true(one_link_each(net, NULL));
        struct sc_manager_status st;
        sc_manager_get_status(net->r[0].m, &st);
        assert_true(st.duplicates_closed <= 1);
        net_free(net);
    }
}

/* ---- explain: transport unavailable ------------------------------------------------------------ */

static void test_explain_transport_unavailable(void **state)
{
    (void)state;
    struct net *net = net_new(2);
    start_relay(net, 0);
    struct sc_relay_spec s = {.has_id = true, .type = SC_PATH_TOR,
                              .host = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
                              .port = 6667, .priority = 6};
    memcpy(s.id, rid(net, 1), SC_RELAY_ID_BYTES);
    uint32_t path;
    assert_int_equal(sc_manager_add_relay(net->r[0].m, &s, &path), 0);
    run_for(net, 500);
    struct sc_explain e;
    sc_manager_explain(net->r[0].m, rid(net, 1), &e);
    assert_int_equal(e.verdict, SC_EXPLAIN_TRANSPORT_UNAVAILABLE);
    struct sc_path_info info;
    assert_int_equal(sc_manager_path_info(net->r[0].m, path, &info), 0);
    assert_int_equal(info.state, SC_PATH_FAILED);
    assert_int_equal(info.last_reason, SC_REASON_TRANSPORT_UNAVAILABLE);
    assert_int_equal(net->r[0].ndials, 0); /* never dialed, let alone in a loop */
    uint8_t unknown[SC_RELAY_ID_BYTES] = {9};
    sc_manager_explain(net->r[0].m, unknown, &e);
    assert_int_equal(e.verdict, SC_EXPLAIN_UNKNOWN_PEER);
    net_free(net);
}

/* ---- a 20-relay mesh ---------------------------------------------------------------------------- */

#define MESH 20

static bool all_at_min(struct net *net, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < net->n; i++)
        if (net->r[i].running && linked(net, i) < net->r[i].cfg.min_connections)
            return false;
    return true;
}

/* Every survivor at its minimum, and none still linked to a dead relay. */
static bool survivors_restored(struct net *net, void *arg)
{
    for (size_t i = 0; i < net->n; i++)
        for (size_t j = 0; j < net->n; j++)
            if (net->r[i].running && !net->r[j].running && is_linked(net, i, j))
                return false;
    return all_at_min(net, arg);
}

static void test_mesh_of_twenty(void **state)
{
    (void)state;
    struct net *net = net_new(MESH);
    for (size_t i = 0; i < MESH; i++) {
        net->r[i].cfg.min_connections = 3;
        net->r[i].cfg.max_connections = 8;
        net->r[i].cfg.max_retry_attempts = 3;
        net->r[i].cfg.failed_cooldown_ms = 60000; /* longer than the test */
        start_relay(net, i);
    }
    /* Each relay knows 4 to 6 others: its next ones around a ring. */
    for (size_t i = 0; i < MESH; i++)
        for (size_t k = 1; k <= 4 + i % 3; k++)
            add_path(net, i, (i + k * 3) % MESH, (uint8_t)(2 + 2 * (k % 5)));
    assert_true(run_until(net, all_at_min, NULL, 10000));

    /* Five relays die. */
    size_t dialed_before[MESH];
    for (size_t i = 0; i < MESH; i++)
        dialed_before[i] = net->r[i].ndials;
    for (size_t i = 0; i < 5; i++)
        stop_relay(net, i * 4);
    uint64_t t0 = sc_mono_ms();
    assert_true(run_until(net, survivors_restored, NULL, 10000));
    print_message("after killing 5 of 20, every survivor back at min_connections in %llu ms\n",
                  (unsigned long long)(sc_mono_ms() - t0));
    run_for(net, 1500);
    /* Dials per path toward a dead relay: at most max_retry_attempts, then
     * FAILED for the (long) cool-down. */
    for (size_t i = 0; i < MESH; i++) {
        if (!net->r[i].running)
            continue;
        size_t per_path[64] = {0};
        for (size_t k = dialed_before[i]; k < net->r[i].ndials; k++)
            per_path[net->r[i].dials[k].path_id % 64]++;
        for (size_t p = 0; p < 64; p++)
            assert_true(per_path[p] <= 3);
    }
    /* They come back (same identities and ports): the mesh heals. */
    for (size_t i = 0; i < 5; i++) {
        start_relay(net, i * 4);
        for (size_t k = 1; k <= 4 + (i * 4) % 3; k++)
            add_path(net, i * 4, (i * 4 + k * 3) % MESH, (uint8_t)(2 + 2 * (k % 5)));
    }
    bool healed = run_until(net, all_at_min, NULL, 10000);
    for (size_t i = 0; i < MESH && !healed; i++)
        print_message("relay %zu: %u linked\n", i, linked(net, i));
    assert_true(healed);
    net_free(net);
}

int main(void)
{
    sc_log_set_level(getenv("SC_TEST_LOG") ? SC_LOG_DEBUG : SC_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_and_priorities),
        cmocka_unit_test(test_eviction_and_busy),
        cmocka_unit_test(test_backoff_failed_recovery),
        cmocka_unit_test(test_failover),
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_simultaneous_dials),
        cmocka_unit_test(test_explain_transport_unavailable),
        cmocka_unit_test(test_mesh_of_twenty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
