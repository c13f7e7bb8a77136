/* relay/control_rpc.c — JSON-RPC 2.0 for the control socket: a request line
 * checked strictly (spec section 4), its method looked up, its params
 * checked by name, the relay/daemon.h call made and its answer or error
 * wrapped. Never trusts the line, never echoes more than a bounded part of
 * it, and never answers a valid notification. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/control_rpc.h"
#include "relay/daemon.h"
#include "util/hex.h"

/* Longest method or param name repeated in an error message. */
#define ECHO_MAX_BYTES 64u

struct rpc_error {
    int code;
    char message[512];
};

static void set_error(struct rpc_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(struct rpc_error *e, int code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* The daemon's message, or the error code's text when it left none. */
static void set_failed(struct rpc_error *e, int rc, const char *daemon_err)
{
    set_error(e, SC_CONTROL_RPC_FAILED, "%s", daemon_err[0] != '\0' ? daemon_err : sc_strerror(rc));
}

/* Copies at most ECHO_MAX_BYTES of a valid UTF-8 string, cut on a
 * character boundary, with "..." when cut. */
static void echo(const char *s, char out[ECHO_MAX_BYTES + 4])
{
    size_t n = strlen(s);
    if (n <= ECHO_MAX_BYTES) {
        memcpy(out, s, n + 1);
        return;
    }
    n = ECHO_MAX_BYTES;
    while (n > 0 && ((unsigned char)s[n] & 0xC0u) == 0x80u)
        n--; /* s[n] continues a character: cut before it */
    memcpy(out, s, n);
    memcpy(out + n, "...", 4);
}

/* ---- params ---------------------------------------------------------------------------- */

enum param_kind {
    PARAM_RELAY_ID, /* 64 hex digits (either case), passed on in lowercase */
    PARAM_MESSAGE,  /* any JSON value */
};

struct param {
    const char *name;
    enum param_kind kind;
};

struct args {
    char relay_id[SC_RELAY_ID_HEX_LEN + 1];
    json_t *message; /* borrowed from the request */
};

struct method {
    const char *name;
    const struct param *params; /* all required */
    size_t n_params;
    const char *takes; /* for messages: "takes none", "takes 'relay_id'" */
    json_t *(*run)(const struct sc_control_rpc_client *cl, const struct args *a,
                   struct rpc_error *e);
};

static int take_relay_id(const char *name, json_t *v, struct args *a, struct rpc_error *e)
{
    uint8_t id[SC_RELAY_ID_BYTES];
    const char *s = json_string_value(v);
    if (s == NULL || json_string_length(v) != SC_RELAY_ID_HEX_LEN ||
        sc_hex_decode(s, SC_RELAY_ID_HEX_LEN, id, sizeof id) != 0) {
        set_error(e, SC_CONTROL_RPC_INVALID_PARAMS,
                  "invalid param '%s': must be a relay ID, a string of 64 hex digits", name);
        return -1;
    }
    sc_hex_encode(id, sizeof id, a->relay_id);
    return 0;
}

/* Checks params against the method's list (by name only), filling `a`. */
static int take_params(const struct method *m, json_t *params, struct args *a,
                       struct rpc_error *e)
{
    memset(a, 0, sizeof *a);
    if (params == NULL || (json_is_array(params) && json_array_size(params) == 0)) {
        if (m->n_params == 0)
            return 0;
        set_error(e, SC_CONTROL_RPC_INVALID_PARAMS, "missing param '%s'; %s %s", m->params[0].name,
                  m->name, m->takes);
        return -1;
    }
    if (!json_is_object(params)) {
        set_error(e, SC_CONTROL_RPC_INVALID_PARAMS,
                  "params must be an object (params by name); %s %s", m->name, m->takes);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v) {
        bool known = false;
        for (size_t i = 0; i < m->n_params; i++)
            known = known || strcmp(key, m->params[i].name) == 0;
        if (!known) {
            char k[ECHO_MAX_BYTES + 4];
            echo(key, k);
            set_error(e, SC_CONTROL_RPC_INVALID_PARAMS, "unknown param '%s'; %s %s", k, m->name,
                      m->takes);
            return -1;
        }
    }
    for (size_t i = 0; i < m->n_params; i++) {
        const struct param *p = &m->params[i];
        v = json_object_get(params, p->name);
        if (v == NULL) {
            set_error(e, SC_CONTROL_RPC_INVALID_PARAMS, "missing param '%s'; %s %s", p->name,
                      m->name, m->takes);
            return -1;
        }
        if (p->kind == PARAM_RELAY_ID) {
            if (take_relay_id(p->name, v, a, e) != 0)
                return -1;
        } else {
            a->message = v;
        }
    }
    return 0;
}

/* ---- methods --------------------------------------------------------------------------- */

static json_t *must(json_t *result, struct rpc_error *e)
{
    if (result == NULL)
        set_error(e, SC_CONTROL_RPC_INTERNAL_ERROR, "out of memory");
    return result;
}

static json_t *run_status(const struct sc_control_rpc_client *cl, const struct args *a,
                          struct rpc_error *e)
{
    (void)a;
    return must(sc_daemon_status_json(cl->daemon), e);
}

static json_t *run_peers(const struct sc_control_rpc_client *cl, const struct args *a,
                         struct rpc_error *e)
{
    (void)a;
    return must(sc_daemon_peers_json(cl->daemon), e);
}

static json_t *run_explain(const struct sc_control_rpc_client *cl, const struct args *a,
                           struct rpc_error *e)
{
    char err[512] = "";
    json_t *r = sc_daemon_explain_json(cl->daemon, a->relay_id, err, sizeof err);
    if (r == NULL)
        set_failed(e, SC_EINVAL, err);
    return r;
}

static json_t *relay_id_result(const struct args *a, struct rpc_error *e)
{
    return must(json_pack("{s:s}", "relay_id", a->relay_id), e);
}

static json_t *run_connect(const struct sc_control_rpc_client *cl, const struct args *a,
                           struct rpc_error *e)
{
    char err[512] = "";
    int rc = sc_daemon_connect(cl->daemon, a->relay_id, err, sizeof err);
    if (rc < 0) {
        set_failed(e, rc, err);
        return NULL;
    }
    return relay_id_result(a, e);
}

static json_t *run_disconnect(const struct sc_control_rpc_client *cl, const struct args *a,
                              struct rpc_error *e)
{
    char err[512] = "";
    int rc = sc_daemon_disconnect(cl->daemon, a->relay_id, err, sizeof err);
    if (rc < 0) {
        set_failed(e, rc, err);
        return NULL;
    }
    return relay_id_result(a, e);
}

/* The message as compact JSON text, as the daemon takes it. */
static char *message_text(const struct args *a, struct rpc_error *e)
{
    char *text = json_dumps(a->message, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        set_error(e, SC_CONTROL_RPC_INTERNAL_ERROR, "out of memory");
    return text;
}

static json_t *run_send(const struct sc_control_rpc_client *cl, const struct args *a,
                        struct rpc_error *e)
{
    char *text = message_text(a, e);
    if (text == NULL)
        return NULL;
    char id[33] = "", err[512] = "";
    int rc = sc_daemon_send(cl->daemon, a->relay_id, text, id, err, sizeof err);
    free(text);
    if (rc < 0) {
        set_failed(e, rc, err);
        return NULL;
    }
    return must(json_pack("{s:s}", "id", id), e);
}

static json_t *run_broadcast(const struct sc_control_rpc_client *cl, const struct args *a,
                             struct rpc_error *e)
{
    char *text = message_text(a, e);
    if (text == NULL)
        return NULL;
    char id[33] = "", err[512] = "";
    int n = sc_daemon_broadcast(cl->daemon, text, id, err, sizeof err);
    free(text);
    if (n < 0) {
        set_failed(e, n, err);
        return NULL;
    }
    return must(json_pack("{s:s,s:i}", "id", id, "peers", (json_int_t)n), e);
}

static json_t *run_watch(const struct sc_control_rpc_client *cl, const struct args *a,
                         struct rpc_error *e)
{
    (void)a;
    int rc = cl->watch(cl->arg);
    if (rc < 0) {
        set_failed(e, rc, "");
        return NULL;
    }
    return must(json_pack("{s:b}", "watching", 1), e);
}

static json_t *run_reload(const struct sc_control_rpc_client *cl, const struct args *a,
                          struct rpc_error *e)
{
    (void)a;
    char err[512] = "";
    int rc = sc_daemon_reload(cl->daemon, err, sizeof err);
    if (rc < 0) {
        set_failed(e, rc, err);
        return NULL;
    }
    return must(json_pack("{s:b}", "reloaded", 1), e);
}

static json_t *run_rotate_link_key(const struct sc_control_rpc_client *cl, const struct args *a,
                                   struct rpc_error *e)
{
    (void)a;
    char err[512] = "";
    int rc = sc_daemon_rotate_link_key(cl->daemon, err, sizeof err);
    if (rc < 0) {
        set_failed(e, rc, err);
        return NULL;
    }
    return must(json_pack("{s:b}", "rotated", 1), e);
}

static const struct param relay_id_param[] = {{"relay_id", PARAM_RELAY_ID}};
static const struct param send_params[] = {{"to", PARAM_RELAY_ID}, {"message", PARAM_MESSAGE}};
static const struct param broadcast_params[] = {{"message", PARAM_MESSAGE}};

#define NONE NULL, 0, "takes no params"
static const struct method methods[] = {
    {"status", NONE, run_status},
    {"peers", NONE, run_peers},
    {"explain", relay_id_param, 1, "takes 'relay_id'", run_explain},
    {"connect", relay_id_param, 1, "takes 'relay_id'", run_connect},
    {"disconnect", relay_id_param, 1, "takes 'relay_id'", run_disconnect},
    {"send", send_params, 2, "takes 'to' and 'message'", run_send},
    {"broadcast", broadcast_params, 1, "takes 'message'", run_broadcast},
    {"watch", NONE, run_watch},
    {"reload", NONE, run_reload},
    {"rotate-link-key", NONE, run_rotate_link_key},
};
#undef NONE

/* ---- requests and responses ------------------------------------------------------------ */

static json_t *error_object(json_t *id, const struct rpc_error *e)
{
    return json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", id != NULL ? id : json_null(),
                     "error", "code", (json_int_t)e->code, "message", e->message);
}

json_t *sc_control_rpc_error(int code, const char *message)
{
    struct rpc_error e;
    set_error(&e, code, "%s", message);
    return error_object(NULL, &e);
}

json_t *sc_control_rpc_event(json_t *event)
{
    if (event == NULL)
        return NULL;
    return json_pack("{s:s,s:s,s:o}", "jsonrpc", "2.0", "method", "event", "params", event);
}

/* Checks the request object (spec section 4). Returns the method, or NULL
 * with e set; *id is the request's id when it is a valid one, else NULL. */
static const struct method *check_request(json_t *req, json_t **id, struct rpc_error *e)
{
    *id = NULL;
    if (json_is_array(req)) {
        set_error(e, SC_CONTROL_RPC_INVALID_REQUEST,
                  "batch requests are not supported; send one request per line");
        return NULL;
    }
    if (!json_is_object(req)) {
        set_error(e, SC_CONTROL_RPC_INVALID_REQUEST, "a request must be a JSON object");
        return NULL;
    }
    json_t *v = json_object_get(req, "id");
    if (v != NULL && !json_is_string(v) && !json_is_number(v) && !json_is_null(v)) {
        set_error(e, SC_CONTROL_RPC_INVALID_REQUEST, "id must be a string, a number or null");
        return NULL;
    }
    *id = v;
    v = json_object_get(req, "jsonrpc");
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
        set_error(e, SC_CONTROL_RPC_INVALID_REQUEST, "jsonrpc must be \"2.0\"");
        return NULL;
    }
    v = json_object_get(req, "method");
    if (!json_is_string(v)) {
        set_error(e, SC_CONTROL_RPC_INVALID_REQUEST, "method must be a string");
        return NULL;
    }
    json_t *params = json_object_get(req, "params");
    if (params != NULL && !json_is_object(params) && !json_is_array(params)) {
        set_error(e, SC_CONTROL_RPC_INVALID_REQUEST, "params must be an object or an array");
        return NULL;
    }
    const char *name = json_string_value(v);
    if (strlen(name) == json_string_length(v)) /* no NUL inside */
        for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
            if (strcmp(name, methods[i].name) == 0)
                return &methods[i];
    char shown[ECHO_MAX_BYTES + 4];
    echo(name, shown);
    set_error(e, SC_CONTROL_RPC_METHOD_NOT_FOUND, "method not found: '%s'", shown);
    return NULL;
}

int sc_control_rpc_handle(const struct sc_control_rpc_client *client, const char *line,
                          size_t len, json_t **response)
{
    *response = NULL;
    struct rpc_error e = {0, ""};
    json_error_t jerr;
    json_t *req = json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (req == NULL) {
        set_error(&e, SC_CONTROL_RPC_PARSE_ERROR, "parse error at column %d: %s", jerr.column,
                  jerr.text);
        *response = error_object(NULL, &e);
        return *response != NULL ? 0 : SC_ENOMEM;
    }
    json_t *id = NULL;
    const struct method *m = check_request(req, &id, &e);
    bool notification = json_is_object(req) && json_object_get(req, "id") == NULL;
    if (m == NULL && e.code == SC_CONTROL_RPC_INVALID_REQUEST) {
        /* answered even without an id: nobody could tell it was a notification */
        *response = error_object(id, &e);
        json_decref(req);
        return *response != NULL ? 0 : SC_ENOMEM;
    }
    json_t *result = NULL;
    struct args a;
    if (m != NULL && take_params(m, json_object_get(req, "params"), &a, &e) == 0)
        result = m->run(client, &a, &e);
    if (notification) {
        json_decref(result);
        json_decref(req);
        return 0;
    }
    if (result != NULL)
        *response = json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result", result);
    else
        *response = error_object(id, &e);
    json_decref(req);
    return *response != NULL ? 0 : SC_ENOMEM;
}
