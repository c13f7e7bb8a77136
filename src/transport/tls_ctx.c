/* transport/tls_ctx.c — what the tls layer is configured with: server and
 * client SSL_CTXs (files checked with a clear message each: missing,
 * unreadable, not PEM, key not matching), the peer check (CA chain and
 * host, SPKI pins), self-signed certificates, pin strings. Does no I/O on
 * connections; never overwrites a key or certificate file. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "transport/tls.h"
#include "transport/tls_internal.h"

#define SELF_SIGNED_VALID_S (10L * 365 * 24 * 3600)
#define SELF_SIGNED_BACKDATE_S 3600L
#define CN_MAX_CHARS 64

static void say(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* OpenSSL's reason for the oldest queued error ("unknown" if none); the
 * queue is cleared. */
const char *sc_tls_ossl_reason(void)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown";
}

int sc_tls_version_parse(const char *s)
{
    if (s && strcmp(s, "1.2") == 0)
        return TLS1_2_VERSION;
    if (s && strcmp(s, "1.3") == 0)
        return TLS1_3_VERSION;
    return 0;
}

/* Opens a file for reading; a missing or unreadable one is reported as
 * such, with its path (OpenSSL would only say "system lib"). */
static int open_pem(const char *what, const char *path, FILE **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !path[0]) {
        say(err, errlen, "no %s file given", what);
        return SC_EINVAL;
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        say(err, errlen, "%s file %s: %s", what, path, strerror(e));
        return e == ENOENT || e == ENOTDIR ? SC_ENOENT : e == EACCES ? SC_EACCES
                                                                     : sc_translate_sys_error(e);
    }
    *out = f;
    return 0;
}

static int read_cert(const char *path, X509 **out, char *err, size_t errlen)
{
    FILE *f;
    int rc = open_pem("certificate", path, &f, err, errlen);
    if (rc)
        return rc;
    *out = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!*out) {
        say(err, errlen, "certificate file %s: not a PEM certificate (%s)", path,
            sc_tls_ossl_reason());
        return SC_EFORMAT;
    }
    return 0;
}

static int read_key(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    FILE *f;
    int rc = open_pem("key", path, &f, err, errlen);
    if (rc)
        return rc;
    *out = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!*out) {
        say(err, errlen, "key file %s: not a PEM private key (%s)", path, sc_tls_ossl_reason());
        return SC_EFORMAT;
    }
    return 0;
}

static int ctx_common(SSL_CTX *ctx, int min_version, char *err, size_t errlen)
{
    if (min_version == 0)
        min_version = TLS1_3_VERSION;
    if (min_version != TLS1_2_VERSION && min_version != TLS1_3_VERSION) {
        say(err, errlen, "TLS minimum version must be 1.2 or 1.3");
        return SC_EINVAL;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, min_version)) {
        say(err, errlen, "cannot set the TLS version (%s)", sc_tls_ossl_reason());
        return SC_EINVAL;
    }
    /* One handshake per connection: no resumption (every link is a fresh
     * TLS session, which also keeps the exporter per connection), no
     * renegotiation. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    return 0;
}

/* Server ALPN: secirc/1+cb, secirc/1 or http/1.1, in that preference; a
 * client offering only other protocols gets a fatal alert. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char ours[] = "\x0b" SC_TLS_ALPN_SECIRC_CB "\x08" SC_TLS_ALPN_SECIRC
                                        "\x08" SC_TLS_ALPN_HTTP;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof ours - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

int sc_tls_server_ctx_new(const char *cert_path, const char *key_path, int min_version,
                          SSL_CTX **out, char *err, size_t errlen)
{
    *out = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    SSL_CTX *ctx = NULL;
    int rc = read_cert(cert_path, &cert, err, errlen);
    if (!rc)
        rc = read_key(key_path, &key, err, errlen);
    if (!rc && X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        say(err, errlen, "key file %s does not match certificate file %s", key_path, cert_path);
        rc = SC_ETLSKEY;
    }
    if (!rc && !(ctx = SSL_CTX_new(TLS_server_method()))) {
        say(err, errlen, "out of memory");
        rc = SC_ENOMEM;
    }
    if (!rc)
        rc = ctx_common(ctx, min_version, err, errlen);
    /* The chain as the file has it (leaf first, then intermediates). */
    if (!rc && (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1 ||
                SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1)) {
        say(err, errlen, "certificate file %s with key %s: %s", cert_path, key_path,
            sc_tls_ossl_reason());
        rc = SC_ETLSKEY;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    if (rc) {
        SSL_CTX_free(ctx);
        return rc;
    }
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    *out = ctx;
    return 0;
}

/* ---- the peer check (client) ----------------------------------------------- */

static const int verify_ca_on = 1;

int sc_tls_spki_sha256(X509 *cert, uint8_t out[32])
{
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (n <= 0)
        return SC_EFORMAT;
    unsigned int len = 0;
    int ok = EVP_Digest(der, (size_t)n, out, &len, EVP_sha256(), NULL);
    OPENSSL_free(der);
    return ok && len == 32 ? 0 : SC_ECRYPTO;
}

/* Replaces OpenSSL's chain check for every client connection: with
 * SC_TLS_VERIFY_CA the chain and host are checked as usual, then the
 * leaf's key must match a pin when the layer has pins. A pin mismatch is
 * X509_V_ERR_CERT_REJECTED: the server gets a bad_certificate alert, and
 * the layer names the pin in its reason. */
static int verify_peer(X509_STORE_CTX *xs, void *arg)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    const struct sc_tls_params *p = ssl ? SSL_get_app_data(ssl) : NULL;
    if (arg == &verify_ca_on && X509_verify_cert(xs) != 1)
        return 0;
    if (!p || p->npins == 0)
        return 1;
    uint8_t spki[32];
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    if (leaf && sc_tls_spki_sha256(leaf, spki) == 0)
        for (size_t i = 0; i < p->npins && i < SC_TLS_PINS_MAX; i++)
            if (CRYPTO_memcmp(spki, p->pins[i], 32) == 0)
                return 1;
    X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
    return 0;
}

int sc_tls_client_ctx_new(int min_version, enum sc_tls_verify verify, const char *ca_file,
                          SSL_CTX **out, char *err, size_t errlen)
{
    *out = NULL;
    if (verify == SC_TLS_VERIFY_CA) {
        FILE *f;
        int rc = open_pem("CA", ca_file, &f, err, errlen);
        if (rc)
            return rc;
        fclose(f);
    } else if (verify != SC_TLS_VERIFY_NONE) {
        say(err, errlen, "unknown verify mode");
        return SC_EINVAL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        say(err, errlen, "out of memory");
        return SC_ENOMEM;
    }
    int rc = ctx_common(ctx, min_version, err, errlen);
    if (!rc && verify == SC_TLS_VERIFY_CA && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        say(err, errlen, "CA file %s: no PEM certificate in it (%s)", ca_file, sc_tls_ossl_reason());
        rc = SC_EFORMAT;
    }
    if (rc) {
        SSL_CTX_free(ctx);
        return rc;
    }
    /* Always "verify": verify_peer decides (nothing to check: accept). */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, verify_peer,
                                     verify == SC_TLS_VERIFY_CA ? (void *)&verify_ca_on : NULL);
    *out = ctx;
    return 0;
}

int sc_tls_ctx_set_max_version(SSL_CTX *ctx, int max_version)
{
    if (max_version != TLS1_2_VERSION && max_version != TLS1_3_VERSION)
        return SC_EINVAL;
    return SSL_CTX_set_max_proto_version(ctx, max_version) ? 0 : SC_EINVAL;
}

/* ---- pins --------------------------------------------------------------------- */

#define PIN_PREFIX "sha256//"
#define PIN_B64_CHARS 44u

int sc_tls_pin_parse(const char *s, uint8_t out[32])
{
    size_t plen = sizeof PIN_PREFIX - 1;
    if (!s || strncmp(s, PIN_PREFIX, plen) != 0 || strlen(s + plen) != PIN_B64_CHARS)
        return SC_EFORMAT;
    const char *b64 = s + plen;
    unsigned char buf[33], again[PIN_B64_CHARS + 1];
    /* 44 characters decode to 33 bytes, the last from the '=' padding. */
    if (EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)PIN_B64_CHARS) != 33 ||
        b64[PIN_B64_CHARS - 1] != '=' || b64[PIN_B64_CHARS - 2] == '=')
        return SC_EFORMAT;
    /* Canonical only: re-encoding must give the same text. */
    if (EVP_EncodeBlock(again, buf, 32) != (int)PIN_B64_CHARS || memcmp(again, b64, PIN_B64_CHARS))
        return SC_EFORMAT;
    memcpy(out, buf, 32);
    return 0;
}

int sc_tls_pin_from_cert_file(const char *cert_path, char *out, size_t outlen, char *err,
                              size_t errlen)
{
    X509 *cert;
    int rc = read_cert(cert_path, &cert, err, errlen);
    if (rc)
        return rc;
    uint8_t h[32];
    rc = sc_tls_spki_sha256(cert, h);
    X509_free(cert);
    unsigned char b64[PIN_B64_CHARS + 1];
    if (!rc && outlen < sizeof PIN_PREFIX + PIN_B64_CHARS)
        rc = SC_ENOSPACE;
    if (rc) {
        say(err, errlen, "certificate file %s: %s", cert_path, sc_strerror(rc));
        return rc;
    }
    EVP_EncodeBlock(b64, h, 32);
    snprintf(out, outlen, PIN_PREFIX "%s", (const char *)b64);
    return 0;
}

/* ---- self-signed certificates -------------------------------------------------- */

static bool cn_ok(const char *cn)
{
    size_t n = cn ? strlen(cn) : 0;
    if (n == 0 || n > CN_MAX_CHARS)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = cn[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':'))
            return false;
    }
    return true;
}

bool sc_tls_is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn)
{
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    unsigned char rnd[16];
    bool ok = x && serial && RAND_bytes(rnd, sizeof rnd) == 1;
    if (ok) {
        rnd[0] &= 0x7f; /* a positive serial */
        ok = BN_bin2bn(rnd, sizeof rnd, serial) &&
             BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) && X509_set_version(x, 2) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -SELF_SIGNED_BACKDATE_S) &&
             X509_gmtime_adj(X509_getm_notAfter(x), SELF_SIGNED_VALID_S) && X509_set_pubkey(x, key);
    }
    X509_NAME *name = ok ? X509_get_subject_name(x) : NULL;
    ok = ok && name &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) &&
         X509_set_issuer_name(x, name);
    char san[CN_MAX_CHARS + 8];
    snprintf(san, sizeof san, "%s:%s", sc_tls_is_ip_literal(cn) ? "IP" : "DNS", cn);
    X509V3_CTX v3;
    if (ok) {
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    }
    struct { int nid; const char *value; } exts[] = {
        {NID_subject_alt_name, san},
        {NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage, "critical,digitalSignature"},
        {NID_ext_key_usage, "serverAuth"},
    };
    for (size_t i = 0; ok && i < sizeof exts / sizeof exts[0]; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, exts[i].nid, exts[i].value);
        ok = e && X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
    BN_free(serial);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Creates path (never an existing file) with `mode` and writes into it. */
static int create_file(const char *what, const char *path, mode_t mode, FILE **out, char *err,
                       size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        int e = errno;
        say(err, errlen, "%s file %s: %s", what, path,
            e == EEXIST ? "already exists (not overwritten)" : strerror(e));
        return sc_translate_sys_error(e);
    }
    *out = fdopen(fd, "w");
    if (!*out) {
        close(fd);
        unlink(path);
        say(err, errlen, "%s file %s: out of memory", what, path);
        return SC_ENOMEM;
    }
    return 0;
}

int sc_tls_self_signed(const char *cert_path, const char *key_path, const char *common_name,
                       char *err, size_t errlen)
{
    if (!cn_ok(common_name)) {
        say(err, errlen, "common name must be 1..%d characters of A-Z a-z 0-9 . - _ :",
            CN_MAX_CHARS);
        return SC_EINVAL;
    }
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = key ? make_cert(key, common_name) : NULL;
    if (!cert) {
        say(err, errlen, "cannot make a certificate (%s)", sc_tls_ossl_reason());
        EVP_PKEY_free(key);
        return SC_ECRYPTO;
    }
    FILE *kf = NULL, *cf = NULL;
    bool key_made = false;
    int rc = create_file("key", key_path, 0600, &kf, err, errlen);
    if (!rc) {
        key_made = true;
        rc = create_file("certificate", cert_path, 0644, &cf, err, errlen);
    }
    if (!rc && PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) != 1) {
        say(err, errlen, "key file %s: write failed", key_path);
        rc = SC_EIO;
    }
    if (!rc && PEM_write_X509(cf, cert) != 1) {
        say(err, errlen, "certificate file %s: write failed", cert_path);
        rc = SC_EIO;
    }
    if (kf && fclose(kf) != 0 && !rc) {
        say(err, errlen, "key file %s: %s", key_path, strerror(errno));
        rc = SC_EIO;
    }
    if (cf && fclose(cf) != 0 && !rc) {
        say(err, errlen, "certificate file %s: %s", cert_path, strerror(errno));
        rc = SC_EIO;
    }
    if (rc) { /* nothing half-made stays behind */
        if (key_made)
            unlink(key_path);
        if (cf)
            unlink(cert_path);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}
