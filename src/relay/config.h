/* relay/config.h — the relay daemon's YAML configuration (docs/CONFIG.md)
 * parsed, validated and resolved into one plain struct (defaults applied,
 * paths absolute, overrides settled). Errors are one line, "FILE:LINE:COL:
 * what is wrong". Parsing never touches the file system; _load and
 * _check_files only read it, never create or change a file. */
#ifndef SC_RELAY_CONFIG_H
#define SC_RELAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secirc/error.h"
#include "secirc/identity.h"
#include "secirc/log.h"

/* Largest configuration file read or parsed. */
#define SC_RELAY_CONFIG_MAX_BYTES (1024u * 1024u)
/* Most entries in listen: and in relays:. */
#define SC_RELAY_CONFIG_MAX_LISTENERS 64u
#define SC_RELAY_CONFIG_MAX_RELAYS 4096u

enum sc_relay_transport {
    SC_RELAY_TRANSPORT_TCP = 0,
    SC_RELAY_TRANSPORT_TOR = 1,
    SC_RELAY_TRANSPORT_WEBSOCKET = 2,
};

enum sc_relay_tls_version {
    SC_RELAY_TLS_1_2 = 0,
    SC_RELAY_TLS_1_3 = 1,
};

enum sc_relay_tls_verify {
    SC_RELAY_TLS_VERIFY_NONE = 0,
    SC_RELAY_TLS_VERIFY_CA = 1,
};

enum sc_relay_log_format {
    SC_RELAY_LOG_TEXT = 0,
    SC_RELAY_LOG_JSON = 1,
};

/* A place in the configuration file, 1-based; {0, 0} when the value is a
 * default that appears nowhere in the file. */
struct sc_relay_config_pos {
    uint32_t line;
    uint32_t col;
};

/* connection_manager: — the seed's keys first, then secirc's. */
struct sc_relay_config_manager {
    uint32_t max_connections;
    uint32_t min_connections;
    uint32_t connection_timeout_s;
    uint32_t heartbeat_interval_s; /* 0: no heartbeats */
    uint32_t reconnect_interval_s;
    uint32_t max_retry_attempts;
    uint32_t retry_delay_s;
    bool enable_tcp;
    bool enable_tor;
    bool enable_websocket;
    uint16_t tcp_port; /* 0: any free port (tests) */
    uint16_t websocket_port;
    uint16_t tor_socks_port;
    bool ssl_enabled;
    char *ssl_cert_path; /* absolute; NULL when given as "" */
    char *ssl_key_path;  /* absolute; NULL when given as "" */
    uint32_t heartbeat_miss_limit;
    uint32_t backoff_max_s;
    uint32_t healthy_after_s;
    uint32_t grace_period_s;
    uint32_t failed_cooldown_s;
    uint32_t max_dials_in_flight;
    bool probe_resistance;
    uint64_t rekey_after_messages;
    uint64_t rekey_after_bytes;
    uint32_t rekey_interval_s;
    uint32_t key_rotation_interval_s;
    uint32_t key_rotation_overlap_s;
    uint32_t max_message_bytes;
    uint64_t send_queue_bytes;
    uint32_t max_handshakes;
    uint32_t max_handshakes_per_address;
    uint32_t max_links;
    uint32_t max_links_per_address;
    uint32_t max_links_per_peer;
    uint32_t handshake_rate; /* message-1 per second, all sources */
    uint32_t handshake_burst;
    uint32_t handshake_rate_per_address;
    uint32_t handshake_burst_per_address;
};

struct sc_relay_config_identity {
    char *key_file; /* absolute */
    char *data_dir; /* absolute */
};

struct sc_relay_config_listener {
    char *address;                /* IPv4 or IPv6 literal */
    uint16_t port;                /* 0: any free port */
    enum sc_relay_transport type; /* TCP or WEBSOCKET */
    bool ssl_enabled;
    char *path;                     /* WEBSOCKET: the resource path; NULL for TCP */
    struct sc_relay_config_pos pos; /* the list item */
};

struct sc_relay_config_relay {
    bool has_id; /* false: trust on first use */
    uint8_t id[SC_RELAY_ID_BYTES];
    enum sc_relay_transport type;
    char *host; /* host name, IP literal or v3 .onion (TOR) */
    uint16_t port;
    char *path;       /* WEBSOCKET: resource path (from url, or websocket.path); else NULL */
    uint8_t priority; /* 2, 4, 6, 8 or 10 */
    bool ssl_enabled;
    char *http_proxy; /* WEBSOCKET: proxy URL, or NULL for none */
    bool has_tls_pin;
    uint8_t tls_pin_sha256[32];     /* SHA-256 of the server's SPKI */
    struct sc_relay_config_pos pos; /* the list item */
};

struct sc_relay_config_tor {
    char *socks_host;
    uint16_t socks_port;
    char *control_host;
    uint16_t control_port;  /* 0: no onion service of our own */
    char *control_password; /* NULL: cookie authentication */
    char *onion_key_file;   /* absolute */
    uint16_t onion_port;
    uint32_t dial_timeout_s;
    uint32_t max_dials_in_flight;
    bool stream_isolation; /* per-peer SOCKS credentials (tor: own circuits) */
};

struct sc_relay_config_tls {
    enum sc_relay_tls_version min_version;
    enum sc_relay_tls_verify verify;
    char *ca_file; /* absolute; NULL unless given */
    bool require_channel_binding;
};

struct sc_relay_config_websocket {
    char *path;
    char **allowed_origins; /* n_allowed_origins entries; none = any origin */
    size_t n_allowed_origins;
    char *http_proxy; /* NULL: no proxy */
};

struct sc_relay_config_mesh {
    uint32_t hop_limit;
    uint32_t dedup_window_s;
    uint32_t dedup_max_entries;
};

struct sc_relay_config_logging {
    enum sc_log_level level;
    enum sc_relay_log_format format;
};

struct sc_relay_config_control {
    char *socket; /* absolute Unix socket path; NULL: no control socket */
};

struct sc_relay_config_http {
    char *bind;    /* IP literal */
    uint16_t port; /* 0: no HTTP status server */
};

struct sc_relay_config_privacy {
    bool log_peer_addresses;
};

/* Where values that name files came from, for diagnostics (the value's
 * position, else its section's, else {0, 0}). */
struct sc_relay_config_file_pos {
    struct sc_relay_config_pos ssl_cert_path, ssl_key_path, key_file, data_dir;
    struct sc_relay_config_pos onion_key_file, ca_file, control_socket;
};

struct sc_relay_config_arena;

struct sc_relay_config {
    char *source;   /* the file name used in messages */
    char *base_dir; /* absolute: relative paths resolve against it */
    struct sc_relay_config_manager manager;
    struct sc_relay_config_identity identity;
    struct sc_relay_config_listener *listeners;
    size_t n_listeners;
    struct sc_relay_config_relay *relays;
    size_t n_relays;
    struct sc_relay_config_tor tor;
    struct sc_relay_config_tls tls;
    struct sc_relay_config_websocket websocket;
    struct sc_relay_config_mesh mesh;
    struct sc_relay_config_logging logging;
    struct sc_relay_config_control control;
    struct sc_relay_config_http http;
    struct sc_relay_config_privacy privacy;
    struct sc_relay_config_file_pos file_pos;
    struct sc_relay_config_arena *arena; /* owns every string and array above */
};

/* Parses and validates `len` bytes of YAML; no file system access. Messages
 * name `name_for_messages`; relative paths resolve against `base_dir`
 * (absolute; NULL: the current directory). On error returns a negative SC_E*
 * (SC_EFORMAT for a bad configuration), sets *out to NULL and writes one line
 * "NAME:LINE:COL: message" (no newline) to err. */
int sc_relay_config_parse(const char *text, size_t len, const char *name_for_messages,
                          const char *base_dir, struct sc_relay_config **out, char *err,
                          size_t errlen) SC_MUST_CHECK;

/* Reads the file at `path` (at most SC_RELAY_CONFIG_MAX_BYTES), parses it
 * with base_dir = the file's directory, then runs sc_relay_config_check_files.
 * Messages name `path` as given. */
int sc_relay_config_load(const char *path, struct sc_relay_config **out, char *err,
                         size_t errlen) SC_MUST_CHECK;

/* The file checks done at load: the directory of key_file exists and, when
 * the key file exists, it is a valid key file of mode 0600 owned by us;
 * data_dir is a directory; TLS, CA and onion key files, when used and
 * present, are readable regular files. Reads only; creates nothing. */
int sc_relay_config_check_files(const struct sc_relay_config *cfg, char *err,
                                size_t errlen) SC_MUST_CHECK;

/* The embedded configuration used without --config: every default, one TCP
 * listener on 127.0.0.1:6667, paths relative to `base_dir` (absolute; NULL:
 * the current directory). */
int sc_relay_config_defaults(const char *base_dir, struct sc_relay_config **out) SC_MUST_CHECK;

void sc_relay_config_free(struct sc_relay_config *cfg);

/* The data directory of the embedded default (secircd without --config):
 * $SECIRC_DATA_DIR, else ~/.local/share/secircd, else ./secircd-data. */
void sc_relay_default_data_dir(char *out, size_t len);

/* "tcp", "tor", "websocket". */
const char *sc_relay_transport_name(enum sc_relay_transport t);

#endif
