/* fuzz/fuzz_relay_control.c — libFuzzer target for one control-socket
 * request line (sc_control_rpc_handle) against a fake of relay/daemon.h
 * defined here. Any bytes give no response (a valid notification) or one
 * JSON-RPC 2.0 response with a result or an error of a documented code;
 * never a crash, a leak or a hang. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/control_rpc.h"
#include "relay/daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sc_daemon {
    int calls;
};

/* The fake fails every other call, so both paths are taken. */
static int outcome(struct sc_daemon *d, char *err, size_t errlen)
{
    if (++d->calls % 2 == 0)
        return 0;
    snprintf(err, errlen, "fake refusal %d", d->calls);
    return SC_ENOENT;
}

json_t *sc_daemon_status_json(struct sc_daemon *d)
{
    (void)d;
    return json_pack("{s:i}", "uptime_s", 1);
}

json_t *sc_daemon_peers_json(struct sc_daemon *d)
{
    (void)d;
    return json_array();
}

json_t *sc_daemon_explain_json(struct sc_daemon *d, const char *hex, char *err, size_t errlen)
{
    if (strlen(hex) != 64)
        abort(); /* the RPC layer checks relay IDs first */
    return outcome(d, err, errlen) == 0 ? json_pack("{s:s}", "text", "x") : NULL;
}

int sc_daemon_send(struct sc_daemon *d, const char *hex, const char *text, char id[33], char *err,
                   size_t errlen)
{
    if (strlen(hex) != 64 || text == NULL)
        abort();
    snprintf(id, 33, "%032d", 7);
    return outcome(d, err, errlen);
}

int sc_daemon_broadcast(struct sc_daemon *d, const char *text, char id[33], char *err,
                        size_t errlen)
{
    if (text == NULL)
        abort();
    snprintf(id, 33, "%032d", 8);
    return outcome(d, err, errlen) == 0 ? 2 : SC_ENOENT;
}

int sc_daemon_connect(struct sc_daemon *d, const char *hex, char *err, size_t errlen)
{
    (void)hex;
    return outcome(d, err, errlen);
}

int sc_daemon_disconnect(struct sc_daemon *d, const char *hex, char *err, size_t errlen)
{
    (void)hex;
    return outcome(d, err, errlen);
}

int sc_daemon_reload(struct sc_daemon *d, char *err, size_t errlen)
{
    return outcome(d, err, errlen);
}

int sc_daemon_rotate_link_key(struct sc_daemon *d, char *err, size_t errlen)
{
    return outcome(d, err, errlen);
}

static int watch(void *arg)
{
    (void)arg;
    return 0;
}

static void check_response(json_t *r)
{
    if (!json_is_object(r) || strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") != 0)
        abort();
    json_t *id = json_object_get(r, "id");
    if (!json_is_string(id) && !json_is_number(id) && !json_is_null(id))
        abort();
    json_t *e = json_object_get(r, "error");
    if ((json_object_get(r, "result") != NULL) == (e != NULL))
        abort();
    if (e != NULL) {
        json_int_t code = json_integer_value(json_object_get(e, "code"));
        if (code != -32700 && code != -32600 && code != -32601 && code != -32602 &&
            code != -32603 && code != -32000)
            abort();
        if (!json_is_string(json_object_get(e, "message")))
            abort();
    }
    char *text = json_dumps(r, JSON_COMPACT);
    if (text == NULL || strchr(text, '\n') != NULL)
        abort();
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sc_daemon fake;
    const struct sc_control_rpc_client who = {&fake, watch, NULL};
    json_t *r = NULL;
    if (sc_control_rpc_handle(&who, (const char *)data, size, &r) != 0)
        abort(); /* only when out of memory */
    if (r != NULL)
        check_response(r);
    json_decref(r);
    return 0;
}
