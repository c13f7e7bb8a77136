/* relay/config_peers.c — the listen: and relays: lists of the configuration:
 * each item decoded against its keys, its defaults taken from
 * connection_manager: and websocket:, its URL, host, relay ID and TLS pin
 * checked, and duplicates refused with the line of the first. Pure: never
 * touches the file system or the network (no name resolution). */
#include "relay/config_schema.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <sodium.h>

static const char *const transport_names[] = {"tcp", "tor", "websocket", NULL};

const char *sc_relay_transport_name(enum sc_relay_transport t)
{
    switch (t) {
    case SC_RELAY_TRANSPORT_TCP:
        return "tcp";
    case SC_RELAY_TRANSPORT_TOR:
        return "tor";
    case SC_RELAY_TRANSPORT_WEBSOCKET:
        return "websocket";
    }
    return "unknown";
}

#define LKEY(name, kind, field, lo, hi)                                                            \
    {                                                                                              \
        name, kind, offsetof(struct sc_relay_config_listener, field), lo, hi, NULL, NULL           \
    }
static const struct sc_cfg_key listener_keys[] = {
    LKEY("address", SC_CFG_STR, address, 0, 0),
    LKEY("port", SC_CFG_U16, port, 0, 65535),
    {"type", SC_CFG_ENUM, offsetof(struct sc_relay_config_listener, type), 0, 0, transport_names,
     NULL},
    LKEY("ssl_enabled", SC_CFG_BOOL, ssl_enabled, 0, 0),
    LKEY("path", SC_CFG_STR, path, 0, 0),
};

static int decode_id(struct sc_cfg_ctx *c, const struct sc_cfg_key *k, void *base,
                     const struct sc_yaml_node *v);
static int decode_priority(struct sc_cfg_ctx *c, const struct sc_cfg_key *k, void *base,
                           const struct sc_yaml_node *v);
static int decode_pin(struct sc_cfg_ctx *c, const struct sc_cfg_key *k, void *base,
                      const struct sc_yaml_node *v);

#define RKEY(name, kind, field, lo, hi)                                                            \
    {                                                                                              \
        name, kind, offsetof(struct sc_relay_config_relay, field), lo, hi, NULL, NULL              \
    }
static const struct sc_cfg_key relay_keys[] = {
    {"id", SC_CFG_CUSTOM, 0, 0, 0, NULL, decode_id},
    {"type", SC_CFG_ENUM, offsetof(struct sc_relay_config_relay, type), 0, 0, transport_names,
     NULL},
    RKEY("host", SC_CFG_STR, host, 0, 0),
    RKEY("port", SC_CFG_U16, port, 1, 65535),
    RKEY("url", SC_CFG_STR, path, 0, 0), /* parsed into host, port, path below */
    {"priority", SC_CFG_CUSTOM, 0, 0, 0, NULL, decode_priority},
    RKEY("ssl_enabled", SC_CFG_BOOL, ssl_enabled, 0, 0),
    RKEY("http_proxy", SC_CFG_STR, http_proxy, 0, 0),
    {"tls_pin", SC_CFG_CUSTOM, 0, 0, 0, NULL, decode_pin},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- relay keys with their own syntax ------------------------------------------------ */

static int decode_id(struct sc_cfg_ctx *c, const struct sc_cfg_key *k, void *base,
                     const struct sc_yaml_node *v)
{
    struct sc_relay_config_relay *r = base;
    char buf[96];
    if (v->kind != SC_YAML_SCALAR || sc_yaml_is_null(v))
        return sc_cfg_fail_at(c, v, "%s must be a relay ID of 64 hex digits, found %s", k->name,
                              sc_cfg_found(v, buf, sizeof buf));
    if (v->len != SC_RELAY_ID_HEX_LEN || strlen(v->text) != v->len)
        return sc_cfg_fail_at(c, v, "%s must be a relay ID of 64 hex digits, found %zu characters",
                              k->name, v->len);
    if (sc_relay_id_from_hex(v->text, r->id) != 0) {
        size_t i = strspn(v->text, "0123456789abcdefABCDEF");
        return sc_cfg_fail_at(c, v,
                              "%s must be a relay ID of 64 hex digits; character %zu is not "
                              "a hex digit",
                              k->name, i + 1);
    }
    r->has_id = true;
    return 0;
}

static int decode_priority(struct sc_cfg_ctx *c, const struct sc_cfg_key *k, void *base,
                           const struct sc_yaml_node *v)
{
    struct sc_relay_config_relay *r = base;
    uint64_t u = 0;
    int rc = sc_cfg_want_uint(c, k->name, v, 0, 255, &u);
    if (rc != 0)
        return rc;
    if (u < 2 || u > 10 || u % 2 != 0)
        return sc_cfg_fail_at(c, v,
                              "%s must be one of 2 (untrusted), 4 (discovered), 6 (verified), "
                              "8 (trusted), 10 (first ring); found %llu",
                              k->name, (unsigned long long)u);
    r->priority = (uint8_t)u;
    return 0;
}

static int decode_pin(struct sc_cfg_ctx *c, const struct sc_cfg_key *k, void *base,
                      const struct sc_yaml_node *v)
{
    static const char prefix[] = "sha256//";
    struct sc_relay_config_relay *r = base;
    bool ok = v->kind == SC_YAML_SCALAR && v->len > sizeof prefix - 1 &&
              strlen(v->text) == v->len && strncmp(v->text, prefix, sizeof prefix - 1) == 0;
    if (ok) {
        size_t got = 0;
        const char *end = NULL, *b64 = v->text + sizeof prefix - 1;
        ok = sodium_base642bin(r->tls_pin_sha256, sizeof r->tls_pin_sha256, b64, strlen(b64), NULL,
                               &got, &end, sodium_base64_VARIANT_ORIGINAL) == 0 &&
             got == sizeof r->tls_pin_sha256 && end == v->text + v->len;
    }
    if (!ok)
        return sc_cfg_fail_at(c, v,
                              "%s must be \"sha256//\" and the base64 of a 32-byte SHA-256 of the "
                              "server's public key (SPKI)",
                              k->name);
    r->has_tls_pin = true;
    return 0;
}

/* ---- listen: ---------------------------------------------------------------------------- */

static bool same_address(const char *a, const char *b)
{
    unsigned char x[16], y[16];
    if (inet_pton(AF_INET, a, x) == 1 && inet_pton(AF_INET, b, y) == 1)
        return memcmp(x, y, 4) == 0;
    if (inet_pton(AF_INET6, a, x) == 1 && inet_pton(AF_INET6, b, y) == 1)
        return memcmp(x, y, 16) == 0;
    return false;
}

static int one_listener(struct sc_cfg_ctx *c, const struct sc_yaml_node *item,
                        struct sc_relay_config_listener *l)
{
    const struct sc_relay_config *cfg = c->cfg;
    struct sc_cfg_section s = {
        .label = "a listener", .keys = listener_keys, .nkeys = N(listener_keys)};
    const struct sc_yaml_node *addr_node = item;
    char buf[96];
    int rc;
    l->type = SC_RELAY_TRANSPORT_TCP;
    l->pos.line = item->line;
    l->pos.col = item->col;
    if (item->kind == SC_YAML_SCALAR && !sc_yaml_is_null(item)) {
        rc = sc_cfg_want_string(c, "a listen entry", item, &l->address);
    } else if (item->kind == SC_YAML_MAP) {
        rc = sc_cfg_apply_map(c, &s, item, l);
        addr_node = sc_cfg_given_val(&s, "address");
    } else {
        return sc_cfg_fail_at(c, item,
                              "a listen entry must be a mapping (address:, port:, type:, ...) or "
                              "an address, found %s",
                              sc_cfg_found(item, buf, sizeof buf));
    }
    if (rc != 0)
        return rc;
    const struct sc_yaml_node *type_node = sc_cfg_given_val(&s, "type");
    if (l->type == SC_RELAY_TRANSPORT_TOR)
        return sc_cfg_fail_at(c, type_node,
                              "a listener's type must be tcp or websocket (Tor peers reach us "
                              "through our onion service, tor.control_port)");
    bool tcp = l->type == SC_RELAY_TRANSPORT_TCP;
    if (tcp ? !cfg->manager.enable_tcp : !cfg->manager.enable_websocket)
        return sc_cfg_fail_at(
            c, type_node ? type_node : item, "a %s listener needs connection_manager.%s: true",
            sc_relay_transport_name(l->type), tcp ? "enable_tcp" : "enable_websocket");
    if (l->address == NULL && addr_node == NULL)
        rc = sc_cfg_dup(c, item, "127.0.0.1", &l->address);
    else if (l->address == NULL || !sc_cfg_is_ip_literal(l->address))
        return sc_cfg_fail_at(c, addr_node,
                              "address must be an IPv4 or IPv6 address (no host names), found %s",
                              sc_cfg_found(addr_node, buf, sizeof buf));
    if (rc != 0)
        return rc;
    if (sc_cfg_given_key(&s, "port") == NULL)
        l->port = tcp ? cfg->manager.tcp_port : cfg->manager.websocket_port;
    if (sc_cfg_given_key(&s, "ssl_enabled") == NULL)
        l->ssl_enabled = cfg->manager.ssl_enabled;
    const struct sc_yaml_node *path_key = sc_cfg_given_key(&s, "path");
    if (tcp && path_key != NULL)
        return sc_cfg_fail_at(c, path_key, "path is only for a listener of type: websocket");
    if (!tcp && path_key == NULL)
        return sc_cfg_dup(c, item, cfg->websocket.path, &l->path);
    if (!tcp && !sc_cfg_is_ws_path(l->path))
        return sc_cfg_fail_at(c, sc_cfg_given_val(&s, "path"),
                              "path must start with '/' and hold no spaces or control characters");
    return 0;
}

int sc_cfg_listeners(struct sc_cfg_ctx *c, const struct sc_yaml_node *list)
{
    struct sc_relay_config *cfg = c->cfg;
    const struct sc_relay_config_manager *m = &cfg->manager;
    char buf[96];
    if (list == NULL || sc_yaml_is_null(list)) {
        /* no listen: list — loopback listeners for the enabled transports */
        cfg->listeners = sc_cfg_arena_alloc(c->arena, 2 * sizeof *cfg->listeners);
        if (cfg->listeners == NULL)
            return sc_cfg_fail(c->e, SC_ENOMEM, 1, 1, "out of memory");
        if (m->enable_tcp && m->enable_websocket && m->tcp_port == m->websocket_port &&
            m->tcp_port != 0)
            return sc_cfg_fail_at(c, c->manager_key,
                                  "tcp_port and websocket_port are both %u; the default listeners "
                                  "(there is no listen: section) need two ports",
                                  (unsigned)m->tcp_port);
        int rc = 0;
        if (m->enable_tcp) {
            struct sc_relay_config_listener *l = &cfg->listeners[cfg->n_listeners++];
            l->port = m->tcp_port;
            l->type = SC_RELAY_TRANSPORT_TCP;
            l->ssl_enabled = m->ssl_enabled;
            rc = sc_cfg_dup(c, NULL, "127.0.0.1", &l->address);
        }
        if (rc == 0 && m->enable_websocket) {
            struct sc_relay_config_listener *l = &cfg->listeners[cfg->n_listeners++];
            l->port = m->websocket_port;
            l->type = SC_RELAY_TRANSPORT_WEBSOCKET;
            l->ssl_enabled = m->ssl_enabled;
            rc = sc_cfg_dup(c, NULL, "127.0.0.1", &l->address);
            if (rc == 0)
                rc = sc_cfg_dup(c, NULL, cfg->websocket.path, &l->path);
        }
        return rc;
    }
    if (list->kind != SC_YAML_LIST)
        return sc_cfg_fail_at(c, list, "listen must be a list of listeners, found %s",
                              sc_cfg_found(list, buf, sizeof buf));
    if (list->count > SC_RELAY_CONFIG_MAX_LISTENERS)
        return sc_cfg_fail_at(c, list, "too many listeners (%zu, at most %u)", list->count,
                              SC_RELAY_CONFIG_MAX_LISTENERS);
    if (list->count == 0)
        return 0;
    cfg->listeners = sc_cfg_arena_alloc(c->arena, list->count * sizeof *cfg->listeners);
    if (cfg->listeners == NULL)
        return sc_cfg_fail(c->e, SC_ENOMEM, list->line, list->col, "out of memory");
    for (const struct sc_yaml_node *it = list->first; it != NULL; it = it->next) {
        struct sc_relay_config_listener *l = &cfg->listeners[cfg->n_listeners];
        int rc = one_listener(c, it, l);
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < cfg->n_listeners && l->port != 0; i++) {
            const struct sc_relay_config_listener *o = &cfg->listeners[i];
            if (o->port == l->port && same_address(o->address, l->address))
                return sc_cfg_fail_at(c, it,
                                      "duplicate listener: %s port %u is already the listener at "
                                      "line %u",
                                      l->address, (unsigned)l->port, (unsigned)o->pos.line);
        }
        cfg->n_listeners++;
    }
    return 0;
}

/* ---- relays: -------------------------------------------------------------------------------- */

static bool ends_with_ci(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcasecmp(s + ls - lx, suffix) == 0;
}

/* A v3 onion address: 56 base32 characters, then ".onion". */
static bool is_onion_v3(const char *host)
{
    size_t len = strlen(host);
    if (len != 56 + 6)
        return false;
    for (size_t i = 0; i < 56; i++) {
        char ch = host[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '2' && ch <= '7')))
            return false;
    }
    return true;
}

/* Takes host, port and path from url (ws:// or wss://). */
static int relay_url(struct sc_cfg_ctx *c, const struct sc_cfg_section *s,
                     struct sc_relay_config_relay *r, const char *url)
{
    const struct sc_yaml_node *v = sc_cfg_given_val(s, "url");
    struct evhttp_uri *u = evhttp_uri_parse_with_flags(url, 0);
    char buf[96];
    if (u == NULL)
        return sc_cfg_fail_at(c, v, "url is not a valid URL: %s", sc_cfg_found(v, buf, sizeof buf));
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
    int port = evhttp_uri_get_port(u), rc = 0;
    bool wss = scheme != NULL && strcasecmp(scheme, "wss") == 0;
    if (scheme == NULL || (!wss && strcasecmp(scheme, "ws") != 0))
        rc = sc_cfg_fail_at(c, v, "url must start with ws:// or wss://, found %s",
                            sc_cfg_found(v, buf, sizeof buf));
    else if (host == NULL || host[0] == '\0' || port == 0)
        rc = sc_cfg_fail_at(c, v, "url needs a host (and a port other than 0), found %s",
                            sc_cfg_found(v, buf, sizeof buf));
    else if (evhttp_uri_get_userinfo(u) != NULL || evhttp_uri_get_fragment(u) != NULL)
        rc = sc_cfg_fail_at(c, v, "url must not hold user information or a #fragment");
    if (rc != 0) {
        evhttp_uri_free(u);
        return rc;
    }
    /* IPv6 literals come back in brackets */
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host++;
        hl -= 2;
    }
    r->host = sc_cfg_arena_strndup(c->arena, host, hl);
    r->port = (uint16_t)(port > 0 ? port : wss ? 443 : 80);
    if (path == NULL || path[0] == '\0')
        path = "/"; /* RFC 6455: an empty path is "/" */
    size_t pl = strlen(path), ql = query ? strlen(query) + 1 : 0;
    r->path = sc_cfg_arena_alloc(c->arena, pl + ql + 1);
    if (r->path != NULL) {
        memcpy(r->path, path, pl);
        if (query != NULL) {
            r->path[pl] = '?';
            memcpy(r->path + pl + 1, query, ql - 1);
        }
    }
    evhttp_uri_free(u);
    if (r->host == NULL || r->path == NULL)
        return sc_cfg_fail(c->e, SC_ENOMEM, v->line, v->col, "out of memory");
    const struct sc_yaml_node *ssl_key = sc_cfg_given_key(s, "ssl_enabled");
    if (ssl_key != NULL && r->ssl_enabled != wss)
        return sc_cfg_fail_at(c, ssl_key, "ssl_enabled: %s contradicts the %s:// url",
                              r->ssl_enabled ? "true" : "false", wss ? "wss" : "ws");
    r->ssl_enabled = wss;
    return 0;
}

static int one_relay(struct sc_cfg_ctx *c, const struct sc_yaml_node *item,
                     struct sc_relay_config_relay *r)
{
    const struct sc_relay_config *cfg = c->cfg;
    struct sc_cfg_section s = {.label = "a relay", .keys = relay_keys, .nkeys = N(relay_keys)};
    char buf[96];
    r->type = SC_RELAY_TRANSPORT_TCP;
    r->priority = 6;
    r->pos.line = item->line;
    r->pos.col = item->col;
    if (item->kind != SC_YAML_MAP)
        return sc_cfg_fail_at(c, item,
                              "a relay must be a mapping (host:, port:, type:, id:, ...), found %s",
                              sc_cfg_found(item, buf, sizeof buf));
    int rc = sc_cfg_apply_map(c, &s, item, r);
    if (rc != 0)
        return rc;
    char *url = r->path; /* the url key is decoded into path; parsed below */
    r->path = NULL;
    const struct sc_yaml_node *type_key = sc_cfg_given_key(&s, "type");
    const struct sc_yaml_node *url_key = sc_cfg_given_key(&s, "url");
    if (url_key != NULL && type_key == NULL)
        r->type = SC_RELAY_TRANSPORT_WEBSOCKET;
    bool ws = r->type == SC_RELAY_TRANSPORT_WEBSOCKET;
    if (url_key != NULL && !ws)
        return sc_cfg_fail_at(c, url_key, "url is only for a relay of type: websocket");
    const struct sc_yaml_node *proxy_key = sc_cfg_given_key(&s, "http_proxy");
    if (proxy_key != NULL && !ws)
        return sc_cfg_fail_at(c, proxy_key, "http_proxy is only for a relay of type: websocket");
    const struct sc_yaml_node *host_key = sc_cfg_given_key(&s, "host");
    const struct sc_yaml_node *port_key = sc_cfg_given_key(&s, "port");
    if (url_key != NULL && (host_key != NULL || port_key != NULL))
        return sc_cfg_fail_at(c, host_key ? host_key : port_key,
                              "give either url or host and port, not both");
    if (url_key != NULL && url == NULL)
        return sc_cfg_fail_at(c, sc_cfg_given_val(&s, "url"), "url must not be empty");
    if (sc_cfg_given_key(&s, "ssl_enabled") == NULL)
        r->ssl_enabled = cfg->manager.ssl_enabled;
    if (url != NULL) {
        if ((rc = relay_url(c, &s, r, url)) != 0)
            return rc;
    } else {
        if (r->host == NULL)
            return sc_cfg_fail_at(c, host_key ? sc_cfg_given_val(&s, "host") : item,
                                  ws ? "a relay needs host (or url)" : "a relay needs host");
        if (port_key == NULL) {
            r->port = ws ? cfg->manager.websocket_port : cfg->manager.tcp_port;
            if (r->port == 0)
                return sc_cfg_fail_at(c, item,
                                      "a relay needs port here (connection_manager.%s is 0)",
                                      ws ? "websocket_port" : "tcp_port");
        }
        if (ws && (rc = sc_cfg_dup(c, item, cfg->websocket.path, &r->path)) != 0)
            return rc;
    }
    const struct sc_yaml_node *host_at =
        host_key ? sc_cfg_given_val(&s, "host") : sc_cfg_given_val(&s, "url");
    if (!sc_cfg_is_host(r->host))
        return sc_cfg_fail_at(c, host_at, "'%.64s' is not a valid host name or IP address",
                              r->host);
    if (ends_with_ci(r->host, ".onion")) {
        if (r->type != SC_RELAY_TRANSPORT_TOR)
            return sc_cfg_fail_at(c, host_at, "a .onion host needs type: tor");
        if (!is_onion_v3(r->host))
            return sc_cfg_fail_at(c, host_at,
                                  "'%.64s' is not a v3 onion address (56 base32 characters, "
                                  "then .onion)",
                                  r->host);
    }
    if (ws && proxy_key == NULL &&
        (rc = sc_cfg_dup(c, item, cfg->websocket.http_proxy, &r->http_proxy)) != 0)
        return rc;
    if (proxy_key != NULL && r->http_proxy != NULL &&
        (rc = sc_cfg_check_proxy(c, sc_cfg_given_val(&s, "http_proxy"), "http_proxy",
                                 r->http_proxy)) != 0)
        return rc;
    const struct sc_yaml_node *pin_key = sc_cfg_given_key(&s, "tls_pin");
    if (pin_key != NULL && !r->ssl_enabled)
        return sc_cfg_fail_at(c, pin_key, "tls_pin needs ssl_enabled: true (or a wss:// url)");
    return 0;
}

int sc_cfg_relays(struct sc_cfg_ctx *c, const struct sc_yaml_node *list)
{
    struct sc_relay_config *cfg = c->cfg;
    char buf[96];
    if (list == NULL || sc_yaml_is_null(list))
        return 0;
    if (list->kind != SC_YAML_LIST)
        return sc_cfg_fail_at(c, list, "relays must be a list of relays, found %s",
                              sc_cfg_found(list, buf, sizeof buf));
    if (list->count > SC_RELAY_CONFIG_MAX_RELAYS)
        return sc_cfg_fail_at(c, list, "too many relays (%zu, at most %u)", list->count,
                              SC_RELAY_CONFIG_MAX_RELAYS);
    if (list->count == 0)
        return 0;
    cfg->relays = sc_cfg_arena_alloc(c->arena, list->count * sizeof *cfg->relays);
    if (cfg->relays == NULL)
        return sc_cfg_fail(c->e, SC_ENOMEM, list->line, list->col, "out of memory");
    for (const struct sc_yaml_node *it = list->first; it != NULL; it = it->next) {
        struct sc_relay_config_relay *r = &cfg->relays[cfg->n_relays];
        int rc = one_relay(c, it, r);
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < cfg->n_relays; i++) {
            const struct sc_relay_config_relay *o = &cfg->relays[i];
            if (o->type == r->type && o->port == r->port && strcasecmp(o->host, r->host) == 0)
                return sc_cfg_fail_at(c, it,
                                      "duplicate relay: same type, host and port as the relay at "
                                      "line %u",
                                      (unsigned)o->pos.line);
        }
        cfg->n_relays++;
    }
    return 0;
}
