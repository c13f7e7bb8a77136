/* transport/ws_frame.h — WebSocket data transfer (RFC 6455 section 5) on
 * wslay's event API, between evbuffers: received frames become the bytes of
 * binary messages, bytes to send become binary frames (masked by a client,
 * with a fresh random mask per frame); pings are answered, the closing
 * handshake carries a status code. Never touches a socket or a bufferevent. */
#ifndef SC_TRANSPORT_WS_FRAME_H
#define SC_TRANSPORT_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "secirc/error.h"
#include "transport/transport.h"

struct evbuffer;

/* Close status codes we send (RFC 6455 7.4.1). */
enum sc_ws_close_code {
    SC_WS_CLOSE_NORMAL = 1000,      /* done */
    SC_WS_CLOSE_GOING_AWAY = 1001,  /* this relay shuts down */
    SC_WS_CLOSE_PROTOCOL = 1002,    /* a malformed frame, or a protocol error above */
    SC_WS_CLOSE_UNSUPPORTED = 1003, /* a text message: we carry binary only */
    SC_WS_CLOSE_BAD_DATA = 1007,    /* text that is not UTF-8 (wslay checks it) */
    SC_WS_CLOSE_POLICY = 1008,      /* refused by policy: limits, not allowed, deadline */
    SC_WS_CLOSE_TOO_BIG = 1009,     /* a message over SC_WS_MESSAGE_MAX_BYTES */
    SC_WS_CLOSE_INTERNAL = 1011,    /* a failure on our side */
};

/* What sc_ws_conn_read found. */
enum sc_ws_read_result {
    SC_WS_READ_OPEN = 0,   /* all input taken (or `limit` reached); more may come */
    SC_WS_READ_CLOSED = 1, /* the peer's close frame arrived; our answer is queued */
};

struct sc_ws_conn;

/* A connection's frame state for one side. max_message_bytes bounds a
 * received message (fragments summed); 0 means SC_WS_MESSAGE_MAX_BYTES. */
int sc_ws_conn_new(enum sc_role role, size_t max_message_bytes,
                   struct sc_ws_conn **out) SC_MUST_CHECK;
void sc_ws_conn_free(struct sc_ws_conn *c);

/* Takes frames from `wire` (consumed as far as they go), appends the
 * payload of binary messages to `payload`, and writes what the protocol
 * answers (pong, close) to `out`. With limit >= 0 it stops taking input
 * once it has appended about `limit` bytes (a few KiB past it at most).
 * Returns SC_WS_READ_OPEN, SC_WS_READ_CLOSED, or after a protocol error in
 * the input SC_EFORMAT (1002, 1007), SC_EVERSION (1003: text) or
 * SC_ETOOBIG (1009) with our close frame in `out` (sc_ws_conn_why says
 * why); SC_ENOMEM. Once it has returned anything but OPEN it reads
 * nothing more (input is discarded). */
int sc_ws_conn_read(struct sc_ws_conn *c, struct evbuffer *wire, struct evbuffer *payload,
                    ssize_t limit, struct evbuffer *out) SC_MUST_CHECK;
/* Moves up to `max` bytes of `payload` into binary frames of at most
 * SC_WS_FRAME_MAX_BYTES each, written to `out`. SC_ECLOSED once our close
 * frame is out (the payload is left alone), SC_ENOMEM. */
int sc_ws_conn_write(struct sc_ws_conn *c, struct evbuffer *payload, size_t max,
                     struct evbuffer *out) SC_MUST_CHECK;
/* Writes a close frame with `code` to `out`, unless one was already sent. */
void sc_ws_conn_close(struct sc_ws_conn *c, uint16_t code, struct evbuffer *out);
/* Writes a ping with `len` <= 125 bytes of application data (tests). */
int sc_ws_conn_ping(struct sc_ws_conn *c, const uint8_t *data, size_t len,
                    struct evbuffer *out) SC_MUST_CHECK;

struct sc_ws_conn_info {
    uint64_t pongs_received;
    uint16_t close_sent;     /* the code of our close frame; 0: none yet, 1005: without a code */
    uint16_t close_received; /* the peer's; 0: none yet, 1005: without a code */
    const char *why;         /* after a protocol error: a short static reason, else "" */
};
void sc_ws_conn_get_info(const struct sc_ws_conn *c, struct sc_ws_conn_info *out);

#endif
