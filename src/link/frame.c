/* link/frame.c — sealing, opening and strict parsing of transport frames.
 * Every length is checked against its bound before it is used; nothing here
 * allocates, so a hostile peer can only make a frame fail, never grow one. */
#include "link/frame.h"

#include <string.h>

#include "util/bytes.h"

int sc_frame_seal_header(struct sc_noise_cipher *tx, size_t body_len,
                         uint8_t out[SC_FRAME_HEADER_BYTES])
{
    if (body_len == 0 || body_len > SC_FRAME_BODY_MAX_BYTES)
        return SC_ETOOBIG;
    uint8_t len[SC_FRAME_LEN_BYTES];
    sc_put_be16(len, (uint16_t)body_len);
    size_t n;
    return sc_noise_encrypt(tx, NULL, 0, len, sizeof len, out, SC_FRAME_HEADER_BYTES, &n);
}

int sc_frame_open_header(struct sc_noise_cipher *rx, const uint8_t in[SC_FRAME_HEADER_BYTES],
                         size_t *body_len)
{
    uint8_t len[SC_FRAME_LEN_BYTES];
    size_t n;
    int err = sc_noise_decrypt(rx, NULL, 0, in, SC_FRAME_HEADER_BYTES, len, sizeof len, &n);
    if (err)
        return err;
    size_t v = sc_get_be16(len);
    if (v == 0 || v > SC_FRAME_BODY_MAX_BYTES)
        return SC_ETOOBIG;
    *body_len = v;
    return 0;
}

int sc_frame_reader_init(struct sc_frame_reader *r, const uint8_t *body, size_t len,
                         size_t max_payload)
{
    if (len < 1 + SC_MSG_HEADER_BYTES)
        return SC_EFORMAT;
    if (body[0] != SC_FRAME_VERSION)
        return SC_EVERSION;
    r->p = body + 1;
    r->end = body + len;
    r->max_payload = max_payload;
    return 0;
}

int sc_frame_next(struct sc_frame_reader *r, struct sc_frame_msg *msg)
{
    if (r->p == r->end)
        return 0;
    if ((size_t)(r->end - r->p) < SC_MSG_HEADER_BYTES)
        return SC_EFORMAT;
    uint8_t type = r->p[0];
    size_t len = sc_get_be16(r->p + 1);
    const uint8_t *b = r->p + SC_MSG_HEADER_BYTES;
    if ((size_t)(r->end - b) < len)
        return SC_EFORMAT;
    r->p = b + len;
    msg->type = (enum sc_msg_type)type;
    switch (type) {
    case SC_MSG_RELAY:
        if (len < SC_RELAY_HEADER_BYTES)
            return SC_EFORMAT;
        if (len - SC_RELAY_HEADER_BYTES > r->max_payload)
            return SC_ETOOBIG;
        if (b[SC_MESSAGE_ID_BYTES] == 0)
            return SC_EFORMAT; /* hop_limit counts this link: at least 1 */
        msg->u.relay.id = b;
        msg->u.relay.hop_limit = b[SC_MESSAGE_ID_BYTES];
        msg->u.relay.flags = b[SC_MESSAGE_ID_BYTES + 1];
        msg->u.relay.payload = b + SC_RELAY_HEADER_BYTES;
        msg->u.relay.len = len - SC_RELAY_HEADER_BYTES;
        return 1;
    case SC_MSG_PING:
    case SC_MSG_PONG:
        if (len != 8)
            return SC_EFORMAT;
        msg->u.nonce = (uint64_t)sc_get_be32(b) << 32 | sc_get_be32(b + 4);
        return 1;
    case SC_MSG_ACCEPT:
        if (len != SC_ACCEPT_BYTES || b[1] != 0)
            return SC_EFORMAT;
        msg->u.accept.priority = b[0];
        msg->u.accept.max_message_bytes = sc_get_be32(b + 2);
        msg->u.accept.heartbeat_interval_ms = sc_get_be32(b + 6);
        if (!sc_priority_is_valid(b[0]) ||
            msg->u.accept.max_message_bytes < SC_MESSAGE_PAYLOAD_MIN_BYTES ||
            msg->u.accept.max_message_bytes > SC_MESSAGE_PAYLOAD_MAX_BYTES)
            return SC_EFORMAT;
        return 1;
    case SC_MSG_REJECT:
    case SC_MSG_CLOSE:
        if (len != 2)
            return SC_EFORMAT;
        msg->u.reason = sc_get_be16(b);
        return 1;
    case SC_MSG_REKEY:
        if (len != 0 || r->p != r->end)
            return SC_EFORMAT;
        return 1;
    case SC_MSG_PADDING:
        return 1;
    default:
        return SC_EFORMAT;
    }
}

size_t sc_frame_put_msg_header(uint8_t *out, enum sc_msg_type type, size_t body_len)
{
    out[0] = (uint8_t)type;
    sc_put_be16(out + 1, (uint16_t)body_len);
    return SC_MSG_HEADER_BYTES;
}

size_t sc_frame_put_relay_header(uint8_t *out, const uint8_t id[SC_MESSAGE_ID_BYTES],
                                 uint8_t hop_limit, uint8_t flags, size_t payload_len)
{
    size_t n = sc_frame_put_msg_header(out, SC_MSG_RELAY, SC_RELAY_HEADER_BYTES + payload_len);
    memcpy(out + n, id, SC_MESSAGE_ID_BYTES);
    out[n + SC_MESSAGE_ID_BYTES] = hop_limit;
    out[n + SC_MESSAGE_ID_BYTES + 1] = flags;
    return n + SC_RELAY_HEADER_BYTES;
}

size_t sc_frame_put_nonce(uint8_t *out, enum sc_msg_type type, uint64_t nonce)
{
    size_t n = sc_frame_put_msg_header(out, type, 8);
    sc_put_be32(out + n, (uint32_t)(nonce >> 32));
    sc_put_be32(out + n + 4, (uint32_t)nonce);
    return n + 8;
}

size_t sc_frame_put_reason(uint8_t *out, enum sc_msg_type type, uint16_t reason)
{
    size_t n = sc_frame_put_msg_header(out, type, 2);
    sc_put_be16(out + n, reason);
    return n + 2;
}

size_t sc_frame_put_accept(uint8_t *out, const struct sc_accept_info *info)
{
    size_t n = sc_frame_put_msg_header(out, SC_MSG_ACCEPT, SC_ACCEPT_BYTES);
    out[n] = info->priority;
    out[n + 1] = 0;
    sc_put_be32(out + n + 2, info->max_message_bytes);
    sc_put_be32(out + n + 6, info->heartbeat_interval_ms);
    return n + SC_ACCEPT_BYTES;
}
