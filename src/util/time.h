/* util/time.h — clocks. Monotonic for timers and deadlines, wall clock only
 * for certificate expiry. */
#ifndef SC_UTIL_TIME_H
#define SC_UTIL_TIME_H

#include <stdint.h>

uint64_t sc_mono_ms(void);
uint64_t sc_mono_us(void);
uint64_t sc_mono_ns(void);
/* Seconds since the Unix epoch (wall clock). */
uint64_t sc_unix_s(void);

#endif
