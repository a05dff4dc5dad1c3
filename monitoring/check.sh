#!/usr/bin/env bash
# Checks both Prometheus configs (compose: prometheus.yml; this machine: prometheus.local.yml)
# and the alert rules, runs every alert's unit tests (firing and quiet), and checks that every
# query of the Grafana dashboard parses, with promtool from Debian's prometheus package; checks
# the Alertmanager config and its routes with amtool (Debian's prometheus-alertmanager), and
# that every alert has a description and a runbook section in README.md.
# (dashboard-check.sh runs those queries against a real Prometheus.)
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=../infra/lib/stack.sh
source ../infra/lib/stack.sh
stack_need_prometheus
stack_apt_install prometheus-alertmanager amtool
stack_need_pyyaml
promtool check config prometheus.yml
promtool check config prometheus.local.yml
promtool check rules alerts.yml
promtool test rules alerts_test.yml
python3 runbook_check.py alerts.yml README.md

amtool check-config alertmanager.yml
# critical pages the on-call, warning goes to the team.
amtool config routes test --config.file=alertmanager.yml --verify.receivers=oncall severity=critical 2>/dev/null
amtool config routes test --config.file=alertmanager.yml --verify.receivers=team severity=warning 2>/dev/null

queries=$(mktemp --suffix=.yml)
trap 'rm -f "$queries"' EXIT
python3 dashboard_queries.py rules grafana/dashboards/ticketd.json >"$queries"
echo "Dashboard queries (grafana/dashboards/ticketd.json):"
promtool check rules "$queries"
