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
 * by the library. This file: the coordinator's children, helpers, main();
 * the modes are in bench/bench_manager/. */
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

#include "bench_manager/bench_manager.h"
#include "secirc/log.h"

FILE *human;

static pid_t children[MAX_CHILDREN];
static int nchildren;

/* For bench_die and the deadline (async-signal-safe: kill only). */
static void kill_all(void)
{
    for (int i = 0; i < nchildren; i++)
        if (children[i] > 0)
            kill(children[i], SIGKILL);
}

/* The last spawned first: peers go before the relay they talk to. */
void kill_children(void)
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






struct timeval tv_of(double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
    return tv;
}

double median(double *v, size_t n)
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

struct sc_identity *identity_of(uint8_t a, uint32_t b)
{
    uint8_t seed[32];
    memset(seed, 0x5b, sizeof seed);
    seed[0] = a;
    memcpy(seed + 1, &b, sizeof b);
    struct sc_identity *id;
    if (sc_identity_from_seed(seed, &id) != 0)
        bench_die("identity");
    return id;
}

/* ---- children: forked, bound to this process, one JSON line per report ------------------- */

void spawn(struct child *c, child_main fn, void *arg, double deadline_s)
{
    int p[2];
    if (nchildren == MAX_CHILDREN)
        bench_die("too many children");
    if (pipe(p) != 0)
        bench_die("pipe: %s", strerror(errno));
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
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
void emit(int fd, json_t *o)
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
json_t *await_line(struct child *c, double secs)
{
    double end = bench_now_s() + secs;
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
        double left = end - bench_now_s();
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

void child_fail(int fd, const char *why)
{
    emit(fd, json_pack("{s:s}", "error", why));
    _exit(1);
}

struct event_base *child_base(int fd)
{
    struct event_base *base = event_base_new();
    if (!base)
        child_fail(fd, "event_base_new");
    return base;
}

const struct sc_listen_spec loopback = {.address = "127.0.0.1", .port = 0, .type = SC_PATH_TCP};

/* A manager's listener caps lifted for links that all come from 127.0.0.1
 * (the handshake-rate benchmark measures the caps on their own). */
void open_caps(struct sc_manager_config *cfg, uint32_t links)
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

struct sc_manager *start_manager(struct event_base *base, const struct sc_manager_config *cfg,
                                        const struct sc_identity *id,
                                        const struct sc_manager_callbacks *cb, void *arg, int fd)
{
    struct sc_manager *m;
    if (sc_manager_new(base, cfg, id, cb, arg, &m) != 0 || sc_manager_start(m) != 0)
        child_fail(fd, "cannot start a manager");
    return m;
}

uint32_t linked_peers(const struct sc_manager *m)
{
    struct sc_manager_status st;
    sc_manager_get_status(m, &st);
    return st.connected_peers;
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
        return (unsigned)(2 * (double)r->count * (LINK_UP_S + RS_LIMIT_S + 25)) + 60u;
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
    bench_init("bench_manager", kill_all);
    struct rlimit rl;
    for (size_t i = 0; i < nruns; i++)
        if (runs[i].mode == MODE_IDLE && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
            rl.rlim_cur < (rlim_t)runs[i].count + 256)
            bench_die("idle %ld needs %ld descriptors; RLIMIT_NOFILE is %llu", runs[i].count,
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
                bench_die("json_dumps");
            printf("%s\n", text);
            fflush(stdout);
            free(text);
        }
        json_decref(o);
    }
    return status;
}
