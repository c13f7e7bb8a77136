/* relay/daemon.c — secircd: loads the configuration (or the embedded
 * default), creates or loads the identity, runs the connection manager,
 * relays mesh broadcasts (hop limit, de-duplication by message ID), fans
 * events out to watchers, and handles SIGTERM/SIGINT (orderly stop) and
 * SIGHUP (reload without dropping healthy links). Persists nothing but the
 * identity and TOFU pins; never logs message contents, and peer addresses
 * only with privacy.log_peer_addresses. */
#include "relay/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "relay/daemon_internal.h"
#include "relay/tor_control.h"
#include "transport/tls.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/time.h"

/* How long an orderly stop may take before the process exits anyway. */
#define STOP_MAX_MS 10000u

const double sc_daemon_rtt_bounds_s[12] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                           0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

struct event_base *sc_daemon_base(const struct sc_daemon *d) { return d->base; }
const struct sc_relay_config *sc_daemon_config(const struct sc_daemon *d) { return d->cfg; }
struct sc_manager *sc_daemon_manager(const struct sc_daemon *d) { return d->m; }

/* ---- configuration -> manager ---------------------------------------------------------- */

static enum sc_path_type path_type(enum sc_relay_transport t)
{
    switch (t) {
    case SC_RELAY_TRANSPORT_TOR:
        return SC_PATH_TOR;
    case SC_RELAY_TRANSPORT_WEBSOCKET:
        return SC_PATH_WEBSOCKET;
    default:
        return SC_PATH_TCP;
    }
}

void sc_daemon_manager_config(const struct sc_relay_config *cfg, struct sc_manager_config *mc,
                              struct sc_listen_spec *listen)
{
    const struct sc_relay_config_manager *c = &cfg->manager;
    sc_manager_config_defaults(mc);
    mc->max_connections = c->max_connections;
    mc->min_connections = c->min_connections;
    mc->connection_timeout_ms = c->connection_timeout_s * 1000u;
    mc->heartbeat_interval_ms = c->heartbeat_interval_s * 1000u;
    mc->reconnect_interval_ms = c->reconnect_interval_s * 1000u;
    mc->max_retry_attempts = c->max_retry_attempts;
    mc->retry_delay_ms = c->retry_delay_s * 1000u;
    mc->enable_tcp = c->enable_tcp;
    mc->enable_tor = c->enable_tor;
    mc->enable_websocket = c->enable_websocket;
    mc->tcp_port = c->tcp_port;
    mc->websocket_port = c->websocket_port;
    mc->tor_socks_host = cfg->tor.socks_host;
    mc->tor_socks_port = cfg->tor.socks_port;
    mc->tor_dial_timeout_ms = cfg->tor.dial_timeout_s * 1000u;
    mc->tor_max_dials_in_flight = cfg->tor.max_dials_in_flight;
    mc->tor_stream_isolation = cfg->tor.stream_isolation;
    mc->ssl_enabled = c->ssl_enabled;
    mc->ssl_cert_path = c->ssl_cert_path;
    mc->ssl_key_path = c->ssl_key_path;
    mc->tls_allow_v1_2 = cfg->tls.min_version == SC_RELAY_TLS_1_2;
    mc->tls_verify_ca = cfg->tls.verify == SC_RELAY_TLS_VERIFY_CA;
    mc->tls_ca_file = cfg->tls.ca_file;
    mc->tls_channel_binding = cfg->tls.require_channel_binding;
    mc->heartbeat_miss_limit = c->heartbeat_miss_limit;
    mc->backoff_max_ms = c->backoff_max_s * 1000u;
    mc->healthy_after_ms = c->healthy_after_s * 1000u;
    mc->grace_period_ms = c->grace_period_s * 1000u;
    mc->failed_cooldown_ms = c->failed_cooldown_s * 1000u;
    mc->busy_retry_ms = 2u * mc->retry_delay_ms;
    mc->max_dials_in_flight = c->max_dials_in_flight;
    mc->probe_resistance = c->probe_resistance;
    mc->key_rotation_interval_ms = c->key_rotation_interval_s * 1000u;
    mc->key_rotation_overlap_ms = c->key_rotation_overlap_s * 1000u;
    mc->link.rekey_after_frames = c->rekey_after_messages;
    mc->link.rekey_after_bytes = c->rekey_after_bytes;
    mc->link.rekey_after_ms = (uint64_t)c->rekey_interval_s * 1000u;
    mc->link.max_message_bytes = c->max_message_bytes;
    mc->link.send_queue_bytes = (size_t)c->send_queue_bytes;
    mc->max_handshakes = c->max_handshakes;
    mc->max_handshakes_per_address = c->max_handshakes_per_address;
    mc->max_links = c->max_links;
    mc->max_links_per_address = c->max_links_per_address;
    mc->max_links_per_peer = c->max_links_per_peer;
    mc->handshake_rate = c->handshake_rate;
    mc->handshake_burst = c->handshake_burst;
    mc->handshake_rate_per_address = c->handshake_rate_per_address;
    mc->handshake_burst_per_address = c->handshake_burst_per_address;
    mc->log_peer_addresses = cfg->privacy.log_peer_addresses;
    mc->websocket_origins = (const char *const *)cfg->websocket.allowed_origins;
    mc->n_websocket_origins = cfg->websocket.n_allowed_origins;
    size_t n = cfg->n_listeners < SC_DAEMON_LISTENERS_MAX - 1 ? cfg->n_listeners
                                                              : SC_DAEMON_LISTENERS_MAX - 1;
    for (size_t i = 0; i < n; i++)
        listen[i] = (struct sc_listen_spec){.address = cfg->listeners[i].address,
                                            .port = cfg->listeners[i].port,
                                            .type = path_type(cfg->listeners[i].type),
                                            .ws_path = cfg->listeners[i].path,
                                            .tls = cfg->listeners[i].ssl_enabled};
    /* Our onion service's target: its own loopback listener, admission not
     * keyed by the source address (every connection comes from tor). */
    if (c->enable_tor && cfg->tor.control_port)
        listen[n++] = (struct sc_listen_spec){.address = "127.0.0.1", .type = SC_PATH_TCP,
                                              .onion = true};
    mc->listeners = listen;
    mc->n_listeners = n;
}

/* ---- relays (and their pins) ------------------------------------------------------------ */

static bool same_relay(const struct rpath *r, const struct sc_relay_config_relay *c)
{
    return r->type == c->type && r->port == c->port && strcmp(r->host, c->host) == 0 &&
           r->configured_id == c->has_id &&
           (!c->has_id || memcmp(r->id, c->id, SC_RELAY_ID_BYTES) == 0);
}

static int add_relay(struct sc_daemon *d, const struct sc_relay_config_relay *c)
{
    if (d->n_rpaths == SC_RELAY_CONFIG_MAX_RELAYS)
        return SC_ELIMIT;
    struct sc_relay_spec spec = {.has_id = c->has_id, .type = path_type(c->type), .host = c->host,
                                 .port = c->port, .priority = c->priority, .ws_path = c->path,
                                 .http_proxy = c->http_proxy, .tls = c->ssl_enabled,
                                 .has_tls_pin = c->has_tls_pin};
    memcpy(spec.id, c->id, SC_RELAY_ID_BYTES);
    memcpy(spec.tls_pin, c->tls_pin_sha256, sizeof spec.tls_pin);
    if (!spec.has_id && d->pins)
        spec.has_id = sc_pins_lookup(d->pins, sc_relay_transport_name(c->type), c->host, c->port,
                                     spec.id);
    uint32_t path_id;
    int err = sc_manager_add_relay(d->m, &spec, &path_id);
    if (err) {
        sc_log(SC_LOG_WARN, "relay.not_added", "type=%s priority=%u error=\"%s\"",
               sc_relay_transport_name(c->type), c->priority, sc_strerror(err));
        return err;
    }
    struct rpath *r = &d->rpaths[d->n_rpaths];
    memset(r, 0, sizeof *r);
    r->path_id = path_id;
    r->type = c->type;
    r->port = c->port;
    r->configured_id = c->has_id;
    memcpy(r->id, c->id, SC_RELAY_ID_BYTES);
    snprintf(r->host, sizeof r->host, "%s", c->host);
    d->n_rpaths++;
    return 0;
}

/* Brings the manager's relays in line with the configuration: paths no
 * longer configured go, new ones come, the others (and their links) stay. */
static void apply_relays(struct sc_daemon *d, const struct sc_relay_config *cfg)
{
    for (size_t i = 0; i < d->n_rpaths;) {
        bool kept = false;
        for (size_t j = 0; j < cfg->n_relays && !kept; j++)
            kept = same_relay(&d->rpaths[i], &cfg->relays[j]);
        if (kept) {
            i++;
            continue;
        }
        if (sc_manager_remove_path(d->m, d->rpaths[i].path_id) != 0)
            sc_log(SC_LOG_WARN, "relay.not_removed", "path=%u", d->rpaths[i].path_id);
        d->rpaths[i] = d->rpaths[--d->n_rpaths];
    }
    for (size_t j = 0; j < cfg->n_relays; j++) {
        bool have = false;
        for (size_t i = 0; i < d->n_rpaths && !have; i++)
            have = same_relay(&d->rpaths[i], &cfg->relays[j]);
        if (!have)
            (void)add_relay(d, &cfg->relays[j]);
    }
}

static void apply_logging(const struct sc_relay_config *cfg)
{
    sc_log_set_level(cfg->logging.level);
    sc_log_set_json(cfg->logging.format == SC_RELAY_LOG_JSON);
}

int sc_daemon_reload(struct sc_daemon *d, char *err, size_t errlen)
{
    if (!d->config_path) {
        snprintf(err, errlen, "running on the embedded default: nothing to reload");
        d->metrics.reloads_failed++;
        return SC_ESTATE;
    }
    struct sc_relay_config *fresh;
    int rc = sc_relay_config_load(d->config_path, &fresh, err, errlen);
    if (rc) {
        d->metrics.reloads_failed++;
        sc_log(SC_LOG_ERROR, "config.reload_refused", "error=\"%s\" kept=previous", err);
        return rc;
    }
    struct sc_manager_config mc;
    struct sc_listen_spec listen[SC_DAEMON_LISTENERS_MAX];
    sc_daemon_manager_config(fresh, &mc, listen);
    rc = sc_manager_set_config(d->m, &mc);
    if (rc) {
        snprintf(err, errlen, "%s: the new limits were refused: %s", d->config_path, sc_strerror(rc));
        d->metrics.reloads_failed++;
        sc_relay_config_free(fresh);
        return rc;
    }
    apply_logging(fresh);
    apply_relays(d, fresh);
    sc_relay_config_free(d->cfg);
    d->cfg = fresh;
    d->metrics.reloads++;
    sc_log(SC_LOG_INFO, "config.reloaded", "relays=%zu max_connections=%u min_connections=%u",
           fresh->n_relays, fresh->manager.max_connections, fresh->manager.min_connections);
    return 0;
}

/* ---- events for watchers ----------------------------------------------------------------- */

uint64_t sc_daemon_subscribe(struct sc_daemon *d, sc_daemon_event_cb cb, void *arg)
{
    struct subscriber *s = calloc(1, sizeof *s);
    if (!s)
        return 0;
    s->handle = ++d->next_handle;
    s->cb = cb;
    s->arg = arg;
    s->next = d->subs;
    d->subs = s;
    return s->handle;
}

void sc_daemon_unsubscribe(struct sc_daemon *d, uint64_t handle)
{
    for (struct subscriber **pp = &d->subs; *pp; pp = &(*pp)->next)
        if ((*pp)->handle == handle) {
            struct subscriber *s = *pp;
            if (d->publishing) { /* freed once the event went round */
                s->cb = NULL;
                return;
            }
            *pp = s->next;
            free(s);
            return;
        }
}

/* Gives `event` (stolen) to every watcher, each its own reference. */
static void publish(struct sc_daemon *d, json_t *event)
{
    if (!event)
        return;
    d->publishing = true;
    for (struct subscriber *s = d->subs; s; s = s->next)
        if (s->cb)
            s->cb(json_incref(event), s->arg);
    d->publishing = false;
    for (struct subscriber **pp = &d->subs; *pp;) {
        struct subscriber *s = *pp;
        if (s->cb) {
            pp = &s->next;
        } else {
            *pp = s->next;
            free(s);
        }
    }
    json_decref(event);
}

static json_t *hex_json(const uint8_t *bytes, size_t len)
{
    char hex[2 * 64 + 1];
    sc_hex_encode(bytes, len, hex);
    return json_string(hex);
}

/* ---- manager callbacks: the mesh --------------------------------------------------------- */

static void on_message(struct sc_manager *m, const uint8_t peer[SC_RELAY_ID_BYTES], uint32_t path_id,
                       const struct sc_relay_message *msg, void *arg)
{
    (void)path_id;
    struct sc_daemon *d = arg;
    bool broadcast = msg->flags & SC_RELAY_FLAG_BROADCAST;
    if (broadcast && sc_dedup_seen(d->dedup, msg->id, sc_mono_ms())) {
        d->metrics.messages_deduplicated++;
        return;
    }
    json_error_t jerr;
    json_t *body = json_loadb((const char *)msg->payload, msg->len,
                              JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!body) {
        d->metrics.messages_invalid++;
        long long sup = sc_log_ratelimit_pass(&d->invalid_rl, sc_mono_ms());
        if (sup >= 0) {
            char from[17];
            sc_hex_encode(peer, 8, from);
            sc_log(SC_LOG_WARN, "mesh.invalid_message", "from=%s len=%zu reason=not_json suppressed=%lld",
                   from, msg->len, sup);
        }
        return;
    }
    d->metrics.messages_delivered++;
    publish(d, json_pack("{s:s, s:o, s:o, s:b, s:i, s:o}", "event", "message", "from",
                         hex_json(peer, SC_RELAY_ID_BYTES), "id",
                         hex_json(msg->id, SC_MESSAGE_ID_BYTES), "broadcast", broadcast,
                         "hop_limit", (json_int_t)msg->hop_limit, "body", body));
    if (broadcast && msg->hop_limit > 1) {
        int n = sc_manager_broadcast(m, msg->id, (uint8_t)(msg->hop_limit - 1), msg->flags,
                                     msg->payload, msg->len, peer);
        if (n > 0)
            d->metrics.messages_forwarded += (uint64_t)n;
    }
}

static void on_path_state(struct sc_manager *m, const struct sc_path_info *info,
                          enum sc_path_state old, enum sc_reason reason, void *arg)
{
    (void)m;
    struct sc_daemon *d = arg;
    if (info->state == SC_PATH_AUTHENTICATED && !info->inbound)
        d->metrics.handshakes_ok++;
    else if ((old == SC_PATH_CONNECTING || old == SC_PATH_CONNECTED) && reason < SC_REASON_COUNT)
        d->metrics.handshakes_failed[reason]++;
    publish(d, json_pack("{s:s, s:i, s:o, s:s, s:s, s:s, s:s}", "event", "path", "path_id",
                         (json_int_t)info->path_id, "relay_id",
                         info->has_id ? hex_json(info->relay_id, SC_RELAY_ID_BYTES) : json_null(),
                         "type", sc_path_type_name(info->type), "state",
                         sc_path_state_name(info->state), "old_state", sc_path_state_name(old),
                         "reason", sc_reason_name(reason)));
}

static void on_undelivered(struct sc_manager *m, const uint8_t peer[SC_RELAY_ID_BYTES],
                           const uint8_t msg_id[SC_MESSAGE_ID_BYTES], enum sc_reason reason,
                           void *arg)
{
    (void)m;
    publish(arg, json_pack("{s:s, s:o, s:o, s:s}", "event", "undelivered", "to",
                           hex_json(peer, SC_RELAY_ID_BYTES), "id",
                           hex_json(msg_id, SC_MESSAGE_ID_BYTES), "reason", sc_reason_name(reason)));
}

static void on_rtt(struct sc_manager *m, uint32_t path_id, uint32_t rtt_us, void *arg)
{
    (void)m;
    (void)path_id;
    struct sc_daemon *d = arg;
    double s = (double)rtt_us / 1e6;
    for (size_t i = 0; i < 12; i++)
        if (s <= sc_daemon_rtt_bounds_s[i])
            d->metrics.rtt_le[i]++;
    d->metrics.rtt_sum_s += s;
    d->metrics.rtt_count++;
}

static void on_pinned(struct sc_manager *m, uint32_t path_id, const uint8_t id[SC_RELAY_ID_BYTES],
                      void *arg)
{
    (void)m;
    struct sc_daemon *d = arg;
    for (size_t i = 0; i < d->n_rpaths; i++) {
        struct rpath *r = &d->rpaths[i];
        if (r->path_id != path_id || !d->pins)
            continue;
        int err = sc_pins_set(d->pins, sc_relay_transport_name(r->type), r->host, r->port, id);
        if (err)
            sc_log(SC_LOG_ERROR, "pins.write_failed", "error=\"%s\"", sc_strerror(err));
    }
}

static void on_stopped(struct sc_manager *m, void *arg)
{
    (void)m;
    struct sc_daemon *d = arg;
    event_base_loopexit(d->base, NULL);
}

static const struct sc_manager_callbacks manager_callbacks = {
    .on_message = on_message,
    .on_path_state = on_path_state,
    .on_undelivered = on_undelivered,
    .on_rtt = on_rtt,
    .on_pinned = on_pinned,
    .on_stopped = on_stopped,
};

/* ---- metrics ------------------------------------------------------------------------------- */

void sc_daemon_get_metrics(const struct sc_daemon *d, struct sc_daemon_metrics *out)
{
    *out = d->metrics;
    struct sc_listener_stats ls;
    sc_manager_listener_stats(d->m, &ls);
    out->handshakes_ok += ls.authenticated;
    /* Inbound connections that ended before they authenticated. */
    static const enum sc_reason preauth[] = {
        SC_REASON_TIMEOUT,          SC_REASON_PROTOCOL_ERROR,  SC_REASON_DECRYPT_FAILED,
        SC_REASON_IDENTITY_MISMATCH, SC_REASON_CERT_INVALID,   SC_REASON_CERT_EXPIRED,
        SC_REASON_HANDSHAKE_FAILED, SC_REASON_PROBE_DROPPED,   SC_REASON_PROTOCOL_VERSION,
        SC_REASON_HANDSHAKE_LIMIT,  SC_REASON_SELF,            SC_REASON_PROBE_REPLAYED,
        SC_REASON_RATE_LIMITED,
    };
    for (size_t i = 0; i < sizeof preauth / sizeof preauth[0]; i++)
        out->handshakes_failed[preauth[i]] += ls.closed[preauth[i]];
}

/* ---- signals and life cycle --------------------------------------------------------------- */

static void stop(struct sc_daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    sc_tor_control_free(d->tor); /* closing the control connection removes the service */
    d->tor = NULL;
    struct sc_manager_status st;
    sc_manager_get_status(d->m, &st);
    sc_log(SC_LOG_INFO, "secircd.stopping", "linked_peers=%u", st.connected_peers);
    sc_daemon_services_stop(d);
    sc_manager_stop(d->m); /* on_stopped leaves the loop */
    struct timeval tv = sc_ms_to_tv(STOP_MAX_MS);
    evtimer_add(d->stop_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct sc_daemon *d = arg;
    if (sig == SIGHUP) {
        char err[512];
        (void)sc_daemon_reload(d, err, sizeof err);
        return;
    }
    stop(d);
}

static void on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sc_daemon *d = arg;
    sc_log(SC_LOG_WARN, "secircd.stop_timeout", "after_ms=%u", STOP_MAX_MS);
    event_base_loopexit(d->base, NULL);
}

/* The data directory of the embedded default, created 0700. */
static int default_data_dir(char *out, size_t len)
{
    sc_relay_default_data_dir(out, len);
    /* mkdir -p, each level 0700 (only the last one is ours). */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", out);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            (void)mkdir(tmp, 0700);
            *p = '/';
        }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return sc_translate_sys_error(errno);
    return 0;
}

static int load_or_create_identity(struct sc_daemon *d)
{
    const char *path = d->cfg->identity.key_file;
    char why[512] = "";
    int err = sc_identity_load(path, &d->identity, why, sizeof why);
    if (err == SC_ENOENT) {
        err = sc_identity_generate(&d->identity);
        if (!err)
            err = sc_identity_save(d->identity, path);
        if (err) {
            fprintf(stderr, "secircd: cannot create the identity %s: %s\n", path, sc_strerror(err));
            return err;
        }
        sc_log(SC_LOG_INFO, "identity.created", "key_file=%s mode=0600", path);
        return 0;
    }
    if (err)
        fprintf(stderr, "secircd: %s: %s\n", path, why[0] ? why : sc_strerror(err));
    return err;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void on_onion(bool published, const char *address, const char *why, void *arg)
{
    struct sc_daemon *d = arg;
    publish(d, json_pack("{s:s, s:b, s:s?, s:s?}", "event", "onion", "published", published,
                         "address", address, "reason", published ? NULL : why));
}

/* Our own onion service, through tor's control port (relay/tor_control.c). */
static int start_onion(struct sc_daemon *d, size_t listener)
{
    const struct sc_relay_config_tor *t = &d->cfg->tor;
    d->onion_listener = listener;
    struct sc_tor_control_config tc = {
        .host = t->control_host,
        .port = t->control_port,
        .password = t->control_password,
        .key_file = t->onion_key_file,
        .virtual_port = t->onion_port,
        .target_host = "127.0.0.1",
        .target_port = sc_manager_listener_port(d->m, listener),
    };
    int err = sc_tor_control_new(d->base, &tc, on_onion, d, &d->tor);
    if (err)
        fprintf(stderr, "secircd: cannot start the onion service: %s\n", sc_strerror(err));
    else
        sc_log(SC_LOG_INFO, "tor.onion_starting", "control=%s:%u virtual_port=%u target_port=%u",
               t->control_host, t->control_port, t->onion_port, tc.target_port);
    return err;
}

/* TLS listeners need a certificate: when neither ssl_cert_path nor
 * ssl_key_path exists yet, a self-signed one is made (ECDSA P-256, key mode
 * 0600, in a directory created 0700): the relay ID authenticates relays, the
 * certificate is camouflage. Its pin goes to the log for peers that want
 * one (tls_pin). 0, or -1 with the reason on stderr. */
static int ensure_tls_certificate(const struct sc_relay_config *cfg)
{
    bool any = false;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        any |= cfg->listeners[i].ssl_enabled;
    const char *cert = cfg->manager.ssl_cert_path, *key = cfg->manager.ssl_key_path;
    if (!any || !cert || !key)
        return 0;
    bool have_cert = access(cert, F_OK) == 0, have_key = access(key, F_OK) == 0;
    if (have_cert && have_key)
        return 0;
    if (have_cert || have_key) {
        fprintf(stderr, "secircd: %s exists but %s does not: give both or neither\n",
                have_cert ? cert : key, have_cert ? key : cert);
        return -1;
    }
    char dir[4096], err[512];
    snprintf(dir, sizeof dir, "%s", cert);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "secircd: cannot create %s for the TLS certificate: %s\n", dir,
                    strerror(errno));
            return -1;
        }
    }
    char pin[64];
    if (sc_tls_self_signed(cert, key, "secirc-relay", err, sizeof err) != 0 ||
        sc_tls_pin_from_cert_file(cert, pin, sizeof pin, err, sizeof err) != 0) {
        fprintf(stderr, "secircd: %s\n", err);
        return -1;
    }
    sc_log(SC_LOG_INFO, "tls.certificate_created", "cert=%s key=%s mode=0600 tls_pin=%s", cert, key,
           pin);
    return 0;
}

static int start(struct sc_daemon *d)
{
    apply_logging(d->cfg);
    int err = load_or_create_identity(d);
    if (err)
        return 1;
    char idhex[SC_RELAY_ID_HEX_LEN + 1];
    sc_relay_id_to_hex(sc_identity_relay_id(d->identity), idhex);
    sc_log(SC_LOG_INFO, "secircd.starting", "relay_id=%s config=%s data_dir=%s", idhex,
           d->config_path ? d->config_path : "(embedded default)", d->cfg->identity.data_dir);
    char pins_path[4096];
    snprintf(pins_path, sizeof pins_path, "%s/pins", d->cfg->identity.data_dir);
    if (sc_pins_load(pins_path, &d->pins) != 0)
        sc_log(SC_LOG_WARN, "pins.unreadable", "file=%s", pins_path);
    err = sc_dedup_new(d->cfg->mesh.dedup_max_entries, (uint64_t)d->cfg->mesh.dedup_window_s * 1000u,
                       &d->dedup);
    if (!err && ensure_tls_certificate(d->cfg) != 0)
        return 1;
    struct sc_manager_config mc;
    struct sc_listen_spec listen[SC_DAEMON_LISTENERS_MAX];
    sc_daemon_manager_config(d->cfg, &mc, listen);
    if (!err)
        err = sc_manager_new(d->base, &mc, d->identity, &manager_callbacks, d, &d->m);
    if (!err)
        err = sc_manager_start(d->m);
    if (err) {
        fprintf(stderr, "secircd: cannot start the relay: %s\n", sc_strerror(err));
        return 1;
    }
    for (size_t i = 0; i < d->cfg->n_relays; i++)
        (void)add_relay(d, &d->cfg->relays[i]);
    for (size_t i = 0; i < mc.n_listeners; i++)
        sc_log(SC_LOG_INFO, "secircd.listening", "type=%s address=%s port=%u",
               sc_path_type_name(listen[i].type), listen[i].address,
               sc_manager_listener_port(d->m, i));
    if (mc.n_listeners && mc.listeners[mc.n_listeners - 1].onion && start_onion(d, mc.n_listeners - 1))
        return 1;
    if (sc_daemon_services_start(d) != 0)
        return 1;
    d->started_unix = sc_unix_s();
    sc_log(SC_LOG_INFO, "secircd.started", "relay_id=%s relays=%zu", idhex, d->cfg->n_relays);
    return 0;
}

static void cleanup(struct sc_daemon *d)
{
    sc_daemon_services_free(d);
    sc_tor_control_free(d->tor);
    sc_manager_free(d->m);
    struct event *evs[] = {d->sigterm, d->sigint, d->sighup, d->stop_timer};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i])
            event_free(evs[i]);
    while (d->subs) {
        struct subscriber *s = d->subs;
        d->subs = s->next;
        free(s);
    }
    sc_dedup_free(d->dedup);
    sc_pins_free(d->pins);
    sc_identity_free(d->identity);
    sc_relay_config_free(d->cfg);
    free(d->rpaths);
    free(d->config_path);
    if (d->base) {
        sc_link_finish_lingering(d->base); /* the sockets of the links that ended */
        event_base_free(d->base);
    }
    free(d);
}

int sc_daemon_run(const char *config_path)
{
    struct sc_daemon *d = calloc(1, sizeof *d);
    if (!d)
        return 1;
    d->invalid_rl = (struct sc_log_ratelimit)SC_LOG_RATELIMIT_INIT(1000);
    char err[8192] = "";
    int rc;
    if (config_path) {
        d->config_path = strdup(config_path);
        rc = d->config_path ? sc_relay_config_load(config_path, &d->cfg, err, sizeof err) : SC_ENOMEM;
    } else {
        char dir[4096];
        rc = default_data_dir(dir, sizeof dir);
        if (rc)
            snprintf(err, sizeof err, "secircd: cannot create the data directory %s: %s", dir,
                     sc_strerror(rc));
        else
            rc = sc_relay_config_defaults(dir, &d->cfg);
    }
    if (rc) {
        fprintf(stderr, "%s\n", err[0] ? err : sc_strerror(rc));
        cleanup(d);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    d->base = event_base_new();
    d->rpaths = calloc(SC_RELAY_CONFIG_MAX_RELAYS, sizeof *d->rpaths);
    if (!d->base || !d->rpaths) {
        cleanup(d);
        return 1;
    }
    d->sigterm = evsignal_new(d->base, SIGTERM, on_signal, d);
    d->sigint = evsignal_new(d->base, SIGINT, on_signal, d);
    d->sighup = evsignal_new(d->base, SIGHUP, on_signal, d);
    d->stop_timer = evtimer_new(d->base, on_stop_timeout, d);
    if (!d->sigterm || !d->sigint || !d->sighup || !d->stop_timer || start(d) != 0) {
        cleanup(d);
        return 1;
    }
    event_add(d->sigterm, NULL);
    event_add(d->sigint, NULL);
    event_add(d->sighup, NULL);
    event_base_dispatch(d->base);
    sc_log(SC_LOG_INFO, "secircd.stopped", "status=0");
    cleanup(d);
    return 0;
}
