/* relay/daemon_services.c — the daemon's local services: the control
 * socket (relay/control.c) and the HTTP status server (relay/http.c),
 * started after the manager and stopped before it. */
#include "relay/daemon_internal.h"

int sc_daemon_services_start(struct sc_daemon *d)
{
    (void)d;
    return 0;
}

void sc_daemon_services_stop(struct sc_daemon *d) { (void)d; }

void sc_daemon_services_free(struct sc_daemon *d) { (void)d; }
