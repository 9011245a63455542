#!/bin/bash
# Proves the browser harness against itself: two headless Chromiums (browser_peer.mjs) talk to each
# other inside a network namespace that has only `lo`, so every candidate and every packet stays
# on loopback. Signaling goes through a fifo: offerer stdout -> answerer stdin, answerer stdout ->
# fifo -> offerer stdin.
#
#   tests/interop/selftest.sh            # 4 MiB random file
#   SELFTEST_MIB=64 tests/interop/selftest.sh
#
# Cases: 1 ping/echo with the offer converted to plain SDP (tests that input form),
# 2 offerer sends 3 files (random, 1 byte, empty) to the answerer, 3 the answerer sends
# (the control channel is opened by the answering browser), 4 a refused file must make both peers
# fail (exit 7) and leave the existing file alone. Exit 0 = all passed, 77 = skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "SKIP: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

"$here/setup.sh" || exit $?
for tool in unshare ip timeout sha256sum mkfifo; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
unshare -n true 2>/dev/null || skip "cannot create a network namespace (unshare -n needs root)"

size_mib=${SELFTEST_MIB:-4}
work=$(mktemp -d /tmp/rtcat-interop-selftest.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/out2" "$work/out3" "$work/out4"
head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/src/random.bin"
head -c 1 /dev/urandom >"$work/src/one.bin"
: >"$work/src/empty.bin"
echo "keep me" >"$work/out4/one.bin"

export P="$here/browser_peer.mjs" W="$work"
start=$(date +%s.%N)
# -k: if something hangs past the limit, SIGKILL follows; browser_peer's watchdog then removes
# its Chromium.
rc=0
timeout -k 5 180 unshare -n bash -s <<'EOF' || rc=$?
set -u
ip link set lo up
cd "$W"
to_plain() { # JSON description line -> plain SDP followed by a blank line
    node -e 'require("readline").createInterface({ input: process.stdin })
        .on("line", (l) => process.stdout.write(JSON.parse(l).sdp + "\n"))'
}
status=0
expect() { # expect NAME WANTED_RCS GOT_RCS
    if [ "$2" = "$3" ]; then echo "selftest: case $1 ok (exit codes $3)" >&2
    else echo "selftest: case $1 FAILED: exit codes $3, wanted $2" >&2; status=1; fi
}
mkfifo back1 back2 back3 back4

echo "selftest: case 1: ping/echo, offer given to the answerer as plain SDP" >&2
node "$P" --role offer --label-echo --timeout 40 --result r1o.json <back1 | to_plain |
    node "$P" --role answer --label-echo --timeout 40 --result r1a.json >back1
expect 1 "0 0 0" "${PIPESTATUS[*]}"

echo "selftest: case 2: offerer sends 3 files" >&2
node "$P" --role offer --send src/random.bin --send src/one.bin --send src/empty.bin \
    --timeout 60 --result r2o.json <back2 |
    node "$P" --role answer --recv out2 --expect-files 3 --timeout 60 --result r2a.json >back2
expect 2 "0 0" "${PIPESTATUS[*]}"

echo "selftest: case 3: answerer sends (opens the control channel after answering)" >&2
node "$P" --role offer --recv out3 --expect-files 1 --timeout 60 --result r3o.json <back3 |
    node "$P" --role answer --send src/random.bin --timeout 60 --result r3a.json >back3
expect 3 "0 0" "${PIPESTATUS[*]}"

echo "selftest: case 4: the receiver refuses an existing file: both must fail with 7" >&2
node "$P" --role offer --send src/one.bin --timeout 40 --result r4o.json <back4 |
    node "$P" --role answer --recv out4 --timeout 40 --result r4a.json >back4
expect 4 "7 7" "${PIPESTATUS[*]}"
exit $status
EOF
end=$(date +%s.%N)
[ "$rc" = 0 ] || fail "a case failed (rc $rc); see above"

# Independent checks of what landed on disk.
for f in random.bin one.bin empty.bin; do
    [ "$(sha256sum <"$work/src/$f")" = "$(sha256sum <"$work/out2/$f")" ] || fail "case 2: $f differs"
done
[ "$(sha256sum <"$work/src/random.bin")" = "$(sha256sum <"$work/out3/random.bin")" ] ||
    fail "case 3: random.bin differs"
[ "$(cat "$work/out4/one.bin")" = "keep me" ] || fail "case 4: the existing file was changed"
if ls "$work"/out*/*.part >/dev/null 2>&1; then fail "leftover .part files"; fi

node - "$work" "$size_mib" "$start" "$end" <<'EOF'
const [dir, mib, start, end] = process.argv.slice(2);
const r = (n) => JSON.parse(require("fs").readFileSync(`${dir}/${n}.json`, "utf8"));
const o1 = r("r1o"), a1 = r("r1a"), o2 = r("r2o"), a2 = r("r2a"), a3 = r("r3a");
const cands = o1.local_description.sdp.split("\r\n").filter((l) => /^a=candidate|^c=/.test(l));
const t = o1.timings;
const pair = (p) => `${p.local.candidateType} ${p.local.address}:${p.local.port} <-> ` +
    `${p.remote.candidateType} ${p.remote.address}:${p.remote.port} (${p.local.protocol})`;
console.log([
    `selftest: all cases passed in ${(end - start).toFixed(1)} s`,
    `  offer candidates inside unshare -n:`, ...cands.map((l) => `    ${l}`),
    `  echo received by the offerer: ${JSON.stringify(o1.messages[0].text)}`,
    `  selected pair (case 1): ${pair(o1.selected_pair)}`,
    `  startup (case 1 offerer): DevTools ${t.devtools_ms} ms, CDP ${t.cdp_connected_ms} ms, ` +
        `page ${t.page_ready_ms} ms, offer gathered ${t.gathered_ms} ms, connected ${t.connected_ms} ms`,
    `  case 2: ${a2.bytes} bytes in ${a2.transfer_seconds} s (${a2.mbytes_per_second} MB/s), ` +
        `random.bin ${mib} MiB in ${a2.files[0].seconds} s`,
    `  case 3: ${a3.bytes} bytes in ${a3.transfer_seconds} s (${a3.mbytes_per_second} MB/s)`,
].join("\n"));
EOF
