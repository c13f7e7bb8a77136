/* fuzz/fuzz_handshake.c — libFuzzer target for the link handshake state
 * machine (link/handshake.h), with fixed identities, link keys and
 * ephemerals so that a run is deterministic and the seeds stay valid.
 *
 * The first input byte is a set of flags, the rest one handshake message:
 *   bits 0-1 (mod 3) which reader gets the message:
 *     0  a responder reads it as message 1, then writes message 2;
 *     1  an initiator writes message 1, reads it as message 2, then writes
 *        message 3 and finishes;
 *     2  a real initiator and responder exchange messages 1 and 2, then the
 *        responder reads it as message 3 and finishes.
 *   bit 2  the responder has probe_resistance;
 *   bit 3  the initiator knows the responder's ID (expected_id);
 *   bit 4  the initiator expects another relay's ID instead.
 * Like the link driver, only a message of exactly the right size reaches a
 * reader; other sizes are ignored. Invariants (a failure sets FAILED and a
 * reason; a success never names ourselves nor anyone but an expected ID)
 * are checked with __builtin_trap(). Every handshake and cipher is cleared.
 *
 * With SC_FUZZ_WRITE_SEEDS=DIR set, the target writes seeds made by real
 * runs into DIR and exits (fuzz/corpus/fuzz_handshake/ was made that way). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "link/handshake.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_UNIX 1767225600u      /* 2026-01-01T00:00:00Z, passed as now_unix */
#define EXPIRY_UNIX (NOW_UNIX + 86400u) /* a day later: within the lifetime ceiling */

#define MODE_MSG1 0u
#define MODE_MSG2 1u
#define MODE_MSG3 2u
#define F_PROBE 0x04u
#define F_KNOWN 0x08u
#define F_OTHER 0x10u

static struct sc_identity *id_ini, *id_res, *id_other;
static struct sc_link_key lk_ini, lk_res;
static uint8_t e_ini[32], e_res[32];

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

/* A link key with a fixed private key, certified by `id` until EXPIRY_UNIX
 * (certificate message of docs/PROTOCOL.md, "Link-key certificate"). */
static void fixed_link_key(struct sc_link_key *lk, const struct sc_identity *id, uint8_t fill)
{
    static const char label[] = "secirc link key v1";
    uint8_t msg[sizeof label - 1 + SC_LINK_KEY_BYTES + 8];

    memset(lk->priv, fill, sizeof lk->priv);
    check(crypto_scalarmult_base(lk->pub, lk->priv) == 0);
    memcpy(lk->cert.identity, sc_identity_relay_id(id), SC_RELAY_ID_BYTES);
    memcpy(lk->cert.link_pub, lk->pub, SC_LINK_KEY_BYTES);
    lk->cert.expiry_unix = EXPIRY_UNIX;
    memcpy(msg, label, sizeof label - 1);
    memcpy(msg + sizeof label - 1, lk->pub, SC_LINK_KEY_BYTES);
    for (int i = 0; i < 8; i++)
        msg[sizeof msg - 1 - i] = (uint8_t)((uint64_t)EXPIRY_UNIX >> (8 * i));
    check(sc_identity_sign(id, msg, sizeof msg, lk->cert.signature) == 0);
    check(sc_link_cert_verify(&lk->cert, lk->pub, NOW_UNIX) == 0);
}

static struct sc_identity *fixed_identity(uint8_t fill)
{
    uint8_t seed[32];
    struct sc_identity *id = NULL;

    memset(seed, fill, sizeof seed);
    check(sc_identity_from_seed(seed, &id) == 0);
    return id;
}

static void keys_init(void)
{
    check(sodium_init() >= 0);
    id_ini = fixed_identity(0x01);
    id_res = fixed_identity(0x02);
    id_other = fixed_identity(0x03);
    fixed_link_key(&lk_ini, id_ini, 0x11);
    fixed_link_key(&lk_res, id_res, 0x22);
    memset(e_ini, 0x33, sizeof e_ini);
    memset(e_res, 0x44, sizeof e_res);
}

static void init_initiator(struct sc_handshake *hs, unsigned flags)
{
    struct sc_hs_config c;

    memset(&c, 0, sizeof c);
    c.initiator = true;
    c.identity = id_ini;
    c.link_key = &lk_ini;
    c.max_message_bytes = 4096;
    c.e_priv = e_ini;
    if (flags & (F_KNOWN | F_OTHER)) {
        c.has_expected_id = true;
        memcpy(c.expected_id, sc_identity_relay_id(flags & F_OTHER ? id_other : id_res),
               SC_RELAY_ID_BYTES);
    }
    check(sc_hs_init(hs, &c) == 0);
}

static void init_responder(struct sc_handshake *hs, unsigned flags)
{
    struct sc_hs_config c;

    memset(&c, 0, sizeof c);
    c.identity = id_res;
    c.link_key = &lk_res;
    c.max_message_bytes = SC_MESSAGE_PAYLOAD_MAX_BYTES;
    c.probe_resistance = (flags & F_PROBE) != 0;
    c.e_priv = e_res;
    check(sc_hs_init(hs, &c) == 0);
}

/* After a step: failure is FAILED with a reason, success is the next state. */
static void check_step(const struct sc_handshake *hs, int err, enum sc_hs_state next)
{
    if (err) {
        check(err < 0 && hs->state == SC_HS_FAILED && hs->reason != SC_REASON_NONE);
        check(sodium_is_zero((const unsigned char *)&hs->noise, sizeof hs->noise));
    } else {
        check(hs->state == next);
    }
}

/* A peer that passed a reader: never ourselves, the expected ID if any. */
static void check_peer(const struct sc_handshake *hs, const uint8_t *expected)
{
    check(sodium_memcmp(hs->peer_id, sc_identity_relay_id(hs->identity), SC_RELAY_ID_BYTES) != 0);
    if (expected != NULL)
        check(memcmp(hs->peer_id, expected, SC_RELAY_ID_BYTES) == 0);
    check(hs->version == 1);
    check(hs->peer_max_message <= SC_MESSAGE_PAYLOAD_MAX_BYTES);
}

static void finish(struct sc_handshake *hs)
{
    struct sc_noise_cipher send, recv;
    uint8_t hash[SC_NOISE_HASH_BYTES];

    memset(&send, 0, sizeof send);
    memset(&recv, 0, sizeof recv);
    int err = sc_hs_finish(hs, &send, &recv, hash);
    check(err == 0 && hs->state == SC_HS_DONE);
    sc_noise_cipher_clear(&send);
    sc_noise_cipher_clear(&recv);
}

/* The real exchange of messages 1 and 2 (mode 2), which must succeed. */
static void real_msg1_msg2(struct sc_handshake *ini, struct sc_handshake *res)
{
    uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES];

    check(sc_hs_write_msg1(ini, m1) == 0);
    check(sc_hs_read_msg1(res, m1) == 0);
    check(sc_hs_write_msg2(res, m2) == 0);
    check(sc_hs_read_msg2(ini, m2, NOW_UNIX) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sc_handshake ini, res;
    uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES], m3[SC_HS_MSG3_BYTES];
    unsigned flags, mode;
    int err;

    if (size < 1)
        return 0;
    flags = data[0];
    mode = (flags & 3u) % 3u;
    data++;
    size--;
    /* Mode 2's real initiator must get through: it knows the responder's
     * ID when that one is probe resistant, and never expects another. */
    if (mode == MODE_MSG3) {
        flags &= ~F_OTHER;
        if (flags & F_PROBE)
            flags |= F_KNOWN;
    }

    memset(&ini, 0, sizeof ini);
    memset(&res, 0, sizeof res);
    switch (mode) {
    case MODE_MSG1:
        if (size != SC_HS_MSG1_BYTES)
            return 0;
        init_responder(&res, flags);
        err = sc_hs_read_msg1(&res, data);
        check_step(&res, err, SC_HS_GOT_MSG1);
        if (err) {
            check((flags & F_PROBE) ? res.reason == SC_REASON_PROBE_DROPPED
                                    : res.reason != SC_REASON_PROBE_DROPPED);
            break;
        }
        err = sc_hs_write_msg2(&res, m2); /* ee with the fuzzed e */
        check_step(&res, err, SC_HS_SENT_MSG2);
        break;
    case MODE_MSG2:
        if (size != SC_HS_MSG2_BYTES)
            return 0;
        init_initiator(&ini, flags);
        check(sc_hs_write_msg1(&ini, m1) == 0);
        err = sc_hs_read_msg2(&ini, data, NOW_UNIX);
        check_step(&ini, err, SC_HS_GOT_MSG2);
        if (err)
            break;
        check_peer(&ini, flags & F_OTHER   ? sc_identity_relay_id(id_other)
                         : flags & F_KNOWN ? sc_identity_relay_id(id_res)
                                           : NULL);
        check(sc_hs_write_msg3(&ini, m3) == 0);
        finish(&ini);
        break;
    default:
        if (size != SC_HS_MSG3_BYTES)
            return 0;
        init_initiator(&ini, flags);
        init_responder(&res, flags);
        real_msg1_msg2(&ini, &res);
        err = sc_hs_read_msg3(&res, data, NOW_UNIX);
        check_step(&res, err, SC_HS_GOT_MSG3);
        if (err)
            break;
        check_peer(&res, NULL);
        finish(&res);
        break;
    }
    sc_hs_clear(&ini);
    sc_hs_clear(&res);
    return 0;
}

/* ---- seeds ------------------------------------------------------------------ */

static void write_seed(const char *dir, const char *name, unsigned flags, const uint8_t *msg,
                       size_t len)
{
    char path[4096];
    uint8_t flag = (uint8_t)flags;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    check(f != NULL && fwrite(&flag, 1, 1, f) == 1 && fwrite(msg, 1, len, f) == len &&
          fclose(f) == 0);
}

static void write_seeds(const char *dir)
{
    static const unsigned variants[] = {0, F_KNOWN, F_KNOWN | F_PROBE, F_OTHER};
    static const char *const names[] = {"tofu", "known", "known-probe", "other"};
    struct sc_handshake ini, res;
    uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES], m3[SC_HS_MSG3_BYTES];
    char name[64];

    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        unsigned f = variants[i];
        init_initiator(&ini, f);
        init_responder(&res, f & ~F_PROBE);
        check(sc_hs_write_msg1(&ini, m1) == 0);
        check(sc_hs_read_msg1(&res, m1) == 0);
        check(sc_hs_write_msg2(&res, m2) == 0);
        snprintf(name, sizeof name, "msg1-%s", names[i]);
        write_seed(dir, name, MODE_MSG1 | f, m1, sizeof m1);
        snprintf(name, sizeof name, "msg2-%s", names[i]);
        write_seed(dir, name, MODE_MSG2 | f, m2, sizeof m2);
        if (sc_hs_read_msg2(&ini, m2, NOW_UNIX) == 0) {
            check(sc_hs_write_msg3(&ini, m3) == 0);
            snprintf(name, sizeof name, "msg3-%s", names[i]);
            write_seed(dir, name, MODE_MSG3 | f, m3, sizeof m3);
        }
        sc_hs_clear(&ini);
        sc_hs_clear(&res);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    keys_init();
    const char *dir = getenv("SC_FUZZ_WRITE_SEEDS");
    if (dir != NULL) {
        write_seeds(dir);
        exit(0);
    }
    return 0;
}
