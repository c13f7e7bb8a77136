/* fuzz/fuzz_config.c — libFuzzer target for the relay configuration parser
 * (sc_relay_config_parse, docs/CONFIG.md) on arbitrary bytes from memory.
 * Pure: the parse never touches the file system. Any input must give either
 * a configuration whose values keep their documented invariants, or one
 * error line "fuzz.yaml:LINE:COL: message"; never a crash, a leak or a hang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *p)
{
    if (p != NULL && p[0] != '/')
        abort();
}

static void check_config(const struct sc_relay_config *cfg)
{
    const struct sc_relay_config_manager *m = &cfg->manager;
    if (m->min_connections > m->max_connections || m->backoff_max_s < m->retry_delay_s ||
        m->max_connections > m->max_links || m->max_message_bytes > 65497u ||
        (!m->enable_tcp && !m->enable_tor && !m->enable_websocket))
        abort();
    check_path(m->ssl_cert_path);
    check_path(m->ssl_key_path);
    check_path(cfg->identity.key_file);
    check_path(cfg->identity.data_dir);
    check_path(cfg->tor.onion_key_file);
    check_path(cfg->tls.ca_file);
    check_path(cfg->control.socket);
    if (cfg->identity.key_file == NULL || cfg->http.bind == NULL || cfg->websocket.path == NULL ||
        cfg->websocket.path[0] != '/' || cfg->n_listeners > SC_RELAY_CONFIG_MAX_LISTENERS ||
        cfg->n_relays > SC_RELAY_CONFIG_MAX_RELAYS)
        abort();
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct sc_relay_config_listener *l = &cfg->listeners[i];
        if (l->address == NULL || l->type == SC_RELAY_TRANSPORT_TOR ||
            (l->type == SC_RELAY_TRANSPORT_WEBSOCKET) != (l->path != NULL))
            abort();
    }
    for (size_t i = 0; i < cfg->n_relays; i++) {
        const struct sc_relay_config_relay *r = &cfg->relays[i];
        if (r->host == NULL || r->host[0] == '\0' || r->port == 0 || r->priority < 2 ||
            r->priority > 10 || r->priority % 2 != 0 ||
            (r->type == SC_RELAY_TRANSPORT_WEBSOCKET) != (r->path != NULL) ||
            (r->has_tls_pin && !r->ssl_enabled) || r->pos.line == 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sc_relay_config *cfg = NULL;
    char err[512];
    memset(err, 'x', sizeof err);
    int rc = sc_relay_config_parse((const char *)data, size, "fuzz.yaml", "/nonexistent/secirc",
                                   &cfg, err, sizeof err);
    if (rc == 0) {
        if (cfg == NULL)
            abort();
        check_config(cfg);
        sc_relay_config_free(cfg);
        return 0;
    }
    /* refused: no config, a known code, one terminated line naming the input */
    if (cfg != NULL || rc > 0 || memchr(err, '\0', sizeof err) == NULL ||
        strncmp(err, "fuzz.yaml:", 10) != 0 || strchr(err, '\n') != NULL)
        abort();
    return 0;
}
