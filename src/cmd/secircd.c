/* cmd/secircd.c — main() of the relay daemon: argument handling only.
 * --check-config loads and checks a configuration (relay/config.c) and
 * exits 0 or 2; running the relay itself belongs to the relay layer. Never
 * writes a file. */
#include <stdio.h>
#include <string.h>

#include "relay/config.h"

static const char usage_text[] =
    "usage: secircd --config FILE\n"
    "       secircd --check-config FILE\n"
    "       secircd --version | --help\n"
    "\n"
    "The secirc relay daemon.\n"
    "\n"
    "  --config FILE        run the relay with this YAML configuration (docs/CONFIG.md)\n"
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
    if (argc == 3 && strcmp(argv[1], "--config") == 0) {
        struct sc_relay_config *cfg = NULL;
        int status = check_config(argv[2], &cfg);
        sc_relay_config_free(cfg);
        if (status == 0)
            fprintf(stderr, "secircd: the configuration is valid, but running the relay is not "
                            "available in this build yet\n");
        return 2;
    }
    fputs(usage_text, stderr);
    return 2;
}
