#!/usr/bin/env python3
"""Self-test of the network-namespace NAT lab (tests/support/nat_lab.py), without rtcat.

The NAT-classification tests of `rtcat stun-probe` trust this lab to behave as documented, so
this proves it: mapping (eim vs symmetric) seen by two servers, filtering (port/address change)
for each mode, coturn inside the lab answering RFC 5780 change requests as the NAT allows, and
isolation (nothing reaches the host, nothing is left behind)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep tests/support free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from coturn import stun_binding  # noqa: E402
from nat_lab import NatLab, cleanup_leftovers, PREFIX  # noqa: E402
from rtcat_test import can_use_netns, check, run_tests, skip  # noqa: E402

PORT = 40000  # echo servers' port inside "inet" (a fresh namespace: always free)


def echo_lab(lab):
    """Echo servers on inet0:PORT, inet0:PORT+1, inet1:PORT; returns those as strings."""
    a0 = (lab.addr("inet", 0), PORT)
    a0b = (lab.addr("inet", 0), PORT + 1)
    a1 = (lab.addr("inet", 1), PORT)
    lab.start_udp_echo("inet", [a0, a0b, a1])
    return tuple(f"{h}:{p}" for h, p in (a0, a0b, a1))


def two_mappings(lab, a0, a1):
    res = lab.udp_probe("client", [{"to": a0, "msg": "ECHO"}, {"to": a1, "msg": "ECHO"}])
    check(res[0] is not None and res[1] is not None, f"echo servers did not answer: {res}")
    return res[0]["seen"], res[1]["seen"]


def test_mapping_eim():
    with NatLab(mapping="eim") as lab:
        a0, _, a1 = echo_lab(lab)
        m0, m1 = two_mappings(lab, a0, a1)
        print(f"eim: inet0 saw {m0}, inet1 saw {m1}")
        check(m0.startswith(lab.public_ip + ":"), f"mapped address {m0} is not the NAT's {lab.public_ip}")
        check(m0 == m1, f"endpoint-independent mapping expected one mapping, got {m0} and {m1}")


def test_mapping_symmetric():
    with NatLab(mapping="symmetric") as lab:
        a0, _, a1 = echo_lab(lab)
        seen = []
        # fully-random could pick the same port twice (p ~ 1/64000): a few fresh sockets.
        for _ in range(4):
            m0, m1 = two_mappings(lab, a0, a1)
            seen.append((m0, m1))
            check(m0.startswith(lab.public_ip + ":") and m1.startswith(lab.public_ip + ":"),
                  f"mapped addresses {m0}, {m1} are not the NAT's {lab.public_ip}")
            if m0 != m1:
                break
        print(f"symmetric: {seen}")
        check(seen[-1][0] != seen[-1][1], f"symmetric mapping gave the same mapping every time: {seen}")


def filtering_case(filtering, expect_port_change, expect_addr_change):
    with NatLab(mapping="eim", filtering=filtering) as lab:
        a0, a0b, a1 = echo_lab(lab)
        # The client only ever sends to a0; the server answers from elsewhere.
        res = lab.udp_probe("client", [
            {"to": a0, "msg": "ECHO"},
            {"to": a0, "msg": f"FROM {a0b}", "wait": 0.9},
            {"to": a0, "msg": f"FROM {a1}", "wait": 0.9},
        ])
        print(f"{filtering}: {res}")
        check(res[0] is not None, f"plain echo failed: {res}")
        mapped = res[0]["seen"]
        got_port, got_addr = res[1], res[2]
        check((got_port is not None) == expect_port_change,
              f"{filtering}: reply from another port: expected {'delivery' if expect_port_change else 'drop'}, got {got_port}")
        check((got_addr is not None) == expect_addr_change,
              f"{filtering}: reply from another address: expected {'delivery' if expect_addr_change else 'drop'}, got {got_addr}")
        for r, src in ((got_port, a0b), (got_addr, a1)):
            if r is not None:
                check(r["from"] == src and r["seen"] == mapped, f"unexpected reply {r} (mapped {mapped})")


def test_filtering_address_and_port_dependent():
    filtering_case("address-and-port-dependent", False, False)


def test_filtering_address_dependent():
    filtering_case("address-dependent", True, False)


def test_filtering_endpoint_independent():
    filtering_case("endpoint-independent", True, True)


def client_stun(lab, host, port, steps, timeout=20):
    """Runs STUN binding requests from ONE client socket; steps are (target, change_ip,
    change_port) with target None meaning the server's OTHER-ADDRESS."""
    code = f"""
import json, socket, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / 'support')!r})
from coturn import stun_binding
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
out, other = [], None
for target, ci, cp in {steps!r}:
    t = tuple(target) if target else other
    r = stun_binding(t, sock=s, change_ip=ci, change_port=cp, timeout=1.2 if (ci or cp) else 3.0)
    if r and other is None:
        other = tuple(r.get("other") or ())
    out.append(None if r is None else {{"mapped": r.get("xor_mapped"), "from": r["from"], "other": r.get("other")}})
print(json.dumps(out))
"""
    r = lab.run("client", [sys.executable, "-B", "-c", code], timeout=timeout, echo=False)
    check(r.rc == 0, "STUN client failed", r)
    import json

    return json.loads(r.stdout.strip().splitlines()[-1])


def test_coturn_in_lab_rfc5780():
    """RFC 5780 §4.3/§4.4 as rtcat stun-probe will do them, against coturn inside the lab."""
    cases = [
        ("eim", "address-and-port-dependent", False, False),
        ("eim", "address-dependent", True, False),
        ("eim", "endpoint-independent", True, True),
    ]
    for mapping, filtering, want_port, want_both in cases:
        with NatLab(mapping=mapping, filtering=filtering) as lab:
            host, port = lab.start_coturn()
            check(host == lab.addr("inet", 0), f"coturn host {host}")
            # Filtering first (fresh mapping, only the primary address contacted), then mapping.
            res = client_stun(lab, host, port, [
                ((host, port), False, False),
                ((host, port), False, True),   # test III: change port
                ((host, port), True, True),    # test II: change address and port
                (None, False, False),          # mapping test II: OTHER-ADDRESS
            ])
            print(f"coturn {mapping}/{filtering}: {res}")
            check(res[0] is not None, f"no binding response: {res}")
            check(res[0]["mapped"][0] == lab.public_ip, f"mapped {res[0]['mapped']} != {lab.public_ip}")
            check(res[0]["other"] == [lab.addr("inet", 1), port + 1], f"OTHER-ADDRESS {res[0]['other']}")
            check((res[1] is not None) == want_port, f"change-port response: {res[1]}")
            check((res[2] is not None) == want_both, f"change-ip+port response: {res[2]}")
            check(res[3] is not None and res[3]["mapped"] == res[0]["mapped"],
                  f"eim: OTHER-ADDRESS saw {res[3]}, primary saw {res[0]}")
    with NatLab(mapping="symmetric") as lab:
        host, port = lab.start_coturn()
        for _ in range(4):
            res = client_stun(lab, host, port, [((host, port), False, False), (None, False, False)])
            check(res[0] is not None and res[1] is not None, f"binding failed: {res}")
            if res[0]["mapped"] != res[1]["mapped"]:
                break
        print(f"coturn symmetric: {res}")
        check(res[0]["mapped"] != res[1]["mapped"], f"symmetric NAT gave one mapping: {res}")


def host_links():
    r = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10)
    return sorted(line.split(":")[1].strip() for line in r.stdout.splitlines())


def test_isolation_and_cleanup():
    links_before = host_links()
    host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host.bind(("127.0.0.1", 0))
    host_port = host.getsockname()[1]
    host.settimeout(1.0)
    with NatLab(mapping="eim") as lab:
        names = list(lab.names.values())
        r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
        for n in names:
            check(n in r.stdout, f"namespace {n} missing while the lab is up")
        # The client's 127.0.0.1 is its own loopback: a datagram to the host's port goes nowhere.
        code = ("import socket\n"
                "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                "for _ in range(3):\n"
                f"    s.sendto(b'leak?', ('127.0.0.1', {host_port}))\n")
        r = lab.run("client", [sys.executable, "-B", "-c", code], timeout=10, echo=False)
        check(r.rc == 0, "client send failed", r)
        try:
            data, src = host.recvfrom(100)
            check(False, f"the host received {data!r} from {src}: namespaces leak")
        except socket.timeout:
            pass
        # No way out: neither the NAT nor the "internet" has a default route.
        for role in ("nat", "inet"):
            r = lab.run(role, ["ip", "route", "show", "default"], timeout=10, echo=False)
            check(r.rc == 0 and r.stdout.strip() == "", f"{role} has a default route: {r.stdout}")
        # The client reaches only via the NAT.
        r = lab.run("client", ["ip", "route", "show", "default"], timeout=10, echo=False)
        check("via 10.77.0.1" in r.stdout, f"client default route: {r.stdout}")
        # Nothing was added to the host's own network namespace.
        check(host_links() == links_before, f"host links changed: {links_before} -> {host_links()}")
    host.close()
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    for n in names:
        check(n not in r.stdout, f"namespace {n} left behind")
    check(host_links() == links_before, "host links changed after the lab")


def test_cleanup_on_exception_and_leftovers():
    names = []
    try:
        with NatLab() as lab:
            names = list(lab.names.values())
            raise KeyError("boom")
    except KeyError:
        pass
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    for n in names:
        check(n not in r.stdout, f"namespace {n} left behind after an exception")
    # A leftover from a run whose process died is swept by the next lab.
    p = subprocess.Popen(["true"])
    p.wait()
    dead = p.pid
    check(not os.path.exists(f"/proc/{dead}"), "pid reused already; rerun")
    name = f"{PREFIX}{dead}x0000-inet"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        removed = cleanup_leftovers()
        check(name in removed, f"leftover {name} not removed: {removed}")
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


if __name__ == "__main__":
    if os.geteuid() != 0:
        skip("needs root for network namespaces")
    ok, why = can_use_netns()
    if not ok:
        skip(why)
    run_tests(globals())
