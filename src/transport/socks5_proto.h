/* transport/socks5_proto.h — the SOCKS5 client negotiation (RFC 1928, with
 * RFC 1929 username/password) as a pure state machine over byte buffers, for
 * the `socks5` transport layer that reaches Tor's SOCKS port. No sockets, no
 * libevent, no clock, no logging, no allocation. It must never resolve the
 * target (no DNS leak) and never consume a byte past the end of a reply. */
#ifndef SC_TRANSPORT_SOCKS5_PROTO_H
#define SC_TRANSPORT_SOCKS5_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "secirc/error.h"

/* Wire bounds (RFC 1928 section 4-6, RFC 1929 section 2). */
#define SC_SOCKS5_HOST_MAX_BYTES 255u /* DST.ADDR domain name */
#define SC_SOCKS5_CRED_MAX_BYTES 255u /* UNAME, PASSWD */
/* Largest message the client writes: the RFC 1929 request
 * VER(1) ULEN(1) UNAME(255) PLEN(1) PASSWD(255). The CONNECT request is at
 * most 4 + 1 + 255 + 2 = 262 bytes, the greeting 3. */
#define SC_SOCKS5_SEND_MAX_BYTES 513u
/* Longest server reply: VER REP RSV ATYP(4) + LEN(1) + 255 + PORT(2). */
#define SC_SOCKS5_REPLY_MAX_BYTES 262u

/* Negotiation states. SEND_* states have bytes to write (sc_socks5_next_send),
 * READ_* states wait for the server (sc_socks5_recv). Allowed transitions:
 *   SEND_GREETING -> READ_METHOD
 *   READ_METHOD   -> SEND_AUTH     (server chose 0x02, we have credentials)
 *                 -> SEND_CONNECT  (server chose 0x00, we have none)
 *                 -> FAILED        (0xFF, or a method we did not offer)
 *   SEND_AUTH     -> READ_AUTH
 *   READ_AUTH     -> SEND_CONNECT | FAILED
 *   SEND_CONNECT  -> READ_REPLY
 *   READ_REPLY    -> CONNECTED | FAILED
 * CONNECTED and FAILED are final. One static function in socks5_proto.c
 * changes state and aborts on any other transition (a broken invariant;
 * hostile input only ever leads to FAILED). */
enum sc_socks5_state {
    SC_SOCKS5_SEND_GREETING = 0,
    SC_SOCKS5_READ_METHOD,
    SC_SOCKS5_SEND_AUTH,
    SC_SOCKS5_READ_AUTH,
    SC_SOCKS5_SEND_CONNECT,
    SC_SOCKS5_READ_REPLY,
    SC_SOCKS5_CONNECTED,
    SC_SOCKS5_FAILED,
};

/* What the caller must do next (derived from the state). */
enum sc_socks5_want {
    SC_SOCKS5_WANT_SEND,   /* call sc_socks5_next_send() and write its bytes */
    SC_SOCKS5_WANT_RECV,   /* feed more server bytes to sc_socks5_recv() */
    SC_SOCKS5_WANT_DONE,   /* connected: later bytes belong to the layer above */
    SC_SOCKS5_WANT_FAILED, /* see sc_socks5_result() */
};

/* Outcome of a negotiation; each has a stable short name (for logs, metrics
 * and config) and a lower-case human text (for "socks5: <text>"). */
enum sc_socks5_result {
    SC_SOCKS5_R_PENDING = 0,         /* not finished */
    SC_SOCKS5_R_SUCCEEDED,           /* REP 0x00 */
    SC_SOCKS5_R_NO_ACCEPTABLE_METHOD, /* method selection 0xFF */
    SC_SOCKS5_R_AUTH_FAILED,         /* RFC 1929 STATUS != 0 */
    SC_SOCKS5_R_GENERAL_FAILURE,     /* REP 0x01 */
    SC_SOCKS5_R_NOT_ALLOWED,         /* REP 0x02 connection not allowed by ruleset */
    SC_SOCKS5_R_NETWORK_UNREACHABLE, /* REP 0x03 */
    SC_SOCKS5_R_HOST_UNREACHABLE,    /* REP 0x04 */
    SC_SOCKS5_R_CONNECTION_REFUSED,  /* REP 0x05 */
    SC_SOCKS5_R_TTL_EXPIRED,         /* REP 0x06 */
    SC_SOCKS5_R_COMMAND_NOT_SUPPORTED, /* REP 0x07 */
    SC_SOCKS5_R_ADDRESS_TYPE_NOT_SUPPORTED, /* REP 0x08 */
    /* Tor's extended codes (tor spec socks-extensions, sent only when the
     * SocksPort has the ExtendedErrors flag). */
    SC_SOCKS5_R_ONION_DESC_NOT_FOUND,      /* REP 0xF0 */
    SC_SOCKS5_R_ONION_DESC_INVALID,        /* REP 0xF1 */
    SC_SOCKS5_R_ONION_INTRO_FAILED,        /* REP 0xF2 */
    SC_SOCKS5_R_ONION_REND_FAILED,         /* REP 0xF3 */
    SC_SOCKS5_R_ONION_MISSING_CLIENT_AUTH, /* REP 0xF4 */
    SC_SOCKS5_R_ONION_BAD_CLIENT_AUTH,     /* REP 0xF5 */
    SC_SOCKS5_R_ONION_BAD_ADDRESS,         /* REP 0xF6 */
    SC_SOCKS5_R_ONION_INTRO_TIMEOUT,       /* REP 0xF7 */
    SC_SOCKS5_R_UNKNOWN_REPLY,       /* any other REP code (see `code`) */
    SC_SOCKS5_R_PROTOCOL_ERROR,      /* malformed server bytes */
};
#define SC_SOCKS5_R_COUNT (SC_SOCKS5_R_PROTOCOL_ERROR + 1)

struct sc_socks5_config {
    /* Target host name, 1..255 bytes of printable ASCII (0x21..0x7e). It is
     * ALWAYS sent as ATYP 0x03 (domain name), never resolved here, even when
     * it looks like an IPv4 or IPv6 literal: the proxy resolves it, so no DNS
     * query for it ever leaves this host (no DNS leak). */
    const char *host;
    uint16_t port; /* 1..65535 */
    /* NULL/NULL: offer only method 0x00 (no authentication).
     * Both set (1..255 bytes each): offer ONLY method 0x02 (RFC 1929), so a
     * proxy that would pick "no authentication" cannot silently drop the
     * credentials and with them Tor's stream isolation (IsolateSOCKSAuth);
     * such a proxy answers 0xFF and the result is no_acceptable_method. */
    const char *username;
    const char *password;
};

/* One negotiation; plain data, no pointers into caller memory. */
struct sc_socks5 {
    enum sc_socks5_state state;
    enum sc_socks5_result result;
    /* The server byte that decided the outcome (chosen method, RFC 1929
     * STATUS or REP), or the offending byte for a protocol error. */
    uint8_t code;
    uint16_t port;
    uint8_t host_len, user_len, pass_len;
    char host[SC_SOCKS5_HOST_MAX_BYTES];
    char user[SC_SOCKS5_CRED_MAX_BYTES]; /* wiped once the request is out */
    char pass[SC_SOCKS5_CRED_MAX_BYTES];
    /* Current server message: bytes seen so far, the total once known, and
     * the first 5 bytes (enough to learn a reply's length). */
    uint16_t rx_len, rx_need;
    uint8_t rx[5];
};

/* Validates cfg and starts in SEND_GREETING. SC_EINVAL on a host or
 * credential of the wrong length or with forbidden bytes, a port of 0, or
 * only one of username/password; then `s` is not usable. */
int sc_socks5_init(struct sc_socks5 *s, const struct sc_socks5_config *cfg) SC_MUST_CHECK;

/* In a SEND_* state: writes the next message into out[0..cap) and sets
 * *out_len, then waits for the answer (READ_*).
 *   greeting:  05 01 00  (no auth)  or  05 01 02  (username/password)
 *   RFC 1929:  01 ULEN UNAME PLEN PASSWD  (then the credentials are wiped)
 *   CONNECT:   05 01 00 03 LEN HOST PORT(big-endian)
 * SC_ESTATE in any other state, SC_ENOSPACE when cap is too small (at most
 * SC_SOCKS5_SEND_MAX_BYTES is ever needed); neither changes anything. */
int sc_socks5_next_send(struct sc_socks5 *s, uint8_t *out, size_t cap,
                        size_t *out_len) SC_MUST_CHECK;

/* In a READ_* state: consumes server bytes from in[0..len), any split (one
 * byte at a time is fine), and sets *consumed. It stops at the end of the
 * message it waits for, so bytes after the final reply (or after a method or
 * auth answer, which the server should not send) stay with the caller; check
 * sc_socks5_want() after each call. Returns
 *   0            progress: WANT_RECV (then *consumed == len), WANT_SEND or
 *                WANT_DONE;
 *   SC_ESTATE    not in a READ_* state (nothing consumed, nothing changed);
 *   SC_EAUTH     no acceptable method (0xFF) or RFC 1929 STATUS != 0;
 *   SC_ECONNECT  the proxy refused the CONNECT (REP != 0; the result names
 *                it, decided on the REP byte: the rest of a failure reply,
 *                which the server closes after, is not waited for);
 *   SC_EVERSION  wrong VER byte; SC_EFORMAT any other malformed byte
 *                (non-zero RSV, unknown ATYP, domain length 0, a method we
 *                did not offer): result protocol_error.
 * On an error the state is FAILED and *consumed counts the byte that
 * decided it. The reply's BND.ADDR (IPv4 4 bytes, domain 1+N, IPv6 16) and
 * BND.PORT are skipped exactly. */
int sc_socks5_recv(struct sc_socks5 *s, const uint8_t *in, size_t len,
                   size_t *consumed) SC_MUST_CHECK;

enum sc_socks5_want sc_socks5_want(const struct sc_socks5 *s);
/* "send_greeting", "read_method", …; "?" for a value out of range. */
const char *sc_socks5_state_name(enum sc_socks5_state state);
/* Stable short name, e.g. "host_unreachable", "onion_desc_not_found". */
const char *sc_socks5_result_name(enum sc_socks5_result result);
/* Human text, e.g. "host unreachable", "onion service descriptor can not be
 * found". Never NULL ("?" for a value out of range). */
const char *sc_socks5_result_text(enum sc_socks5_result result);
/* Wipes the struct (credentials included); safe in any state, twice. */
void sc_socks5_clear(struct sc_socks5 *s);

/* --- stream isolation ------------------------------------------------------
 * Tor (IsolateSOCKSAuth, on by default) puts streams with different SOCKS
 * credentials on different circuits. Deterministic per peer:
 *   username = "secirc-" + first 16 hex digits of BLAKE2b-256(peer_key)
 *   password = "x"
 * peer_key is any non-empty string naming the peer (its relay ID in hex, or
 * "host:port"). Same key, same credentials; distinct keys, distinct
 * usernames (up to a 64-bit hash collision). Not a secret. */
#define SC_SOCKS5_ISOLATION_PREFIX "secirc-"
#define SC_SOCKS5_ISOLATION_USER_LEN 23u /* 7 + 16 */
struct sc_socks5_isolation {
    char username[SC_SOCKS5_ISOLATION_USER_LEN + 1];
    char password[2];
};
/* SC_EINVAL for a NULL or empty peer_key, SC_ECRYPTO if libsodium fails to
 * initialise. */
int sc_socks5_isolation_creds(const char *peer_key,
                              struct sc_socks5_isolation *out) SC_MUST_CHECK;

#endif
