#!/usr/bin/env bash
# The cluster benchmark of issue 18 (not a timed test; run it on a quiet machine):
#
#  1. `permetrix load` against one broker on PostgreSQL and one on sled, alternated
#     REPS times in one run: borrow/return throughput of each, the PostgreSQL/sled ratio
#     (target >= 0.5), and the borrow p50/p99 of each (target: PostgreSQL's p99 <= 2x
#     sled's). Both strict: sled fsyncs every group commit, PostgreSQL commits
#     synchronously (fsync on, synchronous_commit on).
#     Where the time goes: for each run, the CPU time per request of the broker and of
#     PostgreSQL (the postmaster and its backends), read from /proc, and the broker's
#     mean commit (flush) latency and batch size from its metrics. The broker, the
#     database and the load tool share the machine's cores.
#  2. the same load against three brokers on one PostgreSQL database behind the test
#     proxy that honours `fly-replay` as Fly's does (examples/fly_proxy.rs). The tenants
#     are set up at the first broker, which then restarts (SIGTERM hands its tenants
#     back), so that the load's first requests spread them over the three.
#
# Usage:
#   cargo build --release --bin permetrix --example fly_proxy
#   benches/cluster.sh [REPS] [permetrix load flags]
#   benches/cluster.sh 3 "--duration 10 --warmup 2 --connections 64 --tenants 100"
# A quick check that it runs (debug build, a second per run):
#   cargo build --bin permetrix --example fly_proxy
#   BIN=target/debug/permetrix PROXY=target/debug/examples/fly_proxy \
#     benches/cluster.sh 1 "--duration 1 --warmup 0 --connections 4 --tenants 4"
#
# Environment: BIN (default target/release/permetrix), PROXY (default
# target/release/examples/fly_proxy), PERMETRIX_POSTGRES_BIN (PostgreSQL's initdb and
# pg_ctl; default /usr/lib/postgresql/15/bin), BASE_PORT (default 18400: the brokers,
# the proxy and PostgreSQL take the ports from there to BASE_PORT+7). PostgreSQL runs
# in a temporary directory (as the postgres user when run as root); everything is
# stopped and removed at the end.
set -euo pipefail
REPS=${1:-3}
LOADF=${2:---duration 10 --warmup 2 --connections 64 --tenants 100}
BIN=${BIN:-target/release/permetrix}
PROXY=${PROXY:-target/release/examples/fly_proxy}
PG_BIN=${PERMETRIX_POSTGRES_BIN:-/usr/lib/postgresql/15/bin}
P=${BASE_PORT:-18400}
PG_PORT=$((P + 7))
TOKEN=bench-operator-token
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
W=$(mktemp -d "${TMPDIR:-/tmp}/permetrix-cluster.XXXX")
chmod 755 "$W"
AS=()
[ "$(id -u)" = 0 ] && AS=(runuser -u postgres --)
PIDS=()

cleanup() {
  # PostgreSQL first: whatever happens to the rest, no database is left running.
  if [ -f "$W/pg/postmaster.pid" ]; then
    "${AS[@]}" "$PG_BIN/pg_ctl" -D "$W/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

# PostgreSQL: one server, a database per part.
mkdir "$W/pg" && { [ ${#AS[@]} = 0 ] || chown postgres: "$W/pg"; }
"${AS[@]}" "$PG_BIN/initdb" -A trust -U postgres -E UTF8 --locale C -D "$W/pg" >/dev/null
"${AS[@]}" "$PG_BIN/pg_ctl" -D "$W/pg" -l "$W/pg/server.log" -w -o \
  "-p $PG_PORT -k $W/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
db() { # name -> URL
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$1"
  echo "postgres://postgres@127.0.0.1:$PG_PORT/$1?sslmode=disable"
}

# serve NAME PORT [flags...]: a broker in the background, once it listens.
serve() {
  local name=$1 port=$2; shift 2
  PERMETRIX_ADMIN_TOKEN=$TOKEN PERMETRIX_SERVER_KEY=$KEY "$BIN" serve \
    --bind "127.0.0.1:$port" --data-dir "$W/$name" "$@" > "$W/$name.log" 2>&1 &
  PIDS+=($!); echo $! > "$W/$name.pid"
  for _ in $(seq 150); do grep -qs "listening on" "$W/$name.log" && return; sleep 0.2; done
  echo "$name did not start:" >&2; cat "$W/$name.log" >&2; exit 1
}

# load NAME ADDR [flags...]: a run with NAME's credentials; its summary in $W/NAME.json.
load() {
  local name=$1 addr=$2; shift 2
  # shellcheck disable=SC2086
  PERMETRIX_ADMIN_TOKEN=$TOKEN "$BIN" load --quiet --server "$addr" \
    --credentials "$W/$name.creds.json" --json "$W/$name.json" $LOADF "$@" > /dev/null
}
# setup NAME ADDR: creates the vendor, tenants and tools of NAME's runs, and activates them.
setup() { load "$1" "$2" --setup --touch 2> /dev/null; }

# cpu PID...: their CPU seconds so far (user + system), children reaped included.
cpu() {
  local t=0 pid f
  for pid in "$@"; do
    f=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    # Fields after the command name: utime stime cutime cstime are 12-15 of the rest.
    t=$(echo "${f##*) }" | awk -v t="$t" '{print t + $12 + $13 + $14 + $15}')
  done
  echo "$t" | awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", $1 / hz}'
}
pg_pids() { # the postmaster and its children
  local pm; pm=$(head -1 "$W/pg/postmaster.pid")
  echo "$pm" $(ps -o pid= --ppid "$pm")
}
flush() { # port -> "count sum_seconds batch_sum" of the broker's flushes so far
  curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/metrics" | awk '
    /^permetrix_storage_flush_duration_seconds_count/ {c=$2}
    /^permetrix_storage_flush_duration_seconds_sum/ {s=$2}
    /^permetrix_storage_flush_batch_size_sum/ {b=$2}
    END {print c+0, s+0, b+0}'
}

row() { # label json
  python3 - "$1" "$2" <<'PY'
import json, sys
s = json.load(open(sys.argv[2])); b = s.get('borrow') or s['latency']
err = sum(s['errors'].values())
print(f"{sys.argv[1]:<16} {s['achieved_rate']:>9.0f} req/s  borrow p50 {b['p50_ms']:>7.2f} ms  "
      f"p99 {b['p99_ms']:>7.2f} ms  errors {err}")
PY
}

echo "== 1. one broker: PostgreSQL against sled, alternated ($REPS runs each)"
serve pg "$((P + 1))" --store "$(db single)"
serve sled "$((P + 2))"
for x in pg sled; do
  port=$([ $x = pg ] && echo $((P + 1)) || echo $((P + 2)))
  setup "$x" "127.0.0.1:$port"
done
for r in $(seq "$REPS"); do
  for x in pg sled; do
    port=$([ $x = pg ] && echo $((P + 1)) || echo $((P + 2)))
    broker=$(cat "$W/$x.pid")
    pg=$(pg_pids)
    read -r b0 p0 f0 <<< "$(cpu "$broker") $(cpu $pg) $(flush "$port" | tr ' ' ,)"
    start=$(date +%s.%N)
    load "$x" "127.0.0.1:$port"
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    read -r b1 p1 f1 <<< "$(cpu "$broker") $(cpu $pg) $(flush "$port" | tr ' ' ,)"
    cp "$W/$x.json" "$W/$x.r$r.json"
    row "$x r$r" "$W/$x.json"
    python3 - "$W/$x.json" "$b0" "$b1" "$p0" "$p1" "$f0" "$f1" "$wall" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); b0, b1, p0, p1 = map(float, sys.argv[2:6])
f0, f1 = ([float(v) for v in a.split(",")] for a in sys.argv[6:8]); wall = float(sys.argv[8])
# The run's requests, warm-up included (the CPU was read around the whole run).
n = s['achieved_rate'] * wall
flushes = f1[0] - f0[0]
print(f"{'':16} CPU per request: broker {1e6 * (b1 - b0) / n:6.1f} us, PostgreSQL "
      f"{1e6 * (p1 - p0) / n:6.1f} us; cores busy: broker {(b1 - b0) / wall:.2f}, "
      f"PostgreSQL {(p1 - p0) / wall:.2f}; commits {flushes:.0f}, mean "
      f"{1e3 * (f1[1] - f0[1]) / max(flushes, 1):.2f} ms, {(f1[2] - f0[2]) / max(flushes, 1):.1f} writes each")
PY
  done
done
python3 - "$W" "$REPS" <<'PY'
import json, statistics, sys
w, reps = sys.argv[1], int(sys.argv[2])
runs = {x: [json.load(open(f"{w}/{x}.r{r}.json")) for r in range(1, reps + 1)] for x in ("pg", "sled")}
med = lambda x, f: statistics.median(f(s) for s in runs[x])
rate = {x: med(x, lambda s: s['achieved_rate']) for x in runs}
p99 = {x: med(x, lambda s: (s.get('borrow') or s['latency'])['p99_ms']) for x in runs}
print(f"median: PostgreSQL/sled throughput {rate['pg'] / rate['sled']:.2f}x (target >= 0.5), "
      f"borrow p99 {p99['pg']:.2f} ms vs {p99['sled']:.2f} ms = {p99['pg'] / p99['sled']:.2f}x (target <= 2)")
PY
kill "$(cat "$W/pg.pid")" "$(cat "$W/sled.pid")"

echo "== 2. three brokers on one PostgreSQL database behind the fly-replay proxy"
URL=$(db cluster)
for n in 1 2 3; do FLY_MACHINE_ID=m$n serve "m$n" "$((P + 2 + n))" --store "$URL"; done
setup cluster "127.0.0.1:$((P + 3))"
# m1 created every tenant (and so owns them): restarted, it hands them back.
kill -TERM "$(cat "$W/m1.pid")"
while kill -0 "$(cat "$W/m1.pid")" 2>/dev/null; do sleep 0.1; done
FLY_MACHINE_ID=m1 serve m1 "$((P + 3))" --store "$URL"
"$PROXY" "127.0.0.1:$((P + 6))" "m1=127.0.0.1:$((P + 3))" "m2=127.0.0.1:$((P + 4))" \
  "m3=127.0.0.1:$((P + 5))" > "$W/proxy.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -qs "listening on" "$W/proxy.log" && break; sleep 0.1; done
for r in $(seq "$REPS"); do
  load cluster "127.0.0.1:$((P + 6))"
  row "3 brokers r$r" "$W/cluster.json"
done
for n in 1 2 3; do
  owned=$(curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$((P + 2 + n))/metrics" \
    | awk '/^permetrix_tenants_owned/ {print $2}')
  echo "m$n owns ${owned:-?} tenants"
done
