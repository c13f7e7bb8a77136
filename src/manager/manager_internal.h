/* manager/manager_internal.h — the connection manager's inside, shared by
 * manager.c (life cycle, peers and paths), manager_dial.c (what to dial
 * and when), manager_link.c (links: inbound admission, duplicates,
 * eviction, failover) and manager_status.c (sending, status, explain).
 * Owns policy only: the mechanics are the link's and the listener's. */
#ifndef SC_MANAGER_INTERNAL_H
#define SC_MANAGER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "link/link_stream.h"
#include "secirc/listener.h"
#include "secirc/manager.h"
#include "transport/http_connect.h"
#include "transport/socks5.h"
#include "transport/tls.h"
#include "transport/websocket.h"
#include "transport/socks5_proto.h"
#include "util/ratelimit.h"

#define SC_MANAGER_LISTENERS_MAX 8u
#define SC_MANAGER_HOST_MAX 256u
/* How long a link whose liveness is in doubt (another link from the same
 * peer came up) has to answer a PING before it counts as half-open and
 * closes (manager_link.c). */
#define SC_MANAGER_PROBE_MS 2000u

struct mpath;
struct mlink;

/* A relay identity. */
struct mpeer {
    struct sc_manager *m;
    struct mpeer *next;
    uint8_t id[SC_RELAY_ID_BYTES];
    char hex[17];
    uint8_t priority;         /* the highest of its paths; untrusted for unknown inbound */
    bool configured;          /* has configured paths (kept when it has none linked) */
    uint32_t links;           /* authenticated links */
    uint64_t linked_ms;       /* monotonic: when the first of them came up (grace) */
    uint64_t linked_unix;
    uint64_t busy_until_ms;   /* it answered busy: not before */
    uint64_t busy_until_unix;
    bool evicted;
    uint8_t evicted_by[SC_RELAY_ID_BYTES];
    uint8_t evicted_by_priority;
    uint64_t evicted_unix;
    struct mlink *pending;    /* lost the tie-break; waits for the winners' probe */
    struct event *probe_ev;
};

/* One transport endpoint of a peer: configured (outbound) or an inbound
 * link (transient: removed when its link ends). */
struct mpath {
    struct sc_manager *m;
    struct mpath *next;
    struct mpeer *peer;       /* NULL for a trust-on-first-use path not yet seen */
    uint32_t id;
    bool inbound;
    struct sc_relay_spec spec; /* host is our copy */
    char host[SC_MANAGER_HOST_MAX];
    enum sc_path_state state;
    enum sc_reason last_reason;
    struct sc_backoff backoff;
    uint32_t failures;        /* consecutive */
    uint32_t attempts;
    uint64_t next_ms, next_unix; /* RECONNECTING / FAILED: not before */
    bool never_retry;         /* transport unavailable, or a permanent refusal */
    struct event *timer;      /* the one timer of this path */
    struct sc_dial *dial;
    struct mlink *link;       /* the current link, if any */
    uint32_t generation;      /* bumped by every attempt; checked by callbacks */
    uint64_t attempt_ms;      /* when the current attempt started */
    /* A Tor path's SOCKS request while its dial runs (the layer reads it
     * when the proxy connects): the target and per-peer isolation. */
    struct sc_socks5_params socks;
    struct sc_socks5_isolation isolation;
    /* A websocket path's upgrade and its proxy (spec.ws_path points into ws_path). */
    char ws_path[SC_MANAGER_HOST_MAX];
    struct sc_ws_params ws;
    bool has_proxy;
    struct sc_http_proxy proxy;
    struct sc_http_connect_params tunnel;
    struct sc_tls_params tls;
    uint64_t auth_ms;         /* when its current link authenticated */
    /* Counters of the links that ended on this path. */
    uint64_t messages_sent, messages_received, bytes_sent, bytes_received;
};

/* The manager's context of one sc_link. */
struct mlink {
    struct sc_manager *m;
    struct mlink *next;
    struct mpath *path;       /* NULL once detached from its path */
    struct mpeer *peer;       /* once authenticated */
    struct sc_link *link;
    uint32_t generation;
    bool inbound;
    bool authenticated;
    bool counted;             /* counted in peer->links */
    bool probed;              /* a PING is out to check it is alive */
    bool doomed;              /* lost the tie-break: closes once the probe tells how */
    enum sc_reason end_reason; /* set when the manager itself closes it */
};

struct sc_manager {
    struct event_base *base;
    struct evdns_base *dns;
    struct sc_manager_config cfg;
    struct sc_listen_spec listen[SC_MANAGER_LISTENERS_MAX];
    char *listen_addr[SC_MANAGER_LISTENERS_MAX];
    char *listen_path[SC_MANAGER_LISTENERS_MAX];
    struct sc_ws_params listen_ws[SC_MANAGER_LISTENERS_MAX]; /* websocket listeners' layer */
    struct sc_tls_params listen_tls; /* every TLS listener's: the server context */
    SSL_CTX *tls_client;             /* every TLS dial's */
    char **origins; /* cfg.websocket_origins points here */
    const struct sc_identity *identity;
    struct sc_link_key *link_key;
    struct sc_manager_callbacks cb;
    void *cb_arg;
    struct sc_listener *listeners[SC_MANAGER_LISTENERS_MAX];
    size_t nlisteners;
    struct mpeer *peers;
    struct mpath *paths;
    struct mlink *links;
    uint32_t next_path_id;
    struct event *schedule_ev; /* deferred: look at candidates now */
    struct event *tick_ev;     /* every reconnect_interval */
    struct event *rotate_ev;
    struct event *stopped_ev;
    bool started, stopping, stopped_reported;
    uint64_t messages_sent, messages_received, bytes_sent, bytes_received; /* of ended links */
    uint64_t rekeys; /* of ended links */
    uint64_t key_rotations;
    uint64_t undelivered, evictions, duplicates;
    /* The local tor: its SOCKS address (cfg.tor_socks_host points here);
     * while its port refuses, Tor paths wait for tor_retry_ms together
     * instead of each failing on its own (one backoff for all), and then
     * one of them tries alone until tor answers (tor_down). */
    char tor_socks_host[SC_MANAGER_HOST_MAX];
    struct sc_backoff tor_backoff;
    uint64_t tor_retry_ms, tor_retry_unix;
    bool tor_down;
};

/* manager.c */
struct mpeer *sc_mgr_peer_find(const struct sc_manager *m, const uint8_t id[SC_RELAY_ID_BYTES]);
struct mpeer *sc_mgr_peer_get(struct sc_manager *m, const uint8_t id[SC_RELAY_ID_BYTES]);
void sc_mgr_peer_forget_if_unused(struct sc_manager *m, struct mpeer *p);
void sc_mgr_peer_configured(struct sc_manager *m, struct mpeer *peer);
struct mpath *sc_mgr_path_find(const struct sc_manager *m, uint32_t id);
void sc_mgr_path_set_state(struct mpath *p, enum sc_path_state next, enum sc_reason reason);
void sc_mgr_path_free(struct mpath *p);
uint32_t sc_mgr_connected_peers(const struct sc_manager *m);
void sc_mgr_check_stopped(struct sc_manager *m);
void sc_mgr_link_config(const struct sc_manager *m, struct sc_link_config *lc);

/* manager_dial.c */
void sc_mgr_schedule(struct sc_manager *m);          /* soon, from the loop */
void sc_mgr_schedule_now(struct sc_manager *m);
void sc_mgr_dial(struct mpath *p);
/* The path's attempt ended without a link (or its link ended). */
void sc_mgr_path_failed(struct mpath *p, enum sc_reason reason, bool was_healthy);
void sc_mgr_arm_path_timer(struct mpath *p);
uint32_t sc_mgr_dials_in_flight(const struct sc_manager *m);
bool sc_mgr_transport_available(const struct sc_manager *m, enum sc_path_type t);

/* manager_link.c */
const struct sc_link_callbacks *sc_mgr_link_callbacks(void);
struct mlink *sc_mgr_mlink_new(struct sc_manager *m, struct mpath *p, bool inbound);
void sc_mgr_attach(struct mlink *ml, struct mpeer *peer);
enum sc_reason sc_mgr_policy(struct sc_link *link, const uint8_t peer_id[SC_RELAY_ID_BYTES],
                             struct sc_accept_info *info, void *arg);
void sc_mgr_on_inbound(struct sc_listener *l, struct sc_link *link, void *arg);
void sc_mgr_close_link(struct mlink *ml, enum sc_reason reason);
struct mpeer *sc_mgr_weakest_evictable(const struct sc_manager *m, uint64_t now_ms);
void sc_mgr_evict(struct sc_manager *m, struct mpeer *victim, const struct mpeer *by);

/* manager_status.c */
void sc_mgr_path_info(const struct mpath *p, struct sc_path_info *out);

#endif
