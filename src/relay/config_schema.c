/* relay/config_schema.c — the table-driven decoder: checks a YAML mapping
 * against a table of keys (names, duplicates, types, ranges) and stores typed
 * values, with one-line messages at the offending key or value; plus the
 * string, path, host and URL checks the sections share. Pure: never touches
 * the file system. The keys themselves are in config_sections.c. */
#include "relay/config_schema.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

/* SC_CFG_ENUM stores an unsigned into an enum field. */
_Static_assert(sizeof(enum sc_relay_transport) == sizeof(unsigned), "enum size");
_Static_assert(sizeof(enum sc_relay_tls_version) == sizeof(unsigned), "enum size");
_Static_assert(sizeof(enum sc_relay_tls_verify) == sizeof(unsigned), "enum size");
_Static_assert(sizeof(enum sc_relay_log_format) == sizeof(unsigned), "enum size");
_Static_assert(sizeof(enum sc_log_level) == sizeof(unsigned), "enum size");

#define MAX_STRING_BYTES 4095u

/* ---- messages --------------------------------------------------------------------- */

int sc_cfg_fail_at(struct sc_cfg_ctx *c, const struct sc_yaml_node *n, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sc_cfg_fail(c->e, SC_EFORMAT, n ? n->line : 1, n ? n->col : 1, "%s", msg);
}

const char *sc_cfg_found(const struct sc_yaml_node *v, char *buf, size_t len)
{
    if (v == NULL || sc_yaml_is_null(v))
        return "nothing";
    if (v->kind == SC_YAML_MAP)
        return "a mapping";
    if (v->kind == SC_YAML_LIST)
        return "a list";
    const char *more = v->len > 40 ? "..." : "";
    if (v->plain)
        snprintf(buf, len, "'%.40s%s'", v->text, more);
    else
        snprintf(buf, len, "the quoted string \"%.40s%s\"", v->text, more);
    return buf;
}

/* Levenshtein distance, capped (names are short). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *sc_cfg_closest(const char *name, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3; /* at most two edits */
    for (size_t i = 0; i < n; i++) {
        size_t d = distance(name, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    return best;
}

/* ---- scalars ------------------------------------------------------------------------ */

static int want_bool(struct sc_cfg_ctx *c, const struct sc_cfg_key *k, const struct sc_yaml_node *v,
                     bool *out)
{
    if (v->kind == SC_YAML_SCALAR && v->plain && strcmp(v->text, "true") == 0) {
        *out = true;
        return 0;
    }
    if (v->kind == SC_YAML_SCALAR && v->plain && strcmp(v->text, "false") == 0) {
        *out = false;
        return 0;
    }
    char buf[96];
    return sc_cfg_fail_at(c, v, "%s must be true or false, found %s", k->name,
                          sc_cfg_found(v, buf, sizeof buf));
}

int sc_cfg_want_uint(struct sc_cfg_ctx *c, const char *name, const struct sc_yaml_node *v,
                     uint64_t min, uint64_t max, uint64_t *out)
{
    char buf[96];
    if (v->kind != SC_YAML_SCALAR || !v->plain || v->len == 0)
        return sc_cfg_fail_at(c, v, "%s must be an integer, found %s", name,
                              sc_cfg_found(v, buf, sizeof buf));
    const char *s = v->text;
    bool negative = s[0] == '-';
    size_t i = negative ? 1 : 0;
    if (i == v->len)
        return sc_cfg_fail_at(c, v, "%s must be an integer, found %s", name,
                              sc_cfg_found(v, buf, sizeof buf));
    for (size_t j = i; j < v->len; j++)
        if (s[j] < '0' || s[j] > '9')
            return sc_cfg_fail_at(c, v, "%s must be an integer, found %s", name,
                                  sc_cfg_found(v, buf, sizeof buf));
    if (s[i] == '0' && v->len - i > 1)
        return sc_cfg_fail_at(c, v,
                              "%s: leading zeros are ambiguous in YAML (octal); write the number "
                              "without them",
                              name);
    uint64_t u = 0;
    bool overflow = false;
    for (size_t j = i; j < v->len; j++) {
        unsigned d = (unsigned)(s[j] - '0');
        if (u > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            u = u * 10 + d;
    }
    if (negative || overflow || u < min || u > max)
        return sc_cfg_fail_at(c, v, "%s must be between %llu and %llu, found %s", name,
                              (unsigned long long)min, (unsigned long long)max,
                              sc_cfg_found(v, buf, sizeof buf));
    *out = u;
    return 0;
}

int sc_cfg_want_string(struct sc_cfg_ctx *c, const char *name, const struct sc_yaml_node *v,
                       char **out)
{
    char buf[96];
    if (v->kind != SC_YAML_SCALAR)
        return sc_cfg_fail_at(c, v, "%s must be a string, found %s", name,
                              sc_cfg_found(v, buf, sizeof buf));
    if (sc_yaml_is_null(v) || v->len == 0) {
        *out = NULL;
        return 0;
    }
    if (v->len > MAX_STRING_BYTES)
        return sc_cfg_fail_at(c, v, "%s is too long (%zu bytes, at most %u)", name, v->len,
                              MAX_STRING_BYTES);
    for (size_t i = 0; i < v->len; i++) {
        unsigned char ch = (unsigned char)v->text[i];
        if (ch < 0x20 || ch == 0x7f)
            return sc_cfg_fail_at(c, v, "%s must not contain control characters", name);
    }
    return sc_cfg_dup(c, v, v->text, out);
}

static int want_enum(struct sc_cfg_ctx *c, const struct sc_cfg_key *k, const struct sc_yaml_node *v,
                     unsigned *out)
{
    if (v->kind == SC_YAML_SCALAR && strlen(v->text) == v->len)
        for (unsigned i = 0; k->names[i] != NULL; i++)
            if (strcmp(v->text, k->names[i]) == 0) {
                *out = i;
                return 0;
            }
    char list[160] = "", buf[96];
    for (unsigned i = 0; k->names[i] != NULL; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", k->names[i]);
    }
    return sc_cfg_fail_at(c, v, "%s must be one of %s; found %s", k->name, list,
                          sc_cfg_found(v, buf, sizeof buf));
}

static int decode(struct sc_cfg_ctx *c, const struct sc_cfg_key *k, void *base,
                  const struct sc_yaml_node *v)
{
    unsigned char *field = (unsigned char *)base + k->off;
    uint64_t u = 0;
    int rc;
    switch (k->kind) {
    case SC_CFG_BOOL:
        return want_bool(c, k, v, (bool *)field);
    case SC_CFG_U16:
        if ((rc = sc_cfg_want_uint(c, k->name, v, k->min, k->max, &u)) == 0)
            *(uint16_t *)field = (uint16_t)u;
        return rc;
    case SC_CFG_U32:
        if ((rc = sc_cfg_want_uint(c, k->name, v, k->min, k->max, &u)) == 0)
            *(uint32_t *)field = (uint32_t)u;
        return rc;
    case SC_CFG_U64:
        if ((rc = sc_cfg_want_uint(c, k->name, v, k->min, k->max, &u)) == 0)
            *(uint64_t *)field = u;
        return rc;
    case SC_CFG_STR:
        return sc_cfg_want_string(c, k->name, v, (char **)field);
    case SC_CFG_ENUM: {
        unsigned idx = 0;
        if ((rc = want_enum(c, k, v, &idx)) == 0)
            memcpy(field, &idx, sizeof idx); /* every config enum is unsigned-sized */
        return rc;
    }
    case SC_CFG_CUSTOM:
        return k->custom(c, k, base, v);
    }
    return SC_EINVAL;
}

/* ---- mappings ------------------------------------------------------------------------ */

int sc_cfg_apply_map(struct sc_cfg_ctx *c, struct sc_cfg_section *s, const struct sc_yaml_node *map,
                     void *base)
{
    if (map == NULL || sc_yaml_is_null(map))
        return 0;
    char buf[96];
    if (map->kind != SC_YAML_MAP)
        return sc_cfg_fail_at(c, map, "%s must be a mapping of keys, found %s", s->label,
                              sc_cfg_found(map, buf, sizeof buf));
    for (const struct sc_yaml_node *k = map->first; k != NULL && k->next != NULL;
         k = k->next->next) {
        const struct sc_yaml_node *v = k->next;
        if (k->kind != SC_YAML_SCALAR)
            return sc_cfg_fail_at(c, k, "a key must be a plain name, found %s",
                                  sc_cfg_found(k, buf, sizeof buf));
        size_t i = 0;
        while (i < s->nkeys &&
               !(strlen(k->text) == k->len && strcmp(k->text, s->keys[i].name) == 0))
            i++;
        if (i == s->nkeys) {
            const char *names[SC_CFG_MAX_KEYS];
            for (size_t j = 0; j < s->nkeys; j++)
                names[j] = s->keys[j].name;
            const char *near = sc_cfg_closest(k->text, names, s->nkeys);
            if (near != NULL)
                return sc_cfg_fail_at(c, k, "unknown key '%.64s' in %s; did you mean '%s'?",
                                      k->text, s->label, near);
            return sc_cfg_fail_at(c, k, "unknown key '%.64s' in %s", k->text, s->label);
        }
        if (s->given[i].key != NULL)
            return sc_cfg_fail_at(c, k, "duplicate key '%s' in %s (first at line %u)",
                                  s->keys[i].name, s->label, (unsigned)s->given[i].key->line);
        s->given[i].key = k;
        s->given[i].val = v;
        int rc = decode(c, &s->keys[i], base, v);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const struct sc_cfg_given *given(const struct sc_cfg_section *s, const char *name)
{
    for (size_t i = 0; i < s->nkeys; i++)
        if (strcmp(s->keys[i].name, name) == 0)
            return s->given[i].key ? &s->given[i] : NULL;
    return NULL;
}

const struct sc_yaml_node *sc_cfg_given_key(const struct sc_cfg_section *s, const char *name)
{
    const struct sc_cfg_given *g = given(s, name);
    return g ? g->key : NULL;
}

const struct sc_yaml_node *sc_cfg_given_val(const struct sc_cfg_section *s, const char *name)
{
    const struct sc_cfg_given *g = given(s, name);
    return g ? g->val : NULL;
}

/* ---- strings, paths, hosts ------------------------------------------------------------ */

int sc_cfg_dup(struct sc_cfg_ctx *c, const struct sc_yaml_node *n, const char *s, char **out)
{
    *out = NULL;
    if (s == NULL)
        return 0;
    *out = sc_cfg_arena_strndup(c->arena, s, strlen(s));
    if (*out == NULL)
        return sc_cfg_fail(c->e, SC_ENOMEM, n ? n->line : 1, n ? n->col : 1, "out of memory");
    return 0;
}

int sc_cfg_resolve(struct sc_cfg_ctx *c, const struct sc_yaml_node *n, const char *dir,
                   const char *rel, char **out)
{
    *out = NULL;
    if (rel == NULL)
        return 0;
    if (rel[0] == '/')
        return sc_cfg_dup(c, n, rel, out);
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    if (rel[0] == '\0' || strcmp(rel, ".") == 0)
        return sc_cfg_dup(c, n, dir, out);
    size_t dl = strlen(dir), rl = strlen(rel);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    if (dl + 1 + rl >= PATH_MAX)
        return sc_cfg_fail_at(c, n, "the path %.64s... is too long (at most %d bytes)", rel,
                              PATH_MAX - 1);
    char *p = sc_cfg_arena_alloc(c->arena, dl + 1 + rl + 1);
    if (p == NULL)
        return sc_cfg_fail(c->e, SC_ENOMEM, n ? n->line : 1, n ? n->col : 1, "out of memory");
    memcpy(p, dir, dl);
    size_t at = dl;
    if (!(dl == 1 && dir[0] == '/'))
        p[at++] = '/';
    memcpy(p + at, rel, rl + 1);
    *out = p;
    return 0;
}

bool sc_cfg_is_ip_literal(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool sc_cfg_is_host(const char *s)
{
    if (sc_cfg_is_ip_literal(s))
        return true;
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char ch = s[i];
        if (ch == '.' || ch == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
        if (!ok || (label == 0 && ch == '-'))
            return false;
        label++;
    }
    return true;
}

bool sc_cfg_is_ws_path(const char *s)
{
    if (s == NULL || s[0] != '/' || strlen(s) > 1024)
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (*p <= ' ' || *p > '~')
            return false;
    return true;
}

int sc_cfg_check_proxy(struct sc_cfg_ctx *c, const struct sc_yaml_node *n, const char *key,
                       const char *url)
{
    struct evhttp_uri *u = evhttp_uri_parse_with_flags(url, 0);
    bool ok = u != NULL && evhttp_uri_get_scheme(u) != NULL &&
              strcasecmp(evhttp_uri_get_scheme(u), "http") == 0 && evhttp_uri_get_host(u) != NULL &&
              evhttp_uri_get_host(u)[0] != '\0' && evhttp_uri_get_port(u) != 0 &&
              evhttp_uri_get_query(u) == NULL && evhttp_uri_get_fragment(u) == NULL &&
              (evhttp_uri_get_path(u) == NULL || evhttp_uri_get_path(u)[0] == '\0' ||
               strcmp(evhttp_uri_get_path(u), "/") == 0);
    if (u != NULL)
        evhttp_uri_free(u);
    if (!ok) /* the URL is not repeated: it may carry a password */
        return sc_cfg_fail_at(c, n, "%s must be a URL of the form http://[user:password@]host:port",
                              key);
    return 0;
}
