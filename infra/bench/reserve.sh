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
#   STACK=cluster bash infra/bench/reserve.sh       # on the local Redis Cluster, with and
#                                                   # without the replica wait, and on one
#                                                   # Redis, in the same run
#   THREADS=2 CONNECTIONS=128 DURATION=20s bash infra/bench/reserve.sh
#   SOLD_OUT=1 bash infra/bench/reserve.sh          # the herd after a sell-out: the category
#                                                   # has one ticket, taken before wrk starts,
#                                                   # so every answer measured is 409 sold_out
#
# STACK=real starts what is missing with infra/local-stack.sh and gives the run a Redis
# database (14, emptied first), a PostgreSQL database and a Kafka topic of its own;
# STACK=cluster also starts the local cluster (local-stack.sh --cluster) and empties it.
#
# Both servers listen on 127.0.0.1 only and are stopped on exit. Not a test: it never fails
# on a figure, only when something could not be measured.
set -euo pipefail

STACK=${STACK:-embedded}
SOLD_OUT=${SOLD_OUT:-0}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}

readonly BARE_PORT=18081 BARE_URL="http://127.0.0.1:18081"
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
bench_dbs=()
cleanup() {
  local pid i
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
  local database
  for database in "${bench_dbs[@]}"; do
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null || true
  done
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

# The ticketd servers to measure, each "name port setting...": the real stack's settings, or
# none; a database and topic of this run's own.
common_env=()
[ -z "${FUNCTIONS:-}" ] || common_env+=(FUNCTIONS="$FUNCTIONS")
servers=()
real_stack() { # database -> the settings of a real stack but for Redis
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $1" >/dev/null
  echo "DATABASE_URL=postgres://postgres@127.0.0.1:5432/$1 KAFKA_BROKERS=127.0.0.1:9092 KAFKA_TOPIC=$1 KAFKA_GROUP=$1"
}
one_redis() { redis-cli -n 14 FLUSHDB >/dev/null; echo "REDIS_URL=redis://127.0.0.1:6379/14"; }
readonly CLUSTER=REDIS_CLUSTER_NODES=127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002
run_id=$(date +%s)
case $STACK in
  embedded) servers+=("embedded 18080") ;;
  real)
    infra/local-stack.sh
    bench_dbs=("ticketd_bench_$run_id")
    servers+=("real 18080 $(one_redis) $(real_stack "${bench_dbs[0]}")")
    ;;
  cluster)
    infra/local-stack.sh
    infra/local-stack.sh --cluster
    redis-cli --cluster call 127.0.0.1:7000 FLUSHALL >/dev/null
    bench_dbs=("ticketd_bench_$run_id" "ticketd_bench_${run_id}_c" "ticketd_bench_${run_id}_n")
    servers+=("one-redis 18080 $(one_redis) $(real_stack "${bench_dbs[0]}")"
      "cluster 18082 $CLUSTER $(real_stack "${bench_dbs[1]}")"
      "cluster-no-wait 18083 $CLUSTER REDIS_WAIT_REPLICAS=0 $(real_stack "${bench_dbs[2]}")")
    ;;
  *) die "STACK is embedded, real or cluster, not $STACK" ;;
esac

# A server already on our ports would be measured instead of ours: refuse.
for server in "${servers[@]}" "bare $BARE_PORT"; do
  read -r _ port _ <<<"$server"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "something already listens on 127.0.0.1:$port"
  fi
done

# env -i: only the settings below, so a stray FUNCTIONS, RESERVATION_TTL, REDIS_URL or
# DATABASE_URL in the caller's environment cannot change what is measured. MAX_IN_FLIGHT is
# far above the connection count so that no request is shed with 503, and the per-user rate
# limit is off: every request comes from the one bench user.
for server in "${servers[@]}"; do
  read -r name port settings <<<"$server"
  # shellcheck disable=SC2086 # settings are words of NAME=value
  env -i LISTEN_ADDR="127.0.0.1:$port" JWT_SECRET="$SECRET" MAX_IN_FLIGHT=100000 \
    RESERVE_RATE_PER_MINUTE=0 RUST_LOG=warn "${common_env[@]}" $settings \
    "$TICKETD" serve >"$WORK/$name.log" 2>&1 &
  pids+=($!)
  printf -v "pid_$port" '%s' "$!"
done
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
for server in "${servers[@]}"; do
  read -r name port _ <<<"$server"
  pid_var="pid_$port"
  wait_for "http://127.0.0.1:$port/health" "${!pid_var}" "$WORK/$name.log"
done
wait_for "$BARE_URL/" "$bare_pid" "$WORK/bare.log"

# --- fixtures: tokens; per server, one event and one category with more stock than any run
# holds, or (SOLD_OUT=1) with one ticket, held here so that the category is sold out
admin_token=$("$TICKETD" token --role admin --sub bench-admin --secret "$SECRET")
user_token=$("$TICKETD" token --role user --sub bench-user --secret "$SECRET")

admin_post() { # base-url path json
  curl -fsS --max-time 5 -X POST -H "Authorization: Bearer $admin_token" \
    -H 'Content-Type: application/json' -d "$3" "$1$2"
}
reserve_status() { # base-url event -> the HTTP status of one reserve of one ticket
  curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $user_token" -H 'Content-Type: application/json' \
    -d "{\"event_id\":\"$2\",\"category\":\"Floor\",\"qty\":1}" "$1/reserve"
}
stock=10000000
[ "$SOLD_OUT" = 1 ] && stock=1
for server in "${servers[@]}"; do
  read -r name port _ <<<"$server"
  url="http://127.0.0.1:$port"
  event=$(admin_post "$url" /events '{"name":"Bench","date":"2030-01-01T20:00:00Z"}')
  event_id=$(grep -o '"id":"[^"]*"' <<<"$event" | head -n1 | cut -d'"' -f4)
  [ -n "$event_id" ] || die "no id in the create-event answer: $event"
  admin_post "$url" "/events/$event_id/ticket-category" \
    "{\"name\":\"Floor\",\"total_stock\":$stock,\"price\":10}" >/dev/null
  printf -v "event_$port" '%s' "$event_id"
  if [ "$SOLD_OUT" = 1 ]; then
    held=$(reserve_status "$url" "$event_id")
    refused=$(reserve_status "$url" "$event_id")
    [ "$held $refused" = "201 409" ] || die "$name: selling out answered $held then $refused, not 201 then 409"
  fi
done

# The reserve answers a server counted, by status, from its /metrics: "status count" lines.
reserve_statuses() { # port
  curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" | awk '
    /^http_requests_total\{/ && /function="reserve"/ {
      match($0, /status="[0-9]+"/); print substr($0, RSTART + 8, RLENGTH - 9), $2
    }' | sort
}
for server in "${servers[@]}"; do
  read -r name port _ <<<"$server"
  reserve_statuses "$port" >"$WORK/$name.statuses.before"
done

# --- measure ----------------------------------------------------------------------------------
# wrk's own run time plus a margin, so a stuck wrk cannot hang the script.
to_secs() { # 10s | 2m | 1h | 30
  local n=${1%[smh]}
  case $1 in *m) echo $((n * 60)) ;; *h) echo $((n * 3600)) ;; *) echo "$n" ;; esac
}
wrk_bound=$(($(to_secs "$DURATION") + 30))

# Both runs send the very same request (reserve.lua), the bare server just ignores it: the
# difference is then ticketd's own work, not request size.
run_wrk() { # name url event
  log "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $2"
  timeout --kill-after=5 "$wrk_bound" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" \
    --latency -s "$LUA" "$2" -- "$user_token" "$3" >"$WORK/$1.txt"
  cat "$WORK/$1.txt" >&2
}
run_wrk bare "$BARE_URL/" none
for server in "${servers[@]}"; do
  read -r name port _ <<<"$server"
  event_var="event_$port"
  run_wrk "$name" "http://127.0.0.1:$port/reserve" "${!event_var}"
done

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
read_fields() { # name
  local field
  for field in rps p50 p99 total non2xx errors; do
    printf -v "$field" '%s' "$(wrk_field "$WORK/$1.txt" "$field")"
  done
}
read_fields bare
bare_rps=$rps
[ -n "$bare_rps" ] || die "could not read Requests/sec from wrk"
echo
what="POST /reserve"
[ "$SOLD_OUT" = 1 ] && what="POST /reserve, sold out (409 expected)"
echo "=== $what ($STACK${FUNCTIONS:+, FUNCTIONS=$FUNCTIONS}) vs bare hyper: -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) CPUs ==="
printf '%-16s %10s %10s %10s %9s %8s   %s\n' "" "req/s" "p50 ms" "p99 ms" "non-2xx" "ratio" "socket errors"
printf '%-16s %10s %10s %10s %9s %8s   %s\n' "bare hyper" "$rps" "$p50" "$p99" "$non2xx" "" "$errors"
for server in "${servers[@]}"; do
  read -r name port _ <<<"$server"
  read_fields "$name"
  [ -n "$rps" ] || die "could not read Requests/sec of $name from wrk"
  ratio=$(awk -v r="$rps" -v b="$bare_rps" 'BEGIN { printf "%.1f %%", 100 * r / b }')
  printf '%-16s %10s %10s %10s %9s %8s   %s\n' "POST /reserve" "$rps" "$p50" "$p99" "$non2xx" "$ratio" "$errors on $name"
  event_var="event_$port"
  availability=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/events/${!event_var}/availability" 2>/dev/null ||
    echo "(get-availability not mounted)")
  created=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" | awk '$1 == "reservation_total" { print $2 }')
  echo "    $name after the run: $availability; holds created: $created; 2xx counted by wrk: $((total - non2xx))"
  # What the server answered during the run, by status (its own count, exact): in sold-out
  # mode every answer must be 409, otherwise 201.
  expected=201
  [ "$SOLD_OUT" = 1 ] && expected=409
  answered=$(reserve_statuses "$port" | join -a1 -e0 -o 0,1.2,2.2 - "$WORK/$name.statuses.before" |
    awk '$2 - $3 > 0 { printf "%s%s: %d", sep, $1, $2 - $3; sep = ", " }')
  echo "    $name answered during the run: ${answered:-nothing}"
  unexpected=$(reserve_statuses "$port" | join -a1 -e0 -o 0,1.2,2.2 - "$WORK/$name.statuses.before" |
    awk -v want="$expected" '$1 != want && $2 - $3 > 0 { n += $2 - $3 } END { print n + 0 }')
  if [ "$unexpected" -gt 0 ]; then
    echo "    !! $name: $unexpected answers other than $expected: the figures above are not of the expected path"
  fi
done
echo "(wrk does not count requests still in flight when it stops, so holds may exceed its 2xx"
echo "count by at most the $CONNECTIONS connections.)"
