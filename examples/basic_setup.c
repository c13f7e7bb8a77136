/* examples/basic_setup.c — embedding libsecirc's connection manager the
 * way a relay program would: configure it, add relays, send to one,
 * broadcast to all, print the status and the paths, stop cleanly.
 *
 * To be self-contained it runs two more relays (the peers) in the same
 * process, on the same event loop, all on 127.0.0.1 with ports picked by
 * the system. Build: part of `make` (build/basic_setup); run it with no
 * arguments. It exits 0 once every step worked, 1 otherwise, and never
 * runs longer than 30 seconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "secirc/log.h"
#include "secirc/manager.h"

#define PEERS 2

struct app {
    struct event_base *base;
    struct sc_identity *ids[1 + PEERS];
    struct sc_manager *relays[1 + PEERS]; /* [0] is "our" relay, the others its peers */
    int received[1 + PEERS];
    int stopped;
    int failed;
    struct event *tick, *deadline;
    int step;
};

static void on_message(struct sc_manager *m, const uint8_t peer[SC_RELAY_ID_BYTES],
                       uint32_t path_id, const struct sc_relay_message *msg, void *arg)
{
    (void)peer;
    (void)path_id;
    struct app *a = arg;
    for (int i = 0; i <= PEERS; i++)
        if (a->relays[i] == m) {
            a->received[i]++;
            printf("relay %d received %zu bytes: %.*s\n", i, msg->len, (int)msg->len,
                   (const char *)msg->payload);
        }
}

static void on_stopped(struct sc_manager *m, void *arg)
{
    (void)m;
    struct app *a = arg;
    if (++a->stopped == 1 + PEERS)
        event_base_loopexit(a->base, NULL);
}

static const struct sc_manager_callbacks callbacks = {.on_message = on_message,
                                                      .on_stopped = on_stopped};

static void print_status(struct app *a)
{
    struct sc_manager_status st;
    sc_manager_get_status(a->relays[0], &st);
    printf("status: total_connections=%u active_connections=%u failed_connections=%u "
           "connected_peers=%u messages_sent=%llu messages_received=%llu\n",
           st.total_connections, st.active_connections, st.failed_connections, st.connected_peers,
           (unsigned long long)st.total_messages_sent, (unsigned long long)st.total_messages_received);
    struct sc_path_info paths[8];
    size_t n = sc_manager_paths(a->relays[0], paths, 8);
    for (size_t i = 0; i < n && i < 8; i++) {
        char id[SC_RELAY_ID_HEX_LEN + 1] = "-";
        if (paths[i].has_id)
            sc_relay_id_to_hex(paths[i].relay_id, id);
        printf("path %u: %.16s %s %s:%u %s %s latency=%uus priority=%u\n", paths[i].path_id, id,
               sc_path_type_name(paths[i].type), paths[i].host, paths[i].port,
               sc_path_state_name(paths[i].state), paths[i].inbound ? "inbound" : "outbound",
               paths[i].latency_us, paths[i].priority);
    }
}

/* The program's steps, one per tick: wait for the links, send, broadcast,
 * check what arrived, stop. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct app *a = arg;
    struct sc_manager_status st;
    sc_manager_get_status(a->relays[0], &st);
    switch (a->step) {
    case 0: /* linked to both peers? */
        if (st.connected_peers < PEERS)
            return;
        print_status(a);
        const char hello[] = "{\"type\":\"relay_message\",\"content\":\"hello, peer 1\"}";
        uint8_t id[SC_MESSAGE_ID_BYTES];
        if (sc_manager_send(a->relays[0], sc_identity_relay_id(a->ids[1]), hello,
                            sizeof hello - 1, id) != 0)
            a->failed = 1;
        uint8_t bid[SC_MESSAGE_ID_BYTES] = {0xbc};
        const char all[] = "{\"type\":\"relay_message\",\"content\":\"hello, everyone\"}";
        int n = sc_manager_broadcast(a->relays[0], bid, 1, SC_RELAY_FLAG_BROADCAST, all,
                                     sizeof all - 1, NULL);
        printf("broadcast went to %d peers\n", n);
        if (n != PEERS)
            a->failed = 1;
        a->step = 1;
        return;
    case 1: /* peer 1 gets two messages, peer 2 one */
        if (a->received[1] < 2 || a->received[2] < 1)
            return;
        print_status(a);
        for (int i = 0; i <= PEERS; i++)
            sc_manager_stop(a->relays[i]);
        a->step = 2;
        return;
    default:
        return;
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct app *a = arg;
    fprintf(stderr, "basic_setup: not done within 30 s (step %d)\n", a->step);
    a->failed = 1;
    event_base_loopexit(a->base, NULL);
}

static int start_relay(struct app *a, int i, const struct sc_listen_spec *listen)
{
    struct sc_manager_config cfg;
    sc_manager_config_defaults(&cfg);
    cfg.listeners = listen;
    cfg.n_listeners = 1;
    cfg.min_connections = i == 0 ? PEERS : 0; /* only our relay dials */
    cfg.retry_delay_ms = 500;
    cfg.heartbeat_interval_ms = 1000;
    if (sc_identity_generate(&a->ids[i]) != 0 ||
        sc_manager_new(a->base, &cfg, a->ids[i], &callbacks, a, &a->relays[i]) != 0 ||
        sc_manager_start(a->relays[i]) != 0) {
        fprintf(stderr, "basic_setup: cannot start relay %d\n", i);
        return 1;
    }
    return 0;
}

int main(void)
{
    struct app a;
    memset(&a, 0, sizeof a);
    sc_log_set_level(SC_LOG_WARN);
    a.base = event_base_new();
    const struct sc_listen_spec loopback = {.address = "127.0.0.1", .port = 0, .type = SC_PATH_TCP};
    int rc = a.base ? 0 : 1;
    for (int i = 0; i <= PEERS && !rc; i++)
        rc = start_relay(&a, i, &loopback);
    /* Our relay's candidates: both peers, over TCP, with their relay IDs. */
    for (int i = 1; i <= PEERS && !rc; i++) {
        struct sc_relay_spec spec = {.has_id = true, .type = SC_PATH_TCP, .host = "127.0.0.1",
                                     .port = sc_manager_listener_port(a.relays[i], 0),
                                     .priority = SC_PRIORITY_TRUSTED};
        memcpy(spec.id, sc_identity_relay_id(a.ids[i]), SC_RELAY_ID_BYTES);
        rc = sc_manager_add_relay(a.relays[0], &spec, NULL);
    }
    if (!rc) {
        a.tick = event_new(a.base, -1, EV_PERSIST, on_tick, &a);
        a.deadline = evtimer_new(a.base, on_deadline, &a);
        struct timeval tick = {0, 50000}, limit = {30, 0};
        event_add(a.tick, &tick);
        evtimer_add(a.deadline, &limit);
        event_base_dispatch(a.base);
    }
    for (int i = 0; i <= PEERS; i++) {
        sc_manager_free(a.relays[i]);
        sc_identity_free(a.ids[i]);
    }
    if (a.tick)
        event_free(a.tick);
    if (a.deadline)
        event_free(a.deadline);
    if (a.base) {
        sc_link_finish_lingering(a.base); /* the sockets of the links that ended */
        event_base_free(a.base);
    }
    rc = rc || a.failed || a.step != 2;
    printf("%s\n", rc ? "basic_setup: FAILED" : "basic_setup: done");
    return rc ? 1 : 0;
}
