/* relay/control_rpc.h — one JSON-RPC 2.0 request line of the control socket
 * made into a call of relay/daemon.h and a response object. No I/O and no
 * framing (relay/control.c does both); bad input always becomes an error
 * response, never a crash or an assertion. */
#ifndef SC_RELAY_CONTROL_RPC_H
#define SC_RELAY_CONTROL_RPC_H

#include <stddef.h>

#include <jansson.h>

#include "secirc/error.h"

/* JSON-RPC 2.0 error codes (https://www.jsonrpc.org/specification). */
#define SC_CONTROL_RPC_PARSE_ERROR (-32700)
#define SC_CONTROL_RPC_INVALID_REQUEST (-32600)
#define SC_CONTROL_RPC_METHOD_NOT_FOUND (-32601)
#define SC_CONTROL_RPC_INVALID_PARAMS (-32602)
#define SC_CONTROL_RPC_INTERNAL_ERROR (-32603)
#define SC_CONTROL_RPC_FAILED (-32000) /* the daemon refused; its message */

struct sc_daemon;

/* Who is asking: the daemon to call, and how to start `watch` for this
 * client (0, or a negative SC_E* code when it cannot). */
struct sc_control_rpc_client {
    struct sc_daemon *daemon;
    int (*watch)(void *arg);
    void *arg;
};

/* Handles one request line (`len` bytes, without its LF; need not be NUL
 * terminated). Sets *response to the response object (a new reference), or
 * to NULL for a notification (a request without "id"), which is run but
 * answered with nothing. Returns 0, or SC_ENOMEM when no response could be
 * built at all. */
int sc_control_rpc_handle(const struct sc_control_rpc_client *client, const char *line,
                          size_t len, json_t **response) SC_MUST_CHECK;

/* {"jsonrpc":"2.0","id":null,"error":{"code":code,"message":message}}, for
 * what the framing refuses before a request is parsed; NULL when out of
 * memory. */
json_t *sc_control_rpc_error(int code, const char *message);

/* The notification a watcher gets for one daemon event:
 * {"jsonrpc":"2.0","method":"event","params":event}; takes the reference to
 * `event`. NULL when out of memory. */
json_t *sc_control_rpc_event(json_t *event);

#endif
