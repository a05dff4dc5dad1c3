#!/usr/bin/env bash
# Instructions a request, counted by callgrind: what one POST /reserve costs ticketd's own
# threads, the same on a busy machine as on a quiet one (wrk's req/s is not).
#
#   bash infra/bench/callgrind.sh                 # a hold (201), embedded adapters
#   SOLD_OUT=1 bash infra/bench/callgrind.sh      # a sold-out answer (409)
#   BARE=1 bash infra/bench/callgrind.sh          # the bench's bare hyper, same request
#   REQUESTS=5000 ... ; KEEP=1 keeps the callgrind file (its path is printed) for
#   `callgrind_annotate --inclusive=yes FILE`
#
# ticketd runs under valgrind with instrumentation off; after 200 warm-up requests it is
# switched on for REQUESTS requests on one keep-alive connection (each sent in one write, as
# wrk does), then off. Counts are of user space only: the kernel's share is not in them.
set -euo pipefail

REQUESTS=${REQUESTS:-2000}
readonly PORT=18190 SECRET=bench-secret-not-for-production
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
readonly TICKETD="$TARGET_DIR/release/ticketd"
command -v valgrind >/dev/null || apt-get install -y -q valgrind >/dev/null
cargo build --release -p ticketd --bins --examples >&2

WORK=$(mktemp -d)
pid=
cleanup() {
  [ -z "$pid" ] || { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

# env -i before valgrind, not after it: valgrind does not follow an exec.
if [ "${BARE:-0}" = 1 ]; then
  settings=()
  server=("$TARGET_DIR/release/examples/bare_hyper" "127.0.0.1:$PORT")
else
  settings=(LISTEN_ADDR="127.0.0.1:$PORT" JWT_SECRET="$SECRET" RESERVE_RATE_PER_MINUTE=0 RUST_LOG=warn)
  server=("$TICKETD" serve)
fi
env -i "${settings[@]}" "$(command -v valgrind)" --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$WORK/callgrind.out" "${server[@]}" >"$WORK/server.log" 2>&1 &
pid=$!
for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

url="http://127.0.0.1:$PORT"
admin=$("$TICKETD" token --role admin --sub bench-admin --secret "$SECRET")
user=$("$TICKETD" token --role user --sub bench-user --secret "$SECRET")
event=00000000-0000-0000-0000-000000000000
if [ "${BARE:-0}" != 1 ]; then
  post() { curl -fsS -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' -d "$2" "$url$1"; }
  event=$(post /events '{"name":"Bench","date":"2030-01-01T20:00:00Z"}' | grep -o '"id":"[^"]*"' | head -n1 | cut -d'"' -f4)
  stock=10000000
  [ "${SOLD_OUT:-0}" = 1 ] && stock=1
  post "/events/$event/ticket-category" "{\"name\":\"Floor\",\"total_stock\":$stock,\"price\":10}" >/dev/null
fi

# The request of infra/bench/reserve.lua, N times on one connection; prints the statuses.
send() { # count
  python3 - "$PORT" "$user" "$event" "$1" <<'PY'
import collections, socket, sys
port, token, event, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
body = ('{"event_id":"%s","category":"Floor","qty":1}' % event).encode()
request = (f"POST /reserve HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
conn = socket.create_connection(("127.0.0.1", port))
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
statuses, pending = collections.Counter(), b""
for _ in range(n):
    conn.sendall(request)
    while b"\r\n\r\n" not in pending:
        pending += conn.recv(65536)
    head, pending = pending.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    length = next((int(l.split(b":")[1]) for l in lines if l.lower().startswith(b"content-length:")), 0)
    while len(pending) < length:
        pending += conn.recv(65536)
    pending = pending[length:]
    statuses[int(lines[0].split()[1])] += 1
print(dict(statuses))
PY
}
send 200 >/dev/null
callgrind_control -i on "$pid" >/dev/null
answered=$(send "$REQUESTS")
callgrind_control -i off "$pid" >/dev/null
kill -TERM "$pid"
wait "$pid" 2>/dev/null || true
pid=
total=$(callgrind_annotate "$WORK/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
what=ticketd
[ "${BARE:-0}" = 1 ] && what="bare hyper"
echo "$what: $REQUESTS requests answered $answered; $total instructions, $((total / REQUESTS)) a request"
[ "${KEEP:-0}" != 1 ] || echo "callgrind file: $WORK/callgrind.out"
