/* cmd/secirc_selftest.c — `secirc selftest handshake`: a complete link
 * handshake between two in-memory parties with fresh identities and
 * link-key certificates, then one message each way through the transport
 * ciphers. Prints both handshake hashes; exits 0 only when they match. */
#include <stdio.h>
#include <string.h>

#include "cmd/cli.h"
#include "link/handshake.h"
#include "util/hex.h"
#include "util/time.h"

struct party {
    const char *name;
    struct sc_identity *id;
    struct sc_link_key *key;
    struct sc_handshake hs;
    struct sc_noise_cipher send, recv;
    uint8_t hash[SC_NOISE_HASH_BYTES];
};

static int setup(struct party *p, const char *name, bool initiator, const uint8_t *expect)
{
    p->name = name;
    if (sc_identity_generate(&p->id) != 0 ||
        sc_link_key_generate(p->id, sc_unix_s() + SC_LINK_KEY_ROTATION_S_DEFAULT, &p->key) != 0)
        return -1;
    struct sc_hs_config c = {.initiator = initiator, .identity = p->id, .link_key = p->key,
                             .max_message_bytes = SC_MESSAGE_PAYLOAD_MAX_BYTES};
    if (expect) {
        c.has_expected_id = true;
        memcpy(c.expected_id, expect, SC_RELAY_ID_BYTES);
    }
    return sc_hs_init(&p->hs, &c);
}

static void teardown(struct party *p)
{
    sc_hs_clear(&p->hs);
    sc_noise_cipher_clear(&p->send);
    sc_noise_cipher_clear(&p->recv);
    sc_link_key_free(p->key);
    sc_identity_free(p->id);
}

/* One message from a to b through the transport ciphers. */
static bool carry(struct party *a, struct party *b, const char *text)
{
    uint8_t ct[128], pt[128];
    size_t n, m;
    return sc_noise_encrypt(&a->send, NULL, 0, (const uint8_t *)text, strlen(text), ct, sizeof ct,
                            &n) == 0 &&
           sc_noise_decrypt(&b->recv, NULL, 0, ct, n, pt, sizeof pt, &m) == 0 &&
           m == strlen(text) && memcmp(pt, text, m) == 0;
}

static int handshake(bool verbose)
{
    struct party r = {0}, i = {0};
    int status = 1;
    uint8_t m1[SC_HS_MSG1_BYTES], m2[SC_HS_MSG2_BYTES], m3[SC_HS_MSG3_BYTES];
    uint64_t now = sc_unix_s();
    if (setup(&r, "responder", false, NULL) != 0 ||
        setup(&i, "initiator", true, sc_identity_relay_id(r.id)) != 0) {
        fprintf(stderr, "secirc selftest: setup failed\n");
        goto out;
    }
    if (sc_hs_write_msg1(&i.hs, m1) || sc_hs_read_msg1(&r.hs, m1) ||
        sc_hs_write_msg2(&r.hs, m2) || sc_hs_read_msg2(&i.hs, m2, now) ||
        sc_hs_write_msg3(&i.hs, m3) || sc_hs_read_msg3(&r.hs, m3, now)) {
        fprintf(stderr, "secirc selftest: handshake failed: initiator %s, responder %s\n",
                sc_reason_name(i.hs.reason), sc_reason_name(r.hs.reason));
        goto out;
    }
    bool ids = memcmp(i.hs.peer_id, sc_identity_relay_id(r.id), SC_RELAY_ID_BYTES) == 0 &&
               memcmp(r.hs.peer_id, sc_identity_relay_id(i.id), SC_RELAY_ID_BYTES) == 0;
    if (sc_hs_finish(&i.hs, &i.send, &i.recv, i.hash) || sc_hs_finish(&r.hs, &r.send, &r.recv, r.hash)) {
        fprintf(stderr, "secirc selftest: split failed\n");
        goto out;
    }
    bool carried = carry(&i, &r, "ping from initiator") && carry(&r, &i, "pong from responder");
    char hex[2 * SC_NOISE_HASH_BYTES + 1], idhex[SC_RELAY_ID_HEX_LEN + 1];
    if (verbose) {
        printf("protocol  %s, prologue \"%s\"\n", SC_HS_PROTOCOL_NAME, SC_HS_PROLOGUE);
        sc_relay_id_to_hex(sc_identity_relay_id(i.id), idhex);
        printf("initiator relay id %s\n", idhex);
        sc_relay_id_to_hex(sc_identity_relay_id(r.id), idhex);
        printf("responder relay id %s\n", idhex);
        printf("messages  %u + %u + %u bytes\n", SC_HS_MSG1_BYTES, SC_HS_MSG2_BYTES, SC_HS_MSG3_BYTES);
    }
    sc_hex_encode(i.hash, sizeof i.hash, hex);
    printf("initiator handshake hash %s\n", hex);
    sc_hex_encode(r.hash, sizeof r.hash, hex);
    printf("responder handshake hash %s\n", hex);
    bool same = memcmp(i.hash, r.hash, sizeof i.hash) == 0;
    printf("identities %s, hashes %s, transport %s\n", ids ? "verified" : "WRONG",
           same ? "match" : "DIFFER", carried ? "ok" : "FAILED");
    status = ids && same && carried ? 0 : 1;
out:
    teardown(&i);
    teardown(&r);
    return status;
}

int sc_cli_selftest(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "handshake") == 0)
        return handshake(true);
    bool help = argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
    fprintf(help ? stdout : stderr,
            "usage: secirc selftest handshake\n"
            "Runs a complete link handshake between two in-memory parties with fresh\n"
            "identities and link-key certificates; prints both handshake hashes.\n");
    return help ? 0 : 2;
}
