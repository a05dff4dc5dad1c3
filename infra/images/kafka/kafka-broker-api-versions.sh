#!/usr/bin/env bash
# kafka-broker-api-versions.sh as a health check: succeeds when the broker at
# --bootstrap-server answers a Kafka metadata request (tansu's client lists its topics).
set -euo pipefail

server=""
while [ $# -gt 0 ]; do
    case $1 in
        --bootstrap-server) server=$2; shift 2 ;;
        *) shift ;;
    esac
done
[ -n "$server" ] || { echo "kafka-broker-api-versions.sh: --bootstrap-server is required" >&2; exit 1; }
tansu topic list --broker "tcp://${server%%,*}" >/dev/null
echo "${server%%,*} answers Kafka API requests (tansu)"
