/* cmd/secirc_linktest_socks5.c — `secirc link-test connect --socks5
 * HOST:PORT`: parses the proxy address and credentials and builds the socks5
 * layer spec (stream isolation credentials on request). Argument handling
 * only: it never resolves the target, and never prints a password. */
#include "cmd/secirc_linktest_socks5.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "host:port", "[v6]:port"; 0 or 2. */
static int parse_proxy(struct sc_linktest_socks5 *x, const char *arg)
{
    const char *host = arg, *colon;
    size_t hlen;
    if (arg[0] == '[') {
        const char *end = strchr(arg, ']');
        if (!end || end[1] != ':')
            goto bad;
        host = arg + 1;
        hlen = (size_t)(end - host);
        colon = end + 1;
    } else {
        colon = strrchr(arg, ':');
        if (!colon || strchr(arg, ':') != colon)
            goto bad;
        hlen = (size_t)(colon - arg);
    }
    if (hlen == 0 || hlen >= sizeof x->proxy_host)
        goto bad;
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port == 0 || port > 65535 || colon[1] == '-')
        goto bad;
    memcpy(x->proxy_host, host, hlen);
    x->proxy_host[hlen] = '\0';
    x->proxy_port = (uint16_t)port;
    x->on = true;
    return 0;
bad:
    fprintf(stderr, "secirc link-test: --socks5 needs HOST:PORT (port 1..65535; [ADDR]:PORT for "
                    "IPv6), not '%s'\n", arg);
    return 2;
}

int sc_linktest_socks5_option(struct sc_linktest_socks5 *x, int opt, const char *arg)
{
    switch (opt) {
    case SC_LINKTEST_SOCKS5:
        return parse_proxy(x, arg);
    case SC_LINKTEST_SOCKS5_USER:
        x->user = arg;
        return 0;
    case SC_LINKTEST_SOCKS5_PASSWORD:
        x->password = arg;
        return 0;
    case SC_LINKTEST_SOCKS5_ISOLATE:
        x->isolate = true;
        return 0;
    default:
        return 2;
    }
}

int sc_linktest_socks5_setup(struct sc_linktest_socks5 *x, bool listen, const char *host,
                             uint16_t port, const char *expect_hex, struct sc_layer_spec *out)
{
    if (!x->on) {
        if (x->user || x->password || x->isolate) {
            fprintf(stderr, "secirc link-test: --socks5-user/--socks5-password/--socks5-isolate "
                            "need --socks5\n");
            return 2;
        }
        return 0;
    }
    if (listen) {
        fprintf(stderr, "secirc link-test: --socks5 is for connect only\n");
        return 2;
    }
    if (!x->user != !x->password) {
        fprintf(stderr, "secirc link-test: --socks5-user and --socks5-password go together\n");
        return 2;
    }
    if (x->isolate && x->user) {
        fprintf(stderr, "secirc link-test: --socks5-isolate makes its own credentials: not with "
                        "--socks5-user\n");
        return 2;
    }
    x->params = (struct sc_socks5_params){.host = host, .port = port};
    if (x->isolate) {
        char key[320];
        if (expect_hex)
            snprintf(key, sizeof key, "%s", expect_hex);
        else
            snprintf(key, sizeof key, "%s:%u", host, port);
        if (sc_socks5_isolation_creds(key, &x->iso) != 0) {
            fprintf(stderr, "secirc link-test: cannot derive isolation credentials\n");
            return 2;
        }
        x->params.username = x->iso.username;
        x->params.password = x->iso.password;
    } else {
        x->params.username = x->user;
        x->params.password = x->password;
    }
    out->ops = &sc_layer_socks5;
    out->params = &x->params;
    return 0;
}
