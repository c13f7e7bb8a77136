/* bench/bench_manager.c — the connection manager (issue 7) measured in real
 * processes on loopback, every port ephemeral on 127.0.0.1:
 *
 *   bench_manager [--json] MODE ARGS [MODE ARGS ...]
 *     broadcast SECONDS  a relay (a manager alone in its process) linked to
 *                        50 peers (50 managers in a second process, which
 *                        dial it) broadcasts 64-byte messages with
 *                        sc_manager_broadcast as fast as back-pressure allows:
 *                        a broadcast that some peer's full queue refused
 *                        (SC_EAGAIN, so fewer than 50 copies) pauses the
 *                        sender 1 ms (the manager has no back-pressure
 *                        callback). Messages delivered per second summed
 *                        over the receivers (counted there, in a window of
 *                        SECONDS after 1 s of traffic); copies sent per
 *                        second (counted at the relay); both processes' CPU.
 *     restore ROUNDS     a relay with min_connections 3, 6 candidate peers
 *                        (each a manager in its own process), heartbeats
 *                        every 1 s, miss limit 3: once 3 are linked, one
 *                        linked peer gets SIGKILL (a real process death:
 *                        the kernel closes its sockets) and the time until
 *                        3 peers are linked again is taken; then the same
 *                        with SIGSTOP (frozen, no FIN: only the heartbeats
 *                        notice). ROUNDS of each, fresh processes per round.
 *     idle N SECONDS     a relay holding N authenticated idle links from N
 *                        distinct peer identities (manager-less sc_links
 *                        from a few client processes), heartbeats every
 *                        60 s (the default): the relay's RSS per link
 *                        (VmRSS after minus before, / N, manager state
 *                        included) and its CPU over an idle window of
 *                        SECONDS.
 *
 * Human-readable lines go to stdout, or to stderr with --json, which prints
 * one JSON object per mode on stdout. This process only coordinates (no
 * event loop, no socket): every relay and peer is a forked child that dies
 * with it (PR_SET_PDEATHSIG) and has its own alarm(); this process has one
 * too. Exits non-zero when a run fails, not when a figure is low. Never used
 * by the library. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <sodium.h>

#include "secirc/identity.h"
#include "secirc/link.h"
#include "secirc/log.h"
#include "secirc/manager.h"
#include "link/link_stream.h"
#include "transport/transport.h"

#define BC_PEERS 50             /* broadcast: receivers linked to the relay */
#define BC_SIZE 64u             /* broadcast: payload bytes */
#define BC_BATCH 256            /* broadcast: broadcasts per loop turn */
#define BC_WAIT_US 1000         /* broadcast: pause after a refused copy */
#define WARMUP_S 1.0            /* broadcast: traffic before the window opens */
#define LINK_UP_S 30.0          /* every mode: time allowed to link up */
#define RS_PEERS 6              /* restore: candidates */
#define RS_MIN 3u               /* restore: min_connections */
#define RS_HEARTBEAT_MS 1000u
#define RS_MISS_LIMIT 3u
#define RS_TIMEOUT_MS 2000u     /* restore: connection_timeout (dial + handshake) */
#define RS_RETRY_MS 1000u       /* restore: retry_delay, reconnect_interval */
#define RS_SETTLE_MS 1000u      /* restore: linked this long (+ up to 1 s more) before a kill */
#define RS_LIMIT_S 15.0         /* restore: a round gives up after this */
#define IDLE_PER_CLIENT 1250    /* idle: links per client process */
#define IDLE_IN_FLIGHT 64       /* idle: dials and handshakes at once per client */
#define IDLE_SETTLE_S 2.0       /* idle: quiet time before the window */
#define IDLE_MAX_FAILURES 50
#define MAX_CHILDREN 16

static FILE *human;
static pid_t children[MAX_CHILDREN];
static int nchildren;

/* The last spawned first: peers go before the relay they talk to. */
static void kill_children(void)
{
    for (int i = nchildren - 1; i >= 0; i--)
        if (children[i] > 0)
            kill(children[i], SIGKILL);
    for (int i = 0; i < nchildren; i++)
        if (children[i] > 0)
            while (waitpid(children[i], NULL, 0) < 0 && errno == EINTR) {
            }
    nchildren = 0;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bench_manager[%d]: ", (int)getpid());
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    for (int i = 0; i < nchildren; i++)
        if (children[i] > 0)
            kill(children[i], SIGKILL);
    exit(2);
}

static void on_alarm(int sig)
{
    static const char msg[] = "bench_manager: deadline passed, giving up\n";
    (void)sig;
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing more to do */
    }
    for (int i = 0; i < nchildren; i++)
        if (children[i] > 0)
            kill(children[i], SIGKILL);
    _exit(3);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_self_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* VmRSS of this process in kB; -1 if unknown. */
static long rss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static struct timeval tv_of(double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
    return tv;
}

static double median(double *v, size_t n)
{
    if (n == 0)
        return -1;
    for (size_t i = 1; i < n; i++) /* insertion sort: a handful of samples */
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static struct sc_identity *identity_of(uint8_t a, uint32_t b)
{
    uint8_t seed[32];
    memset(seed, 0x5b, sizeof seed);
    seed[0] = a;
    memcpy(seed + 1, &b, sizeof b);
    struct sc_identity *id;
    if (sc_identity_from_seed(seed, &id) != 0)
        die("identity");
    return id;
}

/* ---- children: forked, bound to this process, one JSON line per report ------------------- */

struct child {
    pid_t pid;
    int fd; /* read end of its report pipe */
    char buf[8192];
    size_t len;
};

typedef void (*child_main)(void *arg, int out_fd);

static void spawn(struct child *c, child_main fn, void *arg, double deadline_s)
{
    int p[2];
    if (nchildren == MAX_CHILDREN)
        die("too many children");
    if (pipe(p) != 0)
        die("pipe: %s", strerror(errno));
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(2);
        nchildren = 0; /* not ours to kill */
        close(p[0]);
        signal(SIGTERM, SIG_DFL);
        alarm((unsigned)deadline_s + 5);
        fn(arg, p[1]);
        _exit(0);
    }
    close(p[1]);
    memset(c, 0, sizeof *c);
    c->pid = pid;
    c->fd = p[0];
    children[nchildren++] = pid;
}

/* Writes one JSON object as a line to the coordinator (and frees it). */
static void emit(int fd, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(7)) : NULL;
    if (!text)
        _exit(2);
    size_t len = strlen(text);
    text[len] = '\n'; /* over the terminator: written with its length */
    for (size_t off = 0; off < len + 1;) {
        ssize_t w = write(fd, text + off, len + 1 - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(2);
        off += (size_t)w;
    }
    free(text);
    json_decref(o);
}

/* The child's next JSON line, or NULL at end of file or after `secs`. */
static json_t *await_line(struct child *c, double secs)
{
    double end = now_s() + secs;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            *nl = '\0';
            json_error_t jerr;
            json_t *o = json_loads(c->buf, 0, &jerr);
            size_t used = (size_t)(nl - c->buf) + 1;
            memmove(c->buf, nl + 1, c->len - used);
            c->len -= used;
            if (!o || !json_is_object(o)) {
                json_decref(o);
                return NULL;
            }
            json_t *err = json_object_get(o, "error");
            if (err) {
                fprintf(stderr, "bench_manager: child %d: %s\n", (int)c->pid, json_string_value(err));
                json_decref(o);
                return NULL;
            }
            return o;
        }
        double left = end - now_s();
        if (left <= 0 || c->len == sizeof c->buf)
            return NULL;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return NULL;
        ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NULL;
        c->len += (size_t)n;
    }
}

static void child_fail(int fd, const char *why)
{
    emit(fd, json_pack("{s:s}", "error", why));
    _exit(1);
}

static struct event_base *child_base(int fd)
{
    struct event_base *base = event_base_new();
    if (!base)
        child_fail(fd, "event_base_new");
    return base;
}

static const struct sc_listen_spec loopback = {.address = "127.0.0.1", .port = 0, .type = SC_PATH_TCP};

/* A manager's listener caps lifted for links that all come from 127.0.0.1
 * (the handshake-rate benchmark measures the caps on their own). */
static void open_caps(struct sc_manager_config *cfg, uint32_t links)
{
    cfg->handshake_rate = 0;
    cfg->handshake_rate_per_address = 0;
    cfg->max_handshakes = 1024;
    cfg->max_handshakes_per_address = 1024;
    cfg->max_links = links + 64;
    cfg->max_links_per_address = links + 64;
    cfg->links_reserved = 0;
    cfg->max_connections = links + 64;
}

static struct sc_manager *start_manager(struct event_base *base, const struct sc_manager_config *cfg,
                                        const struct sc_identity *id,
                                        const struct sc_manager_callbacks *cb, void *arg, int fd)
{
    struct sc_manager *m;
    if (sc_manager_new(base, cfg, id, cb, arg, &m) != 0 || sc_manager_start(m) != 0)
        child_fail(fd, "cannot start a manager");
    return m;
}

static uint32_t linked_peers(const struct sc_manager *m)
{
    struct sc_manager_status st;
    sc_manager_get_status(m, &st);
    return st.connected_peers;
}

/* ---- broadcast ------------------------------------------------------------------------------- */

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
    double t = now_s();
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
        r->win_cpu0 = cpu_self_s();
        r->win_broadcasts0 = r->broadcasts;
        r->win_copies0 = r->copies;
        r->win_partial0 = r->partial;
        return;
    case 3: {
        if (t - r->win_t0 < r->a->seconds)
            return;
        r->phase = 4;
        double secs = t - r->win_t0, cpu = cpu_self_s() - r->win_cpu0;
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
    r.t_phase = now_s();
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
        rx->t_first = now_s();
    }
}

static void bc_rx_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bc_rx *rx = arg;
    double t = now_s();
    if (rx->phase == 0 && t - rx->t_start > LINK_UP_S + 5)
        child_fail(rx->fd, "no broadcast arrived");
    if (rx->phase == 1 && t - rx->t_first >= WARMUP_S) {
        rx->phase = 2;
        rx->win_t0 = t;
        rx->win_cpu0 = cpu_self_s();
        rx->win0 = rx->total;
        for (int i = 0; i < BC_PEERS; i++)
            rx->slot[i].win0 = rx->slot[i].got;
    } else if (rx->phase == 2 && t - rx->win_t0 >= rx->a->seconds) {
        rx->phase = 3;
        double secs = t - rx->win_t0, cpu = cpu_self_s() - rx->win_cpu0;
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
    rx.t_start = now_s();
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

static json_t *run_broadcast(double seconds)
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

/* ---- restore --------------------------------------------------------------------------------- */

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
        r->t_detect = now_s();
        r->detect_reason = reason;
    } else if (r->phase == 3 && who != r->victim && info->state == SC_PATH_AUTHENTICATED) {
        /* The peer is counted once this callback has returned. */
        r->t_candidate = now_s();
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
    double t = now_s();
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
        r->t_kill = now_s();
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
    r.t_phase = now_s();
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

static json_t *run_restore(long rounds)
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

/* ---- idle ------------------------------------------------------------------------------------ */

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
    double secs = now_s() - r->win_t0, cpu = cpu_self_s() - r->win_cpu0;
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
    double t = now_s();
    if (r->phase == 0) {
        if (linked_peers(r->m) == (uint32_t)r->a->links) {
            r->phase = 1;
            r->t_linked = t;
            r->cpu_linked = cpu_self_s();
        } else if (t - r->t_start > LINK_UP_S + (double)r->a->links / 50) {
            child_fail(r->fd, "the idle links did not all come up");
        }
    } else if (r->phase == 1 && t - r->t_linked >= IDLE_SETTLE_S) {
        /* No tick from here on: the window sees only the links' own timers. */
        event_del(r->tick_ev);
        r->phase = 2;
        r->rss_after_kb = rss_kb();
        r->win_t0 = now_s();
        r->win_cpu0 = cpu_self_s();
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
    r.rss_before_kb = rss_kb(); /* the manager and its listener, no link */
    r.t_start = now_s();
    r.cpu_start = cpu_self_s();
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

static json_t *run_idle(long links, double seconds)
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

/* ---- main ------------------------------------------------------------------------------------ */

enum mode { MODE_BROADCAST, MODE_RESTORE, MODE_IDLE };

struct run {
    enum mode mode;
    const char *name;
    double seconds;
    long count;
};

static void usage(void)
{
    fprintf(stderr, "usage: bench_manager [--json] MODE ARGS [MODE ARGS ...]\n"
                    "  broadcast SECONDS | restore ROUNDS | idle N SECONDS\n");
    exit(1);
}

static long parse_long(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        usage();
    return v;
}

static double parse_seconds(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || !(v >= 0.1 && v <= 600))
        usage();
    return v;
}

static unsigned deadline_s(const struct run *r)
{
    switch (r->mode) {
    case MODE_BROADCAST:
        return (unsigned)(LINK_UP_S + WARMUP_S + r->seconds) + 60u;
    case MODE_RESTORE:
        return (unsigned)(2 * r->count * (LINK_UP_S + RS_LIMIT_S + 25)) + 60u;
    case MODE_IDLE:
        return (unsigned)(LINK_UP_S + (double)r->count / 50 + r->seconds) + 90u;
    }
    return 60u;
}

int main(int argc, char **argv)
{
    struct run runs[16];
    size_t nruns = 0;
    bool json = false;
    for (int i = 1; i < argc;) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
            i++;
            continue;
        }
        if (nruns == sizeof runs / sizeof runs[0])
            usage();
        struct run *r = &runs[nruns++];
        memset(r, 0, sizeof *r);
        r->name = argv[i];
        if (strcmp(argv[i], "broadcast") == 0 && i + 1 < argc) {
            r->mode = MODE_BROADCAST;
            r->seconds = parse_seconds(argv[i + 1]);
            i += 2;
        } else if (strcmp(argv[i], "restore") == 0 && i + 1 < argc) {
            r->mode = MODE_RESTORE;
            r->count = parse_long(argv[i + 1], 1, 64);
            i += 2;
        } else if (strcmp(argv[i], "idle") == 0 && i + 2 < argc) {
            r->mode = MODE_IDLE;
            r->count = parse_long(argv[i + 1], 1, (MAX_CHILDREN - 1) * IDLE_PER_CLIENT);
            r->seconds = parse_seconds(argv[i + 2]);
            i += 3;
        } else {
            usage();
        }
    }
    if (nruns == 0)
        usage();
    human = json ? stderr : stdout;
    if (sodium_init() < 0)
        die("sodium_init");
    sc_log_set_level(SC_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    /* Both sides of the idle links hold thousands of descriptors. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (size_t i = 0; i < nruns; i++)
        if (runs[i].mode == MODE_IDLE && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
            rl.rlim_cur < (rlim_t)runs[i].count + 256)
            die("idle %ld needs %ld descriptors; RLIMIT_NOFILE is %llu", runs[i].count,
                runs[i].count + 256, (unsigned long long)rl.rlim_cur);
    fprintf(human, "bench_manager: libsodium %s, libevent %s, pid %d\n", sodium_version_string(),
            event_get_version(), (int)getpid());
    int status = 0;
    for (size_t i = 0; i < nruns; i++) {
        const struct run *r = &runs[i];
        alarm(deadline_s(r));
        json_t *o = r->mode == MODE_BROADCAST ? run_broadcast(r->seconds)
                    : r->mode == MODE_RESTORE ? run_restore(r->count)
                                              : run_idle(r->count, r->seconds);
        alarm(0);
        if (!o) {
            status = 1;
            continue;
        }
        json_object_set_new(o, "mode", json_string(r->name));
        if (json) {
            char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
            if (!text)
                die("json_dumps");
            printf("%s\n", text);
            fflush(stdout);
            free(text);
        }
        json_decref(o);
    }
    return status;
}
