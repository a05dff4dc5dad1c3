#!/usr/bin/env bash
# Runs the README's quick start as written: reads the fenced blocks of its `## Quick start`
# section, starts a `ticketd serve` of its own on a free 127.0.0.1 port in place of the first
# block (`cargo run --release`), and runs every other block in one bash (set -euo pipefail),
# with only the API's address (http://127.0.0.1:8080) and, for QUICKSTART_PROFILE=debug, the
# binary's path replaced. So the README and this test cannot drift apart. Then checks what
# those commands did: the event and its VIP category exist, the hold was confirmed, k6 passed
# and held exactly the 2 tickets the fan had left (max_per_user 4), and the stock adds up.
# Bounded: the commands get QUICKSTART_TIMEOUT seconds (180).
#
#   bash infra/quickstart-test.sh                      # release, as the README builds it
#   QUICKSTART_PROFILE=debug bash infra/quickstart-test.sh   # the test command's build
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROFILE=${QUICKSTART_PROFILE:-release}
TIMEOUT=${QUICKSTART_TIMEOUT:-180}

# shellcheck source=lib/stack.sh
source infra/lib/stack.sh
stack_init quickstart-test.sh
trap stack_cleanup EXIT
trap 'exit 130' INT TERM

stack_apt_install jq jq
K6=$(bash k6/install.sh)
stack_ticketd_build "$PROFILE" QUICKSTART_PROFILE

# --- the README's commands ---------------------------------------------------------------------
python3 - README.md "$STACK_WORK/blocks" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
section = re.search(r"^## Quick start\n(.*?)(?=^## )", text, re.S | re.M)
if not section:
    sys.exit("README.md has no '## Quick start' section")
blocks = re.findall(r"^```sh\n(.*?)^```", section.group(1), re.S | re.M)
if len(blocks) < 2:
    sys.exit(f"the quick start has {len(blocks)} sh blocks, not the start and the commands")
os.makedirs(sys.argv[2])
for i, block in enumerate(blocks):
    open(f"{sys.argv[2]}/{i}.sh", "w").write(block)
PY
start=$(cat "$STACK_WORK/blocks/0.sh")
[ "$start" = "cargo run --release" ] ||
  stack_die "the quick start's first block is not 'cargo run --release' but: $start"

# In its place: the same server (`serve` is the default command, with no setting at all, so the
# development secret), on a free port.
stack_ticketd_start quickstart
stack_log "ticketd ($PROFILE) on $BASE_URL, as 'cargo run --release' would start it"

script=$STACK_WORK/quickstart.sh
{
  for block in "$STACK_WORK"/blocks/[1-9]*.sh; do cat "$block"; done
  cat <<'CHECKS'
# --- the test's own checks of what the README's commands did ------------------------------
echo "quickstart-test: EVENT=$EVENT HOLD=$HOLD"
[[ $EVENT =~ ^[0-9a-f-]{36}$ ]] || { echo "no event id: $EVENT"; exit 1; }
[[ $HOLD =~ ^[0-9a-f-]{36}$ ]] || { echo "no reservation id: $HOLD"; exit 1; }
curl -fsS $API/reservations/$HOLD -H "Authorization: Bearer $FAN" | jq -e '.status == "confirmed" and .qty == 2' >/dev/null ||
  { echo "the hold was not confirmed"; exit 1; }
# 2 sold by the curl commands, 2 held by k6 (max_per_user 4), the rest available.
curl -fsS $API/events/$EVENT/availability | jq -e '.categories | length == 1 and .[0].name == "VIP"
  and .[0].sold == 2 and .[0].held == 2 and .[0].available == 496 and .[0].total == 500' >/dev/null ||
  { echo "the VIP category does not add up: $(curl -s $API/events/$EVENT/availability)"; exit 1; }
CHECKS
} >"$script"
grep -q 'http://127.0.0.1:8080' "$script" || stack_die "the quick start no longer names http://127.0.0.1:8080"
grep -q './target/release/ticketd' "$script" || stack_die "the quick start no longer names ./target/release/ticketd"
sed -i "s#http://127.0.0.1:8080#$BASE_URL#g; s#\./target/release/ticketd#$TICKETD#g" "$script"

# As a user's shell: only PATH (with k6 and the tools), HOME and a locale; no JWT_SECRET, no K6_*.
stack_log "running the quick start's commands (at most $TIMEOUT s)"
rc=0
env -i PATH="$(dirname "$K6"):/usr/local/bin:/usr/bin:/bin" HOME="$HOME" LANG=C.UTF-8 \
  timeout --kill-after=10 "$TIMEOUT" bash -euo pipefail "$script" >"$STACK_WORK/quickstart.log" 2>&1 9>&- || rc=$?
cat "$STACK_WORK/quickstart.log"
[ "$rc" -eq 0 ] || stack_die "the quick start's commands failed (exit $rc)"

# k6's own summary: the checks all passed, and the fan held exactly its last 2 tickets.
summary_count() { sed -n "s/^ *$1[ .]*: \([0-9][0-9]*\) .*/\1/p" "$STACK_WORK/quickstart.log" | head -n1; }
held=$(summary_count held)
[ "$held" = 2 ] || stack_die "k6's summary says held ${held:-nothing}, not 2"
stack_log "quick start passed: k6 held $held, limit_exceeded $(summary_count limit_exceeded), rate_limited $(summary_count rate_limited)"
