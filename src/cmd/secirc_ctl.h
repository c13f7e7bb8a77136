/* cmd/secirc_ctl.h — between the control commands' client (secirc_ctl.c)
 * and their human-readable output (secirc_ctl_print.c). The printers only
 * read the JSON they are given; they never talk to the daemon and never
 * fail on missing or unexpected fields (they print "-" instead). */
#ifndef SC_CMD_SECIRC_CTL_H
#define SC_CMD_SECIRC_CTL_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>

/* `status`: a short "key: value" block. */
void sc_ctl_print_status(FILE *out, json_t *status);
/* `peers`: an aligned table, one line per path; ages against now_unix. */
void sc_ctl_print_peers(FILE *out, json_t *peers, uint64_t now_unix);
/* `watch`: one line per event, prefixed with the local time of `now`. */
void sc_ctl_print_event(FILE *out, json_t *event, time_t now);

#endif
