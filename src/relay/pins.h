/* relay/pins.h — trust-on-first-use pins: the relay ID learned at the
 * first handshake with a relay configured without an `id`, kept in a file
 * of mode 0600 in data_dir ("pins"), one line per path:
 *   TYPE HOST PORT RELAY_ID_HEX
 * Next time the path expects that ID. Besides the key files, the only
 * thing the daemon writes to disk. */
#ifndef SC_RELAY_PINS_H
#define SC_RELAY_PINS_H

#include <stdbool.h>
#include <stdint.h>

#include "secirc/error.h"
#include "secirc/identity.h"

struct sc_pins;

/* Reads `path` if it exists (a missing file is an empty set). Lines that
 * do not parse are skipped with a warning. */
int sc_pins_load(const char *path, struct sc_pins **out) SC_MUST_CHECK;
void sc_pins_free(struct sc_pins *p);
bool sc_pins_lookup(const struct sc_pins *p, const char *type, const char *host, uint16_t port,
                    uint8_t id[SC_RELAY_ID_BYTES]);
/* Records the pin and rewrites the file (a temporary file of mode 0600,
 * then rename). */
int sc_pins_set(struct sc_pins *p, const char *type, const char *host, uint16_t port,
                const uint8_t id[SC_RELAY_ID_BYTES]) SC_MUST_CHECK;

#endif
