/* link/handshake.h — the secirc link handshake as a pure state machine:
 * Noise_XX messages with mac1, identity payloads and link-key certificates
 * (docs/PROTOCOL.md "Link handshake"). No sockets, no clocks (the caller
 * passes the wall-clock time for certificate expiry and the mac1 epoch);
 * state changes go through one checked function, logged at debug level.
 *
 * Initiator: write_msg1 -> read_msg2 -> write_msg3 -> finish
 * Responder: read_msg1  -> write_msg2 -> read_msg3 -> finish
 * Every message has a fixed size, so the transport never sees a length. */
#ifndef SC_LINK_HANDSHAKE_H
#define SC_LINK_HANDSHAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto/noise.h"
#include "secirc/identity.h"
#include "secirc/link.h"

#define SC_HS_PROTOCOL_NAME "Noise_XX_25519_ChaChaPoly_BLAKE2b"
#define SC_HS_PROLOGUE "secirc/1"
#define SC_HS_BINDING_MAX_BYTES 64u
#define SC_HS_MAC1_LABEL "secirc mac1 v2"
#define SC_HS_MAC1_BYTES 16u
#define SC_HS_PAYLOAD_BYTES 128u
#define SC_HS_PAYLOAD_FORMAT 1u
/* Link protocol minor versions this build speaks (inside "secirc/1"). */
#define SC_HS_VERSION_MIN 1u
#define SC_HS_VERSION_MAX 1u
/* e(32) mac1(16) */
#define SC_HS_MSG1_BYTES (32u + SC_HS_MAC1_BYTES)
/* e(32) enc(s)(48) enc(payload)(144) */
#define SC_HS_MSG2_BYTES (32u + 48u + SC_HS_PAYLOAD_BYTES + 16u)
/* enc(s)(48) enc(payload)(144) */
#define SC_HS_MSG3_BYTES (48u + SC_HS_PAYLOAD_BYTES + 16u)

/* States; each step moves to the next one or to FAILED:
 *   initiator: START -> SENT_MSG1 -> GOT_MSG2 -> SENT_MSG3 -> DONE
 *   responder: START -> GOT_MSG1 -> SENT_MSG2 -> GOT_MSG3 -> DONE */
enum sc_hs_state {
    SC_HS_START = 0,
    SC_HS_SENT_MSG1,
    SC_HS_GOT_MSG2,
    SC_HS_SENT_MSG3,
    SC_HS_GOT_MSG1,
    SC_HS_SENT_MSG2,
    SC_HS_GOT_MSG3,
    SC_HS_DONE,
    SC_HS_FAILED,
};

struct sc_hs_config {
    bool initiator;
    const struct sc_identity *identity;
    const struct sc_link_key *link_key; /* read only during sc_hs_init() */
    bool has_expected_id; /* initiator: the responder must be expected_id */
    uint8_t expected_id[SC_RELAY_ID_BYTES];
    bool probe_resistance; /* responder: only our own ID's mac1 passes */
    uint32_t max_message_bytes; /* largest payload we accept (announced) */
    uint64_t now_unix;          /* wall clock at the start: the mac1 epoch */
    /* Channel binding (e.g. the TLS exporter): appended to the prologue,
     * so a handshake across a terminated TLS session fails. NULL = none. */
    const uint8_t *binding;
    size_t binding_len;         /* at most SC_HS_BINDING_MAX_BYTES */
    uint32_t max_cert_lifetime_s; /* peer certificates valid longer are refused */
    const uint8_t *e_priv; /* tests only: injected ephemeral key, else NULL */
};

struct sc_handshake {
    struct sc_noise_handshake noise;
    enum sc_hs_state state;
    bool initiator;
    bool probe_resistance;
    bool has_expected_id;
    bool mac1_named_us;          /* responder: mac1 used our ID (not zeros) */
    uint64_t mac1_epoch;         /* responder: the epoch our ID's mac1 matched */
    uint64_t now_unix;
    uint32_t max_cert_lifetime_s;
    enum sc_reason reason;       /* why the last step failed */
    uint8_t version;             /* agreed link protocol minor version */
    uint32_t peer_features;
    uint32_t peer_max_message;   /* largest payload the peer accepts */
    uint32_t max_message;        /* ours, announced in our payload */
    const struct sc_identity *identity;
    uint64_t cert_expiry;        /* our link-key certificate, copied at init */
    uint64_t peer_cert_expiry;
    uint8_t cert_signature[SC_SIGNATURE_BYTES];
    uint8_t expected_id[SC_RELAY_ID_BYTES];
    uint8_t peer_id[SC_RELAY_ID_BYTES];
    uint8_t peer_link_key[SC_LINK_KEY_BYTES]; /* the peer's Noise static key */
};

int sc_hs_init(struct sc_handshake *hs, const struct sc_hs_config *cfg) SC_MUST_CHECK;
/* Steps. A step called out of turn returns SC_ESTATE and changes nothing.
 * A step that fails returns a negative SC_E* code, sets hs->reason and
 * moves to FAILED; hs->reason == SC_REASON_PROBE_DROPPED from
 * sc_hs_read_msg1 means: stay silent. The peer's announced max_message
 * must be SC_MESSAGE_PAYLOAD_MIN_BYTES..SC_MESSAGE_PAYLOAD_MAX_BYTES
 * (protocol_error otherwise); its certificate must not be expired by more
 * than SC_CERT_CLOCK_SKEW_S (cert_expired) nor valid for longer than
 * max_cert_lifetime_s plus that skew (cert_invalid). */
int sc_hs_write_msg1(struct sc_handshake *hs, uint8_t out[SC_HS_MSG1_BYTES]) SC_MUST_CHECK;
int sc_hs_read_msg1(struct sc_handshake *hs, const uint8_t in[SC_HS_MSG1_BYTES]) SC_MUST_CHECK;
int sc_hs_write_msg2(struct sc_handshake *hs, uint8_t out[SC_HS_MSG2_BYTES]) SC_MUST_CHECK;
/* now_unix: wall clock for certificate expiry. */
int sc_hs_read_msg2(struct sc_handshake *hs, const uint8_t in[SC_HS_MSG2_BYTES],
                    uint64_t now_unix) SC_MUST_CHECK;
int sc_hs_write_msg3(struct sc_handshake *hs, uint8_t out[SC_HS_MSG3_BYTES]) SC_MUST_CHECK;
int sc_hs_read_msg3(struct sc_handshake *hs, const uint8_t in[SC_HS_MSG3_BYTES],
                    uint64_t now_unix) SC_MUST_CHECK;
/* After SENT_MSG3 / GOT_MSG3: split into transport ciphers (ours to send,
 * ours to receive) and the handshake hash; wipes the handshake. */
int sc_hs_finish(struct sc_handshake *hs, struct sc_noise_cipher *send,
                 struct sc_noise_cipher *recv, uint8_t hash[SC_NOISE_HASH_BYTES]) SC_MUST_CHECK;
/* Wipes all secrets; safe at any state, twice, or on a zeroed struct. */
void sc_hs_clear(struct sc_handshake *hs);

/* "start", "sent_msg1", …, for logs. */
const char *sc_hs_state_name(enum sc_hs_state s);

/* mac1 (docs/PROTOCOL.md): BLAKE2b-128(key = BLAKE2b-256(label || relay_id
 * || epoch_be64), msg), epoch = floor(unix_s / SC_MAC1_EPOCH_S). */
void sc_hs_mac1(const uint8_t relay_id[SC_RELAY_ID_BYTES], uint64_t epoch, const uint8_t *msg,
                size_t len, uint8_t out[SC_HS_MAC1_BYTES]);

#endif
