/* relay/pins.c — the TOFU pin file of relay/pins.h. Bounded: at most
 * PINS_MAX lines of at most 512 bytes are read; the file is rewritten
 * whole, through a temporary file and rename, never in place. */
#include "relay/pins.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

#define PINS_MAX 4096u

struct pin {
    char type[16];
    char host[256];
    uint16_t port;
    uint8_t id[SC_RELAY_ID_BYTES];
};

struct sc_pins {
    char *path;
    struct pin *pins;
    size_t n;
};

int sc_pins_load(const char *path, struct sc_pins **out)
{
    *out = NULL;
    struct sc_pins *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(path)) || !(p->pins = calloc(PINS_MAX, sizeof *p->pins))) {
        sc_pins_free(p);
        return SC_ENOMEM;
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        *out = p;
        return errno == ENOENT ? 0 : sc_translate_sys_error(errno);
    }
    char line[512];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f) && p->n < PINS_MAX) {
        lineno++;
        struct pin *q = &p->pins[p->n];
        char hex[80];
        unsigned port;
        if (sscanf(line, "%15s %255s %u %79s", q->type, q->host, &port, hex) != 4 || port == 0 ||
            port > 65535 || sc_relay_id_from_hex(hex, q->id) != 0) {
            sc_log(SC_LOG_WARN, "pins.skipped", "file=%s line=%u", path, lineno);
            continue;
        }
        q->port = (uint16_t)port;
        p->n++;
    }
    fclose(f);
    *out = p;
    return 0;
}

void sc_pins_free(struct sc_pins *p)
{
    if (!p)
        return;
    free(p->path);
    free(p->pins);
    free(p);
}

static struct pin *find(const struct sc_pins *p, const char *type, const char *host, uint16_t port)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->pins[i].port == port && strcmp(p->pins[i].type, type) == 0 &&
            strcmp(p->pins[i].host, host) == 0)
            return &p->pins[i];
    return NULL;
}

bool sc_pins_lookup(const struct sc_pins *p, const char *type, const char *host, uint16_t port,
                    uint8_t id[SC_RELAY_ID_BYTES])
{
    const struct pin *q = find(p, type, host, port);
    if (q)
        memcpy(id, q->id, SC_RELAY_ID_BYTES);
    return q != NULL;
}

static int save(const struct sc_pins *p)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", p->path) >= sizeof tmp)
        return SC_EINVAL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return sc_translate_sys_error(errno);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return SC_ENOMEM;
    }
    int err = fchmod(fd, 0600) == 0 ? 0 : sc_translate_sys_error(errno);
    for (size_t i = 0; i < p->n && !err; i++) {
        char hex[SC_RELAY_ID_HEX_LEN + 1];
        sc_relay_id_to_hex(p->pins[i].id, hex);
        if (fprintf(f, "%s %s %u %s\n", p->pins[i].type, p->pins[i].host, p->pins[i].port, hex) < 0)
            err = SC_EIO;
    }
    if (fflush(f) != 0 || fsync(fd) != 0)
        err = err ? err : sc_translate_sys_error(errno);
    if (fclose(f) != 0 && !err)
        err = SC_EIO;
    if (!err && rename(tmp, p->path) != 0)
        err = sc_translate_sys_error(errno);
    if (err)
        unlink(tmp);
    return err;
}

int sc_pins_set(struct sc_pins *p, const char *type, const char *host, uint16_t port,
                const uint8_t id[SC_RELAY_ID_BYTES])
{
    if (strlen(type) >= sizeof p->pins[0].type || strlen(host) >= sizeof p->pins[0].host ||
        strchr(host, ' ') || strchr(host, '\n'))
        return SC_EINVAL;
    struct pin *q = find(p, type, host, port);
    if (!q) {
        if (p->n >= PINS_MAX)
            return SC_ELIMIT;
        q = &p->pins[p->n++];
        snprintf(q->type, sizeof q->type, "%s", type);
        snprintf(q->host, sizeof q->host, "%s", host);
        q->port = port;
    }
    memcpy(q->id, id, SC_RELAY_ID_BYTES);
    return save(p);
}
