#!/usr/bin/env bash
# Proves that infra/docker-compose.yml runs, unmodified: installs Docker when missing, makes
# the images that cannot be pulled (infra/images/build.sh), validates every profile, builds
# ticketd's image from infra/Dockerfile, then for each profile brings the stack up (all but
# Grafana, which has no stand-in), waits for every service's health check and runs the
# black-box tests of runtime/tests/deployed.rs through 127.0.0.1 only: the whole flow, a
# 2,000-for-500 race, and (per-function) the reserve container killed and restarted in the
# middle of a load; the cluster profile's sale must live on its Redis Cluster. PostgreSQL inside the stack must end with exactly the final states.
# Prometheus must scrape every ticketd container and send to the stack's Alertmanager.
# The stack is always taken down with its volumes, also on failure; nothing may be left.
#
#   infra/compose-test.sh                        every profile
#   PROFILES=per-function infra/compose-test.sh  one of them
#   FRESH=1 infra/compose-test.sh                as on a clean machine: every stand-in and
#                                                the image built again, without cache
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILES=${PROFILES:-all-in-one per-function cluster}
# A project of its own, so a user's `ticketd` stack is never touched.
PROJECT=ticketd-compose-test
COMPOSE_YML=infra/docker-compose.yml
PORT=${TICKETD_PORT:-8080}
PROMETHEUS=${PROMETHEUS_PORT:-9090}
ALERTMANAGER=${ALERTMANAGER_PORT:-9093}
FRESH=${FRESH:-}

stage() {
    local name=$1 started=$SECONDS
    shift
    echo "==> compose: $name"
    "$@"
    echo "==> compose: $name took $((SECONDS - started)) s"
}
say() { echo "compose-test: $*" >&2; }
compose() { docker-compose -p "$PROJECT" -f "$COMPOSE_YML" "$@"; }

# The stack's settings, from the environment as a user's would be. A secret of the run's own
# and production mode (which refuses a short or missing secret); holds short enough for the
# flow to watch one expire; no per-user rate (the tests reserve many times as one user).
export JWT_SECRET
JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export TICKETD_ENV=production RESERVATION_TTL=10 RESERVE_RATE_PER_MINUTE=0
export TICKETD_PORT=$PORT PROMETHEUS_PORT=$PROMETHEUS ALERTMANAGER_PORT=$ALERTMANAGER
export TICKETD_URL=http://127.0.0.1:$PORT
# docker-compose 1.29 builds through the Docker API (the legacy builder), which honours
# `build.network: host`; the same for the plain `docker` calls here.
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

install_tools() {
    local missing=()
    # dockerd, not docker: a machine may have a Docker client and no engine.
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
}

# There is no systemd here: start the daemon in the background when nothing answers.
start_dockerd() {
    docker info >/dev/null 2>&1 && return 0
    say "starting dockerd (log: /tmp/dockerd.log)"
    # With every inherited descriptor closed (Popen's close_fds) and a session of its own: run
    # under `flock FILE`, a plain `dockerd &` would inherit the lock and hold it for as long as
    # the daemon lives.
    python3 -c 'import subprocess; log = open("/tmp/dockerd.log", "ab"); subprocess.Popen(["dockerd"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True, start_new_session=True)'
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    say "dockerd did not start"
    tail -20 /tmp/dockerd.log >&2
    return 1
}

validate() {
    local profile
    for profile in "" all-in-one per-function cluster; do
        compose ${profile:+--profile "$profile"} config -q
        say "valid: ${profile:-default (COMPOSE_PROFILES from infra/.env)}"
    done
}

# The stack publishes these on 127.0.0.1: say so plainly if something else holds them.
ports_free() {
    local port
    for port in "$PORT" "$PROMETHEUS" "$ALERTMANAGER"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            say "127.0.0.1:$port is taken; free it or set TICKETD_PORT / PROMETHEUS_PORT / ALERTMANAGER_PORT"
            return 1
        fi
    done
}

# The services a profile starts, but Grafana.
services_of() {
    compose --profile "$1" config | python3 -c '
import sys, yaml
profile = sys.argv[1]
for name, service in yaml.safe_load(sys.stdin)["services"].items():
    if name != "grafana" and profile in service.get("profiles", [profile]):
        print(name)
' "$1"
}

# Every container of the project healthy (or, for a one-shot, exited 0), within 3 minutes.
wait_healthy() {
    local deadline=$((SECONDS + 180)) waiting id state
    while :; do
        waiting=()
        for id in $(compose ps -q); do
            state=$(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}} {{.State.ExitCode}}' "$id")
            case $state in
                *" running healthy "*) ;;
                *" exited  0") ;;
                *) waiting+=("$state") ;;
            esac
        done
        [ ${#waiting[@]} -eq 0 ] && return 0
        if [ $SECONDS -ge $deadline ]; then
            say "not healthy after 3 minutes: ${waiting[*]}"
            compose logs --tail 30 >&2
            return 1
        fi
        sleep 1
    done
}

deployed_tests() {
    local postgres reserve
    postgres=$(compose ps -q postgres)
    export DEPLOYED_PSQL="docker exec $postgres psql -U ticketd -d ticketd -X -q -t -A"
    local args=(--ignored --test-threads=1 --nocapture)
    if [ "$1" = per-function ]; then
        reserve=$(compose ps -q reserve)
        # SIGKILL to its process from outside, as a crash: the restart policy brings it back
        # (`docker kill` would count as a deliberate stop, which restart policies respect).
        export DEPLOYED_KILL_RESERVE="kill -KILL \$(docker inspect -f '{{.State.Pid}}' $reserve)"
        # Running again after its first restart, within 30 s.
        export DEPLOYED_AWAIT_RESERVE="timeout 30 sh -c 'until [ \"\$(docker inspect -f \"{{.State.Running}}/{{.RestartCount}}\" $reserve)\" = true/1 ]; do sleep 0.1; done'"
    else
        args+=(--skip a_restarted_reserve_container_loses_nothing)
    fi
    timeout --kill-after=10 600 cargo test -q -p ticketd --test deployed -- "${args[@]}"
    if [ -n "${reserve:-}" ]; then
        say "reserve container: $(docker inspect -f 'restarted {{.RestartCount}} time(s) by its restart policy, now {{.State.Status}} ({{.State.Health.Status}})' "$reserve")"
    fi
}

# `--scale reserve=3` on the running per-function stack: the gateway spreads the race's
# reservations over the three replicas, which still sell exactly the stock.
scale_reserve() {
    local since gateway upstreams
    compose --profile per-function up -d --no-recreate --scale reserve=3 reserve
    wait_healthy
    since=$(date +%s)
    gateway=$(compose ps -q gateway)
    timeout --kill-after=10 300 cargo test -q -p ticketd --test deployed -- \
        --ignored --nocapture --exact two_thousand_fans_race_for_five_hundred_tickets
    upstreams=$(docker logs --since "$since" "$gateway" 2>/dev/null | grep '"POST /reserve ' |
        grep -o '"[0-9.]*:8080"' | sort -u | wc -l)
    say "the gateway sent reservations to $upstreams reserve containers"
    [ "$upstreams" -eq 3 ]
}

# Prometheus (monitoring/prometheus.yml) finds every ticketd container and scrapes it.
prometheus_scrapes() {
    local expected=$1 deadline=$((SECONDS + 60)) up=""
    local query="http://127.0.0.1:$PROMETHEUS/api/v1/query?query=sum%28up%7Bjob%3D%22ticketd%22%7D%29"
    while [ $SECONDS -lt $deadline ]; do
        up=$(curl -fsS "$query" | python3 -c '
import json, sys
result = json.load(sys.stdin)["data"]["result"]
print(result[0]["value"][1] if result else 0)') || up=""
        [ "$up" = "$expected" ] && { say "Prometheus scrapes $up ticketd containers"; return 0; }
        sleep 2
    done
    say "Prometheus scrapes ${up:-no} ticketd containers, not $expected"
    return 1
}

# Prometheus has found the stack's Alertmanager (monitoring/prometheus.yml, `alerting:`), and
# that Alertmanager answers on 127.0.0.1 with the routes of monitoring/alertmanager.yml.
alertmanager_wired() {
    local deadline=$((SECONDS + 60)) found=""
    while [ $SECONDS -lt $deadline ]; do
        found=$(curl -fsS "http://127.0.0.1:$PROMETHEUS/api/v1/alertmanagers" | python3 -c '
import json, sys
print(" ".join(a["url"] for a in json.load(sys.stdin)["data"]["activeAlertmanagers"]))') || found=""
        [ -n "$found" ] && break
        sleep 2
    done
    [ -n "$found" ] || { say "Prometheus knows no Alertmanager"; return 1; }
    say "Prometheus sends alerts to $found"
    curl -fsS "http://127.0.0.1:$ALERTMANAGER/api/v2/status" | python3 -c '
import json, sys
status = json.load(sys.stdin)
assert "receiver: oncall" in status["config"]["original"], "not the routes of monitoring/alertmanager.yml"
print("compose-test: Alertmanager", status["versionInfo"]["version"], "is up with the oncall and team routes")' >&2
}

# The cluster profile's sale lives on the cluster: 3 masters with a replica each hold its keys,
# and the single Redis service holds none.
cluster_used() {
    local node role masters=0 replicas=0 keys=0 single
    for node in 0 1 2 3 4 5; do
        role=$(compose exec -T "redis-node-$node" redis-cli role | head -1)
        case $role in
            master) masters=$((masters + 1))
                keys=$((keys + $(compose exec -T "redis-node-$node" redis-cli dbsize))) ;;
            slave) replicas=$((replicas + 1)) ;;
        esac
    done
    single=$(compose exec -T redis redis-cli dbsize)
    say "cluster: $masters masters, $replicas replicas, $keys keys on the masters; the single Redis: $single keys"
    [ "$masters" = 3 ] && [ "$replicas" = 3 ] && [ "$keys" -gt 0 ] && [ "$single" = 0 ]
}

down() {
    compose --profile all-in-one --profile per-function --profile cluster down -v --remove-orphans --timeout 20 \
        >/dev/null 2>&1 || true
}

# Nothing of the project may outlive the run: containers, volumes, networks.
nothing_left() {
    local label=com.docker.compose.project=$PROJECT left
    left=$(docker ps -aq --filter "label=$label")$(docker volume ls -q --filter "label=$label")$(docker network ls -q --filter "label=$label")
    if [ -n "$left" ]; then
        say "left behind: $left"
        return 1
    fi
    say "no container, volume or network of $PROJECT is left"
}

run_profile() {
    local profile=$1 services
    mapfile -t services < <(services_of "$profile")
    stage "$profile: up (${services[*]})" compose --profile "$profile" up -d --build --quiet-pull "${services[@]}"
    stage "$profile: healthy" wait_healthy
    stage "$profile: flow, race$([ "$profile" = per-function ] && echo ", restart") through 127.0.0.1:$PORT" \
        deployed_tests "$profile"
    if [ "$profile" = per-function ]; then
        stage "$profile: race again, with --scale reserve=3" scale_reserve
    fi
    if [ "$profile" = cluster ]; then
        stage "$profile: the sale is on the Redis Cluster" cluster_used
    fi
    local functions
    functions=$(compose ps -q | xargs docker inspect -f '{{.Config.Image}}' | grep -cx ticketd:local)
    stage "$profile: Prometheus on 127.0.0.1:$PROMETHEUS" prometheus_scrapes "$functions"
    stage "$profile: Alertmanager on 127.0.0.1:$ALERTMANAGER" alertmanager_wired
    stage "$profile: down -v" down
    nothing_left
}

# On failure the services' last words first; then, always, down with the volumes.
on_exit() {
    local status=$?
    if [ $status -ne 0 ] && [ -n "$(compose ps -q 2>/dev/null)" ]; then
        compose logs --tail 40 >&2 || true
    fi
    down
    exit $status
}
trap on_exit EXIT
stage "tools" install_tools
stage "dockerd" start_dockerd
stage "images that cannot be pulled" env ${FRESH:+FORCE=1} infra/images/build.sh
stage "validate every profile" validate
down
stage "ports" ports_free
stage "test client build" cargo test -q -p ticketd --test deployed --no-run
stage "ticketd image (infra/Dockerfile)" compose --profile all-in-one build ${FRESH:+--no-cache} ticketd
docker image ls ticketd:local --format 'ticketd:local image: {{.Size}}'
for profile in $PROFILES; do
    run_profile "$profile"
done
echo "==> compose: total $SECONDS s"
