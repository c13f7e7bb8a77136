/* cmd/secirc.c — main() of the `secirc` command line tool: finds the
 * subcommand and hands it the rest of argv. Nothing else lives here. */
#include <stdio.h>
#include <string.h>

#include "cmd/cli.h"

static const struct sc_cli_command commands[] = {
    {"keygen", "create a relay identity key file and print its relay ID", sc_cli_keygen},
    {"id", "print the relay ID of a key file", sc_cli_id},
    {"selftest", "run built-in checks: 'selftest handshake'", sc_cli_selftest},
    {"link-test", "link two processes by hand (listen|connect), for tests", sc_cli_link_test},
    {"status", "show a running secircd's status (control socket)", sc_cli_control},
    {"peers", "list its paths to peers: state, latency, last seen", sc_cli_control},
    {"explain", "say why a relay is or is not linked: 'explain RELAY_ID'", sc_cli_control},
    {"connect", "dial a relay now: 'connect RELAY_ID'", sc_cli_control},
    {"disconnect", "close the links to a relay: 'disconnect RELAY_ID'", sc_cli_control},
    {"send", "send a JSON message to one relay: 'send --to RELAY_ID JSON'", sc_cli_control},
    {"broadcast", "send a JSON message to every peer: 'broadcast JSON'", sc_cli_control},
    {"watch", "print the daemon's events as they happen", sc_cli_control},
    {"reload", "reload the daemon's configuration file", sc_cli_control},
    {"rotate-link-key", "replace the relay's link key now", sc_cli_control},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: secirc COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'secirc COMMAND --help' describes one command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "secirc: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
