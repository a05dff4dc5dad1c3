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
# shellcheck source=../infra/lib/stack.sh
source infra/lib/stack.sh
stack_init dashboard-check.sh
DASHBOARD=monitoring/grafana/dashboards/ticketd.json

# What we started (by pid) and the run's databases are stopped and dropped on any exit.
trap stack_cleanup EXIT
trap 'exit 130' INT TERM

# --- Prometheus, the local stack, ticketd ------------------------------------------------------
stack_need_prometheus
stack_log "$(prometheus --version 2>&1 | head -n1)"

stack_ticketd_build "$PROFILE" DASHBOARD_PROFILE
stack_local_up

# One check at a time on this machine: the run empties Redis database $REDIS_DB.
# (fd 9 is closed in the servers, so that only this script holds the lock.)
exec 9>"${TMPDIR:-/tmp}/ticketd-dashboard-check.lock"
flock -w 300 9 || stack_die "another dashboard check still holds the lock after 300 s"

stack_slice_open ticketd_dash "$REDIS_DB"
stack_ticketd_start real JWT_SECRET="$SECRET" RESERVATION_TTL="$RESERVATION_TTL" "${STACK_SLICE_ENV[@]}"
stack_log "ticketd on $BASE_URL (real stack, Redis db $REDIS_DB, database and topic $STACK_SLICE_DB)"

# The same rules as the compose stack and the local config, scraped every second.
cp monitoring/alerts.yml "$STACK_WORK/alerts.yml"
cat >"$STACK_WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - alerts.yml
scrape_configs:
  - job_name: ticketd
    static_configs:
      - targets: ["127.0.0.1:$TICKETD_PORT"]
        labels: {service: ticketd}
EOF
stack_prometheus_start "$STACK_WORK/prometheus.yml"
target_up() {
  curl -fsS --max-time 2 "$PROMETHEUS/api/v1/targets" |
    python3 -c 'import json, sys; t = json.load(sys.stdin)["data"]["activeTargets"]; sys.exit(not (t and t[0]["health"] == "up"))'
}
if ! stack_wait_for 60 "$PROMETHEUS_PID" target_up; then
  tail -n 30 "$STACK_WORK/prometheus.log" >&2
  stack_die "Prometheus on $PROMETHEUS does not scrape ticketd"
fi
stack_log "Prometheus on $PROMETHEUS scrapes ticketd every second"

# --- a little sale, then every query -----------------------------------------------------------
start=$(date +%s)
stack_log "load: ${LOAD_SECONDS} s of fans (dashboard_load.py), then until a hold expired"
timeout --kill-after=5 $((LOAD_SECONDS + 60)) python3 monitoring/dashboard_load.py \
  --base-url "$BASE_URL" --secret "$SECRET" --seconds "$LOAD_SECONDS" 9>&-
sleep 5 # a few scrapes after the last change: gauges refresh every 2 s
end=$(date +%s)

stack_log "every dashboard query over the last $((end - start)) s"
rc=0
python3 monitoring/dashboard_queries.py check "$DASHBOARD" "$PROMETHEUS" "$start" "$end" || rc=1
curl -fsS --max-time 10 "$PROMETHEUS/api/v1/rules" | python3 monitoring/dashboard_queries.py alerts || rc=1
[ "$rc" -eq 0 ] || stack_die "the dashboard check failed"
stack_log "dashboard check passed"
