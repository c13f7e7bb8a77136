/* test_tls.c — the tls transport layer over a socketpair: handshake both
 * ways with ALPN and the channel-binding exporter (equal on both ends, and
 * a link authenticates over it), version mismatch, pins and CA checks with
 * their distinct errors, close_notify and every queued byte pushed below
 * on close; and the configuration side: pin strings, self-signed files
 * (modes, no overwrite), context errors naming the file. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "link/link_stream.h"
#include "secirc/identity.h"
#include "transport/tls.h"
#include "util/time.h"

static char dir[64];
static char cert[128], key[128], cert2[128], key2[128];
static SSL_CTX *server_ctx, *client_ctx;

static void path(char *out, const char *name)
{
    snprintf(out, 128, "%s/%s", dir, name);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/secirc-tls-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    path(cert, "cert.pem");
    path(key, "key.pem");
    path(cert2, "cert2.pem");
    path(key2, "key2.pem");
    char err[256];
    if (sc_tls_self_signed(cert, key, "relay.test", err, sizeof err) != 0 ||
        sc_tls_self_signed(cert2, key2, "127.0.0.1", err, sizeof err) != 0) {
        fprintf(stderr, "self-signed: %s\n", err);
        return -1;
    }
    if (sc_tls_server_ctx_new(cert, key, 0, &server_ctx, err, sizeof err) != 0 ||
        sc_tls_client_ctx_new(0, SC_TLS_VERIFY_NONE, NULL, &client_ctx, err, sizeof err) != 0) {
        fprintf(stderr, "ctx: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
    const char *files[] = {cert, key, cert2, key2};
    for (size_t i = 0; i < 4; i++)
        unlink(files[i]);
    rmdir(dir);
    return 0;
}

/* ---- two ends of a socketpair, each a stream negotiating one tls layer ---- */

struct end {
    struct sc_stream *s;
    struct bufferevent *bottom;
    bool done;
    int err;
    char why[160];
};

static void on_neg(struct sc_stream *s, int err, const char *why, void *arg)
{
    (void)s;
    struct end *e = arg;
    e->done = true;
    e->err = err;
    snprintf(e->why, sizeof e->why, "%s", why);
}

static void run_until(struct event_base *base, const bool *a, const bool *b, uint64_t ms)
{
    uint64_t end = sc_mono_ms() + ms;
    while (!(*a && *b) && sc_mono_ms() < end) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_loop(base, EVLOOP_ONCE);
    }
}

static void start_end(struct event_base *base, int fd, enum sc_role role,
                      const struct sc_tls_params *p, struct end *e)
{
    memset(e, 0, sizeof *e);
    evutil_make_socket_nonblocking(fd);
    e->bottom = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(e->bottom);
    assert_int_equal(sc_stream_new(e->bottom, NULL, 0, &e->s), 0);
    struct sc_layer_spec spec = {.ops = &sc_layer_tls, .params = p};
    assert_int_equal(sc_stream_negotiate(e->s, role, &spec, 1, 5000, on_neg, e), 0);
}

static void negotiate(struct event_base *base, const struct sc_tls_params *cp,
                      const struct sc_tls_params *sp, struct end *c, struct end *s)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    start_end(base, fds[0], SC_ROLE_CLIENT, cp, c);
    start_end(base, fds[1], SC_ROLE_SERVER, sp, s);
    run_until(base, &c->done, &s->done, 5000);
    assert_true(c->done && s->done);
}

static void test_binding_and_alpn(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct sc_tls_params cp = {.ctx = client_ctx, .host = "relay.test", .channel_binding = true};
    struct sc_tls_params sp = {.ctx = server_ctx};
    struct end c, s;
    negotiate(base, &cp, &sp, &c, &s);
    assert_int_equal(c.err, 0);
    assert_int_equal(s.err, 0);
    struct sc_stream_info ci, si;
    sc_stream_get_info(c.s, &ci);
    sc_stream_get_info(s.s, &si);
    assert_string_equal(ci.transport, "tcp+tls");
    assert_string_equal(ci.alpn, "secirc/1+cb");
    assert_string_equal(si.alpn, "secirc/1+cb");
    assert_true(ci.has_binding && si.has_binding);
    assert_memory_equal(ci.binding, si.binding, 32);
    /* the SNI the client sent is the dialed name */
    SSL *server_ssl = bufferevent_openssl_get_ssl(sc_stream_bev(s.s));
    assert_string_equal(SSL_get_servername(server_ssl, TLSEXT_NAMETYPE_host_name), "relay.test");
    assert_string_equal(SSL_get_version(server_ssl), "TLSv1.3");
    uint8_t first[32];
    memcpy(first, ci.binding, 32);
    sc_stream_free(c.s);
    sc_stream_free(s.s);

    /* a second connection binds to its own session */
    negotiate(base, &cp, &sp, &c, &s);
    sc_stream_get_info(c.s, &ci);
    assert_true(ci.has_binding);
    assert_memory_not_equal(first, ci.binding, 32);
    sc_stream_free(c.s);
    sc_stream_free(s.s);

    /* without channel binding: secirc/1 and no binding on either side */
    cp.channel_binding = false;
    cp.host = "192.0.2.1"; /* an IP literal is never sent as SNI */
    negotiate(base, &cp, &sp, &c, &s);
    assert_int_equal(c.err, 0);
    sc_stream_get_info(c.s, &ci);
    sc_stream_get_info(s.s, &si);
    assert_string_equal(ci.alpn, "secirc/1");
    assert_string_equal(si.alpn, "secirc/1");
    assert_false(ci.has_binding || si.has_binding);
    server_ssl = bufferevent_openssl_get_ssl(sc_stream_bev(s.s));
    assert_null(SSL_get_servername(server_ssl, TLSEXT_NAMETYPE_host_name));
    sc_stream_free(c.s);
    sc_stream_free(s.s);
    event_base_free(base);
}

static void test_version_mismatch(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    char err[256];
    SSL_CTX *old_server;
    assert_int_equal(sc_tls_server_ctx_new(cert, key, TLS1_2_VERSION, &old_server, err, sizeof err), 0);
    assert_int_equal(sc_tls_ctx_set_max_version(old_server, TLS1_2_VERSION), 0);
    struct sc_tls_params cp = {.ctx = client_ctx, .channel_binding = true};
    struct sc_tls_params sp = {.ctx = old_server};
    struct end c, s;
    negotiate(base, &cp, &sp, &c, &s);
    assert_int_equal(c.err, SC_ETLSVERSION);
    assert_int_equal(s.err, SC_ETLSVERSION);
    assert_non_null(strstr(c.why, "tls: no common protocol version"));
    sc_stream_free(c.s);
    sc_stream_free(s.s);

    /* a TLS 1.2 client on it links, and binds (extended master secret) */
    SSL_CTX *old_client;
    assert_int_equal(sc_tls_client_ctx_new(TLS1_2_VERSION, SC_TLS_VERIFY_NONE, NULL, &old_client,
                                           err, sizeof err), 0);
    cp.ctx = old_client;
    negotiate(base, &cp, &sp, &c, &s);
    assert_int_equal(c.err, 0);
    assert_int_equal(s.err, 0);
    struct sc_stream_info ci, si;
    sc_stream_get_info(c.s, &ci);
    sc_stream_get_info(s.s, &si);
    assert_true(ci.has_binding && si.has_binding);
    assert_memory_equal(ci.binding, si.binding, 32);
    assert_string_equal(SSL_get_version(bufferevent_openssl_get_ssl(sc_stream_bev(c.s))), "TLSv1.2");
    sc_stream_free(c.s);
    sc_stream_free(s.s);
    SSL_CTX_free(old_client);
    SSL_CTX_free(old_server);
    event_base_free(base);
}

static void test_pins(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    char err[256], pin[64], other[64];
    assert_int_equal(sc_tls_pin_from_cert_file(cert, pin, sizeof pin, err, sizeof err), 0);
    assert_int_equal(sc_tls_pin_from_cert_file(cert2, other, sizeof other, err, sizeof err), 0);
    struct sc_tls_params cp = {.ctx = client_ctx, .channel_binding = true, .npins = 2};
    struct sc_tls_params sp = {.ctx = server_ctx};
    assert_int_equal(sc_tls_pin_parse(other, cp.pins[0]), 0);
    assert_int_equal(sc_tls_pin_parse(pin, cp.pins[1]), 0);
    struct end c, s;
    negotiate(base, &cp, &sp, &c, &s);
    assert_int_equal(c.err, 0); /* the second pin matches */
    sc_stream_free(c.s);
    sc_stream_free(s.s);

    cp.npins = 1; /* only the other certificate's key */
    negotiate(base, &cp, &sp, &c, &s);
    assert_int_equal(c.err, SC_ETLSCERT);
    assert_non_null(strstr(c.why, "matches no pin"));
    assert_int_equal(s.err, SC_ETLSCERT); /* told with a bad_certificate alert */
    sc_stream_free(c.s);
    sc_stream_free(s.s);
    event_base_free(base);
}

static void test_ca_verify(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    char err[256];
    SSL_CTX *ca_client, *ip_server;
    assert_int_equal(sc_tls_client_ctx_new(0, SC_TLS_VERIFY_CA, cert, &ca_client, err, sizeof err), 0);
    assert_int_equal(sc_tls_server_ctx_new(cert2, key2, 0, &ip_server, err, sizeof err), 0);
    struct sc_tls_params cp = {.ctx = ca_client, .host = "relay.test", .channel_binding = true};
    struct sc_tls_params sp = {.ctx = server_ctx};
    struct end c, s;
    negotiate(base, &cp, &sp, &c, &s);
    assert_int_equal(c.err, 0);
    sc_stream_free(c.s);
    sc_stream_free(s.s);

    cp.host = "other.test"; /* the CA's certificate, but not this name */
    negotiate(base, &cp, &sp, &c, &s);
    assert_int_equal(c.err, SC_ETLSCERT);
    assert_non_null(strstr(c.why, "not verified"));
    sc_stream_free(c.s);
    sc_stream_free(s.s);

    cp.host = "127.0.0.1"; /* a certificate not from the CA file */
    sp.ctx = ip_server;
    negotiate(base, &cp, &sp, &c, &s);
    assert_int_equal(c.err, SC_ETLSCERT);
    sc_stream_free(c.s);
    sc_stream_free(s.s);
    SSL_CTX_free(ip_server);
    SSL_CTX_free(ca_client);
    event_base_free(base);
}

/* Close: what the link queued above (more than the level below takes at
 * once) and close_notify are below when sc_stream_close returns. */
struct sink {
    struct evbuffer *got;
    bool eof;
    short what;
};

static void sink_read(struct bufferevent *bev, void *arg)
{
    struct sink *k = arg;
    evbuffer_add_buffer(k->got, bufferevent_get_input(bev));
}

static void sink_event(struct bufferevent *bev, short what, void *arg)
{
    struct sink *k = arg;
    sink_read(bev, arg);
    k->eof = true;
    k->what = what;
}

static void test_close_notify_after_queued_bytes(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct sc_tls_params cp = {.ctx = client_ctx, .channel_binding = true};
    struct sc_tls_params sp = {.ctx = server_ctx};
    struct end c, s;
    negotiate(base, &cp, &sp, &c, &s);
    assert_int_equal(c.err, 0);
    struct sink k = {.got = evbuffer_new()};
    struct bufferevent *top = sc_stream_bev(s.s);
    bufferevent_setcb(top, sink_read, NULL, sink_event, &k);
    bufferevent_enable(top, EV_READ);

    enum { N = 600 * 1024 };
    static uint8_t data[N];
    for (size_t i = 0; i < N; i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    bufferevent_write(sc_stream_bev(c.s), data, N);
    struct bufferevent *bottom = c.bottom;
    size_t below_before = evbuffer_get_length(bufferevent_get_output(bottom));
    assert_true(below_before < N); /* the level below is at its mark */
    sc_stream_close(c.s, 2000);
    /* still alive: the closer holds it until the loop runs */
    size_t below_after = evbuffer_get_length(bufferevent_get_output(bottom));
    assert_true(below_after > N); /* every byte, in records, and the alert */

    bool always = true;
    run_until(base, &k.eof, &always, 5000);
    assert_true(k.eof);
    assert_int_equal(evbuffer_get_length(k.got), N);
    assert_memory_equal(evbuffer_pullup(k.got, -1), data, N);
    SSL *server_ssl = bufferevent_openssl_get_ssl(top);
    assert_true(SSL_get_shutdown(server_ssl) & SSL_RECEIVED_SHUTDOWN); /* a real close_notify */
    assert_true(k.what & BEV_EVENT_EOF);
    evbuffer_free(k.got);
    sc_stream_free(s.s);
    sc_link_finish_lingering(base);
    event_base_free(base);
}

/* What a server makes of bytes that are not a ClientHello: `first` sent
 * at once; returns the layer's error, its reason in why, and what came
 * back to the client (nothing before the client's whole first record). */
static int server_sees(const uint8_t *first, size_t len, char *why, size_t *answered)
{
    struct event_base *base = event_base_new();
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    struct sc_tls_params sp = {.ctx = server_ctx};
    struct end s;
    start_end(base, fds[1], SC_ROLE_SERVER, &sp, &s);
    assert_int_equal(write(fds[0], first, len), (ssize_t)len);
    bool always = true;
    run_until(base, &s.done, &always, 1000);
    int err = s.done ? s.err : 0;
    snprintf(why, 160, "%s", s.why);
    sc_stream_free(s.s); /* an abortive end writes nothing more */
    uint8_t back[512];
    ssize_t n = recv(fds[0], back, sizeof back, MSG_DONTWAIT);
    *answered = n > 0 ? (size_t)n : 0;
    close(fds[0]);
    event_base_free(base);
    return err;
}

static void test_not_a_client_hello(void **state)
{
    (void)state;
    char why[160];
    size_t back;
    uint8_t junk[48];
    memset(junk, 0x41, sizeof junk); /* a plain (non-TLS) client's first bytes */
    assert_int_equal(server_sees(junk, sizeof junk, why, &back), SC_ETLS);
    assert_non_null(strstr(why, "tls: not a TLS handshake record"));
    assert_int_equal(back, 0);
    /* a record claiming more than 2^14 bytes */
    const uint8_t big[] = {0x16, 0x03, 0x01, 0x40, 0x01};
    assert_int_equal(server_sees(big, sizeof big, why, &back), SC_ETLS);
    /* a partial record: nothing decided yet, nothing spent, nothing said */
    const uint8_t part[] = {0x16, 0x03, 0x01, 0x00, 0x40, 1, 2, 3};
    assert_int_equal(server_sees(part, sizeof part, why, &back), 0);
    assert_int_equal(back, 0);
    /* a whole handshake record that is not a ClientHello: OpenSSL's turn */
    uint8_t rec[5 + 16] = {0x16, 0x03, 0x01, 0x00, 16};
    memset(rec + 5, 0x7f, 16);
    assert_int_equal(server_sees(rec, sizeof rec, why, &back), SC_ETLS);
    assert_non_null(strstr(why, "tls: handshake failed"));
}

/* A link authenticates over the tls layer with binding on both sides. */
struct linkside {
    bool up, closed;
    enum sc_reason reason;
};

static void l_up(struct sc_link *link, void *arg)
{
    (void)link;
    ((struct linkside *)arg)->up = true;
}

static void l_closed(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg)
{
    (void)link;
    (void)by_peer;
    struct linkside *l = arg;
    l->closed = true;
    l->reason = reason;
}

static void test_link_over_tls(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct sc_tls_params cp = {.ctx = client_ctx, .channel_binding = true};
    struct sc_tls_params sp = {.ctx = server_ctx};
    struct end c, s;
    negotiate(base, &cp, &sp, &c, &s);
    assert_int_equal(c.err, 0);
    struct sc_identity *ia, *ib;
    struct sc_link_key *ka, *kb;
    assert_int_equal(sc_identity_generate(&ia), 0);
    assert_int_equal(sc_identity_generate(&ib), 0);
    assert_int_equal(sc_link_key_generate(ia, sc_unix_s() + 3600, &ka), 0);
    assert_int_equal(sc_link_key_generate(ib, sc_unix_s() + 3600, &kb), 0);
    struct linkside li = {0}, lr = {0};
    struct sc_link_config ci, cr;
    sc_link_config_defaults(&ci);
    sc_link_config_defaults(&cr);
    ci.identity = ia;
    ci.link_key = ka;
    ci.initiator = true;
    ci.cb.on_authenticated = l_up;
    ci.cb.on_closed = l_closed;
    ci.cb_arg = &li;
    cr.identity = ib;
    cr.link_key = kb;
    cr.cb.on_authenticated = l_up;
    cr.cb.on_closed = l_closed;
    cr.cb_arg = &lr;
    struct sc_link *a, *b;
    assert_int_equal(sc_link_start(base, c.s, &ci, NULL, &a), 0);
    assert_int_equal(sc_link_start(base, s.s, &cr, NULL, &b), 0);
    run_until(base, &li.up, &lr.up, 5000);
    assert_true(li.up && lr.up);
    sc_link_close(a, SC_REASON_LOCAL_CLOSE);
    run_until(base, &li.closed, &lr.closed, 5000);
    assert_int_equal(li.reason, SC_REASON_LOCAL_CLOSE);
    assert_int_equal(lr.reason, SC_REASON_LOCAL_CLOSE);
    sc_link_finish_lingering(base);
    sc_link_key_free(ka);
    sc_link_key_free(kb);
    sc_identity_free(ia);
    sc_identity_free(ib);
    event_base_free(base);
}

/* ---- configuration -------------------------------------------------------------- */

static void test_pin_parse(void **state)
{
    (void)state;
    uint8_t out[32];
    /* SHA-256 of the empty string, base64 */
    const char *good = "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    assert_int_equal(sc_tls_pin_parse(good, out), 0);
    assert_int_equal(out[0], 0xe3);
    assert_int_equal(out[31], 0x55);
    const char *bad[] = {
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",          /* no prefix */
        "sha1//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",    /* wrong hash */
        "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF=",   /* short */
        "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=A", /* long */
        "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=",  /* not canonical */
        "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSu!U=",  /* not base64 */
        "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFUA",  /* no padding */
        "sha256//",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sc_tls_pin_parse(bad[i], out), SC_EFORMAT);
    assert_int_equal(sc_tls_pin_parse(NULL, out), SC_EFORMAT);
}

static void test_self_signed_files(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(cert, &st), 0);
    assert_int_equal(st.st_mode & 0022, 0); /* nobody else may write it */
    char err[256], c3[128], k3[128];
    /* never overwrites: neither an existing key nor an existing certificate */
    assert_int_equal(sc_tls_self_signed(cert, key, "x", err, sizeof err), SC_EEXIST);
    assert_non_null(strstr(err, "already exists"));
    path(k3, "fresh.key");
    assert_int_equal(sc_tls_self_signed(cert, k3, "x", err, sizeof err), SC_EEXIST);
    assert_int_equal(access(k3, F_OK), -1); /* the key it made first is gone again */
    path(c3, "fresh.pem");
    assert_int_equal(sc_tls_self_signed(c3, k3, "bad name,DNS:evil", err, sizeof err), SC_EINVAL);
    assert_int_equal(access(k3, F_OK), -1);
    assert_int_equal(access(c3, F_OK), -1);
}

static void test_ctx_errors(void **state)
{
    (void)state;
    SSL_CTX *ctx = NULL;
    char err[256], missing[128], junk[128];
    path(missing, "missing.pem");
    assert_int_equal(sc_tls_server_ctx_new(missing, key, 0, &ctx, err, sizeof err), SC_ENOENT);
    assert_non_null(strstr(err, missing));
    assert_int_equal(sc_tls_server_ctx_new(cert, missing, 0, &ctx, err, sizeof err), SC_ENOENT);
    assert_non_null(strstr(err, "key file"));
    /* the other certificate's key */
    assert_int_equal(sc_tls_server_ctx_new(cert, key2, 0, &ctx, err, sizeof err), SC_ETLSKEY);
    assert_non_null(strstr(err, "does not match"));
    path(junk, "junk.pem");
    FILE *f = fopen(junk, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    assert_int_equal(sc_tls_server_ctx_new(junk, key, 0, &ctx, err, sizeof err), SC_EFORMAT);
    assert_int_equal(sc_tls_client_ctx_new(0, SC_TLS_VERIFY_CA, junk, &ctx, err, sizeof err),
                     SC_EFORMAT);
    assert_int_equal(sc_tls_client_ctx_new(0, SC_TLS_VERIFY_CA, missing, &ctx, err, sizeof err),
                     SC_ENOENT);
    assert_int_equal(sc_tls_server_ctx_new(cert, key, 0x0301, &ctx, err, sizeof err), SC_EINVAL);
    if (geteuid() != 0) { /* root reads anything */
        chmod(junk, 0);
        assert_int_equal(sc_tls_server_ctx_new(junk, key, 0, &ctx, err, sizeof err), SC_EACCES);
    }
    assert_null(ctx);
    unlink(junk);
    assert_int_equal(sc_tls_version_parse("1.2"), TLS1_2_VERSION);
    assert_int_equal(sc_tls_version_parse("1.3"), TLS1_3_VERSION);
    assert_int_equal(sc_tls_version_parse("1.1"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pin_parse),
        cmocka_unit_test(test_self_signed_files),
        cmocka_unit_test(test_ctx_errors),
        cmocka_unit_test(test_binding_and_alpn),
        cmocka_unit_test(test_version_mismatch),
        cmocka_unit_test(test_pins),
        cmocka_unit_test(test_ca_verify),
        cmocka_unit_test(test_close_notify_after_queued_bytes),
        cmocka_unit_test(test_not_a_client_hello),
        cmocka_unit_test(test_link_over_tls),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
