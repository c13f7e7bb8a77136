/* util/bytes.h — big-endian loads and stores for wire formats and files.
 * Every multi-byte integer secirc writes is big-endian, except the Noise
 * nonce counter (little-endian, inside crypto/noise.c). Pure inline helpers:
 * no bounds checks here; callers check lengths before they call. */
#ifndef SC_UTIL_BYTES_H
#define SC_UTIL_BYTES_H

#include <stdint.h>

static inline void sc_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void sc_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void sc_put_be64(uint8_t *p, uint64_t v)
{
    sc_put_be32(p, (uint32_t)(v >> 32));
    sc_put_be32(p + 4, (uint32_t)v);
}

static inline uint16_t sc_get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static inline uint32_t sc_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t sc_get_be64(const uint8_t *p)
{
    return (uint64_t)sc_get_be32(p) << 32 | sc_get_be32(p + 4);
}

#endif
