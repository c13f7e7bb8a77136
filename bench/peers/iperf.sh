#!/usr/bin/env bash
# bench/peers/iperf.sh [REPS=3] [SECS=10] — peer for the bulk figure: raw TCP
# single-stream throughput on loopback with iperf3 (the physical ceiling),
# default write size (128 KiB) and -l 64 (64-byte writes). Prints per-run
# lines and "iperf3 MODE: median X Gbit/s ..." (read by scripts/bench).
# Server on 127.0.0.1 and a free port only, stopped by PID on exit; files in
# $PEER_WORK (default build/bench/peer-iperf).
set -uo pipefail
cd "$(dirname "$0")" || exit 1
. ./lib.sh
peer_need iperf3 python3
REPS=${1:-3}; SECS=${2:-10}
case "$REPS$SECS" in ''|*[!0-9]*) peer_die "usage: iperf.sh [REPS] [SECS] (positive integers)";; esac
peer_workdir iperf

start_iperf() { peer_start "$W/server.log" iperf3 -s -B 127.0.0.1 -p "$1"; }
peer_serve 10 1 start_iperf || peer_die "iperf3 server did not start (see $W/server.log)"
PORT=${PEER_PORTS[0]}

# iperf3 -J on stdin -> "Gbit/s sender-cpu% receiver-cpu%"
parse() { python3 -c '
import json, sys
j = json.load(sys.stdin)["end"]
c = j["cpu_utilization_percent"]
print("%.3f %.0f %.0f" % (j["sum_received"]["bits_per_second"] / 1e9, c["host_total"], c["remote_total"]))'; }

for mode in default l64; do
  args=(); [ "$mode" = l64 ] && args=(-l 64)
  gb=""; cs=""; cr=""
  for ((r = 0; r < REPS; r++)); do
    out=$(peer_run $((SECS + 20)) iperf3 -c 127.0.0.1 -p "$PORT" -t "$SECS" -J "${args[@]}" | parse) ||
      peer_die "iperf3 client run $r ($mode) failed"
    read -r g c1 c2 <<<"$out"
    gb="$gb $g"; cs="$cs $c1"; cr="$cr $c2"
    echo "  run $r $mode: $g Gbit/s (cpu snd ${c1}% rcv ${c2}%)"
  done
  read -r m mn mx _ < <(echo $gb | peer_median)
  echo "iperf3 $mode: median $m Gbit/s (min $mn max $mx), cpu snd $(echo $cs | peer_median | cut -d' ' -f1)% rcv $(echo $cr | peer_median | cut -d' ' -f1)%"
done
