#!/usr/bin/env bash
# Proves the Grafana dashboard (monitoring/grafana/dashboards/ticketd.json) with real queries,
# Grafana itself not being installable here: starts ticketd on the real local stack and a real
# Prometheus (Debian's package) scraping it every second with the alert rules, puts a little
# sale on it (monitoring/dashboard_load.py: holds, sold-out refusals, confirms, cancels and
# expiries), then runs every panel's query and every template variable's against Prometheus,
# one line each, and fails if any returns no data, if an alert rule cannot be evaluated, or if
# StockInvariantBroken fires. About 40 s after the build; only 127.0.0.1.
#
#   bash monitoring/dashboard-check.sh
#
# Knobs: DASHBOARD_PROFILE (release; debug reuses the test suite's build),
# DASHBOARD_LOAD_SECONDS (20), DASHBOARD_REDIS_DB (11). The run gets Redis database
# $DASHBOARD_REDIS_DB (emptied first and last), a PostgreSQL database and a Kafka topic of its
# own; everything it started is stopped on exit.
set -euo pipefail

PROFILE=${DASHBOARD_PROFILE:-release}
LOAD_SECONDS=${DASHBOARD_LOAD_SECONDS:-20}
REDIS_DB=${DASHBOARD_REDIS_DB:-11}
readonly SECRET=dashboard-check-secret-not-for-production
readonly RESERVATION_TTL=3 # seconds: holds left alone expire during the run

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
cd "$ROOT"
DASHBOARD=monitoring/grafana/dashboards/ticketd.json
case $PROFILE in
  release) build=(--release) ;;
  debug) build=() ;;
  *) echo "dashboard-check.sh: DASHBOARD_PROFILE is release or debug, not $PROFILE" >&2; exit 2 ;;
esac
TICKETD="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE/ticketd"

log() { printf '==> [%3d s] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'dashboard-check.sh: %s\n' "$*" >&2; exit 1; }

# --- cleanup: what we started (by pid) and the run's databases, on any exit --------------------
WORK=$(mktemp -d)
ticketd_pid=
prometheus_pid=
run_db=
stop_pid() { # stop_pid <pid>: TERM, up to 10 s, then KILL
  local pid=$1 _
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$prometheus_pid"
  stop_pid "$ticketd_pid"
  if [ -n "$run_db" ]; then
    timeout 20 psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $run_db WITH (FORCE)" >/dev/null 2>&1 || true
    timeout 10 redis-cli -h 127.0.0.1 -n "$REDIS_DB" FLUSHDB >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_for <seconds> <pid> <command...>: until the command succeeds, while pid lives.
wait_for() {
  local seconds=$1 pid=$2 _
  shift 2
  for _ in $(seq $((seconds * 5))); do
    kill -0 "$pid" 2>/dev/null || return 1
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# --- Prometheus, the local stack, ticketd ------------------------------------------------------
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  log "installing Debian's prometheus package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q prometheus >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q prometheus >/dev/null; }
fi
log "$(prometheus --version 2>&1 | head -n1)"

log "building ticketd ($PROFILE)"
cargo build "${build[@]}" -p ticketd >&2
[ -x "$TICKETD" ] || die "no $TICKETD after the build"

log "real stack: starting what is missing"
timeout --kill-after=10 1200 infra/local-stack.sh

# One check at a time on this machine: the run empties Redis database $REDIS_DB.
# (fd 9 is closed in the servers, so that only this script holds the lock.)
exec 9>"${TMPDIR:-/tmp}/ticketd-dashboard-check.lock"
flock -w 300 9 || die "another dashboard check still holds the lock after 300 s"

run_db="ticketd_dash_$(date +%s)_$$"
timeout 20 psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $run_db" >/dev/null
timeout 10 redis-cli -h 127.0.0.1 -n "$REDIS_DB" FLUSHDB >/dev/null

ticketd_port=$(free_port)
BASE_URL="http://127.0.0.1:$ticketd_port"
# env -i: only these settings, so nothing from the caller's environment changes the run.
env -i LISTEN_ADDR="127.0.0.1:$ticketd_port" JWT_SECRET="$SECRET" RUST_LOG=warn \
  RESERVATION_TTL="$RESERVATION_TTL" \
  REDIS_URL="redis://127.0.0.1:6379/$REDIS_DB" \
  DATABASE_URL="postgres://postgres@127.0.0.1:5432/$run_db" \
  KAFKA_BROKERS=127.0.0.1:9092 KAFKA_TOPIC="$run_db" KAFKA_GROUP="$run_db" \
  "$TICKETD" serve >"$WORK/ticketd.log" 2>&1 9>&- &
ticketd_pid=$!
if ! wait_for 60 "$ticketd_pid" curl -fsS --max-time 1 "$BASE_URL/health"; then
  tail -n 30 "$WORK/ticketd.log" >&2
  die "ticketd did not come up on $BASE_URL"
fi
log "ticketd on $BASE_URL (real stack, Redis db $REDIS_DB, database and topic $run_db)"

# The same rules as the compose stack and the local config, scraped every second.
prometheus_port=$(free_port)
PROMETHEUS="http://127.0.0.1:$prometheus_port"
cp monitoring/alerts.yml "$WORK/alerts.yml"
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - alerts.yml
scrape_configs:
  - job_name: ticketd
    static_configs:
      - targets: ["127.0.0.1:$ticketd_port"]
        labels: {service: ticketd}
EOF
promtool check config "$WORK/prometheus.yml" >/dev/null
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$prometheus_port" --log.level=warn \
  >"$WORK/prometheus.log" 2>&1 9>&- &
prometheus_pid=$!
target_up() {
  curl -fsS --max-time 2 "$PROMETHEUS/api/v1/targets" |
    python3 -c 'import json, sys; t = json.load(sys.stdin)["data"]["activeTargets"]; sys.exit(not (t and t[0]["health"] == "up"))'
}
if ! wait_for 60 "$prometheus_pid" target_up; then
  tail -n 30 "$WORK/prometheus.log" >&2
  die "Prometheus on $PROMETHEUS does not scrape ticketd"
fi
log "Prometheus on $PROMETHEUS scrapes ticketd every second"

# --- a little sale, then every query -----------------------------------------------------------
start=$(date +%s)
log "load: ${LOAD_SECONDS} s of fans (dashboard_load.py), then until a hold expired"
timeout --kill-after=5 $((LOAD_SECONDS + 60)) python3 monitoring/dashboard_load.py \
  --base-url "$BASE_URL" --secret "$SECRET" --seconds "$LOAD_SECONDS" 9>&-
sleep 5 # a few scrapes after the last change: gauges refresh every 2 s
end=$(date +%s)

log "every dashboard query over the last $((end - start)) s"
rc=0
python3 monitoring/dashboard_queries.py check "$DASHBOARD" "$PROMETHEUS" "$start" "$end" || rc=1
curl -fsS --max-time 10 "$PROMETHEUS/api/v1/rules" | python3 monitoring/dashboard_queries.py alerts || rc=1
[ "$rc" -eq 0 ] || die "the dashboard check failed"
log "dashboard check passed"
