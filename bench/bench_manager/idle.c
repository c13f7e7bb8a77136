/* bench/bench_manager/idle.c — bench_manager idle N SECONDS: a relay holds N
 * authenticated idle links from N peer identities (manager-less links from
 * a few client processes); its RSS per link, manager state included, and
 * its CPU over an idle window of SECONDS. */
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
#include "link/link_stream.h"
#include "transport/transport.h"

struct idle_args {
    struct sc_identity *relay_id;
    long links;
    double seconds;
    uint16_t port;
    uint32_t first, count; /* client: its share of the peer identities */
};

struct idle_relay {
    const struct idle_args *a;
    struct event_base *base;
    struct sc_manager *m;
    struct event *tick_ev, *window_ev;
    int fd;
    int phase; /* 0 linking, 1 settling, 2 window */
    long rss_before_kb, rss_after_kb;
    double t_start, t_linked, cpu_start, cpu_linked, win_t0, win_cpu0;
    uint64_t lost; /* authenticated paths that ended in the window */
};

static void idle_on_path_state(struct sc_manager *m, const struct sc_path_info *info,
                               enum sc_path_state old, enum sc_reason reason, void *arg)
{
    (void)m;
    (void)info;
    (void)reason;
    struct idle_relay *r = arg;
    if (old == SC_PATH_AUTHENTICATED && r->phase == 2)
        r->lost++;
}

static void idle_window_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct idle_relay *r = arg;
    double secs = bench_now_s() - r->win_t0, cpu = bench_cpu_self_s() - r->win_cpu0;
    long n = r->a->links;
    emit(r->fd, json_pack("{s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:I, s:f, s:f, s:i}", "links",
                          (json_int_t)n, "relay_rss_before_kb", (json_int_t)r->rss_before_kb,
                          "relay_rss_after_kb", (json_int_t)r->rss_after_kb,
                          "relay_bytes_per_link",
                          (double)(r->rss_after_kb - r->rss_before_kb) * 1024.0 / (double)n,
                          "window_s", secs, "relay_cpu_pct", 100.0 * cpu / secs, "relay_cpu_s", cpu,
                          "links_lost", (json_int_t)r->lost, "setup_s", r->t_linked - r->t_start,
                          "setup_cpu_us_per_link",
                          1e6 * (r->cpu_linked - r->cpu_start) / (double)n, "linked_at_end",
                          (int)linked_peers(r->m)));
}

static void idle_relay_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct idle_relay *r = arg;
    double t = bench_now_s();
    if (r->phase == 0) {
        if (linked_peers(r->m) == (uint32_t)r->a->links) {
            r->phase = 1;
            r->t_linked = t;
            r->cpu_linked = bench_cpu_self_s();
        } else if (t - r->t_start > LINK_UP_S + (double)r->a->links / 50) {
            child_fail(r->fd, "the idle links did not all come up");
        }
    } else if (r->phase == 1 && t - r->t_linked >= IDLE_SETTLE_S) {
        /* No tick from here on: the window sees only the links' own timers. */
        event_del(r->tick_ev);
        r->phase = 2;
        r->rss_after_kb = bench_rss_kb();
        r->win_t0 = bench_now_s();
        r->win_cpu0 = bench_cpu_self_s();
        struct timeval tv = tv_of(r->a->seconds);
        evtimer_add(r->window_ev, &tv);
    }
}

static void idle_relay_main(void *arg, int fd)
{
    struct idle_relay r;
    memset(&r, 0, sizeof r);
    r.a = arg;
    r.fd = fd;
    r.base = child_base(fd);
    struct sc_manager_config cfg;
    sc_manager_config_defaults(&cfg); /* heartbeats every 60 s */
    cfg.listeners = &loopback;
    cfg.n_listeners = 1;
    cfg.min_connections = 0;
    open_caps(&cfg, (uint32_t)r.a->links);
    static const struct sc_manager_callbacks cb = {.on_path_state = idle_on_path_state};
    r.m = start_manager(r.base, &cfg, r.a->relay_id, &cb, &r, fd);
    r.tick_ev = event_new(r.base, -1, EV_PERSIST, idle_relay_tick, &r);
    r.window_ev = evtimer_new(r.base, idle_window_over, &r);
    struct timeval tick = {0, 100000};
    if (!r.tick_ev || !r.window_ev || event_add(r.tick_ev, &tick) != 0)
        child_fail(fd, "out of memory");
    r.rss_before_kb = bench_rss_kb(); /* the manager and its listener, no link */
    r.t_start = bench_now_s();
    r.cpu_start = bench_cpu_self_s();
    emit(fd, json_pack("{s:i}", "port", (int)sc_manager_listener_port(r.m, 0)));
    event_base_dispatch(r.base);
    child_fail(fd, "relay loop ended");
}

/* A client: `count` manager-less links, each with its own identity. */
struct idle_client {
    const struct idle_args *a;
    struct event_base *base;
    struct sc_link_config lc;
    int fd;
    uint32_t next;
    long dialing, handshaking, authenticated, failures;
    bool reported;
};

static void idle_dial_more(struct idle_client *c);

static void ic_on_authenticated(struct sc_link *link, void *arg)
{
    (void)link;
    struct idle_client *c = arg;
    c->handshaking--;
    c->authenticated++;
    if (c->authenticated == (long)c->a->count && !c->reported) {
        c->reported = true;
        emit(c->fd, json_pack("{s:I}", "ready", (json_int_t)c->authenticated));
    }
    idle_dial_more(c);
}

static void ic_on_closed(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg)
{
    struct idle_client *c = arg;
    if (sc_link_peer_id(link))
        c->authenticated--;
    else
        c->handshaking--;
    if (c->reported)
        return; /* the relay is being stopped */
    fprintf(stderr, "bench_manager: idle client: link closed reason=%s by=%s\n",
            sc_reason_name(reason), by_peer ? "peer" : "local");
    if (++c->failures > IDLE_MAX_FAILURES)
        child_fail(c->fd, "too many idle links failed");
    idle_dial_more(c); /* with the next identity */
}

static void ic_on_dialed(struct sc_stream *stream, int err, const char *why, void *arg)
{
    struct idle_client *c = arg;
    c->dialing--;
    if (err) {
        fprintf(stderr, "bench_manager: idle client: dial failed: %s\n", why);
        if (++c->failures > IDLE_MAX_FAILURES)
            child_fail(c->fd, "too many dials failed");
        idle_dial_more(c);
        return;
    }
    struct sc_identity *id = identity_of(0x70, c->a->first + c->next++);
    struct sc_link_key *key;
    if (sc_link_key_generate(id, (uint64_t)time(NULL) + 86400u, &key) != 0)
        child_fail(c->fd, "link key");
    struct sc_link_config lc = c->lc;
    lc.identity = id; /* kept for the link's life: the process ends with it */
    lc.link_key = key;
    struct sc_link *link;
    err = sc_link_start(c->base, stream, &lc, NULL, &link);
    sc_link_key_free(key); /* read only while starting */
    if (err)
        child_fail(c->fd, sc_strerror(err));
    c->handshaking++;
}

static void idle_dial_more(struct idle_client *c)
{
    while (c->dialing + c->handshaking < IDLE_IN_FLIGHT &&
           c->authenticated + c->dialing + c->handshaking < (long)c->a->count) {
        struct sc_dial_spec spec = {.host = "127.0.0.1", .port = c->a->port,
                                    .timeout_ms = c->lc.connection_timeout_ms};
        struct sc_dial *dial;
        if (sc_dial_start(c->base, &spec, ic_on_dialed, c, &dial) != 0)
            child_fail(c->fd, "dial");
        c->dialing++;
    }
}

static void idle_client_main(void *arg, int fd)
{
    struct idle_client c;
    memset(&c, 0, sizeof c);
    c.a = arg;
    c.fd = fd;
    c.base = child_base(fd);
    sc_link_config_defaults(&c.lc);
    c.lc.initiator = true;
    c.lc.has_expected_id = true;
    memcpy(c.lc.expected_id, sc_identity_relay_id(c.a->relay_id), SC_RELAY_ID_BYTES);
    c.lc.connection_timeout_ms = SC_MGR_CONNECTION_TIMEOUT_MS_DEFAULT;
    c.lc.heartbeat_interval_ms = SC_MGR_HEARTBEAT_INTERVAL_MS_DEFAULT; /* as a manager's */
    c.lc.cb.on_authenticated = ic_on_authenticated;
    c.lc.cb.on_closed = ic_on_closed;
    c.lc.cb_arg = &c;
    idle_dial_more(&c);
    event_base_dispatch(c.base);
    child_fail(fd, "client loop ended");
}

json_t *run_idle(long links, double seconds)
{
    static struct idle_args a;
    memset(&a, 0, sizeof a);
    a.relay_id = identity_of(0x51, 0);
    a.links = links;
    a.seconds = seconds;
    double limit = LINK_UP_S + (double)links / 50 + IDLE_SETTLE_S + seconds + 30;
    struct child relay, clients[MAX_CHILDREN - 1];
    int nclients = (int)((links + IDLE_PER_CLIENT - 1) / IDLE_PER_CLIENT);
    spawn(&relay, idle_relay_main, &a, limit);
    json_t *port = await_line(&relay, 10), *out = NULL;
    if (port) {
        a.port = (uint16_t)json_integer_value(json_object_get(port, "port"));
        for (int i = 0; i < nclients; i++) {
            long done = (long)i * IDLE_PER_CLIENT;
            a.first = (uint32_t)i << 24; /* identity ranges that never meet, retries included */
            a.count = (uint32_t)(links - done < IDLE_PER_CLIENT ? links - done : IDLE_PER_CLIENT);
            spawn(&clients[i], idle_client_main, &a, limit);
        }
        out = await_line(&relay, limit);
        if (out && json_integer_value(json_object_get(out, "links_lost")) != 0) {
            fprintf(stderr, "bench_manager: idle: links ended during the window\n");
            json_decref(out);
            out = NULL;
        }
        for (int i = 0; i < nclients; i++)
            close(clients[i].fd);
    }
    json_decref(port);
    kill_children();
    close(relay.fd);
    sc_identity_free(a.relay_id);
    if (out) {
        json_object_set_new(out, "client_processes", json_integer(nclients));
        json_object_set_new(out, "heartbeat_interval_ms",
                            json_integer(SC_MGR_HEARTBEAT_INTERVAL_MS_DEFAULT));
        fprintf(human,
                "idle: %ld links: relay %.0f B/link (RSS %lld -> %lld kB), relay CPU %.3f%% of one "
                "core over %.0f s (setup %.1f s, %.0f us CPU per link)\n",
                links, json_real_value(json_object_get(out, "relay_bytes_per_link")),
                (long long)json_integer_value(json_object_get(out, "relay_rss_before_kb")),
                (long long)json_integer_value(json_object_get(out, "relay_rss_after_kb")),
                json_real_value(json_object_get(out, "relay_cpu_pct")),
                json_real_value(json_object_get(out, "window_s")),
                json_real_value(json_object_get(out, "setup_s")),
                json_real_value(json_object_get(out, "setup_cpu_us_per_link")));
    } else {
        fprintf(stderr, "bench_manager: idle: no result\n");
    }
    return out;
}
