#!/bin/bash
# Proves tests/interop/plain_peer.py without rtcat: its engines (Chromium, Firefox ESR, aiortc)
# talk to each other inside a network namespace that has only `lo`, so every candidate and every
# packet stays on loopback. Signaling: offerer stdout -> answerer stdin, answerer stdout -> fifo
# -> offerer stdin.
#
#   tests/interop/plain_selftest.sh              # 4 MiB random file
#   PLAIN_SELFTEST_MIB=16 tests/interop/plain_selftest.sh
#
# Cases (exit codes must be "0 0" each; then the bytes on disk and the result JSON are checked):
#   1 chromium --send 3 files (random, 1 byte, empty)  -> aiortc --recv
#   2 aiortc --send                                    -> firefox --recv
#   3 firefox --send --send-as renamed.bin             -> chromium --recv
#   4 aiortc offers and receives                       <- chromium answers and sends
#   5 netcat aiortc (offer, given as plain SDP)        <-> chromium
#   6 netcat firefox (offer)                           <-> aiortc
#   7 netcat chromium (offer) with an empty text       <-> firefox
# Exit 0 = all passed, 1 = a case failed, 77 = skipped (an engine or unshare missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "SKIP: $*" >&2; exit 77; }
fail() {
    echo "FAIL: $*" >&2
    for f in "$work"/e*.log; do [ -f "$f" ] && { echo "--- ${f##*/}" >&2; tail -n 25 "$f" >&2; }; done
    exit 1
}

for tool in unshare ip timeout sha256sum mkfifo python3; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
for engine in chromium firefox aiortc; do
    why=$(python3 "$here/plain_peer.py" --engine $engine --check) || skip "$why"
done
unshare -n true 2>/dev/null || skip "cannot create a network namespace (unshare -n needs root)"

size_mib=${PLAIN_SELFTEST_MIB:-4}
work=$(mktemp -d /tmp/rtcat-plain-selftest.XXXXXX)
# PLAIN_SELFTEST_KEEP=1 keeps the work directory (logs e*.log, results r*.json) for a look.
[ "${PLAIN_SELFTEST_KEEP:-0}" = 1 ] && echo "plain_selftest: keeping $work" >&2 ||
    trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/src/random.bin"
head -c 1 /dev/urandom >"$work/src/one.bin"
: >"$work/src/empty.bin"

export PP="$here/plain_peer.py" W="$work"
start=$(date +%s.%N)
rc=0
# -k: if something hangs past the limit, SIGKILL follows; each browser's watchdog shell then
# removes it and its profile.
timeout -k 5 300 unshare -n bash -s <<'EOF' || rc=$?
set -u
ip link set lo up
cd "$W"
status=0
expect() { # expect NAME GOT_RCS
    if [ "$2" = "0 0" ]; then echo "plain_selftest: case $1 ok" >&2
    else echo "plain_selftest: case $1 FAILED: exit codes $2, wanted 0 0" >&2; status=1; fi
}
to_plain() { # JSON description line -> plain SDP followed by a blank line
    python3 -u -c 'import json, sys
for line in sys.stdin:
    sys.stdout.write(json.loads(line)["sdp"].replace("\r\n", "\n") + "\n")
    sys.stdout.flush()'
}
mkfifo b1 b2 b3 b4 b5 b6 b7
T=60

echo "plain_selftest: case 1: chromium sends 3 files to aiortc" >&2
python3 "$PP" --engine chromium --role offer --send src/random.bin --send src/one.bin \
    --send src/empty.bin --timeout $T --result r1o.json <b1 2>e1o.log |
    python3 "$PP" --engine aiortc --role answer --recv out1 --expect random.bin --expect one.bin \
        --expect empty.bin --timeout $T --result r1a.json >b1 2>e1a.log
expect 1 "${PIPESTATUS[*]}"

echo "plain_selftest: case 2: aiortc sends to firefox" >&2
python3 "$PP" --engine aiortc --role offer --send src/random.bin --timeout $T --result r2o.json \
    <b2 2>e2o.log |
    python3 "$PP" --engine firefox --role answer --recv out2 --expect random.bin --timeout $T \
        --result r2a.json >b2 2>e2a.log
expect 2 "${PIPESTATUS[*]}"

echo "plain_selftest: case 3: firefox sends to chromium, under another label" >&2
python3 "$PP" --engine firefox --role offer --send src/random.bin --send-as renamed.bin \
    --timeout $T --result r3o.json <b3 2>e3o.log |
    python3 "$PP" --engine chromium --role answer --recv out3 --expect renamed.bin --timeout $T \
        --result r3a.json >b3 2>e3a.log
expect 3 "${PIPESTATUS[*]}"

echo "plain_selftest: case 4: aiortc offers and receives, chromium answers and sends" >&2
python3 "$PP" --engine aiortc --role offer --recv out4 --expect random.bin --timeout $T \
    --result r4o.json <b4 2>e4o.log |
    python3 "$PP" --engine chromium --role answer --send src/random.bin --timeout $T \
        --result r4a.json >b4 2>e4a.log
expect 4 "${PIPESTATUS[*]}"

echo "plain_selftest: case 5: netcat aiortc <-> chromium (the offer as plain SDP)" >&2
python3 "$PP" --engine aiortc --role offer --netcat "hello from aiortc" --timeout $T \
    --result r5o.json <b5 2>e5o.log | to_plain |
    python3 "$PP" --engine chromium --role answer --netcat "hello from chromium" --timeout $T \
        --result r5a.json >b5 2>e5a.log
s=("${PIPESTATUS[@]}")
expect 5 "${s[0]} ${s[2]}"

echo "plain_selftest: case 6: netcat firefox <-> aiortc" >&2
python3 "$PP" --engine firefox --role offer --netcat "hello from firefox" --timeout $T \
    --result r6o.json <b6 2>e6o.log |
    python3 "$PP" --engine aiortc --role answer --netcat "hello from aiortc" --timeout $T \
        --result r6a.json >b6 2>e6a.log
expect 6 "${PIPESTATUS[*]}"

echo "plain_selftest: case 7: netcat chromium (empty text) <-> firefox" >&2
python3 "$PP" --engine chromium --role offer --netcat "" --timeout $T --result r7o.json \
    <b7 2>e7o.log |
    python3 "$PP" --engine firefox --role answer --netcat "hello from firefox" --timeout $T \
        --result r7a.json >b7 2>e7a.log
expect 7 "${PIPESTATUS[*]}"
exit $status
EOF
end=$(date +%s.%N)
[ "$rc" = 0 ] || fail "a case failed (rc $rc); see above"

# Independent checks of what landed on disk.
same() { [ "$(sha256sum <"$1")" = "$(sha256sum <"$2")" ] || fail "$2 differs from $1"; }
for f in random.bin one.bin empty.bin; do same "$work/src/$f" "$work/out1/$f"; done
same "$work/src/random.bin" "$work/out2/random.bin"
same "$work/src/random.bin" "$work/out3/renamed.bin"
same "$work/src/random.bin" "$work/out4/random.bin"

python3 - "$work" "$size_mib" "$start" "$end" <<'EOF' || fail "see above"
import json, sys
work, mib, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
r = lambda n: json.load(open(f"{work}/{n}.json"))
errors = []
want = {"5o": "hello from chromium", "5a": "hello from aiortc", "6o": "hello from aiortc",
        "6a": "hello from firefox", "7o": "hello from firefox", "7a": ""}
for k, text in want.items():
    got = r(f"r{k}").get("received")
    if got != text:
        errors.append(f"r{k}.json received {got!r}, want {text!r}")
if errors:
    print("FAIL: " + "; ".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"plain_selftest: all 7 cases passed in {end - start:.1f} s ({mib} MiB files)")
for n in ("1o", "1a", "2o", "2a", "3o", "3a", "4o", "4a", "5o", "5a", "6o", "6a", "7o", "7a"):
    x = r(f"r{n}")
    t = x.get("timings", {})
    cands = [ln.split()[4] + ":" + ln.split()[5] + " " + ln.split()[2]
             for ln in (x.get("local_description") or {}).get("sdp", "").splitlines()
             if ln.startswith("a=candidate:")]
    mms = x.get("max_message_size", {})
    files = ", ".join(f"{f['label']} {f.get('size')} B {f.get('seconds', '')}s".rstrip()
                      for f in x.get("files", []))
    chans = "; ".join(f"{c['origin'][0]}:{c['label']} {c['bytes']}B "
                      f"{'clean' if c.get('clean') else 'peer-reset' if c.get('complete') else 'UNCLEAN'}"
                      + (f" err={c['error']}" if c.get("error") else "")
                      for c in x.get("channels", []) if not c.get("placeholder"))
    print(f"  r{n}: {x['engine']:8} {x['role']:6} {x['mode']:6} {x['seconds']:6.2f}s "
          f"desc@{t.get('local_description_ms')}ms; candidates {cands}; "
          f"max-message-size ours {mms.get('local_sdp')} theirs {mms.get('remote_sdp')} "
          f"api {mms.get('api')}; peer hung up: {x.get('peer_hung_up')} "
          f"({(x.get('hangup') or {}).get('how')})"
          + (f"; files: {files}" if files else "") + f"; channels: {chans}")
EOF
