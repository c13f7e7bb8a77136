/* cmd/secirc_linktest_tls.c — `secirc link-test`'s TLS options: parsing
 * them, reading the certificate, key and CA files (or making a self-signed
 * pair) with one clear message per problem, and the tls layer spec that
 * link-test stacks on tcp. Argument handling only; no protocol logic. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/secirc_linktest_tls.h"

static int usage_error(const char *option, const char *arg, const char *expect)
{
    fprintf(stderr, "secirc link-test: %s '%s': %s\n", option, arg, expect);
    return 2;
}

int sc_linktest_tls_option(struct sc_linktest_tls *t, int opt, const char *arg)
{
    switch (opt) {
    case SC_LINKTEST_TLS: t->on = true; break;
    case SC_LINKTEST_TLS_CERT: t->cert = arg; break;
    case SC_LINKTEST_TLS_KEY: t->key = arg; break;
    case SC_LINKTEST_TLS_SELF_SIGNED: t->self_signed_dir = arg; break;
    case SC_LINKTEST_TLS_MIN:
    case SC_LINKTEST_TLS_MAX: {
        int v = sc_tls_version_parse(arg);
        if (!v)
            return usage_error(opt == SC_LINKTEST_TLS_MIN ? "--tls-min" : "--tls-max", arg, "1.2 or 1.3");
        *(opt == SC_LINKTEST_TLS_MIN ? &t->min_version : &t->max_version) = v;
        break;
    }
    case SC_LINKTEST_TLS_VERIFY:
        if (strcmp(arg, "none") == 0)
            t->verify = SC_TLS_VERIFY_NONE;
        else if (strcmp(arg, "ca") == 0)
            t->verify = SC_TLS_VERIFY_CA;
        else
            return usage_error("--tls-verify", arg, "none or ca");
        break;
    case SC_LINKTEST_TLS_CA: t->ca = arg; break;
    case SC_LINKTEST_TLS_PIN:
        if (t->params.npins == SC_TLS_PINS_MAX)
            return usage_error("--tls-pin", arg, "at most 8 pins");
        if (sc_tls_pin_parse(arg, t->params.pins[t->params.npins]) != 0)
            return usage_error("--tls-pin", arg, "sha256// and the base64 of 32 bytes");
        t->params.npins++;
        break;
    case SC_LINKTEST_TLS_SNI: t->sni = arg; break;
    case SC_LINKTEST_CHANNEL_BINDING:
        if (strcmp(arg, "require") == 0)
            t->no_binding = false;
        else if (strcmp(arg, "off") == 0)
            t->no_binding = true;
        else
            return usage_error("--channel-binding", arg, "require or off");
        break;
    default:
        return 2;
    }
    return 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* DIR/cert.pem and DIR/key.pem: both there, or neither (then made). */
static int self_signed(struct sc_linktest_tls *t, const char *address)
{
    const char *d = t->self_signed_dir;
    snprintf(t->made_cert, sizeof t->made_cert, "%s/cert.pem", d);
    snprintf(t->made_key, sizeof t->made_key, "%s/key.pem", d);
    bool have_cert = exists(t->made_cert), have_key = exists(t->made_key);
    if (have_cert != have_key) {
        fprintf(stderr, "secirc link-test: %s has only one of cert.pem and key.pem\n", d);
        return 1;
    }
    if (!have_cert) {
        /* named after the listening address, so --tls-verify ca can check it */
        const char *cn = strcmp(address, "0.0.0.0") && strcmp(address, "::") ? address : "localhost";
        char err[512];
        if (sc_tls_self_signed(t->made_cert, t->made_key, cn, err, sizeof err) != 0) {
            fprintf(stderr, "secirc link-test: %s\n", err);
            return 1;
        }
    }
    t->cert = t->made_cert;
    t->key = t->made_key;
    return 0;
}

int sc_linktest_tls_setup(struct sc_linktest_tls *t, bool listen, const char *host,
                          const char *address, struct sc_layer_spec *out)
{
    if (!t->on)
        return 0;
    char err[512];
    int rc;
    if (listen) {
        if (t->self_signed_dir && !t->cert && !t->key && (rc = self_signed(t, address)) != 0)
            return rc;
        if (!t->cert || !t->key) {
            fprintf(stderr, "secirc link-test: listen --tls needs --tls-cert and --tls-key "
                            "(or --tls-self-signed DIR)\n");
            return 2;
        }
        rc = sc_tls_server_ctx_new(t->cert, t->key, t->min_version, &t->params.ctx, err, sizeof err);
    } else {
        if (t->verify == SC_TLS_VERIFY_CA && !t->ca) {
            fprintf(stderr, "secirc link-test: --tls-verify ca needs --tls-ca FILE\n");
            return 2;
        }
        rc = sc_tls_client_ctx_new(t->min_version, t->verify, t->ca, &t->params.ctx, err,
                                   sizeof err);
    }
    if (rc) {
        fprintf(stderr, "secirc link-test: %s (%s)\n", err, sc_err_name(rc));
        return 1;
    }
    if (t->max_version && sc_tls_ctx_set_max_version(t->params.ctx, t->max_version) != 0) {
        fprintf(stderr, "secirc link-test: --tls-max below --tls-min\n");
        return 2;
    }
    if (listen) {
        char pin[64];
        if (sc_tls_pin_from_cert_file(t->cert, pin, sizeof pin, err, sizeof err) == 0)
            printf("tls cert=%s pin=%s\n", t->cert, pin);
    } else {
        t->params.host = host;
        t->params.sni = t->sni;
        t->params.channel_binding = !t->no_binding;
    }
    out->ops = &sc_layer_tls;
    out->params = &t->params;
    return 0;
}

void sc_linktest_tls_free(struct sc_linktest_tls *t)
{
    SSL_CTX_free(t->params.ctx);
    t->params.ctx = NULL;
}
