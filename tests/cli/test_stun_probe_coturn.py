"""rtcat stun-probe against a real coturn on 127.0.0.1 (and 127.0.0.2 for RFC 5780)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from coturn import Coturn, CoturnUnavailable  # noqa: E402
from rtcat_test import Skip, check, run_rtcat, run_tests, skip  # noqa: E402

try:
    TURN = Coturn(listen=["127.0.0.1", "127.0.0.2"], users={"demo": "demo"}, realm="rtcat.test")
    TURN.start()
except CoturnUnavailable as e:
    skip(f"coturn unavailable: {e}")


def probe_json(*args, rc=0, timeout=30):
    r = run_rtcat("stun-probe", "--json", *args, timeout=timeout)
    check(r.rc == rc, f"expected exit {rc}", r)
    check(r.stdout.count("\n") == 1, "--json prints exactly one line", r)
    return json.loads(r.stdout), r


def test_binding_reports_mapping_rtt_and_server_details():
    doc, r = probe_json(TURN.hostport(), "--count", "4")
    check(doc["version"] == 1 and doc["family"] == "ipv4", "schema header", r)
    [s] = doc["servers"]
    local_port = int(doc["local_address"].rsplit(":", 1)[1])
    check(s["status"] == "ok", "server answered", r)
    check(s["mapped_address"] == f"127.0.0.1:{local_port}", "mapped address is our socket", r)
    check(s["requests"] == 4 and s["responses"] == 4 and s["lost"] == 0, "4 requests answered", r)
    check(s["retransmissions"] == 0, "no retransmissions on loopback", r)
    rtt = s["rtt_ms"]
    check(0 <= rtt["min"] <= rtt["avg"] <= rtt["max"] < 1000, "rtt min <= avg <= max", r)
    check("Coturn" in (s["software"] or ""), "SOFTWARE reported", r)
    check(s["response_origin"] == TURN.hostport(), "RESPONSE-ORIGIN is the server", r)
    check(s["other_address"] == f"127.0.0.2:{TURN.port + 1}", "OTHER-ADDRESS is the alternate", r)
    check(s["rfc5780"] is True, "RFC 5780 support seen", r)
    check(doc["turn"] is None and doc["exit_code"] == 0, "no TURN section", r)


def test_rfc5780_behaviour_on_loopback():
    doc, r = probe_json(TURN.stun_uri())
    nat = doc["nat"]
    # 127.0.0.1 is our own address: no NAT; coturn answers CHANGE-REQUEST from 127.0.0.2, which
    # nothing filters on loopback, and our own mapping "hairpins" trivially.
    check(nat["behind_nat"] is False and nat["mapping"] == "no-nat", "no NAT on loopback", r)
    check(nat["filtering"] == "endpoint-independent", "CHANGE-REQUEST answers got through", r)
    check(nat["hairpinning"] is True, "hairpin test ran", r)
    check(nat["rfc5780_server"] == TURN.stun_uri(), "RFC 5780 server named", r)
    check(doc["verdict"]["code"] == "no-nat", "verdict", r)


def test_turn_allocation_relay_and_release():
    doc, r = probe_json(TURN.hostport(), "--turn", TURN.turn_uri())
    t = doc["turn"]
    check(t["status"] == "ok", "TURN check passed", r)
    check(t["realm"] == "rtcat.test", "realm reported", r)
    # coturn relays from any of its listening addresses (127.0.0.1 or 127.0.0.2 here).
    check(t["relayed_address"] and t["relayed_address"].split(":")[0] in TURN.listen,
          "relayed address", r)
    check(t["lifetime_s"] == 600, "lifetime as granted", r)
    check(t["relay_ok"] is True and t["relay_bytes"] == 96, "data crossed the relay both ways", r)
    check(t["relay_rtt_ms"] is not None and t["relay_rtt_ms"] < 1000, "relay rtt", r)
    check(t["released"] is True, "allocations released", r)
    check(doc["exit_code"] == 0, "exit 0", r)


def test_turn_credentials_via_options_and_text_report():
    r = run_rtcat("stun-probe", "--turn", f"turn:{TURN.hostport()}?transport=udp",
                  "--user", "demo", "--pass", "demo", timeout=30)
    check(r.rc == 0, "exit 0", r)
    for needle in ("TURN turn:", "relay test       ok", "released         yes", "Verdict: "):
        check(needle in r.stdout, f"text report has {needle!r}", r)
    # coturn relays from any of its listening addresses.
    check(any(f"relayed address  {ip}:" in r.stdout for ip in TURN.listen),
          "text report has the relayed address", r)


def test_wrong_password_names_realm_with_auth_exit_code():
    doc, r = probe_json("--turn", TURN.turn_uri(password="wrong"), rc=6)
    check(doc["turn"]["status"] == "auth-failed", "auth-failed status", r)
    check(doc["turn"]["realm"] == "rtcat.test", "realm in JSON", r)
    r2 = run_rtcat("stun-probe", "--turn", TURN.turn_uri(password="wrong"), timeout=30)
    check(r2.rc == 6, "exit 6 in text mode too", r2)
    check('realm "rtcat.test"' in r2.stderr and "authentication failed" in r2.stderr,
          "stderr names the realm", r2)


def test_missing_credentials_are_an_auth_failure():
    doc, r = probe_json("--turn", f"turn:{TURN.hostport()}", rc=6)
    check(doc["turn"]["status"] == "auth-failed", "auth-failed without credentials", r)


def test_partial_answers_exit_8():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    doc, r = probe_json(TURN.hostport(), f"127.0.0.1:{closed}", rc=8)
    statuses = [x["status"] for x in doc["servers"]]
    check(statuses == ["ok", "unreachable"], "one answered, one did not", r)
    check(r.seconds < 5, "fast", r)


def test_ipv6_loopback():
    try:
        v6 = Coturn(listen=["::1"], users={"demo": "demo"}, realm="rtcat.test").start()
    except Exception as e:  # noqa: BLE001
        raise Skip(f"no IPv6 loopback for coturn here: {e}")
    try:
        doc, r = probe_json("-6", f"[::1]:{v6.port}", "--turn", v6.turn_uri())
        [s] = doc["servers"]
        check(doc["family"] == "ipv6", "IPv6 family", r)
        check(s["status"] == "ok" and s["mapped_address"].startswith("[::1]:"), "v6 mapping", r)
        check(doc["turn"]["relay_ok"] is True, "TURN relay over IPv6", r)
    finally:
        v6.stop()


try:
    run_tests(globals())
finally:
    TURN.stop()
