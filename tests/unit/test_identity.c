/* tests/unit/test_identity.c — relay identity, key files, relay IDs in hex,
 * link keys and link-key certificates (crypto/identity.c).
 * Works only inside its own mkdtemp() directory, which it removes; never
 * touches the user's files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "secirc/identity.h"

/* RFC 8032, section 7.1, TEST 1. */
static const char rfc8032_seed_hex[] =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char rfc8032_pub_hex[] =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
static const char rfc8032_sig_hex[] =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

static char tmpdir[64];

/* ---- helpers ----------------------------------------------------------------- */

static void unhex(const char *hex, uint8_t *out, size_t len)
{
    size_t got = 0;
    assert_int_equal(sodium_hex2bin(out, len, hex, strlen(hex), NULL, &got, NULL), 0);
    assert_int_equal(got, len);
}

static void path_in(char *out, size_t outlen, const char *name)
{
    int n = snprintf(out, outlen, "%s/%s", tmpdir, name);
    assert_true(n > 0 && (size_t)n < outlen);
}

static void write_file(const char *path, const uint8_t *buf, size_t len, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, mode), 0);
    if (len > 0)
        assert_int_equal(write(fd, buf, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, cap);
    assert_true(n >= 0);
    assert_int_equal(close(fd), 0);
    return (size_t)n;
}

static void recompute_checksum(uint8_t img[SC_KEYFILE_BYTES])
{
    assert_int_equal(crypto_generichash(img + 76, 16, img, 76, NULL, 0), 0);
}

/* The key file image of the RFC 8032 test key, built here from the layout in
 * docs/PROTOCOL.md (independently of identity.c). */
static void rfc8032_image(uint8_t img[SC_KEYFILE_BYTES])
{
    memset(img, 0, SC_KEYFILE_BYTES);
    memcpy(img, "SCIRCKEY", 8);
    img[8] = 1;
    img[9] = 1;
    unhex(rfc8032_seed_hex, img + 12, 32);
    unhex(rfc8032_pub_hex, img + 44, 32);
    recompute_checksum(img);
}

static void expect_parse_fails(const uint8_t *img, size_t len, int want, const char *why_part)
{
    struct sc_identity *id = (struct sc_identity *)&id; /* poison: must become NULL */
    char why[256] = "";
    int rc = sc_identity_parse(img, len, &id, why, sizeof why);
    if (want != 0)
        assert_int_equal(rc, want);
    else
        assert_true(rc < 0);
    assert_null(id);
    if (why_part != NULL && strstr(why, why_part) == NULL)
        fail_msg("why '%s' does not mention '%s'", why, why_part);
}

static void expect_load_fails(const char *path, int want, const char *why_part)
{
    struct sc_identity *id = NULL;
    char why[512] = "";
    int rc = sc_identity_load(path, &id, why, sizeof why);
    assert_int_equal(rc, want);
    assert_null(id);
    if (why_part != NULL && strstr(why, why_part) == NULL)
        fail_msg("why '%s' does not mention '%s'", why, why_part);
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/secirc-test-identity-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[sizeof tmpdir + sizeof e->d_name + 1];
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    closedir(d);
    return rmdir(tmpdir);
}

/* ---- identity ----------------------------------------------------------------- */

static void test_from_seed_rfc8032(void **state)
{
    (void)state;
    uint8_t seed[32], pub[32], sig_want[64], sig[64];
    unhex(rfc8032_seed_hex, seed, 32);
    unhex(rfc8032_pub_hex, pub, 32);
    unhex(rfc8032_sig_hex, sig_want, 64);
    struct sc_identity *id = NULL;
    assert_int_equal(sc_identity_from_seed(seed, &id), 0);
    assert_non_null(id);
    assert_memory_equal(sc_identity_relay_id(id), pub, 32);
    assert_int_equal(sc_identity_sign(id, NULL, 0, sig), 0); /* empty message */
    assert_memory_equal(sig, sig_want, 64);
    char hex[SC_RELAY_ID_HEX_LEN + 1];
    sc_relay_id_to_hex(sc_identity_relay_id(id), hex);
    assert_string_equal(hex, rfc8032_pub_hex);
    sc_identity_free(id);
}

static void test_generate_distinct_and_signs(void **state)
{
    (void)state;
    struct sc_identity *a = NULL, *b = NULL;
    assert_int_equal(sc_identity_generate(&a), 0);
    assert_int_equal(sc_identity_generate(&b), 0);
    assert_memory_not_equal(sc_identity_relay_id(a), sc_identity_relay_id(b), 32);
    static const uint8_t msg[] = "relay hello";
    uint8_t sig[64];
    assert_int_equal(sc_identity_sign(a, msg, sizeof msg, sig), 0);
    assert_int_equal(crypto_sign_verify_detached(sig, msg, sizeof msg, sc_identity_relay_id(a)), 0);
    assert_int_not_equal(crypto_sign_verify_detached(sig, msg, sizeof msg, sc_identity_relay_id(b)),
                         0);
    assert_int_equal(sc_identity_sign(NULL, msg, sizeof msg, sig), SC_EINVAL);
    assert_int_equal(sc_identity_sign(a, NULL, 3, sig), SC_EINVAL);
    assert_int_equal(sc_identity_sign(a, msg, sizeof msg, NULL), SC_EINVAL);
    sc_identity_free(a);
    sc_identity_free(b);
    sc_identity_free(NULL);
}

static void test_save_load_roundtrip(void **state)
{
    (void)state;
    char path[256];
    path_in(path, sizeof path, "roundtrip.key");
    struct sc_identity *a = NULL, *b = NULL;
    assert_int_equal(sc_identity_generate(&a), 0);
    assert_int_equal(sc_identity_save(a, path), 0);
    char why[256] = "";
    assert_int_equal(sc_identity_load(path, &b, why, sizeof why), 0);
    assert_non_null(b);
    assert_memory_equal(sc_identity_relay_id(a), sc_identity_relay_id(b), 32);
    /* Ed25519 is deterministic: the same secret gives the same signature. */
    static const uint8_t msg[] = "round trip";
    uint8_t sa[64], sb[64];
    assert_int_equal(sc_identity_sign(a, msg, sizeof msg, sa), 0);
    assert_int_equal(sc_identity_sign(b, msg, sizeof msg, sb), 0);
    assert_memory_equal(sa, sb, 64);
    assert_int_equal(crypto_sign_verify_detached(sb, msg, sizeof msg, sc_identity_relay_id(a)), 0);
    /* why may be NULL */
    sc_identity_free(b);
    b = NULL;
    assert_int_equal(sc_identity_load(path, &b, NULL, 0), 0);
    sc_identity_free(b);
    sc_identity_free(a);
}

static void test_saved_file_layout(void **state)
{
    (void)state;
    char path[256];
    path_in(path, sizeof path, "layout.key");
    uint8_t seed[32], want[SC_KEYFILE_BYTES], got[SC_KEYFILE_BYTES + 8];
    unhex(rfc8032_seed_hex, seed, 32);
    rfc8032_image(want);
    struct sc_identity *id = NULL;
    assert_int_equal(sc_identity_from_seed(seed, &id), 0);
    assert_int_equal(sc_identity_save(id, path), 0);
    sc_identity_free(id);
    assert_int_equal(read_file(path, got, sizeof got), SC_KEYFILE_BYTES);
    assert_memory_equal(got, want, SC_KEYFILE_BYTES);
    /* and the independently built image parses to the same relay ID */
    id = NULL;
    assert_int_equal(sc_identity_parse(want, sizeof want, &id, NULL, 0), 0);
    assert_memory_equal(sc_identity_relay_id(id), want + 44, 32);
    sc_identity_free(id);
}

static void test_save_refuses_existing(void **state)
{
    (void)state;
    char path[256], target[256], link[256];
    path_in(path, sizeof path, "exists.key");
    path_in(target, sizeof target, "symlink-target");
    path_in(link, sizeof link, "symlink.key");
    struct sc_identity *id = NULL;
    assert_int_equal(sc_identity_generate(&id), 0);

    static const uint8_t other[] = "someone else's file";
    write_file(path, other, sizeof other, 0600);
    assert_int_equal(sc_identity_save(id, path), SC_EEXIST);
    uint8_t back[64];
    assert_int_equal(read_file(path, back, sizeof back), sizeof other);
    assert_memory_equal(back, other, sizeof other);

    /* a second save of a fresh path fails the second time */
    unlink(path);
    assert_int_equal(sc_identity_save(id, path), 0);
    assert_int_equal(sc_identity_save(id, path), SC_EEXIST);

    /* a dangling symlink is not followed: its target is never created */
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(sc_identity_save(id, link), SC_EEXIST);
    struct stat st;
    assert_int_not_equal(lstat(target, &st), 0);

    char missing[256];
    path_in(missing, sizeof missing, "no-such-dir/k.key");
    assert_int_equal(sc_identity_save(id, missing), SC_ENOENT);
    assert_int_equal(sc_identity_save(id, ""), SC_EINVAL);
    assert_int_equal(sc_identity_save(NULL, path), SC_EINVAL);
    sc_identity_free(id);
}

static void test_save_mode_0600_with_umask_0(void **state)
{
    (void)state;
    char path[256];
    path_in(path, sizeof path, "umask0.key");
    struct sc_identity *id = NULL;
    assert_int_equal(sc_identity_generate(&id), 0);
    mode_t old = umask(0);
    int rc = sc_identity_save(id, path);
    umask(old);
    assert_int_equal(rc, 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, SC_KEYFILE_BYTES);
    sc_identity_free(id);
}

/* ---- loading: permissions and file types ---------------------------------------- */

static void test_load_refuses_group_other_modes(void **state)
{
    (void)state;
    static const mode_t bad[] = {0644, 0640, 0604, 0660, 0606, 0610, 0601, 0620, 0602, 0777};
    uint8_t img[SC_KEYFILE_BYTES];
    rfc8032_image(img);
    char path[256];
    path_in(path, sizeof path, "mode.key");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, img, sizeof img, bad[i]);
        char mode_text[32], hint[300];
        snprintf(mode_text, sizeof mode_text, "(mode %04o)", (unsigned)bad[i]);
        snprintf(hint, sizeof hint, "chmod 600 %s", path);
        expect_load_fails(path, SC_EPERM, mode_text);
        expect_load_fails(path, SC_EPERM, hint);
        expect_load_fails(path, SC_EPERM, "group/others");
    }
    /* owner-only modes are fine */
    static const mode_t good[] = {0600, 0400, 0700};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        write_file(path, img, sizeof img, good[i]);
        struct sc_identity *id = NULL;
        assert_int_equal(sc_identity_load(path, &id, NULL, 0), 0);
        sc_identity_free(id);
    }
}

/* A key file owned by another user is refused, like ssh does, naming both
 * users; changing the owner needs root (CI runs as root), so otherwise the
 * test says it is skipped. */
static void test_load_refuses_other_owner(void **state)
{
    (void)state;
    uint8_t img[SC_KEYFILE_BYTES];
    rfc8032_image(img);
    char path[256];
    path_in(path, sizeof path, "owner.key");
    write_file(path, img, sizeof img, 0600);
    if (geteuid() != 0) {
        skip();
        return;
    }
    assert_int_equal(chown(path, 65534, 65534), 0); /* nobody */
    expect_load_fails(path, SC_EPERM, "is owned by user nobody (uid 65534)");
    expect_load_fails(path, SC_EPERM, "not by root (uid 0)");
    char hint[300];
    snprintf(hint, sizeof hint, "run: chown root %s", path);
    expect_load_fails(path, SC_EPERM, hint);
    assert_int_equal(chown(path, 0, 0), 0);
    struct sc_identity *id = NULL;
    assert_int_equal(sc_identity_load(path, &id, NULL, 0), 0);
    sc_identity_free(id);
}

static void test_load_refuses_non_regular(void **state)
{
    (void)state;
    uint8_t img[SC_KEYFILE_BYTES];
    rfc8032_image(img);
    char real[256], link[256], dir[256], fifo[256], missing[256];
    path_in(real, sizeof real, "real.key");
    path_in(link, sizeof link, "link.key");
    path_in(dir, sizeof dir, "dir.key");
    path_in(fifo, sizeof fifo, "fifo.key");
    path_in(missing, sizeof missing, "missing.key");
    write_file(real, img, sizeof img, 0600);

    assert_int_equal(symlink(real, link), 0);
    expect_load_fails(link, SC_EPERM, "symbolic link");
    assert_int_equal(mkdir(dir, 0700), 0);
    expect_load_fails(dir, SC_EFORMAT, "not a regular file");
    /* a FIFO must be refused at once, not block waiting for a writer */
    assert_int_equal(mkfifo(fifo, 0600), 0);
    expect_load_fails(fifo, SC_EFORMAT, "not a regular file");
    expect_load_fails(missing, SC_ENOENT, "does not exist");
    expect_load_fails("", SC_EINVAL, NULL);
    assert_int_equal(sc_identity_load(real, NULL, NULL, 0), SC_EINVAL);
}

/* ---- key file format -------------------------------------------------------------- */

static void test_truncated_every_length(void **state)
{
    (void)state;
    uint8_t img[SC_KEYFILE_BYTES];
    rfc8032_image(img);
    char path[256];
    path_in(path, sizeof path, "short.key");
    for (size_t len = 0; len < SC_KEYFILE_BYTES; len++) {
        char text[64];
        snprintf(text, sizeof text, "truncated (%zu of 92 bytes)", len);
        expect_parse_fails(img, len, SC_ETRUNC, text);
        write_file(path, img, len, 0600);
        expect_load_fails(path, SC_ETRUNC, text);
    }
    expect_parse_fails(NULL, 0, SC_ETRUNC, NULL);
}

static void test_too_long(void **state)
{
    (void)state;
    uint8_t big[SC_KEYFILE_BYTES + 200];
    memset(big, 0, sizeof big);
    rfc8032_image(big);
    expect_parse_fails(big, SC_KEYFILE_BYTES + 1, SC_EFORMAT, "too long");
    expect_parse_fails(big, sizeof big, SC_EFORMAT, "too long");
    char path[256];
    path_in(path, sizeof path, "long.key");
    write_file(path, big, SC_KEYFILE_BYTES + 1, 0600);
    expect_load_fails(path, SC_EFORMAT, "too long");
    write_file(path, big, sizeof big, 0600);
    expect_load_fails(path, SC_EFORMAT, "too long");
}

static void test_version(void **state)
{
    (void)state;
    uint8_t img[SC_KEYFILE_BYTES];
    rfc8032_image(img);
    img[8] = 2; /* checksum left stale: the version is named first */
    expect_parse_fails(img, sizeof img, SC_EVERSION,
                       "unsupported key file version 2 (this build reads version 1)");
    recompute_checksum(img);
    expect_parse_fails(img, sizeof img, SC_EVERSION, "version 2");
    img[8] = 0;
    recompute_checksum(img);
    expect_parse_fails(img, sizeof img, SC_EVERSION, "version 0");
    img[8] = 255;
    expect_parse_fails(img, sizeof img, SC_EVERSION, "version 255");

    char path[256];
    path_in(path, sizeof path, "v2.key");
    img[8] = 2;
    write_file(path, img, sizeof img, 0600);
    expect_load_fails(path, SC_EVERSION, "version 2");
}

static void test_bad_magic(void **state)
{
    (void)state;
    uint8_t img[SC_KEYFILE_BYTES];
    for (size_t i = 0; i < 8; i++) {
        rfc8032_image(img);
        img[i] ^= 0x20; /* e.g. "scircKEY" */
        recompute_checksum(img);
        expect_parse_fails(img, sizeof img, SC_EFORMAT, "not a secirc key file");
    }
    uint8_t text[SC_KEYFILE_BYTES];
    memset(text, 'A', sizeof text);
    expect_parse_fails(text, sizeof text, SC_EFORMAT, "not a secirc key file");
}

static void test_key_type_and_reserved(void **state)
{
    (void)state;
    uint8_t img[SC_KEYFILE_BYTES];
    rfc8032_image(img);
    img[9] = 2;
    recompute_checksum(img);
    expect_parse_fails(img, sizeof img, SC_EFORMAT, "unknown key type 2");
    img[9] = 0;
    recompute_checksum(img);
    expect_parse_fails(img, sizeof img, SC_EFORMAT, "unknown key type 0");
    for (size_t i = 10; i < 12; i++) {
        rfc8032_image(img);
        img[i] = 0x80;
        recompute_checksum(img);
        expect_parse_fails(img, sizeof img, SC_EFORMAT, "reserved");
    }
}

static void test_checksum_and_public_key(void **state)
{
    (void)state;
    uint8_t img[SC_KEYFILE_BYTES];
    rfc8032_image(img);
    img[91] ^= 1;
    expect_parse_fails(img, sizeof img, SC_EFORMAT, "checksum");

    /* another valid public key, checksum recomputed: only the pair check sees it */
    rfc8032_image(img);
    struct sc_identity *other = NULL;
    assert_int_equal(sc_identity_generate(&other), 0);
    memcpy(img + 44, sc_identity_relay_id(other), 32);
    sc_identity_free(other);
    recompute_checksum(img);
    expect_parse_fails(img, sizeof img, SC_EFORMAT, "does not match");

    /* another seed, same public key */
    rfc8032_image(img);
    img[12] ^= 0x01;
    recompute_checksum(img);
    expect_parse_fails(img, sizeof img, SC_EFORMAT, "does not match");
}

static void test_every_bit_flip_fails(void **state)
{
    (void)state;
    uint8_t img[SC_KEYFILE_BYTES];
    rfc8032_image(img);
    struct sc_identity *id = NULL;
    assert_int_equal(sc_identity_parse(img, sizeof img, &id, NULL, 0), 0);
    sc_identity_free(id);
    for (size_t bit = 0; bit < SC_KEYFILE_BYTES * 8; bit++) {
        img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        char why[256] = "";
        id = NULL;
        int rc = sc_identity_parse(img, sizeof img, &id, why, sizeof why);
        if (rc >= 0)
            fail_msg("bit %zu flipped: key file accepted", bit);
        assert_null(id);
        assert_true(why[0] != '\0');
        img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

/* ---- relay IDs in hex --------------------------------------------------------------- */

static void test_relay_id_hex(void **state)
{
    (void)state;
    uint8_t id[32], back[32];
    for (size_t i = 0; i < 32; i++)
        id[i] = (uint8_t)(i * 37 + 0xa5);
    char hex[SC_RELAY_ID_HEX_LEN + 1];
    sc_relay_id_to_hex(id, hex);
    assert_int_equal(strlen(hex), 64);
    for (size_t i = 0; i < 64; i++)
        assert_true((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
    assert_int_equal(sc_relay_id_from_hex(hex, back), 0);
    assert_memory_equal(back, id, 32);

    /* either case on input */
    char upper[65];
    for (size_t i = 0; i < 65; i++)
        upper[i] = (hex[i] >= 'a' && hex[i] <= 'f') ? (char)(hex[i] - 'a' + 'A') : hex[i];
    memset(back, 0, sizeof back);
    assert_int_equal(sc_relay_id_from_hex(upper, back), 0);
    assert_memory_equal(back, id, 32);
    uint8_t pub[32];
    unhex(rfc8032_pub_hex, pub, 32);
    assert_int_equal(
        sc_relay_id_from_hex("D75A980182B10AB7D54BFED3C964073A0ee172f3daa62325af021a68f707511a",
                             back),
        0);
    assert_memory_equal(back, pub, 32);

    /* wrong lengths and non-hex digits; `out` untouched on failure */
    uint8_t keep[32];
    memset(keep, 0x5a, sizeof keep);
    memcpy(back, keep, 32);
    char bad[80];
    memcpy(bad, hex, 65);
    bad[63] = '\0';
    assert_int_equal(sc_relay_id_from_hex(bad, back), SC_EFORMAT);
    memcpy(bad, hex, 64);
    bad[64] = '0';
    bad[65] = '\0';
    assert_int_equal(sc_relay_id_from_hex(bad, back), SC_EFORMAT);
    assert_int_equal(sc_relay_id_from_hex("", back), SC_EFORMAT);
    static const char not_hex[] = "gG \n:/@`xz-";
    for (size_t pos = 0; pos < 64; pos++) {
        for (size_t k = 0; k < sizeof not_hex - 1; k++) {
            memcpy(bad, hex, 65);
            bad[pos] = not_hex[k];
            assert_int_equal(sc_relay_id_from_hex(bad, back), SC_EFORMAT);
        }
    }
    memcpy(bad, hex, 65);
    memmove(bad + 2, bad, 65);
    bad[0] = '0';
    bad[1] = 'x';
    assert_int_equal(sc_relay_id_from_hex(bad, back), SC_EFORMAT);
    assert_memory_equal(back, keep, 32);
    assert_int_equal(sc_relay_id_from_hex(NULL, back), SC_EINVAL);
}

/* ---- link keys and certificates -------------------------------------------------------- */

static void test_link_key_and_cert(void **state)
{
    (void)state;
    struct sc_identity *id = NULL;
    assert_int_equal(sc_identity_generate(&id), 0);
    const uint64_t expiry = 2000000000u;
    struct sc_link_key *lk = NULL;
    assert_int_equal(sc_link_key_generate(id, expiry, &lk), 0);
    assert_non_null(lk);
    uint8_t pub[32];
    assert_int_equal(crypto_scalarmult_base(pub, lk->priv), 0);
    assert_memory_equal(pub, lk->pub, 32);
    assert_memory_equal(lk->cert.link_pub, lk->pub, 32);
    assert_memory_equal(lk->cert.identity, sc_identity_relay_id(id), 32);
    assert_true(lk->cert.expiry_unix == expiry);

    /* the signature covers exactly the documented message */
    uint8_t msg[58];
    memcpy(msg, "secirc link key v1", 18);
    memcpy(msg + 18, lk->pub, 32);
    for (int i = 0; i < 8; i++)
        msg[50 + i] = (uint8_t)(expiry >> (56 - 8 * i));
    assert_int_equal(
        crypto_sign_verify_detached(lk->cert.signature, msg, sizeof msg, sc_identity_relay_id(id)),
        0);

    assert_int_equal(sc_link_cert_verify(&lk->cert, lk->pub, 1700000000u), 0);
    assert_int_equal(sc_link_cert_verify(&lk->cert, lk->pub, 0), 0);
    assert_int_equal(sc_link_cert_verify(&lk->cert, lk->pub, expiry - 1), 0);
    assert_int_equal(sc_link_cert_verify(NULL, lk->pub, 0), SC_EINVAL);
    assert_int_equal(sc_link_cert_verify(&lk->cert, NULL, 0), SC_EINVAL);

    /* two link keys differ */
    struct sc_link_key *lk2 = NULL;
    assert_int_equal(sc_link_key_generate(id, expiry, &lk2), 0);
    assert_memory_not_equal(lk->priv, lk2->priv, 32);
    assert_memory_not_equal(lk->pub, lk2->pub, 32);

    sc_link_key_free(lk2);
    sc_link_key_free(lk);
    sc_link_key_free(NULL);
    sc_identity_free(id);
}

static void test_cert_wrong_key_identity_expiry(void **state)
{
    (void)state;
    struct sc_identity *id = NULL, *other = NULL;
    assert_int_equal(sc_identity_generate(&id), 0);
    assert_int_equal(sc_identity_generate(&other), 0);
    const uint64_t expiry = 1800000000u;
    struct sc_link_key *lk = NULL, *lk_other = NULL;
    assert_int_equal(sc_link_key_generate(id, expiry, &lk), 0);
    assert_int_equal(sc_link_key_generate(other, expiry, &lk_other), 0);

    /* the handshake showed another link key */
    assert_int_equal(sc_link_cert_verify(&lk->cert, lk_other->pub, 0), SC_EAUTH);
    struct sc_link_cert c = lk->cert;
    memcpy(c.link_pub, lk_other->pub, 32);
    assert_int_equal(sc_link_cert_verify(&c, lk_other->pub, 0), SC_EAUTH);

    /* another identity claims the certificate */
    c = lk->cert;
    memcpy(c.identity, sc_identity_relay_id(other), 32);
    assert_int_equal(sc_link_cert_verify(&c, lk->pub, 0), SC_EAUTH);
    /* another identity's signature on our link key */
    c = lk->cert;
    memcpy(c.signature, lk_other->cert.signature, 64);
    assert_int_equal(sc_link_cert_verify(&c, lk->pub, 0), SC_EAUTH);
    /* a longer expiry than signed */
    c = lk->cert;
    c.expiry_unix = expiry + 1;
    assert_int_equal(sc_link_cert_verify(&c, lk->pub, 0), SC_EAUTH);
    /* all-zero identity (small-order point) and all-zero signature */
    c = lk->cert;
    memset(c.identity, 0, 32);
    assert_int_equal(sc_link_cert_verify(&c, lk->pub, 0), SC_EAUTH);
    c = lk->cert;
    memset(c.signature, 0, 64);
    assert_int_equal(sc_link_cert_verify(&c, lk->pub, 0), SC_EAUTH);

    /* expiry: valid until the second before, expired at and after */
    assert_int_equal(sc_link_cert_verify(&lk->cert, lk->pub, expiry - 1), 0);
    assert_int_equal(sc_link_cert_verify(&lk->cert, lk->pub, expiry), SC_EEXPIRED);
    assert_int_equal(sc_link_cert_verify(&lk->cert, lk->pub, expiry + 1), SC_EEXPIRED);
    assert_int_equal(sc_link_cert_verify(&lk->cert, lk->pub, UINT64_MAX), SC_EEXPIRED);
    /* authenticity is checked before time: a forged expired cert is EAUTH */
    c = lk->cert;
    c.signature[0] ^= 1;
    assert_int_equal(sc_link_cert_verify(&c, lk->pub, expiry + 1), SC_EAUTH);
    assert_int_equal(sc_link_cert_verify(&lk->cert, lk_other->pub, expiry + 1), SC_EAUTH);

    /* an expiry of 0 is always expired */
    struct sc_link_key *lk0 = NULL;
    assert_int_equal(sc_link_key_generate(id, 0, &lk0), 0);
    assert_int_equal(sc_link_cert_verify(&lk0->cert, lk0->pub, 0), SC_EEXPIRED);
    sc_link_key_free(lk0);

    sc_link_key_free(lk);
    sc_link_key_free(lk_other);
    sc_identity_free(id);
    sc_identity_free(other);
}

static void test_cert_encoding(void **state)
{
    (void)state;
    struct sc_identity *id = NULL;
    assert_int_equal(sc_identity_generate(&id), 0);
    const uint64_t expiry = 0x0102030405060708ull;
    struct sc_link_key *lk = NULL;
    assert_int_equal(sc_link_key_generate(id, expiry, &lk), 0);
    uint8_t enc[SC_LINK_CERT_BYTES];
    sc_link_cert_encode(&lk->cert, enc);
    assert_memory_equal(enc, sc_identity_relay_id(id), 32);
    assert_memory_equal(enc + 32, lk->pub, 32);
    static const uint8_t be[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(enc + 64, be, 8);
    assert_memory_equal(enc + 72, lk->cert.signature, 64);

    struct sc_link_cert dec;
    memset(&dec, 0xee, sizeof dec);
    sc_link_cert_decode(enc, &dec);
    assert_memory_equal(dec.identity, lk->cert.identity, 32);
    assert_memory_equal(dec.link_pub, lk->cert.link_pub, 32);
    assert_true(dec.expiry_unix == expiry);
    assert_memory_equal(dec.signature, lk->cert.signature, 64);
    assert_int_equal(sc_link_cert_verify(&dec, lk->pub, 1700000000u), 0);

    /* every single flipped bit of the encoded certificate is caught */
    for (size_t bit = 0; bit < SC_LINK_CERT_BYTES * 8; bit++) {
        enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        sc_link_cert_decode(enc, &dec);
        int rc = sc_link_cert_verify(&dec, lk->pub, 1700000000u);
        if (rc >= 0)
            fail_msg("bit %zu flipped: certificate accepted", bit);
        enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    sc_link_key_free(lk);
    sc_identity_free(id);
}

/* The worked examples in docs/PROTOCOL.md. */
static void test_protocol_md_examples(void **state)
{
    (void)state;
    uint8_t img[SC_KEYFILE_BYTES], sum[16];
    rfc8032_image(img);
    unhex("ebf86fbc3c60d2a855f1370f2a660a70", sum, 16);
    assert_memory_equal(img + 76, sum, 16);

    uint8_t enc[SC_LINK_CERT_BYTES], link_pub[32], link_priv[32], seed[32];
    unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
          "07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c"
          "000000006955b900"
          "5ae7c973188a301d45f8c54965ecdd7ad252179cdc17e66372978feb86694e97"
          "7b3c94df6a1302478f7f2c893342504896a161d817bc0c12e0bf1d0e0f8ddd05",
          enc, sizeof enc);
    unhex("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20", link_priv, 32);
    assert_int_equal(crypto_scalarmult_base(link_pub, link_priv), 0);
    assert_memory_equal(enc + 32, link_pub, 32);
    struct sc_link_cert cert;
    sc_link_cert_decode(enc, &cert);
    assert_true(cert.expiry_unix == 1767225600u); /* 2026-01-01T00:00:00Z */
    assert_int_equal(sc_link_cert_verify(&cert, link_pub, 1767225599u), 0);
    assert_int_equal(sc_link_cert_verify(&cert, link_pub, 1767225600u), SC_EEXPIRED);

    /* the same signature from the identity API over the documented message */
    unhex(rfc8032_seed_hex, seed, 32);
    struct sc_identity *id = NULL;
    assert_int_equal(sc_identity_from_seed(seed, &id), 0);
    uint8_t msg[58], sig[64];
    memcpy(msg, "secirc link key v1", 18);
    memcpy(msg + 18, link_pub, 32);
    memcpy(msg + 50, enc + 64, 8);
    assert_int_equal(sc_identity_sign(id, msg, sizeof msg, sig), 0);
    assert_memory_equal(sig, enc + 72, 64);
    uint8_t again[SC_LINK_CERT_BYTES];
    sc_link_cert_encode(&cert, again);
    assert_memory_equal(again, enc, sizeof enc);
    sc_identity_free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_seed_rfc8032),
        cmocka_unit_test(test_generate_distinct_and_signs),
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_saved_file_layout),
        cmocka_unit_test(test_save_refuses_existing),
        cmocka_unit_test(test_save_mode_0600_with_umask_0),
        cmocka_unit_test(test_load_refuses_group_other_modes),
        cmocka_unit_test(test_load_refuses_non_regular),
        cmocka_unit_test(test_load_refuses_other_owner),
        cmocka_unit_test(test_truncated_every_length),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_key_type_and_reserved),
        cmocka_unit_test(test_checksum_and_public_key),
        cmocka_unit_test(test_every_bit_flip_fails),
        cmocka_unit_test(test_relay_id_hex),
        cmocka_unit_test(test_link_key_and_cert),
        cmocka_unit_test(test_cert_wrong_key_identity_expiry),
        cmocka_unit_test(test_cert_encoding),
        cmocka_unit_test(test_protocol_md_examples),
    };
    return cmocka_run_group_tests_name("identity", tests, setup, teardown);
}
