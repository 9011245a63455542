"""rtcat <-> a real headless Chromium (tests/interop/browser_peer.mjs), file transfer and netcat.

Every case runs inside `unshare -n` with only `lo` up: Chromium then offers a single 127.0.0.1
host candidate and no packet can leave the machine. Signaling goes through fifos exactly as a
user would pipe the two programs together (tests/interop/README.md). Skipped (77) when the
harness cannot run here (tests/interop/setup.sh exits 77: no node, no Chromium, no npm registry)
or when network namespaces are unavailable (`unshare -n` needs root).

Cases: rtcat sends / browser receives; browser sends / `rtcat answer --out`; `rtcat offer --out`
with the browser answering and sending; netcat mode in both roles; the browser hanging up while rtcat's stdin is still open;
unsafe names ("../evil.txt", absolute, backslash), announced politely and pushed anyway.
"""

import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from rtcat_test import SOURCE_DIR, check, rtcat_binary, run, run_tests, skip  # noqa: E402

INTEROP = SOURCE_DIR / "tests" / "interop"
PEER = INTEROP / "browser_peer.mjs"

# Limits. rtcat's --timeout bounds signaling and set-up; the harness's --timeout the whole browser
# run (Chromium start ~1-3 s, a 6 MiB transfer ~1 s at the 5-8 MB/s seen here); the outer limit
# kills the whole namespace (process group) if something still hangs.
kRtcatTimeoutS = 30
kBrowserTimeoutS = 45
kCaseTimeoutS = 75
# Size of the random file: tests/interop/README.md recommends 4-8 MiB for interop runs.
kFileBytes = 6 * 1024 * 1024
# A peer that closes the connection cleanly must end rtcat long before ICE consent (30 s) would.
kHangupExitS = 10.0


def _prerequisites():
    for tool in ("unshare", "ip", "bash", "mkfifo"):
        if not shutil.which(tool):
            skip(f"{tool} is not installed")
    r = run(["sh", str(INTEROP / "setup.sh")], timeout=300)
    if r.rc == 77:
        skip(f"browser harness unavailable: {r.stderr.strip()}")
    if r.rc != 0:
        print(r, flush=True)
        sys.exit(1)
    r = run(["unshare", "-n", "true"], timeout=20)
    if r.rc != 0:
        skip(f"cannot create a network namespace (unshare -n needs root): {r.stderr.strip()}")


_prerequisites()
RTCAT = rtcat_binary()


# ---- helpers -------------------------------------------------------------------------------------
class Work:
    """A scratch directory for one case, with the logs of both peers for failure messages."""

    def __init__(self, name):
        self.dir = Path(tempfile.mkdtemp(prefix=f"rtcat-interop-{name}-"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __truediv__(self, name):
        return self.dir / name

    def logs(self):
        out = []
        for name in ("rtcat.err", "browser.err"):
            p = self.dir / name
            if p.exists():
                text = p.read_text(errors="replace")
                lines = text.splitlines()
                if len(lines) > 60:
                    lines = lines[:10] + ["..."] + lines[-50:]
                out.append(f"--- {name} ---\n" + "\n".join(lines))
        return "\n".join(out)

    def result(self, name="r.json"):
        p = self.dir / name
        check(p.exists(), f"{name} was not written\n{self.logs()}")
        return json.loads(p.read_text())

    def check(self, cond, message, r=None):
        if not cond:
            check(False, f"{message}\n{r if r is not None else ''}\n{self.logs()}")

    def random_file(self, name, size):
        data = os.urandom(size)
        (self.dir / name).write_bytes(data)
        return hashlib.sha256(data).hexdigest()


def in_netns(w, script, env=None):
    """Runs a bash script in a fresh network namespace with only lo, in w.dir, with $R (rtcat),
    $P (the harness), $W (w.dir) set. The script must print `rcs rtcat=N browser=M`."""
    full = f'set -u; ip link set lo up || exit 90; cd "$W"\n{script}'
    e = {"R": RTCAT, "P": str(PEER), "W": str(w.dir), "RT": str(kRtcatTimeoutS),
         "BT": str(kBrowserTimeoutS), **(env or {})}
    r = run(["unshare", "-n", "bash", "-c", full], timeout=kCaseTimeoutS, env=e)
    w.check(not r.timed_out, f"case timed out after {kCaseTimeoutS}s", r)
    m = re.search(r"^rcs rtcat=(\S+) browser=(\S+)$", r.stdout, re.M)
    w.check(m is not None, "no exit codes reported", r)
    rcs = (m.group(1), m.group(2))
    print(f"exit codes: rtcat={rcs[0]} browser={rcs[1]}", flush=True)
    return rcs, r


# Appended to a case's script: the namespace's UDP counters (/proc/net/snmp is per namespace,
# so they count only this case's traffic: rtcat's socket and Chromium's).
UDP_COUNTERS = """echo "snmp $(grep '^Udp:' /proc/net/snmp | tr '\\n' ' ')"
"""


def udp_counters(r):
    """The namespace's Udp counters from a script that ran UDP_COUNTERS, as a dict."""
    m = re.search(r"^snmp Udp: (.*?) Udp: (.*)$", r.stdout, re.M)
    if not m:
        return {}
    names, values = m.group(1).split(), m.group(2).split()
    return dict(zip(names, (int(v) for v in values)))


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_loopback_pair(w, res):
    pair = res.get("selected_pair") or {}
    for side in ("local", "remote"):
        c = pair.get(side) or {}
        w.check(c.get("address") == "127.0.0.1" and c.get("candidateType") == "host",
                f"selected pair {side} should be host 127.0.0.1: {pair}")
    print(f"selected pair: {pair['local']['address']}:{pair['local']['port']} <-> "
          f"{pair['remote']['address']}:{pair['remote']['port']} ({pair['local'].get('protocol')}, "
          f"{pair.get('dtlsCipher')}), RTT {pair.get('currentRoundTripTime')} s", flush=True)


def check_received_file(w, res, rtcat_err, name, size, sha):
    """Browser sent `name`: r.json (sender) says ok, rtcat's summary says verified."""
    w.check(res.get("ok") is True, f"browser result not ok: {res.get('error')}")
    files = res.get("files") or []
    w.check(len(files) == 1 and files[0].get("ok") and files[0].get("sha256") == sha,
            f"browser's file list: {files}")
    w.check(re.search(rf"{re.escape(name)}\s+{size} bytes\s+sha256 {sha}\s+verified", rtcat_err),
            "rtcat's summary should list the file as verified")
    print(f"browser sent {res.get('bytes')} bytes at {res.get('mbytes_per_second')} MB/s", flush=True)


def candidate_lines(sdp):
    return [ln for ln in sdp.splitlines() if ln.startswith(("a=candidate", "c=", "a=setup",
                                                             "a=max-message-size", "m="))]


# ---- file transfer ---------------------------------------------------------------------------------
def test_rtcat_sends_browser_receives():
    with Work("a") as w:
        sha = w.random_file("random.bin", kFileBytes)
        rcs, r = in_netns(w, """mkfifo back
"$R" -v send-file random.bin --sdp-format json --timeout "$RT" <back 2>rtcat.err |
    node "$P" --role answer --recv out --expect-files 1 --timeout "$BT" --result r.json \\
    >back 2>browser.err
echo "rcs rtcat=${PIPESTATUS[0]} browser=${PIPESTATUS[1]}"
""" + UDP_COUNTERS)
        w.check(rcs == ("0", "0"), "both must exit 0", r)
        w.check(sha256_of(w / "out" / "random.bin") == sha, "received file differs")
        w.check(sorted(os.listdir(w / "out")) == ["random.bin"], "only the file, no .part")
        res = w.result()
        w.check(res.get("ok") is True and res.get("error") is None, f"r.json: {res.get('error')}")
        files = res.get("files") or []
        w.check(len(files) == 1 and files[0].get("name") == "random.bin" and files[0].get("ok")
                and files[0].get("sha256") == sha and files[0].get("size") == kFileBytes,
                f"browser's file list: {files}")
        w.check(res.get("announced") == {"files": 1, "bytes": kFileBytes},
                f"rtcat's hello: {res.get('announced')}")
        err = (w / "rtcat.err").read_text()
        w.check(re.search(rf"random\.bin\s+{kFileBytes} bytes\s+sha256 {sha}\s+verified", err),
                "rtcat's summary should say verified")
        check_loopback_pair(w, res)
        # What each side put in its description (rtcat's offer, Chromium's answer).
        print("rtcat's offer:\n  " + "\n  ".join(candidate_lines(res["remote_description"]["sdp"])))
        print("Chromium's answer:\n  " + "\n  ".join(candidate_lines(res["local_description"]["sdp"])))
        print(f"browser received {res['bytes']} bytes at {res['mbytes_per_second']} MB/s; "
              f"timings {res['timings']}", flush=True)
        # rtcat sends in bursts (GSO: up to 54 datagrams per send); a browser reads one datagram
        # at a time, so what its socket buffer cannot hold the kernel drops (SCTP repairs it,
        # slowly). SCTP's window bounds a burst; this shows whether it is enough.
        udp = udp_counters(r)
        w.check(udp, "no UDP counters from the namespace", r)
        print(f"UDP in the namespace: {udp.get('InDatagrams')} datagrams received, "
              f"{udp.get('RcvbufErrors')} dropped for a full receive buffer, "
              f"{udp.get('InErrors')} errors", flush=True)


def test_browser_sends_rtcat_answers():
    with Work("b") as w:
        sha = w.random_file("random.bin", kFileBytes)
        rcs, r = in_netns(w, """mkfifo back
node "$P" --role offer --send random.bin --timeout "$BT" --result r.json <back 2>browser.err |
    "$R" -v answer --out out --sdp-format json --timeout "$RT" >back 2>rtcat.err
echo "rcs rtcat=${PIPESTATUS[1]} browser=${PIPESTATUS[0]}"
""")
        w.check(rcs == ("0", "0"), "both must exit 0", r)
        w.check(sha256_of(w / "out" / "random.bin") == sha, "received file differs")
        w.check(sorted(os.listdir(w / "out")) == ["random.bin"], "only the file, no .part")
        res = w.result()
        check_received_file(w, res, (w / "rtcat.err").read_text(), "random.bin", kFileBytes, sha)
        check_loopback_pair(w, res)
        print("Chromium's offer:\n  " + "\n  ".join(candidate_lines(res["local_description"]["sdp"])))
        print("rtcat's answer:\n  " + "\n  ".join(candidate_lines(res["remote_description"]["sdp"])),
              flush=True)


def test_rtcat_offers_browser_answers_and_sends():
    with Work("c") as w:
        sha = w.random_file("random.bin", kFileBytes)
        rcs, r = in_netns(w, """mkfifo back
"$R" -v offer --out out --sdp-format json --timeout "$RT" <back 2>rtcat.err |
    node "$P" --role answer --send random.bin --timeout "$BT" --result r.json >back 2>browser.err
echo "rcs rtcat=${PIPESTATUS[0]} browser=${PIPESTATUS[1]}"
""")
        w.check(rcs == ("0", "0"), "both must exit 0", r)
        w.check(sha256_of(w / "out" / "random.bin") == sha, "received file differs")
        w.check(sorted(os.listdir(w / "out")) == ["random.bin"], "only the file, no .part")
        res = w.result()
        check_received_file(w, res, (w / "rtcat.err").read_text(), "random.bin", kFileBytes, sha)
        check_loopback_pair(w, res)


def test_rtcat_sends_directory_of_small_files():
    """Several small files from rtcat to Chromium. Regression: rtcat used to reset each file
    channel right after its last byte, and Chromium (156, dcSCTP) then dropped the channel's
    messages; the channel now closes on the receiver's ack."""
    # send-file --answer: the browser offers and receives; names carry sub-folders.
    with Work("dir") as w:
        (w / "src" / "sub" / "deeper").mkdir(parents=True)
        want = {f"src/sub/f{i}": w.random_file(f"src/sub/f{i}", 1000) for i in range(1, 5)}
        want["src/sub/deeper/one"] = w.random_file("src/sub/deeper/one", 1)
        want["src/empty"] = w.random_file("src/empty", 0)
        rcs, r = in_netns(w, """mkfifo back
node "$P" --role offer --recv out --expect-files 6 --timeout "$BT" --result r.json \\
    <back 2>browser.err |
    "$R" -v send-file --answer src --sdp-format json --timeout "$RT" >back 2>rtcat.err
echo "rcs rtcat=${PIPESTATUS[1]} browser=${PIPESTATUS[0]}"
""")
        w.check(rcs == ("0", "0"), "both must exit 0", r)
        got = {str(p.relative_to(w / "out")): sha256_of(p)
               for p in (w / "out").rglob("*") if p.is_file()}
        w.check(got == want, f"received tree differs: {got}")
        res = w.result()
        w.check(res.get("ok") is True, f"r.json: {res.get('error')}")
        w.check(sorted(f["name"] for f in res["files"]) == sorted(want), f"names: {res['files']}")
        check_loopback_pair(w, res)


# ---- netcat mode -------------------------------------------------------------------------------------
# rtcat (offer|answer without --out) opens "rtcat-stdio", sends stdin on it and closes it at EOF;
# the peer's "rtcat-stdio" goes to stdout; the session ends when both are closed. Signaling is on
# fifos so stdin/stdout carry data. `<>` opens the browser's input fifo read-write, which does
# not block (with plain `<` the two fifo opens wait for each other).

BROWSER_TEXT = "hello from chromium\nsecond line, no newline at the end"


def rtcat_text():
    # Several times rtcat's 64 KiB read size: more than one message, order matters.
    return "".join(f"rtcat line {i:06d} {'x' * 40}\n" for i in range(6000))


def _netcat(rtcat_role):
    with Work(f"nc-{rtcat_role}") as w:
        sent = rtcat_text()
        (w / "rtcat_in.txt").write_text(sent)
        browser_role = "offer" if rtcat_role == "answer" else "answer"
        rcs, r = in_netns(w, f"""mkfifo to_rtcat to_browser
node "$P" --role {browser_role} --netcat "$BTEXT" --timeout "$BT" --result r.json \\
    <>to_browser >to_rtcat 2>browser.err & b=$!
"$R" -v {rtcat_role} --sdp-in to_rtcat --sdp-out to_browser --timeout "$RT" \\
    <rtcat_in.txt >rtcat_out.txt 2>rtcat.err; rc=$?
wait $b; echo "rcs rtcat=$rc browser=$?"
""", env={"BTEXT": BROWSER_TEXT})
        w.check(rcs == ("0", "0"), "both must exit 0", r)
        out = (w / "rtcat_out.txt").read_text()
        w.check(out == BROWSER_TEXT, f"rtcat's stdout: {out[:200]!r}")
        res = w.result()
        w.check(res.get("ok") is True, f"r.json: {res.get('error')}")
        got = res.get("received") or ""
        w.check(got == sent, f"browser received {len(got)} of {len(sent)} bytes; differs")
        labels = {c["label"] for c in res.get("channels", [])}
        w.check(labels == {"rtcat-stdio"}, f"rtcat opened channels {labels}")
        print(f"browser got {len(got)} bytes in {len(res['messages'])} message(s)", flush=True)
        check_loopback_pair(w, res)


def test_netcat_browser_offers_rtcat_answers():
    _netcat("answer")


def test_netcat_rtcat_offers_browser_answers():
    _netcat("offer")


def test_netcat_browser_hangs_up_while_stdin_open():
    # The browser sends a line, closes its channel and at once the whole connection (SCTP ABORT,
    # DTLS close_notify). rtcat's stdin stays open (a fifo bash holds), so only the peer's
    # close can end it; it must not wait for ICE consent to expire (30 s).
    with Work("hangup") as w:
        rcs, r = in_netns(w, """mkfifo to_rtcat to_browser in
exec 3<>in; printf 'from rtcat\\n' >&3
"$R" -v answer --sdp-in to_rtcat --sdp-out to_browser --timeout "$RT" <in >rtcat_out.txt \\
    2>rtcat.err & r=$!
node "$P" --role offer --netcat "bye from chromium" --netcat-hangup --timeout "$BT" \\
    --result r.json <>to_browser >to_rtcat 2>browser.err; b=$?
t=$(date +%s.%N)
for i in $(seq 200); do kill -0 $r 2>/dev/null || break; sleep 0.1; done
kill -0 $r 2>/dev/null && { echo "rtcat still running 20 s after the hang-up" >&2; kill $r; }
wait $r; rc=$?
echo "after_browser_s=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
echo "rcs rtcat=$rc browser=$b"
""")
        m = re.search(r"after_browser_s=(\S+)", r.stdout)
        after = float(m.group(1)) if m else float("inf")
        print(f"rtcat ended {after:.2f} s after the browser's exit", flush=True)
        w.check(rcs[1] == "0", "browser must exit 0", r)
        w.check(after < kHangupExitS, f"rtcat must end within {kHangupExitS} s of the hang-up", r)
        # The peer closed its channel before the connection, so both channels are closed: a
        # clean end (0). 7 would also be defensible (our stdin was not finished); not 3/4/signal.
        w.check(rcs[0] in ("0", "7"), "rtcat must end cleanly (0) or as a transfer error (7)", r)
        out = (w / "rtcat_out.txt").read_text()
        w.check(out == "bye from chromium", f"rtcat's stdout: {out!r}")


# ---- unsafe names --------------------------------------------------------------------------------------
def _no_evil(w):
    found = [str(p.relative_to(w.dir)) for p in w.dir.rglob("*") if "evil" in p.name]
    w.check(not found, f"files with refused names appeared: {found}")


def test_path_traversal_refused():
    with Work("e") as w:
        w.random_file("payload.bin", 100_000)
        (w / "out").mkdir()
        rcs, r = in_netns(w, """mkfifo back
node "$P" --role offer --send payload.bin --send-as ../evil.txt --timeout "$BT" --result r.json \\
    <back 2>browser.err |
    "$R" -v answer --out out --sdp-format json --timeout "$RT" >back 2>rtcat.err
echo "rcs rtcat=${PIPESTATUS[1]} browser=${PIPESTATUS[0]}"
""")
        w.check(rcs == ("7", "7"), "rtcat must refuse the name (7); the browser then fails (7)", r)
        _no_evil(w)
        w.check(os.listdir(w / "out") == [], "nothing may be written, not even a .part")
        res = w.result()
        files = res.get("files") or []
        w.check(len(files) == 1 and str(files[0].get("error", "")).startswith("rejected:"),
                f"the browser must have been sent a reject: {files}")
        w.check("../evil.txt" in (w / "rtcat.err").read_text(), "rtcat should name what it refused")


def test_unsafe_names_pushed_anyway_are_not_written():
    """A hostile sender: after each reject it still sends start, opens the channel labelled with
    the refused name and pushes the bytes. A good file after them must still arrive.
    rtcat resets each refused channel; when the reset beat the browser's last send (about one
    run in four), the harness used to give up and kill Chromium with the connection open, and
    rtcat waited 30 s for ICE consent to expire (exit 3, "timed out" at 31 s). The harness now
    goes on with the next file, and closes its PeerConnection before any exit."""
    with Work("e2") as w:
        w.random_file("payload.bin", 1_000_000)
        sha_ok = w.random_file("ok.txt", 1000)
        (w / "out").mkdir()
        names = ["../evil.txt", str(w / "abs-evil.txt"), "a/../../evil3.txt", "..\\evil4.txt",
                 "./evil5.txt", "sub//evil6.txt"]
        args = " ".join(f"--send payload.bin --send-as {shlex.quote(n)}" for n in names)
        rcs, r = in_netns(w, f"""mkfifo back
node "$P" --role offer --ignore-reject {args} --send ok.txt --timeout "$BT" --result r.json \\
    <back 2>browser.err |
    "$R" -v answer --out out --sdp-format json --timeout "$RT" >back 2>rtcat.err
echo "rcs rtcat=${{PIPESTATUS[1]}} browser=${{PIPESTATUS[0]}}"
""")
        w.check(rcs == ("7", "7"), "rtcat must refuse the names (7); the browser fails (7)", r)
        _no_evil(w)
        w.check(sorted(os.listdir(w / "out")) == ["ok.txt"], "only ok.txt may be written")
        w.check(sha256_of(w / "out" / "ok.txt") == sha_ok, "ok.txt differs")
        res = w.result()
        rejected = [f["name"] for f in res["files"] if str(f.get("error", "")).startswith("rejected:")]
        w.check(rejected == names, f"rejected: {rejected}")


if __name__ == "__main__":
    t0 = time.monotonic()
    try:
        run_tests(globals())
    finally:
        print(f"total {time.monotonic() - t0:.1f} s", flush=True)
