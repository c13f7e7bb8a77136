/* transport/tls_internal.h — what tls.c and tls_ctx.c share: OpenSSL's
 * error reason and the SPKI hash that pins are made of. Not for other
 * files. */
#ifndef SC_TRANSPORT_TLS_INTERNAL_H
#define SC_TRANSPORT_TLS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

/* The reason text of OpenSSL's oldest queued error, or "unknown"; clears
 * the queue. */
const char *sc_tls_ossl_reason(void);
/* SHA-256 of the certificate's DER SubjectPublicKeyInfo. */
int sc_tls_spki_sha256(X509 *cert, uint8_t out[32]);
/* An IPv4 or IPv6 address literal (never sent as SNI). */
bool sc_tls_is_ip_literal(const char *s);

#endif
