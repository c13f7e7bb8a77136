/* cmd/cli.h — the subcommands of the `secirc` tool. Each lives in its own
 * cmd/secirc_*.c file, takes argv after the subcommand name and returns the
 * process exit status (0 ok, 1 failure, 2 usage error). */
#ifndef SC_CMD_CLI_H
#define SC_CMD_CLI_H

struct sc_cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

int sc_cli_keygen(int argc, char **argv);
int sc_cli_id(int argc, char **argv);
int sc_cli_link_test(int argc, char **argv);
int sc_cli_selftest(int argc, char **argv);

#endif
