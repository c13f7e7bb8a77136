#!/usr/bin/env bash
# tests/tor/selftest.sh — start the private Tor network (privnet.sh), prove it
# works end to end without secirc (selftest.py: an ADD_ONION service in front
# of a local echo server, reached through the client's SOCKS port; an exit
# stream to 127.0.0.1 through the exit client), then stop every tor it started,
# also on failure, TERM or INT.
#
# Usage, from any directory:  tests/tor/selftest.sh [DIR]
#   DIR defaults to a new mktemp -d directory, removed after a pass; after a
#   failure it is kept for its logs. Exit 0 pass, 1 fail, 77 skip (tor missing
#   and not root to install it). Bounded: PRIVNET_TIMEOUT (180 s) for the
#   network, then SELFTEST_EXIT_SECONDS (60 s) and SELFTEST_ONION_SECONDS (120 s)
#   for the checks; a run usually takes 40-60 s. PRIVNET_EXIT_CLIENT=0 skips
#   the exit check.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

"$HERE/privnet.sh" available || { echo "selftest: SKIP: tor is not installed"; exit 77; }
if [ $# -ge 1 ]; then DIR=$1; OWN_DIR=0; else DIR=$(mktemp -d /tmp/privnet.XXXXXX); OWN_DIR=1; fi
CHILD=""

finish() {
  local rc=$?
  if [ -n "$CHILD" ]; then
    kill "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
  fi
  "$HERE/privnet.sh" stop "$DIR" || rc=1
  if [ "$rc" -eq 0 ] && [ "$OWN_DIR" -eq 1 ]; then
    rm -rf "$DIR"
  elif [ "$rc" -ne 0 ]; then
    echo "selftest: FAIL (rc $rc); logs kept in $DIR" >&2
  fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 1' INT TERM

run() { # run CMD...: in the background, so that TERM/INT are handled at once
  "$@" &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=""
  return "$rc"
}

export PRIVNET_EXIT_CLIENT=${PRIVNET_EXIT_CLIENT:-1}
t0=$SECONDS
run "$HERE/privnet.sh" start "$DIR"
run python3 "$HERE/selftest.py" "$DIR"
echo "selftest: start + checks took $((SECONDS - t0))s"
