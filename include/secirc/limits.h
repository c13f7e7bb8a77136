/* secirc/limits.h — every protocol limit and timer of secirc, in one place.
 *
 * Each *_DEFAULT has a config key (named in the comment) and may be changed
 * per link/listener through the config structs; the *_MAX values are wire
 * format bounds and cannot be raised. Units are in the names. */
#ifndef SECIRC_LIMITS_H
#define SECIRC_LIMITS_H

/* --- Noise --------------------------------------------------------------- */
#define SC_NOISE_MAX_MESSAGE_BYTES 65535u /* Noise spec, section 3 */

/* --- Handshake ----------------------------------------------------------- */
/* connection_timeout: absolute deadline from accept/connect to ACCEPT. */
#define SC_CONNECTION_TIMEOUT_MS_DEFAULT 10000u
/* max_handshakes: handshakes in progress on one listener, all sources. */
#define SC_HANDSHAKES_MAX_DEFAULT 512u
/* max_handshakes_per_address: handshakes in progress from one IP address. */
#define SC_HANDSHAKES_PER_ADDRESS_MAX_DEFAULT 16u

/* --- Framing (docs/PROTOCOL.md, "Transport frames") ---------------------- */
/* Largest plaintext frame body: a Noise message is at most 65535 bytes,
 * 16 of which are the AEAD tag. */
#define SC_FRAME_BODY_MAX_BYTES 65519u
/* max_frame_bytes: a smaller per-link frame body limit for our own writes. */
#define SC_FRAME_BODY_BYTES_DEFAULT SC_FRAME_BODY_MAX_BYTES
/* Smallest frame body limit a config may set (fits any control message). */
#define SC_FRAME_BODY_MIN_BYTES 256u
/* Largest relay message payload that fits one maximal frame:
 * 65519 - 1 (version) - 3 (message header) - 18 (relay header). */
#define SC_MESSAGE_PAYLOAD_MAX_BYTES 65497u
/* max_message_bytes */
#define SC_MESSAGE_PAYLOAD_BYTES_DEFAULT SC_MESSAGE_PAYLOAD_MAX_BYTES

/* --- Flow control -------------------------------------------------------- */
/* send_queue_bytes / send_queue_messages: plaintext queued per link. */
#define SC_SEND_QUEUE_BYTES_DEFAULT (1024u * 1024u)
#define SC_SEND_QUEUE_MESSAGES_DEFAULT 16384u
/* Encrypted bytes waiting for the socket before we stop framing more. */
#define SC_LINK_OUTPUT_HIGH_WATER_BYTES (256u * 1024u)
/* Received bytes buffered before we stop reading (two maximal frames). */
#define SC_LINK_INPUT_HIGH_WATER_BYTES (2u * (18u + 65535u))

/* --- Rekey (DESIGN.md: whichever comes first) ---------------------------- */
#define SC_REKEY_AFTER_FRAMES_DEFAULT 65536u                      /* rekey_after_frames */
#define SC_REKEY_AFTER_BYTES_DEFAULT (1024ull * 1024u * 1024u)    /* rekey_after_bytes */
#define SC_REKEY_AFTER_MS_DEFAULT (3600u * 1000u)                 /* rekey_interval */

/* --- Heartbeat ----------------------------------------------------------- */
#define SC_HEARTBEAT_INTERVAL_MS_DEFAULT 30000u /* heartbeat_interval */
#define SC_HEARTBEAT_MISS_LIMIT_DEFAULT 3u      /* heartbeat_miss_limit */

/* --- Keys ---------------------------------------------------------------- */
#define SC_LINK_KEY_ROTATION_S_DEFAULT (24u * 3600u) /* key_rotation_interval */
#define SC_LINK_KEY_OVERLAP_S_DEFAULT (3600u)        /* key_rotation_overlap */

/* --- Peers --------------------------------------------------------------- */
#define SC_LINKS_PER_PEER_MAX_DEFAULT 4u /* max_links_per_peer */

#endif
