/* manager/manager_dial.c — what the manager dials and when: candidates
 * highest priority first while fewer than min_connections peers are
 * linked, a bounded number of dials in flight, and per path a jittered
 * exponential backoff, FAILED after max_retry_attempts, a long cool-down,
 * soft delays for `busy`, no retry at all for permanent refusals. One timer
 * per path; a generation number per attempt. Never dials in a loop. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "manager/manager_internal.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/time.h"

void sc_mgr_schedule(struct sc_manager *m)
{
    if (m->started && !m->stopping && !event_pending(m->schedule_ev, EV_TIMEOUT, NULL))
        event_active(m->schedule_ev, EV_TIMEOUT, 0);
}

static bool in_flight(const struct mpath *p)
{
    return !p->inbound && (p->state == SC_PATH_CONNECTING || p->state == SC_PATH_CONNECTED);
}

uint32_t sc_mgr_dials_in_flight(const struct sc_manager *m)
{
    uint32_t n = 0;
    for (const struct mpath *p = m->paths; p; p = p->next)
        n += in_flight(p);
    return n;
}

static uint32_t tor_dials_in_flight(const struct sc_manager *m)
{
    uint32_t n = 0;
    for (const struct mpath *p = m->paths; p; p = p->next)
        n += p->spec.type == SC_PATH_TOR && in_flight(p);
    return n;
}

bool sc_mgr_transport_available(const struct sc_manager *m, enum sc_path_type t)
{
    switch (t) {
    case SC_PATH_TCP:
        return m->cfg.enable_tcp;
    case SC_PATH_TOR:
        return m->cfg.enable_tor;
    case SC_PATH_WEBSOCKET:
        return m->cfg.enable_websocket;
    default:
        return false;
    }
}

void sc_mgr_arm_path_timer(struct mpath *p)
{
    uint64_t now = sc_mono_ms();
    struct timeval tv = sc_ms_to_tv(p->next_ms > now ? p->next_ms - now : 0);
    evtimer_add(p->timer, &tv);
}

static void wait_until(struct mpath *p, uint64_t delay_ms)
{
    p->next_ms = sc_mono_ms() + delay_ms;
    p->next_unix = sc_unix_s() + (delay_ms + 999) / 1000;
    sc_mgr_arm_path_timer(p);
}

/* Reasons that a retry on the transient schedule cannot cure. */
static bool permanent(enum sc_reason r)
{
    return r == SC_REASON_IDENTITY_MISMATCH || r == SC_REASON_NOT_ALLOWED ||
           r == SC_REASON_SELF || r == SC_REASON_TRANSPORT_UNAVAILABLE;
}

void sc_mgr_path_failed(struct mpath *p, enum sc_reason reason, bool was_healthy)
{
    struct sc_manager *m = p->m;
    const struct sc_manager_config *c = &m->cfg;
    evtimer_del(p->timer);
    if (m->stopping) {
        sc_mgr_path_set_state(p, SC_PATH_DISCONNECTED, reason);
        return;
    }
    if (was_healthy) { /* only a link that stayed up a while resets the backoff */
        sc_backoff_reset(&p->backoff);
        p->failures = 0;
    }
    switch (reason) {
    case SC_REASON_LOCAL_CLOSE:   /* we closed it (disconnect) */
    case SC_REASON_DUPLICATE:     /* linked over another link */
    case SC_REASON_LIMIT_REACHED: /* we had no room */
        /* Not the path's fault, so no count toward FAILED; but never an
         * immediate redial either: whatever closed it would close it again. */
        wait_until(p, sc_backoff_next_ms(&p->backoff, randombytes_random()));
        sc_mgr_path_set_state(p, SC_PATH_RECONNECTING, reason);
        break;
    case SC_REASON_TOR_UNAVAILABLE: {
        /* Our tor is down, not the peer: no count toward FAILED, and every
         * Tor path waits out one shared backoff (no storm of dials). */
        uint64_t now = sc_mono_ms();
        m->tor_down = true;
        if (now >= m->tor_retry_ms) {
            uint32_t delay = sc_backoff_next_ms(&m->tor_backoff, randombytes_random());
            m->tor_retry_ms = now + delay;
            m->tor_retry_unix = sc_unix_s() + (delay + 999) / 1000;
            sc_log(SC_LOG_WARN, "manager.tor_unavailable", "socks=%s:%u retry_in_ms=%u",
                   c->tor_socks_host, c->tor_socks_port, delay);
        }
        wait_until(p, m->tor_retry_ms - now);
        sc_mgr_path_set_state(p, SC_PATH_RECONNECTING, reason);
        break;
    }
    case SC_REASON_BUSY:    /* the peer is full: a soft failure with its own delay */
    case SC_REASON_EVICTED: /* …or replaced us by a stronger peer */
        if (p->peer) {
            p->peer->busy_until_ms = sc_mono_ms() + c->busy_retry_ms;
            p->peer->busy_until_unix = sc_unix_s() + c->busy_retry_ms / 1000u;
        }
        wait_until(p, c->busy_retry_ms / 2 + randombytes_uniform(c->busy_retry_ms / 2 + 1));
        sc_mgr_path_set_state(p, SC_PATH_RECONNECTING, reason);
        break;
    default:
        if (permanent(reason)) {
            p->never_retry = reason == SC_REASON_TRANSPORT_UNAVAILABLE;
            wait_until(p, c->failed_cooldown_ms);
            sc_mgr_path_set_state(p, SC_PATH_FAILED, reason);
            break;
        }
        p->failures++;
        if (p->failures >= c->max_retry_attempts) {
            wait_until(p, c->failed_cooldown_ms);
            sc_mgr_path_set_state(p, SC_PATH_FAILED, reason);
        } else {
            wait_until(p, sc_backoff_next_ms(&p->backoff, randombytes_random()));
            sc_mgr_path_set_state(p, SC_PATH_RECONNECTING, reason);
        }
        break;
    }
    if (p->never_retry)
        evtimer_del(p->timer);
    sc_mgr_schedule(m);
}

static void on_dialed(struct sc_stream *stream, int err, const char *why, void *arg)
{
    struct mpath *p = arg;
    struct sc_manager *m = p->m;
    int layer_err = 0;
    const struct sc_layer_ops *layer = err ? sc_dial_fault(p->dial, &layer_err) : NULL;
    p->dial = NULL;
    bool tor = p->spec.type == SC_PATH_TOR;
    if (err) {
        enum sc_reason reason = SC_REASON_CONNECT_FAILED;
        if (layer)
            reason = sc_link_layer_reason(layer, layer_err);
        else if (tor) /* tor's own SOCKS port */
            reason = sc_link_socks5_reason(err, reason);
        /* A layer's `why` (a SOCKS reply, an HTTP status) names no address
         * of ours or the peer's: keep it. */
        sc_log(SC_LOG_INFO, "path.dial_failed", "path=%u peer=%s type=%s reason=%s error=%s why=\"%s\"",
               p->id, p->peer ? p->peer->hex : "-", sc_path_type_name(p->spec.type),
               sc_reason_name(reason), sc_err_name(err),
               m->cfg.log_peer_addresses || layer ? why : "-");
        if (tor && reason != SC_REASON_TOR_UNAVAILABLE)
            m->tor_down = false; /* tor answered */
        sc_mgr_path_failed(p, reason, false);
        return;
    }
    if (tor && m->tor_down) {
        m->tor_down = false;
        sc_backoff_reset(&m->tor_backoff);
        sc_mgr_schedule(m); /* the other Tor paths may go now */
    }
    sc_mgr_path_set_state(p, SC_PATH_CONNECTED, SC_REASON_NONE);
    struct mlink *ml = sc_mgr_mlink_new(m, p, false);
    struct sc_link_config lc;
    sc_mgr_link_config(m, &lc);
    lc.initiator = true;
    if (tor)
        lc.connection_timeout_ms = m->cfg.tor_dial_timeout_ms;
    lc.has_expected_id = p->spec.has_id;
    memcpy(lc.expected_id, p->spec.id, SC_RELAY_ID_BYTES);
    lc.cb_arg = ml;
    struct sc_link_start start = {.started_ms = p->attempt_ms}; /* one deadline: dial + handshake */
    err = ml ? sc_link_start(m->base, stream, &lc, &start, &ml->link) : SC_ENOMEM;
    if (err) {
        if (!ml)
            sc_stream_free(stream);
        else
            free(ml); /* not linked into m->links yet */
        sc_mgr_path_failed(p, SC_REASON_IO_ERROR, false);
        return;
    }
    ml->next = m->links;
    m->links = ml;
    p->link = ml;
    if (m->cfg.log_peer_addresses)
        sc_link_set_label(ml->link, p->host);
}

void sc_mgr_dial(struct mpath *p)
{
    struct sc_manager *m = p->m;
    evtimer_del(p->timer);
    if (!sc_mgr_transport_available(m, p->spec.type)) {
        p->never_retry = true;
        if (p->state != SC_PATH_FAILED)
            sc_mgr_path_set_state(p, SC_PATH_FAILED, SC_REASON_TRANSPORT_UNAVAILABLE);
        return;
    }
    p->generation++;
    p->attempts++;
    p->attempt_ms = sc_mono_ms();
    sc_mgr_path_set_state(p, SC_PATH_CONNECTING, SC_REASON_NONE);
    struct sc_dial_spec spec = {.host = p->host,
                                .port = p->spec.port,
                                .timeout_ms = m->cfg.connection_timeout_ms,
                                .dns = m->dns};
    int err = 0;
    if (p->spec.type == SC_PATH_TOR) {
        /* To tor's SOCKS port, which connects us to the target by name (no
         * lookup here), on circuits of this peer's own (isolation). */
        p->socks = (struct sc_socks5_params){.host = p->host, .port = p->spec.port};
        if (m->cfg.tor_stream_isolation) {
            char key[SC_MANAGER_HOST_MAX + 8];
            if (p->peer)
                sc_hex_encode(p->peer->id, SC_RELAY_ID_BYTES, key);
            else
                snprintf(key, sizeof key, "%s:%u", p->host, p->spec.port);
            err = sc_socks5_isolation_creds(key, &p->isolation);
            p->socks.username = p->isolation.username;
            p->socks.password = p->isolation.password;
        }
        spec.host = m->cfg.tor_socks_host;
        spec.port = m->cfg.tor_socks_port;
        spec.timeout_ms = m->cfg.tor_dial_timeout_ms;
        spec.layers[spec.nlayers++] = (struct sc_layer_spec){&sc_layer_socks5, &p->socks};
    }
    if (p->spec.tls) {
        p->tls = (struct sc_tls_params){.ctx = m->tls_client, .host = p->host,
                                        .channel_binding = m->cfg.tls_channel_binding,
                                        .npins = p->spec.has_tls_pin};
        memcpy(p->tls.pins[0], p->spec.tls_pin, sizeof p->spec.tls_pin);
    }
    if (p->spec.type == SC_PATH_WEBSOCKET) {
        if (p->has_proxy) { /* tcp to the proxy, which tunnels to the relay */
            spec.host = p->proxy.host;
            spec.port = p->proxy.port;
            p->tunnel = (struct sc_http_connect_params){
                .host = p->host, .port = p->spec.port,
                .user = p->proxy.has_user ? p->proxy.user : NULL,
                .password = p->proxy.has_user ? p->proxy.password : NULL};
            spec.layers[spec.nlayers++] = (struct sc_layer_spec){&sc_layer_http_connect, &p->tunnel};
        }
        if (p->spec.tls) /* wss */
            spec.layers[spec.nlayers++] = (struct sc_layer_spec){&sc_layer_tls, &p->tls};
        p->ws = (struct sc_ws_params){.path = p->ws_path, .host = p->host, .port = p->spec.port,
                                      .tls = p->spec.tls, .subprotocol = true};
        spec.layers[spec.nlayers++] = (struct sc_layer_spec){&sc_layer_websocket, &p->ws};
    } else if (p->spec.tls) { /* over tcp, or over tor's socks5 */
        spec.layers[spec.nlayers++] = (struct sc_layer_spec){&sc_layer_tls, &p->tls};
    }
    if (!err)
        err = sc_dial_start(m->base, &spec, on_dialed, p, &p->dial);
    if (err) {
        p->dial = NULL;
        sc_mgr_path_failed(p, SC_REASON_CONNECT_FAILED, false);
    }
}

/* ---- choosing candidates -------------------------------------------------------------- */

/* May this path be dialed now? */
static bool path_due(const struct mpath *p, uint64_t now, bool below_min)
{
    if (p->inbound || p->never_retry || p->dial || p->link)
        return false;
    if (p->spec.type == SC_PATH_TOR &&
        (now < p->m->tor_retry_ms ||
         tor_dials_in_flight(p->m) >= (p->m->tor_down ? 1u : p->m->cfg.tor_max_dials_in_flight)))
        return false;
    switch (p->state) {
    case SC_PATH_DISCONNECTED:
        return true;
    case SC_PATH_RECONNECTING:
        return now >= p->next_ms;
    case SC_PATH_FAILED:
        /* Below the minimum, a failed path is worth a try after the
         * longest backoff instead of the whole cool-down. */
        return now >= p->next_ms ||
               (below_min && now + p->m->cfg.failed_cooldown_ms >= p->next_ms + p->m->cfg.backoff_max_ms);
    default:
        return false;
    }
}

/* A candidate: a configured peer, or a trust-on-first-use path whose peer
 * is not known yet. */
struct candidate {
    struct mpeer *peer;
    struct mpath *tofu;
    uint8_t priority;
    uint32_t tiebreak;
};

static int by_priority(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    return x->tiebreak < y->tiebreak ? -1 : x->tiebreak > y->tiebreak;
}

static bool peer_dialing(const struct sc_manager *m, const struct mpeer *peer)
{
    for (const struct mpath *p = m->paths; p; p = p->next)
        if (p->peer == peer && !p->inbound &&
            (p->state == SC_PATH_CONNECTING || p->state == SC_PATH_CONNECTED))
            return true;
    return false;
}

static bool peer_linked_outbound(const struct sc_manager *m, const struct mpeer *peer)
{
    for (const struct mlink *l = m->links; l; l = l->next)
        if (l->peer == peer && l->counted && !l->inbound)
            return true;
    return false;
}

/* Dials the due paths of one candidate, best transport first; returns how
 * many dials it started. */
static uint32_t dial_due(struct sc_manager *m, const struct candidate *c, uint64_t now,
                         bool below_min, uint32_t room)
{
    uint32_t n = 0;
    for (int type = SC_PATH_TCP; type <= SC_PATH_WEBSOCKET && n < room; type++) {
        static const enum sc_path_type order[] = {SC_PATH_TCP, SC_PATH_WEBSOCKET, SC_PATH_TOR};
        for (struct mpath *p = m->paths; p && n < room; p = p->next) {
            bool mine = c->tofu ? p == c->tofu : p->peer == c->peer;
            if (mine && p->spec.type == order[type] && path_due(p, now, below_min)) {
                sc_mgr_dial(p);
                n++;
            }
        }
    }
    return n;
}

void sc_mgr_schedule_now(struct sc_manager *m)
{
    if (!m->started || m->stopping)
        return;
    uint64_t now = sc_mono_ms();
    uint32_t linked = sc_mgr_connected_peers(m);
    bool below_min = linked < m->cfg.min_connections;
    uint32_t inflight = sc_mgr_dials_in_flight(m);
    size_t n = 0, cap = 0;
    for (struct mpeer *p = m->peers; p; p = p->next)
        cap++;
    for (struct mpath *p = m->paths; p; p = p->next)
        cap += !p->peer;
    struct candidate *cands = cap ? calloc(cap, sizeof *cands) : NULL;
    if (cap && !cands)
        return;
    uint32_t dialing = 0;
    for (struct mpeer *p = m->peers; p; p = p->next) {
        if (!p->configured)
            continue;
        if (p->links) {
            /* Linked: its other outbound paths may come up too (failover),
             * unless it reached us inbound only (our dial would duplicate). */
            if (peer_linked_outbound(m, p) && inflight < m->cfg.max_dials_in_flight) {
                struct candidate c = {.peer = p};
                inflight += dial_due(m, &c, now, false, m->cfg.max_dials_in_flight - inflight);
            }
            continue;
        }
        if (peer_dialing(m, p)) {
            dialing++;
            continue;
        }
        uint32_t tie;
        memcpy(&tie, p->id, sizeof tie);
        cands[n++] = (struct candidate){.peer = p, .priority = p->priority, .tiebreak = tie};
    }
    for (struct mpath *p = m->paths; p; p = p->next) {
        if (p->peer || p->inbound)
            continue;
        if (p->state == SC_PATH_CONNECTING || p->state == SC_PATH_CONNECTED) {
            dialing++;
            continue;
        }
        cands[n++] = (struct candidate){.tofu = p, .priority = p->spec.priority, .tiebreak = p->id};
    }
    if (n)
        qsort(cands, n, sizeof *cands, by_priority);
    /* Dial until min_connections peers are linked (inbound ones count too);
     * the room up to max_connections stays for peers that dial us, so that
     * a relay joining a busy mesh finds relays that are not full. */
    uint32_t target = m->cfg.min_connections < m->cfg.max_connections ? m->cfg.min_connections
                                                                      : m->cfg.max_connections;
    uint32_t slots = linked + dialing < target ? target - linked - dialing : 0;
    for (size_t i = 0; i < n && slots && inflight < m->cfg.max_dials_in_flight; i++) {
        const struct candidate *c = &cands[i];
        if (c->peer && c->peer->busy_until_ms > now)
            continue;
        uint32_t started = dial_due(m, c, now, below_min, m->cfg.max_dials_in_flight - inflight);
        if (started) {
            inflight += started;
            slots--;
        }
    }
    free(cands);
}
