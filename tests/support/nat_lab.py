"""A NAT laboratory in Linux network namespaces, for tests that need a real NAT (stdlib only).

    with NatLab(mapping="eim", filtering="address-and-port-dependent") as lab:
        host, port = lab.start_coturn()                     # in "inet", on both inet addresses
        r = lab.run("client", [rtcat, "stun-probe", f"{host}:{port}"], timeout=30)

Topology (every address lives inside the lab's namespaces; nothing is added to the host):

    client                      nat                                   inet ("the internet")
    eth0 10.77.0.2/24 ─── lan 10.77.0.1/24                             198.51.100.1/24  addr("inet", 0)
    default via 10.77.0.1       wan 203.0.113.1/24 (public) ─── eth0   198.51.100.2/24  addr("inet", 1)
                                route 198.51.100.0/24 via .254         203.0.113.254/24 (gateway)

198.51.100.0/24 and 203.0.113.0/24 are documentation ranges (RFC 5737); 10.77.0.0/24 exists only
inside the client/nat namespaces. "inet" has no route to 10.77.0.0/24 (private space is not
routed), and no namespace has a default route out, so nothing can leave the lab. IPv6 is
disabled in the lab namespaces (no link-local addresses to confuse candidate gathering).

Mapping (RFC 4787 §4.1), on the nat's wan interface, for UDP from 10.77.0.0/24:
  "eim"        `masquerade`: Linux keeps the source port when it is free, and reuses the same
               mapping for every destination -> endpoint-independent mapping (port-preserving).
  "symmetric"  `masquerade fully-random`: every new 5-tuple gets a fresh random port ->
               address-and-port-dependent mapping ("symmetric NAT").

Filtering (RFC 4787 §5) of unsolicited inbound UDP to a mapped address:
  "address-and-port-dependent"  plain conntrack: only packets matching an existing flow's
               reply tuple (same remote ip:port) get in. This is Linux's default behaviour.
  "address-dependent"  additionally, a packet from a remote IP the internal endpoint has sent
               to (any port) is let in: a dynamic nft set of (mapped port . remote ip), filled by
               a postrouting chain that runs after SNAT, gates a DNAT through a dynamic map
               (mapped port -> internal ip . port).
  "endpoint-independent"  any remote may send to a mapped port once it exists (same map, no
               gate): "full cone" when combined with "eim".
With mapping="symmetric" the address-dependent and endpoint-independent modes apply per mapped
port (the one a packet arrives at), and Linux may give an inbound-initiated flow that clashes
with an existing outbound one a different source port: prefer "eim" for filtering tests.
The dynamic entries expire after `udp_timeout` seconds without outbound traffic (default 120,
like conntrack's stream timeout); conntrack's own UDP timeouts in the nat namespace are set to
the same value. Unsolicited packets to the NAT itself are dropped silently (no ICMP).

Run as a script it also provides the helpers the lab starts inside namespaces:
  nat_lab.py udp-echo --bind IP:PORT [--bind ...] [--max-seconds S]
      replies to "ECHO n" with "n SEEN ip:port" (the source it saw), and to "FROM IP:PORT n" with
      the same reply sent from its socket bound to IP:PORT (an RFC 5780-style change request)
  nat_lab.py udp-probe --steps JSON [--bind IP:PORT]
      sends each step from ONE socket, prints one JSON line of results
  nat_lab.py cleanup
      deletes leftover namespaces of dead lab runs
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coturn import Coturn  # noqa: E402
from rtcat_test import Result  # noqa: E402
from rtcat_test import run as _run  # noqa: E402

ROLES = ("inet", "nat", "client")
MAPPINGS = ("eim", "symmetric")
FILTERINGS = ("endpoint-independent", "address-dependent", "address-and-port-dependent")
_FILTER_ALIASES = {"eif": "endpoint-independent", "adf": "address-dependent",
                   "apdf": "address-and-port-dependent"}

PREFIX = "rtl"  # namespace names: rtl<pid>x<hex4>-<role>
_NAME_RE = re.compile(r"^" + PREFIX + r"(\d+)x([0-9a-f]{4})-(inet|nat|client)$")

CLIENT_NET = "10.77.0.0/24"
CLIENT_IP = "10.77.0.2"
NAT_LAN_IP = "10.77.0.1"
NAT_WAN_IP = "203.0.113.1"
INET_GW_IP = "203.0.113.254"
INET_NET = "198.51.100.0/24"


def inet_ip(i: int) -> str:
    return f"198.51.100.{1 + i}"


class LabError(RuntimeError):
    pass


def _sh(cmd: Sequence[str], timeout: float = 20.0, input: Optional[str] = None,
        check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise LabError(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr.strip()}")
    return r


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _delete_namespace(name: str) -> None:
    """Kills whatever still runs inside one of OUR namespaces, then deletes it."""
    r = _sh(["ip", "netns", "pids", name], check=False)
    for tok in r.stdout.split():
        try:
            os.kill(int(tok), signal.SIGKILL)
        except (ValueError, ProcessLookupError, PermissionError):
            pass
    for _ in range(50):
        r = _sh(["ip", "netns", "del", name], check=False)
        if r.returncode == 0 or name not in _list_namespaces():
            return
        time.sleep(0.1)


def _list_namespaces() -> List[str]:
    r = _sh(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def cleanup_leftovers() -> List[str]:
    """Deletes lab namespaces whose creating process is gone (aborted or killed runs)."""
    removed = []
    for name in _list_namespaces():
        m = _NAME_RE.match(name)
        if m and not _pid_alive(int(m.group(1))):
            _delete_namespace(name)
            removed.append(name)
    return removed


class NatLab:
    def __init__(self, mapping: str = "eim", filtering: str = "address-and-port-dependent",
                 inet_addrs: int = 2, udp_timeout: int = 120, ipv6: bool = False,
                 verbose: bool = False):
        filtering = _FILTER_ALIASES.get(filtering, filtering)
        if mapping not in MAPPINGS:
            raise ValueError(f"mapping must be one of {MAPPINGS}, not {mapping!r}")
        if filtering not in FILTERINGS:
            raise ValueError(f"filtering must be one of {FILTERINGS}, not {filtering!r}")
        if not 1 <= inet_addrs <= 50:
            raise ValueError("inet_addrs must be 1..50")
        self.mapping = mapping
        self.filtering = filtering
        self.inet_addrs = inet_addrs
        self.udp_timeout = int(udp_timeout)
        self.ipv6 = ipv6
        self.verbose = verbose
        self.id = f"{PREFIX}{os.getpid()}x{random.Random().randrange(16**4):04x}"
        self.names: Dict[str, str] = {role: f"{self.id}-{role}" for role in ROLES}
        self.created: List[str] = []
        self.procs: List[subprocess.Popen] = []
        self.coturns: List[Coturn] = []
        self.tmp: Optional[str] = None
        self._old_handlers: Dict[int, object] = {}
        self._lock = threading.Lock()

    # --- public API ---------------------------------------------------------------------------

    def netns(self, role: str) -> str:
        """The real namespace name of a role ("inet", "nat", "client")."""
        if role not in self.names:
            raise ValueError(f"no namespace {role!r} (have {ROLES})")
        return self.names[role]

    def addr(self, role: str, i: int = 0) -> str:
        """inet: i-th server address; nat: 0 = public (wan), 1 = lan; client: 0."""
        if role == "inet":
            if not 0 <= i < self.inet_addrs:
                raise IndexError(f"inet has {self.inet_addrs} addresses")
            return inet_ip(i)
        if role == "nat":
            return (NAT_WAN_IP, NAT_LAN_IP)[i]
        if role == "client":
            if i != 0:
                raise IndexError("client has one address")
            return CLIENT_IP
        raise ValueError(f"no namespace {role!r}")

    @property
    def public_ip(self) -> str:
        return NAT_WAN_IP

    ns = netns  # short alias

    def exec_prefix(self, ns: str) -> List[str]:
        return ["ip", "netns", "exec", self.netns(ns)]

    def run(self, ns: str, cmd: Sequence[str], timeout: float = 30.0, **kw) -> Result:
        """Runs cmd inside the namespace, bounded (see rtcat_test.run)."""
        return _run(self.exec_prefix(ns) + [str(c) for c in cmd], timeout=timeout, **kw)

    def popen(self, ns: str, cmd: Sequence[str], **kw) -> subprocess.Popen:
        """Starts cmd inside the namespace in its own process group; it is killed when the lab
        closes. Default: stdout/stderr piped as text (read them, or pass files)."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
        kw["start_new_session"] = True
        p = subprocess.Popen(self.exec_prefix(ns) + [str(c) for c in cmd], **kw)
        with self._lock:
            self.procs.append(p)
        return p

    def start_coturn(self, ns: str = "inet", addrs: Optional[Sequence[str]] = None,
                     users: Optional[Dict[str, str]] = None, realm: str = "rtcat.test",
                     port: int = 3478, **kw) -> Tuple[str, int]:
        """coturn on every inet address (two or more enable RFC 5780: OTHER-ADDRESS is
        addr(inet, 1):port+1); returns (addr(inet, 0), port). Stopped when the lab closes."""
        if addrs is None:
            addrs = [self.addr("inet", i) for i in range(min(2, self.inet_addrs))]
        turn = Coturn(listen=list(addrs), port=port, users=users if users is not None else {"demo": "demo"},
                      realm=realm, netns=self.netns(ns), **kw)
        turn.start()
        self.coturns.append(turn)
        return turn.host, turn.port

    def start_udp_echo(self, ns: str, binds: Sequence[Tuple[str, int]],
                       max_seconds: float = 240.0) -> subprocess.Popen:
        """The udp-echo helper (see module doc) bound to every (ip, port); waits until ready."""
        cmd = [sys.executable, "-B", os.path.abspath(__file__), "udp-echo", "--max-seconds", str(max_seconds)]
        for ip, port in binds:
            cmd += ["--bind", f"{ip}:{port}"]
        p = self.popen(ns, cmd)
        line = _read_line(p, timeout=10.0)
        if not line.startswith("ready"):
            raise LabError(f"udp-echo did not start: {line!r} {p.stderr.read() if p.poll() is not None else ''}")
        return p

    def udp_probe(self, ns: str, steps: List[dict], bind: Optional[str] = None,
                  timeout: float = 60.0) -> List[Optional[dict]]:
        """Runs the udp-probe helper in the namespace: every step from one socket. A step is
        {"to": "ip:port", "msg": "ECHO" | "FROM ip:port", "wait": seconds}; the result per
        step is {"seen": "ip:port", "from": "ip:port"} or None (no reply within wait)."""
        cmd = [sys.executable, "-B", os.path.abspath(__file__), "udp-probe", "--steps", json.dumps(steps)]
        if bind:
            cmd += ["--bind", bind]
        r = self.run(ns, cmd, timeout=timeout, echo=self.verbose)
        if r.rc != 0:
            raise LabError(f"udp-probe failed:\n{r}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    def nft(self, ns: str, ruleset: str) -> None:
        """Loads extra nftables rules into a namespace."""
        _sh(self.exec_prefix(ns) + ["nft", "-f", "-"], input=ruleset)

    def set_loss(self, percent: float) -> None:
        """Drops `percent` % of forwarded packets through the NAT, both directions (coarse,
        nftables numgen; there is no tc netem on this kernel). 0 removes the impairment."""
        _sh(self.exec_prefix("nat") + ["nft", "delete", "table", "ip", "rtcat_impair"], check=False)
        if percent <= 0:
            return
        n = max(1, min(10000, int(round(percent * 100))))
        self.nft("nat", f"""
table ip rtcat_impair {{
    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        numgen random mod 10000 < {n} drop
    }}
}}
""")

    def conntrack_table(self) -> str:
        """The nat namespace's conntrack entries (for debugging failed tests)."""
        path = "/proc/net/nf_conntrack"
        r = _sh(self.exec_prefix("nat") + ["cat", path], check=False)
        return r.stdout if r.returncode == 0 else r.stderr

    def describe(self) -> str:
        return (f"NatLab {self.id}: mapping={self.mapping} filtering={self.filtering} "
                f"client={CLIENT_IP} nat={NAT_WAN_IP} inet="
                + ",".join(self.addr("inet", i) for i in range(self.inet_addrs)))

    # --- setup / teardown ---------------------------------------------------------------------

    def __enter__(self) -> "NatLab":
        self._install_signal_handlers()
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signum, frame):
            raise SystemExit(128 + signum)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                self._old_handlers[sig] = signal.signal(sig, on_signal)

    def _restore_signal_handlers(self) -> None:
        for sig, h in self._old_handlers.items():
            signal.signal(sig, h)  # type: ignore[arg-type]
        self._old_handlers.clear()

    def _setup(self) -> None:
        for tool in ("ip", "nft"):
            if not shutil.which(tool):
                raise LabError(f"{tool} not found (scripts/install-deps.sh installs iproute2, nftables)")
        cleanup_leftovers()
        self.tmp = tempfile.mkdtemp(prefix=f"{self.id}-")
        for role in ROLES:
            _sh(["ip", "netns", "add", self.netns(role)])
            self.created.append(self.netns(role))
            self._ip(role, "link", "set", "lo", "up")
            if not self.ipv6:
                self._sysctl(role, "net.ipv6.conf.all.disable_ipv6", "1", check=False)
                self._sysctl(role, "net.ipv6.conf.default.disable_ipv6", "1", check=False)

        # Links are created inside the namespaces (never in the host's): nat/wan <-> inet/eth0,
        # nat/lan <-> client/eth0.
        self._ip("nat", "link", "add", "wan", "type", "veth", "peer", "name", "eth0",
                 "netns", self.netns("inet"))
        self._ip("nat", "link", "add", "lan", "type", "veth", "peer", "name", "eth0",
                 "netns", self.netns("client"))

        for i in range(self.inet_addrs):
            self._ip("inet", "addr", "add", f"{inet_ip(i)}/24", "dev", "eth0")
        self._ip("inet", "addr", "add", f"{INET_GW_IP}/24", "dev", "eth0")
        self._ip("nat", "addr", "add", f"{NAT_WAN_IP}/24", "dev", "wan")
        self._ip("nat", "addr", "add", f"{NAT_LAN_IP}/24", "dev", "lan")
        self._ip("client", "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        for role, dev in (("inet", "eth0"), ("nat", "wan"), ("nat", "lan"), ("client", "eth0")):
            self._ip(role, "link", "set", dev, "up")
        self._ip("nat", "route", "add", INET_NET, "via", INET_GW_IP, "dev", "wan")
        self._ip("client", "route", "add", "default", "via", NAT_LAN_IP, "dev", "eth0")
        self._sysctl("nat", "net.ipv4.ip_forward", "1")

        self.nft("nat", self._nat_ruleset())
        for key in ("net.netfilter.nf_conntrack_udp_timeout",
                    "net.netfilter.nf_conntrack_udp_timeout_stream"):
            self._sysctl("nat", key, str(self.udp_timeout), check=False)
        self._wait_links_up()
        if self.verbose:
            print(self.describe(), flush=True)

    def _nat_ruleset(self) -> str:
        masq = "masquerade fully-random" if self.mapping == "symmetric" else "masquerade"
        t = self.udp_timeout
        inbound = ""
        if self.filtering == "endpoint-independent":
            inbound = 'iifname "wan" meta l4proto udp dnat ip to udp dport map @eif_map'
        elif self.filtering == "address-dependent":
            inbound = ('iifname "wan" meta l4proto udp udp dport . ip saddr @adf_permits '
                       "dnat ip to udp dport map @eif_map")
        return f"""
table ip rtcat_nat {{
    # mapped (public) port -> internal endpoint, learned from outbound packets after SNAT
    map eif_map {{
        type inet_service : ipv4_addr . inet_service
        flags dynamic,timeout
        timeout {t}s
    }}
    # (mapped port . remote ip) pairs the inside has sent to
    set adf_permits {{
        type inet_service . ipv4_addr
        flags dynamic,timeout
        timeout {t}s
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" ip saddr {CLIENT_NET} {masq}
    }}
    chain record {{
        # After srcnat: udp sport is the mapped port here.
        type filter hook postrouting priority srcnat + 10; policy accept;
        oifname "wan" meta l4proto udp ct direction original update @eif_map {{ udp sport : ct original ip saddr . ct original proto-src }}
        oifname "wan" meta l4proto udp update @adf_permits {{ udp sport . ip daddr }}
    }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        {inbound}
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        iifname "lan" oifname "wan" accept
        ct state established,related accept
        ct status dnat accept
    }}
    chain input {{
        # Unsolicited packets to the NAT itself vanish, as on most home routers.
        type filter hook input priority filter; policy accept;
        iifname "wan" ct state new drop
    }}
}}
"""

    def _wait_links_up(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = _sh(self.exec_prefix("client") + ["ip", "-o", "link", "show", "eth0"], check=False)
            r2 = _sh(self.exec_prefix("inet") + ["ip", "-o", "link", "show", "eth0"], check=False)
            if "LOWER_UP" in r.stdout and "LOWER_UP" in r2.stdout:
                return
            time.sleep(0.05)
        raise LabError("lab links did not come up")

    def _ip(self, role: str, *args: str) -> None:
        _sh(["ip", "-n", self.netns(role), *args])

    def _sysctl(self, role: str, key: str, value: str, check: bool = True) -> None:
        _sh(self.exec_prefix(role) + ["sysctl", "-q", "-w", f"{key}={value}"], check=check)

    def close(self) -> None:
        with self._lock:
            procs, self.procs = self.procs, []
        for p in procs:
            _terminate(p)
        for turn in self.coturns:
            try:
                turn.stop()
            except Exception as e:  # noqa: BLE001 - keep tearing down
                print(f"nat_lab: stopping coturn: {e}", file=sys.stderr)
        self.coturns.clear()
        for name in reversed(self.created):
            _delete_namespace(name)
        self.created.clear()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        self._restore_signal_handlers()


def _terminate(p: subprocess.Popen) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass
    for f in (p.stdout, p.stderr, p.stdin):
        if f:
            try:
                f.close()
            except OSError:
                pass


def _read_line(p: subprocess.Popen, timeout: float) -> str:
    """One line of a child's stdout pipe, bounded in time ("" on timeout or EOF)."""
    assert p.stdout is not None
    deadline = time.monotonic() + timeout
    buf = ""
    fd = p.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        ch = os.read(fd, 1).decode("utf-8", "replace")
        if not ch:
            break
        if ch == "\n":
            return buf
        buf += ch
    return buf


# --- helpers run inside the namespaces --------------------------------------------------------


def _hp(text: str) -> Tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _fmt(addr: Tuple[str, int]) -> str:
    return f"{addr[0]}:{addr[1]}"


def udp_echo_main(binds: List[str], max_seconds: float) -> int:
    socks: Dict[Tuple[str, int], socket.socket] = {}
    for b in binds:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(_hp(b))
        socks[_hp(b)] = s
    print("ready " + " ".join(binds), flush=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *a: stop.__setitem__("now", True))
    end = time.monotonic() + max_seconds
    by_fd = {s.fileno(): s for s in socks.values()}
    while not stop["now"] and time.monotonic() < end:
        ready, _, _ = select.select(list(by_fd), [], [], 0.2)
        for fd in ready:
            s = by_fd[fd]
            try:
                data, src = s.recvfrom(2048)
            except OSError:
                continue
            words = data.decode("utf-8", "replace").split()
            if len(words) == 2 and words[0] == "ECHO":
                s.sendto(f"{words[1]} SEEN {_fmt(src)}".encode(), src)
            elif len(words) == 3 and words[0] == "FROM":
                out = socks.get(_hp(words[1]))
                if out is not None:
                    out.sendto(f"{words[2]} SEEN {_fmt(src)}".encode(), src)
    return 0


def udp_probe_main(steps: List[dict], bind: Optional[str]) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(_hp(bind) if bind else ("0.0.0.0", 0))
    results: List[Optional[dict]] = []
    for i, step in enumerate(steps):
        nonce = f"{os.getpid()}.{i}.{random.Random().randrange(1 << 30)}"
        words = step.get("msg", "ECHO").split()
        msg = " ".join(words + [nonce])
        wait = float(step.get("wait", 1.0))
        tries = int(step.get("tries", 3))
        got = None
        for _ in range(tries):
            s.sendto(msg.encode(), _hp(step["to"]))
            end = time.monotonic() + wait / tries
            while got is None:
                left = end - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    data, src = s.recvfrom(2048)
                except socket.timeout:
                    break
                except ConnectionRefusedError:
                    continue
                parts = data.decode("utf-8", "replace").split()
                if len(parts) == 3 and parts[0] == nonce and parts[1] == "SEEN":
                    got = {"seen": parts[2], "from": _fmt(src)}
            if got is not None:
                break
        results.append(got)
    print(json.dumps(results), flush=True)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="nat_lab helpers")
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("udp-echo")
    e.add_argument("--bind", action="append", required=True)
    e.add_argument("--max-seconds", type=float, default=240.0)
    p = sub.add_parser("udp-probe")
    p.add_argument("--steps", required=True)
    p.add_argument("--bind", default=None)
    sub.add_parser("cleanup")
    args = ap.parse_args(argv)
    if args.cmd == "udp-echo":
        return udp_echo_main(args.bind, args.max_seconds)
    if args.cmd == "udp-probe":
        return udp_probe_main(json.loads(args.steps), args.bind)
    removed = cleanup_leftovers()
    print("removed: " + (" ".join(removed) if removed else "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
