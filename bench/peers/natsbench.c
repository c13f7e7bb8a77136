/* bench/peers/natsbench.c — peer client for the nats-server figures
 * (bench/peers/nats.sh): a small NATS text-protocol client for loopback
 * benchmarks. Talks only to 127.x addresses; every loop is bounded by a count
 * and a time limit, and an alarm() per mode stops the process regardless.
 *
 * Build: gcc -O2 -D_GNU_SOURCE -o natsbench natsbench.c   (nats.sh does)
 * Modes:
 *   sub  HOST PORT SUBJ COUNT MAXSECS      subscribe, print READY, count
 *                                          MSGs until COUNT, MAXSECS, or 3 s
 *                                          without data; report rate
 *                                          (first..last message)
 *   pub  HOST PORT SUBJ COUNT SIZE MAXSECS pipelined PUBs in 256 KiB writes,
 *                                          then PING/PONG flush; report rate
 *   echo HOST PORT SUBJ COUNT MAXSECS      reply to each request (MSG with a
 *                                          reply subject) with its payload
 *   req  HOST PORT SUBJ COUNT SIZE         request/reply round trips, one at
 *                                          a time, report p50/p90/p99/max us
 *   ping HOST PORT COUNT                   PING/PONG round trips to a server
 *   idle HOST PORT N HOLDSECS              open N connected clients (CONNECT
 *                                          + PING/PONG each), print READY,
 *                                          hold them HOLDSECS, close
 *   fanout HOST PORT SUBJ NSUBS SECS       NSUBS subscribers of SUBJ in this
 *                                          process, print READY; from the
 *                                          first message, 1 s of warm-up,
 *                                          then count MSGs delivered to all
 *                                          of them for SECS; report msg/s
 *                                          (sum, and per subscriber min/max)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 100000000L
#define MAX_SIZE (1L << 20)
#define MAX_SECS 600.0

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *m)
{
    perror(m);
    exit(1);
}

static void fatal(const char *m)
{
    fprintf(stderr, "natsbench: %s\n", m);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("malloc");
    return p;
}

/* ---------------- connection + parser ---------------- */

#define BUFCAP (4u << 20)

struct conn {
    int fd;
    char *buf;
    size_t len, off;
};

enum { IT_NONE, IT_MSG, IT_PING, IT_PONG, IT_OK, IT_ERR, IT_INFO };

struct item {
    int type;
    const char *subj, *reply, *payload;
    size_t subjlen, replylen, paylen;
};

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("write");
        }
        p += w;
        n -= (size_t)w;
    }
}

static void sends(struct conn *c, const char *s)
{
    write_all(c->fd, s, strlen(s));
}

static int tcp_connect(const char *host, int port)
{
    if (strncmp(host, "127.", 4) != 0)
        fatal("host must be a 127.x loopback address");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        fatal("bad host");
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Read more bytes; returns bytes read, 0 on EOF, -1 on timeout. */
static ssize_t fill(struct conn *c, int timeout_ms)
{
    if (c->off == c->len)
        c->off = c->len = 0;
    else if (BUFCAP - c->len < (BUFCAP / 4)) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->len == BUFCAP)
        fatal("message larger than buffer");
    if (timeout_ms >= 0) {
        struct pollfd p = {c->fd, POLLIN, 0};
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno != EINTR)
            die("poll");
        if (r <= 0)
            return -1;
    }
    ssize_t r = read(c->fd, c->buf + c->len, BUFCAP - c->len);
    if (r < 0) {
        if (errno == EINTR)
            return -1;
        die("read");
    }
    c->len += (size_t)r;
    return r;
}

/* Parse one protocol item from the buffer; IT_NONE if incomplete. */
static int next_item(struct conn *c, struct item *it)
{
    char *p = c->buf + c->off;
    size_t avail = c->len - c->off;
    char *nl = memchr(p, '\n', avail);
    if (!nl)
        return it->type = IT_NONE;
    size_t linelen = (size_t)(nl - p) + 1;
    if (avail >= 4 && !memcmp(p, "MSG ", 4)) {
        /* MSG <subject> <sid> [reply-to] <#bytes>\r\n */
        const char *tok[5];
        size_t tl[5];
        int nt = 0;
        const char *q = p + 4, *end = nl;
        if (end > q && end[-1] == '\r')
            end--;
        while (q < end && nt < 5) {
            while (q < end && *q == ' ')
                q++;
            if (q >= end)
                break;
            const char *s = q;
            while (q < end && *q != ' ')
                q++;
            tok[nt] = s;
            tl[nt++] = (size_t)(q - s);
        }
        if (nt < 3)
            fatal("bad MSG line");
        size_t nbytes = strtoul(tok[nt - 1], NULL, 10);
        if (avail < linelen + nbytes + 2)
            return it->type = IT_NONE;
        it->type = IT_MSG;
        it->subj = tok[0];
        it->subjlen = tl[0];
        it->reply = nt == 4 ? tok[2] : NULL;
        it->replylen = nt == 4 ? tl[2] : 0;
        it->payload = p + linelen;
        it->paylen = nbytes;
        c->off += linelen + nbytes + 2;
        return IT_MSG;
    }
    c->off += linelen;
    if (!strncmp(p, "PING", 4))
        it->type = IT_PING;
    else if (!strncmp(p, "PONG", 4))
        it->type = IT_PONG;
    else if (!strncmp(p, "+OK", 3))
        it->type = IT_OK;
    else if (!strncmp(p, "INFO", 4))
        it->type = IT_INFO;
    else if (!strncmp(p, "-ERR", 4)) {
        fprintf(stderr, "server: %.*s", (int)linelen, p);
        it->type = IT_ERR;
    } else {
        fprintf(stderr, "unexpected: %.*s", (int)linelen, p);
        it->type = IT_ERR;
    }
    return it->type;
}

/* Wait (bounded) until an item of `want` type arrives, answering PINGs. */
static void wait_for(struct conn *c, int want, double maxs)
{
    double t0 = now();
    struct item it;
    for (;;) {
        while (next_item(c, &it) != IT_NONE) {
            if (it.type == IT_PING)
                sends(c, "PONG\r\n");
            if (it.type == want)
                return;
        }
        if (now() - t0 > maxs)
            fatal("timeout waiting for server");
        ssize_t r = fill(c, 200);
        if (r == 0)
            fatal("server closed connection");
    }
}

static void conn_open(struct conn *c, const char *host, int port)
{
    c->fd = tcp_connect(host, port);
    c->buf = xmalloc(BUFCAP);
    c->len = c->off = 0;
    wait_for(c, IT_INFO, 5);
    sends(c, "CONNECT {\"verbose\":false,\"pedantic\":false,"
             "\"name\":\"natsbench\",\"lang\":\"c\",\"version\":\"0\","
             "\"protocol\":1}\r\n");
}

static void flush_pingpong(struct conn *c, double maxs)
{
    sends(c, "PING\r\n");
    wait_for(c, IT_PONG, maxs);
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print_lat(const char *what, double *v, long n)
{
    qsort(v, n, sizeof v[0], cmpd);
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += v[i];
    printf("%s n %ld p50_us %.1f p90_us %.1f p99_us %.1f max_us %.1f "
           "mean_us %.1f\n",
           what, n, v[n / 2] * 1e6, v[(long)(n * 0.9)] * 1e6,
           v[(long)(n * 0.99)] * 1e6, v[n - 1] * 1e6, sum / n * 1e6);
}

/* ---------------- modes ---------------- */

static int do_sub(const char *host, int port, const char *subj, long count,
                  double maxs)
{
    struct conn c;
    conn_open(&c, host, port);
    char line[256];
    snprintf(line, sizeof line, "SUB %s 1\r\n", subj);
    sends(&c, line);
    flush_pingpong(&c, 5);
    printf("READY\n");
    fflush(stdout);
    long n = 0;
    size_t bytes = 0;
    double t0 = now(), tfirst = 0, tlast = 0;
    struct item it;
    while (n < count) {
        ssize_t r = fill(&c, n ? 3000 : 1000);
        double t = now();
        if (r == 0) {
            fprintf(stderr, "sub: server closed\n");
            break;
        }
        if (r < 0) {
            if (n) /* idle 3 s after traffic: the publisher is done */
                break;
        }
        while (next_item(&c, &it) != IT_NONE) {
            if (it.type == IT_MSG) {
                if (!n)
                    tfirst = t;
                n++;
                bytes += it.paylen;
                tlast = t;
            } else if (it.type == IT_PING)
                sends(&c, "PONG\r\n");
        }
        if (t - t0 > maxs)
            break;
    }
    double dt = tlast - tfirst;
    printf("sub received %ld of %ld secs %.3f rate %.0f msg/s %.1f MB/s\n", n,
           count, dt, dt > 0 ? n / dt : 0, dt > 0 ? bytes / dt / 1e6 : 0);
    close(c.fd);
    return n == count ? 0 : 3;
}

static int do_pub(const char *host, int port, const char *subj, long count,
                  long size, double maxs)
{
    struct conn c;
    conn_open(&c, host, port);
    flush_pingpong(&c, 5);
    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr, "PUB %s %ld\r\n", subj, size);
    size_t flen = hl + size + 2;
    size_t bcap = 256 * 1024;
    if (flen > bcap)
        bcap = flen;
    long per = bcap / flen;
    char *b = xmalloc((size_t)per * flen);
    for (long i = 0; i < per; i++) {
        char *f = b + i * flen;
        memcpy(f, hdr, hl);
        memset(f + hl, 'x', size);
        memcpy(f + hl + size, "\r\n", 2);
    }
    long n = 0;
    double t0 = now();
    struct item it;
    while (n < count) {
        long k = count - n < per ? count - n : per;
        write_all(c.fd, b, k * flen);
        n += k;
        /* answer a server PING / notice -ERR without blocking */
        if (fill(&c, 0) > 0)
            while (next_item(&c, &it) != IT_NONE)
                if (it.type == IT_PING)
                    sends(&c, "PONG\r\n");
        if (now() - t0 > maxs)
            break;
    }
    double tw = now() - t0;
    flush_pingpong(&c, 60);
    double dt = now() - t0;
    printf("pub sent %ld secs %.3f rate %.0f msg/s %.1f MB/s "
           "(writes done in %.3f s)\n",
           n, dt, n / dt, n * (double)size / dt / 1e6, tw);
    close(c.fd);
    return 0;
}

static int do_echo(const char *host, int port, const char *subj, long count,
                   double maxs)
{
    struct conn c;
    conn_open(&c, host, port);
    char line[512];
    snprintf(line, sizeof line, "SUB %s 1\r\n", subj);
    sends(&c, line);
    flush_pingpong(&c, 5);
    printf("READY\n");
    fflush(stdout);
    char *out = xmalloc(BUFCAP + 1024);
    long n = 0;
    double t0 = now();
    struct item it;
    while (n < count && now() - t0 < maxs) {
        ssize_t r = fill(&c, 500);
        if (r == 0)
            break;
        size_t ol = 0;
        while (next_item(&c, &it) != IT_NONE) {
            if (it.type == IT_PING)
                sends(&c, "PONG\r\n");
            if (it.type != IT_MSG || !it.reply)
                continue;
            if (ol + it.paylen + 600 > BUFCAP) {
                write_all(c.fd, out, ol);
                ol = 0;
            }
            ol += sprintf(out + ol, "PUB %.*s %zu\r\n", (int)it.replylen,
                          it.reply, it.paylen);
            memcpy(out + ol, it.payload, it.paylen);
            ol += it.paylen;
            memcpy(out + ol, "\r\n", 2);
            ol += 2;
            n++;
        }
        if (ol)
            write_all(c.fd, out, ol);
    }
    printf("echo replied %ld\n", n);
    close(c.fd);
    return 0;
}

/* one request; returns RTT seconds or -1 on timeout */
static double one_req(struct conn *c, const char *frame, size_t fl,
                      double tmo)
{
    struct item it;
    double t0 = now();
    write_all(c->fd, frame, fl);
    for (;;) {
        while (next_item(c, &it) != IT_NONE) {
            if (it.type == IT_PING)
                sends(c, "PONG\r\n");
            if (it.type == IT_MSG)
                return now() - t0;
        }
        double left = tmo - (now() - t0);
        if (left <= 0)
            return -1;
        ssize_t r = fill(c, (int)(left * 1000) + 1);
        if (r == 0)
            fatal("server closed");
    }
}

static int do_req(const char *host, int port, const char *subj, long count,
                  long size)
{
    struct conn c;
    conn_open(&c, host, port);
    sends(&c, "SUB _INBOX.natsbench 1\r\n");
    flush_pingpong(&c, 5);
    char *frame = xmalloc((size_t)size + 512);
    int hl = sprintf(frame, "PUB %s _INBOX.natsbench %ld\r\n", subj, size);
    memset(frame + hl, 'r', size);
    memcpy(frame + hl + size, "\r\n", 2);
    size_t fl = hl + size + 2;
    /* warm-up: wait (bounded) for interest to propagate across routes */
    int ok = 0;
    for (int i = 0; i < 1000 && ok < 200; i++)
        ok = one_req(&c, frame, fl, 0.2) >= 0 ? ok + 1 : 0;
    if (ok < 200)
        fatal("no replies during warm-up");
    double *v = xmalloc((size_t)count * sizeof *v);
    long n = 0;
    double t0 = now();
    for (; n < count && now() - t0 < 60; n++) {
        v[n] = one_req(&c, frame, fl, 2.0);
        if (v[n] < 0)
            fatal("request timed out");
    }
    char what[64];
    snprintf(what, sizeof what, "req size %ld", size);
    print_lat(what, v, n);
    close(c.fd);
    return 0;
}

static int do_ping(const char *host, int port, long count)
{
    struct conn c;
    conn_open(&c, host, port);
    flush_pingpong(&c, 5);
    for (int i = 0; i < 200; i++)
        flush_pingpong(&c, 2);
    double *v = xmalloc((size_t)count * sizeof *v);
    long n = 0;
    double tstart = now();
    for (; n < count && now() - tstart < 60; n++) {
        double t0 = now();
        flush_pingpong(&c, 2);
        v[n] = now() - t0;
    }
    print_lat("ping", v, n);
    close(c.fd);
    return 0;
}

static int do_idle(const char *host, int port, long n, double hold)
{
    struct conn *cs = calloc((size_t)n, sizeof *cs);
    if (!cs)
        die("calloc");
    for (long i = 0; i < n; i++)
        cs[i].fd = tcp_connect(host, port);
    /* INFO arrives on each; then CONNECT+PING, wait PONG on each */
    char tmp[8192];
    for (long i = 0; i < n; i++) {
        static const char hello[] =
            "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n";
        write_all(cs[i].fd, hello, sizeof hello - 1);
    }
    for (long i = 0; i < n; i++) {
        size_t got = 0;
        double t0 = now();
        while (!memmem(tmp, got, "PONG", 4)) {
            if (now() - t0 > 10)
                fatal("idle: no PONG");
            struct pollfd p = {cs[i].fd, POLLIN, 0};
            if (poll(&p, 1, 1000) <= 0)
                continue;
            ssize_t r = read(cs[i].fd, tmp + got, sizeof tmp - got);
            if (r <= 0)
                fatal("idle: read");
            got += r;
            if (got == sizeof tmp)
                got = 0;
        }
    }
    printf("READY %ld\n", n);
    fflush(stdout);
    sleep((unsigned)hold);
    for (long i = 0; i < n; i++)
        close(cs[i].fd);
    printf("idle closed %ld\n", n);
    return 0;
}

static int do_fanout(const char *host, int port, const char *subj, long nsubs,
                     double secs)
{
    struct conn *cs = calloc((size_t)nsubs, sizeof *cs);
    struct pollfd *pf = calloc((size_t)nsubs, sizeof *pf);
    long *got = calloc((size_t)nsubs, sizeof *got), *got0 = calloc((size_t)nsubs, sizeof *got0);
    if (!cs || !pf || !got || !got0)
        die("calloc");
    char line[256];
    snprintf(line, sizeof line, "SUB %s 1\r\n", subj);
    for (long i = 0; i < nsubs; i++) {
        conn_open(&cs[i], host, port);
        sends(&cs[i], line);
        flush_pingpong(&cs[i], 5);
        pf[i].fd = cs[i].fd;
        pf[i].events = POLLIN;
    }
    printf("READY %ld\n", nsubs);
    fflush(stdout);
    /* phase 0: waiting for the first message (up to 30 s), 1: warm-up,
     * 2: window; 3 s without any data once traffic began ends it early. */
    int phase = 0, errors = 0;
    long total = 0, total0 = 0;
    double t0 = now(), tphase = t0, tlast = t0, tw = 0;
    struct item it;
    while (phase < 3) {
        int r = poll(pf, (nfds_t)nsubs, 100);
        if (r < 0 && errno != EINTR)
            die("poll");
        double t = now();
        for (long i = 0; r > 0 && i < nsubs; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = fill(&cs[i], -1);
            if (n == 0) {
                fprintf(stderr, "fanout: subscriber %ld: server closed\n", i);
                errors++;
                pf[i].fd = -1;
                continue;
            }
            while (next_item(&cs[i], &it) != IT_NONE) {
                if (it.type == IT_MSG) {
                    got[i]++;
                    total++;
                } else if (it.type == IT_PING) {
                    sends(&cs[i], "PONG\r\n");
                } else if (it.type == IT_ERR) {
                    errors++;
                }
            }
            tlast = t;
        }
        if (phase == 0 && total) {
            phase = 1;
            tphase = t;
        } else if (phase == 0 && t - t0 > 30) {
            fatal("fanout: no message within 30 s");
        } else if (phase == 1 && t - tphase >= 1.0) {
            phase = 2;
            tw = t;
            total0 = total;
            memcpy(got0, got, (size_t)nsubs * sizeof *got);
        } else if (phase == 2 && t - tw >= secs) {
            phase = 3;
        }
        if (phase > 0 && t - tlast > 3) {
            fprintf(stderr, "fanout: no data for 3 s\n");
            break;
        }
    }
    double dt = now() - tw;
    long lo = -1, hi = 0;
    for (long i = 0; i < nsubs; i++) {
        long d = got[i] - got0[i];
        lo = lo < 0 || d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    if (phase < 3 || errors)
        printf("fanout incomplete: phase %d errors %d\n", phase, errors);
    else
        printf("fanout subs %ld received %ld secs %.3f rate %.0f msg/s per-sub min %.0f max "
               "%.0f errors %d\n",
               nsubs, total - total0, dt, (double)(total - total0) / dt, (double)lo / dt,
               (double)hi / dt, errors);
    for (long i = 0; i < nsubs; i++)
        close(cs[i].fd);
    return phase == 3 && !errors ? 0 : 3;
}

/* Parse a bounded number; exit on anything else (arguments come from the
 * benchmark scripts, but a typo must not turn into a huge allocation). */
static long num(const char *arg, long lo, long hi)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || v < lo || v > hi)
        fatal("numeric argument out of range");
    return v;
}

static double secs(const char *arg)
{
    char *end;
    double v = strtod(arg, &end);
    if (*arg == '\0' || *end != '\0' || !(v > 0 && v <= MAX_SECS))
        fatal("seconds out of range");
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        goto usage;
    const char *mode = argv[1], *host = argv[2];
    int port = (int)num(argv[3], 1, 65535);
    /* alarm(): a backstop over each mode's own time limits */
    if (!strcmp(mode, "sub") && argc == 7) {
        double maxs = secs(argv[6]);
        alarm((unsigned)maxs + 30);
        return do_sub(host, port, argv[4], num(argv[5], 1, MAX_COUNT), maxs);
    }
    if (!strcmp(mode, "pub") && argc == 8) {
        double maxs = secs(argv[7]);
        alarm((unsigned)maxs + 90);
        return do_pub(host, port, argv[4], num(argv[5], 1, MAX_COUNT),
                      num(argv[6], 0, MAX_SIZE), maxs);
    }
    if (!strcmp(mode, "echo") && argc == 7) {
        double maxs = secs(argv[6]);
        alarm((unsigned)maxs + 30);
        return do_echo(host, port, argv[4], num(argv[5], 1, MAX_COUNT), maxs);
    }
    if (!strcmp(mode, "req") && argc == 7) {
        alarm(400); /* warm-up <= 200 s, samples <= 60 s */
        return do_req(host, port, argv[4], num(argv[5], 1, MAX_COUNT),
                      num(argv[6], 0, MAX_SIZE));
    }
    if (!strcmp(mode, "ping") && argc == 5) {
        alarm(120);
        return do_ping(host, port, num(argv[4], 1, MAX_COUNT));
    }
    if (!strcmp(mode, "idle") && argc == 6) {
        double hold = secs(argv[5]);
        long n = num(argv[4], 1, 100000);
        alarm((unsigned)hold + (unsigned)(n / 100) + 60);
        return do_idle(host, port, n, hold);
    }
    if (!strcmp(mode, "fanout") && argc == 7) {
        double maxs = secs(argv[6]);
        alarm((unsigned)maxs + 60);
        return do_fanout(host, port, argv[4], num(argv[5], 1, 1000), maxs);
    }
usage:
    fprintf(stderr, "usage: see the comment at the top of natsbench.c\n");
    return 2;
}
