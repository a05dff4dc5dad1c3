#!/usr/bin/env bash
# Checks the Prometheus config and alert rules, and runs every alert's unit tests
# (firing and quiet) with promtool, from Debian's prometheus package.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v promtool >/dev/null; then
    echo "installing promtool (Debian's prometheus package)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q prometheus >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q prometheus >/dev/null; }
fi
promtool check config prometheus.yml
promtool check rules alerts.yml
promtool test rules alerts_test.yml
