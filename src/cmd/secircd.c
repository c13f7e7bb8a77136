/* cmd/secircd.c — main() of the relay daemon: argument handling only.
 * --check-config loads and checks a configuration (relay/config.c) and
 * exits 0 or 2; running the relay belongs to the relay layer
 * (relay/daemon.c). */
#include <stdio.h>
#include <string.h>

#include "relay/config.h"
#include "relay/daemon.h"

static const char usage_text[] =
    "usage: secircd [--config FILE]\n"
    "       secircd --check-config FILE\n"
    "       secircd --version | --help\n"
    "\n"
    "The secirc relay daemon.\n"
    "\n"
    "  --config FILE        run the relay in the foreground with this YAML\n"
    "                       configuration (docs/CONFIG.md); without it, run on the\n"
    "                       embedded default: a loopback listener and an identity in\n"
    "                       $SECIRC_DATA_DIR (default ~/.local/share/secircd)\n"
    "                       SIGTERM/SIGINT stop it cleanly, SIGHUP reloads the file\n"
    "  --check-config FILE  check the configuration and its files, print\n"
    "                       'configuration OK' and exit 0, or print\n"
    "                       FILE:LINE:COL: message on stderr and exit 2\n"
    "  --version            print the version\n"
    "  -h, --help           show this help\n";

/* Loads FILE; prints the first error as FILE:LINE:COL: message. */
static int check_config(const char *path, struct sc_relay_config **out)
{
    char err[1024];
    if (sc_relay_config_load(path, out, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("secircd 0.1.0\n");
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--check-config") == 0) {
        struct sc_relay_config *cfg = NULL;
        int status = check_config(argv[2], &cfg);
        sc_relay_config_free(cfg);
        if (status == 0)
            printf("configuration OK\n");
        return status;
    }
    if (argc == 3 && strcmp(argv[1], "--config") == 0)
        return sc_daemon_run(argv[2]);
    if (argc == 1)
        return sc_daemon_run(NULL);
    fputs(usage_text, stderr);
    return 2;
}
