#!/usr/bin/env bash
# Checks the image recipe (Dockerfile) without a container engine: CI has none, and no base
# image can be pulled. It performs the recipe's own steps on this machine, from exactly the
# files each step copies, then starts the result the way the final stage does.
#
# What it checks
#   1. The recipe agrees with the workspace: ARG RUST_VERSION = Cargo.toml's rust-version
#      and the rust base image uses it; the final stage has an unprivileged USER, an
#      exec-form ENTRYPOINT starting with tini, PERMETRIX_BIND on 0.0.0.0 at fly.toml's
#      internal_port (= EXPOSE), PERMETRIX_DATA_DIR a VOLUME and fly.toml's mount;
#      .dockerignore leaves out target/ and .git.
#   2. The build stages, read from the Dockerfile (deploy/image-recipe/ parses it; no file
#      list lives in this script): each stage gets a fresh scratch directory, each COPY copies
#      exactly its sources (from the build context after .dockerignore, or from an earlier
#      stage's directory), each RUN runs there. So the planner (cargo chef prepare) sees the
#      whole context, the cook (cargo chef cook) sees recipe.json alone, and the build sees
#      the context again, as in an image build.
#   3. Every crate compiled into the binary declares a rust-version no newer than the image's
#      toolchain (this machine's toolchain may be newer than the image's).
#   4. The final stage's COPY lines are performed into a scratch root; the binary starts from
#      there as the stage's USER (created with useradd if absent; the server must not run as
#      root), under tini as PID 1 of its own PID namespace (when tini and unshare are
#      available), with the stage's ENV plus fly.toml's [env], its data directory a fresh
#      directory owned by that user, PERMETRIX_BIND=0.0.0.0:0 (a free port) and an operator
#      token as a `fly secrets set` would give. Then GET /health, an operator creates a vendor,
#      the vendor a tenant, and GET /licenses/status answers on the tenant's Host; SIGTERM to
#      PID 1 must end the server with exit code 0.
#
# What it cannot check
#   - The base images (rust:<version>-slim-<debian>, debian:<release>-slim): the build runs
#     with this machine's cargo/rustc, which may be newer than the image's (step 3 narrows the
#     gap for dependencies, clippy's incompatible_msrv lint for std APIs; language features
#     newer than rust-version are not caught) and links against this machine's glibc.
#   - RUN lines of the final stage (apt-get install tini, useradd, mkdir/chown /data): listed,
#     not run; this script creates the user and the data directory itself.
#   - tini's presence in the image (it uses this machine's /usr/bin/tini, Debian's package),
#     and the engine's own semantics of USER, ENTRYPOINT, VOLUME and layer caching.
#   - Fly's volume: it is mounted over /data at run time, with its own ownership.
#
# Caches (kept under target/image-check/, so `cargo clean` removes them)
#   - cargo-target/: cargo's target directory of the build stages. The cook and the build
#     share it (as the builder stage shares /src/target) and it is kept between runs, as an
#     image build keeps the cooked layer: a warm run recompiles the workspace crates only.
#   - tools/: CARGO_INSTALL_ROOT of the recipe's `cargo install` (cargo-chef at the version
#     the Dockerfile pins; skipped when already installed).
#   Scratch directories of the stages live under $TMPDIR and are rebuilt on every run.
#
# Usage: deploy/check-image.sh   (from anywhere; needs python3 >= 3.11, cargo, curl)
set -Eeuo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
helper="$repo/deploy/image-recipe"
# The helper is run, not installed: no __pycache__ in the checkout.
export PYTHONDONTWRITEBYTECODE=1
cache="$repo/target/image-check"
work="${TMPDIR:-/tmp}/permetrix-image-check.$(id -u).$(printf %s "$repo" | cksum | cut -d' ' -f1)"
started=$SECONDS
total=7
step_no=0
step_name=""
hint=""
launcher=""
init=""
server=""
rt=""

step() { # NAME HINT: announce a step; HINT is what to do if it fails
  step_no=$((step_no + 1))
  step_name=$1
  hint=$2
  echo "==> [$step_no/$total] $step_name"
}

on_error() {
  # In a command substitution, only the outer shell reports.
  if [ "$BASH_SUBSHELL" -gt 0 ]; then exit 1; fi
  echo "check-image: FAILED at step $step_no/$total ($step_name)." >&2
  echo "check-image: $hint" >&2
  if [ -n "$rt" ] && [ -s "$rt/server.log" ]; then
    echo "check-image: last lines of the server's log:" >&2
    tail -n 20 "$rt/server.log" | sed 's/^/    /' >&2
  fi
  exit 1
}
trap on_error ERR

cleanup() {
  for pid in $server $init $launcher; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "$rt" ]; then rm -rf "$rt"; fi
}
trap cleanup EXIT

child() { # PID: its (first) child process
  local pids
  pids="$(cat "/proc/$1/task/$1/children" 2>/dev/null || true)"
  echo "${pids%% *}"
}

mkdir -p "$cache" "$work"
# One check at a time per checkout: the stages' scratch directories are rebuilt in place.
exec 9>"$work/.lock"
flock 9

step "recipe: Dockerfile, Cargo.toml, fly.toml and .dockerignore agree" \
  "Make the files named above agree; the message says which value is expected."
python3 "$helper" --context "$repo" check

step "build stages: each COPY from the context or an earlier stage, each RUN in a fresh scratch directory" \
  "The error above names the Dockerfile line: an image build fails there too (unless it says this check cannot perform the line). The stages' scratch directories are kept for a look: $work/stages."
python3 "$helper" --context "$repo" build \
  --work "$work/stages" --cache "$cache" --tools "$cache/tools"

step "toolchain: the crates compiled into permetrix support the image's Rust (ARG RUST_VERSION)" \
  "See the message above: pin the named crates, or raise rust-version and ARG RUST_VERSION together."
python3 "$helper" --context "$repo" msrv --work "$work/stages" --bin permetrix

step "runtime stage: its COPY lines into a scratch root, its user, its data directory" \
  "The final stage must copy the binary from a build stage and name an unprivileged USER; this machine needs useradd and setpriv (util-linux) when run as root."
rt="$(mktemp -d "${TMPDIR:-/tmp}/permetrix-image-runtime.XXXXXX")"
chmod 755 "$rt"
mkdir "$rt/root"
python3 "$helper" --context "$repo" runtime --work "$work/stages" --rootfs "$rt/root" >"$rt/plan.sh"
# shellcheck disable=SC1091 # generated: RUNTIME_USER, _CWD, _INIT, _ARGV, _PROGRAM, _ENV, _VOLUMES
source "$rt/plan.sh"
run_as=()
if [ "$(id -u)" = 0 ]; then
  if [[ "$RUNTIME_USER" =~ ^([0-9]+)(:([0-9]+))?$ ]]; then
    uid=${BASH_REMATCH[1]}
    gid=${BASH_REMATCH[3]:-$uid}
  else
    name="${RUNTIME_USER%%:*}"
    if ! id -u "$name" >/dev/null 2>&1; then
      echo "    creating the system user $name (useradd)"
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$name"
    fi
    uid=$(id -u "$name")
    gid=$(id -g "$name")
  fi
  [ "$uid" != 0 ]
  run_as=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
  chown "$uid:$gid" "${RUNTIME_VOLUMES[@]}"
else
  uid=$(id -u)
  echo "    not root: the server runs as $(id -un) (uid $uid), standing in for $RUNTIME_USER"
fi
echo "    user $RUNTIME_USER = uid $uid; volumes ${RUNTIME_VOLUMES[*]}"

step "start the binary as the final stage does (user, environment, entrypoint)" \
  "The server did not come up as it would in the image; its log is below."
token="$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
env_args=()
bind_host="0.0.0.0"
base_domain="localhost"
for kv in "${RUNTIME_ENV[@]}"; do
  case "$kv" in
    PERMETRIX_BIND=*) bind_host="${kv#PERMETRIX_BIND=}"; bind_host="${bind_host%:*}" ;;
    PERMETRIX_BASE_DOMAINS=*) base_domain="${kv#PERMETRIX_BASE_DOMAINS=}"; base_domain="${base_domain%%,*}"
      env_args+=("$kv") ;;
    *) env_args+=("$kv") ;;
  esac
done
env_args+=("PERMETRIX_BIND=$bind_host:0" "PERMETRIX_ADMIN_TOKEN=$token")
ns=()
if [ "$(id -u)" = 0 ] && [ -n "$RUNTIME_INIT" ] && unshare --pid --fork --kill-child true 2>/dev/null; then
  ns=(unshare --pid --fork --kill-child)
fi
echo "    ${ns[*]:+${ns[*]} }${run_as[*]:+${run_as[*]} }${RUNTIME_ARGV[*]}"
# 9>&-: the server must not hold this script's lock.
(cd "$RUNTIME_CWD" && exec "${ns[@]}" "${run_as[@]}" env -i "${env_args[@]}" "${RUNTIME_ARGV[@]}") \
  >"$rt/server.log" 2>&1 9>&- &
launcher=$!
# PID 1 of the image: the namespace's first process, or the command itself. Its child is
# the server when tini runs. Both are known early, so that cleanup can kill them (a process
# that changed its user loses unshare's --kill-child signal).
init=""
if [ ${#ns[@]} -eq 0 ]; then init=$launcher; fi
port=""
for _ in $(seq 600); do # up to 60 s
  if [ -z "$init" ]; then init="$(child "$launcher")"; fi
  if [ -z "$server" ] && [ -n "$init" ]; then
    if [ -n "$RUNTIME_INIT" ]; then server="$(child "$init")"; else server=$init; fi
  fi
  port="$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$rt/server.log" | head -n 1)"
  if [ -n "$port" ] || ! kill -0 "$launcher" 2>/dev/null; then break; fi
  sleep 0.1
done
[ -n "$port" ]
[ -n "$init" ]
[ -n "$server" ]
server_uid="$(awk '/^Uid:/ {print $2}' "/proc/$server/status")"
echo "    listening on port $port; permetrix is pid $server, uid $server_uid"
[ "$server_uid" = "$uid" ]
[ "$(readlink "/proc/$server/exe")" = "$RUNTIME_PROGRAM" ]
if [ ${#ns[@]} -gt 0 ]; then
  init_nspid="$(awk '/^NSpid:/ {print $NF}' "/proc/$init/status")"
  echo "    $RUNTIME_INIT is PID $init_nspid of its namespace"
  [ "$init_nspid" = 1 ]
elif [ -n "$RUNTIME_INIT" ]; then
  echo "    NOT CHECKED: tini as PID 1 (unshare --pid is unavailable here); it runs as a child"
fi

step "requests: GET /health, then a tenant request by Host (operator -> vendor -> tenant)" \
  "The server answered differently than in the image; the reply is above, its log below."
http() { # METHOD HOST PATH [BEARER] [JSON]: sets status and body
  local args=(-sS --noproxy '*' --max-time 10 -o "$rt/body" -w '%{http_code}' -X "$1" -H "Host: $2")
  if [ -n "${4:-}" ]; then args+=(-H "Authorization: Bearer $4"); fi
  if [ -n "${5:-}" ]; then args+=(-H 'Content-Type: application/json' --data "$5"); fi
  status="$(curl "${args[@]}" "http://127.0.0.1:$port$3")"
  body="$(cat "$rt/body")"
  echo "    $1 $3 (Host: $2) -> $status"
}
expect() { # STATUS
  if [ "$status" != "$1" ]; then echo "    expected $1: $body"; return 1; fi
}
field() { # NAME: a string field of the last JSON reply
  python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$body" "$1"
}
http GET "$base_domain" /health
expect 200
http POST "$base_domain" /api/admin/vendors "$token" \
  '{"vendor_id":"imagecheck","vendor_name":"Image check","contact_email":"ops@imagecheck.example"}'
expect 201
vendor_key="$(field api_key)"
http POST "vendor.$base_domain" /api/vendor/customers "$vendor_key" \
  '{"tenant_id":"acme","company_name":"ACME"}'
expect 201
tenant_key="$(field admin_api_key)"
http GET "acme.$base_domain" /licenses/status "$tenant_key"
expect 200
python3 -c 'import json, sys; assert isinstance(json.loads(sys.argv[1]), list)' "$body"

step "SIGTERM to PID 1: the server drains and exits 0" \
  "The server must exit 0 on SIGTERM within fly.toml's kill_timeout; its log is below."
kill -TERM "$init"
for _ in $(seq 350); do # up to 35 s, fly.toml's kill_timeout
  if ! kill -0 "$launcher" 2>/dev/null; then break; fi
  sleep 0.1
done
if kill -0 "$launcher" 2>/dev/null; then
  echo "    still running 35 s after SIGTERM"
  false
fi
code=0
wait "$launcher" || code=$?
launcher=""
init=""
server=""
echo "    exit code $code"
[ "$code" = 0 ]

echo "check-image: passed in $((SECONDS - started)) s (image recipe: $repo/Dockerfile)"
