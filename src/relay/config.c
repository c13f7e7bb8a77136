/* relay/config.c — entry points of the relay configuration: parse from
 * memory (pure), load from a file (bounded read, then parse, then the file
 * checks), the embedded defaults, and free. The file checks only look
 * (stat, open for reading, the identity loader); they never create, change
 * or remove anything. */
#include "relay/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay/config_schema.h"
#include "relay/config_yaml.h"

/* text == NULL builds the defaults (no YAML at all). */
static int build(const char *text, size_t len, const char *name, const char *base_dir,
                 struct sc_relay_config **out, struct sc_cfg_err *e)
{
    *out = NULL;
    if (len > SC_RELAY_CONFIG_MAX_BYTES)
        return sc_cfg_fail(e, SC_ETOOBIG, 1, 1,
                           "the configuration is too large (%zu bytes, at most %u)", len,
                           SC_RELAY_CONFIG_MAX_BYTES);
    char cwd[PATH_MAX];
    if (base_dir == NULL) {
        if (getcwd(cwd, sizeof cwd) == NULL)
            return sc_cfg_fail(e, SC_EIO, 1, 1, "cannot find the current directory: %s",
                               strerror(errno));
        base_dir = cwd;
    }
    if (base_dir[0] != '/')
        return sc_cfg_fail(e, SC_EINVAL, 1, 1, "the base directory %.64s is not absolute",
                           base_dir);
    struct sc_relay_config_arena *arena = sc_cfg_arena_new(), *tree = sc_cfg_arena_new();
    struct sc_relay_config *cfg = sc_cfg_arena_alloc(arena, sizeof *cfg);
    if (cfg == NULL || tree == NULL) {
        sc_cfg_arena_free(arena);
        sc_cfg_arena_free(tree);
        return sc_cfg_fail(e, SC_ENOMEM, 1, 1, "out of memory");
    }
    cfg->arena = arena;
    struct sc_yaml_node *root = NULL;
    int rc = 0;
    if (text != NULL) {
        rc = sc_yaml_load(tree, text, len, e, &root);
        if (rc == 0 && root == NULL)
            rc = sc_cfg_fail(e, SC_EFORMAT, 1, 1, "the configuration is empty");
    }
    if (rc == 0) {
        cfg->source = sc_cfg_arena_strndup(arena, name, strlen(name));
        rc = cfg->source ? 0 : sc_cfg_fail(e, SC_ENOMEM, 1, 1, "out of memory");
    }
    if (rc == 0)
        rc = sc_cfg_build(arena, root, base_dir, e, cfg);
    sc_cfg_arena_free(tree);
    if (rc != 0) {
        sc_cfg_arena_free(arena);
        return rc;
    }
    *out = cfg;
    return 0;
}

int sc_relay_config_parse(const char *text, size_t len, const char *name_for_messages,
                          const char *base_dir, struct sc_relay_config **out, char *err,
                          size_t errlen)
{
    const char *name = name_for_messages ? name_for_messages : "<config>";
    struct sc_cfg_err e = {.name = name, .buf = err, .len = errlen};
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        return SC_EINVAL;
    *out = NULL;
    if (text == NULL)
        return sc_cfg_fail(&e, SC_EINVAL, 1, 1, "no configuration text");
    return build(text, len, name, base_dir, out, &e);
}

int sc_relay_config_defaults(const char *base_dir, struct sc_relay_config **out)
{
    struct sc_cfg_err e = {.name = "<defaults>"};
    if (out == NULL)
        return SC_EINVAL;
    return build(NULL, 0, "<defaults>", base_dir, out, &e);
}

void sc_relay_config_free(struct sc_relay_config *cfg)
{
    if (cfg != NULL)
        sc_cfg_arena_free(cfg->arena); /* cfg itself lives in the arena */
}

/* ---- reading the file ------------------------------------------------------------------- */

static int read_config(const char *path, char **text, size_t *len, struct sc_cfg_err *e)
{
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        return sc_cfg_fail(e, err == ENOENT ? SC_ENOENT : SC_EIO, 1, 1, "cannot read: %s",
                           strerror(err));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return sc_cfg_fail(e, SC_EIO, 1, 1, "cannot read: %s", strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        if (S_ISDIR(st.st_mode))
            return sc_cfg_fail(e, SC_EIO, 1, 1, "cannot read: %s", strerror(EISDIR));
        return sc_cfg_fail(e, SC_EIO, 1, 1, "cannot read: not a regular file");
    }
    if (st.st_size > (off_t)SC_RELAY_CONFIG_MAX_BYTES) {
        close(fd);
        return sc_cfg_fail(e, SC_ETOOBIG, 1, 1,
                           "the configuration is too large (%lld bytes, at most %u)",
                           (long long)st.st_size, SC_RELAY_CONFIG_MAX_BYTES);
    }
    /* the size may change under us: read at most one byte over the bound */
    size_t cap = (size_t)st.st_size + 1, got = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return sc_cfg_fail(e, SC_ENOMEM, 1, 1, "out of memory");
    }
    for (;;) {
        if (got == cap) {
            if (cap > SC_RELAY_CONFIG_MAX_BYTES) {
                free(buf);
                close(fd);
                return sc_cfg_fail(e, SC_ETOOBIG, 1, 1,
                                   "the configuration is too large (at most %u bytes)",
                                   SC_RELAY_CONFIG_MAX_BYTES);
            }
            size_t ncap =
                cap * 2 > SC_RELAY_CONFIG_MAX_BYTES + 1 ? SC_RELAY_CONFIG_MAX_BYTES + 1 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                free(buf);
                close(fd);
                return sc_cfg_fail(e, SC_ENOMEM, 1, 1, "out of memory");
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            free(buf);
            close(fd);
            return sc_cfg_fail(e, SC_EIO, 1, 1, "cannot read: %s", strerror(err));
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *text = buf;
    *len = got;
    return 0;
}

/* The directory part of path ("." when there is none). */
static void dir_of(const char *path, char *out, size_t outlen)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(out, outlen, ".");
    else if (slash == path)
        snprintf(out, outlen, "/");
    else
        snprintf(out, outlen, "%.*s", (int)(slash - path), path);
}

int sc_relay_config_load(const char *path, struct sc_relay_config **out, char *err, size_t errlen)
{
    struct sc_cfg_err e = {.name = path ? path : "<config>", .buf = err, .len = errlen};
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL || path == NULL)
        return SC_EINVAL;
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = read_config(path, &text, &len, &e);
    if (rc != 0)
        return rc;
    char dir[PATH_MAX], base[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    if (realpath(dir, base) == NULL) {
        free(text);
        return sc_cfg_fail(&e, SC_EIO, 1, 1, "cannot resolve the directory %s: %s", dir,
                           strerror(errno));
    }
    rc = sc_relay_config_parse(text, len, path, base, out, err, errlen);
    free(text);
    if (rc != 0)
        return rc;
    rc = sc_relay_config_check_files(*out, err, errlen);
    if (rc != 0) {
        sc_relay_config_free(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- file checks -------------------------------------------------------------------------- */

static int need_dir_of(struct sc_cfg_err *e, struct sc_relay_config_pos pos, const char *key,
                       const char *file)
{
    char dir[PATH_MAX];
    struct stat st;
    dir_of(file, dir, sizeof dir);
    if (stat(dir, &st) != 0)
        return sc_cfg_fail(e, SC_ENOENT, pos.line, pos.col, "directory %s of %s does not exist",
                           dir, key);
    if (!S_ISDIR(st.st_mode))
        return sc_cfg_fail(e, SC_ENOENT, pos.line, pos.col,
                           "%s (the directory of %s) is not a directory", dir, key);
    return 0;
}

/* A readable regular file; a missing one is fine unless must_exist. */
static int need_readable(struct sc_cfg_err *e, struct sc_relay_config_pos pos, const char *key,
                         const char *file, bool must_exist, bool private_key)
{
    if (file == NULL)
        return 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT && !must_exist)
        return 0;
    if (fd < 0)
        return sc_cfg_fail(e, SC_EIO, pos.line, pos.col, "%s %s: cannot read: %s", key, file,
                           strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = sc_cfg_fail(e, SC_EIO, pos.line, pos.col, "%s %s is not a regular file", key, file);
    else if (private_key && (st.st_mode & 077) != 0)
        rc = sc_cfg_fail(e, SC_EPERM, pos.line, pos.col,
                         "%s %s is accessible by group/others (mode %04o); run: chmod 600 %s", key,
                         file, (unsigned)(st.st_mode & 07777), file);
    close(fd);
    return rc;
}

static int check_key_file(struct sc_cfg_err *e, const struct sc_relay_config *cfg)
{
    const char *file = cfg->identity.key_file;
    struct sc_relay_config_pos pos = cfg->file_pos.key_file;
    int rc = need_dir_of(e, pos, "key_file", file);
    if (rc != 0)
        return rc;
    struct stat st;
    if (lstat(file, &st) != 0) {
        if (errno == ENOENT)
            return 0; /* the daemon creates it */
        return sc_cfg_fail(e, SC_EIO, pos.line, pos.col, "key_file %s: %s", file, strerror(errno));
    }
    char why[256] = "";
    struct sc_identity *id = NULL;
    rc = sc_identity_load(file, &id, why, sizeof why);
    sc_identity_free(id);
    if (rc != 0) /* the loader refuses other owners and unsafe modes, naming them */
        return sc_cfg_fail(e, rc, pos.line, pos.col, "%s", why[0] ? why : sc_strerror(rc));
    return 0;
}

int sc_relay_config_check_files(const struct sc_relay_config *cfg, char *err, size_t errlen)
{
    if (cfg == NULL)
        return SC_EINVAL;
    struct sc_cfg_err e = {.name = cfg->source, .buf = err, .len = errlen};
    const struct sc_relay_config_file_pos *fp = &cfg->file_pos;
    int rc = check_key_file(&e, cfg);
    if (rc != 0)
        return rc;
    struct stat st;
    if (stat(cfg->identity.data_dir, &st) != 0)
        return sc_cfg_fail(&e, SC_ENOENT, (fp->data_dir).line, (fp->data_dir).col,
                           "data_dir %s does not exist", cfg->identity.data_dir);
    if (!S_ISDIR(st.st_mode))
        return sc_cfg_fail(&e, SC_ENOENT, (fp->data_dir).line, (fp->data_dir).col,
                           "data_dir %s is not a directory", cfg->identity.data_dir);

    bool serves_tls = cfg->manager.ssl_enabled;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        serves_tls = serves_tls || cfg->listeners[i].ssl_enabled;
    if (serves_tls) {
        if (cfg->manager.ssl_cert_path == NULL || cfg->manager.ssl_key_path == NULL) {
            bool cert = cfg->manager.ssl_cert_path == NULL;
            struct sc_relay_config_pos pos = cert ? fp->ssl_cert_path : fp->ssl_key_path;
            return sc_cfg_fail(&e, SC_EINVAL, pos.line, pos.col, "%s is empty but TLS is enabled",
                               cert ? "ssl_cert_path" : "ssl_key_path");
        }
        if ((rc = need_readable(&e, fp->ssl_cert_path, "ssl_cert_path", cfg->manager.ssl_cert_path,
                                false, false)) != 0 ||
            (rc = need_readable(&e, fp->ssl_key_path, "ssl_key_path", cfg->manager.ssl_key_path,
                                false, false)) != 0)
            return rc;
    }
    if (cfg->tls.verify == SC_RELAY_TLS_VERIFY_CA &&
        (rc = need_readable(&e, fp->ca_file, "ca_file", cfg->tls.ca_file, true, false)) != 0)
        return rc;
    if (cfg->tor.control_port != 0 &&
        (rc = need_readable(&e, fp->onion_key_file, "onion_key_file", cfg->tor.onion_key_file,
                            false, true)) != 0)
        return rc;
    if (cfg->control.socket != NULL &&
        (rc = need_dir_of(&e, fp->control_socket, "control.socket", cfg->control.socket)) != 0)
        return rc;
    return 0;
}

void sc_relay_default_data_dir(char *out, size_t len)
{
    const char *env = getenv("SECIRC_DATA_DIR"), *home = getenv("HOME");
    if (env && env[0])
        snprintf(out, len, "%s", env);
    else if (home && home[0])
        snprintf(out, len, "%s/.local/share/secircd", home);
    else
        snprintf(out, len, "secircd-data");
}
