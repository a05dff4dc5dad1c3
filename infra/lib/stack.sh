# Shared by the scripts that run ticketd against the real local stack or a local Prometheus
# (k6/smoke.sh, monitoring/dashboard-check.sh, monitoring/check.sh, monitoring/alert-delivery.sh,
# infra/api-fuzz.sh, infra/quickstart-test.sh). Sourced, never run:
#
#   source "$ROOT/infra/lib/stack.sh"
#   stack_init my-script.sh            # names the messages, makes $STACK_WORK
#   trap stack_cleanup EXIT            # (or a cleanup of the script's own that calls it)
#   trap 'exit 130' INT TERM
#
# What it gives:
#   stack_log / stack_die              "==> [ 12 s] ..." on stderr; "<name>: ..." and exit 1
#   stack_apt_install PACKAGE CMD...   Debian's PACKAGE, unless every CMD is already on PATH
#   stack_need_prometheus              prometheus and promtool (Debian's prometheus package)
#   stack_need_pyyaml                  PyYAML for python3 (from PyPI), for scripts that read YAML
#   stack_free_port                    a free TCP port on 127.0.0.1
#   stack_wait_for SECONDS PID CMD...  poll CMD every 0.2 s until it succeeds, while PID lives
#   stack_stop PID                     TERM, up to 10 s, then KILL; reaped
#   stack_ticketd_build PROFILE KNOB   cargo build (release|debug); sets TICKETD
#   stack_local_up                     infra/local-stack.sh: starts what is missing of the stack
#   stack_slice_open PREFIX REDIS_DB   a PostgreSQL database and Kafka topic of the run's own and
#                                      an emptied Redis database; sets STACK_SLICE_ENV (the
#                                      settings for ticketd) and STACK_DATABASE_URL
#   stack_slice_close                  drops that database, empties that Redis database
#   stack_ticketd_start LABEL VAR=...  `ticketd serve` under env -i (only these settings) on a
#                                      free port, up once /health answers; sets TICKETD_PID,
#                                      BASE_URL, TICKETD_PORT; log in $STACK_WORK/ticketd-LABEL.log
#   stack_ticketd_stop                 stops that ticketd
#   stack_prometheus_start CONFIG      Prometheus on a free port with that config; sets
#                                      PROMETHEUS_PID, PROMETHEUS (its URL)
#   stack_cleanup                      stops every process started here, closes the slice,
#                                      removes $STACK_WORK
#
# Every process started here has fd 9 closed: the scripts hold their flock on fd 9, and only
# the script itself may keep it.

STACK_LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK_NAME=${STACK_NAME:-$(basename "$0")}
STACK_WORK=
STACK_PIDS=()
STACK_SLICE_DB=
STACK_SLICE_REDIS_DB=
STACK_SLICE_ENV=()
STACK_DATABASE_URL=
TICKETD_PID=
PROMETHEUS_PID=

stack_init() {
  STACK_NAME=$1
  STACK_WORK=$(mktemp -d)
}

stack_log() { printf '==> [%3d s] %s\n' "$SECONDS" "$*" >&2; }
stack_die() {
  printf '%s: %s\n' "$STACK_NAME" "$*" >&2
  exit 1
}

stack_apt_install() {
  local package=$1 command missing=
  shift
  for command in "$@"; do command -v "$command" >/dev/null || missing=1; done
  [ -n "$missing" ] || return 0
  stack_log "installing Debian's $package package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$package" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q "$package" >/dev/null; }
}

stack_need_prometheus() { stack_apt_install prometheus prometheus promtool; }

stack_need_pyyaml() {
  python3 -c 'import yaml' 2>/dev/null && return 0
  stack_log "installing PyYAML from PyPI"
  python3 -m pip install -q --disable-pip-version-check PyYAML >&2
}

stack_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stack_wait_for() {
  local seconds=$1 pid=$2 _
  shift 2
  for _ in $(seq $((seconds * 5))); do
    kill -0 "$pid" 2>/dev/null || return 1
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

stack_stop() {
  local pid=$1 _ kept=() p
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${STACK_PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  STACK_PIDS=("${kept[@]}")
}

stack_ticketd_build() {
  local profile=$1 knob=$2 build=()
  case $profile in
    release) build=(--release) ;;
    debug) ;;
    *)
      echo "$STACK_NAME: $knob is release or debug, not $profile" >&2
      exit 2
      ;;
  esac
  stack_log "building ticketd ($profile)"
  (cd "$STACK_LIB_ROOT" && cargo build "${build[@]}" -p ticketd >&2)
  TICKETD="${CARGO_TARGET_DIR:-$STACK_LIB_ROOT/target}/$profile/ticketd"
  [ -x "$TICKETD" ] || stack_die "no $TICKETD after the build"
}

stack_local_up() {
  stack_log "real stack: starting what is missing"
  timeout --kill-after=10 1200 "$STACK_LIB_ROOT/infra/local-stack.sh"
}

stack_slice_open() {
  local prefix=$1 redis_db=$2
  STACK_SLICE_DB="${prefix}_$(date +%s)_$$"
  STACK_SLICE_REDIS_DB=$redis_db
  timeout 20 psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $STACK_SLICE_DB" >/dev/null
  timeout 10 redis-cli -h 127.0.0.1 -n "$redis_db" FLUSHDB >/dev/null
  STACK_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$STACK_SLICE_DB"
  STACK_SLICE_ENV=(REDIS_URL="redis://127.0.0.1:6379/$redis_db"
    DATABASE_URL="$STACK_DATABASE_URL"
    KAFKA_BROKERS=127.0.0.1:9092 KAFKA_TOPIC="$STACK_SLICE_DB" KAFKA_GROUP="$STACK_SLICE_DB")
}

stack_slice_close() {
  [ -n "$STACK_SLICE_DB" ] || return 0
  timeout 20 psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $STACK_SLICE_DB WITH (FORCE)" >/dev/null 2>&1 || true
  timeout 10 redis-cli -h 127.0.0.1 -n "$STACK_SLICE_REDIS_DB" FLUSHDB >/dev/null 2>&1 || true
  STACK_SLICE_DB=
  STACK_SLICE_ENV=()
  STACK_DATABASE_URL=
}

# Three tries, each on a port of its own: a free port may be taken before ticketd binds it.
stack_ticketd_start() {
  local label=$1 attempt i log
  shift
  log="$STACK_WORK/ticketd-$label.log"
  for attempt in 1 2 3; do
    TICKETD_PORT=$(stack_free_port)
    BASE_URL="http://127.0.0.1:$TICKETD_PORT"
    env -i LISTEN_ADDR="127.0.0.1:$TICKETD_PORT" RUST_LOG=warn "$@" \
      "$TICKETD" serve >"$log" 2>&1 9>&- &
    TICKETD_PID=$!
    STACK_PIDS+=("$TICKETD_PID")
    for i in $(seq 300); do
      kill -0 "$TICKETD_PID" 2>/dev/null || break
      if curl -fsS --max-time 1 -o /dev/null "$BASE_URL/health" 2>/dev/null; then
        # Answered: make sure it was ours, not something that took the port meanwhile.
        kill -0 "$TICKETD_PID" 2>/dev/null && return 0
        break
      fi
      sleep 0.1
    done
    stack_ticketd_stop
    stack_log "ticketd ($label) did not come up on port $TICKETD_PORT (attempt $attempt):"
    tail -n 20 "$log" >&2
  done
  stack_die "could not start ticketd ($label)"
}

stack_ticketd_stop() {
  stack_stop "$TICKETD_PID"
  TICKETD_PID=
}

stack_prometheus_start() {
  local config=$1 port
  promtool check config "$config" >/dev/null
  port=$(stack_free_port)
  PROMETHEUS="http://127.0.0.1:$port"
  prometheus --config.file="$config" --storage.tsdb.path="$STACK_WORK/tsdb-$port" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn \
    >"$STACK_WORK/prometheus.log" 2>&1 9>&- &
  PROMETHEUS_PID=$!
  STACK_PIDS+=("$PROMETHEUS_PID")
}

stack_cleanup() {
  local i
  for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do stack_stop "${STACK_PIDS[i]}"; done
  stack_slice_close
  [ -z "$STACK_WORK" ] || rm -rf "$STACK_WORK"
}
