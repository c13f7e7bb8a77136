/* secirc/manager.h — the connection manager: keeps a relay linked to the
 * right number of the right peers, whatever fails.
 *
 * A PEER is a relay identity; a PATH is one transport endpoint to it (tcp,
 * tor or websocket; host, port, priority). A peer may have several paths;
 * traffic fails over between them. The manager dials candidates highest
 * priority first while fewer than min_connections peers are linked (counting
 * inbound and outbound together), accepts peers that dial it up to
 * max_connections, reconnects with jittered exponential
 * backoff, evicts the weakest peer for a stronger inbound one, resolves
 * simultaneous dials to one link, watches heartbeats, moves queued messages
 * to another path when one dies, and explains why any peer is or is not
 * linked. It runs on the embedder's event_base and owns its listeners and
 * its link-key rotation.
 *
 * Delivery: a message is handed to one link of the peer. Messages still in
 * that link's queue when it dies move to another authenticated path of the
 * same peer, or are reported through on_undelivered (never dropped in
 * silence). Messages already sealed into frames and written toward the
 * socket (at most SC_LINK_OUTPUT_HIGH_WATER_BYTES plus what the kernel and
 * the network hold) can be lost when a link dies without being reported:
 * delivery is at most once per link, and the mesh above deduplicates by
 * message ID. */
#ifndef SECIRC_MANAGER_H
#define SECIRC_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secirc/identity.h"
#include "secirc/link.h"
#include "secirc/listener.h"

struct event_base;
struct sc_manager;

enum sc_path_type {
    SC_PATH_TCP = 0,
    SC_PATH_TOR = 1,
    SC_PATH_WEBSOCKET = 2,
};
const char *sc_path_type_name(enum sc_path_type t); /* "tcp", "tor", "websocket" */

/* Path states (the seed's). One function changes them and checks:
 *   DISCONNECTED -> CONNECTING | FAILED
 *   CONNECTING   -> CONNECTED | RECONNECTING | FAILED | DISCONNECTED
 *   CONNECTED    -> AUTHENTICATED | RECONNECTING | FAILED | DISCONNECTED
 *   AUTHENTICATED-> RECONNECTING | FAILED | DISCONNECTED
 *   RECONNECTING -> CONNECTING | FAILED | DISCONNECTED
 *   FAILED       -> CONNECTING | DISCONNECTED
 * CONNECTED means the transport is up and the link handshake runs;
 * RECONNECTING waits out a backoff; FAILED waits out a long cool-down (or
 * forever for a transport this build lacks). */
enum sc_path_state {
    SC_PATH_DISCONNECTED = 0,
    SC_PATH_CONNECTING,
    SC_PATH_CONNECTED,
    SC_PATH_AUTHENTICATED,
    SC_PATH_FAILED,
    SC_PATH_RECONNECTING,
};
const char *sc_path_state_name(enum sc_path_state s);

/* A listener the manager opens. */
struct sc_listen_spec {
    const char *address;    /* IPv4/IPv6 literal; "::" is dual stack */
    uint16_t port;          /* 0: any free port (see sc_manager_get_status) */
    enum sc_path_type type; /* tcp or websocket */
    const char *ws_path;    /* websocket: the resource path (NULL: "/relay"; copied) */
    bool tls;               /* TLS under the link (and under websocket: wss) */
    /* The target of our onion service: every connection comes from the
     * local tor (127.0.0.1), so admission is not keyed by source address
     * (no per-address caps or rates): the total caps, eviction of the
     * oldest handshake, and the per-identity cap do the work. */
    bool onion;
};

struct sc_manager_config {
    /* --- the seed's connection_manager fields ------------------------- */
    uint32_t max_connections;       /* peers linked at most (10) */
    uint32_t min_connections;       /* peers to keep linked (3) */
    uint32_t connection_timeout_ms; /* dial + transport + handshake (30 s) */
    uint32_t heartbeat_interval_ms; /* 0 = none (60 s) */
    uint32_t reconnect_interval_ms; /* how often candidates are looked at (30 s) */
    uint32_t max_retry_attempts;    /* consecutive failures before FAILED (3) */
    uint32_t retry_delay_ms;        /* first backoff delay (30 s) */
    bool enable_tcp, enable_tor, enable_websocket;
    uint16_t tcp_port;              /* default port of TCP paths and listeners (6667) */
    uint16_t websocket_port;        /* default port of WebSocket ones (8080) */
    uint16_t tor_socks_port;        /* tor's SOCKS port (9050) */
    const char *tor_socks_host;     /* tor's SOCKS address (NULL: 127.0.0.1; copied) */
    uint32_t tor_dial_timeout_ms;   /* a Tor path's dial + SOCKS + handshake (120 s) */
    uint32_t tor_max_dials_in_flight; /* Tor dials at once, within max_dials_in_flight (4) */
    /* Per-peer SOCKS username/password, which tor (IsolateSOCKSAuth, its
     * default) turns into circuits of that peer's own (true). false: no
     * authentication offered (a SOCKS proxy that is not tor). */
    bool tor_stream_isolation;
    /* TLS (docs/PROTOCOL.md, "TLS"): the certificate and key (PEM) of the
     * listeners with `tls`, read at sc_manager_new and at each
     * sc_manager_set_config (a renewed certificate applies to new
     * connections); ssl_enabled is the embedder's default (the manager
     * follows each listen and relay spec's own `tls`). */
    bool ssl_enabled;
    const char *ssl_cert_path, *ssl_key_path;
    bool tls_allow_v1_2;            /* TLS 1.2 too (false: TLS 1.3 only) */
    bool tls_verify_ca;             /* check servers' chains against tls_ca_file and the host */
    const char *tls_ca_file;
    bool tls_channel_binding;       /* bind links to their TLS session (true) */
    /* --- secirc's ----------------------------------------------------------- */
    uint32_t heartbeat_miss_limit;  /* 3 */
    uint32_t backoff_max_ms;        /* backoff cap (300 s) */
    uint32_t healthy_after_ms;      /* a link up this long resets its path's backoff (60 s) */
    uint32_t grace_period_ms;       /* a new peer is not evicted this long (30 s) */
    uint32_t failed_cooldown_ms;    /* FAILED paths are retried after (1 h) */
    uint32_t busy_retry_ms;         /* after a `busy` REJECT (2 x retry_delay) */
    uint32_t max_dials_in_flight;   /* 10 */
    uint32_t key_rotation_interval_ms;
    uint32_t key_rotation_overlap_ms;
    bool probe_resistance;
    /* The listeners to open (copied); none = dial only. */
    const struct sc_listen_spec *listeners;
    size_t n_listeners;
    bool log_peer_addresses;        /* label links and logs with addresses */
    /* WebSocket listeners accept only these Origin values (none: any; copied). */
    const char *const *websocket_origins;
    size_t n_websocket_origins;
    /* Link and listener settings (rekey, sizes, queues, listener caps):
     * filled by sc_manager_config_defaults(); the manager sets identity,
     * keys, timeouts and callbacks itself. */
    struct sc_link_config link;
    uint32_t max_handshakes, max_handshakes_per_address;
    uint32_t handshake_rate, handshake_burst;
    uint32_t handshake_rate_per_address, handshake_burst_per_address;
    uint32_t max_links, max_links_per_address, max_links_per_peer, links_reserved;
};

void sc_manager_config_defaults(struct sc_manager_config *cfg);

/* A candidate path to a relay (the seed's add_relay). */
struct sc_relay_spec {
    bool has_id;                       /* false: trust on first use, pinned once seen */
    uint8_t id[SC_RELAY_ID_BYTES];
    enum sc_path_type type;
    const char *host;                  /* copied */
    uint16_t port;
    uint8_t priority;                  /* 2, 4, 6, 8 or 10 */
    /* websocket paths: the resource path (NULL: "/relay") and an HTTP
     * CONNECT proxy, http://[user:password@]host:port (NULL: none); copied */
    const char *ws_path;
    const char *http_proxy;
    /* TLS under the link (tcp, tor) or under websocket (wss), optionally
     * with the SHA-256 of the server's SubjectPublicKeyInfo to match. */
    bool tls;
    bool has_tls_pin;
    uint8_t tls_pin[32];
};

/* What the manager knows of one path (the seed's "available connections"). */
struct sc_path_info {
    uint32_t path_id;
    bool has_id;
    uint8_t relay_id[SC_RELAY_ID_BYTES];
    enum sc_path_type type;
    bool tls;                  /* TLS under the link (wss for websocket) */
    char host[256];
    uint16_t port;
    enum sc_path_state state;
    bool inbound;              /* the peer dialed us (transient path) */
    bool authenticated;
    uint8_t priority;
    uint32_t latency_us, jitter_us; /* EWMA of heartbeats; 0 = not measured yet */
    uint64_t last_seen_unix;   /* 0 = never */
    uint64_t uptime_ms;        /* of the current link; 0 if none */
    uint32_t heartbeats_missed;
    uint64_t messages_sent, messages_received, bytes_sent, bytes_received;
    uint32_t reconnects;       /* dials after the first */
    uint32_t failures;         /* consecutive */
    enum sc_reason last_reason;
    uint64_t next_attempt_in_ms; /* RECONNECTING/FAILED: time left; 0 otherwise */
};

/* The seed's status, plus secirc's. */
struct sc_manager_status {
    uint32_t total_connections;   /* paths known (configured and inbound) */
    uint32_t active_connections;  /* authenticated paths */
    uint32_t failed_connections;  /* paths in FAILED */
    uint32_t connected_peers;     /* what min/max_connections count */
    uint32_t dials_in_flight;
    uint64_t total_messages_sent, total_messages_received;
    uint64_t total_bytes_sent, total_bytes_received;
    uint64_t messages_undelivered;
    uint64_t evictions, duplicates_closed;
    uint64_t rekeys;              /* Noise rekeys sent, all links */
    uint64_t key_rotations;       /* link keys replaced */
    uint16_t tcp_port;            /* the first listener's port (useful with port 0) */
    uint32_t listeners;
};

/* Why a peer is or is not linked right now (sc_manager_explain). */
enum sc_explain_verdict {
    SC_EXPLAIN_LINKED,            /* via path_id since since_unix */
    SC_EXPLAIN_CONNECTING,        /* a dial or handshake is in flight */
    SC_EXPLAIN_BACKING_OFF,       /* until until_unix after `failures` failures (last_reason) */
    SC_EXPLAIN_FAILED,            /* retried after until_unix (or never: transport unavailable) */
    SC_EXPLAIN_REFUSED_BUSY,      /* the peer answered busy; retried after until_unix */
    SC_EXPLAIN_EVICTED,           /* by peer `other` of priority other_priority */
    SC_EXPLAIN_LIMIT_REACHED,     /* max_connections peers of higher or equal priority are linked */
    SC_EXPLAIN_TRANSPORT_UNAVAILABLE,
    SC_EXPLAIN_WAITING,           /* a candidate; the next look comes at the reconnect interval */
    SC_EXPLAIN_UNKNOWN_PEER,      /* neither configured nor seen */
};
const char *sc_explain_verdict_name(enum sc_explain_verdict v);

struct sc_explain {
    enum sc_explain_verdict verdict;
    uint32_t path_id;
    enum sc_path_type type;
    uint64_t since_unix, until_unix;
    uint32_t failures;
    enum sc_reason last_reason;
    uint8_t other[SC_RELAY_ID_BYTES];
    uint8_t other_priority;
    uint8_t priority;
    char text[256]; /* one human sentence */
};

struct sc_manager_callbacks {
    /* A relay message from `peer` arrived on path_id. */
    void (*on_message)(struct sc_manager *m, const uint8_t peer[SC_RELAY_ID_BYTES],
                       uint32_t path_id, const struct sc_relay_message *msg, void *arg);
    /* A path changed state (info is the new state), with the reason. */
    void (*on_path_state)(struct sc_manager *m, const struct sc_path_info *info,
                          enum sc_path_state old, enum sc_reason reason, void *arg);
    /* A message could not be delivered: its link died before it left and no
     * other path of the peer took it. */
    void (*on_undelivered)(struct sc_manager *m, const uint8_t peer[SC_RELAY_ID_BYTES],
                           const uint8_t msg_id[SC_MESSAGE_ID_BYTES], enum sc_reason reason,
                           void *arg);
    /* A heartbeat round trip on path_id (µs), e.g. for a latency histogram.
     * May be NULL. */
    void (*on_rtt)(struct sc_manager *m, uint32_t path_id, uint32_t rtt_us, void *arg);
    /* A trust-on-first-use path learned its relay ID (pin it). */
    void (*on_pinned)(struct sc_manager *m, uint32_t path_id, const uint8_t id[SC_RELAY_ID_BYTES],
                      void *arg);
    /* sc_manager_stop finished: every link is closed. */
    void (*on_stopped)(struct sc_manager *m, void *arg);
};

/* `identity` is borrowed and must outlive the manager. Nothing runs until
 * sc_manager_start. SC_EINVAL for a configuration out of range, or a
 * listener whose transport is not enabled (an `onion` listener needs
 * enable_tor; websocket ones enable_websocket). */
int sc_manager_new(struct event_base *base, const struct sc_manager_config *cfg,
                   const struct sc_identity *identity, const struct sc_manager_callbacks *cb,
                   void *arg, struct sc_manager **out) SC_MUST_CHECK;
/* Opens the listeners and starts dialing. */
int sc_manager_start(struct sc_manager *m) SC_MUST_CHECK;
/* Orderly stop: no new links; every link is closed with `shutdown`
 * (queued messages first); on_stopped fires once all are closed (bounded by
 * the link close limits). */
void sc_manager_stop(struct sc_manager *m);
/* Frees everything at once (links still up are torn down). NULL is fine.
 * The sockets of its ended links may still linger for the peers' FIN: the
 * owner of the event_base, once the loop has ended and the managers and its
 * own events are freed, calls sc_link_finish_lingering(base) before
 * event_base_free() (the base may carry several managers). */
void sc_manager_free(struct sc_manager *m);

/* Replaces limits and timers at run time (listeners, identity and keys are
 * kept; links stay up). Over max_connections, the weakest peers are closed
 * one at a time as policy allows. */
int sc_manager_set_config(struct sc_manager *m, const struct sc_manager_config *cfg) SC_MUST_CHECK;

int sc_manager_add_relay(struct sc_manager *m, const struct sc_relay_spec *spec,
                         uint32_t *path_id) SC_MUST_CHECK;
/* Removes one path (its link closes with local_close). */
int sc_manager_remove_path(struct sc_manager *m, uint32_t path_id) SC_MUST_CHECK;
/* Removes every path of a peer. */
int sc_manager_remove_relay(struct sc_manager *m, const uint8_t id[SC_RELAY_ID_BYTES]) SC_MUST_CHECK;
/* Closes the peer's links now (local_close) without forgetting it; its
 * paths back off as after any failure. */
int sc_manager_disconnect(struct sc_manager *m, const uint8_t id[SC_RELAY_ID_BYTES]) SC_MUST_CHECK;
/* Dials the peer's paths now, ignoring backoff. */
int sc_manager_connect(struct sc_manager *m, const uint8_t id[SC_RELAY_ID_BYTES]) SC_MUST_CHECK;

/* Sends one message to `peer` over its best authenticated path (lowest
 * latency weighted by queue depth, then transport preference). A random
 * message ID goes out in msg_id (may be NULL). SC_ENOENT: peer not linked;
 * SC_EAGAIN: every path's queue is full; SC_ETOOBIG. */
int sc_manager_send(struct sc_manager *m, const uint8_t peer[SC_RELAY_ID_BYTES],
                    const void *payload, size_t len, uint8_t msg_id[SC_MESSAGE_ID_BYTES]) SC_MUST_CHECK;
/* The same with a given ID, hop limit and flags (mesh forwarding). */
int sc_manager_send_message(struct sc_manager *m, const uint8_t peer[SC_RELAY_ID_BYTES],
                            const uint8_t msg_id[SC_MESSAGE_ID_BYTES], uint8_t hop_limit,
                            uint8_t flags, const void *payload, size_t len) SC_MUST_CHECK;
/* Sends one copy to every linked peer but `exclude` (may be NULL); returns
 * how many peers it went to (or a negative SC_E* code). */
int sc_manager_broadcast(struct sc_manager *m, const uint8_t msg_id[SC_MESSAGE_ID_BYTES],
                         uint8_t hop_limit, uint8_t flags, const void *payload, size_t len,
                         const uint8_t *exclude) SC_MUST_CHECK;

void sc_manager_get_status(const struct sc_manager *m, struct sc_manager_status *out);
/* The listeners' counters, summed (refusals, handshakes by outcome, …). */
void sc_manager_listener_stats(const struct sc_manager *m, struct sc_listener_stats *out);
/* The port of listener i (in configuration order), or 0. */
uint16_t sc_manager_listener_port(const struct sc_manager *m, size_t i);
/* Fills up to `cap` paths; returns how many exist. */
size_t sc_manager_paths(const struct sc_manager *m, struct sc_path_info *out, size_t cap);
int sc_manager_path_info(const struct sc_manager *m, uint32_t path_id,
                         struct sc_path_info *out) SC_MUST_CHECK;
void sc_manager_explain(const struct sc_manager *m, const uint8_t peer[SC_RELAY_ID_BYTES],
                        struct sc_explain *out);
/* A new link key now (the old one stays valid for links already up). */
int sc_manager_rotate_link_key(struct sc_manager *m) SC_MUST_CHECK;
/* Our relay ID. */
const uint8_t *sc_manager_relay_id(const struct sc_manager *m);

#endif
