#!/usr/bin/env bash
# N workers of one APP_ID on this machine, sharing the partitions through Kafka's group protocol:
#   each generates the generation shards Kafka assigns it (together TARGET_EPS) and runs the agents.
# Each has its own web port (WEB_PORT, WEB_PORT+1, ...) and data directory (DATA_DIR/worker-<i>); every log
# line is prefixed with [worker-<i>]. Ctrl-C (or SIGTERM) stops them all.
# Usage: stack/workers.sh [N]   (default 2; the other settings come from the environment as for one worker)
set -euo pipefail
N=${1:-2}
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "workers.sh: N=$N: expected a whole number >= 1" >&2; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FAUST=${FAUST:-$ROOT/.venv/bin/faust}
BASE_PORT=${WEB_PORT:-6066}
BASE_DIR=${DATA_DIR:-$ROOT/.faust-data}
pids=()
stop() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait; }
trap stop INT TERM
for ((i = 1; i <= N; i++)); do
  mkdir -p "$BASE_DIR/worker-$i"
  (
    cd "$ROOT"
    WEB_PORT=$((BASE_PORT + i - 1)) DATA_DIR="$BASE_DIR/worker-$i" \
      exec "$FAUST" -A app worker -l info 2>&1
  ) > >(sed -u "s/^/[worker-$i] /") &
  pids+=($!)
done
wait
