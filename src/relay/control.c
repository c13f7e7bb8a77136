/* relay/control.c — the control socket's I/O: the Unix socket made safely
 * (mode 0600 from the start, stale sockets only replaced), clients as
 * bufferevents on the daemon's loop, requests cut into bounded LF-ended
 * lines and answered in order (relay/control_rpc.c), events for watchers.
 * Never grows a buffer without a bound, never blocks, never uses threads. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "relay/control.h"
#include "relay/control_rpc.h"
#include "relay/daemon.h"
#include "secirc/limits.h"
#include "util/log.h"
#include "util/time.h"

#define LISTEN_BACKLOG 16
/* Bytes read ahead of the line being handled: one full line and its LF, and
 * one more byte, which tells an oversized line from a full one. */
#define READ_HIGH_WATER_BYTES (SC_CONTROL_LINE_MAX_BYTES + 2u)
/* A refused client's request bytes read and dropped before its close (so
 * the refusal is not turned into a reset), at most. */
#define REFUSE_DRAIN_BYTES 4096u

struct client {
    struct sc_control *ctl;
    struct bufferevent *bev; /* NULL once closed; the struct waits for the reaper */
    uint64_t watch;          /* subscription handle; 0: not watching */
    bool eof;                /* the client has sent everything it will */
    bool closing;            /* no more requests: flush the output, then close */
    bool paused;             /* output over SC_CONTROL_OUTPUT_MAX_BYTES: requests wait */
    struct client *prev, *next;
};

struct sc_control {
    struct sc_daemon *daemon;
    struct event_base *base;
    struct evconnlistener *lev;
    struct event *resume; /* accepting again after running out of descriptors */
    struct event *reaper; /* frees closed clients outside every callback */
    char *path;
    dev_t dev;            /* the socket file we made, to remove only it */
    ino_t ino;
    struct client *clients; /* live */
    struct client *dead;    /* closed, waiting for the reaper (singly linked by next) */
    unsigned n_clients;
    unsigned depth;       /* requests being handled (the daemon may call sc_control_free) */
    bool free_requested;
    struct sc_log_ratelimit refuse_rl, drop_rl, accept_rl;
};

static void serve(struct client *c);

/* ---- closing clients ------------------------------------------------------------------- */

/* Closes the connection now; the struct itself is freed by the reaper, after
 * the callback we are in (perhaps the daemon's event loop over watchers)
 * returned, so unsubscribing never happens inside the daemon's own loop. */
static void drop_client(struct client *c)
{
    struct sc_control *ctl = c->ctl;
    if (c->bev == NULL)
        return;
    bufferevent_free(c->bev);
    c->bev = NULL;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        ctl->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    ctl->n_clients--;
    c->prev = NULL;
    c->next = ctl->dead;
    ctl->dead = c;
    if (ctl->reaper != NULL)
        event_active(ctl->reaper, EV_TIMEOUT, 0);
}

static void reap_clients(struct sc_control *ctl)
{
    while (ctl->dead != NULL) {
        struct client *c = ctl->dead;
        ctl->dead = c->next;
        if (c->watch != 0)
            sc_daemon_unsubscribe(ctl->daemon, c->watch);
        free(c);
    }
}

static void free_now(struct sc_control *ctl)
{
    while (ctl->clients != NULL)
        drop_client(ctl->clients);
    reap_clients(ctl);
    if (ctl->reaper != NULL)
        event_free(ctl->reaper);
    if (ctl->resume != NULL)
        event_free(ctl->resume);
    free(ctl->path);
    free(ctl);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_control *ctl = arg;
    if (ctl->free_requested && ctl->depth == 0)
        free_now(ctl);
    else
        reap_clients(ctl);
}

/* Stops reading requests; the client is closed once its output is out (or
 * after SC_CONTROL_CLOSE_FLUSH_MS). */
static void close_after_flush(struct client *c)
{
    c->closing = true;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        drop_client(c);
        return;
    }
    bufferevent_disable(c->bev, EV_READ);
    struct timeval tv = sc_ms_to_tv(SC_CONTROL_CLOSE_FLUSH_MS);
    bufferevent_set_timeouts(c->bev, NULL, &tv);
}

/* ---- output ---------------------------------------------------------------------------- */

/* Queues one JSON object as one line; takes the reference. False when the
 * client had to be dropped (out of memory). */
static bool put_line(struct client *c, json_t *obj)
{
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (text == NULL || evbuffer_add(out, text, strlen(text)) != 0 ||
        evbuffer_add(out, "\n", 1) != 0) {
        free(text);
        sc_log(SC_LOG_ERROR, "control.client_dropped", "reason=out_of_memory");
        drop_client(c);
        return false;
    }
    free(text);
    return true;
}

static void on_daemon_event(json_t *event, void *arg)
{
    struct client *c = arg;
    if (c->bev == NULL || c->closing) {
        json_decref(event);
        return;
    }
    size_t queued = evbuffer_get_length(bufferevent_get_output(c->bev));
    if (queued > SC_CONTROL_OUTPUT_MAX_BYTES) {
        json_decref(event);
        long long sup = sc_log_ratelimit_pass(&c->ctl->drop_rl, sc_mono_ms());
        if (sup >= 0)
            sc_log(SC_LOG_WARN, "control.watcher_dropped", "queued=%zu max=%u suppressed=%lld",
                   queued, SC_CONTROL_OUTPUT_MAX_BYTES, sup);
        drop_client(c);
        return;
    }
    (void)put_line(c, sc_control_rpc_event(event));
}

/* ---- requests -------------------------------------------------------------------------- */

static int start_watch(void *arg)
{
    struct client *c = arg;
    if (c->watch != 0)
        return 0; /* already watching: one stream of events per connection */
    c->watch = sc_daemon_subscribe(c->ctl->daemon, on_daemon_event, c);
    return c->watch != 0 ? 0 : SC_ENOMEM;
}

/* Handles one line; false when the client is gone or closing (or the whole
 * control socket is being freed) and nothing more may be read. */
static bool handle_line(struct client *c, const char *line, size_t len)
{
    struct sc_control *ctl = c->ctl;
    const struct sc_control_rpc_client who = {ctl->daemon, start_watch, c};
    json_t *response = NULL;
    ctl->depth++;
    int rc = sc_control_rpc_handle(&who, line, len, &response);
    ctl->depth--;
    if (ctl->free_requested || c->bev == NULL) {
        json_decref(response);
        return false;
    }
    if (rc != 0) {
        sc_log(SC_LOG_ERROR, "control.client_dropped", "reason=out_of_memory");
        drop_client(c);
        return false;
    }
    if (response != NULL && !put_line(c, response))
        return false;
    return !c->closing;
}

static void refuse_line(struct client *c, const char *why)
{
    if (put_line(c, sc_control_rpc_error(SC_CONTROL_RPC_INVALID_REQUEST, why)))
        close_after_flush(c);
}

/* Takes the next line out of the input. 1: a line (malloc'ed, in *line);
 * 0: none complete yet; -1: the line is over the bound. */
static int next_line(struct evbuffer *in, char **line, size_t *len)
{
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
    if (eol.pos < 0)
        return evbuffer_get_length(in) > SC_CONTROL_LINE_MAX_BYTES ? -1 : 0;
    if ((size_t)eol.pos > SC_CONTROL_LINE_MAX_BYTES)
        return -1;
    *len = (size_t)eol.pos;
    *line = malloc(*len + 1);
    if (*line == NULL)
        return -2;
    evbuffer_remove(in, *line, *len);
    evbuffer_drain(in, eol_len);
    return 1;
}

static void oversized(struct client *c)
{
    char why[96];
    snprintf(why, sizeof why, "request line over %u bytes; closing", SC_CONTROL_LINE_MAX_BYTES);
    refuse_line(c, why);
}

/* Answers the complete lines read so far, in order, while the output stays
 * under its bound; after EOF, the last unterminated line too. */
static void serve(struct client *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (evbuffer_get_length(bufferevent_get_output(c->bev)) <= SC_CONTROL_OUTPUT_MAX_BYTES) {
        char *line = NULL;
        size_t len = 0;
        int got = next_line(in, &line, &len);
        if (got == -1) {
            oversized(c);
            return;
        }
        if (got == -2) {
            drop_client(c);
            return;
        }
        if (got == 0)
            break;
        bool more = handle_line(c, line, len);
        free(line);
        if (!more)
            return;
    }
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > SC_CONTROL_OUTPUT_MAX_BYTES) {
        c->paused = true; /* on_write resumes once the client has read it all */
        bufferevent_disable(c->bev, EV_READ);
        return;
    }
    c->paused = false;
    if (!c->eof) {
        bufferevent_enable(c->bev, EV_READ);
        return;
    }
    size_t rest = evbuffer_get_length(in);
    if (rest > 0) { /* the last request, sent without its LF */
        char *line = malloc(rest);
        if (line == NULL) {
            drop_client(c);
            return;
        }
        evbuffer_remove(in, line, rest);
        bool more = handle_line(c, line, rest);
        free(line);
        if (!more)
            return;
    }
    close_after_flush(c);
}

/* ---- bufferevent callbacks ----------------------------------------------------------- */

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct client *c = arg;
    if (!c->closing && !c->paused)
        serve(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct client *c = arg;
    if (c->closing)
        drop_client(c); /* the write callback runs once the output is empty */
    else if (c->paused)
        serve(c);
}

static void on_bev_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct client *c = arg;
    if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && !c->closing && c->watch == 0) {
        c->eof = true; /* answer what it sent, then close */
        if (!c->paused)
            serve(c);
        return;
    }
    drop_client(c); /* error, timeout, or a watcher that hung up */
}

/* ---- accepting ----------------------------------------------------------------------- */

/* Tells a client over the limit why, without blocking, and closes it. */
static void refuse(struct sc_control *ctl, evutil_socket_t fd)
{
    char buf[REFUSE_DRAIN_BYTES];
    ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT); /* one read at most */
    (void)r;
    char why[128];
    snprintf(why, sizeof why, "too many control clients (at most %u); try again later",
             SC_CONTROL_CLIENTS_MAX);
    json_t *e = sc_control_rpc_error(SC_CONTROL_RPC_FAILED, why);
    char *text = e != NULL ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    if (text != NULL) {
        size_t n = strlen(text);
        text[n] = '\n'; /* replaces the NUL; send() takes the length */
        ssize_t w = send(fd, text, n + 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w; /* best effort: the client is refused either way */
        free(text);
    }
    evutil_closesocket(fd);
    long long sup = sc_log_ratelimit_pass(&ctl->refuse_rl, sc_mono_ms());
    if (sup >= 0)
        sc_log(SC_LOG_WARN, "control.refused", "reason=too_many_clients max=%u suppressed=%lld",
               SC_CONTROL_CLIENTS_MAX, sup);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)lev;
    (void)sa;
    (void)salen;
    struct sc_control *ctl = arg;
    if (ctl->n_clients >= SC_CONTROL_CLIENTS_MAX) {
        refuse(ctl, fd);
        return;
    }
    struct client *c = calloc(1, sizeof *c);
    struct bufferevent *bev =
        c != NULL ? bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (bev == NULL) {
        free(c);
        evutil_closesocket(fd);
        sc_log(SC_LOG_ERROR, "control.client_dropped", "reason=out_of_memory");
        return;
    }
    c->ctl = ctl;
    c->bev = bev;
    c->next = ctl->clients;
    if (ctl->clients != NULL)
        ctl->clients->prev = c;
    ctl->clients = c;
    ctl->n_clients++;
    bufferevent_setwatermark(bev, EV_READ, 0, READ_HIGH_WATER_BYTES);
    bufferevent_setcb(bev, on_read, on_write, on_bev_event, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_control *ctl = arg;
    if (ctl->lev != NULL)
        evconnlistener_enable(ctl->lev);
}

/* Out of descriptors: a level-triggered listener would spin, so pause
 * accepting for a moment instead. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    struct sc_control *ctl = arg;
    int e = EVUTIL_SOCKET_ERROR();
    long long sup = sc_log_ratelimit_pass(&ctl->accept_rl, sc_mono_ms());
    if (sup >= 0)
        sc_log(SC_LOG_WARN, "control.accept_error", "error=\"%s\" suppressed=%lld",
               evutil_socket_error_to_string(e), sup);
    evconnlistener_disable(lev);
    struct timeval tv = sc_ms_to_tv(SC_ACCEPT_PAUSE_MS);
    evtimer_add(ctl->resume, &tv);
}

/* ---- the socket file ------------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Removes a stale socket at the path: one nothing listens on. Anything else
 * there (a live socket, a file, a link, a directory) is left alone. */
static int clear_stale(const struct sockaddr_un *addr, char *err, size_t errlen)
{
    const char *path = addr->sun_path;
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        set_err(err, errlen, "control socket %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        set_err(err, errlen, "control socket %s: a file that is not a socket is there; "
                             "not replacing it", path);
        return -1;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (probe < 0) {
        set_err(err, errlen, "control socket %s: socket: %s", path, strerror(errno));
        return -1;
    }
    int rc = connect(probe, (const struct sockaddr *)addr, sizeof *addr);
    int e = errno;
    close(probe);
    if (rc != 0 && e == ECONNREFUSED) {
        if (unlink(path) != 0 && errno != ENOENT) {
            set_err(err, errlen, "control socket %s: cannot remove the stale socket: %s", path,
                    strerror(errno));
            return -1;
        }
        sc_log(SC_LOG_INFO, "control.stale_removed", "path=%s", path);
        return 0;
    }
    if (rc == 0 || e == EAGAIN || e == EINPROGRESS)
        set_err(err, errlen, "control socket %s: another process is listening on it "
                             "(is secircd already running?)", path);
    else
        set_err(err, errlen, "control socket %s: cannot tell whether it is in use: %s", path,
                strerror(e));
    return -1;
}

/* A listening socket at the path, never group/world accessible; -1 on error. */
static int open_socket(struct sc_control *ctl, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof addr.sun_path) {
        set_err(err, errlen, "control socket %s: the path must have 1 to %zu bytes", path,
                sizeof addr.sun_path - 1);
        return -1;
    }
    memcpy(addr.sun_path, path, n + 1);
    if (clear_stale(&addr, err, errlen) != 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_err(err, errlen, "control socket %s: socket: %s", path, strerror(errno));
        return -1;
    }
    /* bind() creates the file with mode 0777 & ~umask. Setting the umask to
     * 0177 around the call makes it 0600 from its first instant, with no
     * window before a chmod. The umask is process-wide, but the daemon has
     * no threads, so nothing else creates a file meanwhile. (A 0700
     * directory would do too, but control.socket names the socket itself.) */
    mode_t old = umask(0177);
    int rc = bind(fd, (const struct sockaddr *)&addr, sizeof addr);
    int e = errno;
    umask(old);
    if (rc != 0) {
        close(fd);
        set_err(err, errlen, "control socket %s: bind: %s", path, strerror(e));
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) != 0 || (st.st_mode & 0077u) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        e = errno;
        close(fd);
        unlink(path);
        set_err(err, errlen, "control socket %s: %s", path,
                (st.st_mode & 0077u) != 0 ? "created with group/other access" : strerror(e));
        return -1;
    }
    ctl->dev = st.st_dev;
    ctl->ino = st.st_ino;
    return fd;
}

/* Removes the socket file if it is still the one we made. */
static void remove_socket_file(struct sc_control *ctl)
{
    struct stat st;
    if (ctl->path != NULL && lstat(ctl->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == ctl->dev && st.st_ino == ctl->ino)
        unlink(ctl->path);
}

struct sc_control *sc_control_new(struct sc_daemon *d, const char *socket_path, char *err,
                                  size_t errlen)
{
    set_err(err, errlen, "%s", "");
    if (d == NULL || socket_path == NULL) {
        set_err(err, errlen, "control socket: no daemon or path");
        return NULL;
    }
    struct sc_control *ctl = calloc(1, sizeof *ctl);
    if (ctl == NULL) {
        set_err(err, errlen, "control socket %s: out of memory", socket_path);
        return NULL;
    }
    ctl->daemon = d;
    ctl->base = sc_daemon_base(d);
    ctl->refuse_rl = (struct sc_log_ratelimit)SC_LOG_RATELIMIT_INIT(1000);
    ctl->drop_rl = (struct sc_log_ratelimit)SC_LOG_RATELIMIT_INIT(1000);
    ctl->accept_rl = (struct sc_log_ratelimit)SC_LOG_RATELIMIT_INIT(1000);
    ctl->path = strdup(socket_path);
    ctl->reaper = event_new(ctl->base, -1, 0, on_reap, ctl);
    ctl->resume = evtimer_new(ctl->base, on_resume, ctl);
    if (ctl->path == NULL || ctl->reaper == NULL || ctl->resume == NULL) {
        set_err(err, errlen, "control socket %s: out of memory", socket_path);
        free(ctl->path);
        ctl->path = NULL;
        free_now(ctl);
        return NULL;
    }
    int fd = open_socket(ctl, socket_path, err, errlen);
    if (fd < 0) {
        free(ctl->path);
        ctl->path = NULL;
        free_now(ctl);
        return NULL;
    }
    ctl->lev = evconnlistener_new(ctl->base, on_accept, ctl,
                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (ctl->lev == NULL) {
        close(fd);
        remove_socket_file(ctl);
        set_err(err, errlen, "control socket %s: out of memory", socket_path);
        free_now(ctl);
        return NULL;
    }
    evconnlistener_set_error_cb(ctl->lev, on_accept_error);
    sc_log(SC_LOG_INFO, "control.listening", "path=%s mode=0600", socket_path);
    return ctl;
}

void sc_control_free(struct sc_control *ctl)
{
    if (ctl == NULL || ctl->free_requested)
        return;
    if (ctl->lev != NULL)
        evconnlistener_free(ctl->lev);
    ctl->lev = NULL;
    remove_socket_file(ctl);
    if (ctl->depth == 0) {
        free_now(ctl);
        return;
    }
    /* Inside a request (e.g. a reload): the request's caller still holds
     * its client. Close everything now; the reaper frees the rest once the
     * request has returned. */
    ctl->free_requested = true;
    evtimer_del(ctl->resume);
    while (ctl->clients != NULL)
        drop_client(ctl->clients);
    event_active(ctl->reaper, EV_TIMEOUT, 0);
}
