#!/usr/bin/env bash
# Fuzzes the HTTP API against its OpenAPI document (docs/openapi.json) with schemathesis
# (configured by infra/api-fuzz.toml): every operation with a user's token, with an admin's, and
# with each role where it belongs, following the document's links (create event -> add
# category -> reserve -> confirm; create event -> waiting room -> join the queue -> place, event
# stream). Checks: no 5xx, every response matches
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
SECRET=api-fuzz-secret-api-fuzz-secret-32b

case $STACK in
    all) stacks=(embedded real) ;;
    embedded | real) stacks=("$STACK") ;;
    *) echo "api-fuzz.sh: STACK is embedded, real or all, not $STACK" >&2; exit 2 ;;
esac
if ! st --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    pip install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
# shellcheck source=lib/stack.sh
source infra/lib/stack.sh
stack_init api-fuzz.sh
trap stack_cleanup EXIT
stack_ticketd_build debug PROFILE

# fuzz <stack> <database url, or "" when embedded> [VAR=value...]: one ticketd on a free
# port, every role and seed against it, then the stock check.
fuzz() {
    local stack=$1 database_url=$2 failed=0
    shift 2
    # The rate limit is off: the fuzzer reserves far faster than a person as one user.
    stack_ticketd_start "$stack" JWT_SECRET="$SECRET" RESERVE_RATE_PER_MINUTE=0 "$@"
    local base=$BASE_URL

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
            (cd "$STACK_WORK" && USER_TOKEN=$user_token ADMIN_TOKEN=$admin_token timeout 300 \
                st --config-file "$ROOT/infra/api-fuzz.toml" run "$ROOT/docs/openapi.json" --url "$base" \
                --max-examples "$EXAMPLES" --seed "$seed" \
                --generation-database none --no-color) >"$STACK_WORK/st.txt" 2>&1 || failed=1
            grep -E "generated|failure|ST[0-9]+ |API Links" "$STACK_WORK/st.txt" || true
            if [ "$failed" -ne 0 ]; then
                cat "$STACK_WORK/st.txt"
                echo "==> the last of ticketd's log:"
                tail -n 20 "$STACK_WORK/ticketd-$stack.log"
                return 1
            fi
        done
    done

    # Whatever the fuzzer sent, the server never failed on its side, and no ticket was lost.
    python3 infra/check-stock.py "$base" $database_url || failed=1
    stack_ticketd_stop
    return "$failed"
}

for stack in "${stacks[@]}"; do
    case $stack in
        embedded) fuzz embedded "" ;;
        real)
            stack_local_up
            stack_slice_open ticketd_fuzz "$REDIS_DB"
            fuzz real "$STACK_DATABASE_URL" "${STACK_SLICE_ENV[@]}"
            stack_slice_close
            ;;
    esac
done
