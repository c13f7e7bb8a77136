/* relay/config_yaml.c — turns configuration bytes into a bounded tree of
 * YAML nodes with 1-based line:column marks, using libyaml's event API.
 * Refuses aliases, tags, several documents, tabs in indentation, and trees
 * deeper or larger than the bounds in config_yaml.h. Never interprets a key;
 * never touches the file system. */
#include "relay/config_yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* ---- arena ------------------------------------------------------------------ */

#define ARENA_BLOCK_BYTES 16384u
#define ARENA_ALIGN 16u

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
};

struct sc_relay_config_arena {
    struct arena_block *blocks; /* the first one is being filled */
};

struct sc_relay_config_arena *sc_cfg_arena_new(void)
{
    return calloc(1, sizeof(struct sc_relay_config_arena));
}

void *sc_cfg_arena_alloc(struct sc_relay_config_arena *arena, size_t n)
{
    if (arena == NULL || n > SIZE_MAX / 2)
        return NULL;
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (n == 0)
        n = ARENA_ALIGN;
    struct arena_block *b = arena->blocks;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK_BYTES ? n : ARENA_BLOCK_BYTES;
        struct arena_block *nb = calloc(1, sizeof *nb + cap);
        if (nb == NULL)
            return NULL;
        nb->cap = cap;
        if (b != NULL && n > ARENA_BLOCK_BYTES) {
            /* a large one-off: keep filling the current block afterwards */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            arena->blocks = nb;
        }
        b = nb;
    }
    void *p = (unsigned char *)b->data + b->used;
    b->used += n;
    return p;
}

char *sc_cfg_arena_strndup(struct sc_relay_config_arena *arena, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = sc_cfg_arena_alloc(arena, n + 1);
    if (p != NULL && n > 0)
        memcpy(p, s, n);
    return p;
}

void sc_cfg_arena_free(struct sc_relay_config_arena *arena)
{
    if (arena == NULL)
        return;
    struct arena_block *b = arena->blocks;
    while (b != NULL) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(arena);
}

/* ---- errors --------------------------------------------------------------------- */

int sc_cfg_fail(struct sc_cfg_err *e, int code, uint32_t line, uint32_t col, const char *fmt, ...)
{
    if (e == NULL || e->set)
        return code;
    e->set = true;
    if (e->buf == NULL || e->len == 0)
        return code;
    int n = snprintf(e->buf, e->len, "%s:%u:%u: ", e->name ? e->name : "<config>",
                     (unsigned)(line ? line : 1), (unsigned)(col ? col : 1));
    if (n >= 0 && (size_t)n < e->len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->buf + n, e->len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    /* One line whatever the file said. */
    for (char *p = e->buf; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return code;
}

/* ---- positions in the raw text ------------------------------------------------- */

/* Byte offset of the start of 0-based line `line`, or len if there is none. */
static size_t line_start(const char *text, size_t len, size_t line)
{
    size_t off = 0;
    while (line > 0 && off < len) {
        const char *nl = memchr(text + off, '\n', len - off);
        if (nl == NULL)
            return len;
        off = (size_t)(nl - text) + 1;
        line--;
    }
    return off;
}

/* 1-based line and character column of a byte offset. */
static void offset_mark(const char *text, size_t len, size_t off, uint32_t *line, uint32_t *col)
{
    uint32_t l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xc0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* If 0-based line `line` is indented with a tab, reports it there. */
static bool tab_in_indent(const char *text, size_t len, size_t line, struct sc_cfg_err *e)
{
    size_t off = line_start(text, len, line);
    for (size_t i = off; i < len && (text[i] == ' ' || text[i] == '\t'); i++) {
        if (text[i] == '\t') {
            sc_cfg_fail(e, SC_EFORMAT, (uint32_t)line + 1, (uint32_t)(i - off) + 1,
                        "tabs are not allowed for indentation; indent with spaces");
            return true;
        }
    }
    return false;
}

/* If the character at (0-based) line:column is a tab, reports it there. */
static bool tab_at(const char *text, size_t len, size_t line, size_t column, struct sc_cfg_err *e)
{
    size_t off = line_start(text, len, line), chars = 0;
    while (off < len && text[off] != '\n') {
        if (((unsigned char)text[off] & 0xc0) != 0x80) {
            if (chars == column)
                break;
            chars++;
        }
        off++;
    }
    if (off >= len || text[off] != '\t' || chars != column)
        return false;
    sc_cfg_fail(e, SC_EFORMAT, (uint32_t)line + 1, (uint32_t)column + 1,
                "tabs are not allowed for indentation; indent with spaces");
    return true;
}

static int parser_error(const yaml_parser_t *p, const char *text, size_t len, struct sc_cfg_err *e)
{
    if (p->error == YAML_MEMORY_ERROR)
        return sc_cfg_fail(e, SC_ENOMEM, 1, 1, "out of memory while reading YAML");
    if (p->error == YAML_READER_ERROR) {
        uint32_t line, col;
        offset_mark(text, len, p->problem_offset, &line, &col);
        if (p->problem_value >= 0)
            return sc_cfg_fail(e, SC_EFORMAT, line, col, "%s (byte 0x%02x)",
                               p->problem ? p->problem : "unreadable input",
                               (unsigned)p->problem_value & 0xffu);
        return sc_cfg_fail(e, SC_EFORMAT, line, col, "%s",
                           p->problem ? p->problem : "unreadable input");
    }
    size_t pline = p->problem_mark.line;
    /* libyaml's message for a tab in indentation is "found character that
     * cannot start any token"; say what is wrong instead. The tab may sit in
     * the indentation of the problem's line, at the problem itself (after
     * "- "), or, for a parser error, in the indentation of the line before. */
    if (tab_in_indent(text, len, pline, e) || tab_at(text, len, pline, p->problem_mark.column, e))
        return SC_EFORMAT;
    if (p->error == YAML_PARSER_ERROR && pline > 0 && tab_in_indent(text, len, pline - 1, e))
        return SC_EFORMAT;
    uint32_t line = (uint32_t)pline + 1, col = (uint32_t)p->problem_mark.column + 1;
    const char *problem = p->problem ? p->problem : "syntax error";
    if (p->context != NULL)
        return sc_cfg_fail(e, SC_EFORMAT, line, col, "YAML syntax error: %s (%s at %u:%u)", problem,
                           p->context, (unsigned)p->context_mark.line + 1,
                           (unsigned)p->context_mark.column + 1);
    return sc_cfg_fail(e, SC_EFORMAT, line, col, "YAML syntax error: %s", problem);
}

/* ---- the tree ----------------------------------------------------------------------- */

bool sc_yaml_is_null(const struct sc_yaml_node *n)
{
    if (n == NULL)
        return true;
    if (n->kind != SC_YAML_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
           strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

struct builder {
    struct sc_relay_config_arena *arena;
    struct sc_cfg_err *e;
    struct sc_yaml_node *stack[SC_YAML_MAX_DEPTH];
    size_t depth;
    size_t nodes;
    struct sc_yaml_node *root;
};

static int new_node(struct builder *b, enum sc_yaml_kind kind, const yaml_mark_t *m,
                    struct sc_yaml_node **out)
{
    uint32_t line = (uint32_t)m->line + 1, col = (uint32_t)m->column + 1;
    if (b->nodes >= SC_YAML_MAX_NODES)
        return sc_cfg_fail(b->e, SC_ETOOBIG, line, col, "too many YAML nodes (at most %u)",
                           SC_YAML_MAX_NODES);
    struct sc_yaml_node *n = sc_cfg_arena_alloc(b->arena, sizeof *n);
    if (n == NULL)
        return sc_cfg_fail(b->e, SC_ENOMEM, line, col, "out of memory");
    b->nodes++;
    n->kind = kind;
    n->line = line;
    n->col = col;
    if (b->depth == 0) {
        b->root = n;
    } else {
        struct sc_yaml_node *parent = b->stack[b->depth - 1];
        if (parent->last != NULL)
            parent->last->next = n;
        else
            parent->first = n;
        parent->last = n;
        parent->count++;
    }
    *out = n;
    return 0;
}

static int no_tag(struct builder *b, const yaml_char_t *tag, const yaml_mark_t *m)
{
    if (tag == NULL)
        return 0;
    return sc_cfg_fail(b->e, SC_EFORMAT, (uint32_t)m->line + 1, (uint32_t)m->column + 1,
                       "YAML tags such as '%.40s' are not supported; write the plain value",
                       (const char *)tag);
}

/* Handles one event; sets *done at the end of the stream. */
static int on_event(struct builder *b, const yaml_event_t *ev, size_t *documents, bool *done)
{
    const yaml_mark_t *m = &ev->start_mark;
    struct sc_yaml_node *n;
    int rc;

    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        *done = true;
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++*documents > 1)
            return sc_cfg_fail(b->e, SC_EFORMAT, (uint32_t)m->line + 1, (uint32_t)m->column + 1,
                               "only one YAML document is allowed in a configuration");
        return 0;
    case YAML_ALIAS_EVENT:
        return sc_cfg_fail(b->e, SC_EFORMAT, (uint32_t)m->line + 1, (uint32_t)m->column + 1,
                           "YAML aliases (*%.40s) are not supported; write the value out",
                           (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        if ((rc = no_tag(b, ev->data.scalar.tag, m)) != 0)
            return rc;
        if ((rc = new_node(b, SC_YAML_SCALAR, m, &n)) != 0)
            return rc;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n->len = ev->data.scalar.length;
        n->text = sc_cfg_arena_strndup(b->arena, (const char *)ev->data.scalar.value, n->len);
        if (n->text == NULL)
            return sc_cfg_fail(b->e, SC_ENOMEM, n->line, n->col, "out of memory");
        return 0;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        rc = no_tag(b,
                    ev->type == YAML_MAPPING_START_EVENT ? ev->data.mapping_start.tag
                                                         : ev->data.sequence_start.tag,
                    m);
        if (rc != 0)
            return rc;
        if (b->depth >= SC_YAML_MAX_DEPTH)
            return sc_cfg_fail(b->e, SC_EFORMAT, (uint32_t)m->line + 1, (uint32_t)m->column + 1,
                               "lists and mappings nested deeper than %u levels",
                               SC_YAML_MAX_DEPTH);
        rc = new_node(b, ev->type == YAML_MAPPING_START_EVENT ? SC_YAML_MAP : SC_YAML_LIST, m, &n);
        if (rc != 0)
            return rc;
        b->stack[b->depth++] = n;
        return 0;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth > 0)
            b->depth--;
        return 0;
    default: /* stream start, document end, no event */
        return 0;
    }
}

int sc_yaml_load(struct sc_relay_config_arena *arena, const char *text, size_t len,
                 struct sc_cfg_err *e, struct sc_yaml_node **root)
{
    *root = NULL;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return sc_cfg_fail(e, SC_ENOMEM, 1, 1, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    /* libyaml would guess UTF-16 from a byte order mark; configs are UTF-8. */
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);

    struct builder b = {.arena = arena, .e = e};
    size_t documents = 0;
    bool done = false;
    int rc = 0;
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = parser_error(&parser, text, len, e);
            break;
        }
        rc = on_event(&b, &ev, &documents, &done);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (rc != 0)
        return rc;
    *root = sc_yaml_is_null(b.root) ? NULL : b.root;
    return 0;
}
