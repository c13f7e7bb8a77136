/* link/handshake.c — the link handshake over the Noise engine: fixed-size
 * XX messages, mac1 on message 1, identity + link-key certificate payloads,
 * version agreement. Pure: no I/O and no clock (the caller passes times);
 * only debug lines for state changes. It must never accept a peer whose
 * certificate does not bind its Noise static key. */
#include "link/handshake.h"

#include <sodium.h>
#include <string.h>

#include "util/bytes.h"
#include "util/check.h"
#include "util/log.h"

void sc_hs_mac1(const uint8_t relay_id[SC_RELAY_ID_BYTES], uint64_t epoch, const uint8_t *msg,
                size_t len, uint8_t out[SC_HS_MAC1_BYTES])
{
    uint8_t key[32], epoch_be[8];
    sc_put_be64(epoch_be, epoch);
    crypto_generichash_blake2b_state st;
    crypto_generichash_blake2b_init(&st, NULL, 0, sizeof key);
    crypto_generichash_blake2b_update(&st, (const uint8_t *)SC_HS_MAC1_LABEL,
                                      sizeof SC_HS_MAC1_LABEL - 1);
    crypto_generichash_blake2b_update(&st, relay_id, SC_RELAY_ID_BYTES);
    crypto_generichash_blake2b_update(&st, epoch_be, sizeof epoch_be);
    crypto_generichash_blake2b_final(&st, key, sizeof key);
    crypto_generichash_blake2b(out, SC_HS_MAC1_BYTES, msg, len, key, sizeof key);
    sodium_memzero(key, sizeof key);
}

static const char *const state_names[] = {
    [SC_HS_START] = "start",         [SC_HS_SENT_MSG1] = "sent_msg1", [SC_HS_GOT_MSG2] = "got_msg2",
    [SC_HS_SENT_MSG3] = "sent_msg3", [SC_HS_GOT_MSG1] = "got_msg1",   [SC_HS_SENT_MSG2] = "sent_msg2",
    [SC_HS_GOT_MSG3] = "got_msg3",   [SC_HS_DONE] = "done",           [SC_HS_FAILED] = "failed",
};

const char *sc_hs_state_name(enum sc_hs_state s)
{
    return (unsigned)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "?";
}

/* The transitions of handshake.h: each step moves one forward, any to FAILED. */
static bool transition_allowed(enum sc_hs_state from, enum sc_hs_state to)
{
    if (to == SC_HS_FAILED)
        return from != SC_HS_DONE;
    switch (from) {
    case SC_HS_START:
        return to == SC_HS_SENT_MSG1 || to == SC_HS_GOT_MSG1;
    case SC_HS_SENT_MSG1:
        return to == SC_HS_GOT_MSG2;
    case SC_HS_GOT_MSG2:
        return to == SC_HS_SENT_MSG3;
    case SC_HS_SENT_MSG3:
        return to == SC_HS_DONE;
    case SC_HS_GOT_MSG1:
        return to == SC_HS_SENT_MSG2;
    case SC_HS_SENT_MSG2:
        return to == SC_HS_GOT_MSG3;
    case SC_HS_GOT_MSG3:
        return to == SC_HS_DONE;
    default:
        return false;
    }
}

static void set_state(struct sc_handshake *hs, enum sc_hs_state next)
{
    SC_CHECK(transition_allowed(hs->state, next), "illegal handshake transition %s -> %s",
             sc_hs_state_name(hs->state), sc_hs_state_name(next));
    if (sc_log_enabled(SC_LOG_DEBUG))
        sc_log(SC_LOG_DEBUG, "handshake.state", "role=%s from=%s to=%s",
               hs->initiator ? "initiator" : "responder", sc_hs_state_name(hs->state),
               sc_hs_state_name(next));
    hs->state = next;
}

/* Moves to FAILED with `reason` and returns `err`. */
static int fail(struct sc_handshake *hs, enum sc_reason reason, int err)
{
    if (hs->state != SC_HS_FAILED)
        set_state(hs, SC_HS_FAILED);
    hs->reason = reason;
    sc_noise_handshake_clear(&hs->noise);
    return err;
}

/* Maps a Noise read failure to a reason. */
static int noise_fail(struct sc_handshake *hs, int err)
{
    return fail(hs, err == SC_EAUTH || err == SC_ECRYPTO ? SC_REASON_HANDSHAKE_FAILED
                                                         : SC_REASON_PROTOCOL_ERROR,
                err);
}

int sc_hs_init(struct sc_handshake *hs, const struct sc_hs_config *cfg)
{
    memset(hs, 0, sizeof *hs);
    if (!cfg->identity || !cfg->link_key)
        return SC_EINVAL;
    hs->initiator = cfg->initiator;
    hs->probe_resistance = cfg->probe_resistance;
    hs->has_expected_id = cfg->has_expected_id;
    hs->identity = cfg->identity;
    hs->cert_expiry = cfg->link_key->cert.expiry_unix;
    memcpy(hs->cert_signature, cfg->link_key->cert.signature, SC_SIGNATURE_BYTES);
    hs->max_message = cfg->max_message_bytes;
    hs->now_unix = cfg->now_unix;
    hs->max_cert_lifetime_s =
        cfg->max_cert_lifetime_s ? cfg->max_cert_lifetime_s : SC_CERT_LIFETIME_MAX_S_DEFAULT;
    if (cfg->has_expected_id)
        memcpy(hs->expected_id, cfg->expected_id, SC_RELAY_ID_BYTES);
    if (cfg->binding_len > SC_HS_BINDING_MAX_BYTES || (cfg->binding_len && !cfg->binding))
        return SC_EINVAL;
    /* prologue = "secirc/1" || channel binding (docs/PROTOCOL.md) */
    uint8_t prologue[sizeof SC_HS_PROLOGUE - 1 + SC_HS_BINDING_MAX_BYTES];
    memcpy(prologue, SC_HS_PROLOGUE, sizeof SC_HS_PROLOGUE - 1);
    if (cfg->binding_len)
        memcpy(prologue + sizeof SC_HS_PROLOGUE - 1, cfg->binding, cfg->binding_len);
    int err = sc_noise_handshake_init_keypair(
        &hs->noise, SC_HS_PROTOCOL_NAME, cfg->initiator ? SC_NOISE_INITIATOR : SC_NOISE_RESPONDER,
        prologue, sizeof SC_HS_PROLOGUE - 1 + cfg->binding_len, cfg->link_key->priv,
        cfg->link_key->pub, cfg->e_priv, NULL);
    if (err)
        return fail(hs, SC_REASON_HANDSHAKE_FAILED, err);
    hs->state = SC_HS_START;
    return 0;
}

static void encode_payload(const struct sc_handshake *hs, uint8_t p[SC_HS_PAYLOAD_BYTES])
{
    memset(p, 0, SC_HS_PAYLOAD_BYTES);
    p[0] = SC_HS_PAYLOAD_FORMAT;
    p[1] = SC_HS_VERSION_MIN;
    p[2] = SC_HS_VERSION_MAX;
    sc_put_be32(p + 4, 0); /* features: none defined in version 1 */
    memcpy(p + 8, sc_identity_relay_id(hs->identity), SC_RELAY_ID_BYTES);
    sc_put_be64(p + 40, hs->cert_expiry);
    memcpy(p + 48, hs->cert_signature, SC_SIGNATURE_BYTES);
    sc_put_be32(p + 112, hs->max_message);
}

/* Checks the peer's payload against the Noise static key it arrived with:
 * format and versions, certificate, self-connection, expected identity. */
static int check_payload(struct sc_handshake *hs, const uint8_t p[SC_HS_PAYLOAD_BYTES],
                         uint64_t now_unix)
{
    if (p[0] != SC_HS_PAYLOAD_FORMAT)
        return fail(hs, SC_REASON_PROTOCOL_VERSION, SC_EVERSION);
    uint8_t lo = p[1] > SC_HS_VERSION_MIN ? p[1] : SC_HS_VERSION_MIN;
    uint8_t hi = p[2] < SC_HS_VERSION_MAX ? p[2] : SC_HS_VERSION_MAX;
    if (p[1] > p[2] || lo > hi)
        return fail(hs, SC_REASON_PROTOCOL_VERSION, SC_EVERSION);
    hs->version = hi;
    hs->peer_features = sc_get_be32(p + 4);
    hs->peer_max_message = sc_get_be32(p + 112);
    if (hs->peer_max_message < SC_MESSAGE_PAYLOAD_MIN_BYTES ||
        hs->peer_max_message > SC_MESSAGE_PAYLOAD_MAX_BYTES)
        return fail(hs, SC_REASON_PROTOCOL_ERROR, SC_EFORMAT);

    struct sc_link_cert cert;
    memcpy(cert.identity, p + 8, SC_RELAY_ID_BYTES);
    if (sc_noise_remote_static(&hs->noise, cert.link_pub) != 0)
        return fail(hs, SC_REASON_HANDSHAKE_FAILED, SC_ESTATE);
    cert.expiry_unix = sc_get_be64(p + 40);
    memcpy(cert.signature, p + 48, SC_SIGNATURE_BYTES);
    /* Expired only SC_CERT_CLOCK_SKEW_S after its expiry, so a peer whose
     * clock is a little ahead of ours is not refused. */
    uint64_t skewed = now_unix > SC_CERT_CLOCK_SKEW_S ? now_unix - SC_CERT_CLOCK_SKEW_S : 0;
    int err = sc_link_cert_verify(&cert, cert.link_pub, skewed);
    if (err == SC_EEXPIRED)
        return fail(hs, SC_REASON_CERT_EXPIRED, err);
    if (err)
        return fail(hs, SC_REASON_CERT_INVALID, err);
    if (cert.expiry_unix > now_unix + (uint64_t)hs->max_cert_lifetime_s + SC_CERT_CLOCK_SKEW_S)
        return fail(hs, SC_REASON_CERT_INVALID, SC_EAUTH); /* beyond the lifetime ceiling */
    hs->peer_cert_expiry = cert.expiry_unix;
    memcpy(hs->peer_id, cert.identity, SC_RELAY_ID_BYTES);
    memcpy(hs->peer_link_key, cert.link_pub, SC_LINK_KEY_BYTES);
    if (sodium_memcmp(hs->peer_id, sc_identity_relay_id(hs->identity), SC_RELAY_ID_BYTES) == 0)
        return fail(hs, SC_REASON_SELF, SC_EAUTH);
    if (hs->has_expected_id &&
        sodium_memcmp(hs->peer_id, hs->expected_id, SC_RELAY_ID_BYTES) != 0)
        return fail(hs, SC_REASON_IDENTITY_MISMATCH, SC_EAUTH);
    return 0;
}

int sc_hs_write_msg1(struct sc_handshake *hs, uint8_t out[SC_HS_MSG1_BYTES])
{
    if (hs->state != SC_HS_START || !hs->initiator)
        return SC_ESTATE;
    size_t n = 0;
    int err = sc_noise_write_message(&hs->noise, NULL, 0, out, SC_HS_MSG1_BYTES, &n); /* -> e */
    if (err || n != 32)
        return fail(hs, SC_REASON_HANDSHAKE_FAILED, err ? err : SC_ECRYPTO);
    static const uint8_t unknown_id[SC_RELAY_ID_BYTES];
    sc_hs_mac1(hs->has_expected_id ? hs->expected_id : unknown_id,
               hs->now_unix / SC_MAC1_EPOCH_S, out, 32, out + 32);
    set_state(hs, SC_HS_SENT_MSG1);
    return 0;
}

int sc_hs_read_msg1(struct sc_handshake *hs, const uint8_t in[SC_HS_MSG1_BYTES])
{
    if (hs->state != SC_HS_START || hs->initiator)
        return SC_ESTATE;
    /* With probe_resistance only a mac1 naming our relay ID in the current
     * epoch or a neighbouring one passes, and the caller stays silent
     * otherwise. Without it any mac1 passes (the zero-ID key is public
     * anyway): an initiator that expected another relay then learns our
     * identity and ends with identity_mismatch. All three epochs are
     * always computed and compared, so timing tells nothing. */
    uint64_t now_epoch = hs->now_unix / SC_MAC1_EPOCH_S;
    bool ours = false;
    for (uint64_t e = now_epoch ? now_epoch - 1 : 0; e <= now_epoch + 1; e++) {
        uint8_t mac_ours[SC_HS_MAC1_BYTES];
        sc_hs_mac1(sc_identity_relay_id(hs->identity), e, in, 32, mac_ours);
        if (sodium_memcmp(mac_ours, in + 32, SC_HS_MAC1_BYTES) == 0) {
            ours = true;
            hs->mac1_epoch = e;
        }
    }
    if (!ours && hs->probe_resistance)
        return fail(hs, SC_REASON_PROBE_DROPPED, SC_EAUTH);
    hs->mac1_named_us = ours;
    size_t n = 0;
    int err = sc_noise_read_message(&hs->noise, in, 32, NULL, 0, &n); /* -> e */
    if (err || n != 0)
        return noise_fail(hs, err ? err : SC_EFORMAT);
    set_state(hs, SC_HS_GOT_MSG1);
    return 0;
}

int sc_hs_write_msg2(struct sc_handshake *hs, uint8_t out[SC_HS_MSG2_BYTES])
{
    if (hs->state != SC_HS_GOT_MSG1)
        return SC_ESTATE;
    uint8_t payload[SC_HS_PAYLOAD_BYTES];
    encode_payload(hs, payload);
    size_t n = 0; /* <- e, ee, s, es, payload */
    int err = sc_noise_write_message(&hs->noise, payload, sizeof payload, out, SC_HS_MSG2_BYTES, &n);
    if (err || n != SC_HS_MSG2_BYTES)
        return fail(hs, SC_REASON_HANDSHAKE_FAILED, err ? err : SC_ECRYPTO);
    set_state(hs, SC_HS_SENT_MSG2);
    return 0;
}

int sc_hs_read_msg2(struct sc_handshake *hs, const uint8_t in[SC_HS_MSG2_BYTES], uint64_t now_unix)
{
    if (hs->state != SC_HS_SENT_MSG1)
        return SC_ESTATE;
    uint8_t payload[SC_HS_PAYLOAD_BYTES];
    size_t n = 0; /* <- e, ee, s, es, payload */
    int err = sc_noise_read_message(&hs->noise, in, SC_HS_MSG2_BYTES, payload, sizeof payload, &n);
    if (err || n != SC_HS_PAYLOAD_BYTES)
        return noise_fail(hs, err ? err : SC_EFORMAT);
    err = check_payload(hs, payload, now_unix);
    if (err)
        return err;
    set_state(hs, SC_HS_GOT_MSG2);
    return 0;
}

int sc_hs_write_msg3(struct sc_handshake *hs, uint8_t out[SC_HS_MSG3_BYTES])
{
    if (hs->state != SC_HS_GOT_MSG2)
        return SC_ESTATE;
    uint8_t payload[SC_HS_PAYLOAD_BYTES];
    encode_payload(hs, payload);
    size_t n = 0; /* -> s, se, payload */
    int err = sc_noise_write_message(&hs->noise, payload, sizeof payload, out, SC_HS_MSG3_BYTES, &n);
    if (err || n != SC_HS_MSG3_BYTES)
        return fail(hs, SC_REASON_HANDSHAKE_FAILED, err ? err : SC_ECRYPTO);
    set_state(hs, SC_HS_SENT_MSG3);
    return 0;
}

int sc_hs_read_msg3(struct sc_handshake *hs, const uint8_t in[SC_HS_MSG3_BYTES], uint64_t now_unix)
{
    if (hs->state != SC_HS_SENT_MSG2)
        return SC_ESTATE;
    uint8_t payload[SC_HS_PAYLOAD_BYTES];
    size_t n = 0; /* -> s, se, payload */
    int err = sc_noise_read_message(&hs->noise, in, SC_HS_MSG3_BYTES, payload, sizeof payload, &n);
    if (err || n != SC_HS_PAYLOAD_BYTES)
        return noise_fail(hs, err ? err : SC_EFORMAT);
    err = check_payload(hs, payload, now_unix);
    if (err)
        return err;
    set_state(hs, SC_HS_GOT_MSG3);
    return 0;
}

int sc_hs_finish(struct sc_handshake *hs, struct sc_noise_cipher *send,
                 struct sc_noise_cipher *recv, uint8_t hash[SC_NOISE_HASH_BYTES])
{
    if (hs->state != (hs->initiator ? SC_HS_SENT_MSG3 : SC_HS_GOT_MSG3))
        return SC_ESTATE;
    sc_noise_handshake_hash(&hs->noise, hash);
    int err = sc_noise_split(&hs->noise, send, recv);
    if (err)
        return fail(hs, SC_REASON_HANDSHAKE_FAILED, err);
    sc_noise_handshake_clear(&hs->noise);
    set_state(hs, SC_HS_DONE);
    return 0;
}

void sc_hs_clear(struct sc_handshake *hs)
{
    sc_noise_handshake_clear(&hs->noise);
}
