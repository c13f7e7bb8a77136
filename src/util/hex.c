/* util/hex.c — lowercase hex encoding and strict decoding (no whitespace,
 * no prefix, exact length). */
#include "util/hex.h"

void sc_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sc_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t len)
{
    if (hexlen != 2 * len)
        return SC_EFORMAT;
    for (size_t i = 0; i < len; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return SC_EFORMAT;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
