/* cmd/secircd.c — main() of the relay daemon. At this stage the daemon only
 * answers --help and --version; the relay itself arrives with the manager
 * and relay layers. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("secircd 0.1.0\n");
        return 0;
    }
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: secircd --config FILE | --check-config FILE | --version\n"
               "The relay daemon is not built yet; use 'secirc link-test' for links.\n");
        return 0;
    }
    fprintf(stderr, "secircd: the relay daemon is not built yet (see 'secircd --help')\n");
    return 2;
}
