#!/usr/bin/env python3
"""End-to-end benchmarks of two rtcat processes on loopback: send-file throughput (MB/s, CPU
seconds per GiB on each side, peak RSS, kernel UDP drops) and connection set-up time (process
start to data channels ready: signaling, ICE, DTLS and SCTP).

Usage: bench/peer_bench.py [--rtcat PATH] [--size-mib 256] [--reps 5] [--connect-reps 30]
Prints a table; medians over the repetitions. Bounded: every run has a timeout.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def find_rtcat(arg):
    for c in [arg, os.environ.get("RTCAT"), ROOT / "build-release" / "rtcat", ROOT / "build" / "rtcat"]:
        if c and os.access(str(c), os.X_OK):
            return str(c)
    sys.exit("rtcat binary not found: build it (scripts/build.sh --release) or pass --rtcat")


def can_unshare():
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_pair(rtcat, tmp, sender_args, receiver_args, timeout):
    """One sender|receiver pipeline through a fifo; returns both JSON summaries and the
    /usr/bin/time figures (user, sys, max RSS KiB)."""
    tf = "%U %S %M"
    script = (f"cd '{tmp}' && rm -f back && mkfifo back && "
              f"/usr/bin/time -o s.time -f '{tf}' '{rtcat}' {sender_args} --json <back 2>s.err | "
              f"/usr/bin/time -o r.time -f '{tf}' '{rtcat}' {receiver_args} --json >back 2>r.err")
    cmd = ["bash", "-c", script]
    if can_unshare():
        cmd = ["unshare", "-n", "bash", "-c", "ip link set lo up && " + script]
    else:
        script = script.replace("send-file ", "send-file --bind 127.0.0.1 ").replace(
            "answer ", "answer --bind 127.0.0.1 ")
        cmd = ["bash", "-c", script]
    subprocess.run(cmd, timeout=timeout, check=False)
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtcat")
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--connect-reps", type=int, default=30)
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
        for i in range(a.reps):
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
        rows.append((f"send-file {a.size_mib} MiB: MB/s (receiver, median of {a.reps})",
                     f"{statistics.median(rates):.1f}", f"min {min(rates):.1f} max {max(rates):.1f}"))
        rows.append(("sender CPU s/GiB", f"{statistics.median(s_cpu):.2f}", ""))
        rows.append(("receiver CPU s/GiB", f"{statistics.median(r_cpu):.2f}", ""))
        rows.append(("sender peak RSS MiB", f"{statistics.median(s_rss):.1f}", ""))
        rows.append(("receiver peak RSS MiB", f"{statistics.median(r_rss):.1f}", ""))
        rows.append(("kernel UDP drops (both sides)", f"{statistics.median(drops):.0f}", ""))

        small = Path(tmp) / "small.bin"
        small.write_bytes(os.urandom(1000))
        conn = []
        for i in range(a.connect_reps):
            d = Path(tmp) / "dl"
            subprocess.run(["rm", "-rf", str(d)])
            res = run_pair(rtcat, tmp, "send-file small.bin", "answer --out dl", timeout=60)
            conn.append(res["s"]["summary"]["connect_ms"])
        conn.sort()
        p95 = conn[min(len(conn) - 1, int(round(0.95 * (len(conn) - 1))))]
        rows.append((f"offer -> data channels ready, ms (sender, {a.connect_reps} runs) p50",
                     f"{statistics.median(conn):.1f}", f"p95 {p95:.1f} max {conn[-1]:.1f}"))

    w = max(len(r[0]) for r in rows)
    print(f"{'benchmark'.ljust(w)}  {'value':>8}  notes")
    print(f"{'-' * w}  {'-' * 8}  -----")
    for name, v, note in rows:
        print(f"{name.ljust(w)}  {v:>8}  {note}")


if __name__ == "__main__":
    main()
