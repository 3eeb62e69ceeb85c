#!/bin/bash
# Borrow latency with a dead webhook receiver against none, on the real binary.
#
# usage: benches/webhooks.sh BIN [SECONDS] [RATE] [ROUNDS]
#
# Four fresh strict servers in turn, each with 20 load tenants whose packages are all
# overage (commit 0), so every borrow books a charge and writes an overage.charged event
# to its tenant's outbox:
#   none     no webhook endpoint (nothing is stored: nobody receives events);
#   healthy  an endpoint at a receiver that answers 204 at once (events are written,
#            delivered and deleted: what any vendor with webhooks costs);
#   silent   an endpoint at a receiver that accepts connections and never answers
#            (every delivery waits out its 10 s timeout, 16 at a time);
#   refused  an endpoint at a loopback port where nothing listens (connection refused,
#            retried with backoff).
# Each runs `permetrix load` open loop at RATE borrow/return requests per second
# (default 400) on 32 connections for SECONDS (default 10) after 2 s of warm-up, and
# prints the borrow latency side by side with the ratios to `none` and to `healthy` (a
# dead receiver against a working one: what the dead receiver itself costs), then the
# server's webhook metrics (deliveries by outcome, outbox depth). With ROUNDS > 1
# (default 1) the four scenarios are alternated ROUNDS times and the table holds the
# median of each figure over the rounds: on a shared machine one 8-second run's p99
# moves by 10x from noise alone. JSON summaries stay in ${TMPDIR:-/tmp}/webhooks-bench.
# About ROUNDS × 4 × (SECONDS + 8) s.
set -u
BIN=$1; D=${2:-10}; R=${3:-400}; ROUNDS=${4:-1}
W=${TMPDIR:-/tmp}/webhooks-bench; rm -rf "$W"; mkdir -p "$W"
export PERMETRIX_ADMIN_TOKEN=bench-token

# The silent receiver: accepts, reads nothing, answers nothing.
python3 -u - > "$W/silent.port" <<'PY' &
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(4096); print(s.getsockname()[1])
held = []
while True:
    c, _ = s.accept(); held.append(c)
PY
SILENT_PID=$!

# The healthy receiver: answers every POST 204 on a kept-alive connection.
python3 -u - > "$W/healthy.port" <<'PY' &
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204); self.end_headers()
    def log_message(self, *args): pass
s = ThreadingHTTPServer(("127.0.0.1", 0), Hook); print(s.server_address[1]); s.serve_forever()
PY
HEALTHY_PID=$!
REFUSED_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for i in $(seq 1 100); do [ -s "$W/silent.port" ] && break; sleep 0.1; done
SILENT_PORT=$(cat "$W/silent.port")
for i in $(seq 1 100); do [ -s "$W/healthy.port" ] && break; sleep 0.1; done
HEALTHY_PORT=$(cat "$W/healthy.port")

run() {  # scenario, webhook URL or ""
  local S=$1 URL=$2
  "$BIN" serve --bind 127.0.0.1:0 --data-dir "$W/$S-data" --webhooks-allow-private \
    > /dev/null 2> "$W/$S-server.log" &
  local P=$!
  for i in $(seq 1 100); do grep -q "listening on" "$W/$S-server.log" && break; sleep 0.1; done
  local A; A=$(grep -o "listening on [0-9.:]*" "$W/$S-server.log" | head -1 | cut -d' ' -f3)
  "$BIN" load --server "$A" --credentials "$W/$S-creds.json" --setup --tenants 20 \
    --duration 1 --warmup 0 --quiet > /dev/null
  python3 - "$A" "$W/$S-creds.json" "$URL" <<'PY'
import json, sys, urllib.request
addr, creds, url = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
def vendor(method, path, body=None):
    req = urllib.request.Request(f"http://{addr}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Host": "vendor.localhost", "Authorization": f"Bearer {creds['vendor_key']}",
                 "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
for c in vendor("GET", "/api/vendor/customers")["customers"]:
    for p in c["packages"]:
        vendor("PATCH", f"/api/vendor/packages/{p['package_id']}",
               {"total": p["total"], "commit_qty": 0, "max_overage": p["total"]})
if url:
    vendor("POST", "/api/vendor/webhooks",
           {"url": url, "events": ["overage.charged", "pool.exhausted", "borrow.denied"]})
PY
  "$BIN" load --server "$A" --credentials "$W/$S-creds.json" --tenants 20 --rate "$R" \
    --connections 32 --duration "$D" --warmup 2 --quiet --json "$W/$S.r$ROUND.json" > /dev/null
  curl -s -H "Authorization: Bearer $PERMETRIX_ADMIN_TOKEN" "http://$A/metrics" \
    | grep '^permetrix_webhook' > "$W/$S-metrics.txt"
  kill "$P"; wait "$P"
  # The next round starts from nothing: a fresh store and fresh credentials.
  rm -rf "$W/$S-data" "$W/$S-creds.json"
}

for ROUND in $(seq 1 "$ROUNDS"); do
  echo "round $ROUND of $ROUNDS" >&2
  echo "none (no endpoint)" >&2; run none ""
  echo "healthy receiver on :$HEALTHY_PORT" >&2; run healthy "http://127.0.0.1:$HEALTHY_PORT/hook"
  echo "silent receiver on :$SILENT_PORT" >&2; run silent "http://127.0.0.1:$SILENT_PORT/hook"
  echo "refused on :$REFUSED_PORT" >&2; run refused "http://127.0.0.1:$REFUSED_PORT/hook"
done
kill "$SILENT_PID" "$HEALTHY_PID" 2> /dev/null

python3 - "$W" "$R" "$ROUNDS" <<'PY'
import json, statistics, sys
w, rate, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
def median_of(scenario):
    each = [json.load(open(f"{w}/{scenario}.r{r}.json")) for r in range(1, rounds + 1)]
    keys = ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")
    return {"borrow": {k: statistics.median(e["borrow"][k] for e in each) for k in keys},
            "errors": {"all": sum(sum(e["errors"].values()) for e in each)},
            "p99s": [e["borrow"]["p99_ms"] for e in each]}
runs = {s: median_of(s) for s in ("none", "healthy", "silent", "refused")}
print(f"borrow latency at {rate} req/s offered (ms), median of {rounds} round(s)")
print("%-8s %8s %8s %8s %8s %8s %6s" % ("", "p50", "p90", "p99", "p99.9", "max", "errors"))
for s, r in runs.items():
    b = r["borrow"]
    print("%-8s %8.2f %8.2f %8.2f %8.2f %8.2f %6d" % (s, b["p50_ms"], b["p90_ms"], b["p99_ms"],
          b["p999_ms"], b["max_ms"], sum(r["errors"].values())))
for against, scenarios in (("none", ("healthy", "silent", "refused")), ("healthy", ("silent", "refused"))):
    base = runs[against]["borrow"]
    for s in scenarios:
        b = runs[s]["borrow"]
        print("%-8s ratio to %-7s: p50 %.2f p99 %.2f p99.9 %.2f" % (s, against,
              b["p50_ms"] / base["p50_ms"], b["p99_ms"] / base["p99_ms"],
              b["p999_ms"] / base["p999_ms"]))
if rounds > 1:
    for s, r in runs.items():
        print("%-8s p99 of each round: %s" % (s, " ".join(f"{v:.1f}" for v in r["p99s"])))
for s in runs:
    print(f"-- {s} webhook metrics (last round)"); print(open(f"{w}/{s}-metrics.txt").read().strip())
PY
