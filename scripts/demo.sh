#!/usr/bin/env bash
# The loopback demo: installs dependencies, builds, starts a local coturn (STUN/TURN server with
# RFC 5780 on 127.0.0.1 + 127.0.0.2, user demo/demo, realm rtcat.demo) and runs
# `rtcat stun-probe` against it. coturn is stopped on exit, whatever happens.
#
#   scripts/demo.sh [--no-install] [--no-build] [-- EXTRA RTCAT ARGS]
#
# Nothing leaves the machine: every address is on the loopback interface.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
install=1
build=1
extra=()
while (($#)); do
    case "$1" in
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) extra+=("$1") ;;
    esac
    shift
done

say() { printf '\n\033[1m%s\033[0m\n' "$*" >&2; }
run() {
    printf '+ %s\n' "$*" >&2
    "$@"
}

if ((install)); then
    say "1. dependencies"
    run bash scripts/install-deps.sh
fi
if ((build)); then
    say "2. build"
    run bash scripts/build.sh
fi
RTCAT="${RTCAT:-${RTCAT_BUILD_DIR:-${RTCAT_BUILD_ROOT:-$ROOT}/build}/rtcat}"
if [[ ! -x $RTCAT ]]; then
    echo "demo: $RTCAT not found (build it with scripts/build.sh)" >&2
    exit 1
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/rtcat-demo.XXXXXX")"

say "3. two peers wired by pipes send a 64 MiB file over a data channel (127.0.0.1)"
head -c $((64 << 20)) /dev/urandom >"$tmp/big.iso"
mkfifo "$tmp/back"
printf '+ %s\n' "rtcat send-file --bind 127.0.0.1 big.iso <back | rtcat answer --bind 127.0.0.1 --out dl/ >back" >&2
(cd "$tmp" && timeout 120 "$RTCAT" send-file --bind 127.0.0.1 big.iso <back |
    timeout 120 "$RTCAT" answer --bind 127.0.0.1 --out dl/ -q >back)
printf '+ sha256sum big.iso dl/big.iso\n' >&2
(cd "$tmp" && sha256sum big.iso dl/big.iso)
rm -f "$tmp/big.iso" "$tmp/dl/big.iso"

say "4. a local STUN/TURN server (coturn)"
coturn_pid=""
cleanup() {
    if [[ -n $coturn_pid ]] && kill -0 "$coturn_pid" 2>/dev/null; then
        printf '+ stopping coturn\n' >&2
        kill -TERM "$coturn_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$coturn_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$coturn_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# tests/support/coturn.py picks a free port (and port+1 for RFC 5780), starts turnserver with
# long-term credentials, waits until it answers a STUN binding request, prints "ready HOST PORT".
printf '+ %s\n' "python3 tests/support/coturn.py serve --listen 127.0.0.1 --listen 127.0.0.2 --user demo:demo --realm rtcat.demo" >&2
python3 tests/support/coturn.py serve --listen 127.0.0.1 --listen 127.0.0.2 --user demo:demo \
    --realm rtcat.demo --max-seconds 900 >"$tmp/coturn.out" 2>"$tmp/coturn.err" &
coturn_pid=$!
port=""
for _ in $(seq 1 300); do
    if read -r word host p _ <"$tmp/coturn.out" 2>/dev/null && [[ $word == ready ]]; then
        port=$p
        break
    fi
    if ! kill -0 "$coturn_pid" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [[ -z $port ]]; then
    echo "demo: coturn did not start:" >&2
    cat "$tmp/coturn.out" "$tmp/coturn.err" >&2
    exit 1
fi
echo "coturn listening on $host:$port (alternate address 127.0.0.2:$((port + 1))), user demo/demo, realm rtcat.demo" >&2

say "5. rtcat stun-probe"
run "$RTCAT" stun-probe "127.0.0.1:$port" --turn "turn:demo:demo@127.0.0.1:$port?transport=udp" "${extra[@]}"
