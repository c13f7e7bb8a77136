/* cmd/secirc_ctl_print.c — human-readable output of the control commands:
 * the status block, the peers table, one line per watched event. Reads the
 * daemon's JSON only; strings from it are printed with control characters
 * replaced, and message bodies as ASCII JSON, so nothing a peer sends can
 * drive the terminal. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/secirc_ctl.h"

/* Relay IDs in tables and event lines: their first 16 hex digits. */
#define SHORT_ID_LEN 16
/* One table cell or address: a host name (at most 255 bytes) and a port fit. */
#define CELL_BYTES 320

/* ---- cells ----------------------------------------------------------------------------- */

/* A string from the daemon, made safe for a terminal: every byte outside
 * printable ASCII becomes '?'; "-" when not a string. */
static void text_of(json_t *v, char *out, size_t outlen)
{
    const char *s = json_string_value(v);
    if (s == NULL)
        s = "-";
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < outlen; i++)
        out[i] = ((unsigned char)s[i] < 0x20u || (unsigned char)s[i] > 0x7eu) ? '?' : s[i];
    out[i] = '\0';
}

/* An integer (or real) field as text; "-" when missing. */
static void num_of(json_t *v, char *out, size_t outlen)
{
    if (json_is_integer(v))
        snprintf(out, outlen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, outlen, "%g", json_real_value(v));
    else
        snprintf(out, outlen, "-");
}

static void short_id(json_t *v, char *out, size_t outlen)
{
    char full[80];
    text_of(v, full, sizeof full);
    snprintf(out, outlen, "%.*s", SHORT_ID_LEN, full);
}

/* 3725 -> "1h 2m 5s"; 90061 -> "1d 1h 1m". */
static void duration(uint64_t s, char *out, size_t outlen)
{
    uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
    if (d > 0)
        snprintf(out, outlen, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "m", d, h, m);
    else if (h > 0)
        snprintf(out, outlen, "%" PRIu64 "h %" PRIu64 "m %" PRIu64 "s", h, m, sec);
    else if (m > 0)
        snprintf(out, outlen, "%" PRIu64 "m %" PRIu64 "s", m, sec);
    else
        snprintf(out, outlen, "%" PRIu64 "s", sec);
}

/* How long ago a unix time was, coarsely: "4s ago", "3m ago", "2h ago",
 * "5d ago"; "never" for null/0. */
static void age(json_t *v, uint64_t now, char *out, size_t outlen)
{
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        snprintf(out, outlen, "never");
        return;
    }
    uint64_t t = (uint64_t)json_integer_value(v);
    uint64_t s = now > t ? now - t : 0;
    if (s < 60)
        snprintf(out, outlen, "%" PRIu64 "s ago", s);
    else if (s < 3600)
        snprintf(out, outlen, "%" PRIu64 "m ago", s / 60);
    else if (s < 86400)
        snprintf(out, outlen, "%" PRIu64 "h ago", s / 3600);
    else
        snprintf(out, outlen, "%" PRIu64 "d ago", s / 86400);
}

/* host:port, [v6]:port, or the host alone when the port is 0 or unknown. */
static void address(json_t *host, json_t *port, char out[CELL_BYTES])
{
    const size_t outlen = CELL_BYTES;
    char h[264];
    text_of(host, h, sizeof h);
    json_int_t p = json_integer_value(port);
    if (strcmp(h, "-") == 0 || p <= 0)
        snprintf(out, outlen, "%s", h);
    else if (strchr(h, ':') != NULL)
        snprintf(out, outlen, "[%s]:%" JSON_INTEGER_FORMAT, h, p);
    else
        snprintf(out, outlen, "%s:%" JSON_INTEGER_FORMAT, h, p);
}

/* ---- status ---------------------------------------------------------------------------- */

void sc_ctl_print_status(FILE *out, json_t *st)
{
    char a[CELL_BYTES], b[32], c[32], d[32];
    json_t *stats = json_object_get(st, "stats");

    text_of(json_object_get(st, "relay_id"), a, sizeof a);
    fprintf(out, "relay id:     %s\n", a);
    json_t *up = json_object_get(st, "uptime_s");
    if (json_is_integer(up) && json_integer_value(up) >= 0)
        duration((uint64_t)json_integer_value(up), a, sizeof a);
    else
        snprintf(a, sizeof a, "-");
    fprintf(out, "uptime:       %s\n", a);

    num_of(json_object_get(st, "connected_peers"), b, sizeof b);
    num_of(json_object_get(st, "min_connections"), c, sizeof c);
    num_of(json_object_get(st, "max_connections"), d, sizeof d);
    fprintf(out, "peers:        %s connected (min %s, max %s)\n", b, c, d);
    num_of(json_object_get(st, "total_connections"), b, sizeof b);
    num_of(json_object_get(st, "active_connections"), c, sizeof c);
    num_of(json_object_get(st, "failed_connections"), d, sizeof d);
    fprintf(out, "paths:        %s total, %s authenticated, %s failed\n", b, c, d);

    fprintf(out, "listen:       ");
    json_t *listen = json_object_get(st, "listen");
    size_t i;
    json_t *l;
    if (json_array_size(listen) == 0)
        fprintf(out, "none");
    json_array_foreach(listen, i, l) {
        text_of(json_object_get(l, "type"), b, sizeof b);
        address(json_object_get(l, "address"), json_object_get(l, "port"), a);
        fprintf(out, "%s%s %s", i > 0 ? ", " : "", b, a);
    }
    fprintf(out, "\n");
    json_t *tor = json_object_get(st, "tor");
    text_of(json_object_get(tor, "state"), b, sizeof b);
    if (json_is_object(tor) && strcmp(b, "off") != 0) {
        text_of(json_object_get(tor, "onion_address"), a, sizeof a);
        fprintf(out, "onion:        %s%s%s\n", b, strcmp(a, "-") ? " " : "", strcmp(a, "-") ? a : "");
    }

    num_of(json_object_get(stats, "total_messages_sent"), b, sizeof b);
    num_of(json_object_get(stats, "total_messages_received"), c, sizeof c);
    num_of(json_object_get(stats, "messages_undelivered"), d, sizeof d);
    fprintf(out, "messages:     %s sent, %s received, %s undelivered\n", b, c, d);
    num_of(json_object_get(stats, "total_bytes_sent"), b, sizeof b);
    num_of(json_object_get(stats, "total_bytes_received"), c, sizeof c);
    fprintf(out, "bytes:        %s sent, %s received\n", b, c);
    num_of(json_object_get(stats, "messages_forwarded"), b, sizeof b);
    num_of(json_object_get(stats, "messages_deduplicated"), c, sizeof c);
    fprintf(out, "mesh:         %s forwarded, %s deduplicated\n", b, c);
    num_of(json_object_get(stats, "evictions"), b, sizeof b);
    num_of(json_object_get(stats, "duplicates_closed"), c, sizeof c);
    fprintf(out, "links:        %s evicted, %s duplicates closed\n", b, c);
    num_of(json_object_get(stats, "rekeys"), b, sizeof b);
    num_of(json_object_get(stats, "key_rotations"), c, sizeof c);
    fprintf(out, "keys:         %s rekeys, %s link key rotations\n", b, c);
}

/* ---- peers ----------------------------------------------------------------------------- */

enum { COL_ID, COL_TYPE, COL_ADDR, COL_STATE, COL_DIR, COL_LATENCY, COL_SEEN, COL_PRIO, NCOL };

static const char *const headers[NCOL] = {"RELAY", "TYPE", "ADDRESS", "STATE", "DIRECTION",
                                          "LATENCY", "LAST SEEN", "PRIORITY"};

static void peer_row(json_t *p, uint64_t now, char (*cell)[CELL_BYTES])
{
    if (json_is_string(json_object_get(p, "relay_id")))
        short_id(json_object_get(p, "relay_id"), cell[COL_ID], CELL_BYTES);
    else
        snprintf(cell[COL_ID], CELL_BYTES, "(unknown)");
    text_of(json_object_get(p, "type"), cell[COL_TYPE], CELL_BYTES);
    if (json_is_true(json_object_get(p, "tls")))
        snprintf(cell[COL_TYPE] + strlen(cell[COL_TYPE]), CELL_BYTES - strlen(cell[COL_TYPE]), "+tls");
    address(json_object_get(p, "host"), json_object_get(p, "port"), cell[COL_ADDR]);
    text_of(json_object_get(p, "state"), cell[COL_STATE], CELL_BYTES);
    text_of(json_object_get(p, "direction"), cell[COL_DIR], CELL_BYTES);
    json_t *lat = json_object_get(p, "latency_ms");
    if (json_is_number(lat) && json_number_value(lat) > 0)
        snprintf(cell[COL_LATENCY], CELL_BYTES, "%.2f ms", json_number_value(lat));
    else
        snprintf(cell[COL_LATENCY], CELL_BYTES, "-");
    age(json_object_get(p, "last_seen"), now, cell[COL_SEEN], CELL_BYTES);
    num_of(json_object_get(p, "priority"), cell[COL_PRIO], CELL_BYTES);
}

/* Columns padded to their width, two spaces apart; the last one unpadded. */
static void print_row(FILE *out, const char *const *row, const size_t *width)
{
    for (int c = 0; c + 1 < NCOL; c++)
        fprintf(out, "%-*s  ", (int)width[c], row[c]);
    fprintf(out, "%s\n", row[NCOL - 1]);
}

void sc_ctl_print_peers(FILE *out, json_t *peers, uint64_t now_unix)
{
    size_t n = json_array_size(peers);
    if (n == 0) {
        fprintf(out, "no paths\n");
        return;
    }
    char(*cells)[NCOL][CELL_BYTES] = calloc(n, sizeof *cells);
    if (cells == NULL) {
        fprintf(stderr, "secirc peers: out of memory\n");
        return;
    }
    size_t width[NCOL];
    for (int c = 0; c < NCOL; c++)
        width[c] = strlen(headers[c]);
    for (size_t r = 0; r < n; r++) {
        peer_row(json_array_get(peers, r), now_unix, cells[r]);
        for (int c = 0; c < NCOL; c++)
            if (strlen(cells[r][c]) > width[c])
                width[c] = strlen(cells[r][c]);
    }
    print_row(out, headers, width);
    for (size_t r = 0; r < n; r++) {
        const char *row[NCOL];
        for (int c = 0; c < NCOL; c++)
            row[c] = cells[r][c];
        print_row(out, row, width);
    }
    free(cells);
}

/* ---- events ---------------------------------------------------------------------------- */

/* Compact JSON with every non-ASCII character escaped. */
static void print_ascii_json(FILE *out, json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    fprintf(out, "%s", text != NULL ? text : "(out of memory)");
    free(text);
}

void sc_ctl_print_event(FILE *out, json_t *ev, time_t now)
{
    char when[16] = "--:--:--", a[80], b[80], c[80], d[80];
    struct tm tm;
    if (localtime_r(&now, &tm) != NULL)
        strftime(when, sizeof when, "%H:%M:%S", &tm);
    const char *kind = json_string_value(json_object_get(ev, "event"));
    if (kind == NULL)
        kind = "";
    if (strcmp(kind, "message") == 0) {
        short_id(json_object_get(ev, "from"), a, sizeof a);
        text_of(json_object_get(ev, "id"), b, sizeof b);
        num_of(json_object_get(ev, "hop_limit"), c, sizeof c);
        bool bcast = json_is_true(json_object_get(ev, "broadcast"));
        fprintf(out, "%s message from %s id=%s %shop_limit=%s: ", when, a, b,
                bcast ? "broadcast " : "", c);
        print_ascii_json(out, json_object_get(ev, "body"));
        fprintf(out, "\n");
    } else if (strcmp(kind, "path") == 0) {
        num_of(json_object_get(ev, "path_id"), a, sizeof a);
        if (json_is_string(json_object_get(ev, "relay_id")))
            short_id(json_object_get(ev, "relay_id"), b, sizeof b);
        else
            snprintf(b, sizeof b, "(unknown)");
        text_of(json_object_get(ev, "type"), c, sizeof c);
        fprintf(out, "%s path %s %s %s: ", when, a, b, c);
        text_of(json_object_get(ev, "old_state"), a, sizeof a);
        text_of(json_object_get(ev, "state"), b, sizeof b);
        text_of(json_object_get(ev, "reason"), d, sizeof d);
        fprintf(out, "%s -> %s", a, b);
        if (strcmp(d, "-") != 0 && strcmp(d, "none") != 0)
            fprintf(out, " (%s)", d);
        fprintf(out, "\n");
    } else if (strcmp(kind, "onion") == 0) {
        bool up = json_is_true(json_object_get(ev, "published"));
        text_of(json_object_get(ev, up ? "address" : "reason"), a, sizeof a);
        fprintf(out, "%s onion service %s: %s\n", when, up ? "published" : "unavailable", a);
    } else if (strcmp(kind, "undelivered") == 0) {
        short_id(json_object_get(ev, "to"), a, sizeof a);
        text_of(json_object_get(ev, "id"), b, sizeof b);
        text_of(json_object_get(ev, "reason"), c, sizeof c);
        fprintf(out, "%s undelivered to %s id=%s: %s\n", when, a, b, c);
    } else {
        fprintf(out, "%s ", when);
        print_ascii_json(out, ev);
        fprintf(out, "\n");
    }
}
