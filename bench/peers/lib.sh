# bench/peers/lib.sh — sourced by the peer scripts in bench/peers: a work
# directory inside the repository, free 127.0.0.1 ports, servers started in
# the script's process group and stopped by PID on exit, waits with deadlines.
# Never installs anything (scripts/deps does) and never binds beyond 127.0.0.1.
# shellcheck shell=bash

PEERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PEER_PIDS=()
PEER_LAST=""
PEER_PORTS=()

peer_die() { echo "${0##*/}: $*" >&2; exit 1; }

# peer_need CMD... — stop with a hint when a command is missing.
peer_need() {
  local c
  for c; do
    command -v "$c" >/dev/null 2>&1 || peer_die "'$c' not found (scripts/deps bench installs it)"
  done
}

# peer_workdir NAME — W := $PEER_WORK, or build/bench/peer-NAME in the
# repository; emptied and created.
peer_workdir() {
  W=${PEER_WORK:-$PEERS_DIR/../../build/bench/peer-$1}
  rm -rf "$W" && mkdir -p "$W" || peer_die "cannot create $W"
  W=$(cd "$W" && pwd)
}

# peer_start LOG CMD... — CMD in the background (same process group as this
# script, so a group kill of the script reaches it), output to LOG.
peer_start() {
  local log=$1; shift
  "$@" >"$log" 2>&1 </dev/null &
  PEER_LAST=$!
  PEER_PIDS+=("$PEER_LAST")
}

# peer_stop PID... — SIGTERM, up to 5 s to exit, then SIGKILL; reaped.
peer_stop() {
  local p i keep=() q
  for p; do kill -TERM "$p" 2>/dev/null; done
  for p; do
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  for q in "${PEER_PIDS[@]}"; do
    for p; do [ "$q" = "$p" ] && continue 2; done
    keep+=("$q")
  done
  PEER_PIDS=("${keep[@]}")
}

peer_cleanup() { [ ${#PEER_PIDS[@]} -eq 0 ] || peer_stop "${PEER_PIDS[@]}"; }
trap peer_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# peer_run SECS CMD... — CMD in the foreground, killed after SECS (and
# SIGKILLed 5 s later); stays in this process group (--foreground).
peer_run() { local secs=$1; shift; timeout --foreground -k 5 "$secs" "$@"; }

# peer_wait_pid PID SECS — wait for PID to exit; stop it after SECS.
# Returns its exit status (or 124 when it had to be stopped).
peer_wait_pid() {
  local p=$1 i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$p" 2>/dev/null || { wait "$p"; return; }
    sleep 0.1
  done
  peer_stop "$p"
  return 124
}

# peer_wait_file FILE PATTERN SECS — until grep finds PATTERN in FILE.
peer_wait_file() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# peer_free_ports N — N distinct TCP ports on 127.0.0.1 that were free a
# moment ago (bound to port 0 together and read back); peer_serve retries
# when one has been taken since.
peer_free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# peer_listening PORT — something listens on 127.0.0.1:PORT (/proc/net/tcp*,
# so no probe connection disturbs the server).
peer_listening() {
  local h
  h=$(printf '%04X' "$1")
  awk -v a="0100007F:$h" -v b="0000000000000000FFFF00000100007F:$h" \
    '($2 == a || $2 == b) && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# peer_serve SECS NPORTS FUNC ARGS... — up to 5 tries: pick NPORTS free
# ports, call FUNC PORT... ARGS... (which starts one server with peer_start),
# wait up to SECS s until that server is alive and listens on every port.
# On success PEER_PORTS holds the ports and PEER_LAST the server's PID.
peer_serve() {
  local secs=$1 n=$2 fn=$3 try i ok p
  shift 3
  for ((try = 0; try < 5; try++)); do
    p=$(peer_free_ports "$n") || return 1
    read -r -a PEER_PORTS <<<"$p"
    "$fn" "${PEER_PORTS[@]}" "$@" || return 1
    for ((i = 0; i < secs * 20; i++)); do
      kill -0 "$PEER_LAST" 2>/dev/null || break
      ok=1
      for p in "${PEER_PORTS[@]}"; do peer_listening "$p" || { ok=0; break; }; done
      [ $ok = 1 ] && kill -0 "$PEER_LAST" 2>/dev/null && return 0
      sleep 0.05
    done
    peer_stop "$PEER_LAST"
  done
  echo "${0##*/}: $fn: no server listening after 5 tries" >&2
  return 1
}

# peer_median — "median min max n" of the numbers on stdin.
peer_median() { "$PEERS_DIR/median.py"; }
