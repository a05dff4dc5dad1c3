#!/usr/bin/env bash
# Benchmarks `POST /reserve` of ticketd against a bare hyper server (runtime/examples/bare_hyper.rs)
# in the same run. Read the ratio, not the absolute req/s: on a small shared machine the
# absolute figures move from run to run, the ratio much less.
#
#   bash infra/bench/reserve.sh                     # -t2 -c64 -d10s, embedded adapters
#   STACK=real bash infra/bench/reserve.sh          # on Redis, Kafka and PostgreSQL
#   STACK=real FUNCTIONS=reserve,create-event,add-ticket-category bash infra/bench/reserve.sh
#                                                   # the Redis hot path alone: no relay or
#                                                   # persist sharing the two cores
#   THREADS=2 CONNECTIONS=128 DURATION=20s bash infra/bench/reserve.sh
#
# STACK=real starts what is missing with infra/local-stack.sh and gives the run a Redis
# database (14, emptied first), a PostgreSQL database and a Kafka topic of its own.
#
# Both servers listen on 127.0.0.1 only and are stopped on exit. Not a test: it never fails
# on a figure, only when something could not be measured.
set -euo pipefail

STACK=${STACK:-embedded}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}

readonly TICKETD_PORT=18080 BARE_PORT=18081
readonly TICKETD_URL="http://127.0.0.1:$TICKETD_PORT" BARE_URL="http://127.0.0.1:$BARE_PORT"
readonly SECRET=bench-secret-not-for-production

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly ROOT LUA="$ROOT/infra/bench/reserve.lua"
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
readonly TICKETD="$TARGET_DIR/release/ticketd" BARE="$TARGET_DIR/release/examples/bare_hyper"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'reserve.sh: %s\n' "$*" >&2; exit 1; }

# --- cleanup: stop what we started, by pid; SIGKILL if it does not drain within 5 s ----------
WORK=$(mktemp -d)
pids=()
cleanup() {
  local pid i
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
  if [ -n "${bench_db:-}" ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $bench_db WITH (FORCE)" >/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- wrk --------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk"
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  # A fresh image may have no package lists yet: update only if the plain install fails.
  $sudo apt-get install -y wrk >/dev/null || { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi

# --- build once, then run the binaries directly so each pid is the server itself --------------
log "building (release)"
cargo build --release -p ticketd --bins --examples

# A server already on our ports would be measured instead of ours: refuse.
for port in "$TICKETD_PORT" "$BARE_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "something already listens on 127.0.0.1:$port"
  fi
done

# The real stack's settings, or none: a database and topic of this run's own.
stack_env=()
[ -z "${FUNCTIONS:-}" ] || stack_env+=(FUNCTIONS="$FUNCTIONS")
case $STACK in
  embedded) ;;
  real)
    infra/local-stack.sh
    bench_db="ticketd_bench_$(date +%s)"
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $bench_db" >/dev/null
    redis-cli -n 14 FLUSHDB >/dev/null
    stack_env+=(REDIS_URL=redis://127.0.0.1:6379/14
      DATABASE_URL="postgres://postgres@127.0.0.1:5432/$bench_db"
      KAFKA_BROKERS=127.0.0.1:9092 KAFKA_TOPIC="$bench_db" KAFKA_GROUP="$bench_db")
    ;;
  *) die "STACK is embedded or real, not $STACK" ;;
esac

# env -i: only the settings below, so a stray FUNCTIONS, RESERVATION_TTL, REDIS_URL or
# DATABASE_URL in the caller's environment cannot change what is measured. MAX_IN_FLIGHT is
# far above the connection count so that no request is shed with 503, and the per-user rate
# limit is off: every request comes from the one bench user.
env -i LISTEN_ADDR="127.0.0.1:$TICKETD_PORT" JWT_SECRET="$SECRET" MAX_IN_FLIGHT=100000 \
  RESERVE_RATE_PER_MINUTE=0 \
  RUST_LOG=warn "${stack_env[@]}" "$TICKETD" serve >"$WORK/ticketd.log" 2>&1 &
pids+=($!)
ticketd_pid=$!
"$BARE" "127.0.0.1:$BARE_PORT" >"$WORK/bare.log" 2>&1 &
pids+=($!)
bare_pid=$!

# Waits up to 30 s for a URL to answer 2xx, giving up early if its server died.
wait_for() {
  local url=$1 pid=$2 log_file=$3 i
  for i in $(seq 300); do
    curl -fsS --max-time 1 -o /dev/null "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log_file" >&2; die "server for $url exited"; }
    sleep 0.1
  done
  die "$url did not come up within 30 s"
}
wait_for "$TICKETD_URL/health" "$ticketd_pid" "$WORK/ticketd.log"
wait_for "$BARE_URL/" "$bare_pid" "$WORK/bare.log"

# --- fixtures: tokens, one event, one category with more stock than any run can hold --------
admin_token=$("$TICKETD" token --role admin --sub bench-admin --secret "$SECRET")
user_token=$("$TICKETD" token --role user --sub bench-user --secret "$SECRET")

admin_post() { # path json
  curl -fsS --max-time 5 -X POST -H "Authorization: Bearer $admin_token" \
    -H 'Content-Type: application/json' -d "$2" "$TICKETD_URL$1"
}
event=$(admin_post /events '{"name":"Bench","date":"2030-01-01T20:00:00Z"}')
event_id=$(grep -o '"id":"[^"]*"' <<<"$event" | head -n1 | cut -d'"' -f4)
[ -n "$event_id" ] || die "no id in the create-event answer: $event"
admin_post "/events/$event_id/ticket-category" \
  '{"name":"Floor","total_stock":10000000,"price":10}' >/dev/null

# --- measure ----------------------------------------------------------------------------------
# wrk's own run time plus a margin, so a stuck wrk cannot hang the script.
to_secs() { # 10s | 2m | 1h | 30
  local n=${1%[smh]}
  case $1 in *m) echo $((n * 60)) ;; *h) echo $((n * 3600)) ;; *) echo "$n" ;; esac
}
wrk_bound=$(($(to_secs "$DURATION") + 30))

# Both runs send the very same request (reserve.lua), the bare server just ignores it: the
# difference is then ticketd's own work, not request size.
run_wrk() { # name url
  log "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $2"
  timeout --kill-after=5 "$wrk_bound" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" \
    --latency -s "$LUA" "$2" -- "$user_token" "$event_id" >"$WORK/$1.txt"
  cat "$WORK/$1.txt" >&2
}
run_wrk bare "$BARE_URL/"
run_wrk reserve "$TICKETD_URL/reserve"

# --- report -----------------------------------------------------------------------------------
# One value out of a wrk report; latencies converted to ms (wrk prints us, ms, s or m).
wrk_field() { # file rps|p50|p99|total|non2xx|errors
  awk -v want="$2" '
    function ms(v) {
      if (v ~ /us$/) return v / 1000
      if (v ~ /ms$/) return v + 0
      if (v ~ /m$/)  return v * 60000
      return v * 1000
    }
    want == "rps"    && /^Requests\/sec:/     { print $2 }
    want == "p50"    && $1 == "50%"           { printf "%.3f\n", ms($2) }
    want == "p99"    && $1 == "99%"           { printf "%.3f\n", ms($2) }
    want == "total"  && / requests in /       { print $1 }
    want == "non2xx" && /Non-2xx or 3xx/      { print $NF; found = 1 }
    want == "errors" && /Socket errors:/      { sub(/^ *Socket errors: */, ""); print; found = 1 }
    END { if (!found && want == "non2xx") print 0; if (!found && want == "errors") print "none" }
  ' "$1"
}
for name in bare reserve; do
  for field in rps p50 p99 total non2xx errors; do
    printf -v "${name}_$field" '%s' "$(wrk_field "$WORK/$name.txt" "$field")"
  done
done
[ -n "$bare_rps" ] && [ -n "$reserve_rps" ] || die "could not read Requests/sec from wrk"
ratio=$(awk -v r="$reserve_rps" -v b="$bare_rps" 'BEGIN { printf "%.1f", 100 * r / b }')

availability=$(curl -fsS --max-time 5 "$TICKETD_URL/events/$event_id/availability")
held=$(grep -o '"held":[0-9]*' <<<"$availability" | cut -d: -f2)
created=$(curl -fsS --max-time 5 "$TICKETD_URL/metrics" | awk '$1 == "reservation_total" { print $2 }')
answered_2xx=$((reserve_total - reserve_non2xx))

cat <<EOF

=== POST /reserve ($STACK${FUNCTIONS:+, FUNCTIONS=$FUNCTIONS}) vs bare hyper: -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) CPUs ===
                   req/s       p50 ms     p99 ms    non-2xx   socket errors
bare hyper    $(printf '%10s %12s %10s %10s' "$bare_rps" "$bare_p50" "$bare_p99" "$bare_non2xx")   $bare_errors
POST /reserve $(printf '%10s %12s %10s %10s' "$reserve_rps" "$reserve_p50" "$reserve_p99" "$reserve_non2xx")   $reserve_errors
ratio reserve/bare: $ratio %

availability after the run: $availability
held: $held; holds created (reservation_total): $created; 2xx counted by wrk: $answered_2xx
(wrk does not count requests still in flight when it stops, so held may exceed its 2xx
count by at most the $CONNECTIONS connections.)
EOF
