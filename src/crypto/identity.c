/* crypto/identity.c — relay identity (Ed25519) and its key file, relay IDs in
 * hex, X25519 link keys and their link-key certificates (docs/PROTOCOL.md,
 * "Identity key file" and "Link-key certificate").
 * Never logs or prints key material, never keeps a secret outside
 * sodium_malloc'd memory longer than a call, and never follows a symlink. */
#include "secirc/identity.h"
#include "util/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "util/hex.h"

/* Key file layout (PROTOCOL.md, "Identity key file"). */
#define KF_MAGIC "SCIRCKEY"
#define KF_MAGIC_LEN 8u
#define KF_VERSION 1u
#define KF_TYPE_ED25519 1u
#define KF_OFF_VERSION 8u
#define KF_OFF_TYPE 9u
#define KF_OFF_RESERVED 10u
#define KF_OFF_SEED 12u
#define KF_OFF_PUBLIC 44u
#define KF_OFF_CHECKSUM 76u
#define KF_CHECKSUM_BYTES 16u

/* Link-key certificate: the signed message and the encoded form. */
#define CERT_CONTEXT "secirc link key v1"
#define CERT_CONTEXT_LEN 18u
#define CERT_MSG_BYTES (CERT_CONTEXT_LEN + SC_LINK_KEY_BYTES + 8u)
#define CERT_OFF_IDENTITY 0u
#define CERT_OFF_LINK_PUB 32u
#define CERT_OFF_EXPIRY 64u
#define CERT_OFF_SIGNATURE 72u

_Static_assert(KF_OFF_CHECKSUM + KF_CHECKSUM_BYTES == SC_KEYFILE_BYTES, "key file layout");
_Static_assert(CERT_OFF_SIGNATURE + SC_SIGNATURE_BYTES == SC_LINK_CERT_BYTES, "cert layout");
_Static_assert(sizeof CERT_CONTEXT - 1 == CERT_CONTEXT_LEN, "cert context length");
_Static_assert(SC_RELAY_ID_BYTES == crypto_sign_PUBLICKEYBYTES, "relay id is an Ed25519 key");
_Static_assert(SC_SIGNATURE_BYTES == crypto_sign_BYTES, "Ed25519 signature size");
_Static_assert(SC_LINK_KEY_BYTES == crypto_scalarmult_BYTES, "X25519 key size");
/* sodium_malloc() aligns the end of the allocation to the page, so the start
 * is aligned only when the size is a multiple of the alignment. */
_Static_assert(sizeof(struct sc_link_key) % _Alignof(struct sc_link_key) == 0,
               "sodium_malloc alignment of struct sc_link_key");

struct sc_identity {
    uint8_t secret[crypto_sign_SECRETKEYBYTES]; /* libsodium layout: seed || public */
    uint8_t public_key[crypto_sign_PUBLICKEYBYTES];
};

__attribute__((format(printf, 3, 4))) static void set_why(char *why, size_t whylen,
                                                          const char *fmt, ...)
{
    if (why == NULL || whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static int init_sodium(void)
{
    return sodium_init() < 0 ? SC_ECRYPTO : 0;
}

/* ---- identity ------------------------------------------------------------ */

int sc_identity_from_seed(const uint8_t seed[32], struct sc_identity **out)
{
    if (seed == NULL || out == NULL)
        return SC_EINVAL;
    *out = NULL;
    if (init_sodium() != 0)
        return SC_ECRYPTO;
    struct sc_identity *id = sodium_malloc(sizeof *id);
    if (id == NULL)
        return SC_ENOMEM;
    if (crypto_sign_seed_keypair(id->public_key, id->secret, seed) != 0) {
        sodium_free(id);
        return SC_ECRYPTO;
    }
    /* Nothing writes to an identity after this point. */
    (void)sodium_mprotect_readonly(id);
    *out = id;
    return 0;
}

int sc_identity_generate(struct sc_identity **out)
{
    if (out == NULL)
        return SC_EINVAL;
    *out = NULL;
    if (init_sodium() != 0)
        return SC_ECRYPTO;
    uint8_t seed[crypto_sign_SEEDBYTES];
    randombytes_buf(seed, sizeof seed);
    int rc = sc_identity_from_seed(seed, out);
    sodium_memzero(seed, sizeof seed);
    return rc;
}

void sc_identity_free(struct sc_identity *id)
{
    sodium_free(id); /* accepts NULL; wipes, even when read-only */
}

const uint8_t *sc_identity_relay_id(const struct sc_identity *id)
{
    return id->public_key;
}

int sc_identity_sign(const struct sc_identity *id, const uint8_t *msg, size_t len,
                     uint8_t sig[SC_SIGNATURE_BYTES])
{
    if (id == NULL || sig == NULL || (msg == NULL && len != 0))
        return SC_EINVAL;
    if (init_sodium() != 0)
        return SC_ECRYPTO;
    static const uint8_t empty[1];
    if (crypto_sign_detached(sig, NULL, msg != NULL ? msg : empty, len, id->secret) != 0)
        return SC_ECRYPTO;
    return 0;
}

/* ---- key file image ------------------------------------------------------ */

static void keyfile_checksum(const uint8_t image[SC_KEYFILE_BYTES],
                             uint8_t sum[KF_CHECKSUM_BYTES])
{
    crypto_generichash(sum, KF_CHECKSUM_BYTES, image, KF_OFF_CHECKSUM, NULL, 0);
}

/* Writes the 92-byte image of `id` (secret: the caller wipes it). */
static void keyfile_image(const struct sc_identity *id, uint8_t image[SC_KEYFILE_BYTES])
{
    memcpy(image, KF_MAGIC, KF_MAGIC_LEN);
    image[KF_OFF_VERSION] = KF_VERSION;
    image[KF_OFF_TYPE] = KF_TYPE_ED25519;
    image[KF_OFF_RESERVED] = 0;
    image[KF_OFF_RESERVED + 1] = 0;
    crypto_sign_ed25519_sk_to_seed(image + KF_OFF_SEED, id->secret);
    memcpy(image + KF_OFF_PUBLIC, id->public_key, crypto_sign_PUBLICKEYBYTES);
    keyfile_checksum(image, image + KF_OFF_CHECKSUM);
}

/* Checks run from the outside in: size, magic, version (so a future format
 * is named as such, whatever its checksum), key type, reserved bytes, the
 * checksum over everything else, and last the key pair itself. */
int sc_identity_parse(const uint8_t *buf, size_t len, struct sc_identity **out, char *why,
                      size_t whylen)
{
    if (out == NULL || (buf == NULL && len != 0))
        return SC_EINVAL;
    *out = NULL;
    if (init_sodium() != 0)
        return SC_ECRYPTO;
    if (len < SC_KEYFILE_BYTES) {
        set_why(why, whylen, "key file is truncated (%zu of %u bytes)", len, SC_KEYFILE_BYTES);
        return SC_ETRUNC;
    }
    if (len > SC_KEYFILE_BYTES) {
        set_why(why, whylen, "key file is too long (more than %u bytes)", SC_KEYFILE_BYTES);
        return SC_EFORMAT;
    }
    if (memcmp(buf, KF_MAGIC, KF_MAGIC_LEN) != 0) {
        set_why(why, whylen, "not a secirc key file");
        return SC_EFORMAT;
    }
    if (buf[KF_OFF_VERSION] != KF_VERSION) {
        set_why(why, whylen, "unsupported key file version %u (this build reads version %u)",
                (unsigned)buf[KF_OFF_VERSION], KF_VERSION);
        return SC_EVERSION;
    }
    if (buf[KF_OFF_TYPE] != KF_TYPE_ED25519) {
        set_why(why, whylen, "unknown key type %u (this build reads type %u, Ed25519)",
                (unsigned)buf[KF_OFF_TYPE], KF_TYPE_ED25519);
        return SC_EFORMAT;
    }
    if (buf[KF_OFF_RESERVED] != 0 || buf[KF_OFF_RESERVED + 1] != 0) {
        set_why(why, whylen, "reserved bytes 10-11 of the key file are not zero");
        return SC_EFORMAT;
    }
    uint8_t sum[KF_CHECKSUM_BYTES];
    keyfile_checksum(buf, sum);
    if (sodium_memcmp(sum, buf + KF_OFF_CHECKSUM, KF_CHECKSUM_BYTES) != 0) {
        set_why(why, whylen, "key file checksum does not match (file damaged?)");
        return SC_EFORMAT;
    }
    struct sc_identity *id = NULL;
    int rc = sc_identity_from_seed(buf + KF_OFF_SEED, &id);
    if (rc != 0) {
        set_why(why, whylen, "cannot derive the key pair: %s", sc_strerror(rc));
        return rc;
    }
    if (sodium_memcmp(id->public_key, buf + KF_OFF_PUBLIC, crypto_sign_PUBLICKEYBYTES) != 0) {
        sc_identity_free(id);
        set_why(why, whylen, "public key in the key file does not match its secret seed");
        return SC_EFORMAT;
    }
    *out = id;
    return 0;
}

/* ---- key file on disk ---------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return SC_EIO;
        }
        if (w == 0) {
            errno = EIO;
            return SC_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Failures keep their cause in the code (sc_translate_sys_error). */
int sc_identity_save(const struct sc_identity *id, const char *path)
{
    if (id == NULL || path == NULL || path[0] == '\0')
        return SC_EINVAL;
    if (init_sodium() != 0)
        return SC_ECRYPTO;
    /* O_EXCL also fails on any symlink at `path`, dangling or not. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == ENOTDIR ? SC_ENOENT : sc_translate_sys_error(errno);
    uint8_t image[SC_KEYFILE_BYTES];
    keyfile_image(id, image);
    int rc = 0;
    /* The umask may only remove bits, but make the mode explicit anyway. */
    if (fchmod(fd, 0600) != 0 || write_all(fd, image, sizeof image) != 0 || fsync(fd) != 0)
        rc = sc_translate_sys_error(errno);
    sodium_memzero(image, sizeof image);
    if (close(fd) != 0 && rc == 0)
        rc = sc_translate_sys_error(errno);
    if (rc != 0)
        unlink(path); /* we created it (O_EXCL): leave no partial key behind */
    return rc;
}

static int read_upto(int fd, uint8_t *buf, size_t cap, size_t *got)
{
    *got = 0;
    while (*got < cap) {
        ssize_t r = read(fd, buf + *got, cap - *got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return SC_EIO;
        }
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

/* open() adds O_NONBLOCK to the flags the format asks for, so that a FIFO at
 * `path` is refused by the fstat() check instead of blocking the caller; it
 * changes nothing for a regular file. */
/* The user's name, or its number when it has no passwd entry. */
static void user_name(uid_t uid, char *out, size_t outlen)
{
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found)
        snprintf(out, outlen, "%s", found->pw_name);
    else
        snprintf(out, outlen, "%u", (unsigned)uid);
}

int sc_identity_load(const char *path, struct sc_identity **out, char *why, size_t whylen)
{
    if (out == NULL)
        return SC_EINVAL;
    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        set_why(why, whylen, "no key file given");
        return SC_EINVAL;
    }
    if (init_sodium() != 0)
        return SC_ECRYPTO;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) {
            set_why(why, whylen, "key file does not exist");
            return SC_ENOENT;
        }
        if (e == ELOOP) {
            set_why(why, whylen,
                    "key file %s is a symbolic link; refusing to follow it (give the real path)",
                    path);
            return SC_EPERM;
        }
        set_why(why, whylen, "cannot open key file: %s", strerror(e));
        return SC_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_why(why, whylen, "cannot stat key file: %s", strerror(errno));
        close(fd);
        return SC_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        set_why(why, whylen, "key file %s is not a regular file", path);
        close(fd);
        return SC_EFORMAT;
    }
    if (st.st_uid != geteuid()) {
        char owner[64], me[64];
        user_name(st.st_uid, owner, sizeof owner);
        user_name(geteuid(), me, sizeof me);
        set_why(why, whylen,
                "key file %s is owned by user %s (uid %u), not by %s (uid %u) who runs this "
                "program; run: chown %s %s",
                path, owner, (unsigned)st.st_uid, me, (unsigned)geteuid(), me, path);
        close(fd);
        return SC_EPERM;
    }
    if ((st.st_mode & 077) != 0) {
        set_why(why, whylen,
                "key file %s is accessible by group/others (mode %04o); run: chmod 600 %s", path,
                (unsigned)(st.st_mode & 07777), path);
        close(fd);
        return SC_EPERM;
    }
    /* One byte more than a key file, to tell "too long" from "exact". */
    uint8_t buf[SC_KEYFILE_BYTES + 1];
    size_t got = 0;
    int rc = read_upto(fd, buf, sizeof buf, &got);
    int read_errno = errno;
    close(fd);
    if (rc != 0)
        set_why(why, whylen, "cannot read key file: %s", strerror(read_errno));
    else
        rc = sc_identity_parse(buf, got, out, why, whylen);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

/* ---- relay IDs in hex ---------------------------------------------------- */

void sc_relay_id_to_hex(const uint8_t id[SC_RELAY_ID_BYTES], char out[SC_RELAY_ID_HEX_LEN + 1])
{
    sc_hex_encode(id, SC_RELAY_ID_BYTES, out);
}

/* Either case is accepted on input (IDs are pasted from many places); output
 * is always lowercase. `out` is written only on success. */
int sc_relay_id_from_hex(const char *hex, uint8_t out[SC_RELAY_ID_BYTES])
{
    if (hex == NULL || out == NULL)
        return SC_EINVAL;
    uint8_t tmp[SC_RELAY_ID_BYTES];
    int rc = sc_hex_decode(hex, strnlen(hex, SC_RELAY_ID_HEX_LEN + 1), tmp, sizeof tmp);
    if (rc != 0)
        return rc;
    memcpy(out, tmp, sizeof tmp);
    return 0;
}

/* ---- link keys and certificates ------------------------------------------ */

/* "secirc link key v1" || link_pub || expiry_be64: what the identity signs. */
static void cert_message(const uint8_t link_pub[SC_LINK_KEY_BYTES], uint64_t expiry_unix,
                         uint8_t msg[CERT_MSG_BYTES])
{
    memcpy(msg, CERT_CONTEXT, CERT_CONTEXT_LEN);
    memcpy(msg + CERT_CONTEXT_LEN, link_pub, SC_LINK_KEY_BYTES);
    sc_put_be64(msg + CERT_CONTEXT_LEN + SC_LINK_KEY_BYTES, expiry_unix);
}

int sc_link_key_generate(const struct sc_identity *id, uint64_t expiry_unix,
                         struct sc_link_key **out)
{
    if (id == NULL || out == NULL)
        return SC_EINVAL;
    *out = NULL;
    if (init_sodium() != 0)
        return SC_ECRYPTO;
    struct sc_link_key *key = sodium_malloc(sizeof *key);
    if (key == NULL)
        return SC_ENOMEM;
    randombytes_buf(key->priv, sizeof key->priv);
    if (crypto_scalarmult_base(key->pub, key->priv) != 0) {
        sc_link_key_free(key);
        return SC_ECRYPTO;
    }
    memcpy(key->cert.identity, id->public_key, SC_RELAY_ID_BYTES);
    memcpy(key->cert.link_pub, key->pub, SC_LINK_KEY_BYTES);
    key->cert.expiry_unix = expiry_unix;
    uint8_t msg[CERT_MSG_BYTES];
    cert_message(key->pub, expiry_unix, msg);
    int rc = sc_identity_sign(id, msg, sizeof msg, key->cert.signature);
    if (rc != 0) {
        sc_link_key_free(key);
        return rc;
    }
    (void)sodium_mprotect_readonly(key); /* like the identity: locked, read-only */
    *out = key;
    return 0;
}

void sc_link_key_free(struct sc_link_key *key)
{
    sodium_free(key); /* accepts NULL; wipes the private half */
}

void sc_link_cert_encode(const struct sc_link_cert *cert, uint8_t out[SC_LINK_CERT_BYTES])
{
    memcpy(out + CERT_OFF_IDENTITY, cert->identity, SC_RELAY_ID_BYTES);
    memcpy(out + CERT_OFF_LINK_PUB, cert->link_pub, SC_LINK_KEY_BYTES);
    sc_put_be64(out + CERT_OFF_EXPIRY, cert->expiry_unix);
    memcpy(out + CERT_OFF_SIGNATURE, cert->signature, SC_SIGNATURE_BYTES);
}

void sc_link_cert_decode(const uint8_t in[SC_LINK_CERT_BYTES], struct sc_link_cert *cert)
{
    memcpy(cert->identity, in + CERT_OFF_IDENTITY, SC_RELAY_ID_BYTES);
    memcpy(cert->link_pub, in + CERT_OFF_LINK_PUB, SC_LINK_KEY_BYTES);
    cert->expiry_unix = sc_get_be64(in + CERT_OFF_EXPIRY);
    memcpy(cert->signature, in + CERT_OFF_SIGNATURE, SC_SIGNATURE_BYTES);
}

/* Authenticity first, then time: the key and the signature are checked
 * before the expiry, so SC_EEXPIRED always means "genuine, but out of date"
 * and a forged certificate is reported as SC_EAUTH whatever its expiry. */
int sc_link_cert_verify(const struct sc_link_cert *cert, const uint8_t link_pub[SC_LINK_KEY_BYTES],
                        uint64_t now_unix)
{
    if (cert == NULL || link_pub == NULL)
        return SC_EINVAL;
    if (init_sodium() != 0)
        return SC_ECRYPTO;
    if (sodium_memcmp(cert->link_pub, link_pub, SC_LINK_KEY_BYTES) != 0)
        return SC_EAUTH;
    uint8_t msg[CERT_MSG_BYTES];
    cert_message(cert->link_pub, cert->expiry_unix, msg);
    if (crypto_sign_verify_detached(cert->signature, msg, sizeof msg, cert->identity) != 0)
        return SC_EAUTH;
    if (now_unix >= cert->expiry_unix)
        return SC_EEXPIRED;
    return 0;
}
