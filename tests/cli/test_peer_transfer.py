"""rtcat offer/answer/send-file, the real binaries on loopback: the fifo pipeline of the README,
directories, stdin, JSON summary, refusals, bad descriptions, timeouts, --resume after a kill,
and a relay-only session through a real coturn.

Every peer stays on loopback: either inside `unshare -n` (a namespace with only `lo`) or with
`--bind 127.0.0.1`.
"""

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from rtcat_test import Skip, check, rtcat_binary, run, run_rtcat, run_tests, sha256_file as sha256, random_file  # noqa: E402
from coturn import Coturn  # noqa: E402

RTCAT = rtcat_binary()
LO = ["--bind", "127.0.0.1"]




def have_unshare():
    try:
        r = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def pipeline(tmp, sender_args, receiver_args, timeout=120, netns=True):
    """`mkfifo back; rtcat SENDER <back | rtcat RECEIVER >back` in a shell, in a namespace with
    only loopback when possible (else both bound to 127.0.0.1). Returns (rc, stderr)."""
    q = lambda args: " ".join("'" + a.replace("'", "'\\''") + "'" for a in args)  # noqa: E731
    script = (f"cd '{tmp}' && rm -f back && mkfifo back && "
              f"'{RTCAT}' {q(sender_args)} <back 2>sender.err | "
              f"'{RTCAT}' {q(receiver_args)} >back 2>receiver.err; "
              f"echo \"${{PIPESTATUS[0]}} ${{PIPESTATUS[1]}}\" >rc")
    if netns and have_unshare():
        cmd = ["unshare", "-n", "bash", "-c", "ip link set lo up && " + script]
    else:
        script = (f"cd '{tmp}' && rm -f back && mkfifo back && "
                  f"'{RTCAT}' {q(sender_args[:1] + LO + sender_args[1:])} <back 2>sender.err | "
                  f"'{RTCAT}' {q(receiver_args[:1] + LO + receiver_args[1:])} >back "
                  f"2>receiver.err; echo \"${{PIPESTATUS[0]}} ${{PIPESTATUS[1]}}\" >rc")
        cmd = ["bash", "-c", script]
    r = run(cmd, timeout=timeout)
    check(not r.timed_out, "pipeline timed out", r)
    rc_text = (Path(tmp) / "rc").read_text().split()
    s_err = (Path(tmp) / "sender.err").read_text()
    r_err = (Path(tmp) / "receiver.err").read_text()
    return int(rc_text[0]), int(rc_text[1]), s_err, r_err


def test_fifo_pipeline_64mib_as_written():
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.iso"
        random_file(src, 64 << 20)
        s_rc, r_rc, s_err, r_err = pipeline(tmp, ["send-file", "big.iso"],
                                            ["answer", "--out", "dl/"])
        check(s_rc == 0 and r_rc == 0, f"exit codes {s_rc} {r_rc}\n{s_err}\n{r_err}")
        out = Path(tmp) / "dl" / "big.iso"
        check(out.exists(), "received file missing")
        check(sha256(out) == sha256(src), "hash mismatch")
        check(not (Path(tmp) / "dl" / "big.iso.part").exists(), ".part left behind")
        check("verified" in s_err and "verified" in r_err, f"summary\n{s_err}\n{r_err}")
        check("direct" in s_err, f"pair in summary\n{s_err}")
        print(s_err)


def test_directories_json_and_no_overwrite():
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "photos"
        (d / "2024" / "jan").mkdir(parents=True)
        random_file(d / "a.jpg", 1000)
        random_file(d / "2024" / "jan" / "b.jpg", 300000)
        random_file(d / "2024" / "empty", 0)
        s_rc, r_rc, s_err, r_err = pipeline(tmp, ["send-file", "photos", "--json"],
                                            ["answer", "--out", "dl", "--json"])
        check(s_rc == 0 and r_rc == 0, f"exit codes {s_rc} {r_rc}\n{s_err}\n{r_err}")
        for rel in ["a.jpg", "2024/jan/b.jpg", "2024/empty"]:
            got = Path(tmp) / "dl" / "photos" / rel
            check(got.exists() and sha256(got) == sha256(d / rel), f"{rel} differs")
        # stdout carried signaling on both sides, so the JSON summary is on stderr.
        summary = json.loads([ln for ln in s_err.splitlines() if ln.startswith("{")][-1])
        check(summary["ok"] and len(summary["files"]) == 3, f"summary {summary}")
        check(summary["pair"]["relayed"] is False, "direct pair expected")
        check(all(len(f["sha256"]) == 64 for f in summary["files"]), "hashes")
        # A second run must not overwrite without --force.
        s_rc, r_rc, s_err, r_err = pipeline(tmp, ["send-file", "photos/a.jpg"],
                                            ["answer", "--out", "dl/photos"])
        check(s_rc == 7 and r_rc == 7, f"expected transfer failure (7): {s_rc} {r_rc}\n{s_err}")
        check("exists" in r_err, f"reason\n{r_err}")
        s_rc, r_rc, s_err, r_err = pipeline(tmp, ["send-file", "photos/a.jpg"],
                                            ["answer", "--out", "dl/photos", "--force"])
        check(s_rc == 0 and r_rc == 0, f"--force: {s_rc} {r_rc}\n{s_err}\n{r_err}")


def test_ipv6_loopback_only():
    """Host candidates over IPv6: both peers bound to ::1 only, in a namespace with only lo."""
    if not have_unshare():
        raise Skip("unshare -n not available (the IPv6 test needs a namespace with only lo)")
    with tempfile.TemporaryDirectory() as tmp:
        random_file(Path(tmp) / "f.bin", 3 << 20)
        s_rc, r_rc, s_err, r_err = pipeline(tmp, ["send-file", "f.bin", "--bind", "::1", "--json"],
                                            ["answer", "--out", "dl", "--bind", "::1"])
        check(s_rc == 0 and r_rc == 0, f"exit codes {s_rc} {r_rc}\n{s_err}\n{r_err}")
        check(sha256(Path(tmp) / "dl" / "f.bin") == sha256(Path(tmp) / "f.bin"), "differs")
        summary = json.loads([ln for ln in s_err.splitlines() if ln.startswith("{")][-1])
        for side in ("local", "remote"):
            addr = summary["pair"][side]["address"]
            check(addr.startswith("[::1]:"), f"{side} address {addr} is not [::1]")
            check(summary["pair"][side]["type"] == "host", f"{summary['pair']}")


def test_progress_on_a_terminal_only():
    """Progress (bytes, rate, ETA) is drawn on stderr when it is a terminal, on both sides; the
    pipelines above (stderr to files) show that it is absent otherwise."""
    if not have_unshare():
        raise Skip("unshare -n not available")
    with tempfile.TemporaryDirectory() as tmp:
        random_file(Path(tmp) / "big.bin", 96 << 20)
        ptys = [pty.openpty() for _ in range(2)]
        names = [os.ttyname(slave) for _, slave in ptys]
        script = (f"ip link set lo up && cd '{tmp}' && mkfifo back && "
                  f"'{RTCAT}' send-file big.bin <back 2>{names[0]} | "
                  f"'{RTCAT}' answer --out dl >back 2>{names[1]}")
        p = subprocess.Popen(["unshare", "-n", "bash", "-c", script])
        # Our copies of the terminals' slave ends stay open until the pipeline is over: the
        # shell opens them by name, and a master whose slaves are all closed reads EIO.
        out = [b"", b""]
        masters = {master: i for i, (master, _) in enumerate(ptys)}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = p.poll() is not None
            ready, _, _ = select.select(list(masters), [], [], 0.2)
            for fd in ready:
                out[masters[fd]] += os.read(fd, 65536)
            if done and not ready:
                break
        if p.poll() is None:
            p.kill()
        rc = p.wait(timeout=10)
        for master, slave in ptys:
            os.close(master)
            os.close(slave)
        check(rc == 0, f"pipeline exit {rc}\n{out}")
        check(sha256(Path(tmp) / "dl" / "big.bin") == sha256(Path(tmp) / "big.bin"), "differs")
        for side, text in zip(("sender", "receiver"), (o.decode(errors="replace") for o in out)):
            line = re.compile(r"big\.bin  [0-9.]+ (?:B|KiB|MiB) / 96\.0 MiB  [0-9.]+ MB/s  "
                              r"ETA \d+:\d\d")
            check(line.search(text), f"{side}: no progress line on its terminal:\n{text!r}")
            check("\r" in text and "verified" in text, f"{side}: {text!r}")


def test_stdin_source_with_signaling_files():
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        os.mkfifo(t / "offer")
        os.mkfifo(t / "answer")
        data = os.urandom(3 << 20)
        recv = subprocess.Popen([RTCAT, "answer", *LO, "--out", str(t / "dl"), "--sdp-in",
                                 str(t / "offer"), "--sdp-out", str(t / "answer")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        r = run([RTCAT, "send-file", *LO, "-", "--name", "from-stdin.bin", "--sdp-out",
                 str(t / "offer"), "--sdp-in", str(t / "answer")], input=data, timeout=60)
        out, err = recv.communicate(timeout=60)
        check(r.rc == 0, "sender", r)
        check(recv.returncode == 0, f"receiver rc {recv.returncode}: {err.decode()}")
        got = (t / "dl" / "from-stdin.bin").read_bytes()
        check(got == data, "stdin bytes differ")


def test_bad_descriptions_fail_clearly():
    cases = [
        ("garbage", "hello world\n\n", "unrecognized"),
        ("truncated", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n", ""),
        ("no fingerprint",
         "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
         "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
         "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\n"
         "a=mid:0\r\na=sctp-port:5000\r\n\r\n", "fingerprint"),
        ("no data channel",
         "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
         "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\r\n",
         "m=application"),
        ("empty", "", "ended before"),
        ("json garbage", '{"type":"offer","sdp":', ""),
    ]
    for name, text, needle in cases:
        r = run_rtcat("answer", *LO, "--timeout", "10", input=text, timeout=20)
        check(r.rc == 2, f"{name}: exit code 2 expected", r)
        check(needle.lower() in r.stderr.lower(), f"{name}: message should mention {needle!r}", r)
        check("Traceback" not in r.stderr and "Assertion" not in r.stderr, name, r)


def test_timeout_waiting_for_the_answer():
    with tempfile.TemporaryDirectory() as tmp:
        fifo = Path(tmp) / "never"
        os.mkfifo(fifo)
        # Hold the fifo open for writing and never write (O_RDWR does not block on Linux).
        holder = os.open(fifo, os.O_RDWR)
        try:
            r = run_rtcat("offer", *LO, "--timeout", "1.5", "--sdp-in", str(fifo),
                          "--sdp-out", str(Path(tmp) / "offer.sdp"), timeout=20)
        finally:
            os.close(holder)
        check(r.rc == 4, "timeout exit code 4", r)
        check(r.seconds < 10, "took too long", r)
        check("m=application" in (Path(tmp) / "offer.sdp").read_text(), "offer written")


def test_resume_after_killing_the_sender():
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        src = t / "big.bin"
        random_file(src, 256 << 20)
        os.mkfifo(t / "back")
        # Slow the sender down by reading the file through a pipe throttled by the test: here
        # we just kill it once the receiver's .part holds some data.
        script = (f"cd '{tmp}' && '{RTCAT}' send-file {' '.join(LO)} big.bin <back 2>s.err | "
                  f"'{RTCAT}' answer {' '.join(LO)} --out dl >back 2>r.err")
        p = subprocess.Popen(["bash", "-c", script], start_new_session=True)
        part = t / "dl" / "big.bin.part"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if part.exists() and part.stat().st_size > (8 << 20):
                break
            time.sleep(0.005)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        check(part.exists(), "no .part after the kill")
        held = part.stat().st_size
        check(0 < held < src.stat().st_size, f".part holds {held}")
        check(not (t / "dl" / "big.bin").exists(), "incomplete file renamed")
        s_rc, r_rc, s_err, r_err = pipeline(tmp, ["send-file", "big.bin", "--json"],
                                            ["answer", "--out", "dl", "--resume"], netns=False)
        check(s_rc == 0 and r_rc == 0, f"resume rc {s_rc} {r_rc}\n{s_err}\n{r_err}")
        check(sha256(t / "dl" / "big.bin") == sha256(src), "resumed file differs")
        summary = json.loads([ln for ln in s_err.splitlines() if ln.startswith("{")][-1])
        f = summary["files"][0]
        check(f.get("resumed_from", 0) > 0, f"not resumed: {f}")
        check(summary["bytes"] < src.stat().st_size, "sent the whole file again")


def test_relay_only_through_coturn():
    if not shutil.which("turnserver"):
        print("SKIP: coturn not installed")
        return
    with Coturn(listen=["127.0.0.1"], users={"demo": "secret"}, realm="rtcat.test") as turn:
        uri = turn.turn_uri("demo", "secret")
        with tempfile.TemporaryDirectory() as tmp:
            random_file(Path(tmp) / "f.bin", 2 << 20)
            common = ["--turn", uri, "--ice-transport", "relay"]
            s_rc, r_rc, s_err, r_err = pipeline(
                tmp, ["send-file", "f.bin", "--json", *common],
                ["answer", "--out", "dl", *common], netns=False)
            check(s_rc == 0 and r_rc == 0, f"rc {s_rc} {r_rc}\n{s_err}\n{r_err}")
            check(sha256(Path(tmp) / "dl" / "f.bin") == sha256(Path(tmp) / "f.bin"), "differs")
            summary = json.loads([ln for ln in s_err.splitlines() if ln.startswith("{")][-1])
            check(summary["pair"]["relayed"] is True, f"not relayed: {summary['pair']}")
            check(summary["pair"]["local"]["type"] == "relay", f"{summary['pair']}")


if __name__ == "__main__":
    run_tests(globals())
