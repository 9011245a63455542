#!/usr/bin/env bash
# Builds the benchmarks (Release) and prints a table of median ns per operation.
# Usage: bench/run.sh [--repetitions N]   (bounded: each benchmark runs ~0.2 s x N)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=5
[ "${1:-}" = "--repetitions" ] && reps="$2"
build="${RTCAT_BENCH_BUILD_DIR:-build-bench}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRTCAT_TESTS=OFF >/dev/null
ninja -C "$build" rtcat_bench_stun >/dev/null
json=$(mktemp)
trap 'rm -f "$json"' EXIT
timeout 300 "$build/bench/rtcat_bench_stun" --benchmark_repetitions="$reps" \
    --benchmark_min_time=0.2 --benchmark_report_aggregates_only=true \
    --benchmark_format=json >"$json"
python3 - "$json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rows = {}
for b in d["benchmarks"]:
    if b.get("run_type") != "aggregate":
        continue
    name, agg = b["run_name"], b["aggregate_name"]
    rows.setdefault(name, {})[agg] = b["real_time"] if b["time_unit"] == "ns" else None
print(f"host: {d['context'].get('host_name','?')}, {d['context']['num_cpus']} cpus, "
      f"{d['context'].get('mhz_per_cpu','?')} MHz; rtcat built Release")
print(f"{'benchmark':<44} {'median ns':>10} {'stddev':>8} {'msgs/s':>12}")
for name, r in rows.items():
    med = r.get("median")
    print(f"{name.replace('BM_',''):<44} {med:>10.1f} {r.get('stddev',0):>8.1f} {1e9/med:>12,.0f}")
PY
