/* manager/manager_status.c — what the manager reports and how it sends:
 * the best path of a peer (latency weighted by queue depth and throughput,
 * then transport preference), broadcast, the seed's status and "available
 * connections", and explain: why a peer is or is not linked right now.
 * Reads state only; changes nothing but link queues. */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "manager/manager_internal.h"
#include "util/hex.h"
#include "util/time.h"

/* ---- path information --------------------------------------------------------------------- */

void sc_mgr_path_info(const struct mpath *p, struct sc_path_info *out)
{
    memset(out, 0, sizeof *out);
    out->path_id = p->id;
    out->has_id = p->spec.has_id;
    memcpy(out->relay_id, p->spec.id, SC_RELAY_ID_BYTES);
    out->type = p->spec.type;
    out->tls = p->spec.tls;
    snprintf(out->host, sizeof out->host, "%s", p->host);
    out->port = p->spec.port;
    out->state = p->state;
    out->inbound = p->inbound;
    out->priority = p->peer ? p->peer->priority : p->spec.priority;
    out->reconnects = p->attempts > 1 ? p->attempts - 1 : 0;
    out->failures = p->failures;
    out->last_reason = p->last_reason;
    out->messages_sent = p->messages_sent;
    out->messages_received = p->messages_received;
    out->bytes_sent = p->bytes_sent;
    out->bytes_received = p->bytes_received;
    uint64_t now = sc_mono_ms();
    if ((p->state == SC_PATH_RECONNECTING || p->state == SC_PATH_FAILED) && !p->never_retry)
        out->next_attempt_in_ms = p->next_ms > now ? p->next_ms - now : 0;
    if (!p->link)
        return;
    struct sc_link_stats st;
    sc_link_get_stats(p->link->link, &st);
    out->authenticated = p->link->authenticated;
    out->latency_us = st.srtt_us ? st.srtt_us : st.rtt_us;
    out->jitter_us = st.rttvar_us;
    if (st.last_seen_ms)
        out->last_seen_unix = sc_unix_s() - (now - st.last_seen_ms) / 1000u;
    out->uptime_ms = st.authenticated_ms ? now - st.authenticated_ms : 0;
    out->heartbeats_missed = st.heartbeats_missed;
    out->messages_sent += st.messages_sent;
    out->messages_received += st.messages_received;
    out->bytes_sent += st.bytes_sent;
    out->bytes_received += st.bytes_received;
}

int sc_manager_path_info(const struct sc_manager *m, uint32_t path_id, struct sc_path_info *out)
{
    const struct mpath *p = sc_mgr_path_find(m, path_id);
    if (!p)
        return SC_ENOENT;
    sc_mgr_path_info(p, out);
    return 0;
}

size_t sc_manager_paths(const struct sc_manager *m, struct sc_path_info *out, size_t cap)
{
    size_t n = 0;
    for (const struct mpath *p = m->paths; p; p = p->next, n++)
        if (n < cap)
            sc_mgr_path_info(p, &out[n]);
    return n;
}

void sc_manager_get_status(const struct sc_manager *m, struct sc_manager_status *out)
{
    memset(out, 0, sizeof *out);
    out->total_messages_sent = m->messages_sent;
    out->total_messages_received = m->messages_received;
    out->total_bytes_sent = m->bytes_sent;
    out->total_bytes_received = m->bytes_received;
    out->rekeys = m->rekeys;
    for (const struct mpath *p = m->paths; p; p = p->next) {
        out->total_connections++;
        out->active_connections += p->state == SC_PATH_AUTHENTICATED;
        out->failed_connections += p->state == SC_PATH_FAILED;
    }
    for (const struct mlink *l = m->links; l; l = l->next) {
        struct sc_link_stats st;
        sc_link_get_stats(l->link, &st);
        out->total_messages_sent += st.messages_sent;
        out->total_messages_received += st.messages_received;
        out->total_bytes_sent += st.bytes_sent;
        out->total_bytes_received += st.bytes_received;
        out->rekeys += st.rekeys_sent;
    }
    out->connected_peers = sc_mgr_connected_peers(m);
    out->dials_in_flight = sc_mgr_dials_in_flight(m);
    out->messages_undelivered = m->undelivered;
    out->evictions = m->evictions;
    out->duplicates_closed = m->duplicates;
    out->key_rotations = m->key_rotations;
    out->tcp_port = m->nlisteners ? sc_listener_port(m->listeners[0]) : 0;
    out->listeners = (uint32_t)m->nlisteners;
}

void sc_manager_listener_stats(const struct sc_manager *m, struct sc_listener_stats *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < m->nlisteners; i++) {
        struct sc_listener_stats s;
        sc_listener_get_stats(m->listeners[i], &s);
        out->accepted += s.accepted;
        out->refused += s.refused;
        out->evicted += s.evicted;
        out->authenticated += s.authenticated;
        out->handshakes_in_progress += s.handshakes_in_progress;
        out->links_open += s.links_open;
        out->tarpit += s.tarpit;
        for (unsigned r = 0; r < SC_REASON_COUNT; r++)
            out->closed[r] += s.closed[r];
    }
}

uint16_t sc_manager_listener_port(const struct sc_manager *m, size_t i)
{
    return i < m->nlisteners ? sc_listener_port(m->listeners[i]) : 0;
}

/* ---- sending --------------------------------------------------------------------------------- */

/* Lower is better: the latency estimate plus the time the queue needs to
 * drain at the throughput the link has shown, then the transport. */
static uint64_t path_cost(const struct mlink *l)
{
    struct sc_link_stats st;
    sc_link_get_stats(l->link, &st);
    uint64_t latency_us = st.srtt_us ? st.srtt_us : st.rtt_us ? st.rtt_us : 1000u;
    uint64_t up_ms = st.authenticated_ms ? sc_mono_ms() - st.authenticated_ms : 0;
    uint64_t bytes_per_s = up_ms > 1000 ? st.bytes_sent * 1000u / up_ms : 0;
    if (bytes_per_s < 1000000u)
        bytes_per_s = 1000000u; /* not measured yet: assume 1 MB/s */
    uint64_t drain_us = (uint64_t)st.queued_bytes * 1000000u / bytes_per_s;
    static const uint64_t preference_us[] = {[SC_PATH_TCP] = 0, [SC_PATH_WEBSOCKET] = 1,
                                             [SC_PATH_TOR] = 2};
    enum sc_path_type t = l->path ? l->path->spec.type : SC_PATH_TCP;
    return (latency_us + drain_us) * 4 + preference_us[t];
}

/* The peer's authenticated links, best first (at most `cap`). */
static size_t best_links(const struct sc_manager *m, const struct mpeer *peer, struct mlink **out,
                         size_t cap)
{
    size_t n = 0;
    uint64_t cost[8];
    for (struct mlink *l = m->links; l && n < cap && n < 8; l = l->next) {
        if (l->peer != peer || !l->counted || sc_link_state(l->link) != SC_LINK_AUTHENTICATED)
            continue;
        uint64_t c = path_cost(l);
        size_t i = n++;
        while (i > 0 && cost[i - 1] > c) {
            out[i] = out[i - 1];
            cost[i] = cost[i - 1];
            i--;
        }
        out[i] = l;
        cost[i] = c;
    }
    return n;
}

/* One message to a peer: its best link first, the next on SC_EAGAIN. */
static int send_to_peer(struct sc_manager *m, const struct mpeer *peer,
                        const uint8_t msg_id[SC_MESSAGE_ID_BYTES], uint8_t hop_limit, uint8_t flags,
                        const void *payload, size_t len)
{
    struct mlink *links[8];
    size_t n = best_links(m, peer, links, 8);
    if (n == 0)
        return SC_ENOENT;
    int err = SC_EAGAIN;
    for (size_t i = 0; i < n; i++) {
        err = sc_link_send(links[i]->link, msg_id, hop_limit, flags, payload, len);
        if (err != SC_EAGAIN)
            return err;
    }
    return err;
}

int sc_manager_send_message(struct sc_manager *m, const uint8_t peer_id[SC_RELAY_ID_BYTES],
                            const uint8_t msg_id[SC_MESSAGE_ID_BYTES], uint8_t hop_limit,
                            uint8_t flags, const void *payload, size_t len)
{
    const struct mpeer *peer = sc_mgr_peer_find(m, peer_id);
    return peer ? send_to_peer(m, peer, msg_id, hop_limit, flags, payload, len) : SC_ENOENT;
}

int sc_manager_send(struct sc_manager *m, const uint8_t peer[SC_RELAY_ID_BYTES],
                    const void *payload, size_t len, uint8_t msg_id[SC_MESSAGE_ID_BYTES])
{
    uint8_t id[SC_MESSAGE_ID_BYTES];
    randombytes_buf(id, sizeof id);
    int err = sc_manager_send_message(m, peer, id, SC_HOP_LIMIT_DEFAULT, 0, payload, len);
    if (!err && msg_id)
        memcpy(msg_id, id, sizeof id);
    return err;
}

/* The same peers and links as sc_manager_send_message to each linked
 * peer, without its lookups: a peer with one link (the usual case) has no
 * better link to choose, so one pass over the links serves them all; peers
 * with several links choose as send_message does. A lookup of every peer
 * and a scan of every link per copy made a broadcast cost peers x links. */
int sc_manager_broadcast(struct sc_manager *m, const uint8_t msg_id[SC_MESSAGE_ID_BYTES],
                         uint8_t hop_limit, uint8_t flags, const void *payload, size_t len,
                         const uint8_t *exclude)
{
    int sent = 0, last_err = 0;
    for (const struct mlink *l = m->links; l; l = l->next) {
        const struct mpeer *p = l->peer;
        if (!l->counted || p->links != 1 ||
            (exclude && memcmp(exclude, p->id, SC_RELAY_ID_BYTES) == 0))
            continue;
        int err = sc_link_state(l->link) == SC_LINK_AUTHENTICATED
                      ? sc_link_send(l->link, msg_id, hop_limit, flags, payload, len)
                      : SC_ENOENT;
        if (err)
            last_err = err;
        else
            sent++;
    }
    for (const struct mpeer *p = m->peers; p; p = p->next) {
        if (p->links < 2 || (exclude && memcmp(exclude, p->id, SC_RELAY_ID_BYTES) == 0))
            continue;
        int err = send_to_peer(m, p, msg_id, hop_limit, flags, payload, len);
        if (err)
            last_err = err;
        else
            sent++;
    }
    return sent || !last_err || last_err == SC_EAGAIN || last_err == SC_ENOENT ? sent : last_err;
}

/* ---- explain ------------------------------------------------------------------------------- */

const char *sc_explain_verdict_name(enum sc_explain_verdict v)
{
    static const char *const names[] = {
        [SC_EXPLAIN_LINKED] = "linked",
        [SC_EXPLAIN_CONNECTING] = "connecting",
        [SC_EXPLAIN_BACKING_OFF] = "backing_off",
        [SC_EXPLAIN_FAILED] = "failed",
        [SC_EXPLAIN_REFUSED_BUSY] = "refused_busy",
        [SC_EXPLAIN_EVICTED] = "evicted",
        [SC_EXPLAIN_LIMIT_REACHED] = "limit_reached",
        [SC_EXPLAIN_TRANSPORT_UNAVAILABLE] = "transport_unavailable",
        [SC_EXPLAIN_WAITING] = "waiting",
        [SC_EXPLAIN_UNKNOWN_PEER] = "unknown_peer",
    };
    return (unsigned)v < sizeof names / sizeof names[0] ? names[v] : "?";
}

static void say(struct sc_explain *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct sc_explain *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof e->text, fmt, ap);
    va_end(ap);
}

static void explain_paths(const struct sc_manager *m, const struct mpeer *peer, struct sc_explain *e)
{
    const struct mpath *backing = NULL, *failed = NULL, *connecting = NULL;
    bool any = false, all_unavailable = true;
    for (const struct mpath *p = m->paths; p; p = p->next) {
        if (p->peer != peer || p->inbound)
            continue;
        any = true;
        all_unavailable &= p->never_retry && p->last_reason == SC_REASON_TRANSPORT_UNAVAILABLE;
        if (p->state == SC_PATH_CONNECTING || p->state == SC_PATH_CONNECTED)
            connecting = p;
        else if (p->state == SC_PATH_RECONNECTING && (!backing || p->next_ms < backing->next_ms))
            backing = p;
        else if (p->state == SC_PATH_FAILED && (!failed || p->next_ms < failed->next_ms))
            failed = p;
    }
    const struct mpath *p = connecting ? connecting : backing ? backing : failed;
    if (p) {
        e->path_id = p->id;
        e->type = p->spec.type;
        e->failures = p->failures;
        e->last_reason = p->last_reason;
        e->until_unix = p->never_retry ? 0 : p->next_unix;
    }
    if (connecting) {
        e->verdict = SC_EXPLAIN_CONNECTING;
        say(e, "dialing path %u (%s)", p->id, sc_path_type_name(p->spec.type));
    } else if (any && all_unavailable) {
        e->verdict = SC_EXPLAIN_TRANSPORT_UNAVAILABLE;
        say(e, "no transport this relay can use: %s is not available",
            sc_path_type_name(failed ? failed->spec.type : SC_PATH_TCP));
    } else if (peer->evicted) {
        e->verdict = SC_EXPLAIN_EVICTED;
        memcpy(e->other, peer->evicted_by, SC_RELAY_ID_BYTES);
        e->other_priority = peer->evicted_by_priority;
        e->since_unix = peer->evicted_unix;
        char hex[17];
        sc_hex_encode(peer->evicted_by, 8, hex);
        say(e, "evicted by peer %s of priority %u", hex, peer->evicted_by_priority);
    } else if (peer->busy_until_ms > sc_mono_ms()) {
        e->verdict = SC_EXPLAIN_REFUSED_BUSY;
        e->until_unix = peer->busy_until_unix;
        say(e, "refused busy by the peer; trying again after unix time %llu",
            (unsigned long long)peer->busy_until_unix);
    } else if (backing && backing->last_reason == SC_REASON_TOR_UNAVAILABLE) {
        e->verdict = SC_EXPLAIN_BACKING_OFF;
        say(e, "waiting for the local tor (its SOCKS port %s:%u refused) until unix time %llu",
            m->cfg.tor_socks_host, m->cfg.tor_socks_port, (unsigned long long)e->until_unix);
    } else if (backing) {
        e->verdict = SC_EXPLAIN_BACKING_OFF;
        say(e, "backing off until unix time %llu after %u failures (last reason %s)",
            (unsigned long long)e->until_unix, p->failures, sc_reason_name(p->last_reason));
    } else if (failed) {
        e->verdict = SC_EXPLAIN_FAILED;
        say(e, "failed after %u failures (last reason %s); retried after unix time %llu",
            p->failures, sc_reason_name(p->last_reason), (unsigned long long)e->until_unix);
    } else if (sc_mgr_connected_peers(m) >= m->cfg.max_connections) {
        e->verdict = SC_EXPLAIN_LIMIT_REACHED;
        say(e, "limit reached: %u peers linked (max_connections %u), none weaker to evict",
            sc_mgr_connected_peers(m), m->cfg.max_connections);
    } else {
        e->verdict = SC_EXPLAIN_WAITING;
        say(e, "a candidate, dialed at the next look (reconnect_interval %u ms)",
            m->cfg.reconnect_interval_ms);
    }
}

void sc_manager_explain(const struct sc_manager *m, const uint8_t peer_id[SC_RELAY_ID_BYTES],
                        struct sc_explain *e)
{
    memset(e, 0, sizeof *e);
    const struct mpeer *peer = sc_mgr_peer_find(m, peer_id);
    if (!peer) {
        e->verdict = SC_EXPLAIN_UNKNOWN_PEER;
        say(e, "neither configured nor seen");
        return;
    }
    e->priority = peer->priority;
    if (peer->links) {
        struct mlink *best[8];
        size_t n = best_links(m, peer, best, 8);
        e->verdict = SC_EXPLAIN_LINKED;
        e->since_unix = peer->linked_unix;
        if (n && best[0]->path) {
            e->path_id = best[0]->path->id;
            e->type = best[0]->path->spec.type;
        }
        say(e, "linked via path %u (%s%s) since unix time %llu", e->path_id,
            sc_path_type_name(e->type), n && best[0]->inbound ? ", inbound" : "",
            (unsigned long long)peer->linked_unix);
        return;
    }
    explain_paths(m, peer, e);
}
