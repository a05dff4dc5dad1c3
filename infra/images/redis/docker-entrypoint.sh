#!/usr/bin/env bash
# The subset of the official redis entrypoint that infra/docker-compose.yml relies on.
set -euo pipefail

# Options alone (or a config file) are redis-server's, as in the official image.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
    shift
    # The official image builds Redis with protected mode off (the container network is the
    # boundary); Debian's build has it on, so turn it off before the caller's own options.
    if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
        config=$1
        shift
        set -- redis-server "$config" --protected-mode no "$@"
    else
        set -- redis-server --protected-mode no "$@"
    fi
    if [ "$(id -u)" = 0 ]; then
        find . \! -user redis -exec chown redis '{}' +
        exec setpriv --reuid=redis --regid=redis --init-groups "$@"
    fi
fi
exec "$@"
