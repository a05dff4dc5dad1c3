#!/usr/bin/env bash
# kafka-topics.sh, as far as tansu's own client goes: --create (with --if-not-exists and
# --partitions) and --list, against --bootstrap-server.
set -euo pipefail

usage() { echo "kafka-topics.sh (tansu stand-in): $*" >&2; exit 1; }
server="" action="" topic="" partitions=1 if_not_exists=""
while [ $# -gt 0 ]; do
    case $1 in
        --bootstrap-server) server=$2; shift 2 ;;
        --create | --list) action=${1#--}; shift ;;
        --if-not-exists) if_not_exists=1; shift ;;
        --topic) topic=$2; shift 2 ;;
        --partitions) partitions=$2; shift 2 ;;
        # One broker: there is only ever one replica.
        --replication-factor) [ "$2" = 1 ] || usage "only --replication-factor 1"; shift 2 ;;
        *) usage "unsupported option $1" ;;
    esac
done
[ -n "$server" ] || usage "--bootstrap-server is required"
broker="tcp://${server%%,*}"

names() {
    tansu topic list --broker "$broker" | tr ',' '\n' | sed -n 's/^"name":"\(.*\)"$/\1/p'
}

case $action in
    list) names ;;
    create)
        [ -n "$topic" ] || usage "--create needs --topic"
        if [ -n "$if_not_exists" ] && names | grep -qxF "$topic"; then
            exit 0
        fi
        tansu topic create "$topic" --broker "$broker" --partitions "$partitions"
        echo "Created topic $topic."
        ;;
    *) usage "--create or --list" ;;
esac
