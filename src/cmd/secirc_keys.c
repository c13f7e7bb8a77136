/* cmd/secirc_keys.c — `secirc keygen` and `secirc id`: create a relay
 * identity key file, print the relay ID of one. Argument parsing and output
 * only; the key file itself is crypto/identity.c's business. Never prints a
 * secret, never overwrites a file. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cmd/cli.h"
#include "secirc/identity.h"

static const char keygen_usage[] =
    "usage: secirc keygen --out FILE [--json]\n"
    "\n"
    "Creates a new relay identity (Ed25519) key file with mode 0600 and prints\n"
    "its relay ID (64 hex characters) on standard output. An existing file is\n"
    "never overwritten.\n"
    "\n"
    "  -o, --out FILE   the key file to create (must not exist)\n"
    "      --json       print {\"relay_id\":\"...\"} instead of the bare ID\n"
    "  -h, --help       show this help\n";

static const char id_usage[] =
    "usage: secirc id --key FILE [--json]\n"
    "\n"
    "Loads a relay identity key file and prints its relay ID (64 hex\n"
    "characters). The file must not be accessible by group or others.\n"
    "\n"
    "  -k, --key FILE   the key file to read\n"
    "      --json       print {\"relay_id\":\"...\"} instead of the bare ID\n"
    "  -h, --help       show this help\n";

enum parse_result { PARSE_OK, PARSE_HELP, PARSE_USAGE };

/* The two commands take the same shape of arguments: one file option, --json
 * and --help, no operands. */
struct file_command {
    const char *name;     /* "keygen" */
    const char *usage;
    const char *file_opt; /* "out" */
    int file_short;       /* 'o' */
};

static enum parse_result parse_args(const struct file_command *cmd, int argc, char **argv,
                                     const char **file, int *json)
{
    enum { OPT_JSON = 256 };
    const struct option longopts[] = {
        {cmd->file_opt, required_argument, NULL, cmd->file_short},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char shortopts[8];
    snprintf(shortopts, sizeof shortopts, ":%c:h", cmd->file_short);

    *file = NULL;
    *json = 0;
    opterr = 0;
    optind = 0; /* glibc: full re-initialisation */
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (c == cmd->file_short) {
            *file = optarg;
        } else if (c == OPT_JSON) {
            *json = 1;
        } else if (c == 'h') {
            return PARSE_HELP;
        } else if (c == ':') {
            fprintf(stderr, "secirc %s: option '%s' needs an argument\n", cmd->name,
                    argv[optind - 1]);
            return PARSE_USAGE;
        } else {
            fprintf(stderr, "secirc %s: unknown option '%s'\n", cmd->name, argv[optind - 1]);
            return PARSE_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "secirc %s: unexpected argument '%s'\n", cmd->name, argv[optind]);
        return PARSE_USAGE;
    }
    if (*file == NULL || (*file)[0] == '\0') {
        fprintf(stderr, "secirc %s: --%s FILE is required\n", cmd->name, cmd->file_opt);
        return PARSE_USAGE;
    }
    return PARSE_OK;
}

/* Runs the argument parser; returns -1 to go on, or the exit status. */
static int handle_args(const struct file_command *cmd, int argc, char **argv, const char **file,
                       int *json)
{
    switch (parse_args(cmd, argc, argv, file, json)) {
    case PARSE_OK:
        return -1;
    case PARSE_HELP:
        fputs(cmd->usage, stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    case PARSE_USAGE:
    default:
        fputs(cmd->usage, stderr);
        return 2;
    }
}

/* Prints the relay ID (public, never a secret) and returns the exit status. */
static int print_relay_id(const struct sc_identity *id, int json)
{
    char hex[SC_RELAY_ID_HEX_LEN + 1];
    sc_relay_id_to_hex(sc_identity_relay_id(id), hex);
    if (json) {
        json_t *obj = json_pack("{s:s}", "relay_id", hex);
        char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
        json_decref(obj);
        if (text == NULL) {
            fprintf(stderr, "secirc: out of memory\n");
            return 1;
        }
        printf("%s\n", text);
        free(text);
    } else {
        printf("%s\n", hex);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "secirc: cannot write to standard output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

int sc_cli_keygen(int argc, char **argv)
{
    static const struct file_command cmd = {"keygen", keygen_usage, "out", 'o'};
    const char *path;
    int json;
    int status = handle_args(&cmd, argc, argv, &path, &json);
    if (status >= 0)
        return status;

    struct sc_identity *id = NULL;
    int rc = sc_identity_generate(&id);
    if (rc != 0) {
        fprintf(stderr, "secirc: cannot create an identity: %s\n", sc_strerror(rc));
        return 1;
    }
    rc = sc_identity_save(id, path);
    if (rc != 0) {
        if (rc == SC_EEXIST)
            fprintf(stderr,
                    "secirc: %s: file already exists; refusing to overwrite it "
                    "(choose another path, or remove the old key first)\n",
                    path);
        else
            fprintf(stderr, "secirc: %s: cannot create the key file: %s\n", path, sc_strerror(rc));
        sc_identity_free(id);
        return 1;
    }
    status = print_relay_id(id, json);
    if (status != 0)
        fprintf(stderr, "secirc: %s: the key file was written; 'secirc id --key %s' prints its ID\n",
                path, path);
    sc_identity_free(id);
    return status;
}

int sc_cli_id(int argc, char **argv)
{
    static const struct file_command cmd = {"id", id_usage, "key", 'k'};
    const char *path;
    int json;
    int status = handle_args(&cmd, argc, argv, &path, &json);
    if (status >= 0)
        return status;

    struct sc_identity *id = NULL;
    char why[512] = "";
    int rc = sc_identity_load(path, &id, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, "secirc: %s: %s\n", path, why[0] != '\0' ? why : sc_strerror(rc));
        return 1;
    }
    status = print_relay_id(id, json);
    sc_identity_free(id);
    return status;
}
