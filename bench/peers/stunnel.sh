#!/usr/bin/env bash
# bench/peers/stunnel.sh [REPS=3] [SECS=10] — peer for the bulk figure: a TLS
# 1.3 tunnel carrying one iperf3 stream: iperf3 client -> stunnel client ->
# stunnel server -> iperf3 server, all on 127.0.0.1 with free ports. Runs the
# default suite choice, then TLS_CHACHA20_POLY1305_SHA256 forced; prints
# "stunnel SUITE: median X Gbit/s ... negotiated: ..." (read by scripts/bench).
# Every process is stopped by PID on exit; files in $PEER_WORK
# (default build/bench/peer-stunnel), including a throw-away P-256 cert.
set -uo pipefail
cd "$(dirname "$0")" || exit 1
. ./lib.sh
peer_need iperf3 stunnel openssl python3
REPS=${1:-3}; SECS=${2:-10}
case "$REPS$SECS" in ''|*[!0-9]*) peer_die "usage: stunnel.sh [REPS] [SECS] (positive integers)";; esac
peer_workdir stunnel

stunnel -version 2>&1 | grep -E '^stunnel|Running'
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$W/key.pem" -out "$W/cert.pem" -days 2 -subj /CN=secirc-bench >/dev/null 2>&1 ||
  peer_die "openssl could not make a test certificate"

start_iperf() { peer_start "$W/iperf_srv.log" iperf3 -s -B 127.0.0.1 -p "$1"; }
peer_serve 10 1 start_iperf || peer_die "iperf3 server did not start (see $W/iperf_srv.log)"
IPERF_PORT=${PEER_PORTS[0]}

# start_stunnel ACCEPT_PORT ROLE CONNECT_PORT SUITE — foreground stunnel with
# debug 6 on stderr (the negotiated suite is read from it), no syslog.
start_stunnel() {
  local accept=$1 role=$2 connect=$3 suite=$4 conf
  conf="$W/$role-$suite.conf"
  {
    echo "foreground = yes"
    echo "syslog = no"
    echo "pid ="
    echo "debug = 6"
    echo "[$role]"
    echo "sslVersionMin = TLSv1.3"
    [ "$role" = cli ] && echo "client = yes"
    echo "accept = 127.0.0.1:$accept"
    echo "connect = 127.0.0.1:$connect"
    if [ "$role" = srv ]; then
      echo "cert = $W/cert.pem"
      echo "key = $W/key.pem"
    fi
    [ "$suite" != default ] && echo "ciphersuites = $suite"
  } >"$conf"
  peer_start "$W/$role-$suite.log" stunnel "$conf"
}

parse() { python3 -c '
import json, sys
j = json.load(sys.stdin)["end"]
c = j["cpu_utilization_percent"]
print("%.3f %.0f %.0f" % (j["sum_received"]["bits_per_second"] / 1e9, c["host_total"], c["remote_total"]))'; }

for suite in default TLS_CHACHA20_POLY1305_SHA256; do
  peer_serve 10 1 start_stunnel srv "$IPERF_PORT" "$suite" ||
    peer_die "stunnel server did not start (see $W/srv-$suite.log)"
  S=$PEER_LAST; SRV_PORT=${PEER_PORTS[0]}
  peer_serve 10 1 start_stunnel cli "$SRV_PORT" "$suite" ||
    peer_die "stunnel client did not start (see $W/cli-$suite.log)"
  C=$PEER_LAST; CLI_PORT=${PEER_PORTS[0]}
  vals=""
  for ((r = 0; r < REPS; r++)); do
    out=$(peer_run $((SECS + 20)) iperf3 -c 127.0.0.1 -p "$CLI_PORT" -t "$SECS" -J | parse) ||
      peer_die "iperf3 through stunnel, run $r ($suite), failed (see $W/*-$suite.log)"
    echo "  run $r $suite: $out (Gbit/s, cpu% iperf-snd, iperf-rcv)"
    vals="$vals ${out%% *}"
  done
  neg="$(grep -m1 -oE 'TLSv1\.[23] ciphersuite: [A-Z0-9_-]+' "$W/cli-$suite.log"), $(grep -m1 -oE 'Peer temporary key: [A-Za-z0-9-]+' "$W/cli-$suite.log")"
  echo "stunnel $suite: median $(echo $vals | peer_median | cut -d' ' -f1) Gbit/s [$vals]  negotiated: $neg"
  peer_stop "$S" "$C"
done
