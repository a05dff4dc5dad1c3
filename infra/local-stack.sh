#!/usr/bin/env bash
# Starts what is missing of the real stack on this (Debian) machine, without Docker:
# Redis (AOF on), PostgreSQL with `ticketd` and `ticketd_test` databases, and the tansu Kafka-API broker
# (Apache Kafka itself cannot be installed here). Idempotent: what already answers is left alone.
#
#   infra/local-stack.sh          start what is missing
#   infra/local-stack.sh --stop-kafka | --start-kafka   (fault tests stop and restart the broker)
#
# State lives in $STACK_DIR (default /tmp/ticketd-stack). Only loopback addresses are used.
set -euo pipefail

# Absolute: tansu reads `sqlite://` paths relative to its working directory otherwise.
STACK_DIR=$(realpath -m "${STACK_DIR:-/tmp/ticketd-stack}")
REDIS_PORT=${REDIS_PORT:-6379}
KAFKA_PORT=${KAFKA_PORT:-9092}
TANSU=${TANSU:-$HOME/.cargo/bin/tansu}
mkdir -p "$STACK_DIR"

say() { echo "local-stack: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
    for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.2; done
    say "nothing answers on 127.0.0.1:$1"; return 1
}
apt_install() {
    command -v "$1" >/dev/null && return 0
    say "installing $2"
    apt-get install -y -q "$2" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$2" >/dev/null; }
}

start_redis() {
    if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then return 0; fi
    apt_install redis-server redis-server
    say "starting redis on 127.0.0.1:$REDIS_PORT"
    mkdir -p "$STACK_DIR/redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --appendonly yes \
        --maxmemory-policy noeviction \
        --dir "$STACK_DIR/redis" --logfile "$STACK_DIR/redis.log"
    wait_port "$REDIS_PORT"
}

start_postgres() {
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        apt_install pg_ctlcluster postgresql
        local version
        version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
        [ -n "$version" ] || { say "no PostgreSQL cluster after install"; return 1; }
        # A fresh Debian cluster asks loopback clients for a password; the tests connect with trust.
        local hba=/etc/postgresql/$version/main/pg_hba.conf
        if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
            sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
        fi
        say "starting postgresql $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
        for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
    fi
    # `ticketd` for running the stack, `ticketd_test` for the adapters' tests.
    local database
    for database in ticketd ticketd_test; do
        if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname = '$database'" | grep -q 1; then
            psql -h 127.0.0.1 -U postgres -qc "create database $database" >/dev/null
        fi
    done
}

install_tansu() {
    [ -x "$TANSU" ] && return 0
    say "building the tansu broker once (11 to 14 minutes on 2 cores)"
    cargo install tansu --version 0.6.0 --locked --features libsql,dynostore >&2
}

start_kafka() {
    if port_open "$KAFKA_PORT"; then return 0; fi
    install_tansu
    say "starting tansu on 127.0.0.1:$KAFKA_PORT (sqlite storage in $STACK_DIR/tansu)"
    mkdir -p "$STACK_DIR/tansu"
    nohup "$TANSU" broker \
        --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --storage-engine "sqlite:///$STACK_DIR/tansu/tansu.db" \
        >>"$STACK_DIR/tansu.log" 2>&1 &
    echo $! >"$STACK_DIR/tansu.pid"
    wait_port "$KAFKA_PORT"
}

stop_kafka() {
    if [ -f "$STACK_DIR/tansu.pid" ]; then
        kill "$(cat "$STACK_DIR/tansu.pid")" 2>/dev/null || true
        rm -f "$STACK_DIR/tansu.pid"
    fi
    pkill -f "tansu broker --listener-url tcp://127.0.0.1:$KAFKA_PORT" 2>/dev/null || true
    for _ in $(seq 1 50); do port_open "$KAFKA_PORT" || return 0; sleep 0.2; done
    say "the broker still answers on $KAFKA_PORT"; return 1
}

case "${1:-}" in
    --stop-kafka) stop_kafka ;;
    --start-kafka) start_kafka ;;
    "")
        start_redis
        start_postgres
        start_kafka
        say "ready: REDIS_URL=redis://127.0.0.1:$REDIS_PORT DATABASE_URL=postgres://postgres@127.0.0.1:5432/ticketd KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
        ;;
    *) echo "usage: $0 [--stop-kafka|--start-kafka]" >&2; exit 2 ;;
esac
