#!/usr/bin/env bash
# What open waiting room streams cost ticketd: FANS fans (default 10,000) join one event's
# queue and follow its event stream (runtime/examples/streams.rs). Prints ticketd's resident
# memory before and with the streams open, and its CPU time over PHASE seconds twice: while
# the room waits for its opening (streams open, nothing moves), then admitting RATE fans a
# second (every stream gets its new position, at most once a second).
#
#   bash infra/bench/streams.sh                     # embedded, release, 10,000 fans
#   FANS=2000 PHASE=5 bash infra/bench/streams.sh
#   STACK=real bash infra/bench/streams.sh          # on Redis (and Kafka, PostgreSQL)
#
# Loopback only; both processes are stopped on exit. Not a test: it fails only when
# something could not be measured.
set -euo pipefail

FANS=${FANS:-10000}
PHASE=${PHASE:-10}
RATE=${RATE:-100}
STACK=${STACK:-embedded}
readonly PORT=18090 URL="http://127.0.0.1:18090" SECRET=bench-secret-not-for-production

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'streams.sh: %s\n' "$*" >&2; exit 1; }

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -z "${database:-}" ] || psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A socket per stream in each process (ticketd, the client), plus the rest.
ulimit -n $((FANS + 1024)) 2>/dev/null || die "cannot raise the open file limit for $FANS streams"
log "building (release)"
cargo build --release -p ticketd --bin ticketd --example streams

settings=()
case $STACK in
  embedded) ;;
  real)
    infra/local-stack.sh
    redis-cli -n 13 FLUSHDB >/dev/null
    database="ticketd_streams_$(date +%s)"
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $database" >/dev/null
    settings=(REDIS_URL=redis://127.0.0.1:6379/13 "DATABASE_URL=postgres://postgres@127.0.0.1:5432/$database"
      KAFKA_BROKERS=127.0.0.1:9092 "KAFKA_TOPIC=$database" "KAFKA_GROUP=$database")
    ;;
  *) die "STACK is embedded or real, not $STACK" ;;
esac
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && die "something already listens on 127.0.0.1:$PORT"
env -i LISTEN_ADDR="127.0.0.1:$PORT" JWT_SECRET="$SECRET" MAX_CONNECTIONS=$((FANS + 1000)) \
  RESERVE_RATE_PER_MINUTE=0 RUST_LOG=warn "${settings[@]}" \
  "$TARGET_DIR/release/ticketd" serve >"$TARGET_DIR/streams-ticketd.log" 2>&1 &
ticketd=$!
pids+=("$ticketd")
for _ in $(seq 300); do curl -fsS -o /dev/null "$URL/health" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "$URL/health" || die "ticketd did not start (see $TARGET_DIR/streams-ticketd.log)"

admin=$("$TARGET_DIR/release/ticketd" token --role admin --sub bench-admin --secret "$SECRET")
call() { # method path json
  curl -fsS --max-time 10 -X "$1" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d "$3" "$URL$2"
}
event=$(call POST /events '{"name":"Streams","date":"2030-01-01T20:00:00Z"}' | grep -o '"id":"[^"]*"' | cut -d'"' -f4)
call POST "/events/$event/ticket-category" '{"name":"Floor","total_stock":1000000,"price":10}' >/dev/null
opens_at=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
call PUT "/events/$event/waiting-room" \
  "{\"enabled\":true,\"admit_per_second\":$RATE,\"admission_ttl\":600,\"opens_at\":\"$opens_at\"}" >/dev/null

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$ticketd/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$ticketd/stat"; }
ticks_per_second=$(getconf CLK_TCK)
cpu_percent_over() { # seconds -> ticketd's CPU use over them, in % of one core
  local before after
  before=$(cpu_ticks); sleep "$1"; after=$(cpu_ticks)
  awk -v t=$((after - before)) -v hz="$ticks_per_second" -v s="$1" 'BEGIN { printf "%.1f", 100 * t / hz / s }'
}

rss_before=$(rss_kib)
log "opening $FANS streams"
"$TARGET_DIR/release/examples/streams" "$URL" "$event" "$SECRET" --fans "$FANS" \
  --for $((PHASE * 2 + 120)) >"$TARGET_DIR/streams-client.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do grep -q "all $FANS streams open" "$TARGET_DIR/streams-client.log" && break; sleep 1; done
grep -q "all $FANS streams open" "$TARGET_DIR/streams-client.log" || { tail -3 "$TARGET_DIR/streams-client.log"; die "the streams did not all open"; }
open_streams=$(curl -fsS "$URL/metrics" | awk '/^waiting_room_streams / { print $2 }')
rss_open=$(rss_kib)
log "streams open ($open_streams by ticketd's gauge); idle for $PHASE s"
idle_cpu=$(cpu_percent_over "$PHASE")

call PUT "/events/$event/waiting-room" "{\"enabled\":true,\"admit_per_second\":$RATE,\"admission_ttl\":600}" >/dev/null
sleep 2 # the settings change makes every stream read its place once: not part of the steady state
events_before=$(tail -1 "$TARGET_DIR/streams-client.log" | grep -o 'events=[0-9]*' | cut -d= -f2)
log "admitting $RATE fans a second for $PHASE s"
admitting_cpu=$(cpu_percent_over "$PHASE")
last=$(tail -1 "$TARGET_DIR/streams-client.log")
events_after=$(grep -o 'events=[0-9]*' <<<"$last" | cut -d= -f2)

cat <<EOF

| $STACK, $FANS streams | |
|---|---|
| ticketd resident memory | $((rss_before / 1024)) MiB before, $((rss_open / 1024)) MiB with the streams open: $(((rss_open - rss_before) * 1024 / FANS)) bytes a stream |
| CPU, streams open, room not yet open | $idle_cpu % of one core |
| CPU, admitting $RATE fans/s | $admitting_cpu % of one core ($(( (events_after - events_before) / PHASE )) events/s pushed) |
| client's last line | $last |
EOF
