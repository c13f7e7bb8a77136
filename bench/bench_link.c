/* bench/bench_link.c — what one secure link does on loopback, measured
 * between two processes: a listener (responder) and a connector (initiator)
 * forked from this one, both on 127.0.0.1 with an ephemeral port.
 *
 *   bench_link [--json] MODE ARGS [MODE ARGS ...]
 *     bulk SECONDS SIZE   one link, SIZE-byte messages kept queued; MB/s and
 *                         GB/s (10^6, 10^9 payload bytes) at the receiver
 *     rate SECONDS SIZE   the same, reported as messages/s (SIZE 64)
 *     tls-bulk, tls-rate  the same over the tls transport layer (TLS 1.3,
 *                         channel binding; a throw-away self-signed P-256
 *                         certificate made in a temporary directory)
 *     rtt COUNT           16-byte request/echo round trips, then COUNT
 *                         sc_link_ping round trips; p50/p99/p999 in µs
 *     idle N              N authenticated idle links; RSS per link on both
 *                         sides (VmRSS delta / N)
 *     rawrtt COUNT        the floor under rtt: the same 16-byte echo over
 *                         plain libevent socket bufferevents, no link (the
 *                         echo written from the read callback)
 *   --ws (before the modes): every link runs over WebSocket (the websocket
 *   layer on both sides, ws://127.0.0.1:PORT/relay); rawrtt stays raw.
 *
 * Human-readable lines go to stdout, or to stderr with --json, which prints
 * one JSON object per mode on stdout. Every run has a hard deadline
 * (alarm()); the connector dies with its parent (PR_SET_PDEATHSIG). Exits
 * non-zero when a run fails, not when a figure is low. Never used by the
 * library. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <sodium.h>

#include "common/bench_process.h"
#include "secirc/identity.h"
#include "secirc/link.h"
#include "secirc/listener.h"
#include "secirc/log.h"
#include "link/link_stream.h"
#include "transport/tls.h"
#include "transport/transport.h"
#include "transport/websocket.h"

#define WARMUP_S 1.0           /* bulk/rate: traffic before the window opens */
#define RTT_WARMUP 1000        /* round trips not recorded (as tcprtt.c) */
#define RTT_SIZE 16u
#define IDLE_IN_FLIGHT 50      /* idle: dials and handshakes at once */
#define IDLE_SETTLE_S 1.0      /* idle: quiet time before reading RSS */
#define IDLE_MAX_FAILURES 10
#define POKE_MS 200            /* bulk/rate: safety net if a resume is missed */
#define MAX_SIZE 65000u

static FILE *human;
static pid_t child_pid = -1;

/* For bench_die and the deadline (async-signal-safe: kill only). */
static void kill_child(void)
{
    if (child_pid > 0)
        kill(child_pid, SIGKILL);
}
static bool g_ws; /* --ws: links over the websocket layer */
static const struct sc_ws_params ws_server_params = {.path = NULL};








static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Percentiles of n samples (ns) into a JSON object, in µs. */
static json_t *percentiles(uint64_t *v, size_t n)
{
    if (n == 0)
        return json_pack("{s:I}", "n", (json_int_t)0);
    qsort(v, n, sizeof *v, cmp_u64);
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "n", (json_int_t)n, "p50_us",
                     (double)v[n / 2] / 1e3, "p99_us", (double)v[(size_t)((double)n * 0.99)] / 1e3,
                     "p999_us", (double)v[(size_t)((double)n * 0.999)] / 1e3, "min_us",
                     (double)v[0] / 1e3, "max_us", (double)v[n - 1] / 1e3);
}

/* ---- the run: modes and their parameters ------------------------------------ */

enum mode { MODE_BULK, MODE_RATE, MODE_RTT, MODE_IDLE, MODE_RAWRTT };

struct run {
    enum mode mode;
    const char *name;
    double seconds; /* bulk, rate */
    size_t size;    /* bulk, rate */
    long count;     /* rtt: round trips; idle: links */
    bool tls;       /* tls-bulk, tls-rate: over the tls layer */
};

/* What both processes share: keys from fixed seeds, the link template. */
struct keys {
    struct sc_identity *listener_id, *connector_id;
    struct sc_link_key *listener_key, *connector_key;
    SSL_CTX *tls_server, *tls_client; /* when a run is over tls */
};

/* A throw-away certificate and both TLS contexts; the files are removed
 * at once (the server context holds what it read). */
static void make_tls(struct keys *k)
{
    char dir[] = "/tmp/bench_link-tls-XXXXXX", cert[64], key[64], err[256];
    if (!mkdtemp(dir))
        bench_die("mkdtemp: %s", strerror(errno));
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    int rc = sc_tls_self_signed(cert, key, "127.0.0.1", err, sizeof err);
    if (!rc)
        rc = sc_tls_server_ctx_new(cert, key, 0, &k->tls_server, err, sizeof err);
    unlink(cert);
    unlink(key);
    rmdir(dir);
    if (rc || sc_tls_client_ctx_new(0, SC_TLS_VERIFY_NONE, NULL, &k->tls_client, err, sizeof err))
        bench_die("tls: %s", err);
}

static void make_keys(struct keys *k)
{
    uint8_t seed[32];
    uint64_t expiry = (uint64_t)time(NULL) + 86400u;
    memset(seed, 0x11, sizeof seed);
    if (sc_identity_from_seed(seed, &k->listener_id) != 0)
        bench_die("identity");
    memset(seed, 0x22, sizeof seed);
    if (sc_identity_from_seed(seed, &k->connector_id) != 0)
        bench_die("identity");
    if (sc_link_key_generate(k->listener_id, expiry, &k->listener_key) != 0 ||
        sc_link_key_generate(k->connector_id, expiry, &k->connector_key) != 0)
        bench_die("link key");
}

static void link_template(const struct run *r, struct sc_link_config *lc)
{
    sc_link_config_defaults(lc);
    /* No timed heartbeats: rtt sends its own pings, idle must stay idle,
     * bulk/rate measure data only. */
    lc->heartbeat_interval_ms = 0;
    (void)r;
}

/* ---- listener process (responder, receiver, echo) ------------------------ */

struct listener_side {
    const struct run *run;
    struct event_base *base;
    struct sc_listener *listener;
    struct event *window_ev, *settle_ev, *result_ev;
    struct evbuffer *result_buf;
    json_t *connector_result;
    bool child_eof;
    bool failed;
    const char *error;
    /* bulk / rate */
    bool started;
    uint64_t bytes, msgs;
    uint64_t win_bytes0, win_msgs0;
    double win_t0, win_cpu0, win_child_cpu0;
    int phase; /* 0 waiting, 1 warm-up, 2 window, 3 done */
    json_t *result;
    /* idle */
    long authenticated, closed; /* authenticated: open ones */
    bool settling;
    long rss_before_kb, rss_after_kb;
    bool own_done;
};

static void listener_maybe_finish(struct listener_side *s)
{
    bool need_child = s->run->mode != MODE_BULK && s->run->mode != MODE_RATE;
    bool need_own = s->run->mode != MODE_RTT && s->run->mode != MODE_RAWRTT;
    if ((!need_child || s->connector_result) && (!need_own || s->own_done))
        event_base_loopbreak(s->base);
}

static void listener_fail(struct listener_side *s, const char *why)
{
    if (!s->failed) {
        s->failed = true;
        s->error = why;
    }
    event_base_loopbreak(s->base);
}

static void on_window(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct listener_side *s = arg;
    double t = bench_now_s();
    if (s->phase == 1) { /* warm-up over: open the window */
        s->phase = 2;
        s->win_t0 = t;
        s->win_bytes0 = s->bytes;
        s->win_msgs0 = s->msgs;
        s->win_cpu0 = bench_cpu_self_s();
        s->win_child_cpu0 = bench_cpu_pid_s(child_pid);
        struct timeval tv = {(time_t)s->run->seconds,
                             (suseconds_t)((s->run->seconds - (double)(time_t)s->run->seconds) * 1e6)};
        evtimer_add(s->window_ev, &tv);
        return;
    }
    if (s->phase != 2)
        return;
    s->phase = 3;
    double secs = t - s->win_t0;
    double bytes = (double)(s->bytes - s->win_bytes0), msgs = (double)(s->msgs - s->win_msgs0);
    double rcpu = bench_cpu_self_s() - s->win_cpu0, scpu = bench_cpu_pid_s(child_pid);
    double scpu_pct = (scpu >= 0 && s->win_child_cpu0 >= 0) ? 100.0 * (scpu - s->win_child_cpu0) / secs : -1;
    s->result = json_pack("{s:f, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "window_s", secs,
                          "bytes", (json_int_t)(bytes), "messages", (json_int_t)msgs, "mb_s",
                          bytes / secs / 1e6, "gb_s", bytes / secs / 1e9, "msgs_s", msgs / secs,
                          "gbit_s", bytes * 8 / secs / 1e9, "receiver_cpu_pct", 100.0 * rcpu / secs,
                          "sender_cpu_pct", scpu_pct);
    s->own_done = true;
    listener_maybe_finish(s);
}

static void on_settle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct listener_side *s = arg;
    s->rss_after_kb = bench_rss_kb();
    s->own_done = true;
    listener_maybe_finish(s);
}

static void l_on_authenticated(struct sc_link *link, void *arg)
{
    (void)link;
    struct listener_side *s = arg;
    s->authenticated++;
    if (s->run->mode == MODE_IDLE && s->authenticated == s->run->count && !s->settling) {
        s->settling = true;
        struct timeval tv = {(time_t)IDLE_SETTLE_S, 0};
        evtimer_add(s->settle_ev, &tv);
    }
}

static void l_on_link(struct sc_listener *l, struct sc_link *link, void *arg)
{
    (void)l;
    l_on_authenticated(link, arg);
}

static void l_on_message(struct sc_link *link, const struct sc_relay_message *m, void *arg)
{
    struct listener_side *s = arg;
    switch (s->run->mode) {
    case MODE_BULK:
    case MODE_RATE:
        if (m->len != s->run->size) {
            listener_fail(s, "message of the wrong size");
            return;
        }
        s->bytes += m->len;
        s->msgs++;
        if (!s->started) { /* first message: warm-up starts */
            s->started = true;
            s->phase = 1;
            struct timeval tv = {(time_t)WARMUP_S, 0};
            evtimer_add(s->window_ev, &tv);
        }
        break;
    case MODE_RTT:
        if (sc_link_send(link, m->id, m->hop_limit, m->flags, m->payload, m->len) != 0)
            listener_fail(s, "echo failed");
        break;
    case MODE_IDLE:
    case MODE_RAWRTT:
        break;
    }
}

static void l_on_closed(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg)
{
    struct listener_side *s = arg;
    s->closed++;
    if (sc_link_peer_id(link))
        s->authenticated--; /* count open authenticated links only */
    if (s->phase == 3 || s->own_done)
        return; /* measured already; the connector goes away */
    fprintf(stderr, "bench_link: listener: link closed reason=%s by=%s\n", sc_reason_name(reason),
            by_peer ? "peer" : "local");
    if (s->run->mode != MODE_IDLE || s->closed > IDLE_MAX_FAILURES)
        listener_fail(s, "a link closed during the run");
}

/* The connector's result: one JSON line on the pipe. */
static void on_result(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct listener_side *s = arg;
    int n = evbuffer_read(s->result_buf, fd, 65536);
    if (n <= 0) {
        s->child_eof = true;
        event_del(s->result_ev);
        if (!s->connector_result)
            listener_fail(s, "connector ended without a result");
        return;
    }
    size_t len;
    char *line = evbuffer_readln(s->result_buf, &len, EVBUFFER_EOL_LF);
    if (!line)
        return;
    json_error_t jerr;
    s->connector_result = json_loads(line, 0, &jerr);
    free(line);
    if (!s->connector_result || !json_is_object(s->connector_result)) {
        listener_fail(s, "connector result is not JSON");
        return;
    }
    json_t *err = json_object_get(s->connector_result, "error");
    if (err) {
        fprintf(stderr, "bench_link: connector: %s\n", json_string_value(err));
        listener_fail(s, "connector failed");
        return;
    }
    listener_maybe_finish(s);
}

/* rawrtt: echo whatever arrives, at once, from the read callback. */
static void raw_echo(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void raw_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                       int salen, void *arg)
{
    (void)lev;
    (void)sa;
    (void)salen;
    struct listener_side *s = arg;
    sc_tcp_tune(fd); /* TCP_NODELAY, as our links */
    struct bufferevent *bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        listener_fail(s, "bufferevent_socket_new");
        return;
    }
    bufferevent_setcb(bev, raw_echo, NULL, NULL, s);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static json_t *run_listener(const struct run *r, const struct keys *k, int port_fd, int result_fd)
{
    struct listener_side s;
    memset(&s, 0, sizeof s);
    s.run = r;
    s.base = event_base_new();
    if (!s.base)
        bench_die("event_base_new");
    struct sc_listener_config cfg;
    sc_listener_config_defaults(&cfg);
    cfg.address = "127.0.0.1";
    cfg.port = 0;
    cfg.max_handshakes = 1024;
    cfg.max_handshakes_per_address = 256; /* idle: IDLE_IN_FLIGHT from one address */
    /* Every link comes from one address and one untrusted identity: lift
     * the listener's floor limits and rates (the handshake-rate benchmark
     * measures them on their own). */
    cfg.handshake_rate = 0;
    cfg.handshake_rate_per_address = 0;
    cfg.max_links = 1u << 20;
    cfg.max_links_per_address = 1u << 20;
    cfg.max_links_per_peer = 1u << 20;
    cfg.links_reserved = 0;
    cfg.fd_reserve = 0;
    cfg.on_link = l_on_link;
    cfg.arg = &s;
    link_template(r, &cfg.link);
    cfg.link.identity = k->listener_id;
    cfg.link.link_key = k->listener_key;
    cfg.link.cb.on_authenticated = l_on_authenticated;
    cfg.link.cb.on_message = l_on_message;
    cfg.link.cb.on_closed = l_on_closed;
    cfg.link.cb_arg = &s;
    struct evconnlistener *raw = NULL;
    uint16_t port;
    if (r->mode == MODE_RAWRTT) {
        struct sockaddr_in sin;
        socklen_t sl = sizeof sin;
        memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        raw = evconnlistener_new_bind(s.base, raw_accept, &s, LEV_OPT_CLOSE_ON_FREE, 16,
                                      (struct sockaddr *)&sin, sizeof sin);
        if (!raw || getsockname(evconnlistener_get_fd(raw), (struct sockaddr *)&sin, &sl) != 0)
            bench_die("raw listener: %s", strerror(errno));
        port = ntohs(sin.sin_port);
    } else {
        int err = sc_listener_new(s.base, &cfg, &s.listener);
        static struct sc_tls_params tls;
        tls.ctx = k->tls_server;
        struct sc_layer_spec layer = {.ops = &sc_layer_tls, .params = &tls};
        if (g_ws)
            layer = (struct sc_layer_spec){.ops = &sc_layer_websocket, .params = &ws_server_params};
        if (!err && (g_ws || r->tls))
            err = sc_listener_set_layers(s.listener, &layer, 1);
        if (err)
            bench_die("sc_listener_new: %s", sc_strerror(err));
        port = sc_listener_port(s.listener);
    }
    s.window_ev = evtimer_new(s.base, on_window, &s);
    s.settle_ev = evtimer_new(s.base, on_settle, &s);
    s.result_buf = evbuffer_new();
    s.result_ev = event_new(s.base, result_fd, EV_READ | EV_PERSIST, on_result, &s);
    if (!s.window_ev || !s.settle_ev || !s.result_buf || !s.result_ev)
        bench_die("out of memory");
    event_add(s.result_ev, NULL);
    s.rss_before_kb = bench_rss_kb(); /* before any link */
    if (write(port_fd, &port, sizeof port) != (ssize_t)sizeof port)
        bench_die("port pipe: %s", strerror(errno));
    close(port_fd);

    event_base_dispatch(s.base);

    json_t *out = NULL;
    if (s.failed) {
        fprintf(stderr, "bench_link: %s run failed: %s\n", r->name, s.error);
    } else if (r->mode == MODE_BULK || r->mode == MODE_RATE) {
        out = s.result;
        s.result = NULL;
        json_object_set_new(out, "size", json_integer((json_int_t)r->size));
        json_object_set_new(out, "seconds", json_real(r->seconds));
        json_object_set_new(out, "warmup_s", json_real(WARMUP_S));
        json_object_set_new(out, "transport", json_string(g_ws ? "websocket" : "tcp"));
    } else if (r->mode == MODE_RTT || r->mode == MODE_RAWRTT) {
        out = json_deep_copy(s.connector_result);
    } else {
        long n = r->count;
        out = json_pack("{s:I, s:I, s:I, s:f}", "links", (json_int_t)n, "listener_rss_before_kb",
                        (json_int_t)s.rss_before_kb, "listener_rss_after_kb",
                        (json_int_t)s.rss_after_kb, "listener_bytes_per_link",
                        (double)(s.rss_after_kb - s.rss_before_kb) * 1024.0 / (double)n);
        json_object_update(out, s.connector_result);
    }
    /* The links end with the process; the connector is stopped by PID. */
    if (raw)
        evconnlistener_free(raw);
    json_decref(s.connector_result);
    json_decref(s.result);
    return out;
}

/* ---- connector process (initiator, sender, requester) -------------------- */

struct connector_side {
    const struct run *run;
    SSL_CTX *tls_client; /* run->tls */
    struct event_base *base;
    struct sc_link_config lc;
    uint16_t port;
    int result_fd;
    bool reported;
    /* bulk / rate / rtt: the one link */
    struct sc_link *link;
    uint8_t *payload;
    struct event *poke_ev, *next_ev;
    uint64_t sent, sent_at_poke, eagain, poke_resumes;
    /* rtt */
    int rtt_phase; /* 0 echo warm-up+samples, 1 ping warm-up+samples */
    long rtt_done;
    uint64_t t0;
    uint64_t *echo_ns, *ping_ns;
    uint64_t *ping_link_us;
    /* idle */
    long dialing, handshaking, authenticated, failures;
    long rss_before_kb;
    struct event *settle_ev;
};

static void report(struct connector_side *c, json_t *obj)
{
    if (c->reported) {
        json_decref(obj);
        return;
    }
    c->reported = true;
    char *text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(obj);
    if (!text)
        _exit(2);
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the NUL: write len + 1 bytes */
    if (write(c->result_fd, text, len + 1) != (ssize_t)(len + 1))
        _exit(2);
    free(text);
}

static void c_fail(struct connector_side *c, const char *why)
{
    report(c, json_pack("{s:s}", "error", why));
    event_base_loopbreak(c->base);
}

static void pump(struct connector_side *c)
{
    static const uint8_t id[SC_MESSAGE_ID_BYTES];
    while (c->link) {
        int err = sc_link_send(c->link, id, 8, 0, c->payload, c->run->size);
        if (err == SC_EAGAIN) {
            c->eagain++;
            return; /* resumes on on_backpressure(false) */
        }
        if (err) {
            c_fail(c, sc_strerror(err));
            return;
        }
        c->sent++;
    }
}

/* A safety net, not the pacing: if nothing was sent for a whole period
 * while the link is up, a resume (on_backpressure(false)) went missing. */
static void on_poke(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct connector_side *c = arg;
    if (c->link && c->sent == c->sent_at_poke) {
        pump(c);
        if (c->sent != c->sent_at_poke) {
            c->poke_resumes++;
            fprintf(stderr, "bench_link: connector: sending resumed by the safety timer "
                            "(no on_backpressure(false) for %d ms)\n", POKE_MS);
        }
    }
    c->sent_at_poke = c->sent;
}

static void rtt_step(struct connector_side *c);

static void on_next(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rtt_step(arg);
}

static void rtt_report(struct connector_side *c)
{
    long n = c->run->count;
    json_t *obj = json_pack("{s:I, s:I, s:o, s:o}", "count", (json_int_t)n, "size",
                            (json_int_t)RTT_SIZE, "echo", percentiles(c->echo_ns, (size_t)n),
                            "ping", percentiles(c->ping_ns, (size_t)n));
    /* The link's own RTT samples (µs, from its clock), for comparison. */
    qsort(c->ping_link_us, (size_t)n, sizeof *c->ping_link_us, cmp_u64);
    json_object_set_new(obj, "ping_link_p50_us", json_real((double)c->ping_link_us[n / 2]));
    json_object_set_new(obj, "ping_link_p99_us",
                        json_real((double)c->ping_link_us[(size_t)((double)n * 0.99)]));
    report(c, obj);
}

/* Sends the next request (phase 0) or ping (phase 1). */
static void rtt_step(struct connector_side *c)
{
    static const uint8_t id[SC_MESSAGE_ID_BYTES];
    if (!c->link)
        return;
    if (c->rtt_phase == 0) {
        c->t0 = bench_now_ns();
        int err = sc_link_send(c->link, id, 8, 0, c->payload, RTT_SIZE);
        if (err)
            c_fail(c, sc_strerror(err));
        return;
    }
    c->t0 = bench_now_ns();
    int err = sc_link_ping(c->link);
    if (err)
        c_fail(c, sc_strerror(err));
}

/* One round trip is over: record it (after the warm-up), go on. */
static void rtt_sample(struct connector_side *c, uint64_t link_us)
{
    uint64_t dt = bench_now_ns() - c->t0;
    long i = c->rtt_done++ - RTT_WARMUP;
    if (i >= 0) {
        if (c->rtt_phase == 0) {
            c->echo_ns[i] = dt;
        } else {
            c->ping_ns[i] = dt;
            c->ping_link_us[i] = link_us;
        }
    }
    if (i + 1 >= c->run->count) {
        if (c->rtt_phase == 1) {
            rtt_report(c);
            event_base_loopbreak(c->base);
            return;
        }
        c->rtt_phase = 1;
        c->rtt_done = 0;
    }
    /* The next one from the loop, not from inside the link's callback. */
    event_active(c->next_ev, EV_TIMEOUT, 0);
}

static void c_on_rtt(struct sc_link *link, uint32_t rtt_us, void *arg)
{
    (void)link;
    struct connector_side *c = arg;
    if (c->run->mode == MODE_RTT && c->rtt_phase == 1)
        rtt_sample(c, rtt_us);
}

static void c_on_message(struct sc_link *link, const struct sc_relay_message *m, void *arg)
{
    (void)link;
    struct connector_side *c = arg;
    if (c->run->mode != MODE_RTT || c->rtt_phase != 0)
        return;
    if (m->len != RTT_SIZE) {
        c_fail(c, "echo of the wrong size");
        return;
    }
    rtt_sample(c, 0);
}

static void c_on_backpressure(struct sc_link *link, bool full, void *arg)
{
    (void)link;
    struct connector_side *c = arg;
    if (!full)
        pump(c);
}

static void idle_dial_more(struct connector_side *c);

static void on_idle_settle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct connector_side *c = arg;
    long after = bench_rss_kb();
    long n = c->run->count;
    report(c, json_pack("{s:I, s:I, s:f, s:I}", "connector_rss_before_kb",
                        (json_int_t)c->rss_before_kb, "connector_rss_after_kb", (json_int_t)after,
                        "connector_bytes_per_link",
                        (double)(after - c->rss_before_kb) * 1024.0 / (double)n, "failures",
                        (json_int_t)c->failures));
    /* Stays up, links open, until the listener has measured and stops us. */
}

static void c_on_authenticated(struct sc_link *link, void *arg)
{
    struct connector_side *c = arg;
    switch (c->run->mode) {
    case MODE_BULK:
    case MODE_RATE:
        c->link = link;
        pump(c);
        break;
    case MODE_RTT:
        c->link = link;
        rtt_step(c);
        break;
    case MODE_IDLE:
        c->handshaking--;
        c->authenticated++;
        if (c->authenticated == c->run->count) {
            struct timeval tv = {(time_t)IDLE_SETTLE_S, 0};
            evtimer_add(c->settle_ev, &tv);
        } else {
            idle_dial_more(c);
        }
        break;
    case MODE_RAWRTT: /* no links */
        break;
    }
}

static void c_on_closed(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg)
{
    struct connector_side *c = arg;
    fprintf(stderr, "bench_link: connector: link closed reason=%s by=%s\n", sc_reason_name(reason),
            by_peer ? "peer" : "local");
    if (c->run->mode == MODE_IDLE) {
        if (sc_link_peer_id(link)) /* it had authenticated */
            c->authenticated--;
        else
            c->handshaking--;
        if (++c->failures > IDLE_MAX_FAILURES) {
            c_fail(c, "too many idle links failed");
            return;
        }
        idle_dial_more(c);
        return;
    }
    if (link == c->link)
        c->link = NULL;
    c_fail(c, "link closed");
}

static void on_dialed(struct sc_stream *stream, int err, const char *why, void *arg)
{
    struct connector_side *c = arg;
    c->dialing--;
    if (err) {
        fprintf(stderr, "bench_link: connector: dial failed: %s\n", why);
        if (c->run->mode != MODE_IDLE || ++c->failures > IDLE_MAX_FAILURES) {
            c_fail(c, "dial failed");
            return;
        }
        idle_dial_more(c);
        return;
    }
    struct sc_link *link;
    err = sc_link_start(c->base, stream, &c->lc, NULL, &link);
    if (err) {
        c_fail(c, sc_strerror(err));
        return;
    }
    sc_link_set_label(link, "listener");
    c->handshaking++;
}

static void dial_one(struct connector_side *c)
{
    struct sc_dial_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.host = "127.0.0.1";
    spec.port = c->port;
    spec.timeout_ms = c->lc.connection_timeout_ms;
    static struct sc_ws_params ws_client_params = {.host = "127.0.0.1", .subprotocol = true};
    static struct sc_tls_params tls;
    if (g_ws) {
        ws_client_params.port = c->port;
        spec.nlayers = 1;
        spec.layers[0] = (struct sc_layer_spec){.ops = &sc_layer_websocket,
                                                .params = &ws_client_params};
    } else if (c->run->tls) {
        tls.ctx = c->tls_client;
        tls.host = spec.host;
        tls.channel_binding = true;
        spec.nlayers = 1;
        spec.layers[0] = (struct sc_layer_spec){.ops = &sc_layer_tls, .params = &tls};
    }
    struct sc_dial *dial;
    int err = sc_dial_start(c->base, &spec, on_dialed, c, &dial);
    if (err) {
        c_fail(c, sc_strerror(err));
        return;
    }
    c->dialing++;
}

static void idle_dial_more(struct connector_side *c)
{
    while (c->dialing + c->handshaking < IDLE_IN_FLIGHT &&
           c->authenticated + c->dialing + c->handshaking < c->run->count && !c->reported)
        dial_one(c);
}

/* rawrtt client: one 16-byte request at a time, timed like rtt's echo. */
static void raw_reply(struct bufferevent *bev, void *arg)
{
    struct connector_side *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (evbuffer_get_length(in) >= RTT_SIZE) {
        evbuffer_drain(in, RTT_SIZE);
        uint64_t dt = bench_now_ns() - c->t0;
        long i = c->rtt_done++ - RTT_WARMUP;
        if (i >= 0)
            c->echo_ns[i] = dt;
        if (i + 1 >= c->run->count) {
            report(c, json_pack("{s:I, s:I, s:o}", "count", (json_int_t)c->run->count, "size",
                                (json_int_t)RTT_SIZE, "echo",
                                percentiles(c->echo_ns, (size_t)c->run->count)));
            event_base_loopbreak(c->base);
            return;
        }
        c->t0 = bench_now_ns();
        bufferevent_write(bev, c->payload, RTT_SIZE);
    }
}

static void raw_event(struct bufferevent *bev, short what, void *arg)
{
    struct connector_side *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        sc_tcp_tune(bufferevent_getfd(bev));
        c->t0 = bench_now_ns();
        bufferevent_write(bev, c->payload, RTT_SIZE);
        return;
    }
    c_fail(c, "raw connection failed");
}

static void raw_connect(struct connector_side *c)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(c->port);
    struct bufferevent *bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        _exit(2);
    bufferevent_setcb(bev, raw_reply, NULL, raw_event, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(bev, (struct sockaddr *)&sin, sizeof sin) != 0)
        c_fail(c, "raw connect failed");
}

static void run_connector(const struct run *r, const struct keys *k, int port_fd, int result_fd)
{
    struct connector_side c;
    memset(&c, 0, sizeof c);
    c.run = r;
    c.tls_client = k->tls_client;
    c.result_fd = result_fd;
    struct pollfd pfd = {.fd = port_fd, .events = POLLIN};
    if (poll(&pfd, 1, 10000) != 1 || read(port_fd, &c.port, sizeof c.port) != (ssize_t)sizeof c.port)
        _exit(2); /* the listener did not come up; it reports */
    close(port_fd);
    c.base = event_base_new();
    if (!c.base)
        _exit(2);
    link_template(r, &c.lc);
    c.lc.identity = k->connector_id;
    c.lc.link_key = k->connector_key;
    c.lc.initiator = true;
    c.lc.has_expected_id = true;
    memcpy(c.lc.expected_id, sc_identity_relay_id(k->listener_id), SC_RELAY_ID_BYTES);
    c.lc.cb.on_authenticated = c_on_authenticated;
    c.lc.cb.on_message = c_on_message;
    c.lc.cb.on_rtt = c_on_rtt;
    c.lc.cb.on_backpressure = c_on_backpressure;
    c.lc.cb.on_closed = c_on_closed;
    c.lc.cb_arg = &c;
    size_t plen = r->mode == MODE_BULK || r->mode == MODE_RATE ? r->size : RTT_SIZE;
    c.payload = malloc(plen);
    if (!c.payload)
        _exit(2);
    memset(c.payload, 'p', plen); /* fixed content, never regenerated */

    if (r->mode == MODE_BULK || r->mode == MODE_RATE) {
        c.poke_ev = event_new(c.base, -1, EV_PERSIST, on_poke, &c);
        struct timeval tv = {0, POKE_MS * 1000};
        if (!c.poke_ev || event_add(c.poke_ev, &tv) != 0)
            _exit(2);
    }
    if (r->mode == MODE_RTT || r->mode == MODE_RAWRTT) {
        size_t n = (size_t)r->count;
        c.echo_ns = calloc(n, sizeof *c.echo_ns);
        c.ping_ns = calloc(n, sizeof *c.ping_ns);
        c.ping_link_us = calloc(n, sizeof *c.ping_link_us);
        c.next_ev = event_new(c.base, -1, 0, on_next, &c);
        if (!c.echo_ns || !c.ping_ns || !c.ping_link_us || !c.next_ev)
            _exit(2);
    }
    if (r->mode == MODE_IDLE) {
        c.settle_ev = evtimer_new(c.base, on_idle_settle, &c);
        if (!c.settle_ev)
            _exit(2);
        c.rss_before_kb = bench_rss_kb(); /* before any link */
        idle_dial_more(&c);
    } else if (r->mode == MODE_RAWRTT) {
        raw_connect(&c);
    } else {
        dial_one(&c);
    }
    event_base_dispatch(c.base);
    /* Every mode stays up until the listener has what it needs and stops
     * us by PID (or the deadline passes): exiting first would close the
     * links under a listener that is still measuring. */
    for (;;)
        pause();
}

/* ---- one mode: fork, run both sides, print ------------------------------ */

static void print_human(const struct run *r, const json_t *o)
{
    switch (r->mode) {
    case MODE_BULK:
    case MODE_RATE:
        fprintf(human,
                "%s%s: %zu-byte messages, %.1f s window: %.1f MB/s (%.3f GB/s, %.3f Gbit/s), "
                "%.0f msg/s; cpu receiver %.0f%% sender %.0f%%\n",
                r->name, g_ws ? " (websocket)" : "", r->size, json_real_value(json_object_get(o, "window_s")),
                json_real_value(json_object_get(o, "mb_s")),
                json_real_value(json_object_get(o, "gb_s")),
                json_real_value(json_object_get(o, "gbit_s")),
                json_real_value(json_object_get(o, "msgs_s")),
                json_real_value(json_object_get(o, "receiver_cpu_pct")),
                json_real_value(json_object_get(o, "sender_cpu_pct")));
        break;
    case MODE_RTT:
    case MODE_RAWRTT: {
        const char *names[] = {"echo", "ping"};
        for (int i = 0; i < (r->mode == MODE_RTT ? 2 : 1); i++) {
            json_t *p = json_object_get(o, names[i]);
            fprintf(human, "%s %s (%u B, n=%lld): p50 %.1f us  p99 %.1f us  p999 %.1f us  max %.1f us\n",
                    r->name, names[i], RTT_SIZE, (long long)json_integer_value(json_object_get(p, "n")),
                    json_real_value(json_object_get(p, "p50_us")),
                    json_real_value(json_object_get(p, "p99_us")),
                    json_real_value(json_object_get(p, "p999_us")),
                    json_real_value(json_object_get(p, "max_us")));
        }
        break;
    }
    case MODE_IDLE:
        fprintf(human,
                "idle: %ld links: listener %.0f B/link (RSS %lld -> %lld kB), connector %.0f B/link "
                "(RSS %lld -> %lld kB)\n",
                r->count, json_real_value(json_object_get(o, "listener_bytes_per_link")),
                (long long)json_integer_value(json_object_get(o, "listener_rss_before_kb")),
                (long long)json_integer_value(json_object_get(o, "listener_rss_after_kb")),
                json_real_value(json_object_get(o, "connector_bytes_per_link")),
                (long long)json_integer_value(json_object_get(o, "connector_rss_before_kb")),
                (long long)json_integer_value(json_object_get(o, "connector_rss_after_kb")));
        break;
    }
}

static unsigned deadline_s(const struct run *r)
{
    switch (r->mode) {
    case MODE_BULK:
    case MODE_RATE:
        return (unsigned)(r->seconds + WARMUP_S) + 30u;
    case MODE_RTT:
    case MODE_RAWRTT:
        return 60u + (unsigned)(r->count / 1000);
    case MODE_IDLE:
        return 60u + (unsigned)(r->count / 50);
    }
    return 60u;
}

static void stop_child(void)
{
    if (child_pid <= 0)
        return;
    int status;
    kill(child_pid, SIGTERM);
    for (int i = 0; i < 50; i++) { /* up to 5 s, then SIGKILL */
        if (waitpid(child_pid, &status, WNOHANG) == child_pid) {
            child_pid = -1;
            return;
        }
        usleep(100000);
    }
    kill(child_pid, SIGKILL);
    waitpid(child_pid, &status, 0);
    child_pid = -1;
}


/* One mode in this process (the listener) and a forked connector. */
static int run_pair(const struct run *r, const struct keys *k, bool json)
{
    int port_pipe[2], result_pipe[2];
    if (pipe(port_pipe) != 0 || pipe(result_pipe) != 0)
        bench_die("pipe: %s", strerror(errno));
    pid_t pid = bench_fork_bound();
    if (pid == 0) {
        child_pid = -1;
        signal(SIGTERM, SIG_DFL);
        close(port_pipe[1]);
        close(result_pipe[0]);
        alarm(deadline_s(r) + 5);
        run_connector(r, k, port_pipe[0], result_pipe[1]);
        _exit(0);
    }
    child_pid = pid;
    fprintf(human, "%s: listener pid %d, connector pid %d\n", r->name, (int)getpid(), (int)pid);
    close(port_pipe[0]);
    close(result_pipe[1]);
    alarm(deadline_s(r));
    json_t *o = run_listener(r, k, port_pipe[1], result_pipe[0]);
    alarm(0);
    stop_child();
    close(result_pipe[0]);
    if (!o)
        return 1;
    json_object_set_new(o, "mode", json_string(r->name));
    print_human(r, o);
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

/* Each mode in a fresh pair of processes: no heap, sockets or links left
 * over from an earlier mode (the idle RSS baseline depends on it). */
static int run_mode(const struct run *r, const struct keys *k, bool json)
{
    pid_t pid = bench_fork_bound();
    if (pid == 0) {
        int rc = run_pair(r, k, json);
        fflush(NULL);
        _exit(rc);
    }
    child_pid = pid;
    alarm(deadline_s(r) + 15); /* the pair has its own, shorter deadline */
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    alarm(0);
    child_pid = -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    fprintf(stderr, "bench_link: %s run died with signal %d\n", r->name, WTERMSIG(status));
    return 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_link [--json] [--ws] MODE ARGS [MODE ARGS ...]\n"
                    "  bulk SECONDS SIZE | rate SECONDS SIZE | rtt COUNT | idle N | rawrtt COUNT\n"
                    "  tls-bulk SECONDS SIZE | tls-rate SECONDS SIZE\n");
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
        if (strcmp(argv[i], "--ws") == 0) {
            g_ws = true;
            i++;
            continue;
        }
        if (nruns == sizeof runs / sizeof runs[0])
            usage();
        struct run *r = &runs[nruns++];
        memset(r, 0, sizeof *r);
        r->name = argv[i];
        r->tls = strncmp(argv[i], "tls-", 4) == 0;
        const char *base = argv[i] + (r->tls ? 4 : 0);
        if ((strcmp(base, "bulk") == 0 || strcmp(base, "rate") == 0) && i + 2 < argc) {
            r->mode = base[0] == 'b' ? MODE_BULK : MODE_RATE;
            r->seconds = parse_seconds(argv[i + 1]);
            r->size = (size_t)parse_long(argv[i + 2], 1, MAX_SIZE);
            i += 3;
        } else if (r->tls) {
            usage();
        } else if ((strcmp(argv[i], "rtt") == 0 || strcmp(argv[i], "rawrtt") == 0) && i + 1 < argc) {
            r->mode = argv[i][0] == 'r' && argv[i][1] == 't' ? MODE_RTT : MODE_RAWRTT;
            r->count = parse_long(argv[i + 1], 1, 10000000);
            i += 2;
        } else if (strcmp(argv[i], "idle") == 0 && i + 1 < argc) {
            r->mode = MODE_IDLE;
            r->count = parse_long(argv[i + 1], 1, 100000);
            i += 2;
        } else {
            usage();
        }
    }
    if (nruns == 0)
        usage();
    human = json ? stderr : stdout;
    bench_init("bench_link", kill_child);
    struct keys k;
    memset(&k, 0, sizeof k);
    make_keys(&k);
    for (size_t i = 0; i < nruns; i++)
        if (runs[i].tls && !k.tls_server)
            make_tls(&k);
    fprintf(human, "bench_link: libsodium %s, libevent %s\n", sodium_version_string(),
            event_get_version());
    int status = 0;
    for (size_t i = 0; i < nruns; i++)
        status |= run_mode(&runs[i], &k, json);
    sc_link_key_free(k.listener_key);
    sc_link_key_free(k.connector_key);
    sc_identity_free(k.listener_id);
    sc_identity_free(k.connector_id);
    SSL_CTX_free(k.tls_server);
    SSL_CTX_free(k.tls_client);
    return status;
}
