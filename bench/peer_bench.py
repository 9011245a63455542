#!/usr/bin/env python3
"""End-to-end benchmarks of two rtcat processes on loopback: send-file throughput (MB/s, CPU
seconds per GiB on each side, peak RSS, kernel UDP drops) and connection set-up time.

Set-up time is the sender's `connect_ms`: from the moment its offer is written to the moment
its first data channel is open (the peer's DATA_CHANNEL_ACK arrived), i.e. the answerer's
start-up and offer parsing, ICE, DTLS, SCTP and DCEP, as other stacks' "offer to onopen"
figures. Process start-up is left out: the answerer is started 0.2 s before the offerer (it
waits for the offer), and the offerer's own start-up before its offer (certificate, sockets) is
reported in the breakdown as "start -> offer written". The breakdown gives percentiles of each
step from the sender's `connect_timeline_ms`.

Usage: bench/peer_bench.py [--rtcat PATH] [--size-mib 256] [--reps 5] [--connect-reps 30] [--rt]
(--reps 0 skips the throughput runs, --connect-reps 0 the set-up runs; --rt runs the set-up
pairs at real-time priority so that other load on the machine does not dominate the figures.)
Prints a table; medians and percentiles over the repetitions. Bounded: every run has a timeout.
"""

import argparse
import json
import math
import os
import statistics
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def find_rtcat(arg):
    for c in [arg, os.environ.get("RTCAT"), ROOT / "build-release" / "rtcat", ROOT / "build" / "rtcat"]:
        if c and os.access(str(c), os.X_OK):
            return os.path.abspath(str(c))  # the runs cd into a temporary directory
    sys.exit("rtcat binary not found: build it (scripts/build.sh --release) or pass --rtcat")


def can_unshare():
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_pair(rtcat, tmp, sender_args, receiver_args, timeout, prefix="", stagger=0.0):
    """One sender|receiver pipeline through a fifo; returns both JSON summaries and the
    /usr/bin/time figures (user, sys, max RSS KiB). `prefix` goes before each rtcat (chrt).
    With `stagger` the receiver starts first and the sender that many seconds later, so the
    receiver's process start-up is not counted as connection set-up (its stdout opens the
    fifo read-write, which does not wait for the sender to open it)."""
    tf = "%U %S %M"
    sender = f"/usr/bin/time -o s.time -f '{tf}' {prefix} '{rtcat}' {sender_args} --json"
    receiver = f"/usr/bin/time -o r.time -f '{tf}' {prefix} '{rtcat}' {receiver_args} --json"
    if stagger > 0:
        script = (f"cd '{tmp}' && rm -f back && mkfifo back && "
                  f"{{ sleep {stagger}; {sender} <back 2>s.err; }} | {receiver} 1<>back 2>r.err")
    else:
        script = (f"cd '{tmp}' && rm -f back && mkfifo back && "
                  f"{sender} <back 2>s.err | {receiver} >back 2>r.err")
    cmd = ["bash", "-c", script]
    if can_unshare():
        cmd = ["unshare", "-n", "bash", "-c", "ip link set lo up && " + script]
    else:
        script = script.replace("send-file ", "send-file --bind 127.0.0.1 ").replace(
            "answer ", "answer --bind 127.0.0.1 ")
        cmd = ["bash", "-c", script]
    # Own process group, killed whole on timeout: a peer stuck opening the fifo would otherwise
    # outlive the shell and the bench would wait for nothing.
    p = subprocess.Popen(cmd, start_new_session=True)
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise RuntimeError(f"run timed out after {timeout} s: {sender_args} | {receiver_args}")
    out = {}
    for side in ("s", "r"):
        err = (Path(tmp) / f"{side}.err").read_text()
        lines = [ln for ln in err.splitlines() if ln.startswith("{")]
        if not lines:
            raise RuntimeError(f"{side}: no JSON summary:\n{err}")
        summary = json.loads(lines[-1])
        u, s, m = (Path(tmp) / f"{side}.time").read_text().split()[-3:]
        out[side] = dict(summary=summary, cpu=float(u) + float(s), rss_kib=int(m))
    return out


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    v = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(v)))
    return v[rank - 1]


# Steps of the sender's connect timeline: (label, from, to).
PHASES = [
    ("start -> offer written", None, "offer"),
    ("offer written -> answer read", "offer", "answer"),
    ("answer read -> ICE pair selected", "answer", "ice"),
    ("ICE -> DTLS connected", "ice", "dtls"),
    ("DTLS -> SCTP association up", "dtls", "sctp"),
    ("SCTP -> data channel open", "sctp", "channel_open"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtcat")
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--connect-reps", type=int, default=30)
    ap.add_argument("--rt", action="store_true",
                    help="run the set-up runs at real-time priority (chrt -f 1, needs root): on "
                         "a machine busy with other work this measures rtcat, not the scheduler")
    a = ap.parse_args()
    rtcat = find_rtcat(a.rtcat)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.bin"
        with open(src, "wb") as f:
            for _ in range(a.size_mib):
                f.write(os.urandom(1 << 20))
        gib = a.size_mib / 1024
        rates, s_cpu, r_cpu, s_rss, r_rss, drops = [], [], [], [], [], []
        for i in range(a.reps if a.size_mib > 0 else 0):
            d = Path(tmp) / "dl"
            subprocess.run(["rm", "-rf", str(d)])
            res = run_pair(rtcat, tmp, "send-file big.bin", "answer --out dl", timeout=300)
            s, r = res["s"], res["r"]
            if not (s["summary"]["ok"] and r["summary"]["ok"]):
                raise RuntimeError(f"transfer failed: {s['summary']} {r['summary']}")
            rates.append(r["summary"]["mb_per_s"])
            s_cpu.append(s["cpu"] / gib)
            r_cpu.append(r["cpu"] / gib)
            s_rss.append(s["rss_kib"] / 1024)
            r_rss.append(r["rss_kib"] / 1024)
            drops.append(s["summary"]["kernel_drops"] + r["summary"]["kernel_drops"])
            print(f"  run {i + 1}: {rates[-1]:.1f} MB/s", file=sys.stderr)
        if rates:
            rows.append((f"send-file {a.size_mib} MiB: MB/s (receiver, median of {a.reps})",
                         f"{statistics.median(rates):.1f}",
                         f"min {min(rates):.1f} max {max(rates):.1f}"))
            rows.append(("sender CPU s/GiB", f"{statistics.median(s_cpu):.2f}", ""))
            rows.append(("receiver CPU s/GiB", f"{statistics.median(r_cpu):.2f}", ""))
            rows.append(("sender peak RSS MiB", f"{statistics.median(s_rss):.1f}", ""))
            rows.append(("receiver peak RSS MiB", f"{statistics.median(r_rss):.1f}", ""))
            rows.append(("kernel UDP drops (both sides)", f"{statistics.median(drops):.0f}", ""))

        small = Path(tmp) / "small.bin"
        small.write_bytes(os.urandom(1000))
        conn = []
        phases = {label: [] for label, _, _ in PHASES}
        for i in range(a.connect_reps):
            d = Path(tmp) / "dl"
            subprocess.run(["rm", "-rf", str(d)])
            res = run_pair(rtcat, tmp, "send-file small.bin", "answer --out dl", timeout=60,
                           prefix="chrt -f 1" if a.rt else "", stagger=0.2)
            summary = res["s"]["summary"]
            if not summary["ok"] or summary["connect_ms"] <= 0:
                raise RuntimeError(f"connect run {i + 1} failed: {summary}")
            conn.append(summary["connect_ms"])
            tl = summary.get("connect_timeline_ms", {})
            for label, frm, to in PHASES:
                if to in tl and (frm is None or frm in tl):
                    phases[label].append(tl[to] - (tl[frm] if frm else 0))
        if conn:
            load = os.getloadavg()
            rows.append((f"offer -> data channel open, ms (sender, {len(conn)} runs) p50",
                         f"{percentile(conn, 50):.1f}",
                         f"p95 {percentile(conn, 95):.1f} min {min(conn):.1f} max {max(conn):.1f} "
                         f"(load {load[0]:.2f}{', chrt -f 1' if a.rt else ''})"))
            for label, _, _ in PHASES:
                if phases[label]:
                    rows.append((f"  {label}, ms p50", f"{percentile(phases[label], 50):.1f}",
                                 f"p95 {percentile(phases[label], 95):.1f}"))

    w = max(len(r[0]) for r in rows)
    print(f"{'benchmark'.ljust(w)}  {'value':>8}  notes")
    print(f"{'-' * w}  {'-' * 8}  -----")
    for name, v, note in rows:
        print(f"{name.ljust(w)}  {v:>8}  {note}")


if __name__ == "__main__":
    main()
