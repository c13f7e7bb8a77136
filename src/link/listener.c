/* link/listener.c — accepted connections become responder links, under the
 * handshake caps of secirc/listener.h. Counts every link end by reason.
 * Never queues a connection it cannot take and never grows a table past
 * max_handshakes entries. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>

#include "secirc/listener.h"
#include "transport/transport.h"
#include "util/log.h"
#include "util/time.h"

/* Source key: IPv4 address, or IPv6 /64 prefix. */
struct source {
    uint8_t key[9]; /* family byte + 8 bytes */
    uint32_t count;
};

struct tracked {
    struct sc_listener *listener; /* NULL once the listener is gone */
    struct tracked *prev, *next;
    struct sc_link *link;
    struct source *source;        /* while handshaking */
    bool handshaking;
    struct sc_link_callbacks cb;  /* the owner's, from the template */
    void *cb_arg;
};

struct sc_listener {
    struct sc_listener_config cfg;
    struct sc_tcp_listener *tcp;
    struct event_base *base;
    struct source *sources; /* max_handshakes slots; count 0 = free */
    struct tracked *links;
    struct sc_listener_stats stats;
    struct sc_log_ratelimit refuse_rl;
};

static void source_key(const struct sockaddr *sa, uint8_t key[9])
{
    memset(key, 0, 9);
    key[0] = (uint8_t)sa->sa_family;
    if (sa->sa_family == AF_INET)
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    else if (sa->sa_family == AF_INET6)
        memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 8);
}

/* The slot for this source (existing or free), or NULL when full. */
static struct source *source_find(struct sc_listener *l, const uint8_t key[9])
{
    struct source *free_slot = NULL;
    for (uint32_t i = 0; i < l->cfg.max_handshakes; i++) {
        struct source *s = &l->sources[i];
        if (s->count && memcmp(s->key, key, 9) == 0)
            return s;
        if (!s->count && !free_slot)
            free_slot = s;
    }
    if (free_slot)
        memcpy(free_slot->key, key, 9);
    return free_slot;
}

static void handshake_over(struct tracked *t)
{
    if (!t->handshaking)
        return;
    t->handshaking = false;
    if (t->listener) {
        t->source->count--;
        t->listener->stats.handshakes_in_progress--;
    }
}

static void unlink_tracked(struct tracked *t)
{
    if (!t->listener)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        t->listener->links = t->next;
    if (t->next)
        t->next->prev = t->prev;
}

static void fwd_authenticated(struct sc_link *link, void *arg)
{
    struct tracked *t = arg;
    handshake_over(t);
    if (t->listener)
        t->listener->stats.authenticated++;
    if (t->cb.on_authenticated)
        t->cb.on_authenticated(link, t->cb_arg);
}

static void fwd_message(struct sc_link *link, const struct sc_relay_message *msg, void *arg)
{
    struct tracked *t = arg;
    if (t->cb.on_message)
        t->cb.on_message(link, msg, t->cb_arg);
}

static void fwd_rtt(struct sc_link *link, uint32_t rtt_us, void *arg)
{
    struct tracked *t = arg;
    if (t->cb.on_rtt)
        t->cb.on_rtt(link, rtt_us, t->cb_arg);
}

static void fwd_backpressure(struct sc_link *link, bool full, void *arg)
{
    struct tracked *t = arg;
    if (t->cb.on_backpressure)
        t->cb.on_backpressure(link, full, t->cb_arg);
}

static enum sc_reason fwd_policy(struct sc_link *link, const uint8_t peer_id[SC_RELAY_ID_BYTES],
                                 struct sc_accept_info *info, void *arg)
{
    struct tracked *t = arg;
    if (t->cb.policy)
        return t->cb.policy(link, peer_id, info, t->cb_arg);
    return SC_REASON_NONE;
}

static void fwd_closed(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg)
{
    struct tracked *t = arg;
    handshake_over(t);
    struct sc_listener *l = t->listener;
    if (l) {
        l->stats.closed[reason < SC_REASON_COUNT ? reason : SC_REASON_NONE]++;
        l->stats.links_open--;
        unlink_tracked(t);
    }
    if (t->cb.on_closed)
        t->cb.on_closed(link, reason, by_peer, t->cb_arg);
    free(t);
}

static const struct sc_link_callbacks forwarders = {
    .on_authenticated = fwd_authenticated,
    .on_message = fwd_message,
    .on_rtt = fwd_rtt,
    .on_backpressure = fwd_backpressure,
    .policy = fwd_policy,
    .on_closed = fwd_closed,
};

static void refuse(struct sc_listener *l, struct bufferevent *bev, const char *addr, const char *why)
{
    bufferevent_free(bev);
    l->stats.refused++;
    l->stats.closed[SC_REASON_HANDSHAKE_LIMIT]++;
    long long sup = sc_log_ratelimit_pass(&l->refuse_rl, sc_mono_ms());
    if (sup >= 0)
        sc_log(SC_LOG_WARN, "listener.refused", "addr=%s reason=handshake_limit limit=%s suppressed=%lld",
               addr, why, sup);
}

static void on_accept(struct bufferevent *bev, const struct sockaddr *sa, socklen_t salen, void *arg)
{
    (void)salen;
    struct sc_listener *l = arg;
    char addr[64];
    sc_sockaddr_format(sa, addr, sizeof addr);
    if (l->stats.handshakes_in_progress >= l->cfg.max_handshakes) {
        refuse(l, bev, addr, "max_handshakes");
        return;
    }
    uint8_t key[9];
    source_key(sa, key);
    struct source *src = source_find(l, key);
    if (!src || src->count >= l->cfg.max_handshakes_per_address) {
        refuse(l, bev, addr, "max_handshakes_per_address");
        return;
    }
    struct tracked *t = calloc(1, sizeof *t);
    if (!t) {
        bufferevent_free(bev);
        return;
    }
    t->cb = l->cfg.link.cb;
    t->cb_arg = l->cfg.link.cb_arg;
    struct sc_link_config lc = l->cfg.link;
    lc.initiator = false;
    lc.has_expected_id = false;
    lc.cb = forwarders;
    lc.cb_arg = t;
    int err = sc_link_new(l->base, bev, &lc, &t->link);
    if (err) {
        free(t);
        sc_log(SC_LOG_ERROR, "listener.link_failed", "addr=%s error=\"%s\"", addr, sc_strerror(err));
        return;
    }
    sc_link_set_label(t->link, addr);
    t->listener = l;
    t->source = src;
    t->handshaking = true;
    src->count++;
    l->stats.handshakes_in_progress++;
    l->stats.accepted++;
    l->stats.links_open++;
    t->next = l->links;
    if (l->links)
        l->links->prev = t;
    l->links = t;
}

void sc_listener_config_defaults(struct sc_listener_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->address = "127.0.0.1";
    cfg->backlog = 1024;
    cfg->max_handshakes = SC_HANDSHAKES_MAX_DEFAULT;
    cfg->max_handshakes_per_address = SC_HANDSHAKES_PER_ADDRESS_MAX_DEFAULT;
    sc_link_config_defaults(&cfg->link);
}

int sc_listener_new(struct event_base *base, const struct sc_listener_config *cfg,
                    struct sc_listener **out)
{
    *out = NULL;
    if (!cfg->max_handshakes || !cfg->max_handshakes_per_address || !cfg->link.identity ||
        !cfg->link.link_key)
        return SC_EINVAL;
    struct sc_listener *l = calloc(1, sizeof *l);
    if (!l)
        return SC_ENOMEM;
    l->cfg = *cfg;
    l->base = base;
    l->refuse_rl = (struct sc_log_ratelimit)SC_LOG_RATELIMIT_INIT(1000);
    l->sources = calloc(cfg->max_handshakes, sizeof *l->sources);
    if (!l->sources) {
        free(l);
        return SC_ENOMEM;
    }
    int err = sc_tcp_listener_new(base, cfg->address, cfg->port, cfg->backlog, on_accept, l, &l->tcp);
    if (err) {
        free(l->sources);
        free(l);
        return err;
    }
    *out = l;
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
    sc_tcp_listener_free(l->tcp);
    /* Links still handshaking are ours: end them. Authenticated ones belong
     * to the owner (it saw on_authenticated) and run on. */
    struct tracked *next;
    for (struct tracked *t = l->links; t; t = next) {
        next = t->next;
        t->listener = NULL;
        if (t->handshaking) {
            sc_link_free(t->link);
            free(t);
        }
    }
    free(l->sources);
    free(l);
}
