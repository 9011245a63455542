"""How rtcat's peer commands end when interrupted (SIGINT, SIGTERM) or when their output goes
away (a broken pipe), on loopback (`--bind 127.0.0.1`).

What a user is promised (rtcat-answer(1), rtcat-send-file(1), docs/DESIGN.md §4):
  - SIGINT ends the session cleanly with exit code 130 and a message on stderr, never a crash;
  - the receiver keeps what it has as NAME.part (never renamed to NAME), and `--resume` can
    continue from it;
  - the other peer is told (DTLS close_notify) and ends at once with 7 (transfer failed);
  - a reader of netcat output that goes away ends the session (7), it does not hang.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from rtcat_test import check, rtcat_binary, run_tests, sha256_file as sha256, random_file  # noqa: E402

RTCAT = rtcat_binary()
LO = ["--bind", "127.0.0.1"]
BIG = 256 << 20  # far more than the test lets through before the signal
INTERRUPT_AT = 16 << 20  # bytes in the receiver's .part when the signal is sent
END_WITHIN = 10.0  # seconds a signalled peer (and its partner) may take to exit
# Text that must never show on stderr: crashes, sanitizer reports, our own internal checks.
CRASH_TEXT = ["Traceback", "terminate called", "Assertion", "Sanitizer", "runtime error:",
              "Segmentation fault", "core dumped", "internal error", "Aborted"]




class Peers:
    """`rtcat send-file` and a receiver wired stdout-to-stdin both ways (what the fifo example
    does), each in its own session so a signal reaches only the one it is sent to."""

    def __init__(self, tmp, sender_args, receiver_args):
        self.tmp = Path(tmp)
        r1, w1 = os.pipe()  # sender's offer -> receiver
        r2, w2 = os.pipe()  # receiver's answer -> sender
        self.s_err = self.tmp / "sender.err"
        self.r_err = self.tmp / "receiver.err"
        cmd_s = [RTCAT, "send-file", *LO, *sender_args]
        cmd_r = [RTCAT, "answer", *LO, *receiver_args]
        print(f"$ {' '.join(cmd_s)} | {' '.join(cmd_r)}", flush=True)
        with open(self.s_err, "wb") as se, open(self.r_err, "wb") as re_:
            self.sender = subprocess.Popen(cmd_s, stdin=r2, stdout=w1, stderr=se, cwd=tmp,
                                           start_new_session=True)
            self.receiver = subprocess.Popen(cmd_r, stdin=r1, stdout=w2, stderr=re_, cwd=tmp,
                                             start_new_session=True)
        for fd in (r1, w1, r2, w2):
            os.close(fd)

    def wait_for_part(self, part, size, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if part.exists() and part.stat().st_size >= size:
                return
            if self.sender.poll() is not None or self.receiver.poll() is not None:
                break
            time.sleep(0.005)
        raise AssertionError(f"{part} never reached {size} bytes\n{self.report()}")

    def wait(self, timeout):
        """(sender rc, receiver rc, seconds); None for one still running at the deadline."""
        start = time.monotonic()
        deadline = start + timeout
        codes = []
        for p in (self.sender, self.receiver):
            try:
                codes.append(p.wait(timeout=max(0.01, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                codes.append(None)
        return codes[0], codes[1], time.monotonic() - start

    def report(self):
        return (f"sender rc {self.sender.poll()}:\n{self.s_err.read_text()}\n"
                f"receiver rc {self.receiver.poll()}:\n{self.r_err.read_text()}")

    def kill(self):
        for p in (self.sender, self.receiver):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            p.wait()


def check_clean(text, who, full):
    for bad in CRASH_TEXT:
        check(bad not in text, f"{who}: {bad!r} on stderr\n{full}")


def interrupt_transfer(target, signo):
    """Sends signo to the sender or the receiver mid-transfer; checks both ends and what is left
    on disk. Returns (tmp dir object, source path, part path) for further checks."""
    tmp = tempfile.TemporaryDirectory()
    t = Path(tmp.name)
    src = t / "big.bin"
    random_file(src, BIG)
    peers = Peers(t, ["big.bin"], ["--out", "dl"])
    part = t / "dl" / "big.bin.part"
    try:
        peers.wait_for_part(part, INTERRUPT_AT)
        victim = peers.sender if target == "sender" else peers.receiver
        os.kill(victim.pid, signo)
        s_rc, r_rc, secs = peers.wait(END_WITHIN)
        full = peers.report()
        check(s_rc is not None and r_rc is not None,
              f"not ended {END_WITHIN} s after {signal.Signals(signo).name} to the "
              f"{target}\n{full}")
        s_err, r_err = peers.s_err.read_text(), peers.r_err.read_text()
        mine, other = (s_rc, r_rc) if target == "sender" else (r_rc, s_rc)
        mine_err, other_err = (s_err, r_err) if target == "sender" else (r_err, s_err)
        # 130 is documented for SIGINT; SIGTERM is undocumented: the code treats it as SIGINT,
        # 143 (128 + 15) would be the shell convention. Either is a clean end.
        want = (130,) if signo == signal.SIGINT else (130, 143)
        check(mine in want, f"the {target}: exit code {mine}, want {want}\n{full}")
        check("interrupted" in mine_err.lower(), f"the {target} should say it was interrupted\n"
                                                 f"{full}")
        check(other == 7, f"the other peer: exit code {other}, want 7 (transfer failed)\n{full}")
        check("rtcat:" in other_err, f"the other peer should say why it stopped\n{full}")
        check_clean(s_err, "sender", full)
        check_clean(r_err, "receiver", full)
        # The summaries describe the run that was cut short: a real duration and rate (the
        # transfer ran for a fraction of a second at least), not bytes over zero seconds.
        for who, text in (("sender", s_err), ("receiver", r_err)):
            for secs_text, rate_text in re.findall(r" in ([0-9.]+) s \(([0-9.]+) MB/s\)", text):
                check(float(secs_text) > 0.05 and float(rate_text) < 100000,
                      f"{who}: nonsense summary '{secs_text} s ({rate_text} MB/s)'\n{full}")
        check(part.exists(), f"no {part.name} left on the receiver side\n{full}")
        held = part.stat().st_size
        check(INTERRUPT_AT <= held < BIG, f"{part.name} holds {held} bytes\n{full}")
        check(not (t / "dl" / "big.bin").exists(), f"an incomplete file was renamed to its final "
                                                   f"name\n{full}")
        # What .part holds is a true prefix of the file (nothing unflushed or garbled).
        check(sha256(part) == sha256(src, held), f"{part.name} is not a prefix of the source")
        print(f"{target} got {signal.Signals(signo).name}: rc {s_rc}/{r_rc} after {secs:.2f} s, "
              f"{held} bytes kept\n{full}", flush=True)
        return tmp, src, part
    except BaseException:
        tmp.cleanup()
        raise
    finally:
        peers.kill()


def test_sigint_to_the_receiver_keeps_part_and_resume_continues():
    tmp, src, part = interrupt_transfer("receiver", signal.SIGINT)
    with tmp:
        t = Path(tmp.name)
        held = part.stat().st_size
        peers = Peers(t, ["big.bin", "--json"], ["--out", "dl", "--resume"])
        try:
            s_rc, r_rc, _ = peers.wait(45)
            full = peers.report()
        finally:
            peers.kill()
        check(s_rc == 0 and r_rc == 0, f"resume: exit codes {s_rc} {r_rc}\n{full}")
        check(sha256(t / "dl" / "big.bin") == sha256(src), "the resumed file differs")
        check(not part.exists(), ".part left after a complete resume")
        check(f'"resumed_from":{held}' in peers.s_err.read_text().replace(" ", ""),
              f"the sender did not resume from {held}\n{full}")


def test_sigint_to_the_sender_keeps_part():
    tmp, _, _ = interrupt_transfer("sender", signal.SIGINT)
    tmp.cleanup()


def test_sigterm_to_the_receiver_ends_like_sigint():
    tmp, _, _ = interrupt_transfer("receiver", signal.SIGTERM)
    tmp.cleanup()


def test_sigterm_to_the_sender_ends_like_sigint():
    tmp, _, _ = interrupt_transfer("sender", signal.SIGTERM)
    tmp.cleanup()


def test_sigint_while_waiting_for_the_offer():
    # Nobody ever writes the offer: the signal is the only way out, and must be prompt.
    r_fd, w_fd = os.pipe()
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.Popen([RTCAT, "answer", *LO, "--out", "dl"], stdin=r_fd,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp,
                             start_new_session=True)
        os.close(r_fd)
        try:
            time.sleep(0.5)
            check(p.poll() is None, f"answer exited early: {p.poll()}")
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=END_WITHIN)
        finally:
            os.close(w_fd)
            if p.poll() is None:
                p.kill()
                p.wait()
        text = err.decode("utf-8", "replace")
        check(p.returncode == 130, f"exit code {p.returncode}, want 130\n{text}")
        check("interrupted" in text.lower(), f"message\n{text}")
        check_clean(text, "answer", text)
        check(not (Path(tmp) / "dl").exists() or not any((Path(tmp) / "dl").iterdir()),
              "files written without a transfer")


def test_broken_pipe_in_netcat_mode_ends_the_session():
    """`rtcat answer ... | head -c 1M`: once head leaves, the answerer's stdout is a broken pipe.
    The peer streams without end (/dev/zero), so only the broken pipe can end the session."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        os.mkfifo(t / "offer")
        os.mkfifo(t / "answer")
        with open(t / "offerer.err", "wb") as oe, open(t / "answerer.err", "wb") as ae, \
                open("/dev/zero", "rb") as zero:
            offerer = subprocess.Popen(
                [RTCAT, "offer", *LO, "--sdp-out", "offer", "--sdp-in", "answer"],
                stdin=zero, stdout=subprocess.DEVNULL, stderr=oe, cwd=tmp,
                start_new_session=True)
            answerer = subprocess.Popen(
                [RTCAT, "answer", *LO, "--sdp-in", "offer", "--sdp-out", "answer"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=ae, cwd=tmp,
                start_new_session=True)

        def report():
            return (f"offerer rc {offerer.poll()}:\n{(t / 'offerer.err').read_text()}\n"
                    f"answerer rc {answerer.poll()}:\n{(t / 'answerer.err').read_text()}")

        try:
            got = 0
            deadline = time.monotonic() + 30
            while got < (1 << 20) and time.monotonic() < deadline:
                chunk = answerer.stdout.read1(65536)
                if not chunk:
                    break
                check(chunk.count(0) == len(chunk), "netcat data is not the zeros sent")
                got += len(chunk)
            check(got >= 1 << 20, f"only {got} bytes arrived\n{report()}")
            answerer.stdout.close()  # the reader goes away, like `head` does
            closed_at = time.monotonic()
            try:
                a_rc = answerer.wait(timeout=END_WITHIN)
            except subprocess.TimeoutExpired:
                a_rc = None
            a_secs = time.monotonic() - closed_at
            try:
                o_rc = offerer.wait(timeout=END_WITHIN)
            except subprocess.TimeoutExpired:
                o_rc = None
            full = report()
            check(a_rc is not None, f"the answerer still runs {END_WITHIN} s after its stdout "
                                    f"broke\n{full}")
            check(a_rc == 7, f"answerer exit code {a_rc}, want 7 (transfer failed)\n{full}")
            a_err = (t / "answerer.err").read_text()
            check("broken pipe" in a_err.lower(), f"the answerer should say why\n{full}")
            check(o_rc == 7, f"offerer exit code {o_rc}, want 7 (the peer went away)\n{full}")
            check_clean(a_err, "answerer", full)
            o_err = (t / "offerer.err").read_text()
            check_clean(o_err, "offerer", full)
            # One message says why; not a warning per message dropped after the peer left.
            lines = o_err.splitlines()
            check(len(lines) < 20, f"the offerer printed {len(lines)} lines on stderr, first: "
                                   f"{lines[:3]}, last: {lines[-3:]}")
            print(f"answerer ended {a_secs:.2f} s after the broken pipe", flush=True)
        finally:
            for p in (offerer, answerer):
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()


if __name__ == "__main__":
    run_tests(globals())
