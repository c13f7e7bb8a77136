/* cmd/secirc_linktest.h — the inside of `secirc link-test`, shared by
 * secirc_linktest.c (events, links, commands, main) and
 * secirc_linktest_opts.c (the options). Not a library interface. */
#ifndef SC_CMD_LINKTEST_H
#define SC_CMD_LINKTEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cmd/secirc_linktest_socks5.h"
#include "cmd/secirc_linktest_tls.h"
#include "cmd/secirc_linktest_ws.h"
#include "secirc/identity.h"
#include "secirc/link.h"
#include "secirc/listener.h"
#include "transport/transport.h"

#define MAX_LINKS 4096
#define MAX_TRUSTED 16

struct app {
    struct event_base *base;
    struct evdns_base *dns;
    struct sc_identity *identity;
    struct sc_link_key *link_key, *old_link_key;
    struct sc_listener *listener;
    struct sc_listener_config lcfg;
    struct sc_dial *dial;
    struct sc_link *links[MAX_LINKS]; /* every link started here or handed over */
    size_t nlinks;
    struct sc_link_config lc;
    bool listen_mode;
    const char *host, *source;
    uint16_t port;
    struct sc_layer_spec layer;
    bool has_layer;
    struct sc_linktest_socks5 socks5; /* --socks5: tcp to the proxy, then a socks5 layer */
    struct sc_linktest_ws ws; /* --ws...: websocket on top; --http-proxy: http_connect below */
    struct sc_linktest_tls tls; /* --tls: a tls layer above tcp (and --layer) */
    struct event *stdin_ev, *sigint_ev, *sigterm_ev, *rotate_ev, *quit_ev;
    struct evbuffer *stdin_buf;
    enum sc_reason reject;
    uint8_t trusted[MAX_TRUSTED][SC_RELAY_ID_BYTES];
    size_t ntrusted;
    uint32_t rotate_ms;
    bool echo, quiet, exit_when_done, quitting;
    int exit_status;
    /* bulk transfer */
    uint64_t send_count, sent, recv_check, received, recv_bytes;
    uint32_t send_size;
    bool verify_failed;
    uint64_t first_recv_us, last_recv_us, send_start_us;
    struct sc_link *bulk_link;
};

struct cli_paths {
    const char *key_path, *expect, *address;
    uint64_t fd_limit;
    int log_level;
};

void sc_linktest_usage(FILE *f);
/* Parses argv into the app; 0, or the exit status (-1: --help printed). */
int sc_linktest_parse_options(struct app *a, struct cli_paths *p, int argc, char **argv);

#endif
