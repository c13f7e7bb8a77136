/* cmd/cli.h — the subcommands of the `secirc` tool. Each lives in its own
 * cmd/secirc_*.c file, takes argv from the subcommand name on and returns
 * the process exit status (0 ok, 1 failure, 2 usage error; the control
 * commands also 3: the daemon cannot be reached). */
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
/* status, peers, explain, connect, disconnect, send, broadcast, watch,
 * reload, rotate-link-key: argv[0] names which (cmd/secirc_ctl.c). */
int sc_cli_control(int argc, char **argv);

#endif
