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
# SOAK_RETENTION (30s). Everything on 127.0.0.1, stopped on exit. Knobs of the load: see
# runtime/examples/soak.rs.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
source "$ROOT/infra/lib/stack.sh"
REDIS_PORT=${SOAK_REDIS_PORT:-6390}
PROFILE=${SOAK_PROFILE:-release}
SOAK_TTL=${SOAK_TTL:-5}
SOAK_RETENTION=${SOAK_RETENTION:-30s}
readonly SECRET=soak-secret-not-for-production-0123456789

stack_init soak.sh
cleanup() {
    stack_cleanup
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stack_local_up
stack_ticketd_build "$PROFILE" SOAK_PROFILE
case $PROFILE in release) build=(--release) ;; *) build=() ;; esac
cargo build -q "${build[@]}" -p ticketd --example soak
SOAK="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE/examples/soak"

redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --appendonly yes \
    --maxmemory-policy noeviction --dir "$STACK_WORK" --logfile "$STACK_WORK/redis.log" --save ''
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
# The run's PostgreSQL database and topic; Redis is the server above, not the slice's.
stack_slice_open ticketd_soak 15
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
stack_ticketd_start soak "${STACK_SLICE_ENV[@]}" REDIS_URL="$REDIS_URL" JWT_SECRET="$SECRET" \
    RESERVE_RATE_PER_MINUTE=0 RESERVATION_TTL="$SOAK_TTL" \
    FINISHED_HOLD_RETENTION="$SOAK_RETENTION" MAX_IN_FLIGHT=4096
stack_log "ticketd on $BASE_URL, Redis on :$REDIS_PORT, database and topic $STACK_SLICE_DB"

if ! BASE_URL="$BASE_URL" JWT_SECRET="$SECRET" REDIS_URL="$REDIS_URL" \
    DATABASE_URL="$STACK_DATABASE_URL" timeout --kill-after=10 "${SOAK_TIMEOUT:-3600}" "$SOAK"; then
    tail -n 30 "$STACK_WORK/ticketd-soak.log" >&2
    exit 1
fi
stack_log "soak done"
