/* util/time.h — clocks. Monotonic for timers and deadlines, wall clock only
 * for certificate expiry and the mac1 epoch. */
#ifndef SC_UTIL_TIME_H
#define SC_UTIL_TIME_H

#include <stdint.h>
#include <sys/time.h>

uint64_t sc_mono_ms(void);
uint64_t sc_mono_us(void);
uint64_t sc_mono_ns(void);
/* Seconds since the Unix epoch (wall clock). */
uint64_t sc_unix_s(void);

/* Milliseconds as a timeval for libevent timers. */
static inline struct timeval sc_ms_to_tv(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)(ms % 1000u) * 1000};
    return tv;
}

#endif
