#!/usr/bin/env bash
# Stop the throw-away PostgreSQL cluster started by scripts/start-postgres.sh and remove it.
set -euo pipefail

DIR=${ARTMATCH_TEST_PG_DIR:-/tmp/artmatch-pg}

if [[ -f $DIR/data/postmaster.pid ]]; then
    BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null || true
    else
        "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null || true
    fi
fi
rm -rf "$DIR"
echo "stop-postgres: stopped" >&2
