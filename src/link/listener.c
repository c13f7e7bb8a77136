/* link/listener.c — accepted connections become responder links under the
 * hard limits of secirc/listener.h: admission at accept (handshake caps
 * with fair eviction, rate limits), server-side transport layers and the
 * handshake under one deadline, link caps at the policy step, and the
 * hand-over of each authenticated link to its owner. Counts every end by
 * reason. Never queues a connection it cannot take. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/bufferevent.h>

#include "link/listener_internal.h"
#include "transport/transport.h"
#include "util/log.h"
#include "util/time.h"

struct sc_listener {
    struct sc_listener_config cfg;
    struct sc_tcp_listener *tcp;
    struct event_base *base;
    struct sources sources;
    struct sc_token_bucket bucket; /* all sources */
    struct tracked *all;
    struct sc_listener_stats stats;
    struct sc_log_ratelimit refuse_rl;
    struct sc_replay_cache *replay;
    struct sc_layer_spec layers[SC_STREAM_LAYERS_MAX];
    size_t nlayers;
    uint32_t fd_limit;
    uint32_t fds_at_start;     /* descriptors the process had before us */
    uint32_t max_tarpit;       /* the configured one, bounded by the descriptor limit */
    struct sc_closer **tarpit; /* max_tarpit slots, oldest first */
    bool freeing;
};

/* Counts an end; one that never became a link is reported as a failure. */
static void count_end(struct sc_listener *l, enum sc_reason reason, bool failed, bool by_peer)
{
    l->stats.closed[reason < SC_REASON_COUNT ? reason : SC_REASON_NONE]++;
    if (failed && l->cfg.on_failed && !l->freeing)
        l->cfg.on_failed(l, reason, by_peer, l->cfg.arg);
}

static void log_refused(struct sc_listener *l, const char *addr, enum sc_reason reason,
                        const char *cap)
{
    long long sup = sc_log_ratelimit_pass(&l->refuse_rl, sc_mono_ms());
    if (sup >= 0)
        sc_log(SC_LOG_WARN, "listener.refused", "addr=%s reason=%s cap=%s suppressed=%lld",
               l->cfg.log_addresses ? addr : "-", sc_reason_name(reason), cap, sup);
}

/* ---- tracked connections ------------------------------------------------------- */

static void handshake_over(struct tracked *t)
{
    if (!t->counted_handshake)
        return;
    t->counted_handshake = false;
    sc_source_remove_handshake(t->src, t);
    t->l->stats.handshakes_in_progress--;
}

static void untrack(struct tracked *t)
{
    struct sc_listener *l = t->l;
    handshake_over(t);
    if (t->phase == PHASE_LINK) {
        t->src->links--;
        l->stats.links_open--;
    }
    if (t->prev)
        t->prev->next = t->next;
    else
        l->all = t->next;
    if (t->next)
        t->next->prev = t->prev;
    free(t);
}

/* Every end of a link this listener started, before the owner's on_closed. */
static void on_link_end(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg)
{
    (void)link;
    struct tracked *t = arg;
    count_end(t->l, reason, t->phase != PHASE_LINK, by_peer);
    untrack(t);
}

/* ---- descriptors ---------------------------------------------------------------------- */

/* How many descriptors the process uses, at least: everything below the one
 * just given out is in use (the kernel hands out the lowest free one), and
 * so is everything this listener holds. */
static uint32_t fds_in_use(const struct sc_listener *l, int fd)
{
    uint32_t held = l->fds_at_start + l->stats.handshakes_in_progress + l->stats.links_open +
                    l->stats.tarpit;
    uint32_t below = fd >= 0 ? (uint32_t)fd + 1 : 0;
    return below > held ? below : held;
}

/* Into the upper half of the reserve: what strangers hold must give way. */
static bool fd_pressure(const struct sc_listener *l, int fd)
{
    return fds_in_use(l, fd) + l->cfg.fd_reserve / 2 >= l->fd_limit;
}

/* ---- tarpit: refused connections held silently (probe resistance) ----------- */

static void tarpit_done(struct sc_closer *c, void *arg)
{
    struct sc_listener *l = arg;
    if (l->freeing)
        return;
    for (uint32_t i = 0; i < l->stats.tarpit; i++) {
        if (l->tarpit[i] == c) {
            memmove(&l->tarpit[i], &l->tarpit[i + 1], (l->stats.tarpit - i - 1) * sizeof c);
            l->stats.tarpit--;
            return;
        }
    }
}

static void tarpit_add(struct sc_listener *l, struct bufferevent *bev, uint64_t until_ms)
{
    if (l->stats.tarpit >= l->max_tarpit)
        sc_closer_finish(l->tarpit[0]); /* the oldest goes early; tarpit_done compacts */
    struct sc_closer *c = sc_closer_start(bev, true, until_ms, tarpit_done, l);
    if (c)
        l->tarpit[l->stats.tarpit++] = c;
}

/* Turns a connection away at accept: at once, or (probe resistance) the way
 * a probe is ended: silence until connection_timeout, then a FIN; but never
 * with descriptors running low, where holding one would hurt known peers. */
static void refuse(struct sc_listener *l, int fd, const struct sockaddr *sa, enum sc_reason reason,
                   const char *cap, uint64_t now_ms)
{
    l->stats.refused++;
    count_end(l, reason, true, false);
    long long sup = sc_log_ratelimit_pass(&l->refuse_rl, now_ms);
    if (sup >= 0) {
        char addr[64] = "-";
        if (l->cfg.log_addresses)
            sc_sockaddr_format(sa, addr, sizeof addr);
        sc_log(SC_LOG_WARN, "listener.refused", "addr=%s reason=%s cap=%s suppressed=%lld", addr,
               sc_reason_name(reason), cap, sup);
    }
    if (!l->cfg.link.probe_resistance || !l->max_tarpit || fd_pressure(l, fd)) {
        evutil_closesocket(fd);
        return;
    }
    struct bufferevent *bev = sc_tcp_bev_new(l->base, fd); /* closes fd on failure */
    if (bev)
        tarpit_add(l, bev, now_ms + l->cfg.link.connection_timeout_ms);
}

/* Makes room for a newcomer: the oldest handshake of the source with the
 * most in progress ends (silently under probe resistance). With
 * descriptors running low (`urgent`) it ends at once, freeing its
 * descriptor now: no silence is worth locking a known peer out. */
static bool evict_one(struct sc_listener *l, bool urgent)
{
    struct source *s = sc_sources_busiest(&l->sources);
    if (!s || !s->oldest)
        return false;
    struct tracked *t = s->oldest;
    l->stats.evicted++;
    log_refused(l, t->addr, SC_REASON_HANDSHAKE_LIMIT, urgent ? "fd_reserve" : "evicted_oldest");
    handshake_over(t); /* the slot is free now; the end is counted when it comes */
    if (t->phase == PHASE_LAYERS) {
        struct sc_stream *stream = t->stream;
        uint64_t until = t->started_ms + l->cfg.link.connection_timeout_ms;
        count_end(l, SC_REASON_HANDSHAKE_LIMIT, true, false);
        untrack(t);
        if (l->cfg.link.probe_resistance && !urgent)
            sc_stream_close_silent(stream, until);
        else
            sc_stream_free(stream);
    } else if (urgent) {
        sc_link_free(t->link); /* its observer counts and untracks it */
    } else if (l->cfg.link.probe_resistance) {
        sc_link_end_silently(t->link, SC_REASON_HANDSHAKE_LIMIT);
    } else {
        sc_link_close(t->link, SC_REASON_HANDSHAKE_LIMIT);
    }
    return true;
}

/* ---- the policy step: link caps, then the owner's policy ------------------------ */

static uint32_t links_with_peer(const struct sc_listener *l, const uint8_t id[SC_RELAY_ID_BYTES])
{
    uint32_t n = 0;
    for (const struct tracked *t = l->all; t; t = t->next)
        n += t->phase == PHASE_LINK && memcmp(t->peer_id, id, SC_RELAY_ID_BYTES) == 0;
    return n;
}

static enum sc_reason over_cap(struct sc_listener *l, struct tracked *t, const char *cap)
{
    log_refused(l, t->addr, SC_REASON_BUSY, cap);
    return SC_REASON_BUSY;
}

static enum sc_reason policy(struct sc_link *link, const uint8_t peer_id[SC_RELAY_ID_BYTES],
                             struct sc_accept_info *info, void *arg)
{
    struct tracked *t = arg;
    struct sc_listener *l = t->l;
    const struct sc_listener_config *c = &l->cfg;
    if (links_with_peer(l, peer_id) >= c->max_links_per_peer)
        return over_cap(l, t, "max_links_per_peer");
    if (c->link.cb.policy) {
        enum sc_reason verdict = c->link.cb.policy(link, peer_id, info, c->link.cb_arg);
        if (verdict != SC_REASON_NONE)
            return verdict;
    }
    if (l->stats.links_open >= c->max_links)
        return over_cap(l, t, "max_links");
    if (info->priority > SC_PRIORITY_UNTRUSTED)
        return SC_REASON_NONE; /* known peers may use the reserves */
    if (l->stats.links_open + c->links_reserved >= c->max_links)
        return over_cap(l, t, "links_reserved");
    if (t->src->links >= c->max_links_per_address)
        return over_cap(l, t, "max_links_per_address");
    if (fds_in_use(l, t->fd) + c->fd_reserve >= l->fd_limit)
        return over_cap(l, t, "fd_reserve");
    return SC_REASON_NONE;
}

/* Authenticated: from now on the link is the owner's. */
static void hand_over(struct sc_link *link, void *arg)
{
    struct tracked *t = arg;
    struct sc_listener *l = t->l;
    handshake_over(t);
    t->phase = PHASE_LINK;
    memcpy(t->peer_id, sc_link_peer_id(link), SC_RELAY_ID_BYTES);
    t->src->links++;
    l->stats.links_open++;
    l->stats.authenticated++;
    sc_link_set_callbacks(link, &l->cfg.link.cb, l->cfg.link.cb_arg);
    if (l->cfg.on_link)
        l->cfg.on_link(l, link, l->cfg.arg);
}

static const struct sc_link_callbacks handshake_callbacks = {
    .on_authenticated = hand_over,
    .policy = policy,
};

/* ---- accepting ------------------------------------------------------------------- */

static void start_link(struct tracked *t, struct sc_stream *stream)
{
    struct sc_listener *l = t->l;
    struct sc_link_config lc = l->cfg.link;
    lc.initiator = false;
    lc.has_expected_id = false;
    lc.cb = handshake_callbacks;
    lc.cb_arg = t;
    struct sc_link_start start = {.started_ms = t->started_ms, .replay = l->replay};
    t->phase = PHASE_HANDSHAKE;
    t->stream = NULL;
    int err = sc_link_start(l->base, stream, &lc, &start, &t->link);
    if (err) {
        sc_log(SC_LOG_ERROR, "listener.link_failed", "error=\"%s\"", sc_strerror(err));
        count_end(l, SC_REASON_IO_ERROR, true, false);
        untrack(t);
        return;
    }
    sc_link_set_observer(t->link, on_link_end, t);
    if (l->cfg.log_addresses)
        sc_link_set_label(t->link, t->addr);
}

static enum sc_reason layer_error_reason(int err)
{
    switch (err) {
    case SC_ETIMEDOUT:
        return SC_REASON_TIMEOUT;
    case SC_ECONNRESET:
        return SC_REASON_PEER_CLOSED;
    default: /* tls_failed, tls_version, tls_cert, or protocol_error */
        return sc_link_layer_reason(err, SC_REASON_PROTOCOL_ERROR);
    }
}

static void on_layers(struct sc_stream *stream, int err, const char *why, void *arg)
{
    struct tracked *t = arg;
    struct sc_listener *l = t->l;
    if (!err) {
        start_link(t, stream);
        return;
    }
    enum sc_reason reason = layer_error_reason(err);
    sc_log(SC_LOG_INFO, "listener.layer_failed", "addr=%s reason=%s why=\"%s\"",
           l->cfg.log_addresses ? t->addr : "-", sc_reason_name(reason), why);
    count_end(l, reason, true, false);
    uint64_t until = t->started_ms + l->cfg.link.connection_timeout_ms;
    untrack(t);
    if (l->cfg.link.probe_resistance)
        sc_stream_close_silent(stream, until);
    else
        sc_stream_close(stream, SC_STREAM_LINGER_MS);
}

/* Admission first, on the bare socket: a refusal costs accept() and close()
 * and a table lookup, nothing more. */
static void on_accept(struct event_base *base, int fd, const struct sockaddr *sa, socklen_t salen,
                      void *arg)
{
    (void)base;
    struct sc_listener *l = arg;
    const struct sc_listener_config *c = &l->cfg;
    uint64_t now = sc_mono_ms();
    struct source *src = sc_sources_get(&l->sources, sa, c->handshake_rate_per_address,
                                        c->handshake_burst_per_address, now);
    if (!src || src->handshakes >= c->max_handshakes_per_address) {
        refuse(l, fd, sa, SC_REASON_HANDSHAKE_LIMIT, "max_handshakes_per_address", now);
        return;
    }
    if (!sc_token_bucket_take(&src->bucket, now)) {
        refuse(l, fd, sa, SC_REASON_RATE_LIMITED, "handshake_rate_per_address", now);
        return;
    }
    if (!sc_token_bucket_take(&l->bucket, now)) {
        refuse(l, fd, sa, SC_REASON_RATE_LIMITED, "handshake_rate", now);
        return;
    }
    /* Full, or descriptors running low: the busiest source gives way. */
    bool urgent = fd_pressure(l, fd);
    if ((l->stats.handshakes_in_progress >= c->max_handshakes || urgent) && !evict_one(l, urgent)) {
        refuse(l, fd, sa, SC_REASON_HANDSHAKE_LIMIT, urgent ? "fd_reserve" : "max_handshakes", now);
        return;
    }
    struct tracked *t = calloc(1, sizeof *t);
    struct bufferevent *bev = t ? sc_tcp_bev_new(l->base, fd) : NULL;
    if (!bev) {
        if (!t)
            evutil_closesocket(fd);
        free(t);
        return;
    }
    struct sc_stream *stream;
    if (sc_stream_new(bev, sa, salen, &stream) != 0) { /* it freed bev */
        free(t);
        return;
    }
    t->l = l;
    t->src = src;
    t->fd = fd;
    t->started_ms = now;
    sc_sockaddr_format(sa, t->addr, sizeof t->addr);
    t->counted_handshake = true;
    sc_source_add_handshake(src, t);
    l->stats.handshakes_in_progress++;
    l->stats.accepted++;
    t->next = l->all;
    if (l->all)
        l->all->prev = t;
    l->all = t;
    if (l->nlayers == 0) {
        start_link(t, stream);
        return;
    }
    t->phase = PHASE_LAYERS;
    t->stream = stream;
    if (sc_stream_negotiate(stream, SC_ROLE_SERVER, l->layers, l->nlayers,
                            c->link.connection_timeout_ms, on_layers, t) != 0) {
        count_end(l, SC_REASON_IO_ERROR, true, false);
        untrack(t);
        sc_stream_free(stream);
    }
}

/* ---- life cycle --------------------------------------------------------------------- */

void sc_listener_config_defaults(struct sc_listener_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->address = "127.0.0.1";
    cfg->backlog = 1024;
    cfg->max_handshakes = SC_HANDSHAKES_MAX_DEFAULT;
    cfg->max_handshakes_per_address = SC_HANDSHAKES_PER_ADDRESS_MAX_DEFAULT;
    cfg->handshake_rate = SC_HANDSHAKE_RATE_DEFAULT;
    cfg->handshake_burst = SC_HANDSHAKE_BURST_DEFAULT;
    cfg->handshake_rate_per_address = SC_HANDSHAKE_RATE_PER_ADDRESS_DEFAULT;
    cfg->handshake_burst_per_address = SC_HANDSHAKE_BURST_PER_ADDRESS_DEFAULT;
    cfg->max_links = SC_LINKS_MAX_DEFAULT;
    cfg->max_links_per_address = SC_LINKS_PER_ADDRESS_MAX_DEFAULT;
    cfg->max_links_per_peer = SC_LINKS_PER_PEER_MAX_DEFAULT;
    cfg->links_reserved = SC_LINKS_RESERVED_DEFAULT;
    cfg->fd_reserve = SC_FD_RESERVE_DEFAULT;
    cfg->max_tarpit = SC_TARPIT_MAX_DEFAULT;
    cfg->replay_cache_entries = SC_REPLAY_CACHE_ENTRIES_DEFAULT;
    cfg->log_addresses = true;
    sc_link_config_defaults(&cfg->link);
}

/* The soft descriptor limit; the reserve never takes more than half of it. */
static uint32_t fd_limit(uint32_t *reserve)
{
    struct rlimit rl;
    uint32_t lim = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        lim = rl.rlim_cur > UINT32_MAX ? UINT32_MAX : (uint32_t)rl.rlim_cur;
    else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        lim = UINT32_MAX;
    if (*reserve > lim / 2)
        *reserve = lim / 2;
    return lim;
}

/* Descriptors open now (counted once, at start). */
static uint32_t open_descriptors(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    uint32_t n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n > 3 ? n - 3 : 0; /* ".", ".." and the directory's own */
}

int sc_listener_new(struct event_base *base, const struct sc_listener_config *cfg,
                    struct sc_listener **out)
{
    *out = NULL;
    if (!cfg->max_handshakes || !cfg->max_handshakes_per_address || !cfg->max_links ||
        !cfg->max_links_per_address || !cfg->max_links_per_peer ||
        cfg->links_reserved >= cfg->max_links || !cfg->link.identity || !cfg->link.link_key)
        return SC_EINVAL;
    struct sc_listener *l = calloc(1, sizeof *l);
    if (!l)
        return SC_ENOMEM;
    l->cfg = *cfg;
    l->base = base;
    l->refuse_rl = (struct sc_log_ratelimit)SC_LOG_RATELIMIT_INIT(1000);
    l->fd_limit = fd_limit(&l->cfg.fd_reserve);
    l->fds_at_start = open_descriptors();
    /* Held connections must leave most descriptors for real work. */
    l->max_tarpit = cfg->max_tarpit < l->fd_limit / 8 ? cfg->max_tarpit : l->fd_limit / 8;
    sc_token_bucket_init(&l->bucket, cfg->handshake_rate, cfg->handshake_burst, sc_mono_ms());
    int err = sc_sources_init(&l->sources, cfg->max_handshakes + cfg->max_links);
    if (!err && l->max_tarpit && !(l->tarpit = calloc(l->max_tarpit, sizeof *l->tarpit)))
        err = SC_ENOMEM;
    if (!err && cfg->link.probe_resistance)
        err = sc_replay_new(cfg->replay_cache_entries, &l->replay);
    if (!err)
        err = sc_tcp_listener_new(base, cfg->address, cfg->port, cfg->backlog, on_accept, l, &l->tcp);
    if (err) {
        sc_replay_free(l->replay);
        sc_sources_free(&l->sources);
        free(l->tarpit);
        free(l);
        return err;
    }
    *out = l;
    return 0;
}

int sc_listener_set_layers(struct sc_listener *l, const struct sc_layer_spec *layers, size_t n)
{
    if (n > SC_STREAM_LAYERS_MAX)
        return SC_EINVAL;
    memcpy(l->layers, layers, n * sizeof *layers);
    l->nlayers = n;
    return 0;
}

uint16_t sc_listener_port(const struct sc_listener *l) { return sc_tcp_listener_port(l->tcp); }

void sc_listener_get_stats(const struct sc_listener *l, struct sc_listener_stats *out)
{
    *out = l->stats;
}

void sc_listener_set_link_key(struct sc_listener *l, const struct sc_link_key *key)
{
    l->cfg.link.link_key = key;
}

void sc_listener_free(struct sc_listener *l)
{
    if (!l)
        return;
    l->freeing = true; /* no more reports to the owner */
    sc_tcp_listener_free(l->tcp);
    struct tracked *next;
    for (struct tracked *t = l->all; t; t = next) {
        next = t->next;
        if (t->phase == PHASE_LAYERS) {
            sc_stream_free(t->stream);
            untrack(t);
        } else if (t->phase == PHASE_HANDSHAKE) {
            sc_link_free(t->link); /* its observer untracks it */
        } else {
            sc_link_set_observer(t->link, NULL, NULL); /* the owner's now */
            untrack(t);
        }
    }
    for (uint32_t i = 0; i < l->stats.tarpit; i++)
        sc_closer_finish(l->tarpit[i]);
    sc_replay_free(l->replay);
    sc_sources_free(&l->sources);
    free(l->tarpit);
    free(l);
}
