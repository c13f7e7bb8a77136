/* transport/socks5_proto.c — SOCKS5 client negotiation (RFC 1928/1929) over
 * byte buffers, and per-peer credentials for Tor's stream isolation.
 * Pure: no I/O, no clock, no logging, no allocation. It must never resolve a
 * name (the target always goes out as ATYP 0x03) and never read past the
 * message it waits for. */
#include "transport/socks5_proto.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define VER_SOCKS5 0x05u
#define VER_USERPASS 0x01u /* RFC 1929 sub-negotiation version */
#define METHOD_NO_AUTH 0x00u
#define METHOD_USERPASS 0x02u
#define METHOD_NONE 0xffu
#define CMD_CONNECT 0x01u
#define ATYP_IPV4 0x01u
#define ATYP_DOMAIN 0x03u
#define ATYP_IPV6 0x04u

static const char *const state_names[] = {
    [SC_SOCKS5_SEND_GREETING] = "send_greeting",
    [SC_SOCKS5_READ_METHOD] = "read_method",
    [SC_SOCKS5_SEND_AUTH] = "send_auth",
    [SC_SOCKS5_READ_AUTH] = "read_auth",
    [SC_SOCKS5_SEND_CONNECT] = "send_connect",
    [SC_SOCKS5_READ_REPLY] = "read_reply",
    [SC_SOCKS5_CONNECTED] = "connected",
    [SC_SOCKS5_FAILED] = "failed",
};

static const struct {
    const char *name;
    const char *text;
} results[SC_SOCKS5_R_COUNT] = {
    [SC_SOCKS5_R_PENDING] = {"pending", "negotiation in progress"},
    [SC_SOCKS5_R_SUCCEEDED] = {"succeeded", "succeeded"},
    [SC_SOCKS5_R_NO_ACCEPTABLE_METHOD] = {"no_acceptable_method",
                                          "no acceptable authentication method"},
    [SC_SOCKS5_R_AUTH_FAILED] = {"auth_failed", "username/password authentication failed"},
    [SC_SOCKS5_R_GENERAL_FAILURE] = {"general_failure", "general SOCKS server failure"},
    [SC_SOCKS5_R_NOT_ALLOWED] = {"not_allowed", "connection not allowed by ruleset"},
    [SC_SOCKS5_R_NETWORK_UNREACHABLE] = {"network_unreachable", "network unreachable"},
    [SC_SOCKS5_R_HOST_UNREACHABLE] = {"host_unreachable", "host unreachable"},
    [SC_SOCKS5_R_CONNECTION_REFUSED] = {"connection_refused", "connection refused"},
    [SC_SOCKS5_R_TTL_EXPIRED] = {"ttl_expired", "TTL expired"},
    [SC_SOCKS5_R_COMMAND_NOT_SUPPORTED] = {"command_not_supported", "command not supported"},
    [SC_SOCKS5_R_ADDRESS_TYPE_NOT_SUPPORTED] = {"address_type_not_supported",
                                                "address type not supported"},
    [SC_SOCKS5_R_ONION_DESC_NOT_FOUND] = {"onion_desc_not_found",
                                          "onion service descriptor can not be found"},
    [SC_SOCKS5_R_ONION_DESC_INVALID] = {"onion_desc_invalid",
                                        "onion service descriptor is invalid"},
    [SC_SOCKS5_R_ONION_INTRO_FAILED] = {"onion_intro_failed",
                                        "onion service introduction failed"},
    [SC_SOCKS5_R_ONION_REND_FAILED] = {"onion_rend_failed", "onion service rendezvous failed"},
    [SC_SOCKS5_R_ONION_MISSING_CLIENT_AUTH] = {"onion_missing_client_auth",
                                               "onion service missing client authorization"},
    [SC_SOCKS5_R_ONION_BAD_CLIENT_AUTH] = {"onion_bad_client_auth",
                                           "onion service wrong client authorization"},
    [SC_SOCKS5_R_ONION_BAD_ADDRESS] = {"onion_bad_address", "onion service invalid address"},
    [SC_SOCKS5_R_ONION_INTRO_TIMEOUT] = {"onion_intro_timeout",
                                         "onion service introduction timed out"},
    [SC_SOCKS5_R_UNKNOWN_REPLY] = {"unknown_reply", "unknown SOCKS reply code"},
    [SC_SOCKS5_R_PROTOCOL_ERROR] = {"protocol_error", "malformed SOCKS5 reply"},
};

const char *sc_socks5_state_name(enum sc_socks5_state state)
{
    if ((unsigned)state >= sizeof state_names / sizeof state_names[0])
        return "?";
    return state_names[state];
}

const char *sc_socks5_result_name(enum sc_socks5_result result)
{
    if ((unsigned)result >= SC_SOCKS5_R_COUNT)
        return "?";
    return results[result].name;
}

const char *sc_socks5_result_text(enum sc_socks5_result result)
{
    if ((unsigned)result >= SC_SOCKS5_R_COUNT)
        return "?";
    return results[result].text;
}

/* The one place that changes state; see the transition list in the header. */
static void set_state(struct sc_socks5 *s, enum sc_socks5_state next)
{
    enum sc_socks5_state cur = s->state;
    bool ok;

    switch (cur) {
    case SC_SOCKS5_SEND_GREETING:
        ok = next == SC_SOCKS5_READ_METHOD;
        break;
    case SC_SOCKS5_READ_METHOD:
        ok = next == SC_SOCKS5_SEND_AUTH || next == SC_SOCKS5_SEND_CONNECT ||
             next == SC_SOCKS5_FAILED;
        break;
    case SC_SOCKS5_SEND_AUTH:
        ok = next == SC_SOCKS5_READ_AUTH;
        break;
    case SC_SOCKS5_READ_AUTH:
        ok = next == SC_SOCKS5_SEND_CONNECT || next == SC_SOCKS5_FAILED;
        break;
    case SC_SOCKS5_SEND_CONNECT:
        ok = next == SC_SOCKS5_READ_REPLY;
        break;
    case SC_SOCKS5_READ_REPLY:
        ok = next == SC_SOCKS5_CONNECTED || next == SC_SOCKS5_FAILED;
        break;
    default: /* CONNECTED, FAILED are final */
        ok = false;
        break;
    }
    if (!ok) {
        fprintf(stderr, "socks5: illegal state transition %s -> %s\n", sc_socks5_state_name(cur),
                sc_socks5_state_name(next));
        abort(); /* broken invariant, never input-driven */
    }
    s->state = next;
    s->rx_len = 0;
    s->rx_need = 0;
}

/* Checks a config string: 1..max bytes, each in [lo, hi]. Sets *len. */
static bool string_ok(const char *str, size_t max, unsigned char lo, unsigned char hi,
                      uint8_t *len)
{
    if (str == NULL)
        return false;
    size_t n = strnlen(str, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)str[i];
        if (c < lo || c > hi)
            return false;
    }
    *len = (uint8_t)n;
    return true;
}

int sc_socks5_init(struct sc_socks5 *s, const struct sc_socks5_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->state = SC_SOCKS5_FAILED; /* unusable until fully validated */
    s->result = SC_SOCKS5_R_PENDING;
    if (cfg == NULL || cfg->port == 0)
        return SC_EINVAL;
    /* Printable ASCII only: no NUL, space or control byte reaches the proxy. */
    if (!string_ok(cfg->host, SC_SOCKS5_HOST_MAX_BYTES, 0x21, 0x7e, &s->host_len))
        return SC_EINVAL;
    if ((cfg->username == NULL) != (cfg->password == NULL))
        return SC_EINVAL;
    if (cfg->username != NULL) {
        /* RFC 1929 allows any bytes; a C string cannot carry NUL anyway. */
        if (!string_ok(cfg->username, SC_SOCKS5_CRED_MAX_BYTES, 0x01, 0xff, &s->user_len) ||
            !string_ok(cfg->password, SC_SOCKS5_CRED_MAX_BYTES, 0x01, 0xff, &s->pass_len)) {
            sc_socks5_clear(s);
            s->state = SC_SOCKS5_FAILED;
            return SC_EINVAL;
        }
        memcpy(s->user, cfg->username, s->user_len);
        memcpy(s->pass, cfg->password, s->pass_len);
    }
    memcpy(s->host, cfg->host, s->host_len);
    s->port = cfg->port;
    s->state = SC_SOCKS5_SEND_GREETING;
    return 0;
}

void sc_socks5_clear(struct sc_socks5 *s)
{
    sodium_memzero(s, sizeof *s);
}

enum sc_socks5_want sc_socks5_want(const struct sc_socks5 *s)
{
    switch (s->state) {
    case SC_SOCKS5_SEND_GREETING:
    case SC_SOCKS5_SEND_AUTH:
    case SC_SOCKS5_SEND_CONNECT:
        return SC_SOCKS5_WANT_SEND;
    case SC_SOCKS5_READ_METHOD:
    case SC_SOCKS5_READ_AUTH:
    case SC_SOCKS5_READ_REPLY:
        return SC_SOCKS5_WANT_RECV;
    case SC_SOCKS5_CONNECTED:
        return SC_SOCKS5_WANT_DONE;
    default:
        return SC_SOCKS5_WANT_FAILED;
    }
}

int sc_socks5_next_send(struct sc_socks5 *s, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t n = 0;

    *out_len = 0;
    switch (s->state) {
    case SC_SOCKS5_SEND_GREETING:
        if (cap < 3)
            return SC_ENOSPACE;
        out[n++] = VER_SOCKS5;
        out[n++] = 1; /* NMETHODS: exactly one, see the header */
        out[n++] = s->user_len ? METHOD_USERPASS : METHOD_NO_AUTH;
        set_state(s, SC_SOCKS5_READ_METHOD);
        break;
    case SC_SOCKS5_SEND_AUTH:
        if (cap < 3u + s->user_len + s->pass_len)
            return SC_ENOSPACE;
        out[n++] = VER_USERPASS;
        out[n++] = s->user_len;
        memcpy(out + n, s->user, s->user_len);
        n += s->user_len;
        out[n++] = s->pass_len;
        memcpy(out + n, s->pass, s->pass_len);
        n += s->pass_len;
        /* Sent once; not kept around for longer than needed. */
        sodium_memzero(s->user, sizeof s->user);
        sodium_memzero(s->pass, sizeof s->pass);
        set_state(s, SC_SOCKS5_READ_AUTH);
        break;
    case SC_SOCKS5_SEND_CONNECT:
        if (cap < 7u + s->host_len)
            return SC_ENOSPACE;
        out[n++] = VER_SOCKS5;
        out[n++] = CMD_CONNECT;
        out[n++] = 0x00; /* RSV */
        out[n++] = ATYP_DOMAIN; /* always: the proxy resolves, no DNS leak */
        out[n++] = s->host_len;
        memcpy(out + n, s->host, s->host_len);
        n += s->host_len;
        out[n++] = (uint8_t)(s->port >> 8);
        out[n++] = (uint8_t)s->port;
        set_state(s, SC_SOCKS5_READ_REPLY);
        break;
    default:
        return SC_ESTATE;
    }
    *out_len = n;
    return 0;
}

/* Moves to FAILED with `result`, remembering the byte that decided it. */
static int fail(struct sc_socks5 *s, enum sc_socks5_result result, uint8_t code, int err)
{
    s->result = result;
    s->code = code;
    set_state(s, SC_SOCKS5_FAILED);
    return err;
}

static enum sc_socks5_result reply_result(uint8_t rep)
{
    if (rep >= 0x01 && rep <= 0x08)
        return (enum sc_socks5_result)(SC_SOCKS5_R_GENERAL_FAILURE + (rep - 0x01));
    if (rep >= 0xf0 && rep <= 0xf7)
        return (enum sc_socks5_result)(SC_SOCKS5_R_ONION_DESC_NOT_FOUND + (rep - 0xf0));
    return SC_SOCKS5_R_UNKNOWN_REPLY;
}

/* Method selection: VER METHOD. Returns 1 when done, 0 for more, or < 0. */
static int on_method_byte(struct sc_socks5 *s, uint8_t b)
{
    if (s->rx_len == 1) {
        if (b != VER_SOCKS5)
            return fail(s, SC_SOCKS5_R_PROTOCOL_ERROR, b, SC_EVERSION);
        return 0;
    }
    uint8_t offered = s->user_len ? METHOD_USERPASS : METHOD_NO_AUTH;
    if (b == METHOD_NONE)
        return fail(s, SC_SOCKS5_R_NO_ACCEPTABLE_METHOD, b, SC_EAUTH);
    if (b != offered)
        return fail(s, SC_SOCKS5_R_PROTOCOL_ERROR, b, SC_EFORMAT);
    s->code = b;
    set_state(s, b == METHOD_USERPASS ? SC_SOCKS5_SEND_AUTH : SC_SOCKS5_SEND_CONNECT);
    return 1;
}

/* RFC 1929 answer: VER STATUS. */
static int on_auth_byte(struct sc_socks5 *s, uint8_t b)
{
    if (s->rx_len == 1) {
        if (b != VER_USERPASS)
            return fail(s, SC_SOCKS5_R_PROTOCOL_ERROR, b, SC_EVERSION);
        return 0;
    }
    if (b != 0x00)
        return fail(s, SC_SOCKS5_R_AUTH_FAILED, b, SC_EAUTH);
    s->code = b;
    set_state(s, SC_SOCKS5_SEND_CONNECT);
    return 1;
}

/* Reply: VER REP RSV ATYP BND.ADDR BND.PORT. rx_need is 0 until the
 * length is known (after ATYP, or after the domain length byte). */
static int on_reply_byte(struct sc_socks5 *s, uint8_t b)
{
    switch (s->rx_len) {
    case 1:
        if (b != VER_SOCKS5)
            return fail(s, SC_SOCKS5_R_PROTOCOL_ERROR, b, SC_EVERSION);
        return 0;
    case 2:
        if (b != 0x00) /* the server closes after a failure reply */
            return fail(s, reply_result(b), b, SC_ECONNECT);
        return 0;
    case 3:
        if (b != 0x00)
            return fail(s, SC_SOCKS5_R_PROTOCOL_ERROR, b, SC_EFORMAT);
        return 0;
    case 4:
        if (b == ATYP_IPV4)
            s->rx_need = 4 + 4 + 2;
        else if (b == ATYP_IPV6)
            s->rx_need = 4 + 16 + 2;
        else if (b != ATYP_DOMAIN)
            return fail(s, SC_SOCKS5_R_PROTOCOL_ERROR, b, SC_EFORMAT);
        return 0;
    case 5:
        if (s->rx[3] == ATYP_DOMAIN) {
            if (b == 0)
                return fail(s, SC_SOCKS5_R_PROTOCOL_ERROR, b, SC_EFORMAT);
            s->rx_need = (uint16_t)(4 + 1 + b + 2);
        }
        break;
    default:
        break;
    }
    if (s->rx_len < s->rx_need)
        return 0;
    s->result = SC_SOCKS5_R_SUCCEEDED;
    s->code = 0x00;
    set_state(s, SC_SOCKS5_CONNECTED);
    return 1;
}

int sc_socks5_recv(struct sc_socks5 *s, const uint8_t *in, size_t len, size_t *consumed)
{
    int (*on_byte)(struct sc_socks5 *, uint8_t);

    *consumed = 0;
    switch (s->state) {
    case SC_SOCKS5_READ_METHOD:
        on_byte = on_method_byte;
        break;
    case SC_SOCKS5_READ_AUTH:
        on_byte = on_auth_byte;
        break;
    case SC_SOCKS5_READ_REPLY:
        on_byte = on_reply_byte;
        break;
    default:
        return SC_ESTATE;
    }
    /* Byte by byte: each message is at most SC_SOCKS5_REPLY_MAX_BYTES, and
     * stopping exactly at its end is what matters here, not speed. */
    for (size_t i = 0; i < len; i++) {
        uint8_t b = in[i];
        if (s->rx_len < sizeof s->rx)
            s->rx[s->rx_len] = b;
        s->rx_len++;
        int r = on_byte(s, b);
        *consumed = i + 1;
        if (r != 0)
            return r < 0 ? r : 0;
    }
    return 0;
}

/* ---- stream isolation ------------------------------------------------------ */

int sc_socks5_isolation_creds(const char *peer_key, struct sc_socks5_isolation *out)
{
    uint8_t hash[crypto_generichash_BYTES]; /* BLAKE2b-256 */
    static const char hex[] = "0123456789abcdef";
    const size_t plen = sizeof SC_SOCKS5_ISOLATION_PREFIX - 1;

    memset(out, 0, sizeof *out);
    if (peer_key == NULL || peer_key[0] == '\0')
        return SC_EINVAL;
    if (sodium_init() < 0)
        return SC_ECRYPTO;
    crypto_generichash(hash, sizeof hash, (const uint8_t *)peer_key, strlen(peer_key), NULL, 0);
    memcpy(out->username, SC_SOCKS5_ISOLATION_PREFIX, plen);
    for (size_t i = 0; i < 8; i++) {
        out->username[plen + 2 * i] = hex[hash[i] >> 4];
        out->username[plen + 2 * i + 1] = hex[hash[i] & 0x0f];
    }
    out->username[SC_SOCKS5_ISOLATION_USER_LEN] = '\0';
    out->password[0] = 'x';
    out->password[1] = '\0';
    return 0;
}
