/* relay/daemon_services.c — the daemon's local services: the control
 * socket (relay/control.c) and the HTTP status server (relay/http.c),
 * started after the manager and stopped before it. A service that is
 * configured but cannot start stops the daemon from starting. */
#include <stdio.h>

#include "relay/control.h"
#include "relay/daemon_internal.h"
#include "relay/http.h"

int sc_daemon_services_start(struct sc_daemon *d)
{
    const char *socket_path = d->cfg->control.socket;
    if (socket_path != NULL) { /* control.socket "": no control socket */
        char err[768];
        d->control = sc_control_new(d, socket_path, err, sizeof err);
        if (!d->control) {
            fprintf(stderr, "secircd: %s; control.socket: \"\" runs without one\n", err);
            return SC_EIO;
        }
    }
    const struct sc_relay_config_http *hc = &d->cfg->http;
    if (hc->port != 0) { /* http.port 0: no status server */
        char err[512];
        d->http = sc_http_new(d, hc->bind, hc->port, err, sizeof err);
        if (!d->http) {
            fprintf(stderr, "secircd: %s; http.port: 0 runs without it\n", err);
            return SC_EIO;
        }
    }
    return 0;
}

void sc_daemon_services_stop(struct sc_daemon *d)
{
    sc_http_free(d->http);
    d->http = NULL;
    sc_control_free(d->control);
    d->control = NULL;
}

void sc_daemon_services_free(struct sc_daemon *d)
{
    sc_daemon_services_stop(d);
}
