#!/usr/bin/env bash
# Proves that a firing alert reaches someone: Debian's Prometheus, loaded with the rules of
# alerts.yml, scrapes a ticketd target that is down (nothing listens on its port), so
# `up == 0` and TargetDown fires; it goes to Debian's Alertmanager, loaded with
# alertmanager.yml, whose routes send it (critical) to the oncall webhook: a local receiver
# (webhook_receiver.py) that stands in for the pager. Fails unless the receiver gets TargetDown,
# firing, with its severity and runbook, within DELIVERY_TIMEOUT seconds (90). Prints the JSON
# it received. Everything on 127.0.0.1, on free ports; everything started is stopped on exit.
#
#   bash monitoring/alert-delivery.sh
#
# The test copies differ from the real files in two places only: TargetDown's `for:` (1m) is
# 0s, and the receivers' placeholder 127.0.0.1:5001 is the local receiver's address.
set -euo pipefail

DELIVERY_TIMEOUT=${DELIVERY_TIMEOUT:-90}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
cd "$ROOT"
# shellcheck source=../infra/lib/stack.sh
source infra/lib/stack.sh
stack_init alert-delivery.sh
trap stack_cleanup EXIT
trap 'exit 130' INT TERM

stack_need_prometheus
stack_apt_install prometheus-alertmanager prometheus-alertmanager amtool
stack_need_pyyaml
stack_log "$(prometheus --version 2>&1 | head -n1); $(prometheus-alertmanager --version 2>&1 | head -n1)"

# --- the receiver ------------------------------------------------------------------------------
hook_port=$(stack_free_port)
received=$STACK_WORK/received
python3 monitoring/webhook_receiver.py "$hook_port" "$received" 2>"$STACK_WORK/receiver.log" 9>&- &
hook_pid=$!
STACK_PIDS+=("$hook_pid")
stack_wait_for 10 "$hook_pid" test -d "$received" || stack_die "the webhook receiver did not start"
stack_wait_for 10 "$hook_pid" bash -c "exec 3<>/dev/tcp/127.0.0.1/$hook_port" ||
  stack_die "the webhook receiver does not listen on 127.0.0.1:$hook_port"

# --- Alertmanager, with the real routes --------------------------------------------------------
grep -q '127\.0\.0\.1:5001' monitoring/alertmanager.yml ||
  stack_die "monitoring/alertmanager.yml has no 127.0.0.1:5001 placeholder to point at the receiver"
sed "s/127\.0\.0\.1:5001/127.0.0.1:$hook_port/g" monitoring/alertmanager.yml >"$STACK_WORK/alertmanager.yml"
amtool check-config "$STACK_WORK/alertmanager.yml" >/dev/null
am_port=$(stack_free_port)
ALERTMANAGER="http://127.0.0.1:$am_port"
# No cluster listener: a lone Alertmanager, on loopback only.
prometheus-alertmanager --config.file="$STACK_WORK/alertmanager.yml" \
  --storage.path="$STACK_WORK/alertmanager" --web.listen-address="127.0.0.1:$am_port" \
  --cluster.listen-address= --log.level=warn >"$STACK_WORK/alertmanager.log" 2>&1 9>&- &
am_pid=$!
STACK_PIDS+=("$am_pid")
if ! stack_wait_for 30 "$am_pid" curl -fsS --max-time 1 "$ALERTMANAGER/-/ready"; then
  cat "$STACK_WORK/alertmanager.log" >&2
  stack_die "Alertmanager did not get ready on $ALERTMANAGER"
fi
stack_log "Alertmanager on $ALERTMANAGER, receivers at 127.0.0.1:$hook_port"

# --- Prometheus: the real rules, a target that is down -----------------------------------------
python3 - monitoring/alerts.yml "$STACK_WORK/alerts.yml" <<'PY'
import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
target_down = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "TargetDown"]
assert len(target_down) == 1, "alerts.yml has no TargetDown rule"
target_down[0]["for"] = "0s"
yaml.safe_dump(rules, open(sys.argv[2], "w"), sort_keys=False)
PY
down_port=$(stack_free_port) # nothing listens there
cat >"$STACK_WORK/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - alerts.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$am_port"]
scrape_configs:
  - job_name: ticketd
    static_configs:
      - targets: ["127.0.0.1:$down_port"]
        labels: {service: ticketd}
YML
stack_prometheus_start "$STACK_WORK/prometheus.yml"
if ! stack_wait_for 30 "$PROMETHEUS_PID" curl -fsS --max-time 1 "$PROMETHEUS/-/ready"; then
  cat "$STACK_WORK/prometheus.log" >&2
  stack_die "Prometheus did not get ready on $PROMETHEUS"
fi
stack_log "Prometheus on $PROMETHEUS scrapes 127.0.0.1:$down_port, where nothing listens"

# --- until the receiver has TargetDown ---------------------------------------------------------
delivered() { # the first notification of a firing TargetDown, on the oncall webhook
  python3 - "$received" <<'PY'
import glob, json, sys
for path in sorted(glob.glob(sys.argv[1] + "/*-oncall.json")):
    note = json.load(open(path))
    for alert in note["alerts"]:
        labels, notes = alert["labels"], alert["annotations"]
        if (labels.get("alertname") == "TargetDown" and alert["status"] == "firing"
                and labels.get("severity") == "critical" and notes.get("runbook_url")
                and notes.get("description")):
            print(path)
            sys.exit(0)
sys.exit(1)
PY
}
stack_log "waiting up to $DELIVERY_TIMEOUT s for TargetDown at the oncall webhook"
if ! stack_wait_for "$DELIVERY_TIMEOUT" "$hook_pid" delivered; then
  stack_log "nothing arrived; received: $(ls "$received")"
  { curl -fsS --max-time 5 "$PROMETHEUS/api/v1/alerts" && echo; } >&2 || true
  tail -n 20 "$STACK_WORK/alertmanager.log" "$STACK_WORK/prometheus.log" >&2
  stack_die "TargetDown did not reach the receiver within $DELIVERY_TIMEOUT s"
fi
note=$(delivered)
stack_log "TargetDown delivered to the oncall webhook after $SECONDS s; what it received:"
python3 -m json.tool "$note"
