#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on 127.0.0.1 for the integration tests. Idempotent: a
# server that still answers is reused; anything else under the directory is wiped and created
# anew.
#
#   ARTMATCH_TEST_PG_DIR   where everything lives (default /tmp/artmatch-pg)
#
# Prints ARTMATCH_TEST_DATABASE_URL (postgresql+psycopg://, database artmatch_test) and writes
# it to $ARTMATCH_TEST_PG_DIR/env. Stop with scripts/stop-postgres.sh.
set -euo pipefail

DIR=${ARTMATCH_TEST_PG_DIR:-/tmp/artmatch-pg}
ENV_FILE=$DIR/env
DB=artmatch_test
ROLE=artmatch

log() { echo "start-postgres: $*" >&2; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [[ -z $(pg_bin) ]]; then
    log "installing postgresql (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends postgresql >/dev/null
fi
BIN=$(pg_bin)

# Postgres refuses to run as root: as root, run it as the postgres account the package made.
if [[ $(id -u) == 0 ]]; then
    OWNER=postgres
    as_owner() { runuser -u postgres -- "$@"; }
else
    OWNER=$(id -un)
    as_owner() { "$@"; }
fi

if [[ -f $ENV_FILE && -f $DIR/port ]] \
    && as_owner "$BIN/pg_isready" -q -h 127.0.0.1 -p "$(cat "$DIR/port")" -d "$DB"; then
    log "already running on 127.0.0.1:$(cat "$DIR/port")"
    cat "$ENV_FILE"
    exit 0
fi

"$(dirname "$0")/stop-postgres.sh" >/dev/null 2>&1 || true
rm -rf "$DIR"
mkdir -p "$DIR"
chown "$OWNER" "$DIR"
chmod 700 "$DIR"

start=$SECONDS
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
echo "$PORT" >"$DIR/port"

# Local socket connections (the setup below) are trusted; TCP needs the password, as in
# production.
as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log"

# Durability settings off: the cluster is thrown away after the run, and fsync dominates the
# time of small test transactions.
as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$DIR" \
    -o "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null

as_owner "$BIN/psql" -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d postgres \
    -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" -c "CREATE DATABASE $DB OWNER $ROLE"

URL="postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
echo "ARTMATCH_TEST_DATABASE_URL=$URL" >"$ENV_FILE"
log "ready in $((SECONDS - start)) s"
cat "$ENV_FILE"
