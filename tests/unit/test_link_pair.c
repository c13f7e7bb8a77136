/* test_link_pair.c — the link driver over an in-memory bufferevent pair (no
 * socket at all: the link must not care what carries its bytes). ACCEPT and
 * every REJECT reason, send limits, orderly close delivering every queued
 * message before CLOSE, rekey after every frame, handshake timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "secirc/identity.h"
#include "secirc/link.h"
#include "util/time.h"

struct side {
    struct sc_link *link;
    bool up, closed, by_peer;
    bool any_len;  /* messages of any size: count them, check only the size sum */
    uint64_t bytes;
    unsigned closed_calls, rtt_samples;
    enum sc_reason reason;
    enum sc_reason verdict; /* responder policy answer */
    uint64_t received;
    uint64_t next_seq; /* messages must arrive in order */
    bool order_ok;
    struct sc_link_stats final;
};

struct pair {
    struct event_base *base;
    struct sc_identity *id_i, *id_r;
    struct sc_link_key *key_i, *key_r;
    struct side ini, res;
};

static void on_up(struct sc_link *link, void *arg)
{
    (void)link;
    ((struct side *)arg)->up = true;
}

static void on_message(struct sc_link *link, const struct sc_relay_message *m, void *arg)
{
    (void)link;
    struct side *s = arg;
    if (s->any_len) {
        s->received++;
        s->bytes += m->len;
        return;
    }
    uint64_t seq = 0;
    memcpy(&seq, m->id, sizeof seq);
    if (seq != s->next_seq || m->len != (size_t)(seq % 300))
        s->order_ok = false;
    for (size_t i = 0; i < m->len; i++)
        if (m->payload[i] != (uint8_t)(seq + i))
            s->order_ok = false;
    s->next_seq++;
    s->received++;
}

static enum sc_reason policy(struct sc_link *link, const uint8_t id[SC_RELAY_ID_BYTES],
                             struct sc_accept_info *info, void *arg)
{
    (void)link;
    (void)id;
    info->priority = SC_PRIORITY_VERIFIED;
    return ((struct side *)arg)->verdict;
}

static void on_closed(struct sc_link *link, enum sc_reason reason, bool by_peer, void *arg)
{
    struct side *s = arg;
    sc_link_get_stats(link, &s->final);
    s->closed = true;
    s->closed_calls++;
    s->reason = reason;
    s->by_peer = by_peer;
    s->link = NULL;
}

static void on_rtt(struct sc_link *link, uint32_t rtt_us, void *arg)
{
    (void)link;
    (void)rtt_us;
    ((struct side *)arg)->rtt_samples++;
}

static const struct sc_link_callbacks callbacks = {.on_authenticated = on_up,
                                                   .on_message = on_message,
                                                   .on_rtt = on_rtt,
                                                   .policy = policy,
                                                   .on_closed = on_closed};

/* Expiry of the initiator's link key, seconds from now (start()). */
static int64_t g_initiator_key_s = 3600;

/* Runs the loop until cond holds or a 5 s deadline passes. */
static bool run_until(struct pair *p, bool (*cond)(struct pair *))
{
    uint64_t deadline = sc_mono_ms() + 5000;
    while (!cond(p) && sc_mono_ms() < deadline)
        event_base_loop(p->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    return cond(p);
}

static bool both_up(struct pair *p) { return p->ini.up && p->res.up; }
static bool both_closed(struct pair *p) { return p->ini.closed && p->res.closed; }

static void start(struct pair *p, void (*tweak)(struct sc_link_config *, bool initiator))
{
    memset(p, 0, sizeof *p);
    p->ini.order_ok = p->res.order_ok = true;
    p->base = event_base_new();
    assert_non_null(p->base);
    assert_int_equal(sc_identity_generate(&p->id_i), 0);
    assert_int_equal(sc_identity_generate(&p->id_r), 0);
    assert_int_equal(
        sc_link_key_generate(p->id_i, (uint64_t)((int64_t)sc_unix_s() + g_initiator_key_s), &p->key_i), 0);
    assert_int_equal(sc_link_key_generate(p->id_r, sc_unix_s() + 3600, &p->key_r), 0);
    struct bufferevent *ends[2];
    assert_int_equal(bufferevent_pair_new(p->base, BEV_OPT_CLOSE_ON_FREE, ends), 0);
    struct sc_link_config ci, cr;
    sc_link_config_defaults(&ci);
    sc_link_config_defaults(&cr);
    ci.identity = p->id_i;
    ci.link_key = p->key_i;
    ci.initiator = true;
    ci.has_expected_id = true;
    memcpy(ci.expected_id, sc_identity_relay_id(p->id_r), SC_RELAY_ID_BYTES);
    ci.cb = callbacks;
    ci.cb_arg = &p->ini;
    cr.identity = p->id_r;
    cr.link_key = p->key_r;
    cr.cb = callbacks;
    cr.cb_arg = &p->res;
    if (tweak) {
        tweak(&ci, true);
        tweak(&cr, false);
    }
    assert_int_equal(sc_link_new(p->base, ends[1], &cr, &p->res.link), 0);
    assert_int_equal(sc_link_new(p->base, ends[0], &ci, &p->ini.link), 0);
}

static void finish(struct pair *p)
{
    sc_link_free(p->ini.link);
    sc_link_free(p->res.link);
    event_base_free(p->base);
    sc_link_key_free(p->key_i);
    sc_link_key_free(p->key_r);
    sc_identity_free(p->id_i);
    sc_identity_free(p->id_r);
}

static int send_seq(struct sc_link *link, uint64_t seq)
{
    uint8_t id[SC_MESSAGE_ID_BYTES] = {0}, payload[300];
    memcpy(id, &seq, sizeof seq);
    size_t len = (size_t)(seq % 300);
    for (size_t i = 0; i < len; i++)
        payload[i] = (uint8_t)(seq + i);
    return sc_link_send(link, id, 8, 0, payload, len);
}

static void test_accept_and_messages(void **state)
{
    (void)state;
    struct pair p;
    start(&p, NULL);
    assert_true(run_until(&p, both_up));
    assert_memory_equal(sc_link_peer_id(p.ini.link), sc_identity_relay_id(p.id_r), SC_RELAY_ID_BYTES);
    assert_memory_equal(sc_link_peer_id(p.res.link), sc_identity_relay_id(p.id_i), SC_RELAY_ID_BYTES);
    assert_int_equal(sc_link_accept_info(p.ini.link)->priority, SC_PRIORITY_VERIFIED);
    uint8_t h1[64], h2[64];
    assert_int_equal(sc_link_handshake_hash(p.ini.link, h1), 0);
    assert_int_equal(sc_link_handshake_hash(p.res.link, h2), 0);
    assert_memory_equal(h1, h2, 64);
    for (uint64_t i = 0; i < 2000; i++) {
        assert_int_equal(send_seq(p.ini.link, i), 0);
        assert_int_equal(send_seq(p.res.link, i), 0);
    }
    sc_link_close(p.ini.link, SC_REASON_LOCAL_CLOSE);
    assert_true(run_until(&p, both_closed));
    assert_int_equal(p.res.received, 2000);
    assert_int_equal(p.ini.received, 2000);
    assert_true(p.res.order_ok && p.ini.order_ok);
    assert_int_equal(p.res.reason, SC_REASON_LOCAL_CLOSE);
    assert_true(p.res.by_peer);
    assert_int_equal(p.ini.final.messages_unsent, 0);
    finish(&p);
}

static void test_every_reject_reason(void **state)
{
    (void)state;
    static const enum sc_reason reasons[] = {SC_REASON_BUSY, SC_REASON_NOT_ALLOWED,
                                             SC_REASON_PROTOCOL_VERSION, SC_REASON_DUPLICATE,
                                             SC_REASON_SHUTDOWN};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        struct pair p;
        start(&p, NULL);
        p.res.verdict = reasons[i];
        assert_true(run_until(&p, both_closed));
        assert_false(p.ini.up);
        assert_int_equal(p.ini.reason, reasons[i]);
        assert_true(p.ini.by_peer);
        assert_int_equal(p.res.reason, reasons[i]);
        assert_false(p.res.by_peer);
        assert_int_equal(p.res.received, 0);
        finish(&p);
    }
}

static void small_queue(struct sc_link_config *c, bool initiator)
{
    (void)initiator;
    c->send_queue_messages = 8;
    c->max_message_bytes = 100;
}

static void test_send_limits(void **state)
{
    (void)state;
    struct pair p;
    start(&p, small_queue);
    uint8_t id[SC_MESSAGE_ID_BYTES] = {0}, big[200] = {0};
    assert_int_equal(sc_link_send(p.ini.link, id, 1, 0, big, 1), SC_ESTATE); /* not yet up */
    assert_true(run_until(&p, both_up));
    assert_int_equal(sc_link_send(p.ini.link, id, 1, 0, big, 101), SC_ETOOBIG);
    assert_int_equal(sc_link_send(p.ini.link, id, 1, 0, big, 100), 0);
    for (int i = 1; i < 8; i++)
        assert_int_equal(sc_link_send(p.ini.link, id, 1, 0, big, 10), 0);
    assert_int_equal(sc_link_send(p.ini.link, id, 1, 0, big, 10), SC_EAGAIN);
    sc_link_close(p.ini.link, SC_REASON_LOCAL_CLOSE);
    assert_true(run_until(&p, both_closed));
    assert_int_equal(p.res.received, 8); /* all queued ones arrived before CLOSE */
    finish(&p);
}

static void rekey_always(struct sc_link_config *c, bool initiator)
{
    (void)initiator;
    c->rekey_after_frames = 1;
    c->max_frame_bytes = SC_FRAME_BODY_MIN_BYTES + 256;
}

static void test_rekey_every_frame(void **state)
{
    (void)state;
    struct pair p;
    start(&p, rekey_always);
    assert_true(run_until(&p, both_up));
    for (uint64_t i = 0; i < 3000; i++)
        assert_int_equal(send_seq(p.ini.link, i), 0);
    sc_link_close(p.ini.link, SC_REASON_LOCAL_CLOSE);
    assert_true(run_until(&p, both_closed));
    assert_int_equal(p.res.received, 3000);
    assert_true(p.res.order_ok);
    assert_true(p.ini.final.rekeys_sent >= 1000);
    /* a frame with CLOSE never carries REKEY: at most one rekey is left
     * unreceived, the one of a frame in flight when the receiver closed */
    assert_true(p.res.final.rekeys_received + 1 >= p.ini.final.rekeys_sent);
    finish(&p);
}

static uint8_t other_id[SC_RELAY_ID_BYTES] = {7, 7, 7};

static void mismatch(struct sc_link_config *c, bool initiator)
{
    c->connection_timeout_ms = 200;
    if (initiator)
        memcpy(c->expected_id, other_id, SC_RELAY_ID_BYTES);
}

static void test_identity_mismatch(void **state)
{
    (void)state;
    struct pair p;
    start(&p, mismatch);
    assert_true(run_until(&p, both_closed));
    assert_false(p.ini.up || p.res.up);
    assert_int_equal(p.ini.reason, SC_REASON_IDENTITY_MISMATCH);
    assert_false(p.ini.by_peer);
    assert_int_equal(p.res.reason, SC_REASON_TIMEOUT); /* told nothing before keys */
    finish(&p);
}

static void probe(struct sc_link_config *c, bool initiator)
{
    c->connection_timeout_ms = 200;
    if (initiator)
        c->has_expected_id = false; /* trust on first use: mac1 over zeros */
    else
        c->probe_resistance = true;
}

static void test_probe_silence(void **state)
{
    (void)state;
    struct pair p;
    start(&p, probe);
    uint64_t t0 = sc_mono_ms();
    assert_true(run_until(&p, both_closed));
    assert_true(sc_mono_ms() - t0 >= 190);
    assert_int_equal(p.res.reason, SC_REASON_PROBE_DROPPED);
    assert_int_equal(p.ini.reason, SC_REASON_TIMEOUT);
    assert_int_equal(p.ini.final.bytes_received, 0); /* not one byte came back */
    finish(&p);
}

static bool ini_closed(struct pair *p) { return p->ini.closed; }

static void big_messages(struct sc_link_config *c, bool initiator)
{
    (void)c;
    (void)initiator;
}

/* sc_link_send takes every size up to the largest payload both sides
 * announce, at the exact boundary, and such messages arrive whole, mixed
 * with small ones, PINGs and a CLOSE. */
static void test_max_message_boundary(void **state)
{
    (void)state;
    static uint8_t big[SC_MESSAGE_PAYLOAD_MAX_BYTES + 1];
    uint8_t id[SC_MESSAGE_ID_BYTES] = {1};
    struct pair p;
    start(&p, big_messages);
    p.res.any_len = true;
    assert_true(run_until(&p, both_up));
    uint64_t want = 0;
    for (int round = 0; round < 50; round++) {
        size_t sizes[] = {SC_MESSAGE_PAYLOAD_MAX_BYTES, 65434, 1, SC_MESSAGE_PAYLOAD_MAX_BYTES - 1};
        for (size_t i = 0; i < 4; i++) {
            int err = sc_link_send(p.ini.link, id, 1, 0, big, sizes[i]);
            if (err == SC_EAGAIN) { /* queue full: let it drain */
                event_base_loop(p.base, EVLOOP_NONBLOCK);
                err = sc_link_send(p.ini.link, id, 1, 0, big, sizes[i]);
            }
            if (err == 0)
                want += sizes[i];
            assert_true(err == 0 || err == SC_EAGAIN);
        }
        assert_int_equal(sc_link_ping(p.ini.link), 0);
        event_base_loop(p.base, EVLOOP_NONBLOCK);
    }
    assert_int_equal(sc_link_send(p.ini.link, id, 1, 0, big, SC_MESSAGE_PAYLOAD_MAX_BYTES + 1),
                     SC_ETOOBIG);
    assert_int_equal(sc_link_send(p.ini.link, id, 0, 0, big, 10), SC_EINVAL); /* hop limit 0 */
    sc_link_close(p.ini.link, SC_REASON_LOCAL_CLOSE);
    assert_true(run_until(&p, both_closed));
    assert_int_equal(p.res.reason, SC_REASON_LOCAL_CLOSE);
    assert_int_equal(p.res.bytes, want);
    assert_int_equal(p.ini.final.messages_unsent, 0);
    finish(&p);
}

static void responder_takes_1000(struct sc_link_config *c, bool initiator)
{
    if (!initiator)
        c->max_message_bytes = 1000;
}

/* The smaller of the two announced limits, exactly. */
static void test_peer_limit_boundary(void **state)
{
    (void)state;
    uint8_t id[SC_MESSAGE_ID_BYTES] = {1}, big[1001] = {0};
    struct pair p;
    start(&p, responder_takes_1000);
    p.res.any_len = p.ini.any_len = true;
    assert_true(run_until(&p, both_up));
    assert_int_equal(sc_link_accept_info(p.ini.link)->max_message_bytes, 1000);
    assert_int_equal(sc_link_send(p.ini.link, id, 1, 0, big, 1000), 0);
    assert_int_equal(sc_link_send(p.ini.link, id, 1, 0, big, 1001), SC_ETOOBIG);
    /* Both directions use the smaller limit, whoever announced it. */
    assert_int_equal(sc_link_send(p.res.link, id, 1, 0, big, 1001), SC_ETOOBIG);
    assert_int_equal(sc_link_send(p.res.link, id, 1, 0, big, 1000), 0);
    sc_link_close(p.ini.link, SC_REASON_LOCAL_CLOSE);
    assert_true(run_until(&p, both_closed));
    assert_int_equal(p.res.bytes, 1000);
    finish(&p);
}

/* A link whose peer's certificate expires while it is up is closed with
 * cert_expired (the initiator's key is valid for one more second, counting
 * the allowed clock skew). */
static void test_cert_expires_while_up(void **state)
{
    (void)state;
    struct pair p;
    g_initiator_key_s = 1 - (int64_t)SC_CERT_CLOCK_SKEW_S;
    start(&p, NULL);
    g_initiator_key_s = 3600;
    assert_true(run_until(&p, both_up));
    assert_true(run_until(&p, both_closed));
    assert_int_equal(p.res.reason, SC_REASON_CERT_EXPIRED);
    assert_false(p.res.by_peer);
    assert_int_equal(p.ini.reason, SC_REASON_CERT_EXPIRED);
    assert_true(p.ini.by_peer);
    finish(&p);
}

/* sc_link_free on a link that is up reports it once, at once. */
static void test_free_reports_once(void **state)
{
    (void)state;
    struct pair p;
    start(&p, NULL);
    assert_true(run_until(&p, both_up));
    struct sc_link *l = p.ini.link;
    sc_link_free(l);
    assert_int_equal(p.ini.closed_calls, 1);
    assert_int_equal(p.ini.reason, SC_REASON_LOCAL_CLOSE);
    /* A link that is already closing is reported once as well. */
    sc_link_close(p.res.link, SC_REASON_SHUTDOWN);
    assert_false(p.res.closed);
    sc_link_free(p.res.link);
    assert_int_equal(p.res.closed_calls, 1);
    assert_int_equal(p.res.reason, SC_REASON_SHUTDOWN);
    assert_int_equal(p.ini.closed_calls, 1);
    finish(&p);
}

static void responder_beats_fast(struct sc_link_config *c, bool initiator)
{
    c->heartbeat_interval_ms = initiator ? 30000 : 50;
}

static bool ini_has_rtt(struct pair *p) { return p->ini.rtt_samples >= 3; }

/* The initiator honours the responder's shorter heartbeat from ACCEPT. */
static void test_heartbeat_from_accept(void **state)
{
    (void)state;
    struct pair p;
    start(&p, responder_beats_fast);
    assert_true(run_until(&p, both_up));
    assert_int_equal(sc_link_accept_info(p.ini.link)->heartbeat_interval_ms, 50);
    assert_true(run_until(&p, ini_has_rtt));
    sc_link_close(p.ini.link, SC_REASON_LOCAL_CLOSE);
    assert_true(run_until(&p, both_closed));
    assert_true(run_until(&p, ini_closed));
    finish(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_and_messages),
        cmocka_unit_test(test_every_reject_reason),
        cmocka_unit_test(test_send_limits),
        cmocka_unit_test(test_rekey_every_frame),
        cmocka_unit_test(test_identity_mismatch),
        cmocka_unit_test(test_probe_silence),
        cmocka_unit_test(test_max_message_boundary),
        cmocka_unit_test(test_peer_limit_boundary),
        cmocka_unit_test(test_cert_expires_while_up),
        cmocka_unit_test(test_free_reports_once),
        cmocka_unit_test(test_heartbeat_from_accept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
