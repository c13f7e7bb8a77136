/* transport/tls.c — the tls layer (transport/tls.h): an OpenSSL filter
 * bufferevent over the level below, the handshake as client or server
 * under the stream's deadline, ALPN and the channel-binding exporter, each
 * failure named (version, certificate, other), and close_notify queued
 * below on an orderly close. Never touches the socket, never frees the
 * level below, never decides anything about the link above. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "transport/tls.h"
#include "transport/tls_internal.h"
#include "util/log.h"

/* The first record a server waits for before it spends anything on TLS:
 * a handshake record (ClientHello) of at most 2^14 bytes. */
#define RECORD_HEADER_BYTES 5u
#define RECORD_MAX_BYTES 16384u
#define RECORD_HANDSHAKE 0x16u

/* Layer states:
 *   HELLO        server: waiting for the client's whole first record
 *     -> NEGOTIATING | FAILED
 *   NEGOTIATING  the TLS handshake runs in the OpenSSL filter
 *     -> READY (handed up) | FAILED (reported) */
enum tls_state { TLS_HELLO, TLS_NEGOTIATING, TLS_READY, TLS_FAILED };

struct tls_layer {
    struct sc_stream *stream;
    const struct sc_tls_params *params; /* only while negotiating */
    struct bufferevent *below;
    struct bufferevent *bev; /* the OpenSSL filter we hand up */
    SSL *ssl;
    enum tls_state state;
    bool server;
    bool bound;
    uint8_t binding[SC_TLS_BINDING_BYTES];
    char alpn[32];
};

/* ---- why a handshake failed --------------------------------------------------- */

static bool is_version_reason(int r)
{
    switch (r) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_WRONG_SSL_VERSION:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_UNSUPPORTED_SSL_VERSION:
        return true;
    default:
        return false;
    }
}

static bool is_cert_reason(int r)
{
    switch (r) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        return true;
    default:
        return false;
    }
}

/* Sorts a failed handshake into SC_ETLSVERSION, SC_ETLSCERT, SC_ECONNRESET
 * (the peer went away) or SC_ETLS, with a reason for people. */
static int classify(struct tls_layer *t, short what, char *why, size_t whylen)
{
    unsigned long errs[4];
    size_t n = 0;
    unsigned long e;
    while ((e = bufferevent_get_openssl_error(t->bev)) != 0)
        if (ERR_GET_LIB(e) != 0 && n < sizeof errs / sizeof errs[0])
            errs[n++] = e; /* OpenSSL errors; libevent also stores SSL_ERROR_* codes */
    ERR_clear_error();
    long vr = SSL_get_verify_result(t->ssl);
    if (!t->server && vr != X509_V_OK) {
        if (vr == X509_V_ERR_CERT_REJECTED && t->params && t->params->npins)
            snprintf(why, whylen, "the server's key matches no pin");
        else
            snprintf(why, whylen, "server certificate not verified: %s",
                     X509_verify_cert_error_string(vr));
        return SC_ETLSCERT;
    }
    /* libevent keeps the errors newest first; the oldest is the cause. */
    for (size_t i = n; i-- > 0;) {
        int r = ERR_GET_REASON(errs[i]);
        const char *text = ERR_reason_error_string(errs[i]);
        if (!text)
            text = "unknown";
        if (ERR_GET_LIB(errs[i]) == ERR_LIB_SSL && is_version_reason(r)) {
            snprintf(why, whylen, "no common protocol version (%s)", text);
            return SC_ETLSVERSION;
        }
        if (ERR_GET_LIB(errs[i]) == ERR_LIB_SSL && is_cert_reason(r)) {
            snprintf(why, whylen, "%s (%s)",
                     t->server ? "the client refused our certificate" : "certificate refused", text);
            return SC_ETLSCERT;
        }
    }
    if (n) {
        const char *text = ERR_reason_error_string(errs[n - 1]);
        snprintf(why, whylen, "handshake failed: %s", text ? text : "unknown");
        return SC_ETLS;
    }
    if (what & BEV_EVENT_EOF) {
        snprintf(why, whylen, "closed during the handshake");
        return SC_ECONNRESET;
    }
    snprintf(why, whylen, "connection error during the handshake");
    return SC_ECONNRESET;
}

static void fail(struct tls_layer *t, int err, const char *why)
{
    t->state = TLS_FAILED;
    if (t->bev)
        bufferevent_setcb(t->bev, NULL, NULL, NULL, NULL);
    else
        bufferevent_setcb(t->below, NULL, NULL, NULL, NULL);
    sc_layer_failed(t->stream, err, why);
}

/* ---- after the handshake ---------------------------------------------------------- */

/* ALPN, then the binding: a server binds when the client asked for
 * secirc/1+cb; a client that wants binding always binds (a server that
 * did not take secirc/1+cb, such as a TLS-terminating proxy, is then
 * found out by the Noise handshake). */
static int settle(struct tls_layer *t, char *why, size_t whylen)
{
    const unsigned char *sel = NULL;
    unsigned int sel_len = 0;
    SSL_get0_alpn_selected(t->ssl, &sel, &sel_len);
    if (!sel || sel_len >= sizeof t->alpn)
        sel_len = 0;
    if (sel_len)
        memcpy(t->alpn, sel, sel_len);
    t->alpn[sel_len] = '\0';
    bool bind = t->server ? strcmp(t->alpn, SC_TLS_ALPN_SECIRC_CB) == 0
                          : t->params->channel_binding;
    if (!bind)
        return 0;
    /* RFC 7627: a TLS 1.2 exporter without the extended master secret is
     * not unique to the connection (triple handshake), so binds nothing. */
    if (SSL_version(t->ssl) < TLS1_3_VERSION && SSL_get_extms_support(t->ssl) != 1) {
        snprintf(why, whylen, "TLS 1.2 without extended master secret: no channel binding");
        return SC_ETLS;
    }
    static const char label[] = SC_TLS_BINDING_LABEL;
    if (SSL_export_keying_material(t->ssl, t->binding, sizeof t->binding, label, sizeof label - 1,
                                   NULL, 0, 0) != 1) {
        snprintf(why, whylen, "exporter failed: %s", sc_tls_ossl_reason());
        return SC_ETLS;
    }
    t->bound = true;
    return 0;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct tls_layer *t = arg;
    if (t->state != TLS_NEGOTIATING)
        return;
    char why[160];
    if (!(what & BEV_EVENT_CONNECTED)) {
        int err = classify(t, what, why, sizeof why);
        fail(t, err, why);
        return;
    }
    int err = settle(t, why, sizeof why);
    if (err) {
        fail(t, err, why);
        return;
    }
    t->state = TLS_READY;
    t->params = NULL; /* the caller's, valid only while negotiating */
    if (sc_log_enabled(SC_LOG_DEBUG))
        sc_log(SC_LOG_DEBUG, "tls.up", "role=%s version=%s cipher=%s alpn=%s binding=%s",
               t->server ? "server" : "client", SSL_get_version(t->ssl),
               SSL_get_cipher_name(t->ssl), t->alpn[0] ? t->alpn : "-", t->bound ? "yes" : "no");
    bufferevent_setcb(t->bev, NULL, NULL, NULL, NULL);
    sc_layer_ready(t->stream, t->bev);
}

/* ---- start -------------------------------------------------------------------------- */

static int client_setup(struct tls_layer *t)
{
    const struct sc_tls_params *p = t->params;
    static const unsigned char alpn_cb[] = "\x0b" SC_TLS_ALPN_SECIRC_CB;
    static const unsigned char alpn_plain[] = "\x08" SC_TLS_ALPN_SECIRC;
    int rc = p->channel_binding ? SSL_set_alpn_protos(t->ssl, alpn_cb, sizeof alpn_cb - 1)
                                : SSL_set_alpn_protos(t->ssl, alpn_plain, sizeof alpn_plain - 1);
    if (rc != 0)
        return SC_ENOMEM;
    /* SNI: the given name, or the dialed host when it is a name. */
    const char *sni = p->sni ? p->sni : p->host && !sc_tls_is_ip_literal(p->host) ? p->host : NULL;
    if (sni && SSL_set_tlsext_host_name(t->ssl, sni) != 1)
        return SC_EINVAL;
    /* The name (or address) a CA-verified certificate must carry. */
    const char *check = p->sni ? p->sni : p->host;
    if (check && sc_tls_is_ip_literal(check)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), check) != 1)
            return SC_EINVAL;
    } else if (check && SSL_set1_host(t->ssl, check) != 1) {
        return SC_EINVAL;
    }
    return 0;
}

/* The SSL and its filter over below; the handshake starts with the
 * client's hello (client) or the bytes already below (server). */
static int stack_ssl(struct tls_layer *t)
{
    t->ssl = SSL_new(t->params->ctx); /* takes its own reference on the ctx */
    int err = t->ssl ? 0 : SC_ENOMEM;
    if (!err) {
        SSL_set_app_data(t->ssl, (void *)t->params); /* for the peer check (tls_ctx.c) */
        /* Idle links hold no record buffers. */
        SSL_set_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
        if (!t->server)
            err = client_setup(t);
    }
    if (!err) {
        /* Callbacks deferred to the loop, like a socket's (transport.h). */
        t->bev = bufferevent_openssl_filter_new(
            bufferevent_get_base(t->below), t->below, t->ssl,
            t->server ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
            BEV_OPT_DEFER_CALLBACKS);
        if (!t->bev)
            err = SC_ENOMEM;
    }
    if (err) {
        ERR_clear_error();
        SSL_free(t->ssl);
        t->ssl = NULL;
        return err;
    }
    t->state = TLS_NEGOTIATING;
    /* The link above has its own authenticated CLOSE: the end of TCP
     * without close_notify is an end of stream, not an error. */
    bufferevent_openssl_set_allow_dirty_shutdown(t->bev, 1);
    bufferevent_setcb(t->bev, NULL, NULL, on_event, t);
    if (t->server) /* the hello is below already: the filter takes it now */
        bufferevent_trigger(t->below, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    else /* enabling reads starts the handshake: the client's hello goes out */
        bufferevent_enable(t->bev, EV_READ | EV_WRITE);
    return 0;
}

/* Server: nothing is spent on TLS (no SSL, no handshake buffers) until the
 * client's whole first record is here, so a connection that sends nothing,
 * or a byte a second, costs what a bare socket costs; bytes that are not a
 * TLS handshake record end it at once, before OpenSSL could answer. */
static void on_hello_bytes(struct bufferevent *below, void *arg)
{
    struct tls_layer *t = arg;
    if (t->state != TLS_HELLO)
        return;
    struct evbuffer *in = bufferevent_get_input(below);
    uint8_t h[RECORD_HEADER_BYTES];
    if (evbuffer_copyout(in, h, sizeof h) != (ev_ssize_t)sizeof h)
        return;
    size_t len = (size_t)h[3] << 8 | h[4];
    if (h[0] != RECORD_HANDSHAKE || h[1] != 3 || len == 0 || len > RECORD_MAX_BYTES) {
        fail(t, SC_ETLS, "not a TLS handshake record");
        return;
    }
    if (evbuffer_get_length(in) < RECORD_HEADER_BYTES + len)
        return;
    bufferevent_setcb(below, NULL, NULL, NULL, NULL);
    int err = stack_ssl(t);
    if (err)
        fail(t, err, "out of memory");
}

static void on_hello_event(struct bufferevent *below, short what, void *arg)
{
    (void)below;
    struct tls_layer *t = arg;
    if (t->state == TLS_HELLO)
        fail(t, SC_ECONNRESET, what & BEV_EVENT_EOF ? "closed before the client hello"
                                                    : "connection error before the client hello");
}

static int start(struct sc_stream *s, const void *params, struct bufferevent *below, void **state,
                 bool server)
{
    const struct sc_tls_params *p = params;
    if (!p || !p->ctx || p->npins > SC_TLS_PINS_MAX)
        return SC_EINVAL;
    struct tls_layer *t = calloc(1, sizeof *t);
    if (!t)
        return SC_ENOMEM;
    t->stream = s;
    t->params = p;
    t->below = below;
    t->server = server;
    if (!server) {
        int err = stack_ssl(t);
        if (err) {
            free(t);
            return err;
        }
        *state = t;
        return 0;
    }
    *state = t;
    t->state = TLS_HELLO;
    /* Reads stop once a largest first record is here. */
    bufferevent_setwatermark(below, EV_READ, 0, RECORD_HEADER_BYTES + RECORD_MAX_BYTES);
    bufferevent_setcb(below, on_hello_bytes, NULL, on_hello_event, t);
    bufferevent_enable(below, EV_READ | EV_WRITE);
    if (evbuffer_get_length(bufferevent_get_input(below))) /* a lower layer's leftover */
        bufferevent_trigger(below, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    return 0;
}

static int tls_client_start(struct sc_stream *s, const void *params, struct bufferevent *below,
                            void **state)
{
    return start(s, params, below, state, false);
}

static int tls_server_start(struct sc_stream *s, const void *params, struct bufferevent *below,
                            void **state)
{
    return start(s, params, below, state, true);
}

/* ---- the end ---------------------------------------------------------------------------- */

/* Everything still above goes through TLS into the level below, then
 * close_notify, all before returning: the level below may already be at
 * its high-water mark, so its limit is lifted (the stream is closing; the
 * closer writes it out). */
static void tls_shutdown(void *state)
{
    struct tls_layer *t = state;
    if (t->state != TLS_READY)
        return;
    /* No callback of the user's may be scheduled now: a deferred one holds
     * a reference that keeps the freed filter alive until the loop runs it
     * (and forever if the program is leaving its loop). */
    bufferevent_setcb(t->bev, NULL, NULL, NULL, NULL);
    bufferevent_setwatermark(t->below, EV_WRITE, 0, 0);
    bufferevent_enable(t->bev, EV_WRITE); /* libevent's own write path: SSL_write all */
    if (evbuffer_get_length(bufferevent_get_output(t->bev)) == 0)
        (void)SSL_shutdown(t->ssl); /* 0: sent, the peer's not awaited */
    ERR_clear_error();
}

/* The SSL is freed here, but the filter using it may live on: freeing
 * only drops our reference, and a filter stacked on it (the websocket
 * layer's) holds one until the loop finalizes that filter, as does a
 * deferred callback of its own. Meanwhile libevent may still drive it:
 * the filter above, once unlinked, resumes its reads
 * (bufferevent_unsuspend_read_ -> SSL_read), and what arrives below would
 * reach it through below's callbacks. So it is made inert first: not
 * enabled (nothing resumes it) and unhooked from below (nothing feeds
 * it); it never calls into OpenSSL again. (Disabled, it holds below's
 * reads until libevent lets it go, which resumes them.) */
static void tls_destroy(void *state)
{
    struct tls_layer *t = state;
    if (t->bev) {
        bufferevent_disable(t->bev, EV_READ | EV_WRITE);
        bufferevent_setcb(t->below, NULL, NULL, NULL, NULL);
        bufferevent_free(t->bev); /* never frees below */
    } else {
        bufferevent_setcb(t->below, NULL, NULL, NULL, NULL);
    }
    SSL_free(t->ssl);
    OPENSSL_cleanse(t->binding, sizeof t->binding);
    free(t);
}

static void tls_query(const void *state, struct sc_stream_info *info)
{
    const struct tls_layer *t = state;
    snprintf(info->alpn, sizeof info->alpn, "%s", t->alpn);
    if (t->bound) {
        info->has_binding = true;
        memcpy(info->binding, t->binding, sizeof info->binding);
    }
}

const struct sc_layer_ops sc_layer_tls = {
    .name = "tls",
    .client_start = tls_client_start,
    .server_start = tls_server_start,
    .shutdown = tls_shutdown,
    .destroy = tls_destroy,
    .query = tls_query,
};
