#!/usr/bin/env bash
# bench/peers/nats.sh [REPS=3] — peer for the message-rate, RTT and idle
# figures: nats-server on 127.0.0.1 with free ports, driven by natsbench.c.
# bench/peers/nats.sh fanout [REPS=3] [SECS=5] [NSUBS=50] — only the peer of
# the manager's broadcast figure (see the end of this file).
#   * 2-node cluster A <- route -> B: subscriber on B, publisher on A, N16
#     messages of 16 B and N1K of 1 KiB (msg/s at the subscriber, first to
#     last message); the same on one node (pub and sub on A)
#   * request/reply RTT across the route (echo on B, requester on A) and on
#     one node, NLAT round trips each; PING/PONG RTT to one server
#   * RSS per idle client: a fresh standalone server with NIDLE clients
# Prints "nats ...: median ..." lines read by scripts/bench. Every server and
# client is stopped by PID on exit; files in $PEER_WORK (default
# build/bench/peer-nats), natsbench built there.
set -uo pipefail
cd "$(dirname "$0")" || exit 1
. ./lib.sh
peer_need nats-server gcc python3
MODE=all
[ "${1:-}" = fanout ] && { MODE=fanout; shift; }
REPS=${1:-3}
FAN_SECS=${2:-5}       # fanout: window seconds
FAN_SUBS=${3:-50}      # fanout: subscribers
N16=${N16:-3000000}    # 16-byte messages per run
N1K=${N1K:-1000000}    # 1 KiB messages per run
NLAT=${NLAT:-20000}    # round trips per latency run
NIDLE=${NIDLE:-1000}   # idle clients
case "$REPS$N16$N1K$NLAT$NIDLE$FAN_SECS$FAN_SUBS" in ''|*[!0-9]*)
  peer_die "REPS, N16, N1K, NLAT, NIDLE, SECS, NSUBS must be positive integers";; esac
peer_workdir nats
NB=$W/natsbench
gcc -O2 -Wall -Wextra -D_GNU_SOURCE -o "$NB" natsbench.c 2>"$W/natsbench.build.log" ||
  peer_die "cannot build natsbench (see $W/natsbench.build.log)"

nats-server --version

# fanout: one standalone server, NSUBS subscribers of one subject in one
# process (natsbench fanout), one publisher (natsbench pub) sending 64-byte
# messages as fast as the server takes them; msg/s delivered to all the
# subscribers together over SECS after 1 s of traffic, counted by them, and
# the server's CPU (% of one core) from the first PUB to the last count.
# cpu_ticks PID — utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null; }

fanout() {
  local vals="" cpus="" r S PS F P rate c0 c1 t0 t1
  start_fan() { peer_start "$W/fan-server.log" nats-server -a 127.0.0.1 -p "$1"; }
  for ((r = 0; r < REPS; r++)); do
    peer_serve 10 1 start_fan || peer_die "nats-server did not start (see $W/fan-server.log)"
    S=$PEER_LAST; PS=${PEER_PORTS[0]}
    peer_start "$W/fan-sub.out" "$NB" fanout 127.0.0.1 "$PS" bench.fan "$FAN_SUBS" "$FAN_SECS"
    F=$PEER_LAST
    peer_wait_file "$W/fan-sub.out" READY 20 || peer_die "fanout subscribers not ready (see $W/fan-sub.out)"
    c0=$(cpu_ticks "$S"); t0=$(date +%s.%N)
    peer_start "$W/fan-pub.out" "$NB" pub 127.0.0.1 "$PS" bench.fan 100000000 64 $((FAN_SECS + 20))
    P=$PEER_LAST
    peer_wait_pid "$F" $((FAN_SECS + 40))
    c1=$(cpu_ticks "$S"); t1=$(date +%s.%N)
    peer_stop "$P" "$S"
    # the server's CPU from the first PUB to the subscribers' last count (% of one core)
    cpus="$cpus $(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$(getconf CLK_TCK)" \
      'BEGIN {printf "%.0f", (b - a) / hz / (e - s) * 100}')"
    cat "$W/fan-sub.out" >>"$W/fanout.log"
    rate=$(awk '/^fanout subs/ {for (i = 1; i < NF; i++) if ($i == "rate") print $(i + 1)}' "$W/fan-sub.out")
    echo "  fanout run $r: $(grep '^fanout' "$W/fan-sub.out")"
    vals="$vals $rate"
    rm -f "$W/fan-sub.out" "$W/fan-pub.out"
  done
  if [ -n "${vals// /}" ]; then
    read -r m mn mx _ < <(echo $vals | peer_median)
    printf 'nats fanout %s subs x 64 B: median %.0f msg/s delivered  min %.0f max %.0f  [%s]  server cpu %s %%\n' \
      "$FAN_SUBS" "$m" "$mn" "$mx" "$vals" "$(echo $cpus | peer_median | cut -d' ' -f1)"
  else
    echo "nats fanout $FAN_SUBS subs x 64 B: no result (see $W/fanout.log)"
  fi
}
if [ "$MODE" = fanout ]; then
  fanout
  exit 0
fi

# start_node CLIENT_PORT CLUSTER_PORT NAME [ROUTE_PORT]
start_node() {
  local routes=()
  [ $# -ge 4 ] && routes=(--routes "nats://127.0.0.1:$4")
  peer_start "$W/$3.out" nats-server -a 127.0.0.1 -p "$1" --cluster "nats://127.0.0.1:$2" \
    --cluster_name secirc-bench "${routes[@]}" -l "$W/$3.log"
}
peer_serve 10 2 start_node a || peer_die "nats node A did not start (see $W/a.log)"
A=$PEER_LAST; PA=${PEER_PORTS[0]}; RA=${PEER_PORTS[1]}
peer_serve 10 2 start_node b "$RA" || peer_die "nats node B did not start (see $W/b.log)"
B=$PEER_LAST; PB=${PEER_PORTS[0]}
peer_wait_file "$W/a.log" 'Route connection created' 10 && peer_wait_file "$W/b.log" 'Route connection created' 10 ||
  peer_die "the 2-node cluster did not form (see $W/a.log, $W/b.log)"
sleep 1   # bounded settling time after the route is up, as for every run below

# thr SUBPORT PUBPORT SIZE COUNT — one run; RATE := delivered msg/s (empty
# on failure). Client outputs are appended to thr.log.
thr() {
  local out=$W/sub.out sp
  RATE=""
  peer_start "$out" "$NB" sub 127.0.0.1 "$1" bench.thr "$4" 60
  sp=$PEER_LAST
  peer_wait_file "$out" READY 5 || { echo "sub not ready" >>"$W/thr.log"; peer_stop "$sp"; return 1; }
  sleep 1   # let the subscription interest propagate over the route (bounded)
  peer_run 90 "$NB" pub 127.0.0.1 "$2" bench.thr "$4" "$3" 60 >"$W/pub.out" 2>&1
  peer_wait_pid "$sp" 70
  cat "$W/pub.out" "$out" >>"$W/thr.log"
  RATE=$(awk '/^sub received/ {print $(NF-3)}' "$out")
  awk '/^sub received/ && $3 != $5 {print "DROPS " $3 "/" $5}' "$out" >>"$W/thr.log"
}
for topo in "route $PB $PA" "single $PA $PA"; do
  read -r name sp pp <<<"$topo"
  for sz in 16 1024; do
    n=$N16; [ "$sz" = 1024 ] && n=$N1K
    vals=""
    for ((r = 0; r < REPS; r++)); do thr "$sp" "$pp" "$sz" "$n"; vals="$vals $RATE"; done
    if [ -n "${vals// /}" ]; then
      read -r m mn mx _ < <(echo $vals | peer_median)
      printf 'nats %-6s %5s B x %s: median %.0f msg/s (%.1f MB/s)  min %.0f max %.0f  [%s]\n' \
        "$name" "$sz" "$n" "$m" "$(awk -v a="$m" -v b="$sz" 'BEGIN {print a * b / 1e6}')" "$mn" "$mx" "$vals"
    else
      echo "nats $name $sz B x $n: no result (see $W/thr.log)"
    fi
  done
done

# latency: echo on B; requests from A (across the route) and from B (one node)
peer_start "$W/echo.out" "$NB" echo 127.0.0.1 "$PB" lat.req 10000000 300
E=$PEER_LAST
peer_wait_file "$W/echo.out" READY 5 || peer_die "echo client not ready (see $W/echo.out)"
for sz in 16 1024; do
  for ((r = 0; r < REPS; r++)); do peer_run 90 "$NB" req 127.0.0.1 "$PA" lat.req "$NLAT" "$sz"; done >"$W/lat_route_$sz.txt"
  for ((r = 0; r < REPS; r++)); do peer_run 90 "$NB" req 127.0.0.1 "$PB" lat.req "$NLAT" "$sz"; done >"$W/lat_single_$sz.txt"
done
for ((r = 0; r < REPS; r++)); do peer_run 90 "$NB" ping 127.0.0.1 "$PA" "$NLAT"; done >"$W/lat_ping.txt"
peer_stop "$E"
for f in lat_route_16 lat_route_1024 lat_single_16 lat_single_1024 lat_ping; do
  p50=$(grep -o 'p50_us [0-9.]*' "$W/$f.txt" | awk '{print $2}' | peer_median | cut -d' ' -f1)
  p99=$(grep -o 'p99_us [0-9.]*' "$W/$f.txt" | awk '{print $2}' | peer_median | cut -d' ' -f1)
  printf 'nats %-16s RTT median-of-%s p50 %s us  p99 %s us\n' "$f" "$REPS" "$p50" "$p99"
done
peer_stop "$A" "$B"

# idle-client memory on a fresh standalone server
start_single() { peer_start "$W/idle.log" nats-server -a 127.0.0.1 -p "$1"; }
deltas=""
for ((r = 0; r < REPS; r++)); do
  peer_serve 10 1 start_single || peer_die "standalone nats-server did not start (see $W/idle.log)"
  S=$PEER_LAST; PS=${PEER_PORTS[0]}
  sleep 1   # bounded settling time before the baseline RSS
  r0=$(awk '/VmRSS/ {print $2}' "/proc/$S/status")
  peer_start "$W/idle.out" "$NB" idle 127.0.0.1 "$PS" "$NIDLE" 6
  I=$PEER_LAST
  peer_wait_file "$W/idle.out" READY 10 || peer_die "idle clients not connected (see $W/idle.out)"
  sleep 2   # clients connected; bounded quiet time before measuring
  r1=$(awk '/VmRSS/ {print $2}' "/proc/$S/status")
  peer_wait_pid "$I" 30
  peer_stop "$S"
  d=$(((r1 - r0) * 1024 / NIDLE)); deltas="$deltas $d"
  echo "  idle run $r: RSS $r0 kB -> $r1 kB with $NIDLE clients: $d B/conn"
  rm -f "$W/idle.out"
done
echo "nats idle: median $(echo $deltas | peer_median | cut -d' ' -f1) B RSS per idle client"
