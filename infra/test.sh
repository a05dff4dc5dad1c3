#!/usr/bin/env bash
# Every test of the workspace. Starts what is missing of the local stack first (Redis,
# PostgreSQL, the tansu Kafka-API broker, a 6-node Redis Cluster: see local-stack.sh), then
# runs the suites from the fastest to the slowest, timing each; last, the Docker Compose stack
# (compose-test.sh, which installs and starts Docker when missing). Extra arguments go to every `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

stage() {
    local name=$1 started=$SECONDS
    shift
    echo "==> $name"
    "$@"
    echo "==> $name: $((SECONDS - started)) s"
}

stage "local stack" infra/local-stack.sh
stage "local Redis Cluster (3 masters, 3 replicas)" infra/local-stack.sh --cluster
stage "alert rules and dashboard queries (promtool)" monitoring/check.sh
stage "a firing alert reaches the receiver (Prometheus, Alertmanager)" bash monitoring/alert-delivery.sh
stage "functions and adapters" cargo test --workspace --exclude ticketd "$@"
stage "runtime: embedded, over HTTP" cargo test -p ticketd --lib --bins --test api --test access_log "$@"
stage "API fuzzing against the OpenAPI document: embedded and real stack" infra/api-fuzz.sh
stage "runtime: real stack, over HTTP" cargo test -p ticketd --test stack "$@"
stage "runtime: CORS and the waiting room page in headless Chromium (Debian's chromium, installed if missing)" bash -c '
    command -v chromium >/dev/null || apt-get install -y -q chromium >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
    cargo test -p ticketd --test browser "$@"' browser "$@"
stage "runtime: Kafka outage" cargo test -p ticketd --test kafka_outage "$@"
stage "runtime: a Redis Cluster master killed mid-sale" cargo test -p ticketd --test cluster "$@"
stage "soak smoke: a short long sale, Redis bounded, PostgreSQL agrees" env SOAK_PROFILE=debug \
    SOAK_REQUESTS=20000 SOAK_CATEGORIES=100 SOAK_STOCK=20 SOAK_IDLE_CATEGORIES=300 \
    SOAK_RETENTION=5s bash infra/bench/soak.sh
stage "k6 smoke: embedded and real stack" env SMOKE_PROFILE=debug bash k6/smoke.sh
stage "the README's quick start, k6 included" env QUICKSTART_PROFILE=debug bash infra/quickstart-test.sh
stage "dashboard queries against a real Prometheus" env DASHBOARD_PROFILE=debug bash monitoring/dashboard-check.sh
stage "Docker Compose: every profile (all-in-one, per-function behind the gateway, cluster)" infra/compose-test.sh
