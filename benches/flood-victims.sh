#!/bin/bash
# What a flood of one tenant does to the others' borrow/return latency, on the real binary.
#
# usage: benches/flood-victims.sh BIN LABEL
#
# A strict server (mailbox 64) with 100 load tenants; the victims (tenants 1..99, open
# loop at 500 req/s on 64 connections, 10 s) run alone, then again while tenant load-0
# is flooded by 256 connections in a closed loop (a 503 is counted and the connection
# sends its next request at once). Prints both runs, the flood, and the ratios; the JSON
# summaries stay in ${TMPDIR:-/tmp}/victims-LABEL. About 45 s.
set -u
BIN=$1; L=$2; W=${TMPDIR:-/tmp}/victims-$L; rm -rf $W; mkdir -p $W
export PERMETRIX_ADMIN_TOKEN=tok
$BIN serve --bind 127.0.0.1:0 --data-dir $W/data --mailbox-capacity 64 > /dev/null 2> $W/server.log &
P=$!
for i in $(seq 1 100); do grep -q "listening on" $W/server.log && break; sleep 0.2; done
A=$(grep -o "listening on [0-9.:]*" $W/server.log | head -1 | cut -d' ' -f3)
$BIN load --server $A --credentials $W/creds.json --setup --tenants 100 --duration 1 --warmup 0 --quiet > /dev/null
V="$BIN load --server $A --credentials $W/creds.json --first-tenant 1 --tenants 99 --rate 500 --connections 64 --duration 10 --warmup 2 --quiet"
echo "$L: victims alone (12 s)" >&2
$V --json $W/alone.json > /dev/null
echo "$L: victims during the flood (13 s)" >&2
$BIN load --server $A --credentials $W/creds.json --first-tenant 0 --tenants 1 --connections 256 --duration 14 --warmup 0 --quiet --json $W/flood.json > /dev/null &
F=$!
sleep 1
$V --json $W/flooded.json > /dev/null
wait $F
kill $P; wait $P
python3 - "$W" "$L" <<'PY'
import json,sys
w,l=sys.argv[1:]
def g(n): return json.load(open(f"{w}/{n}.json"))
a,f,fl=g("alone"),g("flooded"),g("flood")
def s(x): return "rate %.0f ok %d errors %s p50 %.2f ms p99 %.2f ms" % (x["achieved_rate"], x["ok"], x["errors"], x["latency"]["p50_ms"], x["latency"]["p99_ms"])
print(l, "victims alone  ", s(a)); print(l, "victims flooded", s(f)); print(l, "flood          ", s(fl)); print(l, "ratio p50 %.2f p99 %.2f" % (f["latency"]["p50_ms"]/a["latency"]["p50_ms"], f["latency"]["p99_ms"]/a["latency"]["p99_ms"]))
PY
