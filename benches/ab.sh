#!/usr/bin/env bash
# Alternating A/B runs of two server builds (or two server flag sets), driven by one
# load tool, each on a fresh data directory with 100 load tenants.
#
#   TOOL=target/release/permetrix benches/ab.sh BIN_A BIN_B "serve flags" "load flags" [reps]
#   SERVE_B="--durability relaxed" benches/ab.sh BIN BIN "" "--tenants 100" 3
set -euo pipefail
A=$1; B=$2; SERVE=$3; LOADF=$4; REPS=${5:-3}; TOOL=${TOOL:-target/release/permetrix}
HERE=$(dirname "$0")
# The servers' operator token, which cpu.sh also reads /metrics with.
export PERMETRIX_ADMIN_TOKEN=tok
W=$(mktemp -d "${TMPDIR:-/tmp}/permetrix-ab.XXXX")
start() { # bin name port flags
  PERMETRIX_ADMIN_TOKEN=tok "$1" serve --bind "127.0.0.1:$3" --data-dir "$W/$2" $4 > "$W/$2.log" 2>&1 &
  echo $! > "$W/$2.pid"
  for _ in $(seq 100); do grep -q "listening on" "$W/$2.log" && break; sleep 0.2; done
}
start "$A" a 18101 "$SERVE"; start "$B" b 18102 "${SERVE_B:-$SERVE}"
trap 'kill $(cat "$W/a.pid") $(cat "$W/b.pid") 2>/dev/null' EXIT
for x in a:18101 b:18102; do n=${x%%:*}; p=${x##*:}
  PERMETRIX_ADMIN_TOKEN=tok "$TOOL" load --quiet --server "127.0.0.1:$p" --credentials "$W/$n.json" \
    --setup --tenants 100 --duration 1 --warmup 0 > /dev/null
done
for r in $(seq "$REPS"); do for x in a:18101 b:18102; do n=${x%%:*}; p=${x##*:}
  echo -n "$n r$r "
  "$HERE/cpu.sh" "$(cat "$W/$n.pid")" "$TOOL" --server "127.0.0.1:$p" --credentials "$W/$n.json" $LOADF
done; done
