/* bench/bench_manager/bench_manager.h — what the modes of bench_manager
 * share: their constants, the coordinator's children (forked, one JSON line
 * per report) and small helpers. bench/bench_manager.c holds them and
 * main(); broadcast.c, restore.c and idle.c one mode each. Never used by the
 * library. */
#ifndef BENCH_MANAGER_H
#define BENCH_MANAGER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/bench_process.h"
#include "secirc/identity.h"
#include "secirc/manager.h"

#define BC_PEERS 50             /* broadcast: receivers linked to the relay */
#define BC_SIZE 64u             /* broadcast: payload bytes */
#define BC_BATCH 256            /* broadcast: broadcasts per loop turn */
#define BC_WAIT_US 1000         /* broadcast: pause after a refused copy */
#define WARMUP_S 1.0            /* broadcast: traffic before the window opens */
#define LINK_UP_S 30.0          /* every mode: time allowed to link up */
#define RS_PEERS 6              /* restore: candidates */
#define RS_MIN 3u               /* restore: min_connections */
#define RS_HEARTBEAT_MS 1000u
#define RS_MISS_LIMIT 3u
#define RS_TIMEOUT_MS 2000u     /* restore: connection_timeout (dial + handshake) */
#define RS_RETRY_MS 1000u       /* restore: retry_delay, reconnect_interval */
#define RS_SETTLE_MS 1000u      /* restore: linked this long (+ up to 1 s more) before a kill */
#define RS_LIMIT_S 15.0         /* restore: a round gives up after this */
#define IDLE_PER_CLIENT 1250    /* idle: links per client process */
#define IDLE_IN_FLIGHT 64       /* idle: dials and handshakes at once per client */
#define IDLE_SETTLE_S 2.0       /* idle: quiet time before the window */
#define IDLE_MAX_FAILURES 50
#define MAX_CHILDREN 16

extern FILE *human; /* the human-readable lines: stdout, or stderr with --json */
extern const struct sc_listen_spec loopback; /* 127.0.0.1, any free port */

/* ---- the coordinator's children ---------------------------------------------------------------- */

struct child {
    pid_t pid;
    int fd; /* read end of its report pipe */
    char buf[8192];
    size_t len;
};

typedef void (*child_main)(void *arg, int out_fd);
/* Forks fn(arg, out_fd) into a child that dies with this process and after
 * deadline_s (+5) in any case. */
void spawn(struct child *c, child_main fn, void *arg, double deadline_s);
/* SIGKILLs and reaps every child, the last spawned first. */
void kill_children(void);
/* The child's next JSON line, or NULL at end of file, after `secs`, or when
 * it reports {"error": ...} (printed). */
json_t *await_line(struct child *c, double secs);
/* In a child: one JSON object as a line to the coordinator (freed). */
void emit(int fd, json_t *o);
/* In a child: reports {"error": why} and exits. */
void child_fail(int fd, const char *why) __attribute__((noreturn));
struct event_base *child_base(int fd);

/* ---- helpers ------------------------------------------------------------------------------------ */

struct timeval tv_of(double s);
double median(double *v, size_t n); /* sorts v */
struct sc_identity *identity_of(uint8_t a, uint32_t b); /* from a fixed seed */
/* A manager's listener caps lifted for `links` links all from 127.0.0.1. */
void open_caps(struct sc_manager_config *cfg, uint32_t links);
struct sc_manager *start_manager(struct event_base *base, const struct sc_manager_config *cfg,
                                 const struct sc_identity *id, const struct sc_manager_callbacks *cb,
                                 void *arg, int fd);
uint32_t linked_peers(const struct sc_manager *m);

/* ---- the modes: one JSON object each, or NULL when the run failed ----------------------------------- */

json_t *run_broadcast(double seconds);
json_t *run_restore(long rounds);
json_t *run_idle(long links, double seconds);

#endif
