/* fuzz/fuzz_ws_frame.c — libFuzzer target for the WebSocket frame decoder
 * (transport/ws_frame.h: wslay's event API with our checks on top).
 *
 * The first byte picks the side (bit 0: server, which wants masked frames,
 * or client), a read limit (bit 1) and where the rest is cut into pieces
 * (bits 2-7). The rest goes to one connection whole and to another piece
 * by piece. Properties, each a __builtin_trap() when broken:
 *   - results are only the documented ones, and after anything but OPEN
 *     every later read gives the same result and takes all its input;
 *   - payload out never exceeds the bytes in; what the protocol answers
 *     (pongs, one close) stays within three times the input (a client's
 *     masked pong to an empty ping) plus one close;
 *   - fed whole or in pieces, the payload, the result and the close codes
 *     are the same (but for wslay's chunked check of a close reason's
 *     UTF-8, see below);
 *   - an error always has our close frame with its code (1002, 1003, 1007,
 *     1009; 1011 only out of memory) and a reason. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "transport/ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

static bool result_ok(int r)
{
    return r == SC_WS_READ_OPEN || r == SC_WS_READ_CLOSED || r == SC_EFORMAT ||
           r == SC_EVERSION || r == SC_ETOOBIG || r == SC_ENOMEM;
}

struct run {
    struct sc_ws_conn *c;
    struct evbuffer *wire, *payload, *out;
    int result;
};

static void run_init(struct run *r, enum sc_role role)
{
    r->wire = evbuffer_new();
    r->payload = evbuffer_new();
    r->out = evbuffer_new();
    r->result = SC_WS_READ_OPEN;
    if (!r->wire || !r->payload || !r->out || sc_ws_conn_new(role, 2048, &r->c) != 0)
        abort();
}

static void run_feed(struct run *r, const uint8_t *p, size_t n, ssize_t limit)
{
    evbuffer_add(r->wire, p, n);
    /* with a limit, keep reading until all is taken, as a filter would */
    for (int guard = 0; guard < 100000; guard++) {
        int res = sc_ws_conn_read(r->c, r->wire, r->payload, limit, r->out);
        check(result_ok(res));
        if (r->result != SC_WS_READ_OPEN)
            check(res == r->result && evbuffer_get_length(r->wire) == 0);
        r->result = res;
        if (res != SC_WS_READ_OPEN || evbuffer_get_length(r->wire) == 0)
            return;
    }
    check(0); /* no progress */
}

static void run_free(struct run *r)
{
    sc_ws_conn_free(r->c);
    evbuffer_free(r->wire);
    evbuffer_free(r->payload);
    evbuffer_free(r->out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    enum sc_role role = (sel & 1) ? SC_ROLE_SERVER : SC_ROLE_CLIENT;
    ssize_t limit = (sel & 2) ? 100 : -1;
    size_t piece = 1 + (size_t)(sel >> 2);
    /* an exact-size copy, so any read past the input is caught */
    size_t n = size - 1;
    uint8_t *in = malloc(n ? n : 1);
    if (!in)
        return 0;
    memcpy(in, data + 1, n);

    struct run whole, pieces;
    run_init(&whole, role);
    run_init(&pieces, role);
    run_feed(&whole, in, n, -1);
    for (size_t off = 0; off < n; off += piece)
        run_feed(&pieces, in + off, n - off < piece ? n - off : piece, limit);
    run_feed(&pieces, NULL, 0, limit); /* once more with nothing new */

    size_t got = evbuffer_get_length(whole.payload);
    check(got <= n);
    check(got == evbuffer_get_length(pieces.payload));
    if (got)
        check(memcmp(evbuffer_pullup(whole.payload, -1), evbuffer_pullup(pieces.payload, -1),
                     got) == 0);
    /* answers (pongs, our close) are bounded: a client masks its pong, so an
     * empty ping (2 bytes) costs at most 6 bytes out */
    check(evbuffer_get_length(whole.out) <= 3 * n + 16);

    struct sc_ws_conn_info a, b;
    sc_ws_conn_get_info(whole.c, &a);
    sc_ws_conn_get_info(pieces.c, &b);
    bool same = whole.result == pieces.result && a.close_sent == b.close_sent &&
                a.close_received == b.close_received;
    if (!same) {
        check(a.close_sent == 1007 || b.close_sent == 1007);
        /* wslay checks the UTF-8 of a close frame's reason per chunk,
         * skipping each chunk's first two bytes (not only the status
         * code's), so a bad reason may be caught (1007) in one delivery and
         * missed in the other (which then goes on, ends with the peer's
         * close, or refuses a bad status code): that, and only that, may
         * differ. */
        check(whole.result == SC_EFORMAT || pieces.result == SC_EFORMAT);
        check(whole.result == SC_EFORMAT || whole.result == SC_WS_READ_OPEN ||
              whole.result == SC_WS_READ_CLOSED);
        check(pieces.result == SC_EFORMAT || pieces.result == SC_WS_READ_OPEN ||
              pieces.result == SC_WS_READ_CLOSED);
    }
    if (whole.result < 0) {
        check(a.why && a.why[0]);
        check(a.close_sent == 1002 || a.close_sent == 1003 || a.close_sent == 1007 ||
              a.close_sent == 1009 || (whole.result == SC_ENOMEM && a.close_sent == 1011));
    }
    if (whole.result == SC_WS_READ_CLOSED)
        check(a.close_received != 0);
    /* after the end nothing more is taken */
    int ended = whole.result;
    run_feed(&whole, in, n, -1);
    check(ended == SC_WS_READ_OPEN || evbuffer_get_length(whole.payload) == got);

    run_free(&whole);
    run_free(&pieces);
    free(in);
    return 0;
}
