"""The peer examples of README.md ("Moving files between peers"), run as a user types them.

Each example is the ```sh block after an HTML comment `<!-- test: NAME -->` in README.md; this
file reads the blocks from README.md (a missing marker fails the test) and runs them for real,
with a random file in place of big.iso, checking what arrives by SHA-256:

  fifo    the block, verbatim, by bash in a temp dir;
  ssh     the block, verbatim, against a real sshd on 127.0.0.1 (throwaway host and user keys;
          `ssh` on PATH is a wrapper adding `-F <temp config>`; the "remote" login starts in its
          own directory with rtcat on PATH, as on another machine);
  paste   each `# terminal N` line in its own pseudo-terminal; the test copies the token line
          one terminal prints and types it into the other, as a human pastes;
  netcat  the same, with signaling on /dev/tty (each terminal is its command's controlling tty).

The whole file runs inside `unshare -n` (a network namespace with only `lo`): the examples use
rtcat's default of every interface that is up, and loopback must be all there is. Without
`unshare -n` the file is skipped; without sshd only the ssh example is.
"""

import fcntl
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from rtcat_test import SOURCE_DIR, Skip, check, rtcat_binary, run, run_tests, skip, sha256_file as sha256, random_file  # noqa: E402

RTCAT = rtcat_binary()
README = SOURCE_DIR / "README.md"
EXAMPLES = ["fifo", "ssh", "paste", "netcat"]
FILE_SIZE = 24 << 20  # big enough for many SCTP windows, small enough for a few seconds
STEP_TIMEOUT = 40.0  # seconds for any one example (every test stays < 60 s)
NETNS_ENV = "RTCAT_README_IN_NETNS"
TOKEN = re.compile(rb"rtcat[12]:[A-Za-z0-9_+/=-]+")


# --- the network namespace ------------------------------------------------------------------

def enter_loopback_netns():
    """Re-executes this file inside `unshare -n` with lo up, or skips the file."""
    if os.environ.get(NETNS_ENV) == "1":
        r = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True)
        if r.returncode != 0:
            skip(f"cannot bring lo up in the namespace: {r.stderr.strip()}")
        return
    if not shutil.which("unshare") or not shutil.which("ip"):
        skip("needs unshare (util-linux) and ip (iproute2)")
    try:
        r = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        skip(f"`unshare -n` failed: {e}")
    if r.returncode != 0:
        skip("needs `unshare -n` (root or CAP_SYS_ADMIN): the examples gather every interface, "
             f"so they may only run where loopback is the only one ({r.stderr.strip()})")
    env = dict(os.environ, **{NETNS_ENV: "1", "RTCAT": RTCAT})
    sys.stdout.flush()
    os.execvpe("unshare", ["unshare", "-n", sys.executable, __file__, *sys.argv[1:]], env)


# --- README blocks --------------------------------------------------------------------------

def readme_blocks():
    """{name: block text} for every `<!-- test: name -->` followed by a ```sh block."""
    text = README.read_text()
    found = {}
    for m in re.finditer(r"<!-- test: (\w+) -->\s*\n```sh\n(.*?)\n```", text, re.S):
        found[m.group(1)] = m.group(2)
    return found


def block(name):
    blocks = readme_blocks()
    check(name in blocks, f"README.md lost the example marked <!-- test: {name} --> "
                          f"(found: {sorted(blocks)})")
    return blocks[name]


def terminal_lines(text):
    """{N: command} from lines ending in `# terminal N`."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(.*?)\s+#\s*terminal (\d+)\b", line)
        check(m is not None, f"line without a '# terminal N' comment: {line!r}")
        out[int(m.group(2))] = m.group(1).strip()
    check(sorted(out) == [1, 2], f"expected terminals 1 and 2: {out}")
    return out


# --- helpers --------------------------------------------------------------------------------



def user_env(tmp):
    """PATH with a bin/ holding `rtcat` (whatever the build calls the binary) first."""
    bin_dir = Path(tmp) / "bin"
    bin_dir.mkdir(exist_ok=True)
    link = bin_dir / "rtcat"
    if not link.exists():
        link.symlink_to(RTCAT)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}"
    env.pop("SSLKEYLOGFILE", None)
    return env, bin_dir


def run_block(text, cwd, env):
    """Runs a README block with bash in cwd; returns (exit codes of the last pipeline, Result)."""
    script = text + '\necho "${PIPESTATUS[*]}" >.rc\n'
    r = run(["bash", "-c", script], timeout=STEP_TIMEOUT, cwd=cwd, env=env)
    check(not r.timed_out, "example timed out", r)
    codes = [int(c) for c in (Path(cwd) / ".rc").read_text().split()]
    return codes, r


def check_received(src, dst, r):
    check(dst.exists(), f"{dst} missing", r)
    check(sha256(dst) == sha256(src), f"{dst} differs from {src}", r)
    check(not dst.with_name(dst.name + ".part").exists(), ".part left behind", r)


# --- pseudo-terminals ------------------------------------------------------------------------

class Terminal:
    """One command in its own pseudo-terminal, which is also its controlling tty (/dev/tty),
    as when a user types it at a shell prompt. Everything it prints is collected."""

    def __init__(self, name, command, cwd, env):
        self.name = name
        self.command = command
        self.master, slave = pty.openpty()
        self.output = bytearray()
        self.lock = threading.Lock()

        def become_terminal_session():
            # start_new_session already called setsid(); fd 0 is the pty: make it ours.
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        # pipefail: in `rtcat ... | tar x` rtcat's exit code counts too.
        print(f"[{name}]$ {command}", flush=True)
        self.proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", command], stdin=slave,
                                     stdout=slave,
                                     stderr=slave, cwd=cwd, env=env, start_new_session=True,
                                     preexec_fn=become_terminal_session)
        os.close(slave)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every slave descriptor is closed
                return
            if not data:
                return
            with self.lock:
                self.output += data

    def text(self):
        with self.lock:
            return bytes(self.output)

    def wait_token(self, deadline, exclude=()):
        """The first token this terminal printed that is not one we pasted (the tty echoes)."""
        while time.monotonic() < deadline:
            for t in TOKEN.findall(self.text()):
                if t not in exclude:
                    return t
            if self.proc.poll() is not None:
                time.sleep(0.1)  # let the reader catch the last output
                for t in TOKEN.findall(self.text()):
                    if t not in exclude:
                        return t
                break
            time.sleep(0.02)
        raise AssertionError(f"no token from {self.name} ({self.command!r}):\n{self.dump()}")

    def paste(self, token):
        # A paste of one line, then Enter, into the terminal's input queue.
        os.write(self.master, token + b"\n")

    def wait(self, deadline):
        try:
            return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return None

    def dump(self):
        return (f"--- {self.name}: {self.command} (rc {self.proc.poll()}) ---\n"
                + self.text().decode("utf-8", "replace"))

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.reader.join(timeout=2)
        os.close(self.master)


def two_terminals(text, cwd1, cwd2, env):
    """Runs terminal 1 and 2 of a README block, pastes 1's token into 2 and 2's back into 1;
    returns (rc1, rc2, terminals) with both finished."""
    lines = terminal_lines(text)
    deadline = time.monotonic() + STEP_TIMEOUT
    t1 = Terminal("terminal 1", lines[1], cwd1, env)
    t2 = None
    try:
        offer = t1.wait_token(deadline)
        t2 = Terminal("terminal 2", lines[2], cwd2, env)
        t2.paste(offer)
        answer = t2.wait_token(deadline, exclude=(offer,))
        t1.paste(answer)
        rc1, rc2 = t1.wait(deadline), t2.wait(deadline)
        if rc1 is None or rc2 is None:
            raise AssertionError(f"timed out (rc {rc1} {rc2})\n{t1.dump()}\n{t2.dump()}")
        print(t1.dump(), t2.dump(), sep="\n", flush=True)
        return rc1, rc2, (t1, t2)
    finally:
        t1.close()
        if t2:
            t2.close()


# --- sshd -----------------------------------------------------------------------------------

def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """A real sshd on 127.0.0.1:PORT with a throwaway host key, accepting one throwaway user key
    whose login starts in `home` with rtcat on PATH (what a remote machine would look like)."""

    def __init__(self, tmp, home, bin_dir):
        self.dir = Path(tmp) / "ssh"
        self.dir.mkdir()
        d = self.dir
        for key in ("host_key", "id"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rtcat-test",
                            "-f", str(d / key)], check=True, timeout=30)
        # command=: the login shell's working directory and PATH of the "remote machine".
        forced = (f'cd {home} && PATH={bin_dir}:$PATH && exec sh -c "$SSH_ORIGINAL_COMMAND"')
        (d / "authorized_keys").write_text(
            'command="' + forced.replace('"', '\\"') + '" ' + (d / "id.pub").read_text())
        self.port = free_port()
        (d / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\nAllowTcpForwarding no\nX11Forwarding no\n"
            "PrintMotd no\nPrintLastLog no\n")
        user = os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name
        self.config = d / "ssh_config"
        self.config.write_text(
            f"Host host\n  HostName 127.0.0.1\n  Port {self.port}\n  User {user}\n"
            f"  IdentityFile {d / 'id'}\n  IdentitiesOnly yes\n  BatchMode yes\n"
            "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
            "  GlobalKnownHostsFile /dev/null\n  LogLevel ERROR\n  ConnectTimeout 10\n")
        self.log = d / "sshd.log"
        self.proc = None

    def __enter__(self):
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        # sshd re-executes itself and insists on an absolute path.
        self.proc = subprocess.Popen([os.path.realpath(sshd), "-D", "-e", "-f",
                                      str(self.dir / "sshd_config")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"),
                                     start_new_session=True)
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"sshd exited {self.proc.returncode}:\n"
                                     f"{self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"sshd did not listen:\n{self.log.read_text()}")

    def __exit__(self, *exc):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def sshd_unusable():
    """Why a real sshd cannot run here, or None."""
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if os.access("/usr/sbin/sshd", os.X_OK)
                                    else None)
    if not sshd:
        return "sshd is not installed (Debian: openssh-server; scripts/install-deps.sh installs it)"
    for tool in ("ssh", "ssh-keygen"):
        if not shutil.which(tool):
            return f"{tool} is not installed (Debian: openssh-client)"
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        # sshd running as root insists on its privilege-separation directory, which the
        # package creates at boot (tmpfiles.d) or when its service starts; we start neither.
        try:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        except OSError as e:
            return f"/run/sshd is missing and cannot be created: {e}"
    return None


# --- the tests ------------------------------------------------------------------------------

def test_readme_marks_every_example():
    blocks = readme_blocks()
    missing = [n for n in EXAMPLES if n not in blocks]
    check(not missing, f"README.md examples without their <!-- test: --> marker: {missing}")
    for n in ("fifo", "ssh"):
        check("big.iso" in blocks[n], f"{n}: the example should send big.iso")


def test_fifo_example():
    text = block("fifo")
    with tempfile.TemporaryDirectory() as tmp:
        env, _ = user_env(tmp)
        work = Path(tmp) / "work"
        work.mkdir()
        seed = int.from_bytes(os.urandom(4), "big")
        print(f"seed {seed}")
        random_file(work / "big.iso", FILE_SIZE, seed)
        codes, r = run_block(text, work, env)
        check(codes == [0, 0], f"exit codes {codes}", r)
        check_received(work / "big.iso", work / "dl" / "big.iso", r)
        check(r.stderr.count("verified") >= 2, "both sides should report 'verified'", r)


def test_ssh_example():
    why = sshd_unusable()
    if why:
        raise Skip(why)
    text = block("ssh")
    with tempfile.TemporaryDirectory() as tmp:
        env, bin_dir = user_env(tmp)
        local, remote = Path(tmp) / "local", Path(tmp) / "remote"
        local.mkdir()
        remote.mkdir()
        seed = int.from_bytes(os.urandom(4), "big")
        print(f"seed {seed}")
        random_file(local / "big.iso", FILE_SIZE, seed)
        with Sshd(tmp, remote, bin_dir) as sshd:
            wrapper = bin_dir / "ssh"
            wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F {sshd.config} "$@"\n')
            wrapper.chmod(0o755)
            codes, r = run_block(text, local, env)
            log = sshd.log.read_text()
        check(codes == [0, 0], f"exit codes {codes}\n--- sshd log ---\n{log}", r)
        check("Accepted publickey" in log, f"the example did not go through sshd:\n{log}", r)
        check_received(local / "big.iso", remote / "dl" / "big.iso", r)
        check(not (local / "dl").exists(), "the file landed on the local side", r)


def test_paste_example():
    text = block("paste")
    with tempfile.TemporaryDirectory() as tmp:
        env, _ = user_env(tmp)
        recv, send = Path(tmp) / "t1", Path(tmp) / "t2"
        recv.mkdir()
        send.mkdir()
        seed = int.from_bytes(os.urandom(4), "big")
        print(f"seed {seed}")
        random_file(send / "big.iso", FILE_SIZE, seed)
        rc1, rc2, (t1, t2) = two_terminals(text, recv, send, env)
        check(rc1 == 0 and rc2 == 0, f"exit codes {rc1} {rc2}")
        check_received(send / "big.iso", recv / "dl" / "big.iso", None)
        # A newcomer is told what the token is for and what to do with the reply.
        out1 = t1.text().decode("utf-8", "replace")
        out2 = t2.text().decode("utf-8", "replace")
        check("On the other computer run" in out1 and "rtcat send-file FILE... --answer" in out1
              and "paste the answer here" in out1, f"terminal 1 gives no guide:\n{out1[-2000:]}")
        check("paste it into the other rtcat" in out2, f"terminal 2 gives no guide:\n{out2[-2000:]}")


def test_netcat_example():
    text = block("netcat")
    with tempfile.TemporaryDirectory() as tmp:
        env, _ = user_env(tmp)
        t1, t2 = Path(tmp) / "t1", Path(tmp) / "t2"
        t1.mkdir()
        t2.mkdir()
        seed = int.from_bytes(os.urandom(4), "big")
        print(f"seed {seed}")
        photos = t1 / "photos"
        (photos / "2024").mkdir(parents=True)
        random_file(photos / "a.jpg", 3 << 20, seed)
        random_file(photos / "2024" / "b.jpg", 5 << 20, seed + 1)
        random_file(photos / "2024" / "empty", 0, seed + 2)
        rc1, rc2, _ = two_terminals(text, t1, t2, env)
        check(rc1 == 0 and rc2 == 0, f"exit codes {rc1} {rc2}")
        for rel in ("a.jpg", "2024/b.jpg", "2024/empty"):
            got = t2 / "photos" / rel
            check(got.exists(), f"photos/{rel} did not arrive")
            check(sha256(got) == sha256(photos / rel), f"photos/{rel} differs")


if __name__ == "__main__":
    enter_loopback_netns()
    run_tests(globals())
