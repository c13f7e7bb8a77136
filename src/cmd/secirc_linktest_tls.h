/* cmd/secirc_linktest_tls.h — `secirc link-test`'s TLS options (--tls and
 * friends): their getopt table entries, their usage text, and turning them
 * into a tls layer spec for the listener or the dialer. Argument handling
 * only; the layer itself is transport/tls.c. */
#ifndef SC_CMD_LINKTEST_TLS_H
#define SC_CMD_LINKTEST_TLS_H

#include <stdbool.h>
#include <stdio.h>

#include "transport/tls.h"

/* getopt_long values of the TLS options (above every other option). */
enum {
    SC_LINKTEST_TLS = 1000,
    SC_LINKTEST_TLS_CERT,
    SC_LINKTEST_TLS_KEY,
    SC_LINKTEST_TLS_SELF_SIGNED,
    SC_LINKTEST_TLS_MIN,
    SC_LINKTEST_TLS_MAX,
    SC_LINKTEST_TLS_VERIFY,
    SC_LINKTEST_TLS_CA,
    SC_LINKTEST_TLS_PIN,
    SC_LINKTEST_TLS_SNI,
    SC_LINKTEST_CHANNEL_BINDING,
    SC_LINKTEST_TLS_END,
};

#define SC_LINKTEST_TLS_OPTIONS                                           \
    {"tls", no_argument, 0, SC_LINKTEST_TLS},                                  \
    {"tls-cert", required_argument, 0, SC_LINKTEST_TLS_CERT},                  \
    {"tls-key", required_argument, 0, SC_LINKTEST_TLS_KEY},                    \
    {"tls-self-signed", required_argument, 0, SC_LINKTEST_TLS_SELF_SIGNED},    \
    {"tls-min", required_argument, 0, SC_LINKTEST_TLS_MIN},                    \
    {"tls-max", required_argument, 0, SC_LINKTEST_TLS_MAX},                    \
    {"tls-verify", required_argument, 0, SC_LINKTEST_TLS_VERIFY},              \
    {"tls-ca", required_argument, 0, SC_LINKTEST_TLS_CA},                      \
    {"tls-pin", required_argument, 0, SC_LINKTEST_TLS_PIN},                    \
    {"tls-sni", required_argument, 0, SC_LINKTEST_TLS_SNI},                    \
    {"channel-binding", required_argument, 0, SC_LINKTEST_CHANNEL_BINDING}

#define SC_LINKTEST_TLS_USAGE                                                                          \
    "tls options (both sides use --tls):\n"                                                   \
    "  --tls                      a tls layer on top of tcp (and of --layer, if any)\n"       \
    "  --tls-min 1.2|1.3          oldest TLS version accepted (default 1.3)\n"                \
    "  --tls-max 1.2|1.3          newest TLS version offered (default 1.3)\n"                 \
    "  listen: --tls-cert FILE --tls-key FILE   certificate chain and key (PEM)\n"            \
    "  listen: --tls-self-signed DIR   use DIR/cert.pem and DIR/key.pem, made (P-256,\n"      \
    "                             key 0600) when neither exists; prints the pin\n"            \
    "  connect: --tls-verify none|ca   check the server certificate (default none:\n"         \
    "                             the Noise handshake authenticates the relay)\n"             \
    "  connect: --tls-ca FILE     CA certificates for --tls-verify ca (host name checked)\n"  \
    "  connect: --tls-pin sha256//BASE64   server key pin; repeatable (one must match)\n"    \
    "  connect: --tls-sni NAME    server name sent (default: --host, unless an address)\n"    \
    "  connect: --channel-binding require|off   bind the link to the TLS session\n"           \
    "                             (ALPN secirc/1+cb; default require) or not (secirc/1)\n"

struct sc_linktest_tls {
    bool on;
    const char *cert, *key, *self_signed_dir, *ca, *sni;
    int min_version, max_version;
    enum sc_tls_verify verify;
    bool no_binding;
    struct sc_tls_params params;
    char made_cert[512], made_key[512];
};

/* One TLS option (SC_LINKTEST_TLS..SC_LINKTEST_TLS_END - 1); 0, or 2 after a message on stderr. */
int sc_linktest_tls_option(struct sc_linktest_tls *t, int opt, const char *arg);
/* When --tls was given: builds the context (the certificate, key, CA file
 * read now, each error named on stderr) and the layer spec for `listen`ing
 * or dialing `host`. 0, 1 (a file or key problem) or 2 (usage). */
int sc_linktest_tls_setup(struct sc_linktest_tls *t, bool listen, const char *host, const char *address,
                 struct sc_layer_spec *out);
void sc_linktest_tls_free(struct sc_linktest_tls *t);

#endif
