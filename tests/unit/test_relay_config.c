/* tests/unit/test_relay_config.c — the relay configuration (relay/config.h)
 * through sc_relay_config_parse: the defaults, the seed's connection_manager
 * block as it stands, every override and dependent default, and each error
 * with its exact FILE:LINE:COL message. Pure: no file is read or written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay/config.h"

#define BASE "/etc/secirc"

static struct sc_relay_config *parse_ok(const char *yaml)
{
    struct sc_relay_config *cfg = NULL;
    char err[512] = "";
    int rc = sc_relay_config_parse(yaml, strlen(yaml), "t.yaml", BASE, &cfg, err, sizeof err);
    if (rc != 0)
        fail_msg("expected success, got %d: %s", rc, err);
    assert_non_null(cfg);
    return cfg;
}

static void expect_error_len(const char *yaml, size_t len, const char *want)
{
    struct sc_relay_config *cfg = (struct sc_relay_config *)1;
    char err[512] = "";
    int rc = sc_relay_config_parse(yaml, len, "t.yaml", BASE, &cfg, err, sizeof err);
    if (rc == 0)
        fail_msg("expected \"%s\", but the configuration was accepted:\n%s", want, yaml);
    assert_true(rc < 0);
    assert_null(cfg);
    assert_string_equal(err, want);
}

static void expect_error(const char *yaml, const char *want)
{
    expect_error_len(yaml, strlen(yaml), want);
}

/* The seed's block, exactly its sixteen keys. */
static const char seed_block[] = "connection_manager:\n"
                                 "  max_connections: 10\n"
                                 "  min_connections: 3\n"
                                 "  connection_timeout: 30\n"
                                 "  heartbeat_interval: 60\n"
                                 "  reconnect_interval: 30\n"
                                 "  max_retry_attempts: 3\n"
                                 "  retry_delay: 30\n"
                                 "  enable_tcp: true\n"
                                 "  enable_tor: false\n"
                                 "  enable_websocket: false\n"
                                 "  tcp_port: 6667\n"
                                 "  websocket_port: 8080\n"
                                 "  tor_socks_port: 9050\n"
                                 "  ssl_enabled: false\n"
                                 "  ssl_cert_path: \"tls/relay.crt\"\n"
                                 "  ssl_key_path: \"tls/relay.key\"\n";

/* ---- defaults ------------------------------------------------------------------------------ */

static void check_default_values(const struct sc_relay_config *cfg, const char *base)
{
    char path[256];
    const struct sc_relay_config_manager *m = &cfg->manager;
    assert_int_equal(m->max_connections, 10);
    assert_int_equal(m->min_connections, 3);
    assert_int_equal(m->connection_timeout_s, 30);
    assert_int_equal(m->heartbeat_interval_s, 60);
    assert_int_equal(m->reconnect_interval_s, 30);
    assert_int_equal(m->max_retry_attempts, 3);
    assert_int_equal(m->retry_delay_s, 30);
    assert_true(m->enable_tcp);
    assert_false(m->enable_tor);
    assert_false(m->enable_websocket);
    assert_int_equal(m->tcp_port, 6667);
    assert_int_equal(m->websocket_port, 8080);
    assert_int_equal(m->tor_socks_port, 9050);
    assert_false(m->ssl_enabled);
    snprintf(path, sizeof path, "%s/tls/relay.crt", base);
    assert_string_equal(m->ssl_cert_path, path);
    snprintf(path, sizeof path, "%s/tls/relay.key", base);
    assert_string_equal(m->ssl_key_path, path);
    assert_int_equal(m->heartbeat_miss_limit, 3);
    assert_int_equal(m->backoff_max_s, 300);
    assert_int_equal(m->healthy_after_s, 60);
    assert_int_equal(m->grace_period_s, 30);
    assert_int_equal(m->failed_cooldown_s, 3600);
    assert_int_equal(m->max_dials_in_flight, 10);
    assert_false(m->probe_resistance);
    assert_int_equal(m->rekey_after_messages, 65536);
    assert_int_equal(m->rekey_after_bytes, 1073741824ull);
    assert_int_equal(m->rekey_interval_s, 3600);
    assert_int_equal(m->key_rotation_interval_s, 86400);
    assert_int_equal(m->key_rotation_overlap_s, 3600);
    assert_int_equal(m->max_message_bytes, 65497);
    assert_int_equal(m->send_queue_bytes, 1048576);
    assert_int_equal(m->max_handshakes, 512);
    assert_int_equal(m->max_handshakes_per_address, 16);
    assert_int_equal(m->max_links, 1024);
    assert_int_equal(m->max_links_per_address, 16);
    assert_int_equal(m->max_links_per_peer, 4);
    assert_int_equal(m->handshake_rate, 500);
    assert_int_equal(m->handshake_burst, 1000);
    assert_int_equal(m->handshake_rate_per_address, 10);
    assert_int_equal(m->handshake_burst_per_address, 30);

    snprintf(path, sizeof path, "%s/identity.key", base);
    assert_string_equal(cfg->identity.key_file, path);
    assert_string_equal(cfg->identity.data_dir, base);
    assert_string_equal(cfg->base_dir, base);

    assert_int_equal(cfg->n_listeners, 1);
    assert_string_equal(cfg->listeners[0].address, "127.0.0.1");
    assert_int_equal(cfg->listeners[0].port, 6667);
    assert_int_equal(cfg->listeners[0].type, SC_RELAY_TRANSPORT_TCP);
    assert_false(cfg->listeners[0].ssl_enabled);
    assert_null(cfg->listeners[0].path);
    assert_int_equal(cfg->n_relays, 0);

    assert_string_equal(cfg->tor.socks_host, "127.0.0.1");
    assert_int_equal(cfg->tor.socks_port, 9050);
    assert_string_equal(cfg->tor.control_host, "127.0.0.1");
    assert_int_equal(cfg->tor.control_port, 0);
    assert_null(cfg->tor.control_password);
    snprintf(path, sizeof path, "%s/onion.key", base);
    assert_string_equal(cfg->tor.onion_key_file, path);
    assert_int_equal(cfg->tor.onion_port, 6667);
    assert_int_equal(cfg->tor.dial_timeout_s, 120);
    assert_int_equal(cfg->tor.max_dials_in_flight, 4);

    assert_int_equal(cfg->tls.min_version, SC_RELAY_TLS_1_3);
    assert_int_equal(cfg->tls.verify, SC_RELAY_TLS_VERIFY_NONE);
    assert_null(cfg->tls.ca_file);
    assert_true(cfg->tls.require_channel_binding);

    assert_string_equal(cfg->websocket.path, "/relay");
    assert_int_equal(cfg->websocket.n_allowed_origins, 0);
    assert_null(cfg->websocket.http_proxy);

    assert_int_equal(cfg->mesh.hop_limit, 8);
    assert_int_equal(cfg->mesh.dedup_window_s, 300);
    assert_int_equal(cfg->mesh.dedup_max_entries, 65536);
    assert_int_equal(cfg->logging.level, SC_LOG_INFO);
    assert_int_equal(cfg->logging.format, SC_RELAY_LOG_TEXT);
    snprintf(path, sizeof path, "%s/secircd.sock", base);
    assert_string_equal(cfg->control.socket, path);
    assert_string_equal(cfg->http.bind, "127.0.0.1");
    assert_int_equal(cfg->http.port, 6680);
    assert_false(cfg->privacy.log_peer_addresses);
}

static void test_defaults(void **state)
{
    (void)state;
    struct sc_relay_config *cfg = NULL;
    assert_int_equal(sc_relay_config_defaults("/srv/relay", &cfg), 0);
    check_default_values(cfg, "/srv/relay");
    assert_int_equal(cfg->listeners[0].pos.line, 0);
    sc_relay_config_free(cfg);

    /* a file with empty sections means the same */
    cfg = parse_ok("connection_manager:\nidentity:\ntor: {}\nlogging: ~\n");
    check_default_values(cfg, BASE);
    assert_string_equal(cfg->source, "t.yaml");
    sc_relay_config_free(cfg);
}

static void test_seed_block(void **state)
{
    (void)state;
    struct sc_relay_config *cfg = parse_ok(seed_block);
    check_default_values(cfg, BASE);
    sc_relay_config_free(cfg);

    /* the same block with other values: each of the sixteen keys is read */
    cfg = parse_ok("connection_manager:\n"
                   "  max_connections: 50\n"
                   "  min_connections: 7\n"
                   "  connection_timeout: 45\n"
                   "  heartbeat_interval: 0\n"
                   "  reconnect_interval: 15\n"
                   "  max_retry_attempts: 9\n"
                   "  retry_delay: 5\n"
                   "  enable_tcp: false\n"
                   "  enable_tor: true\n"
                   "  enable_websocket: true\n"
                   "  tcp_port: 7000\n"
                   "  websocket_port: 7001\n"
                   "  tor_socks_port: 9150\n"
                   "  ssl_enabled: true\n"
                   "  ssl_cert_path: \"/etc/ssl/relay.pem\"\n"
                   "  ssl_key_path: \"keys/relay.key\"\n");
    const struct sc_relay_config_manager *m = &cfg->manager;
    assert_int_equal(m->max_connections, 50);
    assert_int_equal(m->min_connections, 7);
    assert_int_equal(m->connection_timeout_s, 45);
    assert_int_equal(m->heartbeat_interval_s, 0);
    assert_int_equal(m->reconnect_interval_s, 15);
    assert_int_equal(m->max_retry_attempts, 9);
    assert_int_equal(m->retry_delay_s, 5);
    assert_false(m->enable_tcp);
    assert_true(m->enable_tor);
    assert_true(m->enable_websocket);
    assert_int_equal(m->tcp_port, 7000);
    assert_int_equal(m->websocket_port, 7001);
    assert_int_equal(m->tor_socks_port, 9150);
    assert_true(m->ssl_enabled);
    assert_string_equal(m->ssl_cert_path, "/etc/ssl/relay.pem");
    assert_string_equal(m->ssl_key_path, BASE "/keys/relay.key");
    /* dependent defaults follow */
    assert_int_equal(cfg->tor.socks_port, 9150);
    assert_int_equal(cfg->tor.onion_port, 7000);
    assert_int_equal(cfg->n_listeners, 1); /* tcp is off: only the websocket listener */
    assert_int_equal(cfg->listeners[0].type, SC_RELAY_TRANSPORT_WEBSOCKET);
    assert_int_equal(cfg->listeners[0].port, 7001);
    assert_true(cfg->listeners[0].ssl_enabled);
    assert_string_equal(cfg->listeners[0].path, "/relay");
    sc_relay_config_free(cfg);
}

/* ---- overrides ---------------------------------------------------------------------------- */

static void test_manager_additions(void **state)
{
    (void)state;
    struct sc_relay_config *cfg = parse_ok("connection_manager:\n"
                                           "  heartbeat_miss_limit: 5\n"
                                           "  backoff_max: 600\n"
                                           "  healthy_after: 120\n"
                                           "  grace_period: 10\n"
                                           "  failed_cooldown: 7200\n"
                                           "  max_dials_in_flight: 3\n"
                                           "  probe_resistance: true\n"
                                           "  rekey_after_messages: 1000\n"
                                           "  rekey_after_bytes: 1099511627776\n"
                                           "  rekey_interval: 60\n"
                                           "  key_rotation_interval: 3600\n"
                                           "  key_rotation_overlap: 600\n"
                                           "  max_message_bytes: 64\n"
                                           "  send_queue_bytes: 65536\n"
                                           "  max_handshakes: 100\n"
                                           "  max_handshakes_per_address: 2\n"
                                           "  max_links: 200\n"
                                           "  max_links_per_address: 8\n"
                                           "  max_links_per_peer: 2\n"
                                           "  handshake_rate: 50\n"
                                           "  handshake_burst: 60\n"
                                           "  handshake_rate_per_address: 1\n"
                                           "  handshake_burst_per_address: 2\n");
    const struct sc_relay_config_manager *m = &cfg->manager;
    assert_int_equal(m->heartbeat_miss_limit, 5);
    assert_int_equal(m->backoff_max_s, 600);
    assert_int_equal(m->healthy_after_s, 120);
    assert_int_equal(m->grace_period_s, 10);
    assert_int_equal(m->failed_cooldown_s, 7200);
    assert_int_equal(m->max_dials_in_flight, 3);
    assert_true(m->probe_resistance);
    assert_int_equal(m->rekey_after_messages, 1000);
    assert_int_equal(m->rekey_after_bytes, 1099511627776ull);
    assert_int_equal(m->rekey_interval_s, 60);
    assert_int_equal(m->key_rotation_interval_s, 3600);
    assert_int_equal(m->key_rotation_overlap_s, 600);
    assert_int_equal(m->max_message_bytes, 64);
    assert_int_equal(m->send_queue_bytes, 65536);
    assert_int_equal(m->max_handshakes, 100);
    assert_int_equal(m->max_handshakes_per_address, 2);
    assert_int_equal(m->max_links, 200);
    assert_int_equal(m->max_links_per_address, 8);
    assert_int_equal(m->max_links_per_peer, 2);
    assert_int_equal(m->handshake_rate, 50);
    assert_int_equal(m->handshake_burst, 60);
    assert_int_equal(m->handshake_rate_per_address, 1);
    assert_int_equal(m->handshake_burst_per_address, 2);
    sc_relay_config_free(cfg);
}

static void test_sections(void **state)
{
    (void)state;
    struct sc_relay_config *cfg = parse_ok("identity:\n"
                                           "  key_file: \"./keys/me.key\"\n"
                                           "  data_dir: /var/lib/secirc\n"
                                           "tor:\n"
                                           "  socks_host: tor.internal\n"
                                           "  socks_port: 9150\n"
                                           "  control_host: \"::1\"\n"
                                           "  control_port: 9051\n"
                                           "  control_password: \"s3cret\"\n"
                                           "  onion_key_file: hs/onion.key\n"
                                           "  onion_port: 443\n"
                                           "  dial_timeout: 300\n"
                                           "  max_dials_in_flight: 2\n"
                                           "tls:\n"
                                           "  min_version: 1.2\n"
                                           "  verify: ca\n"
                                           "  ca_file: ca.pem\n"
                                           "  require_channel_binding: false\n"
                                           "websocket:\n"
                                           "  path: /ws/v1\n"
                                           "  allowed_origins: [\"https://chat.example\", "
                                           "\"http://localhost:3000\"]\n"
                                           "  http_proxy: \"http://user:pw@10.0.0.1:3128\"\n"
                                           "mesh:\n"
                                           "  hop_limit: 255\n"
                                           "  dedup_window: 60\n"
                                           "  dedup_max_entries: 1024\n"
                                           "logging:\n"
                                           "  level: debug\n"
                                           "  format: json\n"
                                           "control:\n"
                                           "  socket: run/ctl.sock\n"
                                           "http:\n"
                                           "  bind: \"::1\"\n"
                                           "  port: 0\n"
                                           "privacy:\n"
                                           "  log_peer_addresses: true\n");
    assert_string_equal(cfg->identity.key_file, BASE "/keys/me.key");
    assert_string_equal(cfg->identity.data_dir, "/var/lib/secirc");
    assert_string_equal(cfg->tor.socks_host, "tor.internal");
    assert_int_equal(cfg->tor.socks_port, 9150);
    assert_string_equal(cfg->tor.control_host, "::1");
    assert_int_equal(cfg->tor.control_port, 9051);
    assert_string_equal(cfg->tor.control_password, "s3cret");
    /* in data_dir, not next to the config */
    assert_string_equal(cfg->tor.onion_key_file, "/var/lib/secirc/hs/onion.key");
    assert_int_equal(cfg->tor.onion_port, 443);
    assert_int_equal(cfg->tor.dial_timeout_s, 300);
    assert_int_equal(cfg->tor.max_dials_in_flight, 2);
    assert_int_equal(cfg->tls.min_version, SC_RELAY_TLS_1_2);
    assert_int_equal(cfg->tls.verify, SC_RELAY_TLS_VERIFY_CA);
    assert_string_equal(cfg->tls.ca_file, BASE "/ca.pem");
    assert_false(cfg->tls.require_channel_binding);
    assert_string_equal(cfg->websocket.path, "/ws/v1");
    assert_int_equal(cfg->websocket.n_allowed_origins, 2);
    assert_string_equal(cfg->websocket.allowed_origins[0], "https://chat.example");
    assert_string_equal(cfg->websocket.allowed_origins[1], "http://localhost:3000");
    assert_string_equal(cfg->websocket.http_proxy, "http://user:pw@10.0.0.1:3128");
    assert_int_equal(cfg->mesh.hop_limit, 255);
    assert_int_equal(cfg->mesh.dedup_window_s, 60);
    assert_int_equal(cfg->mesh.dedup_max_entries, 1024);
    assert_int_equal(cfg->logging.level, SC_LOG_DEBUG);
    assert_int_equal(cfg->logging.format, SC_RELAY_LOG_JSON);
    assert_string_equal(cfg->control.socket, "/var/lib/secirc/run/ctl.sock");
    assert_string_equal(cfg->http.bind, "::1");
    assert_int_equal(cfg->http.port, 0);
    assert_true(cfg->privacy.log_peer_addresses);
    /* positions of file-naming values, for later diagnostics */
    assert_int_equal(cfg->file_pos.key_file.line, 2);
    assert_int_equal(cfg->file_pos.key_file.col, 13);
    assert_int_equal(cfg->file_pos.onion_key_file.line, 10);
    assert_int_equal(cfg->file_pos.ssl_cert_path.line, 0);
    sc_relay_config_free(cfg);

    /* "" turns off what may be off */
    cfg = parse_ok("control:\n  socket: \"\"\nwebsocket:\n  allowed_origins:\n");
    assert_null(cfg->control.socket);
    assert_int_equal(cfg->websocket.n_allowed_origins, 0);
    sc_relay_config_free(cfg);
}

static void test_listeners(void **state)
{
    (void)state;
    struct sc_relay_config *cfg = parse_ok("connection_manager:\n"
                                           "  enable_websocket: true\n"
                                           "  ssl_enabled: true\n"
                                           "  tcp_port: 7000\n"
                                           "listen:\n"
                                           "  - \"::\"\n"
                                           "  - address: 0.0.0.0\n"
                                           "    port: 0\n"
                                           "    ssl_enabled: false\n"
                                           "  - address: 127.0.0.1\n"
                                           "    type: websocket\n"
                                           "  - type: websocket\n"
                                           "    port: 9443\n"
                                           "    path: /other\n");
    assert_int_equal(cfg->n_listeners, 4);
    const struct sc_relay_config_listener *l = cfg->listeners;
    assert_string_equal(l[0].address, "::");
    assert_int_equal(l[0].port, 7000);
    assert_int_equal(l[0].type, SC_RELAY_TRANSPORT_TCP);
    assert_true(l[0].ssl_enabled);
    assert_null(l[0].path);
    assert_int_equal(l[0].pos.line, 6);
    assert_int_equal(l[0].pos.col, 5);
    assert_string_equal(l[1].address, "0.0.0.0");
    assert_int_equal(l[1].port, 0);
    assert_false(l[1].ssl_enabled);
    assert_int_equal(l[1].pos.line, 7);
    assert_int_equal(l[2].type, SC_RELAY_TRANSPORT_WEBSOCKET);
    assert_int_equal(l[2].port, 8080);
    assert_string_equal(l[2].path, "/relay");
    assert_string_equal(l[3].address, "127.0.0.1");
    assert_int_equal(l[3].port, 9443);
    assert_string_equal(l[3].path, "/other");
    assert_int_equal(l[3].pos.line, 12);
    sc_relay_config_free(cfg);

    /* no listen: section, both transports: two loopback listeners */
    cfg = parse_ok("connection_manager:\n  enable_websocket: true\n");
    assert_int_equal(cfg->n_listeners, 2);
    assert_int_equal(cfg->listeners[1].type, SC_RELAY_TRANSPORT_WEBSOCKET);
    assert_int_equal(cfg->listeners[1].port, 8080);
    sc_relay_config_free(cfg);

    /* listen: [] — dial only */
    cfg = parse_ok("listen: []\n");
    assert_int_equal(cfg->n_listeners, 0);
    sc_relay_config_free(cfg);

    /* an empty listen: keeps the default, like any empty section */
    cfg = parse_ok("listen:\n");
    assert_int_equal(cfg->n_listeners, 1);
    assert_string_equal(cfg->listeners[0].address, "127.0.0.1");
    sc_relay_config_free(cfg);
}

#define ID1 "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"
#define ONION "zr3mxqjtlhydvwak2t5e3kntygoxk7f4nj7ynfqkh5gjc4a6d3jwu3wt.onion"

static void test_relays(void **state)
{
    (void)state;
    struct sc_relay_config *cfg =
        parse_ok("connection_manager:\n"
                 "  ssl_enabled: true\n"
                 "  websocket_port: 9000\n"
                 "websocket:\n"
                 "  path: /mesh\n"
                 "  http_proxy: http://proxy:3128\n"
                 "relays:\n"
                 "  - id: " ID1 "\n"
                 "    host: relay.example.com\n"
                 "    priority: 10\n"
                 "    ssl_enabled: false\n"
                 "  - url: \"wss://[2001:db8::1]/relay?v=1\"\n"
                 "    tls_pin: "
                 "\"sha256//Kk6ZJ7fUdsnxR8KgbEbPmcn7b0wQGRzCk4n+C9mzUSg=\"\n"
                 "  - type: websocket\n"
                 "    url: ws://ws.example:81\n"
                 "    http_proxy: \"http://10.0.0.2:8080\"\n"
                 "  - type: websocket\n"
                 "    host: ws.example\n"
                 "  - type: tor\n"
                 "    host: " ONION "\n"
                 "    priority: 2\n");
    assert_int_equal(cfg->n_relays, 5);
    const struct sc_relay_config_relay *r = cfg->relays;
    uint8_t id1[SC_RELAY_ID_BYTES];
    assert_int_equal(sc_relay_id_from_hex(ID1, id1), 0);

    assert_true(r[0].has_id);
    assert_memory_equal(r[0].id, id1, sizeof id1);
    assert_int_equal(r[0].type, SC_RELAY_TRANSPORT_TCP);
    assert_string_equal(r[0].host, "relay.example.com");
    assert_int_equal(r[0].port, 6667);
    assert_null(r[0].path);
    assert_int_equal(r[0].priority, 10);
    assert_false(r[0].ssl_enabled);
    assert_null(r[0].http_proxy);
    assert_false(r[0].has_tls_pin);
    assert_int_equal(r[0].pos.line, 8);
    assert_int_equal(r[0].pos.col, 5);

    assert_false(r[1].has_id);
    assert_int_equal(r[1].type, SC_RELAY_TRANSPORT_WEBSOCKET); /* from the url */
    assert_string_equal(r[1].host, "2001:db8::1");
    assert_int_equal(r[1].port, 443);
    assert_string_equal(r[1].path, "/relay?v=1");
    assert_true(r[1].ssl_enabled);
    assert_int_equal(r[1].priority, 6);
    assert_string_equal(r[1].http_proxy, "http://proxy:3128");
    assert_true(r[1].has_tls_pin);
    assert_int_equal(r[1].tls_pin_sha256[0], 0x2a);
    assert_int_equal(r[1].tls_pin_sha256[31], 0x28);

    assert_string_equal(r[2].host, "ws.example");
    assert_int_equal(r[2].port, 81);
    assert_string_equal(r[2].path, "/"); /* RFC 6455: empty path */
    assert_false(r[2].ssl_enabled);      /* ws:// */
    assert_string_equal(r[2].http_proxy, "http://10.0.0.2:8080");

    assert_int_equal(r[3].port, 9000);
    assert_string_equal(r[3].path, "/mesh");
    assert_true(r[3].ssl_enabled); /* connection_manager.ssl_enabled */

    assert_int_equal(r[4].type, SC_RELAY_TRANSPORT_TOR);
    assert_string_equal(r[4].host, ONION);
    assert_int_equal(r[4].port, 6667);
    assert_int_equal(r[4].priority, 2);
    assert_null(r[4].path);
    assert_null(r[4].http_proxy);
    assert_int_equal(r[4].pos.line, 19);
    sc_relay_config_free(cfg);
}

/* ---- errors -----------------------------------------------------------------------------------
 */

struct bad {
    const char *yaml;
    const char *message;
};

static const struct bad bad_configs[] = {
    /* keys */
    {"connection_manager:\n  max_conections: 5\n",
     "t.yaml:2:3: unknown key 'max_conections' in connection_manager; did you mean "
     "'max_connections'?"},
    {"tls:\n  colour: blue\n", "t.yaml:2:3: unknown key 'colour' in tls"},
    {"connection:\n  a: 1\n", "t.yaml:1:1: unknown section 'connection'"},
    {"relay:\n  - host: a\n", "t.yaml:1:1: unknown section 'relay'; did you mean 'relays'?"},
    {"tcp_port: 1\n", "t.yaml:1:1: unknown section 'tcp_port'; it is a key of connection_manager:"},
    {"connection_manager:\n  tcp_port: 1\n  retry_delay: 2\n  tcp_port: 3\n",
     "t.yaml:4:3: duplicate key 'tcp_port' in connection_manager (first at line 2)"},
    {"mesh: {}\nlogging: {}\nmesh: {}\n", "t.yaml:3:1: duplicate section 'mesh' (first at line 1)"},
    {"connection_manager:\n  [a]: 1\n", "t.yaml:2:3: a key must be a plain name, found a list"},
    /* types */
    {"connection_manager:\n  max_connections: ten\n",
     "t.yaml:2:20: max_connections must be an integer, found 'ten'"},
    {"connection_manager:\n  max_connections: \"10\"\n",
     "t.yaml:2:20: max_connections must be an integer, found the quoted string \"10\""},
    {"connection_manager:\n  retry_delay:\n    - 1\n",
     "t.yaml:3:5: retry_delay must be an integer, found a list"},
    {"connection_manager:\n  retry_delay:\n",
     "t.yaml:2:15: retry_delay must be an integer, found nothing"},
    {"connection_manager:\n  retry_delay: 1.5\n",
     "t.yaml:2:16: retry_delay must be an integer, found '1.5'"},
    {"connection_manager:\n  tcp_port: 0x1a0b\n",
     "t.yaml:2:13: tcp_port must be an integer, found '0x1a0b'"},
    {"connection_manager:\n  tcp_port: 0660\n",
     "t.yaml:2:13: tcp_port: leading zeros are ambiguous in YAML (octal); write the number "
     "without them"},
    {"connection_manager:\n  enable_tor: yes\n",
     "t.yaml:2:15: enable_tor must be true or false, found 'yes'"},
    {"connection_manager:\n  enable_tor: \"true\"\n",
     "t.yaml:2:15: enable_tor must be true or false, found the quoted string \"true\""},
    {"connection_manager:\n  enable_tor: {a: 1}\n",
     "t.yaml:2:15: enable_tor must be true or false, found a mapping"},
    {"connection_manager:\n  ssl_cert_path: [a]\n",
     "t.yaml:2:18: ssl_cert_path must be a string, found a list"},
    {"connection_manager:\n  ssl_cert_path: \"a\\tb\"\n",
     "t.yaml:2:18: ssl_cert_path must not contain control characters"},
    {"logging:\n  level: verbose\n",
     "t.yaml:2:10: level must be one of debug, info, warn, error; found 'verbose'"},
    {"tls:\n  min_version: 1.1\n", "t.yaml:2:16: min_version must be one of 1.2, 1.3; found '1.1'"},
    {"connection_manager: 5\n",
     "t.yaml:1:21: connection_manager must be a mapping of keys, found '5'"},
    {"relays:\n  host: a\n", "t.yaml:2:3: relays must be a list of relays, found a mapping"},
    /* ranges */
    {"connection_manager:\n  tcp_port: 70000\n",
     "t.yaml:2:13: tcp_port must be between 0 and 65535, found '70000'"},
    {"connection_manager:\n  max_connections: 0\n",
     "t.yaml:2:20: max_connections must be between 1 and 100000, found '0'"},
    {"connection_manager:\n  max_connections: -5\n",
     "t.yaml:2:20: max_connections must be between 1 and 100000, found '-5'"},
    {"connection_manager:\n  rekey_after_bytes: 99999999999999999999999\n",
     "t.yaml:2:22: rekey_after_bytes must be between 65536 and 1099511627776, found "
     "'99999999999999999999999'"},
    {"connection_manager:\n  max_message_bytes: 65498\n",
     "t.yaml:2:22: max_message_bytes must be between 64 and 65497, found '65498'"},
    {"mesh:\n  hop_limit: 256\n", "t.yaml:2:14: hop_limit must be between 1 and 255, found '256'"},
    /* between keys */
    {"connection_manager:\n  max_connections: 4\n  min_connections: 5\n",
     "t.yaml:3:3: min_connections (5) is greater than max_connections (4)"},
    {"connection_manager:\n  min_connections: 11\n",
     "t.yaml:2:3: min_connections (11) is greater than max_connections (10, the default)"},
    {"connection_manager:\n  max_connections: 2\n",
     "t.yaml:2:3: max_connections (2) is less than min_connections (3, the default)"},
    {"connection_manager:\n  backoff_max: 10\n",
     "t.yaml:2:3: backoff_max (10) is less than retry_delay (30, the default)"},
    {"connection_manager:\n  max_connections: 2000\n",
     "t.yaml:2:3: max_connections (2000) is greater than max_links (1024, the default)"},
    {"connection_manager:\n  max_handshakes_per_address: 600\n",
     "t.yaml:2:3: max_handshakes_per_address (600) is greater than max_handshakes (512, the "
     "default)"},
    {"connection_manager:\n  enable_tcp: false\n  enable_tor: false\n",
     "t.yaml:2:3: enable_tcp, enable_tor and enable_websocket are all false; a relay needs at "
     "least one transport"},
    {"connection_manager:\n  enable_websocket: true\n  websocket_port: 6667\n",
     "t.yaml:1:1: tcp_port and websocket_port are both 6667; the default listeners (there is no "
     "listen: section) need two ports"},
    {"tls:\n  verify: ca\n",
     "t.yaml:2:11: verify: ca needs ca_file (the CA certificates to trust)"},
    {"tor:\n  control_port: 9051\nconnection_manager:\n  tcp_port: 0\n",
     "t.yaml:2:3: an onion service needs onion_port (connection_manager.tcp_port is 0, so there "
     "is no default)"},
    {"identity:\n  key_file: \"\"\n", "t.yaml:2:13: key_file must not be empty"},
    {"tor:\n  socks_host: \"bad host\"\n",
     "t.yaml:2:15: socks_host must be a host name or an IP address, found the quoted string "
     "\"bad host\""},
    {"http:\n  bind: localhost\n",
     "t.yaml:2:9: bind must be an IPv4 or IPv6 address, found 'localhost'"},
    {"websocket:\n  path: relay\n",
     "t.yaml:2:9: path must start with '/' and hold no spaces or control characters"},
    {"websocket:\n  allowed_origins: [\"https://a.example/path\"]\n",
     "t.yaml:2:21: allowed_origins entries look like https://example.com or http://host:port, "
     "found the quoted string \"https://a.example/path\""},
    {"websocket:\n  http_proxy: \"socks5://u:secret@h:1\"\n",
     "t.yaml:2:15: http_proxy must be a URL of the form http://[user:password@]host:port"},
    {"control:\n  socket: /" /* 120 bytes */
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aa"
     "aaaaaaaaaaaaaaaaaaaaaaaa\n",
     "t.yaml:2:11: the control socket path "
     "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa... is 120 bytes long; a Unix socket path "
     "has at most 107"},
    /* listeners */
    {"listen:\n  - address: localhost\n",
     "t.yaml:2:14: address must be an IPv4 or IPv6 address (no host names), found 'localhost'"},
    {"listen:\n  - type: tor\n",
     "t.yaml:2:11: a listener's type must be tcp or websocket (Tor peers reach us through our "
     "onion service, tor.control_port)"},
    {"listen:\n  - address: 127.0.0.1\n    path: /x\n",
     "t.yaml:3:5: path is only for a listener of type: websocket"},
    {"listen:\n  - type: websocket\n",
     "t.yaml:2:11: a websocket listener needs connection_manager.enable_websocket: true"},
    {"listen:\n  - 127.0.0.1\n  - address: 0.0.0.0\n  - address: \"127.0.0.1\"\n    port: 6667\n",
     "t.yaml:4:5: duplicate listener: 127.0.0.1 port 6667 is already the listener at line 2"},
    {"listen:\n  - [a]\n",
     "t.yaml:2:5: a listen entry must be a mapping (address:, port:, type:, ...) or an address, "
     "found a list"},
    /* relays */
    {"relays:\n  - id: 1234\n    host: a\n",
     "t.yaml:2:9: id must be a relay ID of 64 hex digits, found 4 characters"},
    {"relays:\n  - id: 3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59dazz\n"
     "    host: a\n",
     "t.yaml:2:9: id must be a relay ID of 64 hex digits; character 63 is not a hex digit"},
    {"relays:\n  - host: a.example\n  - host: b.example\n  - host: A.EXAMPLE\n    port: 6667\n",
     "t.yaml:4:5: duplicate relay: same type, host and port as the relay at line 2"},
    {"relays:\n  - port: 7000\n", "t.yaml:2:5: a relay needs host"},
    {"relays:\n  - host: \"-bad\"\n", "t.yaml:2:11: '-bad' is not a valid host name or IP address"},
    {"relays:\n  - host: a\n    port: 0\n",
     "t.yaml:3:11: port must be between 1 and 65535, found '0'"},
    {"relays:\n  - url: \"https://relay.example/relay\"\n",
     "t.yaml:2:10: url must start with ws:// or wss://, found the quoted string "
     "\"https://relay.example/relay\""},
    {"relays:\n  - url: ws://a/\n    type: tcp\n",
     "t.yaml:2:5: url is only for a relay of type: websocket"},
    {"relays:\n  - url: ws://a/\n    host: a\n",
     "t.yaml:3:5: give either url or host and port, not both"},
    {"relays:\n  - url: wss://a/\n    ssl_enabled: false\n",
     "t.yaml:3:5: ssl_enabled: false contradicts the wss:// url"},
    {"relays:\n  - host: " ONION "\n", "t.yaml:2:11: a .onion host needs type: tor"},
    {"relays:\n  - type: tor\n    host: expyuzz4wqqyqhjn.onion\n",
     "t.yaml:3:11: 'expyuzz4wqqyqhjn.onion' is not a v3 onion address (56 base32 characters, "
     "then .onion)"},
    {"relays:\n  - host: a\n    priority: 5\n",
     "t.yaml:3:15: priority must be one of 2 (untrusted), 4 (discovered), 6 (verified), 8 "
     "(trusted), 10 (first ring); found 5"},
    {"relays:\n  - host: a\n    http_proxy: http://p:1\n",
     "t.yaml:3:5: http_proxy is only for a relay of type: websocket"},
    {"relays:\n  - host: a\n    ssl_enabled: true\n    tls_pin: sha256//abc\n",
     "t.yaml:4:14: tls_pin must be \"sha256//\" and the base64 of a 32-byte SHA-256 of the "
     "server's public key (SPKI)"},
    {"relays:\n  - host: a\n    tls_pin: "
     "\"sha256//Kk6ZJ7fUdsnxR8KgbEbPmcn7b0wQGRzCk4n+C9mzUSg=\"\n",
     "t.yaml:3:5: tls_pin needs ssl_enabled: true (or a wss:// url)"},
    {"relays:\n  - a.example\n",
     "t.yaml:2:5: a relay must be a mapping (host:, port:, type:, id:, ...), found 'a.example'"},
    /* YAML itself */
    {"connection_manager:\n\tmax_connections: 10\n",
     "t.yaml:2:1: tabs are not allowed for indentation; indent with spaces"},
    {"connection_manager:\n  max_connections: 10\n  \tmin_connections: 3\n",
     "t.yaml:3:3: tabs are not allowed for indentation; indent with spaces"},
    {"listen:\n  -\taddress: 127.0.0.1\n",
     "t.yaml:2:4: tabs are not allowed for indentation; indent with spaces"},
    {"", "t.yaml:1:1: the configuration is empty"},
    {"# nothing here\n\n   \n", "t.yaml:1:1: the configuration is empty"},
    {"---\n", "t.yaml:1:1: the configuration is empty"},
    {"mesh: {}\n---\nmesh: {}\n",
     "t.yaml:2:1: only one YAML document is allowed in a configuration"},
    {"mesh: &m {hop_limit: 3}\nlogging: *m\n",
     "t.yaml:2:10: YAML aliases (*m) are not supported; write the value out"},
    {"mesh:\n  hop_limit: !!int 3\n",
     "t.yaml:2:14: YAML tags such as 'tag:yaml.org,2002:int' are not supported; write the plain "
     "value"},
    {"mesh: [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]\n",
     "t.yaml:1:22: lists and mappings nested deeper than 16 levels"},
    {"mesh:\n  hop_limit: 3\n key: 1\n",
     "t.yaml:3:2: YAML syntax error: did not find expected key (while parsing a block mapping at "
     "1:1)"},
    {"mesh: \"unterminated\n",
     "t.yaml:2:1: YAML syntax error: found unexpected end of stream (while scanning a quoted "
     "scalar at 1:7)"},
    {"hello\n",
     "t.yaml:1:1: the configuration must be a mapping of sections (connection_manager:, relays:, "
     "...), found 'hello'"},
};

static void test_errors(void **state)
{
    (void)state;
    size_t failed = 0;
    for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
        const struct bad *b = &bad_configs[i];
        struct sc_relay_config *cfg = NULL;
        char err[512] = "";
        int rc =
            sc_relay_config_parse(b->yaml, strlen(b->yaml), "t.yaml", BASE, &cfg, err, sizeof err);
        if (rc >= 0 || cfg != NULL || strcmp(err, b->message) != 0) {
            print_error("case %zu (rc %d):\n  want: %s\n  got:  %s\n", i, rc, b->message, err);
            failed++;
        }
        sc_relay_config_free(cfg);
    }
    assert_int_equal(failed, 0);
}

static void test_bytes(void **state)
{
    (void)state;
    /* invalid UTF-8 (reader error, reported by byte offset) */
    expect_error("mesh:\n  hop_limit: \xff\n",
                 "t.yaml:2:14: invalid leading UTF-8 octet (byte 0xff)");
    /* a NUL byte in the text */
    static const char nul[] = "mesh:\n  hop_limit: 3\0\n";
    expect_error_len(nul, sizeof nul - 1,
                     "t.yaml:2:15: control characters are not allowed (byte 0x00)");
    /* positions count characters, not bytes */
    expect_error("mesh:\n  # é\n  hop: 1\n  \"é\": 1\n", "t.yaml:3:3: unknown key 'hop' in mesh");
    expect_error("tor:\n  control_password: \"é\"\n  x: 1\n", "t.yaml:3:3: unknown key 'x' in tor");
    /* a message is always one line, whatever the key holds */
    expect_error("mesh:\n  \"a\\nb\": 1\n", "t.yaml:2:3: unknown key 'a?b' in mesh");
    /* too large */
    size_t big = SC_RELAY_CONFIG_MAX_BYTES + 1;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, '#', big);
    expect_error_len(text, big,
                     "t.yaml:1:1: the configuration is too large (1048577 bytes, at "
                     "most 1048576)");
    free(text);
}

static void test_api_edges(void **state)
{
    (void)state;
    struct sc_relay_config *cfg = NULL;
    char err[8];
    /* a short buffer still gets a terminated prefix */
    assert_int_equal(sc_relay_config_parse("", 0, "t.yaml", BASE, &cfg, err, sizeof err),
                     SC_EFORMAT);
    assert_string_equal(err, "t.yaml:");
    assert_null(cfg);
    /* no buffer at all */
    assert_int_equal(sc_relay_config_parse("", 0, "t.yaml", BASE, &cfg, NULL, 0), SC_EFORMAT);
    /* a relative base directory is refused */
    char msg[256];
    assert_int_equal(sc_relay_config_parse("mesh: {}\n", 9, "t.yaml", "etc", &cfg, msg, sizeof msg),
                     SC_EINVAL);
    assert_string_equal(msg, "t.yaml:1:1: the base directory etc is not absolute");
    sc_relay_config_free(NULL);
    assert_string_equal(sc_relay_transport_name(SC_RELAY_TRANSPORT_TOR), "tor");
    /* a base of "/" joins without a double slash */
    assert_int_equal(sc_relay_config_parse("mesh: {}\n", 9, "t.yaml", "/", &cfg, msg, sizeof msg),
                     0);
    assert_string_equal(cfg->identity.key_file, "/identity.key");
    assert_string_equal(cfg->identity.data_dir, "/");
    sc_relay_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_seed_block),
        cmocka_unit_test(test_manager_additions),
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_listeners),
        cmocka_unit_test(test_relays),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_api_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
