#!/usr/bin/env bash
# One `permetrix load` run against a server process, with the server's CPU time per
# request (from /proc/PID/stat, so it holds up better than req/s on a busy machine) and
# the load tool's own CPU per request.
#
#   benches/cpu.sh SERVER_PID LOAD_BIN [permetrix load flags...]
set -euo pipefail
PID=$1; BIN=$2; shift 2
ticks() { awk '{print $14+$15}' "/proc/$PID/stat"; }
J=$(mktemp); a=$(ticks); l1=$(cut -d' ' -f1 /proc/loadavg)
"$BIN" load --quiet --json "$J" "$@" > /dev/null
b=$(ticks); l2=$(cut -d' ' -f1 /proc/loadavg)
python3 - "$J" "$a" "$b" "$l1" "$l2" <<'P'
import json, sys
s = json.load(open(sys.argv[1])); a, b = int(sys.argv[2]), int(sys.argv[3])
# Requests over the whole run (warm-up included), as the CPU ticks cover it.
total = s['requests'] * (s['duration_s'] + s['warmup_s']) / s['duration_s']
l = s['latency']
print(f"{s['workload']:<13} {s['tenants']:>4}t {s['achieved_rate']:>8.0f} req/s  "
      f"server {(b - a) * 10000 / total:6.1f} µs/req  tool {s['client_cpu_us_per_request']:5.1f} µs/req  "
      f"p50 {l['p50_ms']:.2f} p99 {l['p99_ms']:.2f} ms  load {sys.argv[4]}->{sys.argv[5]}")
P
rm -f "$J"
