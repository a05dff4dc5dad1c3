#!/usr/bin/env bash
# The pause a Redis Cluster failover causes: runs the failover test (runtime/tests/cluster.rs:
# 3 ticketd processes, 12 categories over 3 masters, 3,000 fans, one master SIGKILLed a
# quarter of the way in) KILLS times and prints, per kill, how long the killed master's
# categories went without a 2xx (last before the kill to first after) and what else the fans
# were answered. Every run also checks every answer against Redis and PostgreSQL.
#
#   bash infra/bench/failover.sh            # 5 kills
#   KILLS=10 bash infra/bench/failover.sh
#
# Needs the local stack and cluster (infra/local-stack.sh, infra/local-stack.sh --cluster);
# the test restarts the killed node itself. Everything on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
KILLS=${KILLS:-5}

infra/local-stack.sh
infra/local-stack.sh --cluster
cargo build -q -p ticketd --tests
pauses=()
for kill in $(seq "$KILLS"); do
    echo "==> kill $kill of $KILLS" >&2
    line=$(cargo test -q -p ticketd --test cluster -- --nocapture 2>&1 | tee /dev/stderr | grep '^failover:')
    pauses+=("$(sed -E 's/.* paused ([0-9.]+) s.*/\1/' <<<"$line")")
    echo "$line"
done
printf '%s\n' "${pauses[@]}" | sort -n | awk '
    { v[NR] = $1; sum += $1 }
    END { printf "pause over %d kills: min %.2f s, median %.2f s, max %.2f s, mean %.2f s\n",
          NR, v[1], v[int((NR + 1) / 2)], v[NR], sum / NR }'
