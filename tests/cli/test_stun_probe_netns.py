"""stun-probe behind real NATs: network namespaces with nftables masquerade (tests/support/nat_lab.py).

An endpoint-independent NAT and a symmetric one (masquerade fully-random) must be told apart,
with RFC 5780 tests against coturn on two addresses and by comparing two plain servers."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from nat_lab import NatLab  # noqa: E402
from rtcat_test import can_use_netns, check, rtcat_binary, run_tests, skip  # noqa: E402

ok, why = can_use_netns()
if not ok:
    skip(f"network namespaces unavailable: {why}")
RTCAT = rtcat_binary()


def probe(lab, *args, rc=0):
    r = lab.run("client", [RTCAT, "stun-probe", "--json", "--timeout", "20", *args], timeout=40)
    check(r.rc == rc, f"expected exit {rc}", r)
    return json.loads(r.stdout), r


def test_endpoint_independent_nat_rfc5780():
    with NatLab(mapping="eim", filtering="address-and-port-dependent") as lab:
        host, port = lab.start_coturn()
        doc, r = probe(lab, f"{host}:{port}", "--turn", f"turn:demo:demo@{host}:{port}")
        nat = doc["nat"]
        print(json.dumps(nat, indent=1))
        check(nat["behind_nat"] is True, "behind a NAT", r)
        check(nat["public_address"].startswith(lab.public_ip + ":"), "public address is the NAT's", r)
        check(nat["mapping_method"] == "rfc5780", "RFC 5780 tests used", r)
        check(nat["mapping"] == "endpoint-independent", "EIM detected", r)
        check(nat["filtering"] == "address-and-port-dependent", "conntrack filtering detected", r)
        check(doc["verdict"]["code"] == "direct", "verdict: direct connections likely", r)
        t = doc["turn"]
        check(t["status"] == "ok" and t["relay_ok"] is True, "TURN relays through the NAT", r)
        check(t["mapped_address"].startswith(lab.public_ip + ":"), "TURN sees the NAT address", r)
        check(t["relayed_address"].split(":")[0] in (lab.addr("inet", 0), lab.addr("inet", 1)),
              "relayed address on the server", r)


def test_symmetric_nat_rfc5780():
    with NatLab(mapping="symmetric", filtering="address-and-port-dependent") as lab:
        host, port = lab.start_coturn()
        doc, r = probe(lab, f"{host}:{port}")
        nat = doc["nat"]
        print(json.dumps(nat, indent=1))
        check(nat["behind_nat"] is True, "behind a NAT", r)
        check(nat["mapping"] == "address-and-port-dependent", "symmetric NAT detected", r)
        check(doc["verdict"]["code"] == "needs-turn-for-symmetric-peers", "verdict: needs TURN", r)
        check("needs TURN" in doc["verdict"]["summary"], "plain words", r)


def test_endpoint_independent_filtering():
    with NatLab(mapping="eim", filtering="endpoint-independent") as lab:
        host, port = lab.start_coturn()
        doc, r = probe(lab, f"{host}:{port}")
        check(doc["nat"]["mapping"] == "endpoint-independent", "EIM", r)
        check(doc["nat"]["filtering"] == "endpoint-independent", "full-cone filtering detected", r)


def test_address_dependent_filtering():
    with NatLab(mapping="eim", filtering="address-dependent") as lab:
        host, port = lab.start_coturn()
        doc, r = probe(lab, f"{host}:{port}")
        check(doc["nat"]["filtering"] == "address-dependent", "address-dependent filtering", r)


def test_two_plain_servers_tell_eim_from_symmetric():
    for mapping, want, verdict in (("eim", "endpoint-independent", "direct"),
                                   ("symmetric", "address-dependent-or-stricter",
                                    "needs-turn-for-symmetric-peers")):
        with NatLab(mapping=mapping) as lab:
            a = lab.start_coturn(addrs=[lab.addr("inet", 0)])
            b = lab.start_coturn(addrs=[lab.addr("inet", 1)], port=3479)
            doc, r = probe(lab, f"{a[0]}:{a[1]}", f"{b[0]}:{b[1]}")
            nat = doc["nat"]
            print(mapping, json.dumps(nat))
            check(nat["mapping_method"] == "servers", f"{mapping}: compared across servers", r)
            check(nat["mapping"] == want, f"{mapping}: mapping {want}", r)
            check(doc["verdict"]["code"] == verdict, f"{mapping}: verdict {verdict}", r)


run_tests(globals())
