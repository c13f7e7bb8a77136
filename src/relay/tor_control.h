/* relay/tor_control.h — our own onion service through tor's control port:
 * PROTOCOLINFO, then AUTHENTICATE (password, SAFECOOKIE or COOKIE), then
 * ADD_ONION with a persistent ED25519-V3 key kept mode 0600 (created by
 * tor the first time), so the .onion address survives restarts. The control
 * connection stays open (the service lives as long as it does); when tor
 * goes away it reconnects with a jittered backoff and adds the service
 * again. Never blocks, never logs a key. */
#ifndef SC_RELAY_TOR_CONTROL_H
#define SC_RELAY_TOR_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "secirc/error.h"

struct event_base;
struct evdns_base;
struct sc_tor_control;

struct sc_tor_control_config {
    const char *host;         /* tor's control address, an IP literal */
    uint16_t port;
    const char *password;     /* NULL: cookie authentication */
    const char *key_file;     /* where the onion service's private key lives */
    uint16_t virtual_port;    /* the port the .onion address offers */
    const char *target_host;  /* where tor sends those connections: our onion listener */
    uint16_t target_port;
};

/* Called on every change: published (address is the 62-character
 * "….onion"), or unavailable with a short reason (tor absent, refused
 * authentication, …). */
typedef void (*sc_tor_control_cb)(bool published, const char *address, const char *why, void *arg);

int sc_tor_control_new(struct event_base *base, const struct sc_tor_control_config *cfg,
                       sc_tor_control_cb cb, void *arg, struct sc_tor_control **out) SC_MUST_CHECK;
void sc_tor_control_free(struct sc_tor_control *t);
/* The published address ("….onion"), or NULL while not published. */
const char *sc_tor_control_address(const struct sc_tor_control *t);
/* "connecting", "authenticating", "adding", "published", "unavailable". */
const char *sc_tor_control_state(const struct sc_tor_control *t);

#endif
