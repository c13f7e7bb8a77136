/* manager/manager_link.c — the manager's side of each link: admitting
 * inbound peers (busy, or eviction of the weakest), one link per pair of
 * relays when both dial (the link dialed by the lower relay ID wins, judged
 * the same way on both sides), half-open links found with a PING and
 * replaced, and failover of queued messages when a link dies. Policy only:
 * the link does the mechanics. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "manager/manager_internal.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/time.h"

struct mlink *sc_mgr_mlink_new(struct sc_manager *m, struct mpath *p, bool inbound)
{
    struct mlink *ml = calloc(1, sizeof *ml);
    if (ml) {
        ml->m = m;
        ml->path = p;
        ml->inbound = inbound;
        ml->generation = p ? p->generation : 0;
    }
    return ml;
}

void sc_mgr_close_link(struct mlink *ml, enum sc_reason reason)
{
    if (!ml->end_reason)
        ml->end_reason = reason;
    sc_link_close(ml->link, reason);
}

void sc_mgr_attach(struct mlink *ml, struct mpeer *peer)
{
    ml->peer = peer;
    if (ml->counted)
        return;
    ml->counted = true;
    if (peer->links++ == 0) {
        peer->linked_ms = sc_mono_ms();
        peer->linked_unix = sc_unix_s();
        peer->evicted = false;
        peer->busy_until_ms = 0;
    }
}

/* ---- room: max_connections, eviction ----------------------------------------------- */

/* The linked peer of lowest priority that is past its grace period (the
 * most recently linked among equals), or NULL. */
struct mpeer *sc_mgr_weakest_evictable(const struct sc_manager *m, uint64_t now_ms)
{
    struct mpeer *best = NULL;
    for (struct mpeer *p = m->peers; p; p = p->next) {
        if (!p->links || now_ms - p->linked_ms < m->cfg.grace_period_ms)
            continue;
        if (!best || p->priority < best->priority ||
            (p->priority == best->priority && p->linked_ms > best->linked_ms))
            best = p;
    }
    return best;
}

void sc_mgr_evict(struct sc_manager *m, struct mpeer *victim, const struct mpeer *by)
{
    victim->evicted = true;
    victim->evicted_unix = sc_unix_s();
    if (by) {
        memcpy(victim->evicted_by, by->id, SC_RELAY_ID_BYTES);
        victim->evicted_by_priority = by->priority;
    } else {
        memset(victim->evicted_by, 0, SC_RELAY_ID_BYTES);
        victim->evicted_by_priority = 0;
    }
    m->evictions++;
    sc_log(SC_LOG_INFO, "manager.evicted", "peer=%s priority=%u by=%s by_priority=%u", victim->hex,
           victim->priority, by ? by->hex : "-", by ? by->priority : 0);
    for (struct mlink *l = m->links; l; l = l->next)
        if (l->peer == victim && l->counted)
            sc_mgr_close_link(l, SC_REASON_EVICTED);
}

/* May a peer that is not linked yet become linked now? Evicts the weakest
 * linked peer if that is what it takes and `evict` is set. */
static bool make_room(struct sc_manager *m, struct mpeer *peer, uint8_t priority, bool evict)
{
    if ((peer && peer->links) || sc_mgr_connected_peers(m) < m->cfg.max_connections)
        return true;
    struct mpeer *weakest = sc_mgr_weakest_evictable(m, sc_mono_ms());
    if (!weakest || priority <= weakest->priority)
        return false;
    if (evict)
        sc_mgr_evict(m, weakest, peer);
    return true;
}

/* ---- one link per pair of relays ------------------------------------------------------- */

static bool we_are_lower(const struct sc_manager *m, const struct mpeer *peer)
{
    return memcmp(sc_identity_relay_id(m->identity), peer->id, SC_RELAY_ID_BYTES) < 0;
}

static void close_duplicate(struct sc_manager *m, struct mlink *ml)
{
    m->duplicates++;
    sc_mgr_close_link(ml, SC_REASON_DUPLICATE);
}

/* Liveness probe: each probed link gets a PING and SC_MANAGER_PROBE_MS to
 * answer (any RTT sample counts); one that does not is half-open (its far
 * end restarted) and is closed. A pending link that lost the tie-break to
 * links that turn out dead takes their place. */
static void on_probe_over(evutil_socket_t fd, short what, void *arg);

static void probe(struct sc_manager *m, struct mpeer *peer, struct mlink *l)
{
    if (!peer->probe_ev && !(peer->probe_ev = evtimer_new(m->base, on_probe_over, peer))) {
        close_duplicate(m, l); /* cannot wait for it: assume the worst */
        return;
    }
    if (sc_link_ping(l->link) != 0) {
        close_duplicate(m, l);
        return;
    }
    l->probed = true;
    if (!evtimer_pending(peer->probe_ev, NULL)) {
        struct timeval tv = sc_ms_to_tv(SC_MANAGER_PROBE_MS);
        evtimer_add(peer->probe_ev, &tv);
    }
}

static bool probes_pending(const struct sc_manager *m, const struct mpeer *peer)
{
    for (const struct mlink *l = m->links; l; l = l->next)
        if (l->peer == peer && l->probed)
            return true;
    return false;
}

static void on_probe_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mpeer *peer = arg;
    struct sc_manager *m = peer->m;
    /* No answer: half-open. Waiting for a CLOSE from a dead peer would only
     * keep the slot (and the path) for the linger time, so these end now. */
    struct mlink *dead[16];
    size_t n = 0;
    for (struct mlink *l = m->links; l && n < 16; l = l->next)
        if (l->peer == peer && l->probed) {
            l->probed = false;
            l->end_reason = SC_REASON_HEARTBEAT_TIMEOUT;
            dead[n++] = l;
        }
    struct mlink *fresh = peer->pending;
    peer->pending = NULL;
    for (size_t i = 0; i < n; i++) {
        m->duplicates++;
        sc_link_free(dead[i]->link); /* its on_closed runs now and frees dead[i] */
    }
    if (fresh)
        sc_mgr_attach(fresh, peer);
}

/* A probed link answered: it is alive. If a pending link was waiting on
 * it, the pending one is the duplicate. */
static void probe_answered(struct sc_manager *m, struct mlink *l)
{
    struct mpeer *peer = l->peer;
    l->probed = false;
    if (l->doomed)
        close_duplicate(m, l); /* alive, and the loser of the tie-break */
    if (peer->pending && l->inbound != peer->pending->inbound) {
        struct mlink *fresh = peer->pending;
        peer->pending = NULL;
        close_duplicate(m, fresh);
    }
    if (!probes_pending(m, peer) && peer->probe_ev)
        evtimer_del(peer->probe_ev);
}

/* A freshly authenticated link meets the peer's other links:
 *   - the same direction (a second path, or a reconnect while the old link
 *     is half-open): both stay; the older ones are probed, and closed if
 *     they do not answer;
 *   - opposite directions (both relays dialed): the link dialed by the
 *     lower relay ID wins, on both sides alike. A loser already up is
 *     probed and closes (politely if alive, at once if not); a fresh loser
 *     waits (pending, uncounted) while the winners are probed: if they
 *     answer it closes, if not it replaces them. */
static void resolve(struct sc_manager *m, struct mlink *fresh, struct mpeer *peer)
{
    bool lower = we_are_lower(m, peer);
    bool fresh_wins = fresh->inbound ? !lower : lower;
    bool opposite_alive = false;
    fresh->peer = peer;
    for (struct mlink *l = m->links; l; l = l->next) {
        if (l == fresh || l->peer != peer || !l->counted)
            continue;
        if (l->inbound == fresh->inbound) {
            probe(m, peer, l);
        } else if (fresh_wins) {
            /* It goes either way: politely if it answers the probe, at once
             * if it is half-open (a dead peer would never answer a CLOSE). */
            l->doomed = true;
            probe(m, peer, l);
        } else {
            opposite_alive = true;
        }
    }
    if (!opposite_alive) {
        sc_mgr_attach(fresh, peer);
        return;
    }
    if (peer->pending)
        close_duplicate(m, peer->pending);
    peer->pending = fresh;
    for (struct mlink *l = m->links; l; l = l->next)
        if (l->peer == peer && l->counted && l->inbound != fresh->inbound)
            probe(m, peer, l);
}

/* ---- inbound: the listener's policy step and hand-over ------------------------------------ */

enum sc_reason sc_mgr_policy(struct sc_link *link, const uint8_t peer_id[SC_RELAY_ID_BYTES],
                             struct sc_accept_info *info, void *arg)
{
    (void)link;
    struct sc_manager *m = arg;
    if (m->stopping)
        return SC_REASON_SHUTDOWN;
    struct mpeer *peer = sc_mgr_peer_find(m, peer_id);
    info->priority = peer ? peer->priority : SC_PRIORITY_UNTRUSTED;
    if (peer && peer->links)
        return SC_REASON_NONE; /* already linked: the links are sorted out once this is up */
    if (!make_room(m, peer, info->priority, false)) {
        sc_log(SC_LOG_INFO, "manager.refused", "peer=%s priority=%u reason=busy linked=%u max=%u",
               peer ? peer->hex : "-", info->priority, sc_mgr_connected_peers(m),
               m->cfg.max_connections);
        return SC_REASON_BUSY;
    }
    return SC_REASON_NONE;
}

void sc_mgr_on_inbound(struct sc_listener *l, struct sc_link *link, void *arg)
{
    struct sc_manager *m = arg;
    struct mpeer *peer = sc_mgr_peer_get(m, sc_link_peer_id(link));
    struct mlink *ml = sc_mgr_mlink_new(m, NULL, true);
    struct mpath *p = ml ? calloc(1, sizeof *p) : NULL; /* inbound paths need no timer */
    if (!peer || !p) {
        free(ml);
        free(p);
        sc_link_free(link);
        return;
    }
    struct sc_stream_info si;
    sc_link_stream_info(link, &si);
    p->m = m;
    p->id = ++m->next_path_id;
    p->inbound = true;
    p->peer = peer;
    p->spec = (struct sc_relay_spec){.has_id = true, .type = SC_PATH_TCP,
                                     .priority = peer->priority, .host = p->host};
    for (size_t i = 0; i < m->nlisteners; i++)
        if (m->listeners[i] == l) { /* the listener's transport: through our onion service, tor */
            p->spec.type = m->listen[i].onion ? SC_PATH_TOR : m->listen[i].type;
            p->spec.tls = m->listen[i].tls;
        }
    memcpy(p->spec.id, peer->id, SC_RELAY_ID_BYTES);
    snprintf(p->host, sizeof p->host, "%s", si.peer);
    p->auth_ms = sc_mono_ms();
    p->link = ml;
    p->next = m->paths;
    m->paths = p;
    ml->path = p;
    ml->peer = peer;
    ml->link = link;
    ml->authenticated = true;
    ml->next = m->links;
    m->links = ml;
    sc_link_set_callbacks(link, sc_mgr_link_callbacks(), ml);
    sc_mgr_path_set_state(p, SC_PATH_AUTHENTICATED, SC_REASON_NONE);
    if (m->stopping) {
        sc_mgr_close_link(ml, SC_REASON_SHUTDOWN);
        return;
    }
    if (!make_room(m, peer, peer->priority, true)) { /* filled up since the policy said yes */
        sc_mgr_close_link(ml, SC_REASON_LIMIT_REACHED);
        return;
    }
    resolve(m, ml, peer);
}

/* ---- link callbacks (outbound and handed-over inbound links) ------------------------------ */

static void on_authenticated(struct sc_link *link, void *arg)
{
    struct mlink *ml = arg;
    struct sc_manager *m = ml->m;
    struct mpath *p = ml->path;
    ml->authenticated = true;
    if (!p || p->link != ml) {
        sc_mgr_close_link(ml, SC_REASON_LOCAL_CLOSE);
        return;
    }
    const uint8_t *id = sc_link_peer_id(link);
    if (!p->spec.has_id) { /* trust on first use: pinned from now on */
        struct mpeer *peer = sc_mgr_peer_get(m, id);
        if (!peer) {
            sc_mgr_close_link(ml, SC_REASON_LOCAL_CLOSE);
            return;
        }
        p->spec.has_id = true;
        memcpy(p->spec.id, id, SC_RELAY_ID_BYTES);
        p->peer = peer;
        sc_mgr_peer_configured(m, peer);
        sc_log(SC_LOG_INFO, "path.pinned", "path=%u peer=%s", p->id, peer->hex);
        if (m->cb.on_pinned)
            m->cb.on_pinned(m, p->id, id, m->cb_arg);
    }
    p->auth_ms = sc_mono_ms();
    ml->peer = p->peer;
    sc_mgr_path_set_state(p, SC_PATH_AUTHENTICATED, SC_REASON_NONE);
    if (!make_room(m, p->peer, p->peer->priority, true)) {
        sc_mgr_close_link(ml, SC_REASON_LIMIT_REACHED);
        return;
    }
    resolve(m, ml, p->peer);
}

static void on_message(struct sc_link *link, const struct sc_relay_message *msg, void *arg)
{
    struct mlink *ml = arg;
    struct sc_manager *m = ml->m;
    if (m->cb.on_message && ml->peer)
        m->cb.on_message(m, sc_link_peer_id(link), ml->path ? ml->path->id : 0, msg, m->cb_arg);
}

static void on_rtt(struct sc_link *link, uint32_t rtt_us, void *arg)
{
    (void)link;
    struct mlink *ml = arg;
    struct sc_manager *m = ml->m;
    if (ml->probed)
        probe_answered(m, ml);
    if (m->cb.on_rtt && ml->path)
        m->cb.on_rtt(m, ml->path->id, rtt_us, m->cb_arg);
}

/* Failover: a message that never left the dead link goes to another
 * authenticated link of the same peer, or is reported undelivered. */
struct failover {
    struct mlink *dead;
    enum sc_reason reason;
};

static void move_or_report(const struct sc_relay_message *msg, void *arg)
{
    struct failover *f = arg;
    struct mlink *dead = f->dead;
    struct sc_manager *m = dead->m;
    for (struct mlink *l = m->links; l; l = l->next)
        if (l != dead && l->peer == dead->peer && l->counted &&
            sc_link_state(l->link) == SC_LINK_AUTHENTICATED &&
            sc_link_send(l->link, msg->id, msg->hop_limit, msg->flags, msg->payload, msg->len) == 0)
            return;
    m->undelivered++;
    if (m->cb.on_undelivered)
        m->cb.on_undelivered(m, dead->peer->id, msg->id, f->reason, m->cb_arg);
}

static void account(struct sc_manager *m, struct mpath *p, const struct sc_link_stats *st)
{
    m->messages_sent += st->messages_sent;
    m->messages_received += st->messages_received;
    m->bytes_sent += st->bytes_sent;
    m->bytes_received += st->bytes_received;
    m->rekeys += st->rekeys_sent;
    if (p) {
        p->messages_sent += st->messages_sent;
        p->messages_received += st->messages_received;
        p->bytes_sent += st->bytes_sent;
        p->bytes_received += st->bytes_received;
    }
}

static void on_closed(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg)
{
    (void)by_peer;
    struct mlink *ml = arg;
    struct sc_manager *m = ml->m;
    struct mpath *p = ml->path;
    struct mpeer *peer = ml->peer;
    enum sc_reason why = ml->end_reason ? ml->end_reason : reason;
    struct sc_link_stats st;
    sc_link_get_stats(link, &st);
    account(m, p, &st);
    struct mlink **pp = &m->links;
    while (*pp && *pp != ml)
        pp = &(*pp)->next;
    if (*pp)
        *pp = ml->next;
    if (ml->counted) {
        ml->counted = false;
        peer->links--;
    }
    if (peer) {
        struct failover f = {.dead = ml, .reason = why};
        sc_link_take_unsent(link, move_or_report, &f);
        if (peer->pending == ml) {
            peer->pending = NULL;
        } else if (peer->pending && ml->probed && !probes_pending(m, peer)) {
            struct mlink *fresh = peer->pending; /* the links it lost to are gone */
            peer->pending = NULL;
            sc_mgr_attach(fresh, peer);
        }
        if (!probes_pending(m, peer) && peer->probe_ev)
            evtimer_del(peer->probe_ev);
    }
    if (p && p->link == ml) {
        p->link = NULL;
        if (p->inbound) {
            sc_mgr_path_set_state(p, SC_PATH_DISCONNECTED, why);
            p->peer = NULL; /* the peer is looked after below */
            sc_mgr_path_free(p);
        } else {
            bool healthy = ml->authenticated && sc_mono_ms() - p->auth_ms >= m->cfg.healthy_after_ms;
            sc_mgr_path_failed(p, why, healthy);
        }
    }
    free(ml);
    if (peer) {
        if (!peer->links)
            sc_mgr_schedule(m);
        sc_mgr_peer_forget_if_unused(m, peer);
    }
    sc_mgr_check_stopped(m);
}

static const struct sc_link_callbacks callbacks = {
    .on_authenticated = on_authenticated,
    .on_message = on_message,
    .on_rtt = on_rtt,
    .on_closed = on_closed,
};

const struct sc_link_callbacks *sc_mgr_link_callbacks(void) { return &callbacks; }
