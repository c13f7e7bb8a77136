/* cmd/secirc_ctl.c — the `secirc` commands that talk to a running secircd
 * over its control socket (status, peers, explain, connect, disconnect,
 * send, broadcast, watch, reload, rotate-link-key): arguments, one JSON-RPC
 * request on a blocking socket with a deadline, the result printed (human
 * text in secirc_ctl_print.c, or --json). Never changes the daemon's files. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cmd/cli.h"
#include "cmd/secirc_ctl.h"
#include "relay/config.h"
#include "secirc/identity.h"
#include "util/hex.h"

/* The socket's name in data_dir when control.socket is not given. */
#define DEFAULT_SOCKET_NAME "secircd.sock"
#define TIMEOUT_MS 10000
/* Longest response line accepted (a `peers` answer for thousands of paths
 * is a few MiB). */
#define RESPONSE_MAX_BYTES (64u * 1024u * 1024u)

enum operand { OPERAND_NONE, OPERAND_RELAY_ID, OPERAND_JSON };

struct ctl_command {
    const char *name;
    const char *method;
    enum operand operand;
    bool takes_to; /* send: --to ID */
    const char *synopsis;
    const char *description;
};

static const struct ctl_command ctl_commands[] = {
    {"status", "status", OPERAND_NONE, false, "status",
     "Prints the relay's status: relay ID, uptime, connection and peer counts,\n"
     "listeners and message counters.\n"},
    {"peers", "peers", OPERAND_NONE, false, "peers",
     "Prints one line per path (transport endpoint) to a peer: relay ID (first\n"
     "16 hex digits), transport, host:port, state, direction, latency, when it\n"
     "was last heard from, priority.\n"},
    {"explain", "explain", OPERAND_RELAY_ID, false, "explain RELAY_ID",
     "Says in one sentence why the relay RELAY_ID (64 hex digits) is or is not\n"
     "linked right now.\n"},
    {"connect", "connect", OPERAND_RELAY_ID, false, "connect RELAY_ID",
     "Asks the daemon to dial the paths of relay RELAY_ID now, ignoring backoff.\n"},
    {"disconnect", "disconnect", OPERAND_RELAY_ID, false, "disconnect RELAY_ID",
     "Closes the links to relay RELAY_ID now; its paths back off as after any\n"
     "failure and are dialed again later.\n"},
    {"send", "send", OPERAND_JSON, true, "send --to RELAY_ID JSON",
     "Sends the message JSON (any JSON value, e.g. '{\"type\":\"relay_message\",\n"
     "\"content\":\"hi\"}' or '\"text\"') to relay RELAY_ID and prints its message\n"
     "ID (32 hex digits). JSON is checked before it is sent.\n"},
    {"broadcast", "broadcast", OPERAND_JSON, false, "broadcast JSON",
     "Sends the message JSON (any JSON value) to every linked peer, which pass\n"
     "it on through the mesh; prints its message ID and how many peers it went\n"
     "to. JSON is checked before it is sent.\n"},
    {"watch", "watch", OPERAND_NONE, false, "watch",
     "Prints the daemon's events as they happen, one line each (messages for\n"
     "this relay, path state changes, undelivered messages, the onion service),\n"
     "until interrupted or the daemon closes the connection. No timeout.\n"
     "Standard error says when the events start; standard output has only\n"
     "events.\n"},
    {"reload", "reload", OPERAND_NONE, false, "reload",
     "Reloads the daemon's configuration file, as SIGHUP does. On an error the\n"
     "running configuration is kept and the error (FILE:LINE:COL) is printed.\n"},
    {"rotate-link-key", "rotate-link-key", OPERAND_NONE, false, "rotate-link-key",
     "Replaces the relay's link key now (the old one stays valid for the\n"
     "configured overlap), as the daemon does every key_rotation_interval.\n"},
};

static const char common_options[] =
    "\n"
    "  -s, --socket PATH   the daemon's control socket; default $SECIRC_SOCKET,\n"
    "                      else that of secircd run without --config:\n"
    "                      $SECIRC_DATA_DIR/" DEFAULT_SOCKET_NAME ", or without it\n"
    "                      ~/.local/share/secircd/" DEFAULT_SOCKET_NAME "\n"
    "  -c, --config FILE   use control.socket of this secircd configuration\n"
    "      --json          print the raw JSON result on one line%s\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 ok; 1 the daemon refused (its error is printed); 2 usage or\n"
    "configuration error; 3 the daemon cannot be reached (no socket, refused,\n"
    "%s).\n";

static void print_usage(FILE *out, const struct ctl_command *cmd)
{
    fprintf(out, "usage: secirc %s [--socket PATH | --config FILE] [--json]\n\n%s",
            cmd->synopsis, cmd->description);
    if (cmd->takes_to)
        fprintf(out, "\n  -t, --to RELAY_ID   the relay to send to (64 hex digits)");
    bool watch = strcmp(cmd->name, "watch") == 0;
    fprintf(out, common_options, watch ? " (one line per event)" : "",
            watch ? "or it closed the connection" : "or no answer within 10 s");
}

/* ---- arguments ------------------------------------------------------------------------- */

struct ctl_args {
    const struct ctl_command *cmd;
    const char *socket_path;
    const char *config_path;
    const char *to;
    const char *operand;
    bool json;
};

enum { PARSE_OK = -1 };

static bool valid_relay_id(const char *s)
{
    uint8_t id[SC_RELAY_ID_BYTES];
    return strlen(s) == SC_RELAY_ID_HEX_LEN &&
           sc_hex_decode(s, SC_RELAY_ID_HEX_LEN, id, sizeof id) == 0;
}

static int usage_error(const struct ctl_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const struct ctl_command *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "secirc %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    print_usage(stderr, cmd);
    return 2;
}

/* Returns PARSE_OK, or the exit status. */
static int parse_args(const struct ctl_command *cmd, int argc, char **argv, struct ctl_args *a)
{
    enum { OPT_JSON = 256 };
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'}, {"config", required_argument, NULL, 'c'},
        {"to", required_argument, NULL, 't'},     {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    opterr = 0;
    optind = 0; /* glibc: full re-initialisation */
    int c;
    while ((c = getopt_long(argc, argv, ":s:c:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            a->socket_path = optarg;
            break;
        case 'c':
            a->config_path = optarg;
            break;
        case 't':
            if (!cmd->takes_to)
                return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
            a->to = optarg;
            break;
        case OPT_JSON:
            a->json = true;
            break;
        case 'h':
            print_usage(stdout, cmd);
            return fflush(stdout) == 0 ? 0 : 1;
        case ':':
            return usage_error(cmd, "option '%s' needs an argument", argv[optind - 1]);
        default:
            return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    int want = cmd->operand == OPERAND_NONE ? 0 : 1;
    if (argc - optind > want)
        return usage_error(cmd, "unexpected argument '%s'", argv[optind + want]);
    if (argc - optind < want)
        return usage_error(cmd, "%s is missing",
                           cmd->operand == OPERAND_JSON ? "the JSON message" : "RELAY_ID");
    if (want == 1)
        a->operand = argv[optind];
    if (a->socket_path != NULL && a->config_path != NULL)
        return usage_error(cmd, "give --socket or --config, not both");
    if (a->socket_path != NULL && a->socket_path[0] == '\0')
        return usage_error(cmd, "--socket PATH must not be empty");
    if (cmd->takes_to && a->to == NULL)
        return usage_error(cmd, "--to RELAY_ID is required");
    if (a->to != NULL && !valid_relay_id(a->to))
        return usage_error(cmd, "--to must be a relay ID of 64 hex digits, not '%s'", a->to);
    if (cmd->operand == OPERAND_RELAY_ID && !valid_relay_id(a->operand))
        return usage_error(cmd, "RELAY_ID must be 64 hex digits, not '%s'", a->operand);
    return PARSE_OK;
}

/* $SECIRC_SOCKET, else the control socket of secircd run without --config:
 * control.socket's default in the embedded default's data directory. */
static void default_socket(char *path, size_t pathlen)
{
    const char *env = getenv("SECIRC_SOCKET");
    if (env != NULL && env[0] != '\0') {
        snprintf(path, pathlen, "%s", env);
        return;
    }
    char dir[1024];
    sc_relay_default_data_dir(dir, sizeof dir);
    if ((size_t)snprintf(path, pathlen, "%.1000s/%s", dir, DEFAULT_SOCKET_NAME) >= pathlen)
        path[0] = '\0'; /* too long for a socket path: reported as unreachable */
}

/* The socket path: --socket, else --config's control.socket, else
 * $SECIRC_SOCKET, else the default. Returns PARSE_OK or the exit status. */
static int resolve_socket(const struct ctl_args *a, char *path, size_t pathlen)
{
    const char *name = a->cmd->name;
    if (a->socket_path != NULL) {
        snprintf(path, pathlen, "%s", a->socket_path);
    } else if (a->config_path != NULL) {
        struct sc_relay_config *cfg = NULL;
        char err[1024];
        if (sc_relay_config_load(a->config_path, &cfg, err, sizeof err) != 0) {
            fprintf(stderr, "secirc %s: %s\n", name, err);
            return 2;
        }
        if (cfg->control.socket == NULL) {
            fprintf(stderr, "secirc %s: %s: the control socket is off (control.socket is empty)\n",
                    name, a->config_path);
            sc_relay_config_free(cfg);
            return 2;
        }
        snprintf(path, pathlen, "%s", cfg->control.socket);
        sc_relay_config_free(cfg);
    } else {
        default_socket(path, pathlen);
    }
    struct sockaddr_un sun;
    if (strlen(path) >= sizeof sun.sun_path) {
        fprintf(stderr, "secirc %s: socket path %s is too long (at most %zu bytes)\n", name, path,
                sizeof sun.sun_path - 1);
        return 2;
    }
    return PARSE_OK;
}

/* ---- the connection ------------------------------------------------------------------ */

struct conn {
    int fd;
    const char *path;
    const char *name; /* the command, for messages */
    char *buf;        /* bytes read and not yet returned as lines */
    size_t len, cap;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int unreachable(const struct conn *c, const char *what, int err)
{
    fprintf(stderr, "secirc %s: cannot reach secircd at %s: %s%s%s\n", c->name, c->path, what,
            err != 0 ? ": " : "", err != 0 ? strerror(err) : "");
    if (err == ENOENT || err == ECONNREFUSED)
        fprintf(stderr, "secirc %s: is secircd running? Give its socket with --socket PATH, "
                        "--config FILE or SECIRC_SOCKET\n",
                c->name);
    return 3;
}

/* The daemon was reached but went away or went quiet: also exit status 3. */
static int lost(const struct conn *c, const char *what)
{
    fprintf(stderr, "secirc %s: secircd at %s %s\n", c->name, c->path, what);
    return 3;
}

/* Connects with a send timeout (connect and writes honour it). PARSE_OK or
 * the exit status. */
static int conn_open(struct conn *c)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, c->path, strlen(c->path) + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return unreachable(c, "socket", errno);
    struct timeval tv = {TIMEOUT_MS / 1000, 0};
    if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
        return unreachable(c, "setsockopt", errno);
    if (connect(c->fd, (const struct sockaddr *)&sun, sizeof sun) != 0)
        return unreachable(c, "connect", errno);
    return PARSE_OK;
}

static int conn_send(struct conn *c, const char *text, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return unreachable(c, errno == EAGAIN ? "sending the request timed out" : "send",
                               errno == EAGAIN ? 0 : errno);
        off += (size_t)n;
    }
    return PARSE_OK;
}

/* Reads one line (LF cut off, NUL added; the caller frees it). deadline
 * < 0: none. Returns PARSE_OK, or the exit status (EOF, timeout, error, too
 * long) after printing why. */
static int conn_read_line(struct conn *c, int64_t deadline, char **line, size_t *len)
{
    size_t scanned = 0;
    for (;;) {
        char *lf = c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
        if (lf != NULL) {
            *len = (size_t)(lf - c->buf);
            *line = malloc(*len + 1);
            if (*line == NULL) {
                fprintf(stderr, "secirc %s: out of memory\n", c->name);
                return 1;
            }
            memcpy(*line, c->buf, *len);
            (*line)[*len] = '\0';
            memmove(c->buf, lf + 1, c->len - *len - 1);
            c->len -= *len + 1;
            return PARSE_OK;
        }
        scanned = c->len;
        if (c->len >= RESPONSE_MAX_BYTES) {
            fprintf(stderr, "secirc %s: the daemon's answer is over %u bytes\n", c->name,
                    RESPONSE_MAX_BYTES);
            return 1;
        }
        if (c->cap - c->len < 65536) {
            size_t ncap = c->cap == 0 ? 65536 : c->cap * 2;
            char *nb = realloc(c->buf, ncap + 1);
            if (nb == NULL) {
                fprintf(stderr, "secirc %s: out of memory\n", c->name);
                return 1;
            }
            c->buf = nb;
            c->cap = ncap;
        }
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return lost(c, "gave no answer within 10 s");
            wait = (int)left;
        }
        struct pollfd p = {c->fd, POLLIN, 0};
        int r = poll(&p, 1, wait);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return unreachable(c, "poll", errno);
        if (r == 0)
            continue; /* the deadline check above ends it */
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return unreachable(c, "recv", errno);
        if (n == 0)
            return lost(c, "closed the connection");
        c->len += (size_t)n;
    }
}

/* ---- the request ---------------------------------------------------------------------- */

/* Parses the JSON operand; exit status 2 with the position when invalid. */
static int parse_message(const struct ctl_args *a, json_t **out)
{
    json_error_t e;
    *out = json_loads(a->operand, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (*out != NULL)
        return PARSE_OK;
    fprintf(stderr, "secirc %s: the message is not valid JSON: line %d, column %d (byte %d): %s\n",
            a->cmd->name, e.line, e.column, e.position, e.text);
    return 2;
}

static json_t *build_params(const struct ctl_args *a, json_t *message)
{
    switch (a->cmd->operand) {
    case OPERAND_RELAY_ID:
        return json_pack("{s:s}", "relay_id", a->operand);
    case OPERAND_JSON:
        if (a->to != NULL)
            return json_pack("{s:s,s:O}", "to", a->to, "message", message);
        return json_pack("{s:O}", "message", message);
    case OPERAND_NONE:
    default:
        return json_object();
    }
}

/* The result of a response line, or NULL after printing the error (status
 * in *status). */
static json_t *take_result(struct conn *c, const char *line, size_t len, int *status)
{
    json_error_t e;
    json_t *resp = json_loadb(line, len, 0, &e);
    json_t *result = json_object_get(resp, "result");
    json_t *error = json_object_get(resp, "error");
    if (result != NULL) {
        json_incref(result);
        json_decref(resp);
        *status = 0;
        return result;
    }
    if (json_is_object(error)) {
        const char *msg = json_string_value(json_object_get(error, "message"));
        fprintf(stderr, "secirc %s: %s (error %lld)\n", c->name, msg != NULL ? msg : "error",
                (long long)json_integer_value(json_object_get(error, "code")));
    } else {
        fprintf(stderr, "secirc %s: the daemon at %s sent something that is not a response\n",
                c->name, c->path);
    }
    json_decref(resp);
    *status = 1;
    return NULL;
}

static int print_json_line(json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return -1;
    int rc = printf("%s\n", text) < 0 ? -1 : 0;
    free(text);
    return rc;
}

static int finish_output(const char *name)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "secirc %s: cannot write to standard output: %s\n", name, strerror(errno));
        return 1;
    }
    return 0;
}

static const char *str_or(json_t *v, const char *otherwise)
{
    const char *s = json_string_value(v);
    return s != NULL ? s : otherwise;
}

static void print_result(const struct ctl_args *a, json_t *result)
{
    const char *cmd = a->cmd->name;
    if (a->json) {
        if (print_json_line(result) != 0)
            fprintf(stderr, "secirc %s: out of memory\n", cmd);
    } else if (strcmp(cmd, "status") == 0) {
        sc_ctl_print_status(stdout, result);
    } else if (strcmp(cmd, "peers") == 0) {
        sc_ctl_print_peers(stdout, result, (uint64_t)time(NULL));
    } else if (strcmp(cmd, "explain") == 0) {
        const char *text = json_string_value(json_object_get(result, "text"));
        if (text != NULL)
            printf("%s\n", text);
        else
            (void)print_json_line(result);
    } else if (strcmp(cmd, "send") == 0) {
        printf("%s\n", str_or(json_object_get(result, "id"), "?"));
    } else if (strcmp(cmd, "broadcast") == 0) {
        json_int_t n = json_integer_value(json_object_get(result, "peers"));
        printf("%s (sent to %lld peer%s)\n",
               str_or(json_object_get(result, "id"), "?"), (long long)n,
               n == 1 ? "" : "s");
    } else if (strcmp(cmd, "connect") == 0) {
        printf("dialing %s\n", a->operand);
    } else if (strcmp(cmd, "disconnect") == 0) {
        printf("disconnected %s\n", a->operand);
    } else if (strcmp(cmd, "reload") == 0) {
        printf("configuration reloaded\n");
    } else if (strcmp(cmd, "rotate-link-key") == 0) {
        printf("link key rotated\n");
    }
}

/* After `watch` answered: one line per event until the daemon hangs up.
 * Standard error says when the events start (standard output has only
 * events). */
static int watch_events(struct conn *c, const struct ctl_args *a)
{
    fprintf(stderr, "secirc watch: watching secircd at %s\n", c->path);
    for (;;) {
        char *line = NULL;
        size_t len = 0;
        int st = conn_read_line(c, -1, &line, &len);
        if (st != PARSE_OK)
            return st;
        json_t *msg = json_loadb(line, len, 0, NULL);
        free(line);
        const char *method = json_string_value(json_object_get(msg, "method"));
        json_t *event = json_object_get(msg, "params");
        if (method != NULL && strcmp(method, "event") == 0 && event != NULL) {
            if (a->json)
                (void)print_json_line(event);
            else
                sc_ctl_print_event(stdout, event, time(NULL));
            if (finish_output(a->cmd->name) != 0) {
                json_decref(msg);
                return 1;
            }
        }
        json_decref(msg);
    }
}

static int run_command(const struct ctl_args *a, const char *path)
{
    json_t *message = NULL;
    if (a->cmd->operand == OPERAND_JSON) {
        int st = parse_message(a, &message);
        if (st != PARSE_OK)
            return st;
    }
    json_t *params = build_params(a, message);
    json_decref(message);
    json_t *req = params != NULL ? json_pack("{s:s,s:i,s:s,s:o}", "jsonrpc", "2.0", "id", 1,
                                             "method", a->cmd->method, "params", params)
                                 : NULL;
    char *text = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (text == NULL) {
        fprintf(stderr, "secirc %s: out of memory\n", a->cmd->name);
        return 1;
    }
    size_t tlen = strlen(text);
    text[tlen] = '\n'; /* the request line; sent by length, not as a string */

    struct conn c = {-1, path, a->cmd->name, NULL, 0, 0};
    int64_t deadline = now_ms() + TIMEOUT_MS;
    int status = conn_open(&c);
    if (status == PARSE_OK)
        status = conn_send(&c, text, tlen + 1);
    free(text);
    char *line = NULL;
    size_t len = 0;
    if (status == PARSE_OK)
        status = conn_read_line(&c, deadline, &line, &len);
    if (status == PARSE_OK) {
        json_t *result = take_result(&c, line, len, &status);
        free(line);
        if (result != NULL) {
            if (strcmp(a->cmd->name, "watch") == 0) {
                status = watch_events(&c, a);
            } else {
                print_result(a, result);
                status = finish_output(a->cmd->name);
            }
            json_decref(result);
        }
    }
    if (c.fd >= 0)
        close(c.fd);
    free(c.buf);
    return status;
}

int sc_cli_control(int argc, char **argv)
{
    const struct ctl_command *cmd = NULL;
    for (size_t i = 0; i < sizeof ctl_commands / sizeof ctl_commands[0]; i++)
        if (strcmp(argv[0], ctl_commands[i].name) == 0)
            cmd = &ctl_commands[i];
    if (cmd == NULL) {
        fprintf(stderr, "secirc: '%s' is not a control command\n", argv[0]);
        return 2;
    }
    struct ctl_args a;
    int status = parse_args(cmd, argc, argv, &a);
    if (status != PARSE_OK)
        return status;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1024];
    status = resolve_socket(&a, path, sizeof path);
    if (status != PARSE_OK)
        return status;
    return run_command(&a, path);
}
