#!/usr/bin/env bash
# Issue 21, target 2 driven by wrk: borrow/return cycles ÷ GET /health, alternated in one
# run against one server (strict), the same wrk settings for both.
#
#   benches/wrk.sh BIN [rounds] [wrk flags]      e.g. benches/wrk.sh target/release/permetrix 3
#
# Needs wrk (Debian package `wrk`). The tenants come from the load tool's --setup (20
# tenants, one tool, signature policy off).
set -euo pipefail
BIN=$1; ROUNDS=${2:-3}; WRKF=${3:-"-t2 -c64 -d8s --latency"}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v wrk > /dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/permetrix-wrk.XXXX")
PORT=${PORT:-18301}
PERMETRIX_ADMIN_TOKEN=tok "$BIN" serve --bind "127.0.0.1:$PORT" --data-dir "$W/data" > "$W/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$W/server.log" && break; sleep 0.2; done
PERMETRIX_ADMIN_TOKEN=tok "$BIN" load --quiet --server "127.0.0.1:$PORT" --credentials "$W/creds.json" \
  --setup --tenants 20 --duration 1 --warmup 0 > /dev/null 2>&1
python3 -c "
import json, sys
for t in json.load(open(sys.argv[1]))['tenants']: print(t['id'] + '\t' + t['key'])
" "$W/creds.json" > "$W/tenants.tsv"
rate() { awk '/^Requests\/sec/ {print $2}'; }
for r in $(seq "$ROUNDS"); do
  h=$(wrk $WRKF -H "Host: localhost" "http://127.0.0.1:$PORT/health" | tee "$W/h.txt" | rate)
  b=$(wrk $WRKF -s "$HERE/wrk/borrow_return.lua" "http://127.0.0.1:$PORT" -- "$W/tenants.tsv" \
    | tee "$W/b.txt" | rate)
  p50=$(awk '/50%/ {print $2}' "$W/b.txt"); p99=$(awk '/99%/ {print $2}' "$W/b.txt")
  printf 'round %d  health %9.0f req/s  borrow/return %9.0f req/s (p50 %s, p99 %s; %s)  ratio %.2f\n' \
    "$r" "$h" "$b" "$p50" "$p99" "$(tail -1 "$W/b.txt")" "$(python3 -c "print($b / $h)")"
done
