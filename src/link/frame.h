/* link/frame.h — transport frames of the secure link (docs/PROTOCOL.md
 * "Transport frames"): an encrypted 2-byte body length, then an encrypted
 * body holding a version byte and one or more typed messages.
 *
 * Pure: sealing and opening over CipherStates, and a strict reader for
 * decrypted bodies. No sockets, no allocation, no logging. */
#ifndef SC_LINK_FRAME_H
#define SC_LINK_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/noise.h"
#include "secirc/link.h"

#define SC_FRAME_VERSION 1u
#define SC_FRAME_LEN_BYTES 2u
/* Sealed length: 2 bytes + tag. */
#define SC_FRAME_HEADER_BYTES (SC_FRAME_LEN_BYTES + SC_NOISE_TAG_BYTES)
#define SC_FRAME_TAG_BYTES SC_NOISE_TAG_BYTES
/* A whole frame on the wire at most. */
#define SC_FRAME_WIRE_MAX_BYTES (SC_FRAME_HEADER_BYTES + SC_FRAME_BODY_MAX_BYTES + SC_FRAME_TAG_BYTES)
/* type(1) length(2) */
#define SC_MSG_HEADER_BYTES 3u
/* id(16) hop_limit(1) flags(1) */
#define SC_RELAY_HEADER_BYTES (SC_MESSAGE_ID_BYTES + 2u)
#define SC_ACCEPT_BYTES 10u
/* Encoded sizes of the control messages (header included). */
#define SC_MSG_ACCEPT_BYTES (SC_MSG_HEADER_BYTES + SC_ACCEPT_BYTES)
#define SC_MSG_REASON_BYTES (SC_MSG_HEADER_BYTES + 2u)
#define SC_MSG_NONCE_BYTES (SC_MSG_HEADER_BYTES + 8u)
#define SC_MSG_REKEY_BYTES SC_MSG_HEADER_BYTES
_Static_assert(SC_MESSAGE_PAYLOAD_MAX_BYTES + SC_RELAY_HEADER_BYTES + SC_MSG_HEADER_BYTES + 1u ==
                   SC_FRAME_BODY_MAX_BYTES,
               "the largest relay message fills one frame body exactly");

enum sc_msg_type {
    SC_MSG_RELAY = 1,
    SC_MSG_PING = 2,
    SC_MSG_PONG = 3,
    SC_MSG_ACCEPT = 4,
    SC_MSG_REJECT = 5,
    SC_MSG_CLOSE = 6,
    SC_MSG_REKEY = 7,
    SC_MSG_PADDING = 8,
};


/* One decoded message; pointers point into the frame body. */
struct sc_frame_msg {
    enum sc_msg_type type;
    union {
        struct sc_relay_message relay;
        uint64_t nonce;               /* PING, PONG */
        struct sc_accept_info accept; /* ACCEPT */
        uint16_t reason;              /* REJECT, CLOSE */
    } u;
};

struct sc_frame_reader {
    const uint8_t *p, *end;
    size_t max_payload;
};

/* Seals a body length (1..SC_FRAME_BODY_MAX_BYTES) into 18 bytes. */
int sc_frame_seal_header(struct sc_noise_cipher *tx, size_t body_len,
                         uint8_t out[SC_FRAME_HEADER_BYTES]) SC_MUST_CHECK;
/* Opens a sealed length. SC_EAUTH if it does not authenticate, SC_ETOOBIG
 * if the length is 0 or over SC_FRAME_BODY_MAX_BYTES: checked before the
 * caller buffers or allocates anything for the body. */
int sc_frame_open_header(struct sc_noise_cipher *rx, const uint8_t in[SC_FRAME_HEADER_BYTES],
                         size_t *body_len) SC_MUST_CHECK;

/* Starts reading a decrypted body. SC_EVERSION for another frame version,
 * SC_EFORMAT for an empty body. */
int sc_frame_reader_init(struct sc_frame_reader *r, const uint8_t *body, size_t len,
                         size_t max_payload) SC_MUST_CHECK;
/* Next message: 1 and *msg filled, 0 at the end of the body, SC_EFORMAT for
 * a malformed, truncated or unknown message (or REKEY not last, a RELAY
 * with hop_limit 0, an ACCEPT with a priority outside 2/4/6/8/10 or a
 * max_message outside SC_MESSAGE_PAYLOAD_MIN_BYTES..MAX), SC_ETOOBIG for
 * a relay payload over max_payload. */
int sc_frame_next(struct sc_frame_reader *r, struct sc_frame_msg *msg) SC_MUST_CHECK;

/* Message encoders: each writes header + body and returns bytes written. */
/* A message header (type and body length); the body follows. */
size_t sc_frame_put_msg_header(uint8_t *out, enum sc_msg_type type, size_t body_len);
/* Header and relay header only (21 bytes); the payload follows. */
size_t sc_frame_put_relay_header(uint8_t *out, const uint8_t id[SC_MESSAGE_ID_BYTES],
                                 uint8_t hop_limit, uint8_t flags, size_t payload_len);
size_t sc_frame_put_nonce(uint8_t *out, enum sc_msg_type type, uint64_t nonce);
size_t sc_frame_put_reason(uint8_t *out, enum sc_msg_type type, uint16_t reason);
size_t sc_frame_put_accept(uint8_t *out, const struct sc_accept_info *info);

#endif
