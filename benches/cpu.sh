#!/usr/bin/env bash
# One `permetrix load` run against a server process, with the server's CPU time per
# request (from /proc/PID/stat, so it holds up better than req/s on a busy machine), the
# load tool's own CPU per request, and the group commit's flushes during the run (from
# the server's /metrics: how many, writes per flush, mean flush time; read with
# $PERMETRIX_ADMIN_TOKEN, or $PERMETRIX_METRICS_TOKEN if set).
#
#   benches/cpu.sh SERVER_PID LOAD_BIN [permetrix load flags...]
set -euo pipefail
PID=$1; BIN=$2; shift 2
SERVER=127.0.0.1:8000
prev=; for a in "$@"; do [ "$prev" = --server ] && SERVER=$a; prev=$a; done
ticks() { awk '{print $14+$15}' "/proc/$PID/stat"; }
# batch-size sum, flush count, flush seconds (0 0 0 if /metrics is unreachable)
flushes() {
  { curl -sf -H "Authorization: Bearer ${PERMETRIX_METRICS_TOKEN:-${PERMETRIX_ADMIN_TOKEN:-}}" \
    "http://$SERVER/metrics" || true; } | awk '
    /^permetrix_storage_flush_batch_size_sum/ {w=$2} /^permetrix_storage_flush_batch_size_count/ {n=$2}
    /^permetrix_storage_flush_duration_seconds_sum/ {s=$2} END {print w+0, n+0, s+0}'
}
J=$(mktemp); a=$(ticks); f1=$(flushes); l1=$(cut -d' ' -f1 /proc/loadavg)
"$BIN" load --quiet --json "$J" "$@" > /dev/null
b=$(ticks); f2=$(flushes); l2=$(cut -d' ' -f1 /proc/loadavg)
python3 - "$J" "$a" "$b" "$l1" "$l2" "$f1" "$f2" <<'P'
import json, sys
s = json.load(open(sys.argv[1])); a, b = int(sys.argv[2]), int(sys.argv[3])
# Requests over the whole run (warm-up included), as the CPU ticks cover it.
total = s['requests'] * (s['duration_s'] + s['warmup_s']) / s['duration_s']
l = s['latency']
w, n, secs = (float(y) - float(x) for x, y in zip(sys.argv[6].split(), sys.argv[7].split()))
flush = f"  flushes {n:.0f}, {w / n:.1f} writes/flush, {1000 * secs / n:.2f} ms/flush" if n else ""
print(f"{s['workload']:<13} {s['tenants']:>4}t {s['achieved_rate']:>8.0f} req/s  "
      f"server {(b - a) * 10000 / total:6.1f} µs/req  tool {s['client_cpu_us_per_request']:5.1f} µs/req  "
      f"p50 {l['p50_ms']:.2f} p99 {l['p99_ms']:.2f} ms  load {sys.argv[4]}->{sys.argv[5]}{flush}")
P
rm -f "$J"
