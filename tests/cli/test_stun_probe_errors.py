"""stun-probe on bad input and bad servers: clear errors, distinct exit codes, never a hang."""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from rtcat_test import check, rtcat_binary, run_rtcat, run_tests  # noqa: E402

MAGIC = 0x2112A442
# What a hostile server may put in its strings: a screen clear, a window title, a bell, a
# carriage return and a newline forging a report line, an 8-bit CSI (C1, as UTF-8) and bytes
# that are not UTF-8 at all.
EVIL = b"\x1b[2J\x1b]0;owned\x07\r\nVerdict: all good \xc2\x9b31m\xff\xfe"


def stun_attr(kind, value):
    pad = b"\x00" * (-len(value) % 4)
    return struct.pack("!HH", kind, len(value)) + value + pad


def xor_mapped(peer):
    ip = socket.inet_aton(peer[0])
    value = struct.pack("!BBH", 0, 1, peer[1] ^ (MAGIC >> 16)) + bytes(
        a ^ b for a, b in zip(ip, struct.pack("!I", MAGIC)))
    return stun_attr(0x0020, value)


class FakeServer:
    """A UDP socket on 127.0.0.1 that answers binding requests badly (or not at all)."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.stop = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        deadline = time.monotonic() + 60
        while not self.stop and time.monotonic() < deadline:
            try:
                data, peer = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            self.received += 1
            if len(data) < 20 or self.mode == "silent":
                continue
            tid = data[8:20]
            if self.mode == "garbage":
                self.sock.sendto(b"\x01\x01\x00\x08garbage!", peer)
            elif self.mode == "wrong-tid":
                bad = bytes(b ^ 0xFF for b in tid)
                attr = xor_mapped(peer)
                self.sock.sendto(struct.pack("!HHI", 0x0101, len(attr), MAGIC) + bad + attr, peer)
            elif self.mode == "error":
                # A Binding error response: 400 with a hostile reason phrase (RFC 8489 §14.8).
                attrs = stun_attr(0x0009, struct.pack("!HBB", 0, 4, 0) + b"Bad " + EVIL)
                attrs += stun_attr(0x8022, b"fake " + EVIL)  # SOFTWARE
                self.sock.sendto(struct.pack("!HHI", 0x0111, len(attrs), MAGIC) + tid + attrs,
                                 peer)
            elif self.mode == "evil-software":
                attrs = xor_mapped(peer) + stun_attr(0x8022, b"fake " + EVIL)
                self.sock.sendto(struct.pack("!HHI", 0x0101, len(attrs), MAGIC) + tid + attrs,
                                 peer)

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()

    @property
    def hostport(self):
        return f"127.0.0.1:{self.port}"


def closed_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_server_fails_fast():
    port = closed_port()
    r = run_rtcat("stun-probe", "--json", f"127.0.0.1:{port}", timeout=20)
    check(r.rc == 3, "exit 3 (unreachable)", r)
    check(r.seconds < 3, "ICMP port unreachable ends it at once, not after retransmissions", r)
    doc = json.loads(r.stdout)
    [s] = doc["servers"]
    check(s["status"] == "unreachable" and "unreachable" in s["error"].lower(), "clear error", r)
    r = run_rtcat("stun-probe", f"127.0.0.1:{port}", timeout=20)
    check(r.rc == 3 and "no server answered" in r.stderr, "text mode says so", r)


def bad_server_case(mode):
    srv = FakeServer(mode)
    try:
        r = run_rtcat("stun-probe", "--json", "--rto", "100", "--retries", "3", "--timeout", "10",
                      srv.hostport, timeout=30)
    finally:
        srv.close()
    check(r.rc == 3, f"{mode}: exit 3 (no valid answer)", r)
    doc = json.loads(r.stdout)
    [s] = doc["servers"]
    check(s["status"] == "timeout", f"{mode}: timeout status", r)
    check(s["requests"] == 1 and srv.received == 3, f"{mode}: 3 transmissions of one request", r)
    check(s["ignored_datagrams"] == 3 and "ignored" in s["error"], f"{mode}: answers ignored", r)
    check(r.seconds < 6, f"{mode}: bounded by the retransmission schedule", r)


def test_server_answering_garbage():
    bad_server_case("garbage")


def test_server_answering_wrong_transaction_id():
    bad_server_case("wrong-tid")


def probe_fake(mode, *args):
    srv = FakeServer(mode)
    try:
        return run_rtcat("stun-probe", "--no-nat-tests", "--count", "1", "--timeout", "10",
                         *args, srv.hostport, timeout=30, binary=True)
    finally:
        srv.close()


def check_terminal_safe(out, what, r):
    """No byte a terminal obeys: C0 controls but newline, DEL, C1 (raw or as UTF-8), non-UTF-8."""
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as e:
        check(False, f"{what}: not UTF-8 ({e})", r)
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F]
    check(not bad, f"{what}: no control characters ({bad!r})", r)


def test_error_response_means_the_server_answered():
    # A server that sends an error response is reachable: not "no server answered" (exit 3).
    r = probe_fake("error", "--json")
    check(r.rc == 8, "exit 8: answered, but no mapped address", r)
    check(r.stdout.isascii(), "JSON output is ASCII", r)
    [s] = json.loads(r.stdout)["servers"]
    check(s["status"] == "error" and s["error_code"] == 400, "status error, code 400", r)
    want = "Bad " + EVIL.decode("utf-8", "replace")
    check(s["error_reason"] == want, f"reason as sent, invalid UTF-8 replaced: {s!r}", r)
    check(s["requests"] == 1 and s["responses"] == 0, "one request, no success response", r)
    doc = json.loads(r.stdout)
    check(doc["verdict"]["code"] != "udp-blocked", "an error response is no sign of UDP blocked", r)
    r = probe_fake("error")
    check(r.rc == 8, "text: exit 8", r)
    check(b"no server answered" not in r.stderr, "not reported as unreachable", r)
    check(b"answered with an error response" in r.stderr, "says what happened", r)
    check(b"answered with an error response: 400 Bad \\e[2J" in r.stdout, "code and reason", r)
    check_terminal_safe(r.stdout, "text report", r)
    check_terminal_safe(r.stderr, "stderr", r)


def test_server_strings_are_escaped_in_text_and_valid_in_json():
    r = probe_fake("evil-software")
    check(r.rc == 0, "the server answered with a mapping", r)
    check_terminal_safe(r.stdout, "text report", r)
    check(b"\\e[2J\\e]0;owned\\x07\\r\\nVerdict: all good \\xc2\\x9b31m\\xff\\xfe" in r.stdout,
          "SOFTWARE shown escaped", r)
    check(not any(line.startswith(b"Verdict: all good") for line in r.stdout.splitlines()),
          "no forged line", r)
    # nlohmann::json::dump() throws on invalid UTF-8 unless told otherwise.
    r = probe_fake("evil-software", "--json")
    check(r.rc == 0 and r.stdout.isascii(), "JSON printed, ASCII only", r)
    [s] = json.loads(r.stdout)["servers"]
    check(s["software"] == "fake " + EVIL.decode("utf-8", "replace"), f"software: {s!r}", r)


def test_family_flag_against_an_ip_literal_fails_at_once():
    for args, names in ((["-4", "[::1]:3478"], "-4"), (["-4", "::1"], "-4"),
                        (["-6", "127.0.0.1:3478"], "-6"), (["-4", "127.0.0.1", "[::1]:9"], "-4"),
                        (["--bind", "127.0.0.1", "[::1]:3478"], "--bind 127.0.0.1"),
                        (["-4", "--turn", "turn:u:p@[::1]:3478"], "-4")):
        r = run_rtcat("stun-probe", "--timeout", "10", *args, timeout=20)
        check(r.rc == 2, f"{args}: usage exit code", r)
        check(r.seconds < 2, f"{args}: at once, not after --timeout", r)
        check(r.stderr.startswith(f"rtcat: {names} contradicts ") and "address" in r.stderr,
              f"{args}: names the conflict", r)


def test_nothing_to_probe_ends_at_once():
    # ".invalid" fails without DNS (RFC 6761): no server left to probe is no reason to wait.
    r = run_rtcat("stun-probe", "--json", "--timeout", "10", "nothing.invalid", timeout=20)
    check(r.rc == 3, "exit 3: nothing reachable", r)
    check(r.seconds < 2, "at once, not after --timeout", r)
    doc = json.loads(r.stdout)
    check(doc["timed_out"] is False and doc["servers"][0]["status"] == "unresolved", "JSON", r)
    r = run_rtcat("stun-probe", "--timeout", "10", "nothing.invalid", timeout=20)
    check(r.rc == 3 and "no server could be probed" in r.stderr, "text mode says why", r)


def test_timeout_bounds_the_run():
    srv = FakeServer("silent")
    try:
        r = run_rtcat("stun-probe", "--json", "--timeout", "1", srv.hostport, timeout=20)
    finally:
        srv.close()
    check(r.rc == 4, "exit 4 (timeout)", r)
    check(0.9 < r.seconds < 3, "ended by --timeout 1", r)
    doc = json.loads(r.stdout)
    check(doc["timed_out"] is True and doc["servers"][0]["status"] == "timeout", "JSON says so", r)


def test_malformed_server_addresses():
    for bad in ["stun:", "stun:host:0", "stun:host:99999", "turn:h?transport=sctp", "[::1",
                "foo://bar", "1.2.3", "stun:h?x=1", "stun:a..b", "host:", "stun:us er",
                "stun:user:pw@host", "stuns:example.org", "turn:h?transport=tcp"]:
        r = run_rtcat("stun-probe", bad, timeout=10)
        check(r.rc == 2, f"{bad!r}: usage exit code", r)
        check(r.stderr.startswith("rtcat: ") and "Traceback" not in r.stderr, f"{bad!r}: message", r)
        check(r.seconds < 2, f"{bad!r}: fast", r)


def test_bad_options():
    for args in (["--count", "0"], ["--count", "-1"], ["--count", "abc"], ["--count", "101"],
                 ["--timeout", "0"], ["--rto", "1"], ["-4", "-6"], ["--bogus"],
                 ["--bind", "not-an-ip"], ["-4", "--bind", "::1"]):
        r = run_rtcat("stun-probe", *args, "127.0.0.1:3478", timeout=10)
        check(r.rc == 2, f"{args}: usage exit code", r)
        check("rtcat" in r.stderr, f"{args}: error on stderr", r)
    r = run_rtcat("stun-probe", "--count", "0", "x", timeout=10)
    check("--count" in r.stderr, "names the option", r)


def test_sigint_prints_partial_report():
    srv = FakeServer("silent")
    try:
        p = subprocess.Popen([rtcat_binary(), "stun-probe", "--json", "--timeout", "30",
                              srv.hostport], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    finally:
        srv.close()
    check(p.returncode == 130, f"exit 130 on SIGINT, got {p.returncode}: {err}")
    doc = json.loads(out)
    check(doc["interrupted"] is True, "report says interrupted")


def test_help_and_version():
    r = run_rtcat("stun-probe", "--help", timeout=10)
    check(r.rc == 0 and "--turn" in r.stdout and "--count" in r.stdout, "help lists options", r)
    r = run_rtcat("--version", timeout=10)
    check(r.rc == 0 and r.stdout.startswith("rtcat "), "version", r)
    r = run_rtcat(timeout=10)
    check(r.rc == 2 and "stun-probe" in r.stdout, "no subcommand: help and usage code", r)


run_tests(globals())
