#!/usr/bin/env bash
# bench/peers/ws/ws.sh [REPS=3] — WebSocket peer (npm `ws` on Node, for the
# WebSocket transport benchmark): one connection on 127.0.0.1 (free port),
# binary messages, 64 B x N64 and 16 KiB x N16K each direction, plus 64-byte
# echo RTT x NRTT; variants `plain` (ws alone, masking in JS) and `bufferutil`
# (ws + its native addon, as production setups use). node/npm come from
# scripts/deps ws; npm installs package.json (pinned) into $WS_PREFIX
# (default bench/peers/ws, i.e. its git-ignored node_modules), never
# globally. The server is stopped by PID after each variant and on exit.
set -uo pipefail
cd "$(dirname "$0")" || exit 1
. ../lib.sh
REPS=${1:-3}; N64=${N64:-1000000}; N16K=${N16K:-100000}; NRTT=${NRTT:-20000}
case "$REPS$N64$N16K$NRTT" in ''|*[!0-9]*) peer_die "REPS, N64, N16K, NRTT must be positive integers";; esac
"$PEERS_DIR/../../scripts/deps" ws || peer_die "scripts/deps ws failed"
peer_need node npm
peer_workdir ws
HERE=$(pwd)
PREFIX=${WS_PREFIX:-$HERE}
mkdir -p "$PREFIX" && PREFIX=$(cd "$PREFIX" && pwd) || peer_die "cannot create $PREFIX"
MODS=$PREFIX/node_modules

# (Re)install when ws or bufferutil is missing or not the pinned version.
installed() { # PACKAGE -> its installed version, or nothing
  node -e 'try { console.log(require(process.argv[1]).version) } catch (e) {}' "$MODS/$1/package.json"
}
pinned() { node -e 'console.log(require(process.argv[1]).dependencies[process.argv[2]])' "$HERE/package.json" "$1"; }
if [ "$(installed ws)" != "$(pinned ws)" ] || [ "$(installed bufferutil)" != "$(pinned bufferutil)" ]; then
  [ "$PREFIX" = "$HERE" ] || cp "$HERE/package.json" "$PREFIX/package.json" || peer_die "cannot copy package.json"
  echo "ws.sh: npm install into $PREFIX" >&2
  (cd "$PREFIX" && peer_run 600 npm install --no-package-lock --no-audit --no-fund --loglevel=error) >"$W/npm.log" 2>&1 ||
    peer_die "npm install failed (see $W/npm.log)"
fi
echo "node $(node --version), ws $(installed ws), bufferutil $(installed bufferutil)"
export NODE_PATH=$MODS

for v in plain bufferutil; do
  if [ "$v" = plain ]; then export WS_NO_BUFFER_UTIL=1; else unset WS_NO_BUFFER_UTIL; fi
  peer_start "$W/server-$v.out" node wsbench.js server 900
  S=$PEER_LAST
  peer_wait_file "$W/server-$v.out" '^READY [0-9]' 10 || peer_die "ws server did not start (see $W/server-$v.out)"
  PORT=$(awk '/^READY/ {print $2; exit}' "$W/server-$v.out")
  for t in "c2s 64 $N64" "s2c 64 $N64" "c2s 16384 $N16K" "s2c 16384 $N16K"; do
    vals=""; mbs=""
    for ((r = 0; r < REPS; r++)); do
      out=$(peer_run 130 node wsbench.js client "$PORT" $t)
      vals="$vals $(echo "$out" | grep -oE 'rate [0-9]+' | awk '{print $2}')"
      mbs="$mbs $(echo "$out" | grep -oE '[0-9.]+ MB/s' | awk '{print $1}')"
    done
    read -r dir size _ <<<"$t"
    printf 'ws %-10s %s %5s B: median %s msg/s (%s MB/s)  [%s]\n' "$v" "$dir" "$size" \
      "$(echo $vals | peer_median | cut -d' ' -f1)" "$(echo $mbs | peer_median | cut -d' ' -f1)" "$vals"
  done
  p50=""; p99=""
  for ((r = 0; r < REPS; r++)); do
    out=$(peer_run 130 node wsbench.js client "$PORT" rtt 64 "$NRTT")
    p50="$p50 $(echo "$out" | grep -oE 'p50_us [0-9.]+' | awk '{print $2}')"
    p99="$p99 $(echo "$out" | grep -oE 'p99_us [0-9.]+' | awk '{print $2}')"
  done
  echo "ws $v rtt 64 B: p50 $(echo $p50 | peer_median | cut -d' ' -f1) us  p99 $(echo $p99 | peer_median | cut -d' ' -f1) us"
  peer_stop "$S"
done
