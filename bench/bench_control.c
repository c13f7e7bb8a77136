/* bench/bench_control.c — control-socket requests per second against a
 * running secircd (its JSON-RPC `status` by default):
 *
 *   bench_control [--socket PATH] [--seconds S] [--connections N] [--method M]
 *
 * First one connection, one request at a time (also giving the round-trip
 * p50/p99 in µs); then N connections (default 10) each keeping one request
 * in flight, driven by poll() from this one process. Prints one JSON line
 * on stdout, a readable summary on stderr. The socket defaults to
 * $SECIRC_SOCKET. A hard deadline (alarm) ends any run that hangs; exits
 * non-zero when a request fails or the daemon goes away, not when a figure
 * is low. Never used by the library or the daemon. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define MAX_CONNECTIONS 256
#define MAX_SAMPLES (4u * 1024u * 1024u)
#define READ_BUF_BYTES (1u << 20)

static char request[256];
static size_t request_len;

static void die(const char *fmt, const char *arg) __attribute__((format(printf, 1, 0), noreturn));

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "bench_control: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int connect_to(const char *path)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path)
        die("socket path too long: %s", path);
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("cannot connect: %s", strerror(errno));
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* A connection's read side: counts complete response lines. */
struct conn {
    int fd;
    char *buf;
    size_t len;
    bool checked; /* its first response was parsed and was a result */
};

/* Reads what is there; returns how many response lines completed. */
static unsigned read_responses(struct conn *c)
{
    ssize_t n = recv(c->fd, c->buf + c->len, READ_BUF_BYTES - c->len, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0)
        die("the daemon closed the connection%s", n < 0 ? " (error)" : "");
    c->len += (size_t)n;
    unsigned lines = 0;
    char *start = c->buf, *lf;
    while ((lf = memchr(start, '\n', c->len - (size_t)(start - c->buf))) != NULL) {
        if (!c->checked) {
            json_t *r = json_loadb(start, (size_t)(lf - start), 0, NULL);
            if (json_object_get(r, "result") == NULL)
                die("the first request failed: %s", "not a result (try another --method)");
            json_decref(r);
            c->checked = true;
        } else if (memmem(start, (size_t)(lf - start), "\"error\":", 8) != NULL) {
            die("a request failed: %s", "error response");
        }
        lines++;
        start = lf + 1;
    }
    c->len -= (size_t)(start - c->buf);
    memmove(c->buf, start, c->len);
    if (c->len == READ_BUF_BYTES)
        die("a response over %s bytes", "1 MiB");
    return lines;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *path = getenv("SECIRC_SOCKET"), *method = "status";
    double seconds = 3;
    int nconn = 10;
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'}, {"seconds", required_argument, NULL, 't'},
        {"connections", required_argument, NULL, 'n'}, {"method", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "s:t:n:m:h", opts, NULL)) != -1) {
        if (ch == 's')
            path = optarg;
        else if (ch == 't')
            seconds = atof(optarg);
        else if (ch == 'n')
            nconn = atoi(optarg);
        else if (ch == 'm')
            method = optarg;
        else {
            fprintf(ch == 'h' ? stdout : stderr,
                    "usage: bench_control [--socket PATH] [--seconds S] [--connections N] "
                    "[--method M]\n");
            return ch == 'h' ? 0 : 2;
        }
    }
    if (path == NULL || path[0] == '\0')
        die("%s", "give --socket PATH (or set SECIRC_SOCKET)");
    if (seconds <= 0 || seconds > 600 || nconn < 1 || nconn > MAX_CONNECTIONS)
        die("%s", "--seconds must be in (0, 600], --connections in 1..256");
    if (strlen(method) > 64 || strspn(method, "abcdefghijklmnopqrstuvwxyz-") != strlen(method))
        die("--method %s: lowercase letters and '-' only, at most 64", method);
    request_len = (size_t)snprintf(request, sizeof request,
                                   "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\"}\n", method);
    alarm((unsigned)(2 * seconds) + 30); /* hard deadline */

    /* one connection, one request at a time */
    uint32_t *lat = malloc(MAX_SAMPLES * sizeof *lat);
    struct conn one = {connect_to(path), malloc(READ_BUF_BYTES), 0, false};
    if (lat == NULL || one.buf == NULL)
        die("%s", "out of memory");
    uint64_t t0 = now_us(), end = t0 + (uint64_t)(seconds * 1e6), done1 = 0;
    size_t nlat = 0;
    while (now_us() < end) {
        uint64_t s = now_us();
        send_all(one.fd, request, request_len);
        unsigned got = 0;
        while (got == 0)
            got = read_responses(&one);
        done1 += got;
        if (nlat < MAX_SAMPLES)
            lat[nlat++] = (uint32_t)(now_us() - s);
    }
    double rps1 = (double)done1 / ((double)(now_us() - t0) / 1e6);
    close(one.fd);
    free(one.buf);
    qsort(lat, nlat, sizeof *lat, cmp_u32);
    uint32_t p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[nlat * 99 / 100] : 0;
    free(lat);

    /* N connections, one request in flight on each */
    struct conn conns[MAX_CONNECTIONS];
    struct pollfd pfd[MAX_CONNECTIONS];
    for (int i = 0; i < nconn; i++) {
        conns[i] = (struct conn){connect_to(path), malloc(READ_BUF_BYTES), 0, false};
        if (conns[i].buf == NULL)
            die("%s", "out of memory");
        pfd[i] = (struct pollfd){conns[i].fd, POLLIN, 0};
        send_all(conns[i].fd, request, request_len);
    }
    uint64_t done_n = 0;
    t0 = now_us();
    end = t0 + (uint64_t)(seconds * 1e6);
    while (now_us() < end) {
        int r = poll(pfd, (nfds_t)nconn, 1000);
        if (r < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        for (int i = 0; i < nconn && r > 0; i++) {
            if (pfd[i].revents == 0)
                continue;
            unsigned got = read_responses(&conns[i]);
            done_n += got;
            for (unsigned k = 0; k < got; k++)
                send_all(conns[i].fd, request, request_len);
        }
    }
    double rpsn = (double)done_n / ((double)(now_us() - t0) / 1e6);
    for (int i = 0; i < nconn; i++) {
        close(conns[i].fd);
        free(conns[i].buf);
    }
    fprintf(stderr,
            "bench_control: %s over 1 connection: %.0f req/s (p50 %u us, p99 %u us); "
            "over %d connections: %.0f req/s\n",
            method, rps1, p50, p99, nconn, rpsn);
    printf("{\"bench\":\"control\",\"method\":\"%s\",\"seconds\":%g,\"one_connection_rps\":%.0f,"
           "\"one_connection_p50_us\":%u,\"one_connection_p99_us\":%u,\"connections\":%d,"
           "\"parallel_rps\":%.0f}\n",
           method, seconds, rps1, p50, p99, nconn, rpsn);
    return 0;
}
