/* fuzz/fuzz_keyfile.c — libFuzzer target for the identity key file parser
 * (sc_identity_parse, docs/PROTOCOL.md "Identity key file"). Any input must
 * give either a valid identity or an error with a reason; never a crash, a
 * leak, or an identity that disagrees with the bytes it came from. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "secirc/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sc_identity *id = NULL;
    char why[256];
    memset(why, 'x', sizeof why);
    int rc = sc_identity_parse(data, size, &id, why, sizeof why);
    if (rc == 0) {
        /* accepted: exactly one key file, whose public key is the relay ID */
        if (id == NULL || size != SC_KEYFILE_BYTES ||
            memcmp(sc_identity_relay_id(id), data + 44, SC_RELAY_ID_BYTES) != 0)
            abort();
        uint8_t sig[SC_SIGNATURE_BYTES];
        if (sc_identity_sign(id, data, size, sig) != 0)
            abort();
        sc_identity_free(id);
    } else {
        /* refused: no identity, a known code, a NUL-terminated reason */
        if (id != NULL || rc > 0 || memchr(why, '\0', sizeof why) == NULL || why[0] == '\0')
            abort();
    }
    return 0;
}
