/* cmd/secirc_linktest.c — `secirc link-test listen|connect`: two processes
 * link by hand over TCP (optionally through test transport layers) and
 * exchange messages. Prints one line per event on stdout and takes commands
 * on stdin (send TEXT, ping, stats, close, quit); --send-count/--recv-check
 * drive bulk transfers checked by content. Used by the integration tests and
 * benchmarks; argument parsing and printing only, no protocol logic. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "cmd/cli.h"
#include "cmd/secirc_linktest.h"
#include "link/link_stream.h"
#include "secirc/identity.h"
#include "secirc/link.h"
#include "secirc/listener.h"
#include "transport/transport.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/time.h"

/* How long `quit` waits for links to finish closing before it exits. */
#define QUIT_WAIT_MS 3000u

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void peer_short(struct sc_link *link, char buf[17])
{
    const uint8_t *id = sc_link_peer_id(link);
    if (id)
        sc_hex_encode(id, 8, buf);
    else
        snprintf(buf, 17, "-");
}

static void quit(struct app *a);

/* ---- bulk messages: content derived from the sequence number ------------ */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Message i: 8-byte sequence number, then pseudo-random bytes; its length
 * varies with i up to send_size (at least 8). */
static size_t bulk_message(uint64_t i, uint32_t max, uint8_t *buf)
{
    size_t len = max <= 8 ? 8 : 8 + (size_t)(mix(i) % (max - 7));
    for (int b = 0; b < 8; b++)
        buf[b] = (uint8_t)(i >> (56 - 8 * b));
    uint64_t state = mix(i ^ 0x5ec12cULL);
    for (size_t p = 8; p < len; p += 8) {
        state = mix(state + 0x9e3779b97f4a7c15ULL);
        size_t n = len - p < 8 ? len - p : 8;
        memcpy(buf + p, &state, n);
    }
    return len;
}

static void maybe_done(struct app *a)
{
    if (!a->exit_when_done || a->sent < a->send_count || a->received < a->recv_check)
        return;
    if (a->bulk_link)
        sc_link_close(a->bulk_link, SC_REASON_LOCAL_CLOSE); /* quit follows on_closed */
    else
        quit(a);
}

static void pump(struct app *a)
{
    if (!a->bulk_link || a->sent >= a->send_count)
        return;
    static uint8_t buf[SC_MESSAGE_PAYLOAD_MAX_BYTES];
    while (a->sent < a->send_count) {
        uint8_t id[SC_MESSAGE_ID_BYTES] = {0};
        for (int b = 0; b < 8; b++)
            id[b] = (uint8_t)(a->sent >> (56 - 8 * b));
        size_t len = bulk_message(a->sent, a->send_size, buf);
        int err = sc_link_send(a->bulk_link, id, 8, 0, buf, len);
        if (err == SC_EAGAIN)
            return; /* resumes on on_backpressure(false) */
        if (err) {
            out("send_failed error=%s", sc_err_name(err));
            a->exit_status = 1;
            return;
        }
        if (a->sent == 0)
            a->send_start_us = sc_mono_us();
        a->sent++;
    }
    out("sent count=%llu", (unsigned long long)a->sent);
    maybe_done(a);
}

static void check_bulk(struct app *a, const struct sc_relay_message *m)
{
    static uint8_t want[SC_MESSAGE_PAYLOAD_MAX_BYTES];
    uint64_t now = sc_mono_us();
    if (a->received == 0)
        a->first_recv_us = now;
    a->last_recv_us = now;
    size_t len = bulk_message(a->received, a->send_size, want);
    if (!a->verify_failed && (m->len != len || memcmp(m->payload, want, len) != 0)) {
        a->verify_failed = true;
        a->exit_status = 1;
        out("verify_failed at=%llu len=%zu want_len=%zu", (unsigned long long)a->received, m->len,
            len);
    }
    a->received++;
    a->recv_bytes += m->len;
    if (a->received == a->recv_check && !a->verify_failed) {
        double secs = (double)(a->last_recv_us - a->first_recv_us) / 1e6;
        out("verified count=%llu bytes=%llu seconds=%.6f", (unsigned long long)a->received,
            (unsigned long long)a->recv_bytes, secs);
        maybe_done(a);
    }
}

/* ---- link callbacks ----------------------------------------------------- */

static void track(struct app *a, struct sc_link *link)
{
    for (size_t i = 0; i < a->nlinks; i++)
        if (a->links[i] == link)
            return;
    if (a->nlinks < MAX_LINKS)
        a->links[a->nlinks++] = link;
}

static void on_authenticated(struct sc_link *link, void *arg)
{
    struct app *a = arg;
    track(a, link);
    char id[SC_RELAY_ID_HEX_LEN + 1], lk[17];
    sc_relay_id_to_hex(sc_link_peer_id(link), id);
    sc_hex_encode(sc_link_peer_link_key(link), 8, lk);
    const struct sc_accept_info *ai = sc_link_accept_info(link);
    struct sc_stream_info si;
    sc_link_stream_info(link, &si);
    out("authenticated peer=%s peer_link_key=%s role=%s priority=%u max_message=%u "
        "heartbeat_ms=%u transport=%s%s%s%s",
        id, lk, sc_link_is_initiator(link) ? "initiator" : "responder", ai->priority,
        ai->max_message_bytes, ai->heartbeat_interval_ms, si.transport, si.alpn[0] ? " alpn=" : "",
        si.alpn, si.has_binding ? " binding=yes" : "");
    if (!a->bulk_link && (a->send_count || a->recv_check)) {
        a->bulk_link = link;
        pump(a);
    }
}

static void on_message(struct sc_link *link, const struct sc_relay_message *m, void *arg)
{
    struct app *a = arg;
    if (a->recv_check && link == a->bulk_link) {
        check_bulk(a, m);
        return;
    }
    if (!a->quiet) {
        char peer[17], id[33];
        peer_short(link, peer);
        sc_hex_encode(m->id, SC_MESSAGE_ID_BYTES, id);
        bool printable = true;
        for (size_t i = 0; i < m->len; i++)
            if (m->payload[i] < 0x20 || m->payload[i] > 0x7e)
                printable = false;
        out("message peer=%s id=%s hop=%u len=%zu text=%.*s", peer, id, m->hop_limit, m->len,
            printable ? (int)m->len : 0, (const char *)m->payload);
    }
    if (a->echo) {
        int err = sc_link_send(link, m->id, m->hop_limit, m->flags, m->payload, m->len);
        if (err && !a->quiet)
            out("echo_failed error=%s", sc_err_name(err));
    }
}

static void on_rtt(struct sc_link *link, uint32_t rtt_us, void *arg)
{
    (void)arg;
    char peer[17];
    peer_short(link, peer);
    struct sc_link_stats st;
    sc_link_get_stats(link, &st);
    out("rtt peer=%s us=%u srtt_us=%u rttvar_us=%u late=%llu", peer, rtt_us, st.srtt_us,
        st.rttvar_us, (unsigned long long)st.rtt_samples_late);
}

static void on_backpressure(struct sc_link *link, bool full, void *arg)
{
    struct app *a = arg;
    struct sc_link_stats st;
    sc_link_get_stats(link, &st);
    out("backpressure full=%d queued_bytes=%zu queued_messages=%u", full, st.queued_bytes,
        st.queued_messages);
    if (!full && link == a->bulk_link)
        pump(a);
}

/* --reject refuses everyone; --trust IDs get priority trusted; everyone
 * else the --priority class. */
static enum sc_reason policy(struct sc_link *link, const uint8_t peer_id[SC_RELAY_ID_BYTES],
                             struct sc_accept_info *info, void *arg)
{
    (void)link;
    struct app *a = arg;
    for (size_t i = 0; i < a->ntrusted; i++)
        if (memcmp(a->trusted[i], peer_id, SC_RELAY_ID_BYTES) == 0)
            info->priority = SC_PRIORITY_TRUSTED;
    return a->reject;
}

static void on_closed(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg)
{
    struct app *a = arg;
    char peer[17];
    peer_short(link, peer);
    struct sc_link_stats st;
    sc_link_get_stats(link, &st);
    out("closed peer=%s reason=%s by=%s sent=%llu received=%llu rekeys_sent=%llu "
        "rekeys_received=%llu bytes_in=%llu unsent=%llu",
        peer, sc_reason_name(reason), by_peer ? "peer" : "local",
        (unsigned long long)st.messages_sent, (unsigned long long)st.messages_received,
        (unsigned long long)st.rekeys_sent, (unsigned long long)st.rekeys_received,
        (unsigned long long)st.bytes_received, (unsigned long long)st.messages_unsent);
    for (size_t i = 0; i < a->nlinks; i++)
        if (a->links[i] == link) {
            a->links[i] = a->links[--a->nlinks];
            break;
        }
    bool was_bulk = link == a->bulk_link;
    if (was_bulk)
        a->bulk_link = NULL;
    if (!a->listen_mode && !a->quitting && reason != SC_REASON_LOCAL_CLOSE)
        a->exit_status = 1;
    if (!a->listen_mode || a->quitting || (was_bulk && a->exit_when_done))
        quit(a);
}

static const struct sc_link_callbacks link_callbacks = {
    .on_authenticated = on_authenticated,
    .on_message = on_message,
    .on_rtt = on_rtt,
    .on_backpressure = on_backpressure,
    .policy = policy,
    .on_closed = on_closed,
};

/* The listener hands over an authenticated link (callbacks already ours). */
static void on_link(struct sc_listener *l, struct sc_link *link, void *arg)
{
    (void)l;
    on_authenticated(link, arg);
}

/* A connection the listener took that never became a link. */
static void on_failed(struct sc_listener *l, enum sc_reason reason, bool by_peer, void *arg)
{
    (void)l;
    (void)arg;
    out("closed peer=- reason=%s by=%s", sc_reason_name(reason), by_peer ? "peer" : "local");
}

/* ---- commands on stdin ---------------------------------------------------- */

static void print_stats(struct app *a)
{
    if (!a->listener) {
        out("stats links=%zu", a->nlinks);
        return;
    }
    struct sc_listener_stats s;
    sc_listener_get_stats(a->listener, &s);
    char line[2048];
    int n = snprintf(line, sizeof line,
                     "stats links=%zu accepted=%llu refused=%llu evicted=%llu authenticated=%llu "
                     "handshaking=%u open=%u tarpit=%u",
                     a->nlinks, (unsigned long long)s.accepted, (unsigned long long)s.refused,
                     (unsigned long long)s.evicted, (unsigned long long)s.authenticated,
                     s.handshakes_in_progress, s.links_open, s.tarpit);
    for (unsigned r = 1; r < SC_REASON_COUNT && n > 0 && (size_t)n < sizeof line; r++)
        n += snprintf(line + n, sizeof line - (size_t)n, " %s=%llu", sc_reason_name(r),
                      (unsigned long long)s.closed[r]);
    out("%s", line);
}

static void command(struct app *a, char *line)
{
    if (strncmp(line, "send ", 5) == 0) {
        const char *text = line + 5;
        uint8_t id[SC_MESSAGE_ID_BYTES];
        for (size_t i = 0; i < a->nlinks; i++) {
            if (sc_link_state(a->links[i]) != SC_LINK_AUTHENTICATED)
                continue;
            randombytes_buf(id, sizeof id);
            int err = sc_link_send(a->links[i], id, 8, 0, text, strlen(text));
            if (err)
                out("send_failed error=%s", sc_err_name(err));
        }
    } else if (strcmp(line, "ping") == 0) {
        for (size_t i = 0; i < a->nlinks; i++)
            if (sc_link_state(a->links[i]) == SC_LINK_AUTHENTICATED && sc_link_ping(a->links[i]) != 0)
                out("ping_failed");
    } else if (strcmp(line, "stats") == 0) {
        print_stats(a);
    } else if (strcmp(line, "close") == 0) {
        for (size_t i = 0; i < a->nlinks; i++)
            sc_link_close(a->links[i], SC_REASON_LOCAL_CLOSE);
    } else if (strcmp(line, "quit") == 0) {
        quit(a);
    } else if (line[0]) {
        out("unknown_command %s", line);
    }
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct app *a = arg;
    int r = evbuffer_read(a->stdin_buf, fd, 4096);
    if (r <= 0) {
        event_del(a->stdin_ev);
        quit(a);
        return;
    }
    char *line;
    size_t n;
    while ((line = evbuffer_readln(a->stdin_buf, &n, EVBUFFER_EOL_LF))) {
        command(a, line);
        free(line);
        if (a->quitting)
            return;
    }
    if (evbuffer_get_length(a->stdin_buf) > 65536)
        evbuffer_drain(a->stdin_buf, evbuffer_get_length(a->stdin_buf));
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    quit(arg);
}

static uint64_t key_expiry(const struct app *a)
{
    uint64_t rot_s = a->rotate_ms ? 2 * (a->rotate_ms / 1000 + 1) : SC_LINK_KEY_ROTATION_S_DEFAULT;
    return sc_unix_s() + rot_s + SC_LINK_KEY_OVERLAP_S_DEFAULT;
}

/* Link-key rotation: new links get the new key; links up keep working. */
static void on_rotate(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct app *a = arg;
    struct sc_link_key *fresh;
    if (sc_link_key_generate(a->identity, key_expiry(a), &fresh) != 0)
        return;
    sc_link_key_free(a->old_link_key);
    a->old_link_key = a->link_key;
    a->link_key = fresh;
    a->lc.link_key = fresh;
    if (a->listener)
        sc_listener_set_link_key(a->listener, fresh);
    char lk[17];
    sc_hex_encode(fresh->pub, 8, lk);
    out("link_key_rotated link_key=%s", lk);
}

static void on_quit_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct app *a = arg;
    event_base_loopexit(a->base, NULL);
}

/* Stops listening and dialing, closes every link (telling the peer
 * "shutdown"), then leaves the loop once they are all closed, or after
 * QUIT_WAIT_MS. */
static void quit(struct app *a)
{
    if (!a->quitting) {
        a->quitting = true;
        sc_dial_cancel(a->dial);
        a->dial = NULL;
        sc_listener_free(a->listener); /* ends what is still handshaking */
        a->listener = NULL;
        if (a->stdin_ev)
            event_del(a->stdin_ev);
        if (a->rotate_ev)
            event_del(a->rotate_ev);
        for (size_t i = 0; i < a->nlinks; i++)
            sc_link_close(a->links[i], SC_REASON_SHUTDOWN);
        a->quit_ev = evtimer_new(a->base, on_quit_timeout, a);
        struct timeval tv = sc_ms_to_tv(QUIT_WAIT_MS);
        if (a->quit_ev)
            evtimer_add(a->quit_ev, &tv);
    }
    if (a->nlinks == 0)
        event_base_loopexit(a->base, NULL);
}

/* ---- connect -------------------------------------------------------------- */

static void on_dialed(struct sc_stream *stream, int err, const char *why, void *arg)
{
    struct app *a = arg;
    int layer_err = 0;
    const struct sc_layer_ops *layer = err ? sc_dial_fault(a->dial, &layer_err) : NULL;
    a->dial = NULL;
    if (err) {
        enum sc_reason reason = err == SC_ETIMEDOUT ? SC_REASON_TIMEOUT : SC_REASON_CONNECT_FAILED;
        if (layer)
            reason = sc_link_layer_reason(layer, layer_err);
        else if (a->socks5.on) /* the proxy's own port */
            reason = sc_link_socks5_reason(err, reason);
        out("connect_failed error=%s why=\"%s\" reason=%s", sc_err_name(err), why,
            sc_reason_name(reason));
        a->exit_status = 1;
        quit(a);
        return;
    }
    struct sc_link *link;
    err = sc_link_start(a->base, stream, &a->lc, NULL, &link);
    if (err) {
        out("link_failed error=%s", sc_err_name(err));
        a->exit_status = 1;
        quit(a);
        return;
    }
    char label[300];
    snprintf(label, sizeof label, "%s:%u", a->host, a->port);
    sc_link_set_label(link, label);
    track(a, link); /* closed at quit even if never authenticated */
}

/* Lets one process hold the thousands of sockets the tests open, or sets
 * the exact limit a test asks for. */
static void set_fd_limit(uint64_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rl.rlim_cur = want ? (rlim_t)want : rl.rlim_max;
    if (rl.rlim_cur > rl.rlim_max)
        rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
}

/* ---- set-up and main ---------------------------------------------------------- */

/* The layers above tcp, bottom-up: [socks5 | http_connect] [--layer] [tls]
 * [websocket]. 0 or an exit status. */
static int build_layers(struct app *a, const char *address, struct sc_layer_spec *out, size_t *n)
{
    *n = 0;
    if (a->socks5.on)
        out[(*n)++] = a->socks5.layer;
    else if (a->ws.use_proxy && !a->listen_mode)
        out[(*n)++] = sc_linktest_ws_tunnel(&a->ws, a->host, a->port);
    if (a->has_layer)
        out[(*n)++] = a->layer;
    struct sc_layer_spec tls;
    int rc = sc_linktest_tls_setup(&a->tls, a->listen_mode, a->host, address, &tls);
    if (rc)
        return rc;
    if (a->tls.on)
        out[(*n)++] = tls;
    if (a->ws.on)
        out[(*n)++] = sc_linktest_ws_layer(&a->ws, a->host, a->port, a->tls.on);
    return 0;
}

static int start_listening(struct app *a, const char *address, const char *idhex)
{
    a->lcfg.address = address;
    a->lcfg.port = a->port;
    a->lcfg.link = a->lc;
    a->lcfg.on_link = on_link;
    a->lcfg.on_failed = on_failed;
    a->lcfg.arg = a;
    struct sc_layer_spec specs[SC_STREAM_LAYERS_MAX];
    size_t nspecs;
    int rc = build_layers(a, address, specs, &nspecs);
    if (rc)
        return rc;
    int err = sc_listener_new(a->base, &a->lcfg, &a->listener);
    if (!err && nspecs)
        err = sc_listener_set_layers(a->listener, specs, nspecs);
    if (err) {
        fprintf(stderr, "secirc link-test: cannot listen on %s:%u: %s\n", address, a->port,
                sc_strerror(err));
        return 1;
    }
    out("listening address=%s port=%u relay_id=%s", address, sc_listener_port(a->listener), idhex);
    return 0;
}

static int start_connecting(struct app *a)
{
    a->dns = evdns_base_new(a->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    struct sc_dial_spec spec = {.host = a->host,
                                .port = a->port,
                                .source_address = a->source,
                                .timeout_ms = a->lc.connection_timeout_ms,
                                .dns = a->dns};
    int rc = build_layers(a, NULL, spec.layers, &spec.nlayers);
    if (rc)
        return rc;
    if (a->socks5.on) { /* tcp to the proxy; the target goes to it by name */
        spec.host = a->socks5.proxy_host;
        spec.port = a->socks5.proxy_port;
    } else if (a->ws.use_proxy) { /* tcp goes to the proxy; http_connect names the relay */
        spec.host = a->ws.proxy_at.host;
        spec.port = a->ws.proxy_at.port;
    }
    int err = sc_dial_start(a->base, &spec, on_dialed, a, &a->dial);
    if (err) {
        fprintf(stderr, "secirc link-test: cannot connect: %s\n", sc_strerror(err));
        return 1;
    }
    return 0;
}

static void add_events(struct app *a)
{
    /* Commands come from a pipe or terminal; a file or /dev/null is ignored. */
    struct stat st;
    if (fstat(0, &st) == 0 && !S_ISREG(st.st_mode) && !(S_ISCHR(st.st_mode) && !isatty(0))) {
        a->stdin_ev = event_new(a->base, 0, EV_READ | EV_PERSIST, on_stdin, a);
        event_add(a->stdin_ev, NULL);
    }
    a->sigint_ev = evsignal_new(a->base, SIGINT, on_signal, a);
    a->sigterm_ev = evsignal_new(a->base, SIGTERM, on_signal, a);
    event_add(a->sigint_ev, NULL);
    event_add(a->sigterm_ev, NULL);
    if (a->rotate_ms) {
        a->rotate_ev = event_new(a->base, -1, EV_PERSIST, on_rotate, a);
        struct timeval tv = sc_ms_to_tv(a->rotate_ms);
        event_add(a->rotate_ev, &tv);
    }
}

static void cleanup(struct app *a)
{
    sc_dial_cancel(a->dial);
    sc_listener_free(a->listener);
    while (a->nlinks) /* each on_closed removes its link */
        sc_link_free(a->links[a->nlinks - 1]);
    struct event *evs[] = {a->stdin_ev, a->sigint_ev, a->sigterm_ev, a->rotate_ev, a->quit_ev};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i])
            event_free(evs[i]);
    if (a->stdin_buf)
        evbuffer_free(a->stdin_buf);
    if (a->dns)
        evdns_base_free(a->dns, 0);
    if (a->base) {
        sc_link_finish_lingering(a->base);
        event_base_free(a->base);
    }
    sc_linktest_tls_free(&a->tls);
    sc_link_key_free(a->link_key);
    sc_link_key_free(a->old_link_key);
    sc_identity_free(a->identity);
}

static int run(struct app *a, const struct cli_paths *p)
{
    char why[256] = "";
    int err = sc_identity_load(p->key_path, &a->identity, why, sizeof why);
    if (err) {
        fprintf(stderr, "secirc: %s: %s\n", p->key_path, why[0] ? why : sc_strerror(err));
        return 1;
    }
    set_fd_limit(p->fd_limit);
    signal(SIGPIPE, SIG_IGN);
    err = sc_link_key_generate(a->identity, key_expiry(a), &a->link_key);
    a->base = event_base_new();
    a->stdin_buf = evbuffer_new();
    if (err || !a->base || !a->stdin_buf) {
        fprintf(stderr, "secirc link-test: set-up failed\n");
        return 1;
    }
    a->lc.identity = a->identity;
    a->lc.link_key = a->link_key;
    a->lc.initiator = !a->listen_mode;
    a->lc.cb = link_callbacks;
    a->lc.cb_arg = a;
    char idhex[SC_RELAY_ID_HEX_LEN + 1];
    sc_relay_id_to_hex(sc_identity_relay_id(a->identity), idhex);
    int rc = a->listen_mode ? start_listening(a, p->address, idhex) : start_connecting(a);
    if (rc)
        return rc;
    add_events(a);
    event_base_dispatch(a->base);
    return a->exit_status;
}

int sc_cli_link_test(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        sc_linktest_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    struct app *a = calloc(1, sizeof *a);
    if (!a)
        return 1;
    if (strcmp(argv[1], "listen") == 0) {
        a->listen_mode = true;
    } else if (strcmp(argv[1], "connect") != 0) {
        sc_linktest_usage(stderr);
        free(a);
        return 2;
    }
    sc_listener_config_defaults(&a->lcfg);
    sc_link_config_defaults(&a->lc);
    a->send_size = 1024;
    struct cli_paths p = {.address = "127.0.0.1", .log_level = SC_LOG_WARN};
    int rc = sc_linktest_parse_options(a, &p, argc, argv);
    if (rc == 0) {
        sc_log_set_level((enum sc_log_level)p.log_level);
        rc = run(a, &p);
    }
    cleanup(a);
    free(a);
    return rc < 0 ? 0 : rc;
}
