/* relay/config_schema.h — the table-driven key decoder shared by
 * config_schema.c (sections) and config_peers.c (listen:, relays:). A section
 * is a table of keys; decoding a YAML mapping against it checks names,
 * duplicates, types and ranges, and remembers where each key was given.
 * Pure: no file system, no network. */
#ifndef SC_RELAY_CONFIG_SCHEMA_H
#define SC_RELAY_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay/config.h"
#include "relay/config_yaml.h"

struct sc_cfg_ctx {
    struct sc_relay_config_arena *arena;
    struct sc_cfg_err *e;
    struct sc_relay_config *cfg;
    const char *base_dir;
    /* the top-level key of each section (config_sections.c's order), NULL
     * when absent */
    const struct sc_yaml_node *section_key[16];
    const struct sc_yaml_node *manager_key;
};

enum sc_cfg_kind {
    SC_CFG_BOOL,
    SC_CFG_U16,
    SC_CFG_U32,
    SC_CFG_U64,
    SC_CFG_STR,    /* char *, NULL for "" or a null */
    SC_CFG_ENUM,   /* an enum field; value = index in `names` */
    SC_CFG_CUSTOM, /* `custom` decodes and stores */
};

struct sc_cfg_key;
typedef int (*sc_cfg_custom_fn)(struct sc_cfg_ctx *c, const struct sc_cfg_key *k, void *base,
                                const struct sc_yaml_node *val);

struct sc_cfg_key {
    const char *name;
    enum sc_cfg_kind kind;
    size_t off;
    uint64_t min, max;        /* integers, inclusive */
    const char *const *names; /* SC_CFG_ENUM: NULL-terminated */
    sc_cfg_custom_fn custom;  /* SC_CFG_CUSTOM */
};

#define SC_CFG_MAX_KEYS 48

/* Where one key was given in a mapping (both NULL when it was not). */
struct sc_cfg_given {
    const struct sc_yaml_node *key, *val;
};

struct sc_cfg_section {
    const char *label; /* for messages: "connection_manager", "a relay" */
    const struct sc_cfg_key *keys;
    size_t nkeys;
    struct sc_cfg_given given[SC_CFG_MAX_KEYS];
};

/* Decodes `map` (a mapping, a null, or NULL) into base by the section's keys.
 * Returns 0 or the first error. */
int sc_cfg_apply_map(struct sc_cfg_ctx *c, struct sc_cfg_section *s, const struct sc_yaml_node *map,
                     void *base) SC_MUST_CHECK;
/* The key node where `name` was given in the section, or NULL. */
const struct sc_yaml_node *sc_cfg_given_key(const struct sc_cfg_section *s, const char *name);
const struct sc_yaml_node *sc_cfg_given_val(const struct sc_cfg_section *s, const char *name);

/* Fails at node n (or at 1:1 when n is NULL). */
int sc_cfg_fail_at(struct sc_cfg_ctx *c, const struct sc_yaml_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Typed scalars, with "NAME must be …, found …" messages at v. */
int sc_cfg_want_uint(struct sc_cfg_ctx *c, const char *name, const struct sc_yaml_node *v,
                     uint64_t min, uint64_t max, uint64_t *out) SC_MUST_CHECK;
/* NULL for "" or a null; no control characters, at most 4095 bytes. */
int sc_cfg_want_string(struct sc_cfg_ctx *c, const char *name, const struct sc_yaml_node *v,
                       char **out) SC_MUST_CHECK;
/* The entry of `names` closest to `name` (at most two edits), or NULL. */
const char *sc_cfg_closest(const char *name, const char *const *names, size_t n);

/* Describes a value for "found …" in messages: "a list", "'abc'", … */
const char *sc_cfg_found(const struct sc_yaml_node *v, char *buf, size_t len);

/* A copy owned by the config's arena (NULL in, NULL out); sets *out and
 * returns 0, or fails at n. */
int sc_cfg_dup(struct sc_cfg_ctx *c, const struct sc_yaml_node *n, const char *s,
               char **out) SC_MUST_CHECK;
/* rel made absolute against dir ("." is dir itself); NULL stays NULL. */
int sc_cfg_resolve(struct sc_cfg_ctx *c, const struct sc_yaml_node *n, const char *dir,
                   const char *rel, char **out) SC_MUST_CHECK;

bool sc_cfg_is_ip_literal(const char *s);
/* An IP literal or a DNS host name (labels of letters, digits, '-', '_'). */
bool sc_cfg_is_host(const char *s);
/* Checks a websocket resource path: '/' then printable ASCII, no spaces. */
bool sc_cfg_is_ws_path(const char *s);
/* Checks an http:// proxy URL; never echoes it (it may hold a password). */
int sc_cfg_check_proxy(struct sc_cfg_ctx *c, const struct sc_yaml_node *n, const char *key,
                       const char *url) SC_MUST_CHECK;

/* listen: and relays: (config_peers.c); run after every other section. */
int sc_cfg_listeners(struct sc_cfg_ctx *c, const struct sc_yaml_node *list) SC_MUST_CHECK;
int sc_cfg_relays(struct sc_cfg_ctx *c, const struct sc_yaml_node *list) SC_MUST_CHECK;

/* The pure parse of a whole tree into cfg (config_sections.c); root may be
 * NULL (every default). */
int sc_cfg_build(struct sc_relay_config_arena *arena, const struct sc_yaml_node *root,
                 const char *base_dir, struct sc_cfg_err *e,
                 struct sc_relay_config *cfg) SC_MUST_CHECK;

#endif
