"""coturn (turnserver) as a test fixture, plus a tiny stdlib STUN client to check it.

    with Coturn(users={"demo": "demo"}, realm="rtcat.test") as turn:
        print(turn.host, turn.port)            # 127.0.0.1 and a free UDP/TCP port
        print(turn.turn_uri("demo", "demo"))   # turn:demo:demo@127.0.0.1:PORT?transport=udp

With two listening addresses (the default: 127.0.0.1 and 127.0.0.2) coturn enables RFC 5780
NAT behaviour discovery: binding responses carry OTHER-ADDRESS (127.0.0.2:PORT+1) and it honours
CHANGE-REQUEST. Pass `netns=NAME` to run it inside a network namespace (see nat_lab.py).

Run as a script:
    coturn.py serve [--port P] [--user U:P ...] [--realm R] [--listen IP ...] [--max-seconds S]
        starts coturn, prints "ready HOST PORT" and runs until SIGTERM/SIGINT or the limit
    coturn.py probe HOST:PORT [--change-ip] [--change-port]
        one STUN binding request; prints the decoded response as JSON (exit 1 on no answer)

Stdlib only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

MAGIC = 0x2112A442

ATTR_MAPPED_ADDRESS = 0x0001
ATTR_CHANGE_REQUEST = 0x0003
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_SOFTWARE = 0x8022
ATTR_RESPONSE_ORIGIN = 0x802B
ATTR_OTHER_ADDRESS = 0x802C


class CoturnError(RuntimeError):
    pass


class CoturnUnavailable(CoturnError):
    """turnserver is not installed."""


# --- STUN (RFC 8489 / RFC 5780), just enough to check a server --------------------------------


def _decode_address(value: bytes, tid: bytes, xor: bool) -> Optional[Tuple[str, int]]:
    if len(value) < 4:
        return None
    family = value[1]
    port = struct.unpack("!H", value[2:4])[0]
    addr = value[4:]
    if xor:
        port ^= MAGIC >> 16
        key = struct.pack("!I", MAGIC) + tid
        addr = bytes(a ^ k for a, k in zip(addr, key))
    if family == 1 and len(addr) == 4:
        return socket.inet_ntop(socket.AF_INET, addr), port
    if family == 2 and len(addr) == 16:
        return socket.inet_ntop(socket.AF_INET6, addr), port
    return None


def binding_request(tid: bytes, change_ip: bool = False, change_port: bool = False) -> bytes:
    attrs = b""
    if change_ip or change_port:
        flags = (4 if change_ip else 0) | (2 if change_port else 0)
        attrs += struct.pack("!HHI", ATTR_CHANGE_REQUEST, 4, flags)
    return struct.pack("!HHI", 0x0001, len(attrs), MAGIC) + tid + attrs


def parse_binding_response(data: bytes, tid: bytes) -> Optional[dict]:
    """The decoded success response, or None when `data` is not the answer to `tid`."""
    if len(data) < 20:
        return None
    mtype, length, magic = struct.unpack("!HHI", data[:8])
    if magic != MAGIC or data[8:20] != tid or 20 + length > len(data):
        return None
    out: dict = {"type": mtype}
    pos = 20
    while pos + 4 <= 20 + length:
        atype, alen = struct.unpack("!HH", data[pos : pos + 4])
        value = data[pos + 4 : pos + 4 + alen]
        if atype == ATTR_XOR_MAPPED_ADDRESS:
            out["xor_mapped"] = _decode_address(value, tid, True)
        elif atype == ATTR_MAPPED_ADDRESS:
            out["mapped"] = _decode_address(value, tid, False)
        elif atype == ATTR_OTHER_ADDRESS:
            out["other"] = _decode_address(value, tid, False)
        elif atype == ATTR_RESPONSE_ORIGIN:
            out["origin"] = _decode_address(value, tid, False)
        elif atype == ATTR_SOFTWARE:
            out["software"] = value.decode("utf-8", "replace")
        pos += 4 + ((alen + 3) & ~3)
    return out


def stun_binding(
    server: Tuple[str, int],
    sock: Optional[socket.socket] = None,
    timeout: float = 2.0,
    change_ip: bool = False,
    change_port: bool = False,
    attempts: int = 4,
) -> Optional[dict]:
    """Sends a binding request (retransmitting) and returns the decoded response, or None.

    The response may come from another address (CHANGE-REQUEST): `from` says where."""
    own = sock is None
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    s = sock or socket.socket(family, socket.SOCK_DGRAM)
    try:
        tid = os.urandom(12)
        req = binding_request(tid, change_ip, change_port)
        deadline = time.monotonic() + timeout
        per_try = timeout / max(1, attempts)
        while time.monotonic() < deadline:
            s.sendto(req, server)
            try_end = min(deadline, time.monotonic() + per_try)
            while True:
                left = try_end - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    data, src = s.recvfrom(2048)
                except socket.timeout:
                    break
                except ConnectionRefusedError:
                    # ICMP port unreachable from an earlier try: keep waiting, bounded.
                    continue
                resp = parse_binding_response(data, tid)
                if resp is not None:
                    resp["from"] = (src[0], src[1])
                    return resp
        return None
    finally:
        if own:
            s.close()


# --- free ports -------------------------------------------------------------------------------


def _bindable(ip: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(family, kind)
        try:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((ip, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port(ips: Sequence[str] = ("127.0.0.1",), span: int = 1, lo: int = 20000, hi: int = 32000) -> int:
    """A port P such that P..P+span-1 are free for UDP and TCP on every ip. Below the kernel's
    ephemeral range (32768+) so clients' random ports rarely take it meanwhile."""
    rng = random.Random()
    for _ in range(200):
        p = rng.randrange(lo, hi - span)
        if all(_bindable(ip, p + k) for ip in ips for k in range(span)):
            return p
    raise CoturnError(f"no free port pair found on {list(ips)}")


# --- the server -------------------------------------------------------------------------------


def turnserver_binary() -> str:
    path = shutil.which("turnserver") or ("/usr/bin/turnserver" if os.path.exists("/usr/bin/turnserver") else None)
    if not path:
        raise CoturnUnavailable("turnserver not found (apt-get install coturn; scripts/install-deps.sh does)")
    return path


class Coturn:
    """A coturn process for one test, stopped (and its temp dir removed) on exit."""

    def __init__(
        self,
        listen: Sequence[str] = ("127.0.0.1", "127.0.0.2"),
        port: Optional[int] = None,
        users: Optional[Dict[str, str]] = None,
        realm: str = "rtcat.test",
        netns: Optional[str] = None,
        allow_loopback_peers: Optional[bool] = None,
        rfc5780: bool = True,
        tcp: bool = True,
        fingerprint: bool = False,
        extra_args: Iterable[str] = (),
        ready_timeout: float = 15.0,
        verbose: bool = False,
    ):
        self.listen: List[str] = list(listen)
        if not self.listen:
            raise ValueError("Coturn needs at least one listening address")
        self.requested_port = port
        self.users = dict(users if users is not None else {"demo": "demo"})
        self.realm = realm
        self.netns = netns
        if allow_loopback_peers is None:
            allow_loopback_peers = any(ip.startswith("127.") or ip == "::1" for ip in self.listen)
        self.allow_loopback_peers = allow_loopback_peers
        self.rfc5780 = rfc5780 and len(self.listen) >= 2
        self.tcp = tcp
        self.fingerprint = fingerprint
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.verbose = verbose
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.tmp: Optional[str] = None
        self.log_path: Optional[str] = None

    # Where clients go.
    @property
    def host(self) -> str:
        return self.listen[0]

    @property
    def address(self) -> Tuple[str, int]:
        return self.host, self.port

    @property
    def alt_host(self) -> Optional[str]:
        return self.listen[1] if self.rfc5780 else None

    @property
    def alt_port(self) -> Optional[int]:
        return self.port + 1 if self.rfc5780 else None

    def hostport(self, host: Optional[str] = None) -> str:
        h = host or self.host
        return f"[{h}]:{self.port}" if ":" in h else f"{h}:{self.port}"

    def stun_uri(self) -> str:
        return f"stun:{self.hostport()}"

    def turn_uri(self, user: str = "demo", password: Optional[str] = None, transport: str = "udp") -> str:
        """rtcat's TURN URI form: turn:USER:PASS@HOST:PORT?transport=udp"""
        if password is None:
            password = self.users[user]
        return f"turn:{user}:{password}@{self.hostport()}?transport={transport}"

    def log(self) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def _command(self) -> List[str]:
        assert self.tmp is not None
        cmd = [
            turnserver_binary(),
            "-n",  # no configuration file: everything is on this command line
            "--listening-port", str(self.port),
            "--no-tls", "--no-dtls", "--no-cli",
            "--log-file", "stdout", "--simple-log",
            "--pidfile", os.path.join(self.tmp, "turnserver.pid"),
            "--userdb", os.path.join(self.tmp, "turndb"),
            "--realm", self.realm,
            "--no-multicast-peers",
            "--relay-threads", "1",
        ]
        for ip in self.listen:
            cmd += ["--listening-ip", ip]
        if self.rfc5780:
            cmd += ["--alt-listening-port", str(self.port + 1)]
        else:
            cmd += ["--no-rfc5780"]
        if self.users:
            cmd += ["--lt-cred-mech"]
            for u, p in self.users.items():
                cmd += ["--user", f"{u}:{p}"]
        else:
            cmd += ["--no-auth"]
        if any(":" in ip for ip in self.listen):
            # coturn relays IPv4 by default (RFC 6156 §4.2) and fails an IPv6-only server's
            # allocations with "Unsupported address family": follow the client's family.
            cmd += ["--allocation-default-address-family", "keep"]
        if not self.tcp:
            cmd += ["--no-tcp"]
        if self.allow_loopback_peers:
            cmd += ["--allow-loopback-peers"]
        if self.fingerprint:
            cmd += ["--fingerprint"]
        if self.verbose:
            cmd += ["--verbose"]
        cmd += self.extra_args
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        return cmd

    def _probe(self, ip: str, timeout: float) -> bool:
        if self.netns is None:
            return stun_binding((ip, self.port), timeout=timeout) is not None
        # Inside the namespace: run this file's probe there.
        try:
            r = subprocess.run(
                ["ip", "netns", "exec", self.netns, sys.executable, "-B", os.path.abspath(__file__),
                 "probe", f"{ip}:{self.port}", "--timeout", str(timeout)],
                capture_output=True, timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0

    def start(self) -> "Coturn":
        turnserver_binary()
        last_error = ""
        for attempt in range(3):
            self.tmp = tempfile.mkdtemp(prefix="rtcat-coturn-")
            self.log_path = os.path.join(self.tmp, "turnserver.log")
            if self.requested_port:
                self.port = self.requested_port
            elif self.netns:
                # A fresh namespace has nothing bound: any port is free there.
                self.port = random.Random().randrange(20000, 32000)
            else:
                self.port = free_port(self.listen, span=2 if self.rfc5780 else 1)
            with open(self.log_path, "wb") as logf:
                self.proc = subprocess.Popen(
                    self._command(), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                    start_new_session=True, cwd=self.tmp)
            if self._wait_ready():
                return self
            last_error = f"attempt {attempt + 1} on port {self.port}: not ready\n" + self.log()[-3000:]
            self.stop()
            if self.requested_port:
                break
        raise CoturnError("coturn did not become ready:\n" + last_error)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.ready_timeout
        pending = list(self.listen)
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            pending = [ip for ip in pending if not self._probe(ip, 0.5)]
            if not pending:
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        if self.tmp and os.environ.get("RTCAT_KEEP_COTURN_LOG"):
            print(f"coturn log kept in {self.log_path}", file=sys.stderr)
        elif self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None

    def __enter__(self) -> "Coturn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- command line -----------------------------------------------------------------------------


def _parse_hostport(text: str) -> Tuple[str, int]:
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run coturn until SIGTERM/SIGINT (or --max-seconds)")
    s.add_argument("--listen", action="append", help="listening IP (repeat; default 127.0.0.1 127.0.0.2)")
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--user", action="append", default=None, help="USER:PASSWORD (repeat)")
    s.add_argument("--realm", default="rtcat.test")
    s.add_argument("--netns", default=None)
    s.add_argument("--max-seconds", type=float, default=3600.0)
    s.add_argument("--verbose", action="store_true")
    p = sub.add_parser("probe", help="one STUN binding request")
    p.add_argument("server")
    p.add_argument("--change-ip", action="store_true")
    p.add_argument("--change-port", action="store_true")
    p.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args(argv)

    if args.cmd == "probe":
        resp = stun_binding(_parse_hostport(args.server), timeout=args.timeout,
                            change_ip=args.change_ip, change_port=args.change_port)
        if resp is None:
            print(json.dumps({"error": "no response"}))
            return 1
        print(json.dumps(resp))
        return 0

    users = {}
    for u in args.user or ["demo:demo"]:
        name, _, pw = u.partition(":")
        users[name] = pw
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    with Coturn(listen=args.listen or ("127.0.0.1", "127.0.0.2"), port=args.port, users=users,
                realm=args.realm, netns=args.netns, verbose=args.verbose) as turn:
        extra = f" alt {turn.alt_host}:{turn.alt_port}" if turn.rfc5780 else ""
        print(f"ready {turn.host} {turn.port}{extra}", flush=True)
        end = time.monotonic() + args.max_seconds
        while not stop["now"] and time.monotonic() < end:
            if turn.proc is None or turn.proc.poll() is not None:
                print("coturn exited:\n" + turn.log()[-3000:], file=sys.stderr, flush=True)
                return 1
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
