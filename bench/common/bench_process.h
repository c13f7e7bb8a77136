/* bench/common/bench_process.h — what every benchmark process shares:
 * fatal errors and the hard deadline (both kill the benchmark's children
 * first), clocks, CPU and memory readings, bound children, and start-up
 * (libsodium, quiet logs, no SIGPIPE, the descriptor limit raised). Never
 * used by the library. */
#ifndef BENCH_PROCESS_H
#define BENCH_PROCESS_H

#include <stdint.h>
#include <sys/types.h>

/* `prog` names the process in messages; `kill_children` (may be NULL) is
 * called by bench_die and from the SIGALRM handler, so it may only use
 * async-signal-safe calls (kill). Dies when libsodium cannot start. */
void bench_init(const char *prog, void (*kill_children)(void));
/* "PROG[PID]: message" on stderr, the children killed, exit 2. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
double bench_now_s(void);
uint64_t bench_now_ns(void);
/* CPU seconds (user + system) of this process; of another one from
 * /proc/PID/stat, -1 if unknown. */
double bench_cpu_self_s(void);
double bench_cpu_pid_s(pid_t pid);
/* VmRSS of this process in kB; -1 if unknown. */
long bench_rss_kb(void);
/* fork() whose child is killed when this process dies; 0 in the child. */
pid_t bench_fork_bound(void);

#endif
