"""rtcat <-> peers that know nothing of rtcat (tests/interop/plain_peer.py): a Chromium page, a
Firefox ESR page and aiortc, each using only the standard data-channel API.

Matrix, per engine, both signaling roles each:
  a. `rtcat send-file F` -> the engine saves every channel it is given (`--recv`): F's bytes
     arrive on a channel labelled with F's base name. rtcat may first open its own
     `rtcat-control` channel (the plain peer never answers it); it must then fall back to plain
     channels by itself. rtcat exits 0; its --json report has ok true and F's SHA-256.
  b. the engine sends F on a channel labelled with F's base name, then hangs up ->
     `rtcat answer|offer --out D` writes D/<label> equal to F and exits 0.
  c. netcat both ways at once: rtcat's stdin to the engine, the engine's text to rtcat's stdout,
     both exit 0 within a few seconds (not ICE consent's 30 s).

Every case runs inside `unshare -n` with only `lo` up (no packet can leave the machine), with
fifos for signaling, bounded by an outer time limit. Cases of an engine that is not installed
are skipped (firefox-esr, python3-aiortc, chromium: scripts/install-deps.sh installs them);
the file exits 77 when every case was skipped. Browsers run one at a time (2-core machines).
Env: RTCAT (the binary), PLAIN_SEED (the random file sizes/contents), PLAIN_ENGINES
(e.g. "aiortc,chromium": only those).
"""

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from rtcat_test import SOURCE_DIR, Skip, check, rtcat_binary, run, run_tests, skip  # noqa: E402

PEER = SOURCE_DIR / "tests" / "interop" / "plain_peer.py"
ENGINES = ("chromium", "firefox", "aiortc")

# Limits. rtcat's --timeout bounds signaling and set-up; the engine's --timeout its whole run:
# start-up (Firefox ~5-7 s to load the page here, Chromium ~2-4 s, aiortc ~1.3 s), rtcat's
# fall-back to plain channels (a few seconds), a transfer (aiortc moves ~1 MB/s) and the
# hang-up. The outer limit kills the namespace's processes if something still hangs. Kept tight:
# ctest gives the whole file 300 s, and today most cases run into these limits.
kRtcatTimeoutS = 25
kEngineTimeoutS = {"chromium": 20, "firefox": 25, "aiortc": 20}
kCaseTimeoutS = 40
# From the moment both descriptions are known to the end of both programs: a transfer of a few
# MiB (aiortc <-> aiortc took up to 10 s here with the machine's load at 12), rtcat's fall-back
# to plain channels ("a few seconds") and the hang-up. Below ICE consent's 30 s, which is how a
# peer notices a partner that vanished without closing.
kSessionMaxS = 20.0
# Netcat moves a few bytes: both ends must be done within a few seconds.
kNetcatMaxS = 10.0
# File sizes: 1-3 MiB keeps the whole matrix (18 cases) within ~3-4 minutes.
kMinBytes, kMaxBytes = 1 << 20, 3 << 20

SEED = int(os.environ.get("PLAIN_SEED") or random.SystemRandom().randrange(1 << 32))
RNG = random.Random(SEED)
RTCAT_TEXT = "hello from rtcat"


def _prerequisites():
    for tool in ("unshare", "ip", "bash", "mkfifo"):
        if not shutil.which(tool):
            skip(f"{tool} is not installed")
    r = run(["unshare", "-n", "true"], timeout=20)
    if r.rc != 0:
        skip(f"cannot create a network namespace (unshare -n needs root): {r.stderr.strip()}")


_prerequisites()
RTCAT = rtcat_binary()
print(f"seed {SEED} (PLAIN_SEED={SEED} repeats the file sizes and contents)", flush=True)

_availability = {}


def need(engine):
    """Skips the current case when `engine` cannot run here (asked once per engine)."""
    wanted = os.environ.get("PLAIN_ENGINES")
    if wanted and engine not in wanted.split(","):
        raise Skip(f"{engine} not in PLAIN_ENGINES={wanted}")
    if engine not in _availability:
        r = subprocess.run([sys.executable, str(PEER), "--engine", engine, "--check"],
                           capture_output=True, text=True, timeout=60)
        _availability[engine] = (r.returncode == 0, r.stdout.strip() or r.stderr.strip())
        print(f"{engine}: {'available' if r.returncode == 0 else 'unavailable'}: "
              f"{_availability[engine][1]}", flush=True)
    ok, why = _availability[engine]
    if not ok:
        raise Skip(why)


# ---- helpers ---------------------------------------------------------------------------------------
class Work:
    """A scratch directory for one case, with both sides' logs for failure messages."""

    def __init__(self, name):
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"rtcat-plain-{name}-"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __truediv__(self, name):
        return self.dir / name

    def logs(self):
        out = []
        for name in ("rtcat.err", "engine.err"):
            p = self.dir / name
            if p.exists():
                lines = p.read_text(errors="replace").splitlines()
                if len(lines) > 70:
                    lines = lines[:15] + ["..."] + lines[-55:]
                out.append(f"--- {name} ---\n" + "\n".join(lines))
        return "\n".join(out)

    def check(self, cond, message, r=None):
        if not cond:
            check(False, f"{message}\n{r if r is not None else ''}\n{self.logs()}")

    def engine_result(self):
        p = self.dir / "r.json"
        self.check(p.exists(), "the engine wrote no result (r.json)")
        return json.loads(p.read_text())

    def random_file(self, name):
        size = RNG.randint(kMinBytes, kMaxBytes)
        data = RNG.randbytes(size)
        (self.dir / name).write_bytes(data)
        return size, hashlib.sha256(data).hexdigest()


def in_netns(w, engine, script, env=None):
    """Runs a bash script in a fresh network namespace with only lo, in w.dir. $R is rtcat, $PP
    the plain peer, $RT/$ET the two timeouts. The script must print `rcs rtcat=N engine=M`;
    `t0`/`t1` (epoch seconds) around the programs give the session time."""
    full = f'set -u; ip link set lo up || exit 90; cd "$W"\nt0=$(date +%s.%N)\n{script}\n' \
           'echo "t0=$t0 t1=$(date +%s.%N)"'
    e = {"R": RTCAT, "PP": str(PEER), "W": str(w.dir), "RT": str(kRtcatTimeoutS),
         "ET": str(kEngineTimeoutS[engine]), **(env or {})}
    r = run(["unshare", "-n", "bash", "-c", full], timeout=kCaseTimeoutS, env=e)
    w.check(not r.timed_out, f"case timed out after {kCaseTimeoutS} s", r)
    m = re.search(r"^rcs rtcat=(\S+) engine=(\S+)$", r.stdout, re.M)
    w.check(m is not None, "no exit codes reported", r)
    rcs = (int(m.group(1)), int(m.group(2)))
    t = re.search(r"^t0=(\S+) t1=(\S+)$", r.stdout, re.M)
    wall = float(t.group(2)) - float(t.group(1))
    print(f"exit codes: rtcat={rcs[0]} engine={rcs[1]}; {wall:.1f} s in all", flush=True)
    return rcs, wall, r


def session_seconds(res, wall):
    """Seconds from "both descriptions known" (engine's clock, started with the case) to the
    end of both programs."""
    t = res.get("timings") or {}
    known = max(t.get("local_description_ms") or 0, t.get("remote_description_ms") or 0) / 1000
    return wall - known


def rtcat_json(w):
    """rtcat's --json report: the last line of rtcat.err (or rtcat.out) that is a JSON object."""
    for name in ("rtcat.out", "rtcat.err"):
        p = w / name
        if not p.exists():
            continue
        for line in reversed(p.read_text(errors="replace").splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue
    return None


def find_values(obj, key):
    """Every value of `key` anywhere in a JSON document."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                yield v
            yield from find_values(v, key)
    elif isinstance(obj, list):
        for v in obj:
            yield from find_values(v, key)


def report_engine(res):
    chans = ", ".join(f"{c.get('origin')} {c.get('label')!r} {c.get('bytes')} B "
                      f"{'clean' if c.get('clean') else 'peer-reset' if c.get('complete') else 'UNCLEAN'}"
                      for c in res.get("channels") or [] if not c.get("placeholder"))
    print(f"engine: exit {res.get('exit_code')} error={res.get('error')!r}; channels: {chans}; "
          f"peer hung up: {res.get('peer_hung_up')} ({(res.get('hangup') or {}).get('how')}); "
          f"max-message-size {res.get('max_message_size')}", flush=True)


def check_session_time(w, res, wall, limit=kSessionMaxS):
    s = session_seconds(res, wall)
    print(f"session: {s:.1f} s after the descriptions were exchanged", flush=True)
    w.check(s < limit, f"the session took {s:.1f} s (limit {limit} s): someone waited "
                       "for a timeout instead of closing")


# ---- a. rtcat send-file -> the engine saves what it is given ----------------------------------------
def _rtcat_sends(engine, rtcat_offers):
    need(engine)
    with Work(f"a-{engine}-{'offer' if rtcat_offers else 'answer'}") as w:
        size, sha = w.random_file("random.bin")
        recv = '--recv out --expect random.bin --timeout "$ET" --result r.json'
        if rtcat_offers:
            script = f"""mkfifo back
"$R" -v send-file random.bin --sdp-format json --json --timeout "$RT" <back 2>rtcat.err |
    python3 "$PP" --engine {engine} --role answer {recv} >back 2>engine.err
echo "rcs rtcat=${{PIPESTATUS[0]}} engine=${{PIPESTATUS[1]}}\""""
        else:
            script = f"""mkfifo back
python3 "$PP" --engine {engine} --role offer {recv} <back 2>engine.err |
    "$R" -v send-file --answer random.bin --sdp-format json --json --timeout "$RT" >back 2>rtcat.err
echo "rcs rtcat=${{PIPESTATUS[1]}} engine=${{PIPESTATUS[0]}}\""""
        rcs, wall, r = in_netns(w, engine, script)
        res = w.engine_result()
        report_engine(res)
        report = rtcat_json(w)
        print(f"rtcat --json: {json.dumps(report)}", flush=True)
        got = w / "out" / "random.bin"
        got_sha = hashlib.sha256(got.read_bytes()).hexdigest() if got.exists() else None
        w.check(got_sha == sha, f"the engine's out/random.bin: "
                                f"{got.stat().st_size if got.exists() else 'missing'} bytes, want {size}; "
                                f"sha256 {got_sha} want {sha}", r)
        w.check(rcs == (0, 0), f"both must exit 0, got rtcat={rcs[0]} engine={rcs[1]}", r)
        w.check(report is not None and report.get("ok") is True, "rtcat's --json report must say ok")
        w.check(sha in list(find_values(report, "sha256")), f"rtcat's report must carry the sha256 {sha}")
        w.check(res.get("peer_hung_up") is True, "rtcat should close the connection when done "
                                                 "(the engine saw no hang-up)")
        check_session_time(w, res, wall)


def test_a_chromium_rtcat_offers():
    _rtcat_sends("chromium", True)


def test_a_chromium_rtcat_answers():
    _rtcat_sends("chromium", False)


def test_a_firefox_rtcat_offers():
    _rtcat_sends("firefox", True)


def test_a_firefox_rtcat_answers():
    _rtcat_sends("firefox", False)


def test_a_aiortc_rtcat_offers():
    _rtcat_sends("aiortc", True)


def test_a_aiortc_rtcat_answers():
    _rtcat_sends("aiortc", False)


# ---- b. the engine sends -> rtcat answer|offer --out D ------------------------------------------------
def _engine_sends(engine, rtcat_offers):
    need(engine)
    with Work(f"b-{engine}-{'offer' if rtcat_offers else 'answer'}") as w:
        size, sha = w.random_file("random.bin")
        send = '--send random.bin --timeout "$ET" --result r.json'
        if rtcat_offers:
            script = f"""mkfifo back
"$R" -v offer --out out --sdp-format json --json --timeout "$RT" <back 2>rtcat.err |
    python3 "$PP" --engine {engine} --role answer {send} >back 2>engine.err
echo "rcs rtcat=${{PIPESTATUS[0]}} engine=${{PIPESTATUS[1]}}\""""
        else:
            script = f"""mkfifo back
python3 "$PP" --engine {engine} --role offer {send} <back 2>engine.err |
    "$R" -v answer --out out --sdp-format json --json --timeout "$RT" >back 2>rtcat.err
echo "rcs rtcat=${{PIPESTATUS[1]}} engine=${{PIPESTATUS[0]}}\""""
        rcs, wall, r = in_netns(w, engine, script)
        res = w.engine_result()
        report_engine(res)
        print(f"rtcat --json: {json.dumps(rtcat_json(w))}", flush=True)
        got = w / "out" / "random.bin"
        got_sha = hashlib.sha256(got.read_bytes()).hexdigest() if got.exists() else None
        listing = sorted(os.listdir(w / "out")) if (w / "out").exists() else None
        w.check(got_sha == sha, f"rtcat's out/random.bin: {got.stat().st_size if got.exists() else 'missing'} "
                                f"bytes, want {size}; out/ holds {listing}", r)
        w.check(listing == ["random.bin"], f"out/ must hold just random.bin (no .part): {listing}")
        w.check(rcs == (0, 0), f"both must exit 0, got rtcat={rcs[0]} engine={rcs[1]}", r)
        check_session_time(w, res, wall)


def test_b_chromium_rtcat_answers():
    _engine_sends("chromium", False)


def test_b_chromium_rtcat_offers():
    _engine_sends("chromium", True)


def test_b_firefox_rtcat_answers():
    _engine_sends("firefox", False)


def test_b_firefox_rtcat_offers():
    _engine_sends("firefox", True)


def test_b_aiortc_rtcat_answers():
    _engine_sends("aiortc", False)


def test_b_aiortc_rtcat_offers():
    _engine_sends("aiortc", True)


# ---- c. netcat both ways at once --------------------------------------------------------------------
# Signaling leaves stdio: rtcat on --sdp-in/--sdp-out fifos, the engine's stdin/stdout on the same
# fifos. The engine opens both read-write (<>), which never blocks: with plain < and > the fifo
# opens of the two programs wait for each other.
def _netcat(engine, rtcat_offers):
    need(engine)
    with Work(f"c-{engine}-{'offer' if rtcat_offers else 'answer'}") as w:
        engine_text = f"hello from {engine}"
        rtcat_role, engine_role = ("offer", "answer") if rtcat_offers else ("answer", "offer")
        script = f"""mkfifo to_rtcat to_engine
python3 "$PP" --engine {engine} --role {engine_role} --netcat "$ETEXT" --timeout "$ET" \\
    --result r.json <>to_engine 1<>to_rtcat 2>engine.err & e=$!
printf %s "$RTEXT" | "$R" -v {rtcat_role} --sdp-in to_rtcat --sdp-out to_engine --sdp-format json \\
    --timeout "$RT" >got 2>rtcat.err; rc=$?
wait $e; echo "rcs rtcat=$rc engine=$?\""""
        rcs, wall, r = in_netns(w, engine, script, env={"ETEXT": engine_text, "RTEXT": RTCAT_TEXT})
        res = w.engine_result()
        report_engine(res)
        got = (w / "got").read_bytes().decode("utf-8", "replace") if (w / "got").exists() else None
        print(f"rtcat's stdout: {got!r}; the engine received {res.get('received')!r}", flush=True)
        w.check(got == engine_text, f"rtcat's stdout {got!r}, want {engine_text!r}", r)
        w.check(res.get("received") == RTCAT_TEXT,
                f"the engine received {res.get('received')!r}, want {RTCAT_TEXT!r}", r)
        w.check(rcs == (0, 0), f"both must exit 0, got rtcat={rcs[0]} engine={rcs[1]}", r)
        check_session_time(w, res, wall, kNetcatMaxS)


def test_c_chromium_rtcat_offers():
    _netcat("chromium", True)


def test_c_chromium_rtcat_answers():
    _netcat("chromium", False)


def test_c_firefox_rtcat_offers():
    _netcat("firefox", True)


def test_c_firefox_rtcat_answers():
    _netcat("firefox", False)


def test_c_aiortc_rtcat_offers():
    _netcat("aiortc", True)


def test_c_aiortc_rtcat_answers():
    _netcat("aiortc", False)


if __name__ == "__main__":
    t0 = time.monotonic()
    try:
        run_tests(globals())
    finally:
        print(f"total {time.monotonic() - t0:.1f} s (seed {SEED})", flush=True)
