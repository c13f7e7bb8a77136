/* util/hex.h — lowercase hex encoding and strict decoding. */
#ifndef SC_UTIL_HEX_H
#define SC_UTIL_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "secirc/error.h"

/* Writes 2*len lowercase hex digits and a NUL to out (2*len+1 bytes). */
void sc_hex_encode(const uint8_t *in, size_t len, char *out);
/* Decodes exactly 2*len hex digits (either case) followed by NUL or end of
 * `hexlen`; returns 0, or SC_EFORMAT on a wrong length or a non-hex digit. */
int sc_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t len) SC_MUST_CHECK;

#endif
