/* relay/daemon_internal.h — the daemon's inside, shared by daemon.c (life
 * cycle, mesh, events), daemon_ops.c (what the control socket and HTTP
 * server ask for) and daemon_services.c (starting and stopping those two).
 * Nothing outside src/relay includes this. */
#ifndef SC_RELAY_DAEMON_INTERNAL_H
#define SC_RELAY_DAEMON_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "relay/daemon.h"
#include "relay/mesh.h"
#include "relay/pins.h"
#include "util/log.h"

#define SC_DAEMON_LISTENERS_MAX 8u

/* A configured relay and the manager path it became. */
struct rpath {
    uint32_t path_id;
    enum sc_relay_transport type;
    char host[256];
    uint16_t port;
    bool configured_id;
    uint8_t id[SC_RELAY_ID_BYTES];
};

struct subscriber {
    struct subscriber *next;
    uint64_t handle;
    sc_daemon_event_cb cb; /* NULL: unsubscribed while an event went round */
    void *arg;
};

struct sc_control;
struct sc_http;
struct sc_tor_control;

struct sc_daemon {
    struct event_base *base;
    char *config_path; /* NULL: the embedded default */
    struct sc_relay_config *cfg;
    struct sc_identity *identity;
    struct sc_manager *m;
    struct sc_dedup *dedup;
    struct sc_pins *pins;
    struct rpath *rpaths; /* SC_RELAY_CONFIG_MAX_RELAYS slots */
    size_t n_rpaths;
    struct event *sigterm, *sigint, *sighup, *stop_timer;
    struct subscriber *subs;
    uint64_t next_handle;
    bool publishing;
    struct sc_daemon_metrics metrics;
    struct sc_log_ratelimit invalid_rl;
    uint64_t started_unix;
    bool stopping;
    struct sc_control *control;
    struct sc_http *http;
    struct sc_tor_control *tor;  /* our onion service, with tor.control_port */
    size_t onion_listener;       /* its listener's index in the manager */
};

void sc_daemon_manager_config(const struct sc_relay_config *cfg, struct sc_manager_config *mc,
                              struct sc_listen_spec *listen);

/* daemon_services.c: the control socket and the HTTP server. */
int sc_daemon_services_start(struct sc_daemon *d) SC_MUST_CHECK;
void sc_daemon_services_stop(struct sc_daemon *d);
void sc_daemon_services_free(struct sc_daemon *d);

#endif
