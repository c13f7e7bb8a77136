/* cmd/secirc_linktest_opts.c — `secirc link-test`'s command line: the
 * options table, usage text and parsing into struct app (the transport
 * options have their own files). Argument handling only: no I/O but the
 * messages on stderr. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/secirc_linktest.h"
#include "link/link_stream.h"
#include "transport/transport.h"
#include "util/hex.h"
#include "util/log.h"

/* ---- options --------------------------------------------------------------- */

void sc_linktest_usage(FILE *f)
{
    fprintf(f,
            "usage: secirc link-test listen  --key FILE [--address ADDR] [--port PORT] [options]\n"
            "       secirc link-test connect --key FILE --host HOST --port PORT [--expect ID] [options]\n"
            "\n"
            "Links two processes by hand. Events are printed one per line on stdout;\n"
            "stdin takes commands: 'send TEXT', 'ping', 'stats', 'close', 'quit'. At end of\n"
            "input (or SIGINT/SIGTERM) it closes its links and exits; 'connect' also exits\n"
            "when its link closes.\n"
            "\n"
            "link options:\n"
            "  --timeout MS               connection_timeout (default %u)\n"
            "  --heartbeat MS             heartbeat_interval, 0 = off (default %u)\n"
            "  --heartbeat-misses N       heartbeat ticks without a frame before closing (default %u)\n"
            "  --rekey-frames N           rekey after N frames (default %u)\n"
            "  --rekey-bytes N            rekey after N bytes\n"
            "  --rekey-ms MS              rekey after MS milliseconds\n"
            "  --max-frame N              frame body size we coalesce to (default %u)\n"
            "  --max-message N            largest payload we take, %u..%u (default %u)\n"
            "  --send-queue-bytes N       send queue limit per link\n"
            "  --max-cert-lifetime S      refuse peer certificates valid longer (default %u)\n"
            "  --layer xor|xor-hello      test-only transport layer on top of tcp (both sides)\n"
            SC_LINKTEST_WS_USAGE
            SC_LINKTEST_TLS_USAGE
            "connect options:\n"
            "  --source ADDR              local address to connect from\n"
            SC_LINKTEST_SOCKS5_USAGE
            "listen options:\n"
            "  --probe-resistance         silent unless message 1 names our relay ID\n"
            "  --reject REASON            refuse every peer (busy, not_allowed, ...)\n"
            "  --priority N               priority class in ACCEPT (2, 4, 6, 8, 10; default 2)\n"
            "  --trust ID                 give relay ID the trusted class (8); repeatable\n"
            "  --max-handshakes N         handshakes in progress (default %u)\n"
            "  --max-handshakes-per-address N   (default %u)\n"
            "  --handshake-rate N         new connections/s, all sources, 0 = off (default %u)\n"
            "  --handshake-burst N        (default %u)\n"
            "  --handshake-rate-per-address N   (default %u)\n"
            "  --handshake-burst-per-address N  (default %u)\n"
            "  --max-links N              authenticated links (default %u)\n"
            "  --max-links-per-address N  for untrusted peers (default %u)\n"
            "  --max-links-per-peer N     (default %u)\n"
            "  --links-reserved N         of max-links, only for trusted peers (default %u)\n"
            "  --fd-reserve N             descriptors strangers never take (default %u)\n"
            "  --fd-limit N               set the process's descriptor limit (tests)\n"
            "  --rotate-key-ms MS         replace the link key every MS milliseconds\n"
            "traffic options:\n"
            "  --echo                     send every message back\n"
            "  --send-count N             send N generated messages once linked\n"
            "  --send-size N              their largest size (default 1024)\n"
            "  --recv-check N             expect N generated messages, check content and order\n"
            "  --exit-when-done           close the link and exit once sending and checking are done\n"
            "  --quiet                    do not print each message\n"
            "  --log-level LEVEL          debug, info, warn, error, off (default warn)\n",
            SC_CONNECTION_TIMEOUT_MS_DEFAULT, SC_HEARTBEAT_INTERVAL_MS_DEFAULT,
            SC_HEARTBEAT_MISS_LIMIT_DEFAULT, SC_REKEY_AFTER_FRAMES_DEFAULT,
            SC_FRAME_BODY_BYTES_DEFAULT, SC_MESSAGE_PAYLOAD_MIN_BYTES, SC_MESSAGE_PAYLOAD_MAX_BYTES,
            SC_MESSAGE_PAYLOAD_BYTES_DEFAULT, SC_CERT_LIFETIME_MAX_S_DEFAULT,
            SC_HANDSHAKES_MAX_DEFAULT, SC_HANDSHAKES_PER_ADDRESS_MAX_DEFAULT,
            SC_HANDSHAKE_RATE_DEFAULT, SC_HANDSHAKE_BURST_DEFAULT,
            SC_HANDSHAKE_RATE_PER_ADDRESS_DEFAULT, SC_HANDSHAKE_BURST_PER_ADDRESS_DEFAULT,
            SC_LINKS_MAX_DEFAULT, SC_LINKS_PER_ADDRESS_MAX_DEFAULT, SC_LINKS_PER_PEER_MAX_DEFAULT,
            SC_LINKS_RESERVED_DEFAULT, SC_FD_RESERVE_DEFAULT);
}

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return false;
    *v = x;
    return true;
}

enum {
    O_KEY = 256, O_ADDRESS, O_PORT, O_HOST, O_EXPECT, O_TIMEOUT, O_HB, O_HB_MISSES,
    O_REKEY_FRAMES, O_REKEY_BYTES, O_REKEY_MS, O_MAX_FRAME, O_MAX_MESSAGE, O_SENDQ,
    O_CERT_LIFETIME, O_LAYER, O_SOURCE, O_PROBE, O_REJECT, O_PRIORITY, O_TRUST, O_MAX_HS,
    O_MAX_HS_ADDR, O_HS_RATE, O_HS_BURST, O_HS_RATE_ADDR, O_HS_BURST_ADDR, O_MAX_LINKS,
    O_MAX_LINKS_ADDR, O_MAX_LINKS_PEER, O_LINKS_RESERVED, O_FD_RESERVE, O_FD_LIMIT, O_ROTATE,
    O_ECHO, O_SEND_COUNT, O_SEND_SIZE, O_RECV_CHECK, O_EXIT_DONE, O_QUIET, O_LOG, O_HELP
};

static const struct option options[] = {
    {"key", required_argument, 0, O_KEY},
    {"address", required_argument, 0, O_ADDRESS},
    {"port", required_argument, 0, O_PORT},
    {"host", required_argument, 0, O_HOST},
    {"expect", required_argument, 0, O_EXPECT},
    {"timeout", required_argument, 0, O_TIMEOUT},
    {"heartbeat", required_argument, 0, O_HB},
    {"heartbeat-misses", required_argument, 0, O_HB_MISSES},
    {"rekey-frames", required_argument, 0, O_REKEY_FRAMES},
    {"rekey-bytes", required_argument, 0, O_REKEY_BYTES},
    {"rekey-ms", required_argument, 0, O_REKEY_MS},
    {"max-frame", required_argument, 0, O_MAX_FRAME},
    {"max-message", required_argument, 0, O_MAX_MESSAGE},
    {"send-queue-bytes", required_argument, 0, O_SENDQ},
    {"max-cert-lifetime", required_argument, 0, O_CERT_LIFETIME},
    {"layer", required_argument, 0, O_LAYER},
    SC_LINKTEST_WS_OPTIONS,
    SC_LINKTEST_TLS_OPTIONS,
    {"source", required_argument, 0, O_SOURCE},
    SC_LINKTEST_SOCKS5_OPTIONS,
    {"probe-resistance", no_argument, 0, O_PROBE},
    {"reject", required_argument, 0, O_REJECT},
    {"priority", required_argument, 0, O_PRIORITY},
    {"trust", required_argument, 0, O_TRUST},
    {"max-handshakes", required_argument, 0, O_MAX_HS},
    {"max-handshakes-per-address", required_argument, 0, O_MAX_HS_ADDR},
    {"handshake-rate", required_argument, 0, O_HS_RATE},
    {"handshake-burst", required_argument, 0, O_HS_BURST},
    {"handshake-rate-per-address", required_argument, 0, O_HS_RATE_ADDR},
    {"handshake-burst-per-address", required_argument, 0, O_HS_BURST_ADDR},
    {"max-links", required_argument, 0, O_MAX_LINKS},
    {"max-links-per-address", required_argument, 0, O_MAX_LINKS_ADDR},
    {"max-links-per-peer", required_argument, 0, O_MAX_LINKS_PEER},
    {"links-reserved", required_argument, 0, O_LINKS_RESERVED},
    {"fd-reserve", required_argument, 0, O_FD_RESERVE},
    {"fd-limit", required_argument, 0, O_FD_LIMIT},
    {"rotate-key-ms", required_argument, 0, O_ROTATE},
    {"echo", no_argument, 0, O_ECHO},
    {"send-count", required_argument, 0, O_SEND_COUNT},
    {"send-size", required_argument, 0, O_SEND_SIZE},
    {"recv-check", required_argument, 0, O_RECV_CHECK},
    {"exit-when-done", no_argument, 0, O_EXIT_DONE},
    {"quiet", no_argument, 0, O_QUIET},
    {"log-level", required_argument, 0, O_LOG},
    {"help", no_argument, 0, O_HELP},
    {0, 0, 0, 0},
};

/* Options whose argument is a number. */
static bool numeric_option(int c)
{
    if ((c >= SC_LINKTEST_SOCKS5 && c < SC_LINKTEST_SOCKS5_END) ||
        (c >= SC_LINKTEST_TLS && c < SC_LINKTEST_TLS_END) ||
        (c >= SC_LINKTEST_WS && c < SC_LINKTEST_WS_END))
        return false;
    switch (c) {
    case O_KEY: case O_ADDRESS: case O_HOST: case O_EXPECT: case O_LAYER: case O_SOURCE:
    case O_PROBE: case O_REJECT: case O_TRUST: case O_ECHO: case O_EXIT_DONE: case O_QUIET:
    case O_LOG: case O_HELP: case '?':
        return false;
    default:
        return true;
    }
}

static const uint8_t xor_key = 0x5c;

static int set_layer(struct app *a, const char *name)
{
    static const struct sc_xor_params plain = {.key = xor_key, .hello = false};
    static const struct sc_xor_params hello = {.key = xor_key, .hello = true};
    if (strcmp(name, "xor") != 0 && strcmp(name, "xor-hello") != 0) {
        fprintf(stderr, "secirc link-test: unknown layer '%s' (xor, xor-hello)\n", name);
        return 2;
    }
    a->layer.ops = &sc_layer_xor;
    a->layer.params = strcmp(name, "xor") == 0 ? &plain : &hello;
    a->has_layer = true;
    return 0;
}

/* One option; 0, or the exit status for a bad one. */
static int apply_option(struct app *a, struct cli_paths *p, int c, const char *arg, uint64_t v)
{
    struct sc_listener_config *l = &a->lcfg;
    switch (c) {
    case O_KEY: p->key_path = arg; break;
    case O_ADDRESS: p->address = arg; break;
    case O_PORT:
        if (v > 65535) {
            fprintf(stderr, "secirc link-test: port %llu out of range\n", (unsigned long long)v);
            return 2;
        }
        a->port = (uint16_t)v;
        break;
    case O_HOST: a->host = arg; break;
    case O_EXPECT: p->expect = arg; break;
    case O_TIMEOUT: a->lc.connection_timeout_ms = (uint32_t)v; break;
    case O_HB: a->lc.heartbeat_interval_ms = (uint32_t)v; break;
    case O_HB_MISSES: a->lc.heartbeat_miss_limit = (uint32_t)v; break;
    case O_REKEY_FRAMES: a->lc.rekey_after_frames = v; break;
    case O_REKEY_BYTES: a->lc.rekey_after_bytes = v; break;
    case O_REKEY_MS: a->lc.rekey_after_ms = v; break;
    case O_MAX_FRAME: a->lc.max_frame_bytes = (uint32_t)v; break;
    case O_MAX_MESSAGE: a->lc.max_message_bytes = (uint32_t)v; break;
    case O_SENDQ: a->lc.send_queue_bytes = (size_t)v; break;
    case O_CERT_LIFETIME: a->lc.max_cert_lifetime_s = (uint32_t)v; break;
    case O_LAYER: return set_layer(a, arg);
    case O_SOURCE: a->source = arg; break;
    case O_PROBE: a->lc.probe_resistance = true; break;
    case O_REJECT: {
        int r = sc_reason_parse(arg);
        if (r <= 0) {
            fprintf(stderr, "secirc link-test: unknown reason '%s'\n", arg);
            return 2;
        }
        a->reject = (enum sc_reason)r;
        break;
    }
    case O_PRIORITY: a->lc.priority = (uint8_t)v; break;
    case O_TRUST:
        if (a->ntrusted == MAX_TRUSTED || sc_relay_id_from_hex(arg, a->trusted[a->ntrusted]) != 0) {
            fprintf(stderr, "secirc link-test: --trust needs a relay ID (at most %d)\n", MAX_TRUSTED);
            return 2;
        }
        a->ntrusted++;
        break;
    case O_MAX_HS: l->max_handshakes = (uint32_t)v; break;
    case O_MAX_HS_ADDR: l->max_handshakes_per_address = (uint32_t)v; break;
    case O_HS_RATE: l->handshake_rate = (uint32_t)v; break;
    case O_HS_BURST: l->handshake_burst = (uint32_t)v; break;
    case O_HS_RATE_ADDR: l->handshake_rate_per_address = (uint32_t)v; break;
    case O_HS_BURST_ADDR: l->handshake_burst_per_address = (uint32_t)v; break;
    case O_MAX_LINKS: l->max_links = (uint32_t)v; break;
    case O_MAX_LINKS_ADDR: l->max_links_per_address = (uint32_t)v; break;
    case O_MAX_LINKS_PEER: l->max_links_per_peer = (uint32_t)v; break;
    case O_LINKS_RESERVED: l->links_reserved = (uint32_t)v; break;
    case O_FD_RESERVE: l->fd_reserve = (uint32_t)v; break;
    case O_FD_LIMIT: p->fd_limit = v; break;
    case O_ROTATE: a->rotate_ms = (uint32_t)v; break;
    case O_ECHO: a->echo = true; break;
    case O_SEND_COUNT: a->send_count = v; break;
    case O_SEND_SIZE:
        if (v < 8 || v > SC_MESSAGE_PAYLOAD_MAX_BYTES) {
            fprintf(stderr, "secirc link-test: --send-size must be 8..%u\n",
                    SC_MESSAGE_PAYLOAD_MAX_BYTES);
            return 2;
        }
        a->send_size = (uint32_t)v;
        break;
    case O_RECV_CHECK: a->recv_check = v; break;
    case O_EXIT_DONE: a->exit_when_done = true; break;
    case O_QUIET: a->quiet = true; break;
    case O_LOG:
        p->log_level = sc_log_level_parse(arg);
        if (p->log_level < 0) {
            fprintf(stderr, "secirc link-test: unknown log level '%s'\n", arg);
            return 2;
        }
        break;
    default:
        if (c >= SC_LINKTEST_SOCKS5 && c < SC_LINKTEST_SOCKS5_END)
            return sc_linktest_socks5_option(&a->socks5, c, arg);
        if (c >= SC_LINKTEST_TLS && c < SC_LINKTEST_TLS_END)
            return sc_linktest_tls_option(&a->tls, c, arg);
        if (c >= SC_LINKTEST_WS && c < SC_LINKTEST_WS_END)
            return sc_linktest_ws_option(&a->ws, c, arg);
        sc_linktest_usage(stderr);
        return 2;
    }
    return 0;
}

/* Parses argv into the app; 0, or the exit status (-1: --help printed). */
int sc_linktest_parse_options(struct app *a, struct cli_paths *p, int argc, char **argv)
{
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (c == O_HELP) {
            sc_linktest_usage(stdout);
            return -1;
        }
        uint64_t v = 0;
        if (numeric_option(c) && !parse_u64(optarg, &v)) {
            fprintf(stderr, "secirc link-test: '%s' is not a number\n", optarg);
            return 2;
        }
        int rc = apply_option(a, p, c, optarg, v);
        if (rc)
            return rc;
    }
    if (optind != argc || !p->key_path || (!a->listen_mode && (!a->host || !a->port))) {
        sc_linktest_usage(stderr);
        return 2;
    }
    if (p->expect) {
        if (sc_relay_id_from_hex(p->expect, a->lc.expected_id) != 0) {
            fprintf(stderr, "secirc link-test: --expect needs a 64-hex-digit relay ID\n");
            return 2;
        }
        a->lc.has_expected_id = true;
    }
    if (a->socks5.on && a->ws.use_proxy) {
        fprintf(stderr, "secirc link-test: --socks5 and --http-proxy exclude each other\n");
        return 2;
    }
    char idhex[SC_RELAY_ID_HEX_LEN + 1]; /* the isolation key: the relay ID, canonical */
    if (a->lc.has_expected_id)
        sc_relay_id_to_hex(a->lc.expected_id, idhex);
    return sc_linktest_socks5_setup(&a->socks5, a->listen_mode, a->host, a->port,
                                    a->lc.has_expected_id ? idhex : NULL, &a->socks5.layer);
}
