"""The real binary against the faults a careless user or a hostile peer brings: fifos nobody
opens, signals while signaling, `--bind 0.0.0.0`, a receiver whose disk fills up mid-file, a
sender that stalls, a receiver that vanishes, terminal escapes in file names, symbolic links in
--out and inside a sent directory, and one JSON shape for every peer command. Each case failed
(hang, wrong exit code, data outside --out, raw escapes) before its fix.

Every peer runs inside `unshare -n` with only `lo` (cases that need it skip without root).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from rtcat_test import check, random_file, rtcat_binary, run, run_tests, sha256_file, skip  # noqa: E402

RTCAT = rtcat_binary()


def have_unshare():
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


if not have_unshare():
    skip("cannot create a network namespace (unshare -n needs root)")


def netns(tmp, script, timeout=60, mount=False):
    """Runs a bash script in a fresh network namespace with only lo (and a private mount
    namespace with `mount`), in `tmp`, with $R = rtcat. Returns the Result."""
    cmd = ["unshare", "-n"] + (["-m", "--propagation", "private"] if mount else [])
    full = f'set -u; ip link set lo up || exit 90; cd "{tmp}"\n{script}'
    r = run(cmd + ["bash", "-c", full], timeout=timeout, env={**os.environ, "R": RTCAT})
    check(not r.timed_out, f"case timed out after {timeout} s", r)
    return r


def rcs_of(r):
    m = re.search(r"^rcs (\S+) (\S+)$", r.stdout, re.M)
    check(m is not None, "no exit codes reported", r)
    return m.group(1), m.group(2)


def text(p):
    return Path(p).read_text(errors="replace") if Path(p).exists() else ""


# --- signaling that never completes -----------------------------------------------------------

def test_fifo_nobody_writes_times_out():
    # Was: blocked in open() past --timeout, SIGINT and SIGTERM; only SIGKILL ended it.
    with tempfile.TemporaryDirectory() as tmp:
        r = netns(tmp, """mkfifo F
t=$(date +%s.%N); "$R" offer --out d --sdp-out /dev/null --sdp-in F --timeout 2 2>err; rc=$?
echo "secs=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"; echo "rcs $rc -"
""")
        rc, _ = rcs_of(r)
        secs = float(re.search(r"secs=(\S+)", r.stdout).group(1))
        check(rc == "4", f"exit {rc}, want 4 (timeout)\n{text(Path(tmp) / 'err')}")
        check(secs < 5, f"took {secs:.1f} s for --timeout 2")
        check("waiting for the peer's description on F" in text(Path(tmp) / "err"),
              text(Path(tmp) / "err"))


def test_fifo_nobody_reads_times_out():
    with tempfile.TemporaryDirectory() as tmp:
        r = netns(tmp, """mkfifo G
"$R" offer --out d --sdp-out G --timeout 2 </dev/null 2>err; echo "rcs $? -"
""")
        rc, _ = rcs_of(r)
        check(rc == "4", f"exit {rc}, want 4\n{text(Path(tmp) / 'err')}")
        check("nobody opened G" in text(Path(tmp) / "err"), text(Path(tmp) / "err"))


def test_signals_end_a_session_waiting_on_fifos():
    with tempfile.TemporaryDirectory() as tmp:
        for sig in ("INT", "TERM"):
            r = netns(tmp, f"""rm -f F G; mkfifo F G
"$R" offer --out d --sdp-in F --sdp-out G --timeout 60 2>err & p=$!
sleep 0.5; kill -{sig} $p
for i in $(seq 50); do kill -0 $p 2>/dev/null || break; sleep 0.1; done
kill -0 $p 2>/dev/null && {{ echo "still running 5 s after SIG{sig}" >&2; kill -9 $p; }}
wait $p; echo "rcs $? -"
""")
            rc, _ = rcs_of(r)
            check(rc == "130", f"SIG{sig}: exit {rc}, want 130\n{r.stderr}")


def test_sigint_while_stdout_is_blocked():
    """Netcat's stdout is a pipe nobody drains, so write() blocks. Was: the signal handler's
    SA_RESTART resumed the write and only SIGKILL ended rtcat."""
    with tempfile.TemporaryDirectory() as tmp:
        r = netns(tmp, """mkfifo A B stuck; exec 4<>stuck
"$R" offer --sdp-out A --sdp-in B --timeout 20 </dev/zero >/dev/null 2>o_err & o=$!
"$R" answer --sdp-in A --sdp-out B --timeout 20 </dev/null >stuck 2>a_err & a=$!
sleep 2; kill -INT $a
for i in $(seq 50); do kill -0 $a 2>/dev/null || break; sleep 0.1; done
kill -0 $a 2>/dev/null && { echo "still running 5 s after SIGINT" >&2; kill -9 $a; }
wait $a; rc=$?; kill -9 $o 2>/dev/null; wait $o; echo "rcs $rc -"
""")
        rc, _ = rcs_of(r)
        check(rc == "130", f"exit {rc}, want 130\n{r.stderr}\n{text(Path(tmp) / 'a_err')}")


def test_fifos_opened_in_either_order():
    """Netcat with signaling on two fifos: whichever side starts first, both exit 0."""
    with tempfile.TemporaryDirectory() as tmp:
        for first, second in (("offer", "answer"), ("answer", "offer")):
            r = netns(tmp, f"""rm -f A B o_out a_out; mkfifo A B
run() {{ if [ "$1" = offer ]; then printf 'from offerer' | "$R" offer --sdp-out A --sdp-in B \\
    --timeout 20 >o_out 2>o_err; else printf 'from answerer' | "$R" answer --sdp-in A \\
    --sdp-out B --timeout 20 >a_out 2>a_err; fi; }}
run {first} & p1=$!; sleep 1; run {second} & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?; echo "rcs $r1 $r2"
""", timeout=40)
            check(rcs_of(r) == ("0", "0"), f"{first} first: {rcs_of(r)}\n"
                  f"{text(Path(tmp) / 'o_err')}\n{text(Path(tmp) / 'a_err')}")
            check(text(Path(tmp) / "o_out") == "from answerer", text(Path(tmp) / "o_out"))
            check(text(Path(tmp) / "a_out") == "from offerer", text(Path(tmp) / "a_out"))


def test_bind_any_address_means_every_interface():
    # Was: `internal error at core/ice/agent.cpp:58` and SIGABRT (134).
    with tempfile.TemporaryDirectory() as tmp:
        random_file(Path(tmp) / "f.bin", 300_000, 7)
        r = netns(tmp, """mkfifo back
"$R" send-file f.bin --bind 0.0.0.0 --timeout 20 <back 2>s_err |
    "$R" answer --out dl --bind 0.0.0.0:0 --bind :: --timeout 20 >back 2>r_err
echo "rcs ${PIPESTATUS[0]} ${PIPESTATUS[1]}"
""")
        check(rcs_of(r) == ("0", "0"), f"{rcs_of(r)}\n{text(Path(tmp) / 's_err')}"
              f"\n{text(Path(tmp) / 'r_err')}")
        check(sha256_file(Path(tmp) / "dl" / "f.bin") == sha256_file(Path(tmp) / "f.bin"), "differs")
        check("127.0.0.1" in text(Path(tmp) / "s_err"), "the pair should be on 127.0.0.1")


# --- failures during a transfer ------------------------------------------------------------

def test_receiver_disk_full_fails_the_sender_at_once():
    """Receiver on a 20 MiB tmpfs, 64 MiB file. Was: the receiver's ack {ok:false} was dropped,
    the sender streamed on and exited 0 ("FAILED: " with no reason on the receiver)."""
    if os.geteuid() != 0:
        skip("mounting a tmpfs needs root")
    with tempfile.TemporaryDirectory() as tmp:
        random_file(Path(tmp) / "big.bin", 64 << 20, 9)
        r = netns(tmp, """mkdir small && mount -t tmpfs -o size=20m tmpfs small || exit 91
mkfifo back O
t=$(date +%s.%N)
"$R" send-file big.bin --sdp-out O --sdp-in back --timeout 20 2>s_err & s=$!
"$R" answer --out small --sdp-in O --sdp-out back --json --timeout 20 2>r_err >r_json; rr=$?
wait $s; echo "rcs $? $rr"
echo "secs=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
ls small >listing
""", mount=True)
        s_err, r_err = text(Path(tmp) / "s_err"), text(Path(tmp) / "r_err")
        check(rcs_of(r) == ("7", "7"), f"{rcs_of(r)}\n{s_err}\n{r_err}")
        check(re.search(r"big\.bin .*FAILED: receiver: .*No space left on device", s_err),
              f"the sender's summary must give the receiver's reason:\n{s_err}")
        report = json.loads(text(Path(tmp) / "r_json"))
        check(report["ok"] is False and report["exit_code"] == 7, str(report))
        f = report["files"][0]
        check(not f["ok"] and "No space left on device" in f.get("error", "")
              and f.get("part") == "small/big.bin.part", f"the receiver's report: {f}")
        check(re.search(r"sent 0 of 1 file, (\d+\.\d) MiB", s_err)
              and float(re.search(r"sent 0 of 1 file, (\d+\.\d) MiB", s_err).group(1)) < 40,
              f"the sender must stop soon after the failure, not send all 64 MiB:\n{s_err}")
        secs = float(re.search(r"secs=(\S+)", r.stdout).group(1))
        check(secs < 15, f"the sender must stop at once, took {secs:.1f} s")


def test_sender_that_stalls_hits_the_idle_timeout():
    """The sender's stdin stops after 100 KB, the pipe stays open: nothing moves. Was: the
    receiver waited forever."""
    with tempfile.TemporaryDirectory() as tmp:
        r = netns(tmp, """mkfifo back in O
exec 3<>in; head -c 100000 /dev/zero >&3 &
t=$(date +%s.%N)
"$R" send-file - --sdp-in back --sdp-out O --idle-timeout 10 --timeout 20 <in 2>s_err & s=$!
"$R" answer --out dl --sdp-in O --sdp-out back --idle-timeout 2 --timeout 20 2>r_err; rr=$?
wait $s; sr=$?
echo "secs=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
echo "rcs $sr $rr"
""")
        s_err, r_err = text(Path(tmp) / "s_err"), text(Path(tmp) / "r_err")
        # The receiver gives up (4); the sender then sees it hang up mid-file (7).
        check(rcs_of(r) == ("7", "4"), f"{rcs_of(r)}\n{s_err}\n{r_err}")
        check("--idle-timeout" in r_err and "stdin.part" in r_err, r_err)
        secs = float(re.search(r"secs=(\S+)", r.stdout).group(1))
        check(secs < 12, f"took {secs:.1f} s")


def test_receiver_that_vanishes_is_a_transfer_failure():
    """SIGKILL the receiver mid-file (no close_notify): ICE consent runs out (30 s). Was exit 3
    ("no path"); the connection was up, so it is a failed transfer (7)."""
    with tempfile.TemporaryDirectory() as tmp:
        r = netns(tmp, """mkfifo back in O
exec 3<>in; head -c 1000000 /dev/zero >&3 &
"$R" send-file - --sdp-in back --sdp-out O --idle-timeout 0 --timeout 20 <in 2>s_err & s=$!
"$R" answer --out dl --sdp-in O --sdp-out back --timeout 20 2>r_err & rp=$!
for i in $(seq 100); do [ -s dl/stdin.part ] && break; sleep 0.1; done
kill -9 $rp
wait $s; echo "rcs $? -"
""", timeout=90)
        rc, _ = rcs_of(r)
        s_err = text(Path(tmp) / "s_err")
        check(rc == "7", f"exit {rc}, want 7\n{s_err}")
        check("went away" in s_err, s_err)


def test_netcat_peer_vanishing_after_our_data_is_delivered_is_a_clean_end():
    """The answerer prints what it got and is SIGKILLed (no close_notify, no SCTP ABORT): the
    offerer's stdin was delivered and acknowledged, so when ICE consent runs out (30 s) that is
    the end of the session, like a TCP peer's FIN for netcat, not a failure."""
    with tempfile.TemporaryDirectory() as tmp:
        r = netns(tmp, """mkfifo A B in; exec 3<>in; printf 'all of it' >&3
"$R" offer --sdp-out A --sdp-in B --timeout 20 <in >o_out 2>o_err 3>&- & o=$!
"$R" answer --sdp-in A --sdp-out B --timeout 20 </dev/null >a_out 2>a_err 3>&- & a=$!
# The answerer got our bytes (and acknowledged them: SACKs wait at most 20 ms); it freezes, and
# only then does our stdin end: our channel's close can never complete, and only consent expiry
# ends the offerer.
for i in $(seq 500); do [ -s a_out ] && break; sleep 0.01; done
sleep 0.3; kill -STOP $a; exec 3>&-; t=$(date +%s.%N)
wait $o; rc=$?; kill -9 $a
echo "secs=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
echo "rcs $rc -"
""", timeout=90)
        rc, _ = rcs_of(r)
        check(text(Path(tmp) / "a_out") == "all of it", text(Path(tmp) / "a_out"))
        check(rc == "0", f"exit {rc}, want 0\n{text(Path(tmp) / 'o_err')}")
        secs = float(re.search(r"secs=(\S+)", r.stdout).group(1))
        check(secs > 20, f"ended after {secs:.1f} s: the consent path was not exercised")


# --- hostile names -----------------------------------------------------------------------------

def test_escape_sequences_in_names_never_reach_the_terminal():
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        evil = "evil\x1b[2J\rverified\x07"
        (src / evil).write_bytes(b"x")
        (src / "good.txt").write_bytes(b"fine")
        r = netns(tmp, """mkfifo back
"$R" send-file src --timeout 20 <back 2>s_err | "$R" answer --out dl --timeout 20 >back 2>r_err
echo "rcs ${PIPESTATUS[0]} ${PIPESTATUS[1]}"
""")
        check(rcs_of(r) == ("7", "7"), f"the name must be refused: {rcs_of(r)}")
        for name in ("s_err", "r_err"):
            raw = (Path(tmp) / name).read_bytes()
            check(b"\x1b" not in raw and b"\x07" not in raw and b"\r" not in raw,
                  f"{name} carries raw control characters: {raw!r}")
            check(b"\\e[2J" in raw, f"{name} should show the name escaped: {raw!r}")
        check(sorted(os.listdir(Path(tmp) / "dl" / "src")) == ["good.txt"], "only good.txt")


def test_symlinks_in_out_are_not_followed():
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "outside").mkdir()
        (t / "outside" / "victim").write_bytes(b"keep")
        (t / "src" / "sub").mkdir(parents=True)
        (t / "src" / "x").write_bytes(b"AAAA")
        (t / "src" / "sub" / "y").write_bytes(b"BBBB")
        (t / "dl" / "src").mkdir(parents=True)
        os.symlink(t / "outside" / "victim", t / "dl" / "src" / "x.part")
        os.symlink(t / "outside", t / "dl" / "src" / "sub")
        r = netns(tmp, """mkfifo back
"$R" send-file src --timeout 20 <back 2>s_err |
    "$R" answer --out dl --force --timeout 20 >back 2>r_err
echo "rcs ${PIPESTATUS[0]} ${PIPESTATUS[1]}"
""")
        r_err = text(t / "r_err")
        check(rcs_of(r) == ("7", "7"), f"{rcs_of(r)}\n{r_err}")
        check((t / "outside" / "victim").read_bytes() == b"keep", "the file outside was written")
        check(sorted(os.listdir(t / "outside")) == ["victim"], "something landed outside --out")
        check(os.path.islink(t / "dl" / "src" / "x.part"), "the planted link was replaced")
        check(r_err.count("symbolic link") >= 2, r_err)


def test_symlinks_inside_a_sent_directory():
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "src").mkdir()
        (t / "src" / "real").write_bytes(b"real")
        (t / "target").write_bytes(b"linked")
        os.symlink(t / "target", t / "src" / "link")
        os.mkfifo(t / "src" / "pipe")
        for follow, want in (("", ["real"]), ("--follow-symlinks", ["link", "real"])):
            shutil.rmtree(t / "dl", ignore_errors=True)
            r = netns(tmp, f"""rm -f back; mkfifo back
"$R" send-file src {follow} --timeout 20 <back 2>s_err |
    "$R" answer --out dl --timeout 20 >back 2>r_err
echo "rcs ${{PIPESTATUS[0]}} ${{PIPESTATUS[1]}}"
""")
            s_err = text(t / "s_err")
            check(rcs_of(r) == ("0", "0"), f"{follow}: {rcs_of(r)}\n{s_err}")
            check(sorted(os.listdir(t / "dl" / "src")) == want, f"{follow}: {os.listdir(t / 'dl' / 'src')}")
            check("pipe: not a regular file" in s_err, f"the fifo must be reported:\n{s_err}")
            if not follow:
                check("link: a symbolic link, skipped" in s_err, s_err)


# --- reports -----------------------------------------------------------------------------------

def test_json_report_has_one_shape():
    with tempfile.TemporaryDirectory() as tmp:
        random_file(Path(tmp) / "f.bin", 1000, 3)
        r = netns(tmp, """mkfifo back O A B
"$R" send-file f.bin --json --sdp-out O --sdp-in back --timeout 20 2>/dev/null >send.json &
"$R" answer --out dl --sdp-in O --sdp-out back --timeout 20 >/dev/null 2>&1; wait
printf hi | "$R" offer --sdp-out A --sdp-in B --json --timeout 20 >/dev/null 2>nc.err &
printf ho | "$R" answer --sdp-in A --sdp-out B --timeout 20 >/dev/null 2>/dev/null; wait
echo "rcs 0 0"
""")
        send = json.loads(text(Path(tmp) / "send.json"))
        nc_lines = [ln for ln in text(Path(tmp) / "nc.err").splitlines() if ln.startswith("{")]
        check(len(nc_lines) == 1, text(Path(tmp) / "nc.err"))
        nc = json.loads(nc_lines[0])
        common = {"role", "mode", "ok", "exit_code", "files", "bytes", "seconds", "mb_per_s",
                  "connect_ms", "connect_timeline_ms", "pair", "kernel_drops"}
        for name, rep in (("send-file", send), ("netcat", nc)):
            missing = common - set(rep)
            check(not missing, f"{name} report lacks {missing}: {rep}")
            check(isinstance(rep["pair"], dict) and "local" in rep["pair"], f"{name}: {rep['pair']}")
        check(nc["role"] == "netcat" and nc["bytes_sent"] == 2 and nc["bytes_received"] == 2, str(nc))
        check(send["files"][0]["verified"] is True and send["mode"] == "rtcat-file/1", str(send))


if __name__ == "__main__":
    run_tests(globals())
