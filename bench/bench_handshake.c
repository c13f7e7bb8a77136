/* bench/bench_handshake.c — what the listener's handshake rate limits do, in
 * real processes on loopback: a listener alone in its process (its CPU read
 * with getrusage) and a client forked from it. Each mode runs twice, against
 * the default limits and with the rate limits off, in the same run.
 *
 *   bench_handshake [--json] MODE SECONDS [MODE SECONDS ...]
 *     rate SECONDS   ~64 real link handshakes in flight from 4,064 source
 *                    addresses (127.0.1-16.1-254); each link closes as soon
 *                    as it authenticates. Authenticated handshakes/s at the
 *                    listener, measured after the global burst is spent
 *                    (burst / rate + 1 s), against the configured rate; with
 *                    the limits off, the machine's raw handshake capacity.
 *     flood SECONDS  TCP connections from one source address as fast as
 *                    possible (256 in flight), 48 random bytes each (a
 *                    message 1), closed when the listener answers or closes:
 *                    attempts/s, refusals, the listener's CPU per refused
 *                    connection; with the limits off (and the handshake caps
 *                    lifted) its CPU per processed message 1.
 *
 * Human-readable lines go to stdout, or to stderr with --json, which prints
 * one JSON object per mode on stdout. Every run has a hard deadline
 * (alarm()); clients die with their listener (PR_SET_PDEATHSIG). Exits
 * non-zero when a run fails, not when a figure is low. Never used by the
 * library. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <sodium.h>

#include "common/bench_process.h"
#include "secirc/identity.h"
#include "secirc/link.h"
#include "secirc/listener.h"
#include "secirc/log.h"
#include "link/link_stream.h"
#include "transport/transport.h"

#define RATE_IN_FLIGHT 64      /* rate: dials and handshakes at once */
#define RATE_ADDR_X 16u        /* rate: sources 127.0.1.1 .. 127.0.16.254 */
#define RATE_ADDR_Y 254u
#define RATE_ADDRESSES (RATE_ADDR_X * RATE_ADDR_Y)
#define FLOOD_IN_FLIGHT 256    /* flood: connections at once */
#define FLOOD_BYTES 48u        /* flood: a message 1's size (docs/PROTOCOL.md) */
#define FLOOD_STUCK_MS 5000u   /* flood: a connection nobody answers is dropped */
#define WARMUP_S 1.0           /* before the window: processes up, traffic steady */
#define MAX_DIAL_FAILURES 1000 /* rate: dial errors tolerated without any handshake */

static FILE *human;
static pid_t child_pid = -1;

/* For bench_die and the deadline (async-signal-safe: kill only). */
static void kill_child(void)
{
    if (child_pid > 0)
        kill(child_pid, SIGKILL);
}








static void stop_child(void)
{
    if (child_pid <= 0)
        return;
    int status;
    kill(child_pid, SIGKILL); /* a client has nothing to finish */
    while (waitpid(child_pid, &status, 0) < 0 && errno == EINTR) {
    }
    child_pid = -1;
}

/* ---- runs ------------------------------------------------------------------ */

enum mode { MODE_RATE, MODE_FLOOD };

/* One listener process and its client: a mode against one configuration. */
struct run {
    enum mode mode;
    bool limited;   /* default rate limits; else rate limits off */
    double seconds; /* the measured window */
    double warmup_s;
};

/* Counters the client keeps in memory shared with the listener process,
 * which reads them at the window's edges. Written by the client only. */
struct client_counts {
    _Atomic uint64_t attempts;      /* dials / connects started */
    _Atomic uint64_t authenticated; /* rate: links that authenticated */
    _Atomic uint64_t ended;         /* rate: links that never did; flood: answered or closed */
    _Atomic uint64_t answered;      /* flood: the listener wrote (message 2) */
    _Atomic uint64_t errors;        /* dial or connect failures, stuck connections */
};

struct keys {
    struct sc_identity *listener_id, *client_id;
    struct sc_link_key *listener_key, *client_key;
};

static void make_keys(struct keys *k)
{
    uint8_t seed[32];
    uint64_t expiry = (uint64_t)time(NULL) + 86400u;
    memset(seed, 0x33, sizeof seed);
    if (sc_identity_from_seed(seed, &k->listener_id) != 0)
        bench_die("identity");
    memset(seed, 0x44, sizeof seed);
    if (sc_identity_from_seed(seed, &k->client_id) != 0)
        bench_die("identity");
    if (sc_link_key_generate(k->listener_id, expiry, &k->listener_key) != 0 ||
        sc_link_key_generate(k->client_id, expiry, &k->client_key) != 0)
        bench_die("link key");
}

static void listener_config(const struct run *r, const struct keys *k, struct sc_listener_config *cfg)
{
    sc_listener_config_defaults(cfg);
    cfg->address = "127.0.0.1";
    cfg->port = 0;
    /* Every link has the same (untrusted) client identity: the link caps
     * would refuse it, and they are not what is measured. */
    cfg->max_links_per_peer = 1u << 20;
    cfg->max_links_per_address = 1u << 20;
    cfg->links_reserved = 0;
    cfg->fd_reserve = 0;
    if (!r->limited) {
        cfg->handshake_rate = 0;
        cfg->handshake_rate_per_address = 0;
        if (r->mode == MODE_FLOOD) { /* every message 1 is processed */
            cfg->max_handshakes = 4 * FLOOD_IN_FLIGHT;
            cfg->max_handshakes_per_address = 4 * FLOOD_IN_FLIGHT;
        }
    }
    cfg->link.heartbeat_interval_ms = 0;
    cfg->link.identity = k->listener_id;
    cfg->link.link_key = k->listener_key;
}

/* ---- listener process --------------------------------------------------------- */

struct snapshot {
    double t, cpu, client_cpu;
    struct sc_listener_stats stats;
    uint64_t attempts, authenticated, ended, answered, errors;
};

struct listener_side {
    const struct run *run;
    struct event_base *base;
    struct sc_listener *listener;
    struct client_counts *counts;
    struct event *timer;
    int phase; /* 0 warm-up, 1 window, 2 done */
    struct snapshot a, b;
};

static void take(struct listener_side *s, struct snapshot *x)
{
    x->t = bench_now_s();
    x->cpu = bench_cpu_self_s();
    x->client_cpu = bench_cpu_pid_s(child_pid);
    sc_listener_get_stats(s->listener, &x->stats);
    x->attempts = s->counts->attempts;
    x->authenticated = s->counts->authenticated;
    x->ended = s->counts->ended;
    x->answered = s->counts->answered;
    x->errors = s->counts->errors;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct listener_side *s = arg;
    if (s->phase == 0) {
        take(s, &s->a);
        s->phase = 1;
        double w = s->run->seconds;
        struct timeval tv = {(time_t)w, (suseconds_t)((w - (double)(time_t)w) * 1e6)};
        evtimer_add(s->timer, &tv);
        return;
    }
    take(s, &s->b);
    s->phase = 2;
    event_base_loopbreak(s->base);
}

#define D(field) ((double)(s->b.field - s->a.field))

static json_t *result(struct listener_side *s, const struct sc_listener_config *cfg)
{
    double secs = s->b.t - s->a.t, cpu = s->b.cpu - s->a.cpu;
    double seen = D(stats.accepted) + D(stats.refused);
    double refused = D(stats.refused), accepted = D(stats.accepted);
    double ccpu = s->a.client_cpu >= 0 && s->b.client_cpu >= 0 ? s->b.client_cpu - s->a.client_cpu : -1;
    json_error_t jerr;
    json_t *o = json_pack_ex(&jerr, 0,
        "{s:b, s:f, s:f, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
        "limited", s->run->limited, "window_s", secs, "warmup_s", s->run->warmup_s,
        "handshake_rate", (json_int_t)cfg->handshake_rate, "handshake_burst",
        (json_int_t)cfg->handshake_burst, "handshake_rate_per_address",
        (json_int_t)cfg->handshake_rate_per_address, "handshake_burst_per_address",
        (json_int_t)cfg->handshake_burst_per_address, "connections_per_s", seen / secs,
        "accepted_per_s", accepted / secs, "refused_per_s", refused / secs, "rate_limited_per_s",
        D(stats.closed[SC_REASON_RATE_LIMITED]) / secs, "handshake_limit_per_s",
        D(stats.closed[SC_REASON_HANDSHAKE_LIMIT]) / secs, "client_attempts_per_s",
        D(attempts) / secs, "client_errors_per_s", D(errors) / secs, "listener_cpu_pct",
        100.0 * cpu / secs, "client_cpu_pct", ccpu < 0 ? -1.0 : 100.0 * ccpu / secs);
    if (!o)
        bench_die("result: %s", jerr.text);
    double hs = D(stats.authenticated);
    if (s->run->mode == MODE_RATE) {
        json_object_set_new(o, "handshakes_per_s", json_real(hs / secs));
        json_object_set_new(o, "client_handshakes_per_s", json_real(D(authenticated) / secs));
        json_object_set_new(o, "addresses", json_integer(RATE_ADDRESSES));
        json_object_set_new(o, "offered_per_address_per_s", json_real(seen / secs / RATE_ADDRESSES));
        json_object_set_new(o, "listener_cpu_us_per_handshake", json_real(hs > 0 ? 1e6 * cpu / hs : -1));
        if (cfg->handshake_rate)
            json_object_set_new(o, "ratio_to_rate", json_real(hs / secs / cfg->handshake_rate));
    } else {
        json_object_set_new(o, "answered_per_s", json_real(D(answered) / secs));
        json_object_set_new(o, "listener_cpu_us_per_refused",
                            json_real(refused > 0 ? 1e6 * cpu / refused : -1));
        json_object_set_new(o, "listener_cpu_us_per_message1",
                            json_real(accepted > 0 ? 1e6 * cpu / accepted : -1));
    }
    return o;
}

#undef D

static json_t *run_listener(const struct run *r, const struct keys *k, struct client_counts *counts,
                            int port_fd)
{
    struct listener_side s;
    memset(&s, 0, sizeof s);
    s.run = r;
    s.counts = counts;
    s.base = event_base_new();
    if (!s.base)
        bench_die("event_base_new");
    struct sc_listener_config cfg;
    listener_config(r, k, &cfg); /* no callbacks: the stats count, the client closes */
    int err = sc_listener_new(s.base, &cfg, &s.listener);
    if (err)
        bench_die("sc_listener_new: %s", sc_strerror(err));
    uint16_t port = sc_listener_port(s.listener);
    s.timer = evtimer_new(s.base, on_timer, &s);
    if (!s.timer)
        bench_die("out of memory");
    struct timeval tv = {(time_t)r->warmup_s,
                         (suseconds_t)((r->warmup_s - (double)(time_t)r->warmup_s) * 1e6)};
    evtimer_add(s.timer, &tv);
    if (write(port_fd, &port, sizeof port) != (ssize_t)sizeof port)
        bench_die("port pipe: %s", strerror(errno));
    close(port_fd);
    event_base_dispatch(s.base);
    if (s.phase != 2)
        bench_die("listener loop ended early");
    json_t *o = result(&s, &cfg);
    /* Stop the client first, so no connection arrives while tearing down. */
    stop_child();
    sc_listener_free(s.listener);
    sc_link_finish_lingering(s.base);
    sc_closers_finish_all(s.base);
    event_free(s.timer);
    event_base_free(s.base);
    return o;
}

/* ---- rate client: real handshakes from many source addresses --------------------- */

struct rate_client {
    struct event_base *base;
    struct sc_link_config lc;
    struct client_counts *counts;
    uint16_t port;
    uint32_t next_addr;
    int in_flight;
    struct event *refill_ev;
};

/* Per link: whether it authenticated (its end then frees no slot). */
struct rate_link {
    struct rate_client *c;
    bool authenticated;
};

static void refill_soon(struct rate_client *c)
{
    event_active(c->refill_ev, EV_TIMEOUT, 0);
}

static void rc_on_authenticated(struct sc_link *link, void *arg)
{
    struct rate_link *rl = arg;
    rl->authenticated = true;
    rl->c->counts->authenticated++;
    rl->c->in_flight--;
    sc_link_close(link, SC_REASON_LOCAL_CLOSE);
    refill_soon(rl->c);
}

static void rc_on_closed(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg)
{
    (void)link;
    (void)reason;
    (void)by_peer;
    struct rate_link *rl = arg;
    if (!rl->authenticated) { /* refused, or a failed handshake */
        rl->c->counts->ended++;
        rl->c->in_flight--;
        refill_soon(rl->c);
    }
    free(rl);
}

static void rc_dialed(struct sc_stream *stream, int err, const char *why, void *arg)
{
    (void)why;
    struct rate_client *c = arg;
    if (err) {
        c->counts->errors++;
        c->in_flight--;
        if (c->counts->errors > MAX_DIAL_FAILURES && c->counts->authenticated == 0) {
            fprintf(stderr, "bench_handshake: rate client: dials fail: %s\n", why);
            _exit(2);
        }
        refill_soon(c);
        return;
    }
    struct rate_link *rl = calloc(1, sizeof *rl);
    if (!rl)
        _exit(2);
    rl->c = c;
    struct sc_link_config lc = c->lc;
    lc.cb_arg = rl;
    struct sc_link *link;
    if (sc_link_start(c->base, stream, &lc, NULL, &link) != 0) { /* it freed the stream */
        free(rl);
        c->counts->errors++;
        c->in_flight--;
        refill_soon(c);
    }
}

static void rc_refill(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rate_client *c = arg;
    while (c->in_flight < RATE_IN_FLIGHT) {
        uint32_t i = c->next_addr++ % RATE_ADDRESSES;
        char src[32];
        snprintf(src, sizeof src, "127.0.%u.%u", 1 + i / RATE_ADDR_Y, 1 + i % RATE_ADDR_Y);
        struct sc_dial_spec spec;
        memset(&spec, 0, sizeof spec);
        spec.host = "127.0.0.1";
        spec.port = c->port;
        spec.source_address = src; /* copied by sc_dial_start */
        spec.timeout_ms = c->lc.connection_timeout_ms;
        struct sc_dial *dial;
        if (sc_dial_start(c->base, &spec, rc_dialed, c, &dial) != 0)
            _exit(2);
        c->counts->attempts++;
        c->in_flight++;
    }
}

static void run_rate_client(const struct keys *k, struct client_counts *counts, uint16_t port)
{
    struct rate_client c;
    memset(&c, 0, sizeof c);
    c.counts = counts;
    c.port = port;
    c.base = event_base_new();
    if (!c.base)
        _exit(2);
    sc_link_config_defaults(&c.lc);
    c.lc.heartbeat_interval_ms = 0;
    c.lc.identity = k->client_id;
    c.lc.link_key = k->client_key;
    c.lc.initiator = true;
    c.lc.has_expected_id = true;
    memcpy(c.lc.expected_id, sc_identity_relay_id(k->listener_id), SC_RELAY_ID_BYTES);
    c.lc.cb.on_authenticated = rc_on_authenticated;
    c.lc.cb.on_closed = rc_on_closed;
    c.refill_ev = event_new(c.base, -1, 0, rc_refill, &c);
    if (!c.refill_ev)
        _exit(2);
    refill_soon(&c);
    event_base_dispatch(c.base); /* until the listener stops us */
    _exit(2);
}

/* ---- flood client: bare TCP from one address, a message 1 of random bytes -------- */

enum flood_phase { FLOOD_FREE, FLOOD_CONNECTING, FLOOD_WAITING };

struct flood_slot {
    int fd;
    enum flood_phase phase;
    uint64_t started_ms;
};

static void flood_close(int ep, struct flood_slot *sl, bool abortive)
{
    if (abortive) { /* we close first: a reset, so no TIME_WAIT piles up here */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(sl->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    (void)epoll_ctl(ep, EPOLL_CTL_DEL, sl->fd, NULL);
    close(sl->fd);
    sl->fd = -1;
    sl->phase = FLOOD_FREE;
}

static void flood_open(int ep, const struct sockaddr_in *to, struct flood_slot *sl, uint32_t idx,
                       struct client_counts *counts)
{
    counts->attempts++;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        counts->errors++;
        return;
    }
    if (connect(fd, (const struct sockaddr *)to, sizeof *to) != 0 && errno != EINPROGRESS) {
        counts->errors++;
        close(fd);
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = idx};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        _exit(2);
    sl->fd = fd;
    sl->phase = FLOOD_CONNECTING;
    sl->started_ms = (bench_now_ns() / 1000000u);
}

/* The slot's socket is ready: connected (send message 1), or the listener
 * answered or closed (then this end closes too). */
static void flood_event(int ep, struct flood_slot *sl, uint32_t idx, struct client_counts *counts)
{
    if (sl->phase == FLOOD_CONNECTING) {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(sl->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr) {
            counts->errors++;
            flood_close(ep, sl, false);
            return;
        }
        uint8_t msg[FLOOD_BYTES];
        randombytes_buf(msg, sizeof msg);
        if (write(sl->fd, msg, sizeof msg) != (ssize_t)sizeof msg) { /* refused already */
            counts->ended++;
            flood_close(ep, sl, false);
            return;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = idx};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, sl->fd, &ev) != 0)
            _exit(2);
        sl->phase = FLOOD_WAITING;
        return;
    }
    uint8_t buf[512];
    ssize_t n = read(sl->fd, buf, sizeof buf);
    counts->ended++;
    if (n > 0) { /* message 2: the listener did the work; we go */
        counts->answered++;
        flood_close(ep, sl, true);
    } else {
        flood_close(ep, sl, false); /* the listener closed (or reset) first */
    }
}

static void run_flood_client(struct client_counts *counts, uint16_t port)
{
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        _exit(2);
    static struct flood_slot slots[FLOOD_IN_FLIGHT];
    for (uint32_t i = 0; i < FLOOD_IN_FLIGHT; i++)
        slots[i] = (struct flood_slot){.fd = -1, .phase = FLOOD_FREE};
    uint64_t last_sweep = (bench_now_ns() / 1000000u);
    for (;;) { /* until the listener stops us */
        for (uint32_t i = 0; i < FLOOD_IN_FLIGHT; i++)
            if (slots[i].phase == FLOOD_FREE)
                flood_open(ep, &to, &slots[i], i, counts);
        struct epoll_event evs[FLOOD_IN_FLIGHT];
        int n = epoll_wait(ep, evs, FLOOD_IN_FLIGHT, 100);
        if (n < 0 && errno != EINTR)
            _exit(2);
        for (int j = 0; j < n; j++) {
            uint32_t i = evs[j].data.u32;
            if (i < FLOOD_IN_FLIGHT && slots[i].phase != FLOOD_FREE)
                flood_event(ep, &slots[i], i, counts);
        }
        uint64_t t = (bench_now_ns() / 1000000u);
        if (t - last_sweep >= 500) { /* nobody answered: give up on it */
            last_sweep = t;
            for (uint32_t i = 0; i < FLOOD_IN_FLIGHT; i++) {
                if (slots[i].phase != FLOOD_FREE && t - slots[i].started_ms > FLOOD_STUCK_MS) {
                    counts->errors++;
                    flood_close(ep, &slots[i], true);
                }
            }
        }
    }
}

/* ---- one run: a listener process with its client; the result on a pipe --------- */

static unsigned deadline_s(const struct run *r)
{
    return (unsigned)(r->warmup_s + r->seconds) + 30u;
}

/* In the listener process: fork the client, run, write the JSON line. */
static int run_pair(const struct run *r, const struct keys *k, int result_fd)
{
    struct client_counts *counts = mmap(NULL, sizeof *counts, PROT_READ | PROT_WRITE,
                                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (counts == MAP_FAILED) /* zero-filled */
        bench_die("mmap: %s", strerror(errno));
    int port_pipe[2];
    if (pipe(port_pipe) != 0)
        bench_die("pipe: %s", strerror(errno));
    pid_t pid = bench_fork_bound();
    if (pid == 0) {
        child_pid = -1;
        close(port_pipe[1]);
        close(result_fd);
        alarm(deadline_s(r) + 5);
        uint16_t port;
        struct pollfd pfd = {.fd = port_pipe[0], .events = POLLIN};
        if (poll(&pfd, 1, 10000) != 1 || read(port_pipe[0], &port, sizeof port) != (ssize_t)sizeof port)
            _exit(2); /* the listener did not come up; it reports */
        close(port_pipe[0]);
        sc_log_set_level(SC_LOG_ERROR); /* each refusal would be a warning here */
        if (r->mode == MODE_RATE)
            run_rate_client(k, counts, port);
        else
            run_flood_client(counts, port);
        _exit(2);
    }
    child_pid = pid;
    close(port_pipe[0]);
    fprintf(human, "%s %s: listener pid %d, client pid %d\n", r->mode == MODE_RATE ? "rate" : "flood",
            r->limited ? "limited" : "unlimited", (int)getpid(), (int)pid);
    alarm(deadline_s(r));
    json_t *o = run_listener(r, k, counts, port_pipe[1]);
    alarm(0);
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!text)
        bench_die("json_dumps");
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the NUL: write len + 1 bytes */
    if (write(result_fd, text, len + 1) != (ssize_t)(len + 1))
        bench_die("result pipe: %s", strerror(errno));
    free(text);
    return 0;
}

/* Each run in a fresh listener process; returns its result or NULL. */
static json_t *run_one(const struct run *r, const struct keys *k)
{
    int result_pipe[2];
    if (pipe(result_pipe) != 0)
        bench_die("pipe: %s", strerror(errno));
    pid_t pid = bench_fork_bound();
    if (pid == 0) {
        close(result_pipe[0]);
        int rc = run_pair(r, k, result_pipe[1]);
        fflush(NULL);
        _exit(rc);
    }
    close(result_pipe[1]);
    child_pid = pid;
    alarm(deadline_s(r) + 15); /* the pair has its own, shorter deadline */
    json_error_t jerr;
    FILE *f = fdopen(result_pipe[0], "r");
    json_t *o = f ? json_loadf(f, JSON_DISABLE_EOF_CHECK, &jerr) : NULL;
    if (f)
        fclose(f);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    alarm(0);
    child_pid = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !json_is_object(o)) {
        fprintf(stderr, "bench_handshake: run failed (status %d)\n", status);
        json_decref(o);
        return NULL;
    }
    return o;
}

static double num(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static void print_run(const char *mode, const json_t *o)
{
    bool limited = json_is_true(json_object_get(o, "limited"));
    if (strcmp(mode, "rate") == 0)
        fprintf(human,
                "rate %-9s: %.0f handshakes/s authenticated (rate %.0f/s)%s; %.0f connections/s "
                "reach the listener (%.0f refused); cpu listener %.0f%% (%.0f us/handshake), "
                "client %.0f%%\n",
                limited ? "limited" : "unlimited", num(o, "handshakes_per_s"), num(o, "handshake_rate"),
                limited ? "" : " = raw capacity", num(o, "connections_per_s"), num(o, "refused_per_s"),
                num(o, "listener_cpu_pct"), num(o, "listener_cpu_us_per_handshake"),
                num(o, "client_cpu_pct"));
    else
        fprintf(human,
                "flood %-9s: %.0f attempts/s, %.0f refused/s (%.0f rate_limited/s), %.0f message "
                "1s processed/s; cpu listener %.1f%% = %.2f us/refused, %.1f us/message 1; client "
                "%.0f%%\n",
                limited ? "limited" : "unlimited", num(o, "client_attempts_per_s"),
                num(o, "refused_per_s"), num(o, "rate_limited_per_s"), num(o, "accepted_per_s"),
                num(o, "listener_cpu_pct"), num(o, "listener_cpu_us_per_refused"),
                num(o, "listener_cpu_us_per_message1"), num(o, "client_cpu_pct"));
}

/* A mode: both configurations, one JSON object with the headline figures. */
static int run_mode(enum mode mode, double seconds, const struct keys *k, bool json)
{
    const char *name = mode == MODE_RATE ? "rate" : "flood";
    struct run lim = {.mode = mode, .limited = true, .seconds = seconds, .warmup_s = WARMUP_S};
    struct run unl = {.mode = mode, .limited = false, .seconds = seconds, .warmup_s = WARMUP_S};
    if (mode == MODE_RATE) /* skip the global burst: then only the rate admits */
        lim.warmup_s += (double)SC_HANDSHAKE_BURST_DEFAULT / SC_HANDSHAKE_RATE_DEFAULT;
    json_t *l = run_one(&lim, k);
    if (l)
        print_run(name, l);
    json_t *u = run_one(&unl, k);
    if (u)
        print_run(name, u);
    if (!l || !u) {
        json_decref(l);
        json_decref(u);
        return 1;
    }
    json_t *o;
    if (mode == MODE_RATE) {
        o = json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:f}", "mode", name, "handshakes_per_s",
                      num(l, "handshakes_per_s"), "configured_rate", num(l, "handshake_rate"),
                      "ratio_to_rate", num(l, "ratio_to_rate"), "listener_cpu_pct",
                      num(l, "listener_cpu_pct"), "raw_handshakes_per_s", num(u, "handshakes_per_s"),
                      "raw_listener_cpu_pct", num(u, "listener_cpu_pct"));
    } else {
        double per_refused = num(l, "listener_cpu_us_per_refused");
        double per_msg1 = num(u, "listener_cpu_us_per_message1");
        o = json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "mode", name,
                      "attempts_per_s", num(l, "client_attempts_per_s"), "refused_per_s",
                      num(l, "refused_per_s"), "rate_limited_per_s", num(l, "rate_limited_per_s"),
                      "listener_cpu_pct", num(l, "listener_cpu_pct"), "cpu_us_per_refused",
                      per_refused, "cpu_us_per_message1", per_msg1, "unlimited_listener_cpu_pct",
                      num(u, "listener_cpu_pct"), "saving_ratio",
                      per_refused > 0 ? per_msg1 / per_refused : -1.0);
    }
    json_object_set_new(o, "limited", l);
    json_object_set_new(o, "unlimited", u);
    if (json) {
        char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (!text)
            bench_die("json_dumps");
        printf("%s\n", text);
        fflush(stdout);
        free(text);
    }
    json_decref(o);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_handshake [--json] MODE SECONDS [MODE SECONDS ...]\n"
                    "  rate SECONDS | flood SECONDS\n");
    exit(1);
}

int main(int argc, char **argv)
{
    enum mode modes[8];
    double secs[8];
    size_t n = 0;
    bool json = false;
    for (int i = 1; i < argc;) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
            i++;
            continue;
        }
        if (n == sizeof modes / sizeof modes[0] || i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "rate") == 0)
            modes[n] = MODE_RATE;
        else if (strcmp(argv[i], "flood") == 0)
            modes[n] = MODE_FLOOD;
        else
            usage();
        char *end;
        secs[n] = strtod(argv[i + 1], &end);
        if (*end || !(secs[n] >= 0.5 && secs[n] <= 600))
            usage();
        n++;
        i += 2;
    }
    if (n == 0)
        usage();
    human = json ? stderr : stdout;
    bench_init("bench_handshake", kill_child);
    struct keys k;
    make_keys(&k);
    fprintf(human, "bench_handshake: libsodium %s, libevent %s, default limits: %u/s burst %u, "
                   "per address %u/s burst %u\n",
            sodium_version_string(), event_get_version(), SC_HANDSHAKE_RATE_DEFAULT,
            SC_HANDSHAKE_BURST_DEFAULT, SC_HANDSHAKE_RATE_PER_ADDRESS_DEFAULT,
            SC_HANDSHAKE_BURST_PER_ADDRESS_DEFAULT);
    int status = 0;
    for (size_t i = 0; i < n; i++)
        status |= run_mode(modes[i], secs[i], &k, json);
    sc_link_key_free(k.listener_key);
    sc_link_key_free(k.client_key);
    sc_identity_free(k.listener_id);
    sc_identity_free(k.client_id);
    return status;
}
