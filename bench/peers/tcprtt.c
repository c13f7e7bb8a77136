/* bench/peers/tcprtt.c — peer for the RTT figures: raw loopback TCP round
 * trip between two processes (the floor under any request/reply figure). A
 * forked child echoes; the parent sends SIZE bytes and waits for them back;
 * TCP_NODELAY, blocking sockets, 127.0.0.1 with an ephemeral port. Never
 * runs unbounded: 60 s of samples at most, 5 s per read, 120 s in all.
 *
 * Build: gcc -O2 -o tcprtt tcprtt.c      (scripts/bench builds it in build/bench)
 * Run:   ./tcprtt [count=20000] [size=16]
 * Prints: tcprtt size S n N p50_us X p99_us Y max_us Z
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 1000
#define SAMPLE_SECONDS 60
#define READ_TIMEOUT_SECONDS 5
#define TOTAL_SECONDS 120

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Read exactly n bytes; -1 on EOF, error or the socket's receive timeout. */
static int readn(int fd, char *b, size_t n)
{
    while (n) {
        ssize_t r = read(fd, b, n);
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static int writen(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static void tune(int fd)
{
    int one = 1;
    struct timeval tv = {READ_TIMEOUT_SECONDS, 0};
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int fail(const char *what, pid_t child)
{
    perror(what);
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    return 1;
}

int main(int argc, char **argv)
{
    long count = argc > 1 ? atol(argv[1]) : 20000;
    long size = argc > 2 ? atol(argv[2]) : 16;
    if (count < 1 || count > 10000000 || size < 1 || size > (1 << 20)) {
        fprintf(stderr, "usage: tcprtt [count 1..10000000] [size 1..1048576]\n");
        return 2;
    }
    alarm(TOTAL_SECONDS); /* a backstop for both processes (inherited) */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1))
        return fail("bind/listen", 0);
    socklen_t sl = sizeof sa;
    if (getsockname(ls, (struct sockaddr *)&sa, &sl))
        return fail("getsockname", 0);
    char *buf = malloc((size_t)size);
    double *v = malloc((size_t)count * sizeof *v);
    if (!buf || !v)
        return fail("malloc", 0);
    memset(buf, 'p', (size_t)size);
    pid_t pid = fork();
    if (pid < 0)
        return fail("fork", 0);
    if (pid == 0) {
        int s = accept(ls, NULL, NULL);
        if (s < 0)
            _exit(1);
        tune(s);
        while (readn(s, buf, (size_t)size) == 0)
            if (writen(s, buf, (size_t)size))
                break;
        _exit(0);
    }
    close(ls);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa))
        return fail("connect", pid);
    tune(c);
    for (int i = 0; i < WARMUP; i++)
        if (writen(c, buf, (size_t)size) || readn(c, buf, (size_t)size))
            return fail("warm-up round trip", pid);
    long n = 0;
    double tstart = now();
    for (; n < count && now() - tstart < SAMPLE_SECONDS; n++) {
        double t0 = now();
        if (writen(c, buf, (size_t)size) || readn(c, buf, (size_t)size))
            return fail("round trip", pid);
        v[n] = now() - t0;
    }
    close(c);
    waitpid(pid, NULL, 0);
    qsort(v, (size_t)n, sizeof *v, cmpd);
    printf("tcprtt size %ld n %ld p50_us %.1f p99_us %.1f max_us %.1f\n", size, n,
           v[n / 2] * 1e6, v[(long)((double)n * 0.99)] * 1e6, v[n - 1] * 1e6);
    return 0;
}
