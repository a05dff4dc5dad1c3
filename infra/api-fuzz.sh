#!/usr/bin/env bash
# Fuzzes the HTTP API against its OpenAPI document (docs/openapi.json) with schemathesis
# (configured by infra/api-fuzz.toml): every operation with a user's token, with an admin's, and
# with each role where it belongs, following the document's links (create event -> add
# category -> reserve -> confirm). Checks: no 5xx, every response matches
# the documented status codes and schemas, schema-valid requests are accepted. Then the stock
# invariant, from the server's own gauges: available + held + sold == total in every category;
# on the real stack, PostgreSQL must agree with Redis once the stream has caught up.
# Bounded by --max-examples and fixed seeds, so a run is reproducible and short.
#
#   infra/api-fuzz.sh                                   # the bounded run of the test suite
#   STACK=embedded EXAMPLES=500 SEEDS="1 2 3 4 5" infra/api-fuzz.sh   # a longer hunt
#
# STACK is embedded, real or all (default). The real stack uses what infra/local-stack.sh
# started, with Redis database 13, a PostgreSQL database and a Kafka topic of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${EXAMPLES:-25}
SEEDS=${SEEDS:-"1 2"}
STACK=${STACK:-all}
REDIS_DB=13
FUZZ_DB=ticketd_fuzz
SECRET=api-fuzz-secret-api-fuzz-secret-32b

case $STACK in
    all) stacks=(embedded real) ;;
    embedded | real) stacks=("$STACK") ;;
    *) echo "api-fuzz.sh: STACK is embedded, real or all, not $STACK" >&2; exit 2 ;;
esac
if ! st --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    pip install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
cargo build -q -p ticketd
TICKETD=${CARGO_TARGET_DIR:-$ROOT/target}/debug/ticketd

WORK=$(mktemp -d)
SERVER=
drop_real_state() {
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $FUZZ_DB WITH (FORCE)" >/dev/null 2>&1 || true
    redis-cli -h 127.0.0.1 -n "$REDIS_DB" FLUSHDB >/dev/null 2>&1 || true
}
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; fi
    [[ " ${stacks[*]} " == *" real "* ]] && drop_real_state
    rm -rf "$WORK"
}
trap cleanup EXIT

# fuzz <stack> <database url, or "" when embedded> [VAR=value...]: one ticketd on a free
# port, every role and seed against it, then the stock check.
fuzz() {
    local stack=$1 database_url=$2 port failed=0
    shift 2
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    local base="http://127.0.0.1:$port"
    # The rate limit is off: the fuzzer reserves far faster than a person as one user.
    env -i LISTEN_ADDR="127.0.0.1:$port" JWT_SECRET="$SECRET" RESERVE_RATE_PER_MINUTE=0 \
        RUST_LOG=warn "$@" "$TICKETD" serve >"$WORK/ticketd-$stack.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 300); do curl -fs "$base/health" >/dev/null && break; sleep 0.1; done

    local user admin
    user=$("$TICKETD" token --role user --sub fuzz-user --secret "$SECRET")
    admin=$("$TICKETD" token --role admin --sub fuzz-admin --secret "$SECRET")
    # Three passes (see infra/api-fuzz.toml): as a user, as an admin, and as a sale.
    for pass in user admin sale; do
        local user_token=$user admin_token=$admin
        case $pass in
            user) admin_token=$user ;;
            admin) user_token=$admin ;;
        esac
        for seed in $SEEDS; do
            echo "==> $stack: schemathesis, $pass pass, seed $seed, $EXAMPLES examples per operation"
            # From the scratch directory: schemathesis writes its state next to where it runs.
            (cd "$WORK" && USER_TOKEN=$user_token ADMIN_TOKEN=$admin_token timeout 300 \
                st --config-file "$ROOT/infra/api-fuzz.toml" run "$ROOT/docs/openapi.json" --url "$base" \
                --checks all --max-examples "$EXAMPLES" --seed "$seed" \
                --generation-database none --no-color) >"$WORK/st.txt" 2>&1 || failed=1
            grep -E "generated|failure|ST[0-9]+ |API Links" "$WORK/st.txt" || true
            if [ "$failed" -ne 0 ]; then
                cat "$WORK/st.txt"
                echo "==> the last of ticketd's log:"
                tail -n 20 "$WORK/ticketd-$stack.log"
                return 1
            fi
        done
    done

    # Whatever the fuzzer sent, the server never failed on its side, and no ticket was lost.
    python3 infra/check-stock.py "$base" $database_url || failed=1
    kill "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    SERVER=
    return "$failed"
}

for stack in "${stacks[@]}"; do
    case $stack in
        embedded) fuzz embedded "" ;;
        real)
            infra/local-stack.sh
            drop_real_state
            psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $FUZZ_DB" >/dev/null
            database_url="postgres://postgres@127.0.0.1:5432/$FUZZ_DB"
            fuzz real "$database_url" \
                REDIS_URL="redis://127.0.0.1:6379/$REDIS_DB" DATABASE_URL="$database_url" \
                KAFKA_BROKERS=127.0.0.1:9092 KAFKA_TOPIC="api-fuzz-$$-$RANDOM" KAFKA_GROUP="api-fuzz-$$"
            ;;
    esac
done
