"""Helpers for tests/cli/test_*.py: find the binary, run it bounded, skip, a tiny test runner.

A CLI test file looks like:

    import sys, pathlib
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
    from rtcat_test import run_rtcat, run_tests, skip, check

    def test_version():
        r = run_rtcat("--version")
        check(r.rc == 0, "rc", r)

    if __name__ == "__main__":
        run_tests(globals())

ctest runs each file as `python3 FILE` with env RTCAT (the binary) and RTCAT_SOURCE_DIR. Exit
code 77 means "skipped" (SKIP_RETURN_CODE in tests/CMakeLists.txt). Stdlib only.
"""

from __future__ import annotations

import hashlib
import os
import random
import shlex
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

SKIP_CODE = 77

SOURCE_DIR = Path(os.environ.get("RTCAT_SOURCE_DIR") or Path(__file__).resolve().parents[2])


class Skip(Exception):
    """Raised inside a test function to skip just that test."""


class CheckFailed(AssertionError):
    pass


def sha256_file(path, limit: Optional[int] = None) -> str:
    """SHA-256 of a file (of its first `limit` bytes if given), read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = limit
        while left is None or left > 0:
            chunk = f.read(1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            h.update(chunk)
            if left is not None:
                left -= len(chunk)
    return h.hexdigest()


def random_file(path, size: int, seed: Optional[int] = None) -> None:
    """`size` random bytes; reproducible when `seed` is given (print it on failure)."""
    rng = random.Random(seed) if seed is not None else None
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n) if rng else os.urandom(n))
            left -= n


def skip(reason: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
    """Skips the whole test file: prints SKIP and exits 77 (ctest reports it as skipped)."""
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP_CODE)


def rtcat_binary() -> str:
    """The binary under test: $RTCAT, else build/rtcat (or $RTCAT_BUILD_ROOT/build/rtcat)."""
    env = os.environ.get("RTCAT")
    if env:
        if not os.access(env, os.X_OK):
            raise FileNotFoundError(f"RTCAT={env} is not an executable file")
        return env
    root = Path(os.environ.get("RTCAT_BUILD_ROOT") or SOURCE_DIR)
    for cand in (root / "build" / "rtcat", SOURCE_DIR / "build" / "rtcat"):
        if os.access(cand, os.X_OK):
            return str(cand)
    raise FileNotFoundError("rtcat binary not found: set RTCAT=/path/to/rtcat or run scripts/build.sh")


@dataclass
class Result:
    cmd: List[str]
    rc: Optional[int]  # None: killed on timeout
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def __str__(self) -> str:
        def clip(s: str) -> str:
            return s if len(s) < 4000 else s[:2000] + "\n...\n" + s[-2000:]

        return (f"$ {shlex.join(self.cmd)}\n"
                f"rc={self.rc}{' (timed out)' if self.timed_out else ''} in {self.seconds:.2f}s\n"
                f"--- stdout ---\n{clip(self.stdout)}\n--- stderr ---\n{clip(self.stderr)}")


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run(cmd: Sequence[str], timeout: float = 30.0, input: Union[str, bytes, None] = None,
        env: Optional[Mapping[str, str]] = None, cwd: Union[str, Path, None] = None,
        binary: bool = False, echo: bool = True) -> Result:
    """Runs cmd with a hard timeout (the whole process group is killed), capturing output.

    Returns text output unless binary=True (then stdout/stderr are bytes)."""
    cmd = [str(c) for c in cmd]
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    if echo:
        print(f"$ {shlex.join(cmd)}", flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, cwd=cwd,
        start_new_session=True)
    data = input.encode() if isinstance(input, str) else input
    timed_out = False
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out, err = proc.communicate()
    finally:
        # Whatever it started in its group goes too.
        _kill_group(proc)
    rc = None if timed_out else proc.returncode
    if not binary:
        out = out.decode("utf-8", "replace")
        err = err.decode("utf-8", "replace")
    return Result(cmd, rc, out, err, time.monotonic() - start, timed_out)


def run_rtcat(*args: str, timeout: float = 30.0, **kw) -> Result:
    return run([rtcat_binary(), *args], timeout=timeout, **kw)


def check(cond: bool, message: str, result: Optional[Result] = None) -> None:
    """Fails the current test with message (and the command's output when given)."""
    if not cond:
        raise CheckFailed(message + (f"\n{result}" if result is not None else ""))


def can_use_netns() -> Tuple[bool, str]:
    """(True, "") when `ip netns add` works here (root or CAP_SYS_ADMIN + CAP_NET_ADMIN), else
    (False, why). Actually tries: creates and deletes a throwaway namespace."""
    import shutil

    if not shutil.which("ip"):
        return False, "iproute2 (`ip`) is not installed"
    if not shutil.which("nft"):
        return False, "nftables (`nft`) is not installed"
    name = f"rtcatprobe{os.getpid()}x{random.randrange(16**6):06x}"
    try:
        r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"`ip netns add` failed: {e}"
    if r.returncode != 0:
        return False, f"`ip netns add` failed (need root/CAP_NET_ADMIN): {r.stderr.strip()}"
    try:
        r = subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            return False, f"`ip netns exec` failed: {r.stderr.strip()}"
        r = subprocess.run(["ip", "netns", "exec", name, "nft", "list", "ruleset"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            return False, f"nftables unusable in a namespace: {r.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
    return True, ""


def run_tests(namespace: Dict[str, object], only: Optional[List[str]] = None) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
    """Runs every test_* function in namespace (in definition order) and exits:
    0 all passed, 1 any failed, 77 all skipped. Test names on the command line select some."""
    tests: List[Tuple[str, Callable[[], None]]] = [
        (k, v) for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    wanted = only if only is not None else sys.argv[1:]
    if wanted:
        tests = [(k, v) for k, v in tests if k in wanted]
    passed, failed, skipped = [], [], []
    for name, fn in tests:
        print(f"=== {name}", flush=True)
        start = time.monotonic()
        try:
            fn()
        except Skip as e:
            skipped.append(name)
            print(f"--- SKIP {name}: {e}", flush=True)
            continue
        except Exception:  # noqa: BLE001 - report every failure and go on
            failed.append(name)
            traceback.print_exc()
            print(f"--- FAIL {name} ({time.monotonic() - start:.2f}s)", flush=True)
            continue
        passed.append(name)
        print(f"--- PASS {name} ({time.monotonic() - start:.2f}s)", flush=True)
    print(f"{len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped", flush=True)
    if failed:
        print("failed: " + " ".join(failed), flush=True)
        sys.exit(1)
    if tests and len(skipped) == len(tests):
        print("SKIP: every test skipped", flush=True)
        sys.exit(SKIP_CODE)
    if not tests:
        print("no tests selected", flush=True)
        sys.exit(1)
    sys.exit(0)
