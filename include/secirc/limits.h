/* secirc/limits.h — every protocol limit and timer of secirc, in one place.
 *
 * Each *_DEFAULT has a config key (named in the comment) and may be changed
 * per link/listener through the config structs; the *_MAX values are wire
 * format bounds and cannot be raised; plain constants are fixed behaviour.
 * Units are in the names. docs/DESIGN.md says why each value is what it is. */
#ifndef SECIRC_LIMITS_H
#define SECIRC_LIMITS_H

/* --- Noise --------------------------------------------------------------- */
#define SC_NOISE_MAX_MESSAGE_BYTES 65535u /* Noise spec, section 3 */
#define SC_AEAD_TAG_BYTES 16u             /* ChaCha20-Poly1305 tag */

/* --- Handshake ----------------------------------------------------------- */
/* connection_timeout: absolute deadline from accept/connect to ACCEPT,
 * covering every transport layer's handshake as well. */
#define SC_CONNECTION_TIMEOUT_MS_DEFAULT 10000u
/* max_handshakes: handshakes in progress on one listener, all sources. */
#define SC_HANDSHAKES_MAX_DEFAULT 512u
/* max_handshakes_per_address: handshakes in progress from one source
 * (an IPv4 address, or an IPv6 /64). */
#define SC_HANDSHAKES_PER_ADDRESS_MAX_DEFAULT 16u
/* handshake_rate / handshake_burst: new connections (each may cost three
 * X25519 and an Ed25519 verification, ~0.3 ms of a core) per second, all
 * sources: at most ~15% of a core, ten times what a 5,000-peer relay needs
 * to relink everyone within ten seconds. */
#define SC_HANDSHAKE_RATE_DEFAULT 500u
#define SC_HANDSHAKE_BURST_DEFAULT 1000u
/* handshake_rate_per_address / handshake_burst_per_address. */
#define SC_HANDSHAKE_RATE_PER_ADDRESS_DEFAULT 10u
#define SC_HANDSHAKE_BURST_PER_ADDRESS_DEFAULT 30u
/* mac1 is keyed with the wall-clock epoch floor(unix_s / 120); a responder
 * accepts the current epoch and both neighbours. */
#define SC_MAC1_EPOCH_S 120u
/* replay_cache_entries: message-1 ephemerals remembered (probe resistance),
 * 24 bytes each; full means unknown entries are refused (silently). */
#define SC_REPLAY_CACHE_ENTRIES_DEFAULT 65536u
/* max_tarpit: connections a probe-resistant listener refused and holds
 * silently until their connection_timeout (one descriptor each); beyond it
 * the oldest is closed early. */
#define SC_TARPIT_MAX_DEFAULT 256u

/* --- Authenticated links (listener floor under the manager's policy) ------ */
#define SC_LINKS_MAX_DEFAULT 1024u            /* max_links */
#define SC_LINKS_PER_ADDRESS_MAX_DEFAULT 16u  /* max_links_per_address */
#define SC_LINKS_PER_PEER_MAX_DEFAULT 4u      /* max_links_per_peer */
/* links_reserved: of max_links, slots only peers the policy ranks above
 * untrusted may take. */
#define SC_LINKS_RESERVED_DEFAULT 64u
/* fd_reserve: descriptors below the process limit that strangers never
 * take, so accept keeps working for known peers. */
#define SC_FD_RESERVE_DEFAULT 64u

/* --- Framing (docs/PROTOCOL.md, "Transport frames") ---------------------- */
/* Largest plaintext frame body: a Noise message is at most 65535 bytes,
 * 16 of which are the AEAD tag. */
#define SC_FRAME_BODY_MAX_BYTES (SC_NOISE_MAX_MESSAGE_BYTES - SC_AEAD_TAG_BYTES)
/* max_frame_bytes: frames we write coalesce messages up to this body size;
 * a single larger message still goes out, alone, in one frame. */
#define SC_FRAME_BODY_BYTES_DEFAULT SC_FRAME_BODY_MAX_BYTES
/* Smallest frame body limit a config may set. */
#define SC_FRAME_BODY_MIN_BYTES 256u
/* Largest relay payload: one maximal frame body less the frame version (1),
 * the message header (3) and the relay header (18) = 65497. */
#define SC_MESSAGE_PAYLOAD_MAX_BYTES (SC_FRAME_BODY_MAX_BYTES - 1u - 3u - 18u)
/* Smallest max_message a peer may announce (else protocol_error). */
#define SC_MESSAGE_PAYLOAD_MIN_BYTES 64u
/* max_message_bytes */
#define SC_MESSAGE_PAYLOAD_BYTES_DEFAULT SC_MESSAGE_PAYLOAD_MAX_BYTES

/* --- Flow control -------------------------------------------------------- */
/* send_queue_bytes / send_queue_messages: plaintext queued per link. */
#define SC_SEND_QUEUE_BYTES_DEFAULT (1024u * 1024u)
#define SC_SEND_QUEUE_MESSAGES_DEFAULT 16384u
/* Encrypted bytes waiting in the link's output before we stop framing
 * more: small, so a PONG is never long behind bulk data. */
#define SC_LINK_OUTPUT_HIGH_WATER_BYTES (128u * 1024u)
/* Received bytes buffered before we stop reading (two maximal frames). */
#define SC_LINK_INPUT_HIGH_WATER_BYTES (2u * (18u + SC_NOISE_MAX_MESSAGE_BYTES))
/* Kernel send queue not yet sent (TCP_NOTSENT_LOWAT): control messages
 * wait behind at most this much bulk in the kernel. */
#define SC_TCP_NOTSENT_LOWAT_BYTES (128u * 1024u)
/* Bytes a transport layer (tls, websocket, ...) may push into the level
 * below it before it stops taking more from above: without this bound a
 * filter layer moves everything down at once and a peer that stops reading
 * makes the sender buffer without limit. */
#define SC_LAYER_OUTPUT_HIGH_WATER_BYTES (128u * 1024u)

/* --- WebSocket (docs/PROTOCOL.md, "WebSocket") -------------------------- */
/* Largest WebSocket message we take, its fragments summed: one maximal
 * link frame on the wire (18 + 65535 bytes) and some slack. A larger one
 * ends the connection with close code 1009. */
#define SC_WS_MESSAGE_MAX_BYTES 70000u
/* Largest binary frame payload we write: the link's bytes go out in frames
 * of at most this size (one frame per chunk the link wrote, up to this). */
#define SC_WS_FRAME_MAX_BYTES 65536u

/* --- Rekey (whichever comes first) ---------------------------------------- */
#define SC_REKEY_AFTER_FRAMES_DEFAULT 65536u                      /* rekey_after_messages */
#define SC_REKEY_AFTER_BYTES_DEFAULT (1024ull * 1024u * 1024u)    /* rekey_after_bytes */
#define SC_REKEY_AFTER_MS_DEFAULT (3600u * 1000u)                 /* rekey_interval */

/* --- Heartbeat ----------------------------------------------------------- */
#define SC_HEARTBEAT_INTERVAL_MS_DEFAULT 30000u /* heartbeat_interval */
#define SC_HEARTBEAT_MISS_LIMIT_DEFAULT 3u      /* heartbeat_miss_limit */
/* A PING sent while more than this much of our own data was queued ahead
 * of it gives an RTT sample with no weight in the latency estimate. */
#define SC_RTT_CLEAN_QUEUE_BYTES 16384u

/* --- Closing ---------------------------------------------------------------- */
/* A closing link gives up flushing after this long without progress, and
 * after this long in all. */
#define SC_LINK_LINGER_MS 10000u
#define SC_LINK_CLOSE_MAX_MS 60000u
/* After the last frame: how long the socket waits for the peer's FIN
 * (discarding input) before it closes anyway. A connection that never
 * authenticated does not wait (its input is drained, then close: still a
 * FIN), so strangers cannot hold descriptors in closes. */
#define SC_STREAM_LINGER_MS 5000u
#define SC_STREAM_LINGER_PREAUTH_MS 0u

/* --- TCP ------------------------------------------------------------------- */
#define SC_TCP_KEEPALIVE_IDLE_S 60u
#define SC_TCP_KEEPALIVE_INTERVAL_S 10u
#define SC_TCP_KEEPALIVE_COUNT 6u
/* Pause of accept() after EMFILE/ENFILE (a level-triggered listener would
 * spin otherwise). */
#define SC_ACCEPT_PAUSE_MS 100u

/* --- Connection manager (the seed's connection_manager block) ------------- */
#define SC_MAX_CONNECTIONS_DEFAULT 10u            /* max_connections (peers) */
#define SC_MIN_CONNECTIONS_DEFAULT 3u             /* min_connections (peers) */
#define SC_MGR_CONNECTION_TIMEOUT_MS_DEFAULT 30000u /* connection_timeout */
#define SC_MGR_HEARTBEAT_INTERVAL_MS_DEFAULT 60000u /* heartbeat_interval */
#define SC_RECONNECT_INTERVAL_MS_DEFAULT 30000u   /* reconnect_interval */
#define SC_MAX_RETRY_ATTEMPTS_DEFAULT 3u          /* max_retry_attempts */
#define SC_RETRY_DELAY_MS_DEFAULT 30000u          /* retry_delay: first backoff */
#define SC_BACKOFF_MAX_MS_DEFAULT 300000u         /* backoff_max */
#define SC_HEALTHY_AFTER_MS_DEFAULT 60000u        /* healthy_after: backoff resets */
#define SC_GRACE_PERIOD_MS_DEFAULT 30000u         /* grace_period: not evicted */
#define SC_FAILED_COOLDOWN_MS_DEFAULT 3600000u    /* failed_cooldown */
#define SC_MAX_DIALS_IN_FLIGHT_DEFAULT 10u        /* max_dials_in_flight */
#define SC_TCP_PORT_DEFAULT 6667u                 /* tcp_port */
#define SC_WEBSOCKET_PORT_DEFAULT 8080u           /* websocket_port */
#define SC_TOR_SOCKS_PORT_DEFAULT 9050u           /* tor_socks_port */
/* A Tor dial builds a circuit, and for an onion service fetches its
 * descriptor and meets it at a rendezvous: tens of seconds are normal. */
#define SC_TOR_DIAL_TIMEOUT_MS_DEFAULT 120000u    /* tor.dial_timeout */
#define SC_TOR_DIALS_IN_FLIGHT_DEFAULT 4u         /* tor.max_dials_in_flight */
/* Hop limit of messages a relay creates (docs/PROTOCOL.md, RELAY). */
#define SC_HOP_LIMIT_DEFAULT 8u                   /* mesh.hop_limit */

/* --- Keys ---------------------------------------------------------------- */
#define SC_LINK_KEY_ROTATION_S_DEFAULT (24u * 3600u) /* key_rotation_interval */
#define SC_LINK_KEY_OVERLAP_S_DEFAULT (3600u)        /* key_rotation_overlap */
/* max_cert_lifetime: a peer certificate valid for longer than this from
 * now is refused (cert_invalid): three days over rotation plus overlap. */
#define SC_CERT_LIFETIME_MAX_S_DEFAULT \
    (SC_LINK_KEY_ROTATION_S_DEFAULT + SC_LINK_KEY_OVERLAP_S_DEFAULT + 3u * 24u * 3600u)
/* Clock difference between relays tolerated on certificate expiry. */
#define SC_CERT_CLOCK_SKEW_S 300u

_Static_assert(SC_MESSAGE_PAYLOAD_MAX_BYTES == 65497u, "largest relay payload");
_Static_assert(SC_FRAME_BODY_MAX_BYTES == 65519u, "largest frame body");
_Static_assert(SC_MESSAGE_PAYLOAD_MIN_BYTES + 22u <= SC_FRAME_BODY_MIN_BYTES,
               "the smallest frame limit fits the smallest message limit");

#endif
