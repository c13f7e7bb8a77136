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
};

static void usage(FILE *out)
{
    fprintf(out, "usage: secirc COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
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
