#!/usr/bin/env bash
# Starts what is missing of the real stack on this (Debian) machine, without Docker:
# Redis (AOF on), PostgreSQL with `ticketd` and `ticketd_test` databases, and the tansu Kafka-API broker
# (Apache Kafka itself cannot be installed here). Idempotent: what already answers is left alone.
#
#   infra/local-stack.sh          start what is missing
#   infra/local-stack.sh --stop-kafka | --start-kafka   (fault tests stop and restart the broker)
#   infra/local-stack.sh --cluster | --stop-cluster     a 6-node Redis Cluster on 127.0.0.1:7000-7005
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

# A Redis Cluster of 3 masters and 3 replicas on 127.0.0.1:7000-7005. A node that is down is
# started again with its own nodes.conf, so it rejoins (a killed master comes back as a
# replica). `cluster-require-full-coverage no`: while a master fails over, only its slots pause.
CLUSTER_PORTS=(7000 7001 7002 7003 7004 7005)
CLUSTER_NODE_TIMEOUT_MS=${CLUSTER_NODE_TIMEOUT_MS:-2000}

# Every node sees the cluster ok, and every master has a replica in sync.
cluster_ready() {
    local port online=0
    for port in "${CLUSTER_PORTS[@]}"; do
        redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
        redis-cli -p "$port" info replication | grep -q 'state=online' && online=$((online + 1))
    done
    [ "$online" = $((${#CLUSTER_PORTS[@]} / 2)) ]
}

start_cluster() {
    apt_install redis-server redis-server
    local port
    for port in "${CLUSTER_PORTS[@]}"; do
        redis-cli -p "$port" ping >/dev/null 2>&1 && continue
        mkdir -p "$STACK_DIR/cluster/$port"
        say "starting redis cluster node on 127.0.0.1:$port"
        redis-server --daemonize yes --bind 127.0.0.1 --port "$port" \
            --cluster-enabled yes --cluster-config-file nodes.conf \
            --cluster-node-timeout "$CLUSTER_NODE_TIMEOUT_MS" --cluster-require-full-coverage no \
            --appendonly yes --maxmemory-policy noeviction \
            --dir "$STACK_DIR/cluster/$port" --logfile "$STACK_DIR/cluster/$port.log" \
            --pidfile "$STACK_DIR/cluster/$port.pid"
        wait_port "$port"
    done
    # A node that knows only itself has never joined: make the cluster once.
    if [ "$(redis-cli -p "${CLUSTER_PORTS[0]}" cluster info | grep -c '^cluster_known_nodes:1\b')" = 1 ]; then
        say "creating the cluster (3 masters, 3 replicas)"
        redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}") \
            --cluster-replicas 1 --cluster-yes >/dev/null
    fi
    for _ in $(seq 1 150); do cluster_ready && return 0; sleep 0.2; done
    say "the cluster on ${CLUSTER_PORTS[*]} is not ok"; return 1
}

stop_cluster() {
    local port
    for port in "${CLUSTER_PORTS[@]}"; do
        redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    done
}

case "${1:-}" in
    --stop-kafka) stop_kafka ;;
    --start-kafka) start_kafka ;;
    --cluster)
        start_cluster
        say "ready: REDIS_CLUSTER_NODES=$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}" | sed 's/,$//')"
        ;;
    --stop-cluster) stop_cluster ;;
    "")
        start_redis
        start_postgres
        start_kafka
        say "ready: REDIS_URL=redis://127.0.0.1:$REDIS_PORT DATABASE_URL=postgres://postgres@127.0.0.1:5432/ticketd KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
        ;;
    *) echo "usage: $0 [--stop-kafka|--start-kafka|--cluster|--stop-cluster]" >&2; exit 2 ;;
esac
