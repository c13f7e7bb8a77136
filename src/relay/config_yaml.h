/* relay/config_yaml.h — internals shared by the config files: an arena that
 * owns a parse's memory, the bounded YAML node tree built from libyaml's
 * events (with 1-based marks), and one-line "FILE:LINE:COL: message" errors.
 * Nothing here knows a configuration key. */
#ifndef SC_RELAY_CONFIG_YAML_H
#define SC_RELAY_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secirc/error.h"

/* Deepest nesting of mappings and lists accepted (the schema needs 3). */
#define SC_YAML_MAX_DEPTH 16u
/* Most nodes in one document (scalars, lists and mappings). */
#define SC_YAML_MAX_NODES 262144u

struct sc_relay_config_arena;

/* An empty arena; NULL when out of memory. */
struct sc_relay_config_arena *sc_cfg_arena_new(void);
/* Zeroed, suitably aligned memory owned by the arena; NULL when out of memory. */
void *sc_cfg_arena_alloc(struct sc_relay_config_arena *arena, size_t n);
/* A NUL-terminated copy of s[0..n); NULL when out of memory. */
char *sc_cfg_arena_strndup(struct sc_relay_config_arena *arena, const char *s, size_t n);
/* Frees every allocation of the arena, and the arena. Accepts NULL. */
void sc_cfg_arena_free(struct sc_relay_config_arena *arena);

enum sc_yaml_kind {
    SC_YAML_SCALAR,
    SC_YAML_LIST,
    SC_YAML_MAP,
};

struct sc_yaml_node {
    enum sc_yaml_kind kind;
    uint32_t line, col; /* 1-based start of the node */
    bool plain;         /* scalar written without quotes */
    const char *text;   /* scalar: NUL-terminated (may also hold NULs) */
    size_t len;
    /* LIST: items; MAP: key, value, key, value, … */
    struct sc_yaml_node *first, *last, *next;
    size_t count; /* children (a MAP has 2 per pair) */
};

/* One error message, written once. */
struct sc_cfg_err {
    const char *name;
    char *buf;
    size_t len;
    bool set;
};

/* Writes "NAME:LINE:COL: message" (first call only; control characters
 * become '?') and returns `code`. */
int sc_cfg_fail(struct sc_cfg_err *e, int code, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Builds the node tree of a one-document YAML stream. *root is NULL for an
 * empty stream or a document that is only a null. Errors (libyaml's, tabs
 * in indentation, aliases, tags, more than one document, the depth and node
 * bounds) go to e with their position. */
int sc_yaml_load(struct sc_relay_config_arena *arena, const char *text, size_t len,
                 struct sc_cfg_err *e, struct sc_yaml_node **root) SC_MUST_CHECK;

/* True for a plain null scalar: empty, "~", "null", "Null" or "NULL". */
bool sc_yaml_is_null(const struct sc_yaml_node *n);

#endif
