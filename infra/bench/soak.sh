#!/usr/bin/env bash
# A long sale on the real stack (runtime/examples/soak.rs): a million reserves over 1,000
# categories by default, with payments, cancellations, expiries and mostly sold-out
# refusals, then the wait for every finished hold to leave Redis. Reports Redis memory and
# keys before, at peak and after; that PostgreSQL holds exactly what the fans were told; and
# Redis's idle commands per second with 1,000 and 10,000 categories. Fails on a missed target.
#
#   bash infra/bench/soak.sh                                   # the benchmark (minutes)
#   SOAK_REQUESTS=20000 SOAK_CATEGORIES=100 bash infra/bench/soak.sh   # the test suite's smoke
#
# Its own redis-server (port SOAK_REDIS_PORT, 6390) so that memory and command counts are
# ticketd's alone; a PostgreSQL database and Kafka topic of its own on what
# infra/local-stack.sh started. Holds last SOAK_TTL (5 s) and finished ones are kept
# SOAK_RETENTION (30s). Everything on 127.0.0.1, stopped on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
REDIS_PORT=${SOAK_REDIS_PORT:-6390}
PROFILE=${SOAK_PROFILE:-release}
export SOAK_TTL=${SOAK_TTL:-5} SOAK_RETENTION=${SOAK_RETENTION:-30s}
readonly SECRET=soak-secret-not-for-production-0123456789

log() { printf '==> [%3d s] %s\n' "$SECONDS" "$*" >&2; }
WORK=$(mktemp -d)
ticketd_pid=
run_db="ticketd_soak_$(date +%s)_$$"
cleanup() {
    if [ -n "$ticketd_pid" ]; then
        kill -TERM "$ticketd_pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$ticketd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$ticketd_pid" 2>/dev/null || true
    fi
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $run_db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

infra/local-stack.sh
case $PROFILE in release) build=(--release) ;; *) build=() ;; esac
log "building ticketd and the soak ($PROFILE)"
cargo build -q "${build[@]}" -p ticketd --bin ticketd --example soak
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE

redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --appendonly yes \
    --maxmemory-policy noeviction --dir "$WORK" --logfile "$WORK/redis.log" --save ''
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $run_db" >/dev/null

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export BASE_URL="http://127.0.0.1:$port" JWT_SECRET="$SECRET"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT" DATABASE_URL="postgres://postgres@127.0.0.1:5432/$run_db"
env -i LISTEN_ADDR="127.0.0.1:$port" JWT_SECRET="$SECRET" RUST_LOG=warn \
    REDIS_URL="$REDIS_URL" DATABASE_URL="$DATABASE_URL" KAFKA_BROKERS=127.0.0.1:9092 \
    KAFKA_TOPIC="$run_db" KAFKA_GROUP="$run_db" RESERVE_RATE_PER_MINUTE=0 \
    RESERVATION_TTL="$SOAK_TTL" FINISHED_HOLD_RETENTION="$SOAK_RETENTION" MAX_IN_FLIGHT=4096 \
    "$TARGET/ticketd" serve >"$WORK/ticketd.log" 2>&1 &
ticketd_pid=$!
for _ in $(seq 300); do curl -fs "$BASE_URL/health" >/dev/null 2>&1 && break; sleep 0.1; done
log "ticketd on $BASE_URL, Redis on :$REDIS_PORT, database and topic $run_db"

if ! timeout --kill-after=10 "${SOAK_TIMEOUT:-3600}" "$TARGET/examples/soak"; then
    tail -n 30 "$WORK/ticketd.log" >&2
    exit 1
fi
log "soak done"
