#!/usr/bin/env bash
# Fuzzes the HTTP API against its OpenAPI document (docs/openapi.json) with schemathesis:
# every operation, with a user token and with an admin token, following the document's links
# (create event -> add category -> reserve -> confirm). Checks: no 5xx, every response matches
# the documented status codes and schemas, schema-valid requests are accepted. Bounded by
# --max-examples and fixed seeds, so a run is reproducible and takes well under a minute.
#
#   infra/api-fuzz.sh                 # the bounded run of the test suite
#   EXAMPLES=500 SEEDS="1 2 3 4 5" infra/api-fuzz.sh     # a longer hunt
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${EXAMPLES:-25}
SEEDS=${SEEDS:-"1 2"}
SECRET=api-fuzz-secret-api-fuzz-secret-32b

if ! st --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    pip install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
cargo build -q -p ticketd
TICKETD=${CARGO_TARGET_DIR:-$ROOT/target}/debug/ticketd

WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The rate limit is off: the fuzzer reserves far faster than a person as one user.
env -i LISTEN_ADDR="127.0.0.1:$PORT" JWT_SECRET="$SECRET" RESERVE_RATE_PER_MINUTE=0 RUST_LOG=warn \
    "$TICKETD" serve >"$WORK/ticketd.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done

failed=0
for role in user admin; do
    token=$("$TICKETD" token --role "$role" --sub "fuzz-$role" --secret "$SECRET")
    for seed in $SEEDS; do
        echo "==> schemathesis as $role, seed $seed, $EXAMPLES examples per operation"
        # From the scratch directory: schemathesis writes its state next to where it runs.
        (cd "$WORK" && timeout 300 st run "$ROOT/docs/openapi.json" --url "http://127.0.0.1:$PORT" \
            -H "Authorization: Bearer $token" --checks all --max-examples "$EXAMPLES" \
            --seed "$seed" --generation-database none --no-color) >"$WORK/st.txt" 2>&1 || failed=1
        grep -E "generated|failure|ST[0-9]+ " "$WORK/st.txt" || true
        [ "$failed" -eq 0 ] || { cat "$WORK/st.txt"; break 2; }
    done
done

# Whatever the fuzzer sent, the server never failed on its side.
server_errors=$(curl -fs "http://127.0.0.1:$PORT/metrics" | awk '/^http_requests_total/ && /status="5/ { n += $2 } END { print n + 0 }')
echo "==> 5xx answered during the fuzzing: $server_errors"
[ "$server_errors" -eq 0 ] || failed=1
exit "$failed"
