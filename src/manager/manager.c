/* manager/manager.c — the connection manager's life cycle, configuration,
 * peers and paths, and the one function that changes a path's state. What
 * to dial lives in manager_dial.c, links in manager_link.c, sending and
 * reports in manager_status.c. Never blocks; never touches a socket. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "manager/manager_internal.h"
#include "util/check.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/time.h"

/* ---- names and states ------------------------------------------------------------ */

const char *sc_path_type_name(enum sc_path_type t)
{
    switch (t) {
    case SC_PATH_TCP:
        return "tcp";
    case SC_PATH_TOR:
        return "tor";
    case SC_PATH_WEBSOCKET:
        return "websocket";
    }
    return "?";
}

static const char *const path_state_names[] = {
    [SC_PATH_DISCONNECTED] = "disconnected", [SC_PATH_CONNECTING] = "connecting",
    [SC_PATH_CONNECTED] = "connected",       [SC_PATH_AUTHENTICATED] = "authenticated",
    [SC_PATH_FAILED] = "failed",             [SC_PATH_RECONNECTING] = "reconnecting",
};

const char *sc_path_state_name(enum sc_path_state s)
{
    return (unsigned)s < sizeof path_state_names / sizeof path_state_names[0] ? path_state_names[s]
                                                                               : "?";
}

#define BIT(s) (1u << (s))
static const unsigned path_next[] = {
    [SC_PATH_DISCONNECTED] = BIT(SC_PATH_CONNECTING) | BIT(SC_PATH_FAILED) | BIT(SC_PATH_AUTHENTICATED),
    [SC_PATH_CONNECTING] = BIT(SC_PATH_CONNECTED) | BIT(SC_PATH_RECONNECTING) |
                           BIT(SC_PATH_FAILED) | BIT(SC_PATH_DISCONNECTED),
    [SC_PATH_CONNECTED] = BIT(SC_PATH_AUTHENTICATED) | BIT(SC_PATH_RECONNECTING) |
                          BIT(SC_PATH_FAILED) | BIT(SC_PATH_DISCONNECTED),
    [SC_PATH_AUTHENTICATED] = BIT(SC_PATH_RECONNECTING) | BIT(SC_PATH_FAILED) |
                              BIT(SC_PATH_DISCONNECTED),
    [SC_PATH_FAILED] = BIT(SC_PATH_CONNECTING) | BIT(SC_PATH_DISCONNECTED),
    [SC_PATH_RECONNECTING] = BIT(SC_PATH_CONNECTING) | BIT(SC_PATH_FAILED) |
                             BIT(SC_PATH_DISCONNECTED),
};

/* Every path state change goes through here: checked, logged, reported.
 * (DISCONNECTED -> AUTHENTICATED is an inbound path's first and only step.) */
void sc_mgr_path_set_state(struct mpath *p, enum sc_path_state next, enum sc_reason reason)
{
    enum sc_path_state old = p->state;
    if (old == next)
        return;
    SC_CHECK(path_next[old] & BIT(next), "illegal path transition %s -> %s",
             sc_path_state_name(old), sc_path_state_name(next));
    SC_CHECK(next != SC_PATH_AUTHENTICATED || old != SC_PATH_DISCONNECTED || p->inbound,
             "an outbound path authenticated without a dial");
    p->state = next;
    if (reason != SC_REASON_NONE)
        p->last_reason = reason;
    struct sc_manager *m = p->m;
    sc_log(next == SC_PATH_FAILED ? SC_LOG_WARN : SC_LOG_INFO, "path.state",
           "path=%u peer=%s type=%s%s%s from=%s to=%s reason=%s", p->id,
           p->peer ? p->peer->hex : "-", sc_path_type_name(p->spec.type),
           m->cfg.log_peer_addresses ? " addr=" : "", m->cfg.log_peer_addresses ? p->host : "",
           sc_path_state_name(old), sc_path_state_name(next), sc_reason_name(reason));
    if (m->cb.on_path_state) {
        struct sc_path_info info;
        sc_mgr_path_info(p, &info);
        m->cb.on_path_state(m, &info, old, reason, m->cb_arg);
    }
}

/* ---- configuration --------------------------------------------------------------------- */

void sc_manager_config_defaults(struct sc_manager_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_connections = SC_MAX_CONNECTIONS_DEFAULT;
    c->min_connections = SC_MIN_CONNECTIONS_DEFAULT;
    c->connection_timeout_ms = SC_MGR_CONNECTION_TIMEOUT_MS_DEFAULT;
    c->heartbeat_interval_ms = SC_MGR_HEARTBEAT_INTERVAL_MS_DEFAULT;
    c->reconnect_interval_ms = SC_RECONNECT_INTERVAL_MS_DEFAULT;
    c->max_retry_attempts = SC_MAX_RETRY_ATTEMPTS_DEFAULT;
    c->retry_delay_ms = SC_RETRY_DELAY_MS_DEFAULT;
    c->enable_tcp = true;
    c->tcp_port = SC_TCP_PORT_DEFAULT;
    c->websocket_port = SC_WEBSOCKET_PORT_DEFAULT;
    c->tor_socks_port = SC_TOR_SOCKS_PORT_DEFAULT;
    c->tor_dial_timeout_ms = SC_TOR_DIAL_TIMEOUT_MS_DEFAULT;
    c->tor_max_dials_in_flight = SC_TOR_DIALS_IN_FLIGHT_DEFAULT;
    c->tor_stream_isolation = true;
    c->tls_channel_binding = true;
    c->heartbeat_miss_limit = SC_HEARTBEAT_MISS_LIMIT_DEFAULT;
    c->backoff_max_ms = SC_BACKOFF_MAX_MS_DEFAULT;
    c->healthy_after_ms = SC_HEALTHY_AFTER_MS_DEFAULT;
    c->grace_period_ms = SC_GRACE_PERIOD_MS_DEFAULT;
    c->failed_cooldown_ms = SC_FAILED_COOLDOWN_MS_DEFAULT;
    c->busy_retry_ms = 2 * SC_RETRY_DELAY_MS_DEFAULT;
    c->max_dials_in_flight = SC_MAX_DIALS_IN_FLIGHT_DEFAULT;
    c->key_rotation_interval_ms = SC_LINK_KEY_ROTATION_S_DEFAULT * 1000u;
    c->key_rotation_overlap_ms = SC_LINK_KEY_OVERLAP_S_DEFAULT * 1000u;
    sc_link_config_defaults(&c->link);
    c->max_handshakes = SC_HANDSHAKES_MAX_DEFAULT;
    c->max_handshakes_per_address = SC_HANDSHAKES_PER_ADDRESS_MAX_DEFAULT;
    c->handshake_rate = SC_HANDSHAKE_RATE_DEFAULT;
    c->handshake_burst = SC_HANDSHAKE_BURST_DEFAULT;
    c->handshake_rate_per_address = SC_HANDSHAKE_RATE_PER_ADDRESS_DEFAULT;
    c->handshake_burst_per_address = SC_HANDSHAKE_BURST_PER_ADDRESS_DEFAULT;
    c->max_links = SC_LINKS_MAX_DEFAULT;
    c->max_links_per_address = SC_LINKS_PER_ADDRESS_MAX_DEFAULT;
    c->max_links_per_peer = SC_LINKS_PER_PEER_MAX_DEFAULT;
    c->links_reserved = SC_LINKS_RESERVED_DEFAULT;
}

/* Our copy of the configuration's one string that outlives the call. */
static void adopt_tor_host(struct sc_manager *m, const char *host)
{
    snprintf(m->tor_socks_host, sizeof m->tor_socks_host, "%s", host && host[0] ? host : "127.0.0.1");
    m->cfg.tor_socks_host = m->tor_socks_host;
}

/* A listener of a transport that is enabled (the onion service's target is
 * tcp, also on a relay that takes no tcp from outside). */
static bool listen_spec_ok(const struct sc_manager_config *c, const struct sc_listen_spec *l)
{
    if (!l->address)
        return false;
    switch (l->type) {
    case SC_PATH_TCP:
        return c->enable_tcp || (l->onion && c->enable_tor);
    case SC_PATH_WEBSOCKET:
        return c->enable_websocket && !l->onion && (!l->ws_path || l->ws_path[0] == '/');
    default:
        return false;
    }
}

/* The TLS contexts a configuration asks for: a server one when a listener
 * has TLS (`listen`: the listeners as they are), a client one always. */
static int tls_contexts(const struct sc_manager_config *c, const struct sc_listen_spec *listen,
                        size_t nlisten, SSL_CTX **server, SSL_CTX **client)
{
    *server = *client = NULL;
    int min = c->tls_allow_v1_2 ? TLS1_2_VERSION : TLS1_3_VERSION;
    char err[512] = "";
    bool any = false;
    for (size_t i = 0; i < nlisten; i++)
        any |= listen[i].tls;
    int rc = any ? sc_tls_server_ctx_new(c->ssl_cert_path, c->ssl_key_path, min, server, err, sizeof err)
                 : 0;
    if (!rc)
        rc = sc_tls_client_ctx_new(min, c->tls_verify_ca ? SC_TLS_VERIFY_CA : SC_TLS_VERIFY_NONE,
                                   c->tls_ca_file, client, err, sizeof err);
    if (rc) {
        sc_log(SC_LOG_ERROR, "manager.tls_failed", "error=%s why=\"%s\"", sc_err_name(rc), err);
        SSL_CTX_free(*server);
        *server = NULL;
    }
    return rc;
}

static int check_config(const struct sc_manager_config *c)
{
    for (size_t i = 0; i < c->n_listeners && i < SC_MANAGER_LISTENERS_MAX; i++)
        if (!listen_spec_ok(c, &c->listeners[i]) ||
            (c->listeners[i].tls && (!c->ssl_cert_path || !c->ssl_key_path)))
            return SC_EINVAL;
    if (c->tls_verify_ca && !c->tls_ca_file)
        return SC_EINVAL;
    if (!c->max_connections || c->min_connections > c->max_connections ||
        !c->connection_timeout_ms || !c->reconnect_interval_ms || !c->max_retry_attempts ||
        !c->retry_delay_ms || c->backoff_max_ms < c->retry_delay_ms || !c->max_dials_in_flight ||
        !c->tor_dial_timeout_ms || !c->tor_max_dials_in_flight ||
        (c->tor_socks_host && strlen(c->tor_socks_host) >= SC_MANAGER_HOST_MAX) ||
        c->n_listeners > SC_MANAGER_LISTENERS_MAX || !c->key_rotation_interval_ms ||
        (c->heartbeat_interval_ms && !c->heartbeat_miss_limit))
        return SC_EINVAL;
    return 0;
}

/* The template every link of this manager starts from. */
void sc_mgr_link_config(const struct sc_manager *m, struct sc_link_config *lc)
{
    *lc = m->cfg.link;
    lc->identity = m->identity;
    lc->link_key = m->link_key;
    lc->connection_timeout_ms = m->cfg.connection_timeout_ms;
    lc->heartbeat_interval_ms = m->cfg.heartbeat_interval_ms;
    lc->heartbeat_miss_limit = m->cfg.heartbeat_miss_limit;
    lc->probe_resistance = m->cfg.probe_resistance;
    lc->max_cert_lifetime_s = (m->cfg.key_rotation_interval_ms + m->cfg.key_rotation_overlap_ms) /
                                  1000u + 3u * 24u * 3600u;
    lc->cb = *sc_mgr_link_callbacks();
}

/* ---- peers and paths -------------------------------------------------------------------- */

struct mpeer *sc_mgr_peer_find(const struct sc_manager *m, const uint8_t id[SC_RELAY_ID_BYTES])
{
    for (struct mpeer *p = m->peers; p; p = p->next)
        if (memcmp(p->id, id, SC_RELAY_ID_BYTES) == 0)
            return p;
    return NULL;
}

struct mpeer *sc_mgr_peer_get(struct sc_manager *m, const uint8_t id[SC_RELAY_ID_BYTES])
{
    struct mpeer *p = sc_mgr_peer_find(m, id);
    if (p)
        return p;
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->m = m;
    memcpy(p->id, id, SC_RELAY_ID_BYTES);
    sc_hex_encode(id, 8, p->hex);
    p->priority = SC_PRIORITY_UNTRUSTED;
    p->next = m->peers;
    m->peers = p;
    return p;
}

/* A peer's priority is the highest of its configured paths. */
void sc_mgr_peer_configured(struct sc_manager *m, struct mpeer *peer)
{
    uint8_t best = 0;
    for (struct mpath *q = m->paths; q; q = q->next)
        if (q->peer == peer && !q->inbound && q->spec.priority > best)
            best = q->spec.priority;
    peer->configured = best != 0;
    peer->priority = best ? best : SC_PRIORITY_UNTRUSTED;
}

/* A peer with no path left is forgotten (unknown inbound peers included). */
void sc_mgr_peer_forget_if_unused(struct sc_manager *m, struct mpeer *p)
{
    if (!p || p->links)
        return;
    for (struct mpath *q = m->paths; q; q = q->next)
        if (q->peer == p)
            return;
    for (struct mlink *l = m->links; l; l = l->next)
        if (l->peer == p)
            return;
    struct mpeer **pp = &m->peers;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    if (p->probe_ev)
        event_free(p->probe_ev);
    free(p);
}

struct mpath *sc_mgr_path_find(const struct sc_manager *m, uint32_t id)
{
    for (struct mpath *p = m->paths; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

/* Unlinks and frees a path: its dial is cancelled, its link detached (and
 * closed with local_close). */
void sc_mgr_path_free(struct mpath *p)
{
    struct sc_manager *m = p->m;
    struct mpath **pp = &m->paths;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    sc_dial_cancel(p->dial);
    if (p->link) {
        struct mlink *ml = p->link;
        ml->path = NULL;
        p->link = NULL;
        sc_mgr_close_link(ml, SC_REASON_LOCAL_CLOSE);
    }
    if (p->timer)
        event_free(p->timer);
    struct mpeer *peer = p->peer;
    sodium_memzero(&p->proxy, sizeof p->proxy); /* may hold a proxy password */
    free(p);
    if (peer) {
        sc_mgr_peer_configured(m, peer);
        sc_mgr_peer_forget_if_unused(m, peer);
    }
}

uint32_t sc_mgr_connected_peers(const struct sc_manager *m)
{
    uint32_t n = 0;
    for (const struct mpeer *p = m->peers; p; p = p->next)
        n += p->links > 0;
    return n;
}

static void on_path_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mpath *p = arg;
    sc_mgr_schedule_now(p->m);
}

static bool same_endpoint(const struct mpath *p, const struct sc_relay_spec *s)
{
    return !p->inbound && p->spec.type == s->type && p->spec.port == s->port &&
           strcmp(p->host, s->host) == 0;
}

int sc_manager_add_relay(struct sc_manager *m, const struct sc_relay_spec *spec, uint32_t *path_id)
{
    if (!spec->host || !spec->host[0] || strlen(spec->host) >= SC_MANAGER_HOST_MAX ||
        !spec->port || !sc_priority_is_valid(spec->priority) || spec->type > SC_PATH_WEBSOCKET ||
        (spec->ws_path && (spec->ws_path[0] != '/' || strlen(spec->ws_path) >= SC_MANAGER_HOST_MAX)))
        return SC_EINVAL;
    struct sc_http_proxy proxy;
    if (spec->http_proxy && sc_http_proxy_parse(spec->http_proxy, &proxy) != 0)
        return SC_EINVAL;
    if (spec->has_id && memcmp(spec->id, sc_identity_relay_id(m->identity), SC_RELAY_ID_BYTES) == 0)
        return SC_EINVAL; /* ourselves */
    for (struct mpath *q = m->paths; q; q = q->next)
        if (same_endpoint(q, spec))
            return SC_EEXIST;
    struct mpath *p = calloc(1, sizeof *p);
    if (!p)
        return SC_ENOMEM;
    p->m = m;
    p->id = ++m->next_path_id;
    p->spec = *spec;
    snprintf(p->host, sizeof p->host, "%s", spec->host);
    p->spec.host = p->host;
    snprintf(p->ws_path, sizeof p->ws_path, "%s", spec->ws_path ? spec->ws_path : "/relay");
    p->spec.ws_path = p->ws_path;
    p->spec.http_proxy = NULL; /* parsed: p->proxy */
    if (spec->http_proxy) {
        p->proxy = proxy;
        p->has_proxy = true;
    }
    sodium_memzero(&proxy, sizeof proxy);
    p->backoff = (struct sc_backoff){.base_ms = m->cfg.retry_delay_ms, .cap_ms = m->cfg.backoff_max_ms};
    p->timer = evtimer_new(m->base, on_path_timer, p);
    if (spec->has_id)
        p->peer = sc_mgr_peer_get(m, spec->id);
    if (!p->timer || (spec->has_id && !p->peer)) {
        if (p->timer)
            event_free(p->timer);
        free(p);
        return SC_ENOMEM;
    }
    p->next = m->paths;
    m->paths = p;
    if (p->peer)
        sc_mgr_peer_configured(m, p->peer);
    if (path_id)
        *path_id = p->id;
    sc_mgr_schedule(m);
    return 0;
}

int sc_manager_remove_path(struct sc_manager *m, uint32_t path_id)
{
    struct mpath *p = sc_mgr_path_find(m, path_id);
    if (!p)
        return SC_ENOENT;
    sc_mgr_path_free(p);
    sc_mgr_schedule(m);
    return 0;
}

int sc_manager_remove_relay(struct sc_manager *m, const uint8_t id[SC_RELAY_ID_BYTES])
{
    struct mpeer *peer = sc_mgr_peer_find(m, id);
    if (!peer)
        return SC_ENOENT;
    struct mpath *next;
    for (struct mpath *p = m->paths; p; p = next) {
        next = p->next;
        if (p->peer == peer)
            sc_mgr_path_free(p);
    }
    if ((peer = sc_mgr_peer_find(m, id)) != NULL) {
        sc_mgr_peer_configured(m, peer);
        for (struct mlink *l = m->links; l; l = l->next)
            if (l->peer == peer)
                sc_mgr_close_link(l, SC_REASON_LOCAL_CLOSE);
    }
    sc_mgr_schedule(m);
    return 0;
}

int sc_manager_disconnect(struct sc_manager *m, const uint8_t id[SC_RELAY_ID_BYTES])
{
    struct mpeer *peer = sc_mgr_peer_find(m, id);
    if (!peer)
        return SC_ENOENT;
    for (struct mlink *l = m->links; l; l = l->next)
        if (l->peer == peer || (l->path && l->path->peer == peer))
            sc_mgr_close_link(l, SC_REASON_LOCAL_CLOSE);
    for (struct mpath *p = m->paths; p; p = p->next)
        if (p->peer == peer && p->dial) {
            sc_dial_cancel(p->dial);
            p->dial = NULL;
            sc_mgr_path_failed(p, SC_REASON_LOCAL_CLOSE, false);
        }
    return 0;
}

int sc_manager_connect(struct sc_manager *m, const uint8_t id[SC_RELAY_ID_BYTES])
{
    struct mpeer *peer = sc_mgr_peer_find(m, id);
    if (!peer)
        return SC_ENOENT;
    int dialed = 0;
    for (struct mpath *p = m->paths; p; p = p->next) {
        if (p->peer != peer || p->inbound || p->never_retry ||
            (p->state != SC_PATH_DISCONNECTED && p->state != SC_PATH_RECONNECTING &&
             p->state != SC_PATH_FAILED))
            continue;
        sc_mgr_dial(p);
        dialed++;
    }
    peer->busy_until_ms = 0;
    peer->evicted = false;
    return dialed ? 0 : SC_ESTATE;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static void on_schedule(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sc_mgr_schedule_now(arg);
}

static void on_rotate(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    if (sc_manager_rotate_link_key(arg) != 0)
        sc_log(SC_LOG_ERROR, "manager.rotate_failed", "reason=\"cannot create a link key\"");
}

static void on_stopped(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_manager *m = arg;
    if (m->cb.on_stopped)
        m->cb.on_stopped(m, m->cb_arg);
}

int sc_manager_new(struct event_base *base, const struct sc_manager_config *cfg,
                   const struct sc_identity *identity, const struct sc_manager_callbacks *cb,
                   void *arg, struct sc_manager **out)
{
    *out = NULL;
    int err = check_config(cfg);
    if (err || !identity)
        return err ? err : SC_EINVAL;
    struct sc_manager *m = calloc(1, sizeof *m);
    if (!m)
        return SC_ENOMEM;
    m->base = base;
    m->cfg = *cfg;
    m->identity = identity;
    if (cb)
        m->cb = *cb;
    m->cb_arg = arg;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        m->listen[i] = cfg->listeners[i];
        if (!(m->listen_addr[i] = strdup(cfg->listeners[i].address)))
            err = SC_ENOMEM;
        m->listen[i].address = m->listen_addr[i];
        if (cfg->listeners[i].ws_path && !(m->listen_path[i] = strdup(cfg->listeners[i].ws_path)))
            err = SC_ENOMEM;
        m->listen[i].ws_path = m->listen_path[i];
    }
    m->cfg.listeners = m->listen;
    if (cfg->n_websocket_origins && !(m->origins = calloc(cfg->n_websocket_origins, sizeof *m->origins)))
        err = SC_ENOMEM;
    for (size_t i = 0; m->origins && i < cfg->n_websocket_origins; i++)
        if (!(m->origins[i] = strdup(cfg->websocket_origins[i])))
            err = SC_ENOMEM;
    m->cfg.websocket_origins = (const char *const *)m->origins;
    adopt_tor_host(m, cfg->tor_socks_host);
    m->tor_backoff = (struct sc_backoff){.base_ms = cfg->retry_delay_ms, .cap_ms = cfg->backoff_max_ms};
    if (!err)
        err = tls_contexts(cfg, m->listen, cfg->n_listeners, &m->listen_tls.ctx, &m->tls_client);
    m->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (!m->dns)
        m->dns = evdns_base_new(base, 0); /* no resolv.conf: names fail, literals work */
    m->schedule_ev = event_new(base, -1, 0, on_schedule, m);
    m->tick_ev = event_new(base, -1, EV_PERSIST, on_schedule, m);
    m->rotate_ev = event_new(base, -1, EV_PERSIST, on_rotate, m);
    m->stopped_ev = event_new(base, -1, 0, on_stopped, m);
    if (!err && (!m->dns || !m->schedule_ev || !m->tick_ev || !m->rotate_ev || !m->stopped_ev))
        err = SC_ENOMEM;
    if (!err)
        err = sc_link_key_generate(identity,
                                   sc_unix_s() + (cfg->key_rotation_interval_ms +
                                                  cfg->key_rotation_overlap_ms) / 1000u,
                                   &m->link_key);
    if (err) {
        sc_manager_free(m);
        return err;
    }
    *out = m;
    return 0;
}

static int open_listener(struct sc_manager *m, const struct sc_listen_spec *spec)
{
    struct sc_listener_config lc;
    sc_listener_config_defaults(&lc);
    lc.address = spec->address;
    lc.port = spec->port;
    lc.max_handshakes = m->cfg.max_handshakes;
    lc.max_handshakes_per_address = m->cfg.max_handshakes_per_address;
    lc.handshake_rate = m->cfg.handshake_rate;
    lc.handshake_burst = m->cfg.handshake_burst;
    lc.handshake_rate_per_address = m->cfg.handshake_rate_per_address;
    lc.handshake_burst_per_address = m->cfg.handshake_burst_per_address;
    lc.max_links = m->cfg.max_links;
    lc.max_links_per_address = m->cfg.max_links_per_address;
    lc.max_links_per_peer = m->cfg.max_links_per_peer;
    lc.links_reserved = m->cfg.links_reserved < m->cfg.max_links ? m->cfg.links_reserved : 0;
    if (spec->onion) { /* one source for everyone: no per-source admission */
        lc.max_handshakes_per_address = lc.max_handshakes;
        lc.handshake_rate_per_address = 0;
        lc.max_links_per_address = lc.max_links;
    }
    lc.log_addresses = m->cfg.log_peer_addresses;
    sc_mgr_link_config(m, &lc.link);
    lc.link.cb = (struct sc_link_callbacks){.policy = sc_mgr_policy};
    lc.link.cb_arg = m;
    lc.on_link = sc_mgr_on_inbound;
    lc.arg = m;
    int err = sc_listener_new(m->base, &lc, &m->listeners[m->nlisteners]);
    struct sc_layer_spec layers[2];
    size_t n = 0;
    if (spec->tls)
        layers[n++] = (struct sc_layer_spec){&sc_layer_tls, &m->listen_tls};
    if (spec->type == SC_PATH_WEBSOCKET) {
        struct sc_ws_params *ws = &m->listen_ws[m->nlisteners];
        *ws = (struct sc_ws_params){.path = spec->ws_path,
                                    .origins = m->cfg.websocket_origins,
                                    .norigins = m->cfg.n_websocket_origins};
        layers[n++] = (struct sc_layer_spec){&sc_layer_websocket, ws};
    }
    if (!err && n && (err = sc_listener_set_layers(m->listeners[m->nlisteners], layers, n)) != 0)
        sc_listener_free(m->listeners[m->nlisteners]);
    if (err) {
        sc_log(SC_LOG_ERROR, "manager.listen_failed", "address=%s port=%u error=\"%s\"",
               spec->address, spec->port, sc_strerror(err));
        return err;
    }
    m->nlisteners++;
    return 0;
}

static void free_listeners(struct sc_manager *m)
{
    for (size_t i = 0; i < m->nlisteners; i++)
        sc_listener_free(m->listeners[i]);
    m->nlisteners = 0;
}

int sc_manager_start(struct sc_manager *m)
{
    if (m->started)
        return SC_ESTATE;
    for (size_t i = 0; i < m->cfg.n_listeners; i++) {
        int err = open_listener(m, &m->cfg.listeners[i]);
        if (err) {
            free_listeners(m);
            return err;
        }
    }
    m->started = true;
    struct timeval tick = sc_ms_to_tv(m->cfg.reconnect_interval_ms);
    event_add(m->tick_ev, &tick);
    struct timeval rot = sc_ms_to_tv(m->cfg.key_rotation_interval_ms);
    event_add(m->rotate_ev, &rot);
    sc_log(SC_LOG_INFO, "manager.started", "listeners=%zu port=%u max_connections=%u min_connections=%u",
           m->nlisteners, m->nlisteners ? sc_listener_port(m->listeners[0]) : 0,
           m->cfg.max_connections, m->cfg.min_connections);
    sc_mgr_schedule(m);
    return 0;
}

void sc_mgr_check_stopped(struct sc_manager *m)
{
    if (m->stopping && !m->links && !m->stopped_reported) {
        m->stopped_reported = true;
        event_active(m->stopped_ev, EV_TIMEOUT, 0);
    }
}

void sc_manager_stop(struct sc_manager *m)
{
    if (m->stopping)
        return;
    m->stopping = true;
    event_del(m->tick_ev);
    event_del(m->rotate_ev);
    free_listeners(m);
    for (struct mpath *p = m->paths; p; p = p->next) {
        if (p->dial) {
            sc_dial_cancel(p->dial);
            p->dial = NULL;
        }
        if (p->timer) /* inbound paths have none */
            evtimer_del(p->timer);
        if (!p->link)
            sc_mgr_path_set_state(p, SC_PATH_DISCONNECTED, SC_REASON_SHUTDOWN);
    }
    for (struct mlink *l = m->links; l; l = l->next)
        sc_mgr_close_link(l, SC_REASON_SHUTDOWN);
    sc_mgr_check_stopped(m);
}

void sc_manager_free(struct sc_manager *m)
{
    if (!m)
        return;
    m->stopping = true;
    m->stopped_reported = true; /* no callback from here on */
    memset(&m->cb, 0, sizeof m->cb);
    free_listeners(m);
    while (m->links) /* each on_closed unlinks its own */
        sc_link_free(m->links->link);
    while (m->paths)
        sc_mgr_path_free(m->paths);
    while (m->peers) {
        struct mpeer *p = m->peers;
        m->peers = p->next;
        if (p->probe_ev)
            event_free(p->probe_ev);
        free(p);
    }
    struct event *evs[] = {m->schedule_ev, m->tick_ev, m->rotate_ev, m->stopped_ev};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i])
            event_free(evs[i]);
    if (m->dns)
        evdns_base_free(m->dns, 0);
    sc_link_key_free(m->link_key);
    for (size_t i = 0; i < SC_MANAGER_LISTENERS_MAX; i++) {
        free(m->listen_addr[i]);
        free(m->listen_path[i]);
    }
    for (size_t i = 0; m->origins && i < m->cfg.n_websocket_origins; i++)
        free(m->origins[i]);
    free(m->origins);
    SSL_CTX_free(m->listen_tls.ctx);
    SSL_CTX_free(m->tls_client);
    free(m);
}

int sc_manager_set_config(struct sc_manager *m, const struct sc_manager_config *cfg)
{
    int err = check_config(cfg);
    SSL_CTX *server = NULL, *client = NULL;
    if (!err) /* a renewed certificate, another CA file: for new connections */
        err = tls_contexts(cfg, m->listen, m->cfg.n_listeners, &server, &client);
    if (err)
        return err;
    if (server) {
        SSL_CTX_free(m->listen_tls.ctx); /* connections up keep their reference */
        m->listen_tls.ctx = server;
    }
    SSL_CTX_free(m->tls_client);
    m->tls_client = client;
    size_t nlisten = m->cfg.n_listeners, norigins = m->cfg.n_websocket_origins;
    bool tcp = m->cfg.enable_tcp;
    m->cfg = *cfg;
    m->cfg.listeners = m->listen; /* listeners stay as they are */
    m->cfg.n_listeners = nlisten;
    m->cfg.websocket_origins = (const char *const *)m->origins;
    m->cfg.n_websocket_origins = norigins;
    m->cfg.enable_tcp = tcp || cfg->enable_tcp;
    adopt_tor_host(m, cfg->tor_socks_host);
    m->tor_backoff = (struct sc_backoff){.base_ms = cfg->retry_delay_ms, .cap_ms = cfg->backoff_max_ms,
                                         .attempts = m->tor_backoff.attempts};
    /* A transport switched on: its paths may be dialed after all. */
    for (struct mpath *p = m->paths; p; p = p->next)
        if (p->never_retry && p->last_reason == SC_REASON_TRANSPORT_UNAVAILABLE &&
            sc_mgr_transport_available(m, p->spec.type)) {
            p->never_retry = false;
            sc_mgr_path_set_state(p, SC_PATH_DISCONNECTED, SC_REASON_NONE);
        }
    for (struct mpath *p = m->paths; p; p = p->next)
        p->backoff = (struct sc_backoff){.base_ms = cfg->retry_delay_ms,
                                         .cap_ms = cfg->backoff_max_ms,
                                         .attempts = p->backoff.attempts};
    /* Over the new maximum: one peer at a time, the weakest first. */
    uint64_t now = sc_mono_ms();
    while (sc_mgr_connected_peers(m) > m->cfg.max_connections) {
        struct mpeer *victim = sc_mgr_weakest_evictable(m, now + m->cfg.grace_period_ms);
        if (!victim)
            break;
        sc_mgr_evict(m, victim, NULL);
    }
    if (m->started && !m->stopping) {
        struct timeval tick = sc_ms_to_tv(m->cfg.reconnect_interval_ms);
        event_add(m->tick_ev, &tick);
    }
    sc_mgr_schedule(m);
    return 0;
}

int sc_manager_rotate_link_key(struct sc_manager *m)
{
    struct sc_link_key *fresh;
    uint64_t life_s = (m->cfg.key_rotation_interval_ms + m->cfg.key_rotation_overlap_ms) / 1000u;
    int err = sc_link_key_generate(m->identity, sc_unix_s() + life_s, &fresh);
    if (err)
        return err;
    for (size_t i = 0; i < m->nlisteners; i++)
        sc_listener_set_link_key(m->listeners[i], fresh);
    /* Links up keep the key their handshake used; nothing else refers to
     * the old one. */
    sc_link_key_free(m->link_key);
    m->link_key = fresh;
    m->key_rotations++;
    char lk[17];
    sc_hex_encode(fresh->pub, 8, lk);
    sc_log(SC_LOG_INFO, "manager.link_key_rotated", "link_key=%s valid_s=%llu", lk,
           (unsigned long long)life_s);
    return 0;
}

const uint8_t *sc_manager_relay_id(const struct sc_manager *m)
{
    return sc_identity_relay_id(m->identity);
}
