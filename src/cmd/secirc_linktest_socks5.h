/* cmd/secirc_linktest_socks5.h — `secirc link-test connect`'s SOCKS5
 * options (--socks5 and friends): their getopt table entries, their usage
 * text, and turning them into the dial's first hop and a socks5 layer spec.
 * Argument handling only; the layer itself is transport/socks5.c. */
#ifndef SC_CMD_LINKTEST_SOCKS5_H
#define SC_CMD_LINKTEST_SOCKS5_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/socks5.h"
#include "transport/socks5_proto.h"

/* getopt_long values of the SOCKS5 options (above every other option). */
enum {
    SC_LINKTEST_SOCKS5 = 1100,
    SC_LINKTEST_SOCKS5_USER,
    SC_LINKTEST_SOCKS5_PASSWORD,
    SC_LINKTEST_SOCKS5_ISOLATE,
    SC_LINKTEST_SOCKS5_END,
};

#define SC_LINKTEST_SOCKS5_OPTIONS                                              \
    {"socks5", required_argument, 0, SC_LINKTEST_SOCKS5},                        \
    {"socks5-user", required_argument, 0, SC_LINKTEST_SOCKS5_USER},              \
    {"socks5-password", required_argument, 0, SC_LINKTEST_SOCKS5_PASSWORD},      \
    {"socks5-isolate", no_argument, 0, SC_LINKTEST_SOCKS5_ISOLATE}

#define SC_LINKTEST_SOCKS5_USAGE                                                              \
    "socks5 options (connect only):\n"                                                        \
    "  --socks5 HOST:PORT         connect through this SOCKS5 proxy (e.g. tor's\n"            \
    "                             127.0.0.1:9050; [::1]:9050 for IPv6); --host/--port\n"      \
    "                             then name the target, which the proxy resolves:\n"          \
    "                             no DNS query for it leaves this host\n"                     \
    "  --socks5-user U --socks5-password P   RFC 1929 credentials (both or neither)\n"        \
    "  --socks5-isolate           Tor stream isolation credentials for this target\n"         \
    "                             (from --expect ID, or else HOST:PORT)\n"

struct sc_linktest_socks5 {
    bool on;
    char proxy_host[256];
    uint16_t proxy_port;
    const char *user, *password;
    bool isolate;
    struct sc_socks5_isolation iso;
    struct sc_socks5_params params;
    struct sc_layer_spec layer;
};

/* One SOCKS5 option (SC_LINKTEST_SOCKS5..SC_LINKTEST_SOCKS5_END - 1); 0, or 2 after a message
 * on stderr. */
int sc_linktest_socks5_option(struct sc_linktest_socks5 *x, int opt, const char *arg);
/* After parsing: checks the options go together (connect only; credentials
 * both or neither, not with --socks5-isolate) and, when --socks5 was given,
 * fills the socks5 layer spec for target host:port; the isolation key is
 * `expect_hex` (the expected relay ID) when not NULL, else "host:port".
 * 0, or 2 after a message on stderr. */
int sc_linktest_socks5_setup(struct sc_linktest_socks5 *x, bool listen, const char *host,
                             uint16_t port, const char *expect_hex, struct sc_layer_spec *out);

#endif
