/* transport/tls.h — the tls layer: TLS (OpenSSL 3) over the layer below,
 * client and server, as camouflage and middlebox compatibility under the
 * secure link, never its only protection. Binds the Noise handshake to the
 * TLS session (exporter) when channel binding is negotiated, so a third
 * party that terminates TLS cannot relay a link. Never touches the socket. */
#ifndef SC_TRANSPORT_TLS_H
#define SC_TRANSPORT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "transport/transport.h"

/* ALPN protocol IDs (docs/PROTOCOL.md, "TLS"). */
#define SC_TLS_ALPN_SECIRC "secirc/1"       /* no channel binding */
#define SC_TLS_ALPN_SECIRC_CB "secirc/1+cb" /* the link binds to this TLS session */
#define SC_TLS_ALPN_HTTP "http/1.1"         /* accepted by servers, for wss */
/* The TLS exporter (RFC 8446 7.5 / RFC 5705) giving the binding bytes. */
#define SC_TLS_BINDING_LABEL "EXPORTER-secirc-channel-binding"
#define SC_TLS_BINDING_BYTES 32u
#define SC_TLS_PINS_MAX 8

enum sc_tls_verify {
    SC_TLS_VERIFY_NONE, /* accept any certificate (Noise authenticates the relay) */
    SC_TLS_VERIFY_CA,   /* chain to a CA file and the host name (or IP) must match */
};

/* One layer instance's parameters (struct sc_layer_spec.params); owned by
 * the caller and read only while a negotiation runs. The ctx is borrowed:
 * every connection takes its own reference when it starts, so a reload
 * (new certificate, new CA file) is: build a new ctx, store it here,
 * SSL_CTX_free() the old one; connections already up keep theirs. */
struct sc_tls_params {
    SSL_CTX *ctx;         /* sc_tls_server_ctx_new() or sc_tls_client_ctx_new() */
    /* Client only: */
    const char *host;     /* the dialed host: a name is sent as SNI; with
                             SC_TLS_VERIFY_CA the certificate must match it
                             (name or IP literal). NULL: none. */
    const char *sni;      /* sent instead of host's name (and checked instead
                             of it); NULL: host if it is a name, else none */
    bool channel_binding; /* offer secirc/1+cb and always bind (a server
                             that does not answer it makes the Noise
                             handshake fail); false: offer secirc/1 */
    size_t npins;         /* SPKI pins: the peer's key must be one of them */
    uint8_t pins[SC_TLS_PINS_MAX][32]; /* SHA-256 of the DER SubjectPublicKeyInfo */
};

extern const struct sc_layer_ops sc_layer_tls;

/* "1.2" or "1.3" -> TLS1_2_VERSION / TLS1_3_VERSION; 0 if neither. */
int sc_tls_version_parse(const char *s);

/* A server context: certificate chain (PEM) and private key (PEM), TLS
 * min_version or newer (0: TLS 1.3), ALPN secirc/1, secirc/1+cb, http/1.1.
 * Errors, with a message naming the file in err: SC_ENOENT / SC_EACCES (a
 * file missing or unreadable), SC_EFORMAT (not PEM), SC_ETLSKEY (the key
 * does not match the certificate), SC_EINVAL (bad version), SC_ENOMEM. */
int sc_tls_server_ctx_new(const char *cert_path, const char *key_path, int min_version,
                          SSL_CTX **out, char *err, size_t errlen) SC_MUST_CHECK;
/* A client context: TLS min_version or newer (0: TLS 1.3); with
 * SC_TLS_VERIFY_CA the peer must chain to a certificate in ca_file. */
int sc_tls_client_ctx_new(int min_version, enum sc_tls_verify verify, const char *ca_file,
                          SSL_CTX **out, char *err, size_t errlen) SC_MUST_CHECK;
/* Caps a context's protocol version (tests: a TLS 1.2-only server). */
int sc_tls_ctx_set_max_version(SSL_CTX *ctx, int max_version) SC_MUST_CHECK;

/* Writes a new ECDSA P-256 key (mode 0600) and a self-signed certificate
 * for common_name (also its subjectAltName, DNS or IP), valid from an hour
 * ago for ten years. Refuses to overwrite either file (SC_EEXIST); on error
 * nothing is left behind. */
int sc_tls_self_signed(const char *cert_path, const char *key_path, const char *common_name,
                       char *err, size_t errlen) SC_MUST_CHECK;

/* "sha256//BASE64" (44 base64 characters of a SHA-256) into out;
 * SC_EFORMAT otherwise. */
int sc_tls_pin_parse(const char *s, uint8_t out[32]) SC_MUST_CHECK;
/* A certificate's pin, written "sha256//BASE64" into out (at least 53
 * bytes), from a PEM file: the value to give a dialer. */
int sc_tls_pin_from_cert_file(const char *cert_path, char *out, size_t outlen, char *err,
                              size_t errlen) SC_MUST_CHECK;

#endif
