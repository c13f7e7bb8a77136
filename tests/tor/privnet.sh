#!/usr/bin/env bash
# tests/tor/privnet.sh — a private Tor network on 127.0.0.1 only, for the Tor
# transport tests (Debian's `tor` package: tor and tor-gencert).
# It never touches the system tor service, never uses port 9050, and never
# signals a process it did not start (only PIDs listed in DIR/pids, checked).
#
# Usage (from any directory, as root or not):
#   privnet.sh available    exit 0 if tor and tor-gencert are installed; if not and
#                           we are root, first install Debian's `tor` with apt-get
#                           (and say so). Exit 1 if they are still missing.
#   privnet.sh start DIR    build and start the network under DIR (created if
#                           missing; node directories left from an earlier run are
#                           replaced): 3 directory authorities (also relays),
#                           PRIVNET_RELAYS relays (default 4; relay0 is the only
#                           exit and accepts only 127.0.0.1:*) and one client, every
#                           port picked free on 127.0.0.1. Waits until a consensus
#                           lists every relay, then starts the client and waits
#                           until it has bootstrapped 100%; writes DIR/env, exits 0.
#                           All of it is bounded by PRIVNET_TIMEOUT seconds (default
#                           180; it usually takes 35-50 s). On timeout, error, TERM
#                           or INT: prints the tail of the logs, stops every tor it
#                           started, exits non-zero.
#   privnet.sh stop DIR     TERM every PID in DIR/pids (only those, and only while
#                           the process still runs a torrc under DIR), KILL what is
#                           left after 10 s; removes DIR/pids and DIR/env. Keeps the
#                           logs. Exit 1 only if a process survived KILL.
# Environment: PRIVNET_RELAYS, PRIVNET_TIMEOUT (above); PRIVNET_EXIT_CLIENT=1 also
# starts "exitclient", a second client with full descriptors, the only kind of
# client that can use a 127.0.0.1-only exit (see its torrc below);
# PRIVNET_INFO_LOG=1 adds DIR/<node>/info.log (info level) to every node.
#
# Files under DIR:
#   env        shell-sourceable, present only while the network is up:
#                SOCKS_PORT=...        the client's SOCKS5 port on 127.0.0.1 (with
#                                      ExtendedErrors: onion failures are 0xF0-0xF7)
#                CONTROL_PORT=...      the client's control port on 127.0.0.1; it accepts
#                                      ADD_ONION (this tor hosts the onion services)
#                CONTROL_COOKIE=...    its cookie file (SAFECOOKIE or COOKIE auth)
#                CLIENT_LOG=...        the client's notice log
#                CONSENSUS_SECONDS=... seconds from start to a complete consensus
#                BOOTSTRAP_SECONDS=... seconds from start to the client at 100%
#                EXIT_SOCKS_PORT=...   only with PRIVNET_EXIT_CLIENT=1
#   pids       one tor PID per line
#   <node>/    torrc, notice.log, stderr.log, keys and tor's data (auth0..2,
#              relay0..N, client, exitclient); common.torrc holds the lines all
#              nodes share (DirAuthority lines, testing intervals); bandwidth is
#              the authorities' bandwidth file.
#
# Onion services: create them on the client's control port (ADD_ONION) and,
# before dialling the .onion, wait for its HS_DESC UPLOADED events: a client
# that asks the HSDirs too early remembers their "not found" for a while
# (SIGNAL NEWNYM clears that). The first connection then takes 1-5 s.
# tests/tor/selftest.sh shows the whole sequence.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TORCTL="$HERE/torctl.py"
N_AUTH=3
N_RELAYS=${PRIVNET_RELAYS:-4}
TIMEOUT=${PRIVNET_TIMEOUT:-180}
EXIT_CLIENT=${PRIVNET_EXIT_CLIENT:-0}
STOP_WAIT=10

say() { echo "privnet: $*" >&2; }
die() { say "$*"; exit 1; }

find_bin() { # find_bin NAME: print its path (Debian puts tor in /usr/sbin)
  local p
  p=$(command -v "$1" 2>/dev/null) && { echo "$p"; return 0; }
  for p in /usr/sbin/"$1" /usr/bin/"$1" /usr/local/sbin/"$1" /usr/local/bin/"$1"; do
    [ -x "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}

cmd_available() {
  if find_bin tor >/dev/null && find_bin tor-gencert >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    say "tor and tor-gencert are missing (Debian package tor); run as root to install it"
    return 1
  fi
  say "installing Debian package: tor (apt-get install -y tor)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq tor >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq tor >/dev/null; } ||
    { say "apt-get install tor failed"; return 1; }
  say "installed: tor $(dpkg-query -W -f='${Version}' tor 2>/dev/null)"
  find_bin tor >/dev/null && find_bin tor-gencert >/dev/null
}

# is_ours DIR PID: PID is alive (not a zombie) and runs a torrc under DIR.
is_ours() {
  local dir=$1 pid=$2 state cmdline
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  state=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline" == *" -f $dir/"*"/torrc "* ]]
}

# signal_and_wait DIR SIGNAL SECONDS PID...: send SIGNAL to each PID that is
# still ours, poll until none is left or SECONDS pass; print those left.
signal_and_wait() {
  local dir=$1 sig=$2 deadline=$((SECONDS + $3)) pid left
  shift 3
  for pid in "$@"; do
    if is_ours "$dir" "$pid"; then kill "-$sig" "$pid" 2>/dev/null || true; fi
  done
  while :; do
    left=()
    for pid in "$@"; do
      if is_ours "$dir" "$pid"; then left+=("$pid"); fi
    done
    if [ ${#left[@]} -eq 0 ] || [ $SECONDS -ge $deadline ]; then break; fi
    sleep 0.2 # poll interval
  done
  echo "${left[*]}"
}

cmd_stop() {
  local dir=$1 pid pids=() left
  [ -f "$dir/pids" ] || { rm -f "$dir/env"; return 0; }
  while read -r pid; do
    if is_ours "$dir" "$pid"; then pids+=("$pid"); fi
  done <"$dir/pids"
  if [ ${#pids[@]} -gt 0 ]; then
    read -r -a left <<<"$(signal_and_wait "$dir" TERM "$STOP_WAIT" "${pids[@]}")"
    if [ ${#left[@]} -gt 0 ]; then
      say "still running ${STOP_WAIT}s after TERM, sending KILL: ${left[*]}"
      read -r -a left <<<"$(signal_and_wait "$dir" KILL 5 "${left[@]}")"
      if [ ${#left[@]} -gt 0 ]; then
        say "could not stop: ${left[*]}"
        return 1
      fi
    fi
  fi
  rm -f "$dir/pids" "$dir/env"
}

show_logs() { # the tail of every log, clients first
  local dir=$1 f
  for f in "$dir"/client/notice.log "$dir"/exitclient/notice.log "$dir"/auth*/notice.log \
           "$dir"/relay*/notice.log \
           "$dir"/*/stderr.log; do
    [ -s "$f" ] || continue
    echo "---- ${f#"$dir"/} (last 20 lines)" >&2
    tail -n 20 "$f" >&2
  done
}

# relay_torrc NAME ORPORT: the lines every relay and authority has.
relay_torrc() {
  cat <<EOF
%include $DIR/common.torrc
Nickname $1
DataDirectory $DIR/$1
Log notice file $DIR/$1/notice.log
$(info_log "$1")
ORPort 127.0.0.1:$2
Address 127.0.0.1
ContactInfo privnet@127.0.0.1
AssumeReachable 1
SocksPort 0
EOF
}

info_log() { # PRIVNET_INFO_LOG=1 adds an info-level log per node, for debugging
  if [ "${PRIVNET_INFO_LOG:-0}" = 1 ]; then echo "Log info file $DIR/$1/info.log"; fi
}

relay_keys() { # relay_keys NODE ORPORT: create its relay keys and DIR/NODE/fingerprint
  "$TOR" --list-fingerprint --defaults-torrc "$DIR/empty.torrc" -f "$DIR/empty.torrc" \
    --DataDirectory "$DIR/$1" --ORPort "127.0.0.1:$2" --Nickname "$1" \
    --Log "err stderr" >/dev/null 2>"$DIR/$1/keys.log" ||
    { say "tor --list-fingerprint failed for $1: $(cat "$DIR/$1/keys.log")"; return 1; }
}

authority_keys() { # authority_keys NODE ORPORT DIRPORT: v3 authority keys, then relay keys
  mkdir -m 700 "$DIR/$1/keys"
  (cd "$DIR/$1/keys" && echo "" | "$GENCERT" --create-identity-key -m 12 -a "127.0.0.1:$3" \
     --passphrase-fd 0 >"$DIR/$1/gencert.log" 2>&1) ||
    { say "tor-gencert failed for $1: $(cat "$DIR/$1/gencert.log")"; return 1; }
  grep -Eq '^fingerprint [0-9A-F]{40}$' "$DIR/$1/keys/authority_certificate" ||
    { say "no v3 identity in $1's authority_certificate"; return 1; }
  relay_keys "$1" "$2"
}

node_fingerprint() { # node_fingerprint NODE: its relay identity fingerprint
  local fp
  fp=$(awk '{print $2}' "$DIR/$1/fingerprint" 2>/dev/null)
  [[ "$fp" =~ ^[0-9A-F]{40}$ ]] || die "no relay fingerprint for $1"
  echo "$fp"
}

new_node_dir() { # new_node_dir NAME: an empty DIR/NAME, mode 0700 as tor requires
  rm -rf "${DIR:?}/$1"
  mkdir -m 700 "$DIR/$1"
}

client_torrc() { # client_torrc NAME SOCKSPORT CONTROLPORT
  cat <<EOF
%include $DIR/common.torrc
Nickname $1
DataDirectory $DIR/$1
Log notice file $DIR/$1/notice.log
$(info_log "$1")
SocksPort 127.0.0.1:$2 ExtendedErrors
ControlPort 127.0.0.1:$3
CookieAuthentication 1
CookieAuthFile $DIR/$1/control_auth_cookie
# Guards: the authorities only. A client fetches microdescriptors from its
# guards; a relay guard may not have them yet in the first minute (404, then
# the client waits 10 s before asking again), an authority always has them.
# And as authorities carry almost no weight as last hops, a circuit's last
# hop is never its guard (tor allows that for onion-service circuits; in so
# small a network it kept happening, failing as "extend back to the previous
# hop" and stalling bootstrap and onion connections for a minute or more).
EntryNodes $AUTH_FPS
EOF
}

start_cleanup() { # EXIT trap of start: on any failure, stop what was started
  local rc=$?
  [ "$READY" = 1 ] && return 0
  if [ -n "$WAITER" ]; then kill "$WAITER" 2>/dev/null || true; fi
  say "start failed; stopping what it started"
  show_logs "$DIR"
  cmd_stop "$DIR"
  exit $((rc ? rc : 1))
}

seconds_left() { # seconds_left T0: what is left of PRIVNET_TIMEOUT since T0 (at least 1)
  local secs=$((TIMEOUT - (SECONDS - $1)))
  if [ "$secs" -lt 1 ]; then secs=1; fi
  echo "$secs"
}

bounded_wait() { # bounded_wait CMD...: run a poller in the background and wait for
  # it, so that a TERM or INT sent to this script is handled at once (bash runs
  # traps only between foreground commands); its PID is killed by start_cleanup
  "$@" &
  WAITER=$!
  local rc=0
  wait "$WAITER" || rc=$?
  WAITER=""
  return "$rc"
}

start_tor() { # start_tor NODE: run it in the background, record its PID
  local node=$1
  "$TOR" --defaults-torrc "$DIR/empty.torrc" -f "$DIR/$node/torrc" \
    >/dev/null 2>"$DIR/$node/stderr.log" </dev/null &
  echo $! >>"$DIR/pids"
}

cmd_start() {
  DIR=$1
  if ! TOR=$(find_bin tor) || ! GENCERT=$(find_bin tor-gencert); then
    die "tor or tor-gencert missing: run '$0 available' first"
  fi
  command -v python3 >/dev/null || die "python3 missing"
  if ! [[ "$N_RELAYS" =~ ^[1-9][0-9]*$ ]]; then die "PRIVNET_RELAYS must be a number >= 1"; fi
  if ! [[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]]; then die "PRIVNET_TIMEOUT must be a number >= 1"; fi
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  case "$DIR" in *[[:space:]]*) die "DIR must not contain spaces: $DIR" ;; esac
  if [ -f "$DIR/pids" ]; then
    while read -r pid; do
      is_ours "$DIR" "$pid" && die "a network already runs in $DIR (pid $pid); stop it first"
    done <"$DIR/pids"
  fi
  rm -f "$DIR/pids" "$DIR/env"
  : >"$DIR/pids"
  : >"$DIR/empty.torrc"
  READY=0
  WAITER=""
  trap 'start_cleanup' EXIT
  trap 'exit 1' INT TERM

  local t0=$SECONDS i ports p=0
  # authorities: ORPort + DirPort; relays: ORPort; client: SocksPort + ControlPort
  # (and two more for the exit client)
  read -r -a ports <<<"$(python3 "$TORCTL" ports $((2 * N_AUTH + N_RELAYS + 4)))"

  # Keys, in parallel (about 1.5 s of CPU per authority, 0.5 s per relay):
  # authorities get v3 authority keys (tor-gencert, empty passphrase on fd 0);
  # every node gets its relay identity (tor --list-fingerprint).
  local auth_or=() auth_dir=() relay_or=() jobs=() job failed=0
  for ((i = 0; i < N_AUTH; i++)); do
    auth_or+=("${ports[p]}"); auth_dir+=("${ports[p + 1]}"); p=$((p + 2))
    new_node_dir "auth$i"
    authority_keys "auth$i" "${auth_or[i]}" "${auth_dir[i]}" &
    jobs+=($!)
  done
  for ((i = 0; i < N_RELAYS; i++)); do
    relay_or+=("${ports[p]}"); p=$((p + 1))
    new_node_dir "relay$i"
    relay_keys "relay$i" "${relay_or[i]}" &
    jobs+=($!)
  done
  for job in "${jobs[@]}"; do wait "$job" || failed=1; done
  [ "$failed" = 0 ] || die "key generation failed"

  local dirauth_lines="" v3 fp
  AUTH_FPS=""
  for ((i = 0; i < N_AUTH; i++)); do
    v3=$(sed -n 's/^fingerprint \([0-9A-F]\{40\}\)$/\1/p' "$DIR/auth$i/keys/authority_certificate")
    fp=$(node_fingerprint "auth$i")
    AUTH_FPS+="${AUTH_FPS:+,}$fp"
    dirauth_lines+="DirAuthority auth$i orport=${auth_or[i]} no-v2 v3ident=$v3 127.0.0.1:${auth_dir[i]} $fp"$'\n'
  done

  # Shared by every node. Short voting intervals: the first consensus comes
  # after about 20-30 s; clients reach 100% soon after.
  cat >"$DIR/common.torrc" <<EOF
TestingTorNetwork 1
${dirauth_lines}RunAsDaemon 0
Sandbox 0
SafeLogging 0
ClientUseIPv6 0
NumCPUs 1
ShutdownWaitLength 0
# no GeoIP: parsing Debian's files costs each tor about 2 s of CPU at start
GeoIPFile $DIR/empty.torrc
GeoIPv6File $DIR/empty.torrc
TestingV3AuthInitialVotingInterval 20
TestingV3AuthInitialVoteDelay 4
TestingV3AuthInitialDistDelay 4
V3AuthVotingInterval 20
V3AuthVoteDelay 4
V3AuthDistDelay 4
EOF

  # Relays; relay0 is the one exit, for 127.0.0.1 only (the authorities vote it Exit).
  local exit_fp bwlines=""
  exit_fp=$(node_fingerprint relay0)
  for ((i = 0; i < N_RELAYS; i++)); do
    fp=$(node_fingerprint "relay$i")
    bwlines+="node_id=\$$fp bw=1000"$'\n'
    { relay_torrc "relay$i" "${relay_or[i]}"
      if [ "$i" -eq 0 ]; then
        printf 'ExitRelay 1\nExitPolicy accept 127.0.0.1:*\nExitPolicy reject *:*\n'
        # a relay fetches consensuses lazily: while its copy predates a newer
        # relay, it would refuse exit streams arriving from that "unknown relay"
        printf 'RefuseUnknownExits 0\n'
      else
        printf 'ExitRelay 0\nExitPolicy reject *:*\n'
      fi
    } >"$DIR/relay$i/torrc"
  done

  # Every relay gets the same measured bandwidth (bandwidth file format 1.0.0:
  # a timestamp line, then one line per relay). Without it the weights come
  # from the few bytes each new relay has seen, and one relay ends up with
  # nearly all the weight. Authorities ignore measurements of themselves: their
  # weight stays near 0, so circuits run over the relays (see EntryNodes).
  printf '%d\n%s' "$(date +%s)" "$bwlines" >"$DIR/bandwidth.tmp"
  mv "$DIR/bandwidth.tmp" "$DIR/bandwidth"

  for ((i = 0; i < N_AUTH; i++)); do
    { relay_torrc "auth$i" "${auth_or[i]}"
      cat <<EOF
DirPort 127.0.0.1:${auth_dir[i]}
AuthoritativeDirectory 1
V3AuthoritativeDirectory 1
ExitRelay 0
ExitPolicy reject *:*
TestingDirAuthVoteGuard 127.0.0.0/8
TestingDirAuthVoteHSDir 127.0.0.0/8
TestingDirAuthVoteExit $exit_fp
TestingDirAuthVoteExitIsStrict 1
AuthDirVoteStableGuaranteeMinUptime 0
AuthDirVoteStableGuaranteeMTBF 0
V3BandwidthsFile $DIR/bandwidth
EOF
    } >"$DIR/auth$i/torrc"
  done

  local socks=${ports[p]} control=${ports[p + 1]} xsocks=${ports[p + 2]} xcontrol=${ports[p + 3]}
  new_node_dir client
  client_torrc client "$socks" "$control" >"$DIR/client/torrc"
  if [ "$EXIT_CLIENT" = 1 ]; then
    new_node_dir exitclient
    # Full descriptors: a microdescriptor only carries a summary of the exit
    # policy, which cannot say "accept 127.0.0.1:*", so a client using them
    # sees no exit at all. The main client keeps tor's default
    # (microdescriptors), like the tor a secirc relay uses; with full
    # descriptors it stalled while relays republished theirs in the first minute.
    { client_torrc exitclient "$xsocks" "$xcontrol"; echo "UseMicrodescriptors 0"; } \
      >"$DIR/exitclient/torrc"
  fi

  for ((i = 0; i < N_AUTH; i++)); do start_tor "auth$i"; done
  for ((i = 0; i < N_RELAYS; i++)); do start_tor "relay$i"; done
  say "started $((N_AUTH + N_RELAYS)) relays in $DIR; waiting for a consensus listing them all (max ${TIMEOUT}s)"
  # Clients start once the consensus is complete: one started earlier backs
  # off between consensus fetches and builds its first circuits over a partial
  # network, which made bootstrap take anywhere from 30 s to 150 s.
  bounded_wait python3 "$TORCTL" wait-consensus "${auth_dir[0]}" $((N_AUTH + N_RELAYS)) \
    "$(seconds_left "$t0")" ||
    die "no consensus listing all $((N_AUTH + N_RELAYS)) relays within ${TIMEOUT}s"
  local consensus_took=$((SECONDS - t0))
  start_tor client
  if [ "$EXIT_CLIENT" = 1 ]; then start_tor exitclient; fi
  say "consensus after ${consensus_took}s; started the client(s)"

  bounded_wait python3 "$TORCTL" wait-bootstrap "$control" "$DIR/client/control_auth_cookie" \
    "$(seconds_left "$t0")" ||
    die "the client did not bootstrap within ${TIMEOUT}s"
  if [ "$EXIT_CLIENT" = 1 ]; then
    bounded_wait python3 "$TORCTL" wait-bootstrap "$xcontrol" \
      "$DIR/exitclient/control_auth_cookie" "$(seconds_left "$t0")" exitclient ||
      die "the exit client did not bootstrap within ${TIMEOUT}s"
  fi
  local took=$((SECONDS - t0))
  {
    printf 'SOCKS_PORT=%d\n' "$socks"
    printf 'CONTROL_PORT=%d\n' "$control"
    printf 'CONTROL_COOKIE=%q\n' "$DIR/client/control_auth_cookie"
    printf 'CLIENT_LOG=%q\n' "$DIR/client/notice.log"
    printf 'CONSENSUS_SECONDS=%d\n' "$consensus_took"
    printf 'BOOTSTRAP_SECONDS=%d\n' "$took"
    if [ "$EXIT_CLIENT" = 1 ]; then printf 'EXIT_SOCKS_PORT=%d\n' "$xsocks"; fi
  } >"$DIR/env.tmp"
  mv "$DIR/env.tmp" "$DIR/env"
  READY=1
  say "ready after ${took}s: SOCKS 127.0.0.1:$socks, control 127.0.0.1:$control ($DIR/env)"
}

case "${1:-}" in
  available) [ $# -eq 1 ] || die "usage: $0 available"; cmd_available ;;
  start) [ $# -eq 2 ] || die "usage: $0 start DIR"; cmd_start "$2" ;;
  stop)
    [ $# -eq 2 ] || die "usage: $0 stop DIR"
    [ -d "$2" ] || die "no such directory: $2"
    cmd_stop "$(cd "$2" && pwd)" ;;
  *) die "usage: $0 available | start DIR | stop DIR" ;;
esac
