/* util/time.c — monotonic and wall clocks over clock_gettime(). */
#include "util/time.h"

#include <time.h>

uint64_t sc_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t sc_mono_us(void) { return sc_mono_ns() / 1000u; }
uint64_t sc_mono_ms(void) { return sc_mono_ns() / 1000000u; }

uint64_t sc_unix_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec;
}
