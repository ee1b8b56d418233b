#!/usr/bin/env bash
# Stop the throw-away S3 server started by scripts/start-s3.sh and remove its files.
set -euo pipefail

DIR=${ARTMATCH_TEST_S3_DIR:-/tmp/artmatch-s3}

# Only the daemons whose pid files live under $DIR: other Ceph daemons on the machine are not
# ours to stop.
pids=()
for pidfile in "$DIR"/run/*.pid; do
    [[ -f $pidfile ]] || continue
    pid=$(cat "$pidfile")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" && pids+=("$pid")
    fi
done
for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
done
rm -rf "$DIR"
echo "stop-s3: stopped (${#pids[@]} daemons)" >&2
