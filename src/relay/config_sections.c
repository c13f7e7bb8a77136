/* relay/config_sections.c — the configuration's sections and keys, their
 * types, ranges and defaults (docs/CONFIG.md), the checks between keys, and
 * the resolution of dependent defaults and relative paths. Stops at the
 * first error, with its position. Pure: never touches the file system;
 * listen: and relays: are in config_peers.c. */
#include "relay/config_schema.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <event2/http.h>

/* ---- sections ------------------------------------------------------------------------------- */

#define KEY(name, kind, type, field, lo, hi)                                                       \
    {                                                                                              \
        name, kind, offsetof(type, field), lo, hi, NULL, NULL                                      \
    }
#define CM(name, kind, field, lo, hi) KEY(name, kind, struct sc_relay_config_manager, field, lo, hi)

static const struct sc_cfg_key manager_keys[] = {
    CM("max_connections", SC_CFG_U32, max_connections, 1, 100000),
    CM("min_connections", SC_CFG_U32, min_connections, 0, 100000),
    CM("connection_timeout", SC_CFG_U32, connection_timeout_s, 1, 3600),
    CM("heartbeat_interval", SC_CFG_U32, heartbeat_interval_s, 0, 86400),
    CM("reconnect_interval", SC_CFG_U32, reconnect_interval_s, 1, 86400),
    CM("max_retry_attempts", SC_CFG_U32, max_retry_attempts, 1, 1000),
    CM("retry_delay", SC_CFG_U32, retry_delay_s, 1, 86400),
    CM("enable_tcp", SC_CFG_BOOL, enable_tcp, 0, 0),
    CM("enable_tor", SC_CFG_BOOL, enable_tor, 0, 0),
    CM("enable_websocket", SC_CFG_BOOL, enable_websocket, 0, 0),
    CM("tcp_port", SC_CFG_U16, tcp_port, 0, 65535),
    CM("websocket_port", SC_CFG_U16, websocket_port, 0, 65535),
    CM("tor_socks_port", SC_CFG_U16, tor_socks_port, 1, 65535),
    CM("ssl_enabled", SC_CFG_BOOL, ssl_enabled, 0, 0),
    CM("ssl_cert_path", SC_CFG_STR, ssl_cert_path, 0, 0),
    CM("ssl_key_path", SC_CFG_STR, ssl_key_path, 0, 0),
    CM("heartbeat_miss_limit", SC_CFG_U32, heartbeat_miss_limit, 1, 100),
    CM("backoff_max", SC_CFG_U32, backoff_max_s, 1, 604800),
    CM("healthy_after", SC_CFG_U32, healthy_after_s, 0, 86400),
    CM("grace_period", SC_CFG_U32, grace_period_s, 0, 86400),
    CM("failed_cooldown", SC_CFG_U32, failed_cooldown_s, 1, 604800),
    CM("max_dials_in_flight", SC_CFG_U32, max_dials_in_flight, 1, 10000),
    CM("probe_resistance", SC_CFG_BOOL, probe_resistance, 0, 0),
    CM("rekey_after_messages", SC_CFG_U64, rekey_after_messages, 1, 4294967296ull),
    CM("rekey_after_bytes", SC_CFG_U64, rekey_after_bytes, 65536, 1099511627776ull),
    CM("rekey_interval", SC_CFG_U32, rekey_interval_s, 1, 86400),
    CM("key_rotation_interval", SC_CFG_U32, key_rotation_interval_s, 60, 31536000),
    CM("key_rotation_overlap", SC_CFG_U32, key_rotation_overlap_s, 0, 31536000),
    CM("max_message_bytes", SC_CFG_U32, max_message_bytes, 64, 65497),
    CM("send_queue_bytes", SC_CFG_U64, send_queue_bytes, 65536, 1073741824),
    CM("max_handshakes", SC_CFG_U32, max_handshakes, 1, 100000),
    CM("max_handshakes_per_address", SC_CFG_U32, max_handshakes_per_address, 1, 100000),
    CM("max_links", SC_CFG_U32, max_links, 1, 100000),
    CM("max_links_per_address", SC_CFG_U32, max_links_per_address, 1, 100000),
    CM("max_links_per_peer", SC_CFG_U32, max_links_per_peer, 1, 64),
    CM("handshake_rate", SC_CFG_U32, handshake_rate, 1, 1000000),
    CM("handshake_burst", SC_CFG_U32, handshake_burst, 1, 1000000),
    CM("handshake_rate_per_address", SC_CFG_U32, handshake_rate_per_address, 1, 1000000),
    CM("handshake_burst_per_address", SC_CFG_U32, handshake_burst_per_address, 1, 1000000),
};

static const struct sc_cfg_key identity_keys[] = {
    KEY("key_file", SC_CFG_STR, struct sc_relay_config_identity, key_file, 0, 0),
    KEY("data_dir", SC_CFG_STR, struct sc_relay_config_identity, data_dir, 0, 0),
};

#define TOR(name, kind, field, lo, hi) KEY(name, kind, struct sc_relay_config_tor, field, lo, hi)
static const struct sc_cfg_key tor_keys[] = {
    TOR("socks_host", SC_CFG_STR, socks_host, 0, 0),
    TOR("socks_port", SC_CFG_U16, socks_port, 1, 65535),
    TOR("control_host", SC_CFG_STR, control_host, 0, 0),
    TOR("control_port", SC_CFG_U16, control_port, 0, 65535),
    TOR("control_password", SC_CFG_STR, control_password, 0, 0),
    TOR("onion_key_file", SC_CFG_STR, onion_key_file, 0, 0),
    TOR("onion_port", SC_CFG_U16, onion_port, 1, 65535),
    TOR("dial_timeout", SC_CFG_U32, dial_timeout_s, 1, 3600),
    TOR("max_dials_in_flight", SC_CFG_U32, max_dials_in_flight, 1, 1000),
    TOR("stream_isolation", SC_CFG_BOOL, stream_isolation, 0, 0),
};

static const char *const tls_versions[] = {"1.2", "1.3", NULL};
static const char *const tls_verify_names[] = {"none", "ca", NULL};
static const struct sc_cfg_key tls_keys[] = {
    {"min_version", SC_CFG_ENUM, offsetof(struct sc_relay_config_tls, min_version), 0, 0,
     tls_versions, NULL},
    {"verify", SC_CFG_ENUM, offsetof(struct sc_relay_config_tls, verify), 0, 0, tls_verify_names,
     NULL},
    KEY("ca_file", SC_CFG_STR, struct sc_relay_config_tls, ca_file, 0, 0),
    KEY("require_channel_binding", SC_CFG_BOOL, struct sc_relay_config_tls, require_channel_binding,
        0, 0),
};

static int decode_origins(struct sc_cfg_ctx *c, const struct sc_cfg_key *k, void *base,
                          const struct sc_yaml_node *v);
static const struct sc_cfg_key websocket_keys[] = {
    KEY("path", SC_CFG_STR, struct sc_relay_config_websocket, path, 0, 0),
    {"allowed_origins", SC_CFG_CUSTOM, 0, 0, 0, NULL, decode_origins},
    KEY("http_proxy", SC_CFG_STR, struct sc_relay_config_websocket, http_proxy, 0, 0),
};

static const struct sc_cfg_key mesh_keys[] = {
    KEY("hop_limit", SC_CFG_U32, struct sc_relay_config_mesh, hop_limit, 1, 255),
    KEY("dedup_window", SC_CFG_U32, struct sc_relay_config_mesh, dedup_window_s, 1, 86400),
    KEY("dedup_max_entries", SC_CFG_U32, struct sc_relay_config_mesh, dedup_max_entries, 1024,
        16777216),
};

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const struct sc_cfg_key logging_keys[] = {
    {"level", SC_CFG_ENUM, offsetof(struct sc_relay_config_logging, level), 0, 0, log_levels, NULL},
    {"format", SC_CFG_ENUM, offsetof(struct sc_relay_config_logging, format), 0, 0, log_formats,
     NULL},
};

static const struct sc_cfg_key control_keys[] = {
    KEY("socket", SC_CFG_STR, struct sc_relay_config_control, socket, 0, 0),
};

static const struct sc_cfg_key http_keys[] = {
    KEY("bind", SC_CFG_STR, struct sc_relay_config_http, bind, 0, 0),
    KEY("port", SC_CFG_U16, struct sc_relay_config_http, port, 0, 65535),
};

static const struct sc_cfg_key privacy_keys[] = {
    KEY("log_peer_addresses", SC_CFG_BOOL, struct sc_relay_config_privacy, log_peer_addresses, 0,
        0),
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Top-level sections, in the order they are resolved (later ones use
 * earlier values as defaults). */
enum section_id {
    SEC_MANAGER,
    SEC_IDENTITY,
    SEC_TLS,
    SEC_WEBSOCKET,
    SEC_TOR,
    SEC_MESH,
    SEC_LOGGING,
    SEC_CONTROL,
    SEC_HTTP,
    SEC_PRIVACY,
    SEC_LISTEN,
    SEC_RELAYS,
    SEC_COUNT
};

static const struct {
    const char *name;
    const struct sc_cfg_key *keys;
    size_t nkeys;
} sections[SEC_COUNT] = {
    [SEC_MANAGER] = {"connection_manager", manager_keys, N(manager_keys)},
    [SEC_IDENTITY] = {"identity", identity_keys, N(identity_keys)},
    [SEC_TLS] = {"tls", tls_keys, N(tls_keys)},
    [SEC_WEBSOCKET] = {"websocket", websocket_keys, N(websocket_keys)},
    [SEC_TOR] = {"tor", tor_keys, N(tor_keys)},
    [SEC_MESH] = {"mesh", mesh_keys, N(mesh_keys)},
    [SEC_LOGGING] = {"logging", logging_keys, N(logging_keys)},
    [SEC_CONTROL] = {"control", control_keys, N(control_keys)},
    [SEC_HTTP] = {"http", http_keys, N(http_keys)},
    [SEC_PRIVACY] = {"privacy", privacy_keys, N(privacy_keys)},
    [SEC_LISTEN] = {"listen", NULL, 0},
    [SEC_RELAYS] = {"relays", NULL, 0},
};

_Static_assert(SEC_COUNT <= N(((struct sc_cfg_ctx *)0)->section_key), "section slots");
_Static_assert(N(manager_keys) <= SC_CFG_MAX_KEYS, "too many keys");

/* ---- defaults -------------------------------------------------------------------------------- */

static int set_defaults(struct sc_cfg_ctx *c, struct sc_relay_config *cfg)
{
    struct sc_relay_config_manager *m = &cfg->manager;
    m->max_connections = 10;
    m->min_connections = 3;
    m->connection_timeout_s = 30;
    m->heartbeat_interval_s = 60;
    m->reconnect_interval_s = 30;
    m->max_retry_attempts = 3;
    m->retry_delay_s = 30;
    m->enable_tcp = true;
    m->enable_tor = false;
    m->enable_websocket = false;
    m->tcp_port = 6667;
    m->websocket_port = 8080;
    m->tor_socks_port = 9050;
    m->ssl_enabled = false;
    m->heartbeat_miss_limit = 3;
    m->backoff_max_s = 300;
    m->healthy_after_s = 60;
    m->grace_period_s = 30;
    m->failed_cooldown_s = 3600;
    m->max_dials_in_flight = 10;
    m->probe_resistance = false;
    m->rekey_after_messages = 65536;
    m->rekey_after_bytes = 1073741824;
    m->rekey_interval_s = 3600;
    m->key_rotation_interval_s = 86400;
    m->key_rotation_overlap_s = 3600;
    m->max_message_bytes = 65497;
    m->send_queue_bytes = 1048576;
    m->max_handshakes = 512;
    m->max_handshakes_per_address = 16;
    m->max_links = 1024;
    m->max_links_per_address = 16;
    m->max_links_per_peer = 4;
    m->handshake_rate = 500;
    m->handshake_burst = 1000;
    m->handshake_rate_per_address = 10;
    m->handshake_burst_per_address = 30;

    cfg->tor.control_port = 0;
    cfg->tor.dial_timeout_s = 120;
    cfg->tor.max_dials_in_flight = 4;
    cfg->tor.stream_isolation = true;
    cfg->tls.min_version = SC_RELAY_TLS_1_3;
    cfg->tls.verify = SC_RELAY_TLS_VERIFY_NONE;
    cfg->tls.require_channel_binding = true;
    cfg->mesh.hop_limit = 8;
    cfg->mesh.dedup_window_s = 300;
    cfg->mesh.dedup_max_entries = 65536;
    cfg->logging.level = SC_LOG_INFO;
    cfg->logging.format = SC_RELAY_LOG_TEXT;
    cfg->http.port = 6680;
    cfg->privacy.log_peer_addresses = false;

    int rc;
    if ((rc = sc_cfg_dup(c, NULL, "tls/relay.crt", &m->ssl_cert_path)) != 0 ||
        (rc = sc_cfg_dup(c, NULL, "tls/relay.key", &m->ssl_key_path)) != 0 ||
        (rc = sc_cfg_dup(c, NULL, "identity.key", &cfg->identity.key_file)) != 0 ||
        (rc = sc_cfg_dup(c, NULL, ".", &cfg->identity.data_dir)) != 0 ||
        (rc = sc_cfg_dup(c, NULL, "127.0.0.1", &cfg->tor.socks_host)) != 0 ||
        (rc = sc_cfg_dup(c, NULL, "127.0.0.1", &cfg->tor.control_host)) != 0 ||
        (rc = sc_cfg_dup(c, NULL, "onion.key", &cfg->tor.onion_key_file)) != 0 ||
        (rc = sc_cfg_dup(c, NULL, "/relay", &cfg->websocket.path)) != 0 ||
        (rc = sc_cfg_dup(c, NULL, "secircd.sock", &cfg->control.socket)) != 0 ||
        (rc = sc_cfg_dup(c, NULL, "127.0.0.1", &cfg->http.bind)) != 0)
        return rc;
    return 0;
}

/* ---- cross-checks and resolution, section by section ---------------------------------------- */

static struct sc_relay_config_pos pos_of(const struct sc_yaml_node *n)
{
    struct sc_relay_config_pos p = {0, 0};
    if (n != NULL) {
        p.line = n->line;
        p.col = n->col;
    }
    return p;
}

/* Where a file-naming value came from: the value, else its section key. */
static struct sc_relay_config_pos value_pos(const struct sc_cfg_ctx *c, enum section_id sec,
                                            const struct sc_cfg_section *s, const char *key)
{
    const struct sc_yaml_node *v = sc_cfg_given_val(s, key);
    return pos_of(v != NULL ? v : c->section_key[sec]);
}

/* lo must not exceed hi; blames lo's key when the file gave it, else hi's. */
static int order(struct sc_cfg_ctx *c, const struct sc_cfg_section *s, const char *lo_name,
                 uint64_t lo, const char *hi_name, uint64_t hi)
{
    if (lo <= hi)
        return 0;
    const struct sc_yaml_node *lk = sc_cfg_given_key(s, lo_name);
    const struct sc_yaml_node *hk = sc_cfg_given_key(s, hi_name);
    if (lk != NULL)
        return sc_cfg_fail_at(c, lk, "%s (%llu) is greater than %s (%llu%s)", lo_name,
                              (unsigned long long)lo, hi_name, (unsigned long long)hi,
                              hk ? "" : ", the default");
    return sc_cfg_fail_at(c, hk, "%s (%llu) is less than %s (%llu, the default)", hi_name,
                          (unsigned long long)hi, lo_name, (unsigned long long)lo);
}

static void init_section(struct sc_cfg_section *s, enum section_id id)
{
    memset(s, 0, sizeof *s);
    s->label = sections[id].name;
    s->keys = sections[id].keys;
    s->nkeys = sections[id].nkeys;
}

static int do_manager(struct sc_cfg_ctx *c, const struct sc_yaml_node *node)
{
    struct sc_relay_config_manager *m = &c->cfg->manager;
    struct sc_cfg_section s;
    init_section(&s, SEC_MANAGER);
    int rc = sc_cfg_apply_map(c, &s, node, m);
    if (rc == 0)
        rc = order(c, &s, "min_connections", m->min_connections, "max_connections",
                   m->max_connections);
    if (rc == 0)
        rc = order(c, &s, "retry_delay", m->retry_delay_s, "backoff_max", m->backoff_max_s);
    if (rc == 0)
        rc = order(c, &s, "key_rotation_overlap", m->key_rotation_overlap_s,
                   "key_rotation_interval", m->key_rotation_interval_s);
    if (rc == 0)
        rc = order(c, &s, "max_handshakes_per_address", m->max_handshakes_per_address,
                   "max_handshakes", m->max_handshakes);
    if (rc == 0)
        rc = order(c, &s, "max_connections", m->max_connections, "max_links", m->max_links);
    if (rc == 0)
        rc = order(c, &s, "max_links_per_address", m->max_links_per_address, "max_links",
                   m->max_links);
    if (rc == 0)
        rc = order(c, &s, "max_links_per_peer", m->max_links_per_peer, "max_links", m->max_links);
    if (rc == 0)
        rc = order(c, &s, "handshake_rate_per_address", m->handshake_rate_per_address,
                   "handshake_rate", m->handshake_rate);
    if (rc == 0)
        rc = order(c, &s, "handshake_burst_per_address", m->handshake_burst_per_address,
                   "handshake_burst", m->handshake_burst);
    if (rc != 0)
        return rc;
    if (!m->enable_tcp && !m->enable_tor && !m->enable_websocket) {
        const struct sc_yaml_node *k = sc_cfg_given_key(&s, "enable_tcp");
        return sc_cfg_fail_at(c, k,
                              "enable_tcp, enable_tor and enable_websocket are all false; "
                              "a relay needs at least one transport");
    }
    c->cfg->file_pos.ssl_cert_path = value_pos(c, SEC_MANAGER, &s, "ssl_cert_path");
    c->cfg->file_pos.ssl_key_path = value_pos(c, SEC_MANAGER, &s, "ssl_key_path");
    if ((rc = sc_cfg_resolve(c, sc_cfg_given_val(&s, "ssl_cert_path"), c->base_dir,
                             m->ssl_cert_path, &m->ssl_cert_path)) != 0)
        return rc;
    return sc_cfg_resolve(c, sc_cfg_given_val(&s, "ssl_key_path"), c->base_dir, m->ssl_key_path,
                          &m->ssl_key_path);
}

static int need_nonempty(struct sc_cfg_ctx *c, const struct sc_cfg_section *s, const char *key,
                         const char *value)
{
    if (value != NULL)
        return 0;
    return sc_cfg_fail_at(c, sc_cfg_given_val(s, key), "%s must not be empty", key);
}

static int do_identity(struct sc_cfg_ctx *c, const struct sc_yaml_node *node)
{
    struct sc_relay_config_identity *id = &c->cfg->identity;
    struct sc_cfg_section s;
    init_section(&s, SEC_IDENTITY);
    int rc = sc_cfg_apply_map(c, &s, node, id);
    if (rc == 0)
        rc = need_nonempty(c, &s, "key_file", id->key_file);
    if (rc == 0)
        rc = need_nonempty(c, &s, "data_dir", id->data_dir);
    if (rc == 0)
        rc = sc_cfg_resolve(c, sc_cfg_given_val(&s, "key_file"), c->base_dir, id->key_file,
                            &id->key_file);
    if (rc == 0)
        rc = sc_cfg_resolve(c, sc_cfg_given_val(&s, "data_dir"), c->base_dir, id->data_dir,
                            &id->data_dir);
    c->cfg->file_pos.key_file = value_pos(c, SEC_IDENTITY, &s, "key_file");
    c->cfg->file_pos.data_dir = value_pos(c, SEC_IDENTITY, &s, "data_dir");
    return rc;
}

static int do_tls(struct sc_cfg_ctx *c, const struct sc_yaml_node *node)
{
    struct sc_relay_config_tls *tls = &c->cfg->tls;
    struct sc_cfg_section s;
    init_section(&s, SEC_TLS);
    int rc = sc_cfg_apply_map(c, &s, node, tls);
    if (rc != 0)
        return rc;
    if (tls->verify == SC_RELAY_TLS_VERIFY_CA && tls->ca_file == NULL)
        return sc_cfg_fail_at(c, sc_cfg_given_val(&s, "verify"),
                              "verify: ca needs ca_file (the CA certificates to trust)");
    c->cfg->file_pos.ca_file = value_pos(c, SEC_TLS, &s, "ca_file");
    return sc_cfg_resolve(c, sc_cfg_given_val(&s, "ca_file"), c->base_dir, tls->ca_file,
                          &tls->ca_file);
}

static int check_origin(struct sc_cfg_ctx *c, const struct sc_yaml_node *v)
{
    char buf[96];
    bool ok = false;
    if (v->kind == SC_YAML_SCALAR && v->len > 0 && strlen(v->text) == v->len) {
        struct evhttp_uri *u = evhttp_uri_parse_with_flags(v->text, 0);
        const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
        const char *path = u ? evhttp_uri_get_path(u) : NULL;
        ok = scheme != NULL &&
             (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0) &&
             evhttp_uri_get_host(u) != NULL && evhttp_uri_get_host(u)[0] != '\0' &&
             evhttp_uri_get_userinfo(u) == NULL && evhttp_uri_get_query(u) == NULL &&
             evhttp_uri_get_fragment(u) == NULL && (path == NULL || path[0] == '\0');
        if (u != NULL)
            evhttp_uri_free(u);
    }
    if (!ok)
        return sc_cfg_fail_at(c, v,
                              "allowed_origins entries look like https://example.com or "
                              "http://host:port, found %s",
                              sc_cfg_found(v, buf, sizeof buf));
    return 0;
}

static int decode_origins(struct sc_cfg_ctx *c, const struct sc_cfg_key *k, void *base,
                          const struct sc_yaml_node *v)
{
    struct sc_relay_config_websocket *ws = base;
    char buf[96];
    ws->allowed_origins = NULL;
    ws->n_allowed_origins = 0;
    if (sc_yaml_is_null(v))
        return 0;
    if (v->kind != SC_YAML_LIST)
        return sc_cfg_fail_at(c, v, "%s must be a list of origins, found %s", k->name,
                              sc_cfg_found(v, buf, sizeof buf));
    if (v->count == 0)
        return 0;
    ws->allowed_origins = sc_cfg_arena_alloc(c->arena, v->count * sizeof(char *));
    if (ws->allowed_origins == NULL)
        return sc_cfg_fail(c->e, SC_ENOMEM, v->line, v->col, "out of memory");
    for (const struct sc_yaml_node *it = v->first; it != NULL; it = it->next) {
        int rc = check_origin(c, it);
        if (rc == 0)
            rc = sc_cfg_dup(c, it, it->text, &ws->allowed_origins[ws->n_allowed_origins]);
        if (rc != 0)
            return rc;
        ws->n_allowed_origins++;
    }
    return 0;
}

static int do_websocket(struct sc_cfg_ctx *c, const struct sc_yaml_node *node)
{
    struct sc_relay_config_websocket *ws = &c->cfg->websocket;
    struct sc_cfg_section s;
    init_section(&s, SEC_WEBSOCKET);
    int rc = sc_cfg_apply_map(c, &s, node, ws);
    if (rc != 0)
        return rc;
    if (!sc_cfg_is_ws_path(ws->path))
        return sc_cfg_fail_at(c, sc_cfg_given_val(&s, "path"),
                              "path must start with '/' and hold no spaces or control characters");
    if (ws->http_proxy != NULL)
        return sc_cfg_check_proxy(c, sc_cfg_given_val(&s, "http_proxy"), "http_proxy",
                                  ws->http_proxy);
    return 0;
}

static int need_host(struct sc_cfg_ctx *c, const struct sc_cfg_section *s, const char *key,
                     const char *value)
{
    if (value != NULL && sc_cfg_is_host(value))
        return 0;
    char buf[96];
    const struct sc_yaml_node *v = sc_cfg_given_val(s, key);
    return sc_cfg_fail_at(c, v, "%s must be a host name or an IP address, found %s", key,
                          sc_cfg_found(v, buf, sizeof buf));
}

static int do_tor(struct sc_cfg_ctx *c, const struct sc_yaml_node *node)
{
    struct sc_relay_config_tor *tor = &c->cfg->tor;
    const struct sc_relay_config_manager *m = &c->cfg->manager;
    struct sc_cfg_section s;
    init_section(&s, SEC_TOR);
    tor->socks_port = m->tor_socks_port;
    tor->onion_port = m->tcp_port;
    int rc = sc_cfg_apply_map(c, &s, node, tor);
    if (rc == 0)
        rc = need_host(c, &s, "socks_host", tor->socks_host);
    if (rc == 0)
        rc = need_host(c, &s, "control_host", tor->control_host);
    if (rc == 0)
        rc = need_nonempty(c, &s, "onion_key_file", tor->onion_key_file);
    if (rc != 0)
        return rc;
    if (tor->control_port != 0 && tor->onion_port == 0)
        return sc_cfg_fail_at(c, sc_cfg_given_key(&s, "control_port"),
                              "an onion service needs onion_port (connection_manager.tcp_port "
                              "is 0, so there is no default)");
    c->cfg->file_pos.onion_key_file = value_pos(c, SEC_TOR, &s, "onion_key_file");
    return sc_cfg_resolve(c, sc_cfg_given_val(&s, "onion_key_file"), c->cfg->identity.data_dir,
                          tor->onion_key_file, &tor->onion_key_file);
}

static int do_control(struct sc_cfg_ctx *c, const struct sc_yaml_node *node)
{
    struct sc_relay_config_control *ctl = &c->cfg->control;
    struct sc_cfg_section s;
    init_section(&s, SEC_CONTROL);
    int rc = sc_cfg_apply_map(c, &s, node, ctl);
    const struct sc_yaml_node *v = sc_cfg_given_val(&s, "socket");
    if (rc == 0)
        rc = sc_cfg_resolve(c, v, c->cfg->identity.data_dir, ctl->socket, &ctl->socket);
    if (rc != 0)
        return rc;
    c->cfg->file_pos.control_socket = value_pos(c, SEC_CONTROL, &s, "socket");
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    if (ctl->socket != NULL && strlen(ctl->socket) > max)
        return sc_cfg_fail_at(c, v ? v : c->section_key[SEC_CONTROL],
                              "the control socket path %.48s... is %zu bytes long; a Unix socket "
                              "path has at most %zu",
                              ctl->socket, strlen(ctl->socket), max);
    return 0;
}

static int do_http(struct sc_cfg_ctx *c, const struct sc_yaml_node *node)
{
    struct sc_cfg_section s;
    init_section(&s, SEC_HTTP);
    int rc = sc_cfg_apply_map(c, &s, node, &c->cfg->http);
    if (rc != 0)
        return rc;
    if (c->cfg->http.bind == NULL || !sc_cfg_is_ip_literal(c->cfg->http.bind)) {
        char buf[96];
        const struct sc_yaml_node *v = sc_cfg_given_val(&s, "bind");
        return sc_cfg_fail_at(c, v, "bind must be an IPv4 or IPv6 address, found %s",
                              sc_cfg_found(v, buf, sizeof buf));
    }
    return 0;
}

static int do_plain(struct sc_cfg_ctx *c, enum section_id id, const struct sc_yaml_node *node,
                    void *base)
{
    struct sc_cfg_section s;
    init_section(&s, id);
    return sc_cfg_apply_map(c, &s, node, base);
}

/* ---- the top level ------------------------------------------------------------------------------
 */

/* Names the section a misplaced top-level key belongs to, or NULL. */
static const char *owner_of(const char *key)
{
    for (size_t i = 0; i < SEC_COUNT; i++)
        for (size_t j = 0; j < sections[i].nkeys; j++)
            if (strcmp(sections[i].keys[j].name, key) == 0)
                return sections[i].name;
    return NULL;
}

static int find_sections(struct sc_cfg_ctx *c, const struct sc_yaml_node *root,
                         const struct sc_yaml_node *vals[SEC_COUNT])
{
    char buf[96];
    if (root->kind != SC_YAML_MAP)
        return sc_cfg_fail_at(c, root,
                              "the configuration must be a mapping of sections "
                              "(connection_manager:, relays:, ...), found %s",
                              sc_cfg_found(root, buf, sizeof buf));
    for (const struct sc_yaml_node *k = root->first; k != NULL && k->next != NULL;
         k = k->next->next) {
        if (k->kind != SC_YAML_SCALAR)
            return sc_cfg_fail_at(c, k, "a section name must be a plain name, found %s",
                                  sc_cfg_found(k, buf, sizeof buf));
        size_t i = 0;
        while (i < SEC_COUNT &&
               !(strlen(k->text) == k->len && strcmp(k->text, sections[i].name) == 0))
            i++;
        if (i == SEC_COUNT) {
            const char *names[SEC_COUNT];
            for (size_t j = 0; j < SEC_COUNT; j++)
                names[j] = sections[j].name;
            const char *owner = owner_of(k->text),
                       *near = sc_cfg_closest(k->text, names, SEC_COUNT);
            if (owner != NULL)
                return sc_cfg_fail_at(c, k, "unknown section '%.64s'; it is a key of %s:", k->text,
                                      owner);
            if (near != NULL)
                return sc_cfg_fail_at(c, k, "unknown section '%.64s'; did you mean '%s'?", k->text,
                                      near);
            return sc_cfg_fail_at(c, k, "unknown section '%.64s'", k->text);
        }
        if (c->section_key[i] != NULL)
            return sc_cfg_fail_at(c, k, "duplicate section '%s' (first at line %u)",
                                  sections[i].name, (unsigned)c->section_key[i]->line);
        c->section_key[i] = k;
        vals[i] = k->next;
    }
    return 0;
}

int sc_cfg_build(struct sc_relay_config_arena *arena, const struct sc_yaml_node *root,
                 const char *base_dir, struct sc_cfg_err *e, struct sc_relay_config *cfg)
{
    struct sc_cfg_ctx c = {.arena = arena, .e = e, .cfg = cfg, .base_dir = base_dir};
    const struct sc_yaml_node *vals[SEC_COUNT] = {0};
    int rc = 0;
    if (root != NULL)
        rc = find_sections(&c, root, vals);
    c.manager_key = c.section_key[SEC_MANAGER];
    if (rc == 0)
        rc = set_defaults(&c, cfg);
    if (rc == 0)
        rc = sc_cfg_dup(&c, NULL, base_dir, &cfg->base_dir);
    if (rc == 0)
        rc = do_manager(&c, vals[SEC_MANAGER]);
    if (rc == 0)
        rc = do_identity(&c, vals[SEC_IDENTITY]);
    if (rc == 0)
        rc = do_tls(&c, vals[SEC_TLS]);
    if (rc == 0)
        rc = do_websocket(&c, vals[SEC_WEBSOCKET]);
    if (rc == 0)
        rc = do_tor(&c, vals[SEC_TOR]);
    if (rc == 0)
        rc = do_plain(&c, SEC_MESH, vals[SEC_MESH], &cfg->mesh);
    if (rc == 0)
        rc = do_plain(&c, SEC_LOGGING, vals[SEC_LOGGING], &cfg->logging);
    if (rc == 0)
        rc = do_control(&c, vals[SEC_CONTROL]);
    if (rc == 0)
        rc = do_http(&c, vals[SEC_HTTP]);
    if (rc == 0)
        rc = do_plain(&c, SEC_PRIVACY, vals[SEC_PRIVACY], &cfg->privacy);
    if (rc == 0)
        rc = sc_cfg_listeners(&c, vals[SEC_LISTEN]);
    if (rc == 0)
        rc = sc_cfg_relays(&c, vals[SEC_RELAYS]);
    return rc;
}
