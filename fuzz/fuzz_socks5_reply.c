/* fuzz/fuzz_socks5_reply.c — libFuzzer target for the SOCKS5 client state
 * machine (transport/socks5_proto.h) and the .onion checks (transport/onion.h).
 *
 * Input: FLAGS(1) SEED(1) BYTES...
 *   FLAGS bit 7 set: BYTES (up to 300) as a host name through
 *     sc_onion_v3_check and sc_host_is_onion (a valid v3 address must be an
 *     onion name; only the documented error codes).
 *   else: bit 0 = with username/password, bits 1-2 pick the target host;
 *     BYTES are everything the server says, fed in pieces of 0..16 bytes
 *     drawn from a generator seeded with SEED, through the whole negotiation.
 * Checked: never more consumed than given; a call that needs more consumed
 * everything; every message sent is byte-exact; a finished reply was
 * consumed to its exact length (from its ATYP) and not one byte further;
 * errors and outcomes agree; calls out of turn are SC_ESTATE.
 * A broken property is __builtin_trap().
 *
 * With SC_FUZZ_WRITE_SEEDS=DIR set, the target writes its seed files into
 * DIR and exits (fuzz/corpus/fuzz_socks5_reply/ was made that way). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/onion.h"
#include "transport/socks5_proto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FLAG_CREDS 0x01u
#define FLAG_ONION 0x80u

static char host_max[256];
static const char *hosts[4] = {"example.onion", "a", "127.0.0.1", host_max};

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

static void onion_strings(const uint8_t *data, size_t size)
{
    char host[301];
    if (size > 300)
        size = 300;
    memcpy(host, data, size);
    host[size] = '\0';
    int err = sc_onion_v3_check(host);
    check(err == 0 || err == SC_EFORMAT || err == SC_EVERSION || err == SC_ECRYPTO);
    if (err == 0)
        check(sc_host_is_onion(host) && strlen(host) <= 255);
}

/* The message `s` must send in its current state. */
static size_t expected_send(const struct sc_socks5 *s, const char *host, uint16_t port,
                            const char *user, const char *pass, uint8_t *out)
{
    size_t n = 0, hl = strlen(host);
    switch (s->state) {
    case SC_SOCKS5_SEND_GREETING:
        out[n++] = 5;
        out[n++] = 1;
        out[n++] = user ? 2 : 0;
        break;
    case SC_SOCKS5_SEND_AUTH:
        out[n++] = 1;
        out[n++] = (uint8_t)strlen(user);
        memcpy(out + n, user, strlen(user));
        n += strlen(user);
        out[n++] = (uint8_t)strlen(pass);
        memcpy(out + n, pass, strlen(pass));
        n += strlen(pass);
        break;
    case SC_SOCKS5_SEND_CONNECT:
        memcpy(out, "\x05\x01\x00\x03", 4);
        out[4] = (uint8_t)hl;
        memcpy(out + 5, host, hl);
        out[5 + hl] = (uint8_t)(port >> 8);
        out[6 + hl] = (uint8_t)port;
        n = 7 + hl;
        break;
    default:
        check(0);
    }
    return n;
}

/* Length of the reply at r (which the machine accepted) from its ATYP. */
static size_t reply_length(const uint8_t *r)
{
    switch (r[3]) {
    case 1:
        return 10;
    case 4:
        return 22;
    case 3:
        return 7u + r[4];
    default:
        check(0);
        return 0;
    }
}

static void negotiate(const uint8_t *data, size_t size)
{
    uint8_t flags = data[0];
    uint32_t rng = 0x9e3779b9u ^ data[1];
    const uint8_t *in = data + 2;
    size_t len = size - 2, off = 0, reply_start = 0;
    const char *host = hosts[(flags >> 1) & 3];
    const char *user = flags & FLAG_CREDS ? "secirc-0123456789abcdef" : NULL;
    const char *pass = flags & FLAG_CREDS ? "x" : NULL;
    uint16_t port = (uint16_t)(0x100u | data[1]); /* never 0 */
    struct sc_socks5_config cfg = {.host = host, .port = port, .username = user, .password = pass};
    struct sc_socks5 s;
    uint8_t out[SC_SOCKS5_SEND_MAX_BYTES], want[SC_SOCKS5_SEND_MAX_BYTES];
    size_t n, c;
    bool empty_last = false;

    check(sc_socks5_init(&s, &cfg) == 0);
    /* Each round sends a message (three at most) or feeds a piece of 0..16
     * bytes, never two empty pieces in a row: the bound below is never hit
     * while the machine still makes progress. */
    for (size_t round = 0; round < 2 * len + 64; round++) {
        enum sc_socks5_want w = sc_socks5_want(&s);
        if (w == SC_SOCKS5_WANT_SEND) {
            check(sc_socks5_recv(&s, in + off, len - off, &c) == SC_ESTATE && c == 0);
            size_t wn = expected_send(&s, host, port, user, pass, want);
            check(sc_socks5_next_send(&s, out, sizeof out, &n) == 0);
            check(n == wn && n <= SC_SOCKS5_SEND_MAX_BYTES && memcmp(out, want, n) == 0);
            check(sc_socks5_want(&s) == SC_SOCKS5_WANT_RECV);
            if (s.state == SC_SOCKS5_READ_REPLY)
                reply_start = off;
            continue;
        }
        if (w != SC_SOCKS5_WANT_RECV)
            break;
        if (off == len)
            return; /* the server said no more: still waiting, fine */
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        size_t piece = rng % 17;
        if (piece == 0 && empty_last)
            piece = 1;
        empty_last = piece == 0;
        if (piece > len - off)
            piece = len - off;
        enum sc_socks5_state before = s.state;
        c = SIZE_MAX;
        int err = sc_socks5_recv(&s, in + off, piece, &c);
        check(c <= piece);
        if (err == 0) {
            w = sc_socks5_want(&s);
            check(w != SC_SOCKS5_WANT_FAILED);
            check(w != SC_SOCKS5_WANT_RECV || (c == piece && s.state == before));
            check(w == SC_SOCKS5_WANT_RECV || c >= 1);
            check(s.result == (w == SC_SOCKS5_WANT_DONE ? SC_SOCKS5_R_SUCCEEDED
                                                        : SC_SOCKS5_R_PENDING));
        } else {
            check(c >= 1 && s.state == SC_SOCKS5_FAILED);
            switch (err) {
            case SC_EAUTH:
                check(s.result == SC_SOCKS5_R_NO_ACCEPTABLE_METHOD ||
                      s.result == SC_SOCKS5_R_AUTH_FAILED);
                break;
            case SC_ECONNECT:
                check(s.result >= SC_SOCKS5_R_GENERAL_FAILURE &&
                      s.result <= SC_SOCKS5_R_UNKNOWN_REPLY && s.code != 0);
                break;
            case SC_EVERSION:
            case SC_EFORMAT:
                check(s.result == SC_SOCKS5_R_PROTOCOL_ERROR);
                break;
            default:
                check(0);
            }
            check(in[off + c - 1] == s.code); /* the deciding byte */
        }
        off += c;
    }
    enum sc_socks5_want w = sc_socks5_want(&s);
    check(w == SC_SOCKS5_WANT_DONE || w == SC_SOCKS5_WANT_FAILED);
    if (w == SC_SOCKS5_WANT_DONE)
        check(off - reply_start == reply_length(in + reply_start));
    const char *name = sc_socks5_result_name(s.result);
    check(name[0] != '\0' && strcmp(name, "?") != 0);
    check(sc_socks5_result_text(s.result)[0] != '\0');
    check(sc_socks5_next_send(&s, out, sizeof out, &n) == SC_ESTATE && n == 0);
    check(sc_socks5_recv(&s, in, len, &c) == SC_ESTATE && c == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & FLAG_ONION) {
        onion_strings(data + 1, size - 1);
        return 0;
    }
    if (size < 2)
        return 0;
    negotiate(data, size);
    return 0;
}

/* ---- seeds ------------------------------------------------------------------ */

static void write_seed(const char *dir, const char *name, uint8_t flags, uint8_t seed,
                       const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    check(f != NULL);
    check(fputc(flags, f) != EOF && fputc(seed, f) != EOF);
    check(fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

#define SEED(dir, name, flags, seed, lit) write_seed(dir, name, flags, seed, lit, sizeof lit - 1)

static void write_seeds(const char *dir)
{
    SEED(dir, "noauth-ipv4", 0, 1, "\x05\x00" "\x05\x00\x00\x01\x7f\x00\x00\x01\x23\x82");
    SEED(dir, "noauth-ipv6-trailing", 2, 7,
         "\x05\x00" "\x05\x00\x00\x04" "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01" "\x00\x50"
         "link bytes");
    SEED(dir, "noauth-domain", 4, 3,
         "\x05\x00" "\x05\x00\x00\x03\x09localhost\x1f\x90" "\x00");
    SEED(dir, "auth-ipv4", FLAG_CREDS, 5,
         "\x05\x02" "\x01\x00" "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00");
    SEED(dir, "auth-failed", FLAG_CREDS, 9, "\x05\x02" "\x01\x01");
    SEED(dir, "method-none", 0, 2, "\x05\xff");
    SEED(dir, "method-not-offered", FLAG_CREDS, 2, "\x05\x00");
    SEED(dir, "rep-host-unreachable", 0, 4, "\x05\x00" "\x05\x04\x00\x01\0\0\0\0\0\0");
    SEED(dir, "rep-onion-intro-failed", FLAG_CREDS | 6, 11,
         "\x05\x02" "\x01\x00" "\x05\xf2\x00\x01\0\0\0\0\0\0");
    SEED(dir, "bad-atyp", 0, 8, "\x05\x00" "\x05\x00\x00\x02\0\0\0\0\0\0");
    SEED(dir, "http-reply", 0, 0, "HTTP/1.0 400 Bad Request\r\n\r\n");
    /* Onion mode: the string starts right after FLAGS, so the SEED slot
     * holds its first character. */
    SEED(dir, "onion-v3", FLAG_ONION, '2',
         "gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion");
    SEED(dir, "onion-v3-www", FLAG_ONION, 'w',
         "ww.2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memset(host_max, 'h', 255);
    host_max[255] = '\0';
    const char *dir = getenv("SC_FUZZ_WRITE_SEEDS");
    if (dir != NULL) {
        write_seeds(dir);
        exit(0);
    }
    return 0;
}
