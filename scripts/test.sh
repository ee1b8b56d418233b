#!/usr/bin/env bash
# Install everything and run the whole test suite: lint (ruff, mypy), unit tests, and integration tests
# against real servers on loopback (PostgreSQL, a Ceph RADOS S3 gateway, headless Chromium),
# all installed from Debian's packages and started here.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-deps.sh
bash scripts/setup.sh
. .venv/bin/activate

bash scripts/start-postgres.sh & pg_pid=$!
# On any exit, PostgreSQL's start is waited for before it is stopped: stopping removes its
# directory, which would otherwise fail a still-running initdb with misleading errors.
trap 'wait "$pg_pid" 2>/dev/null || true; bash scripts/stop-s3.sh >/dev/null 2>&1 || true; bash scripts/stop-postgres.sh >/dev/null 2>&1 || true' EXIT
bash scripts/start-s3.sh
wait "$pg_pid"
set -a
. "${ARTMATCH_TEST_S3_DIR:-/tmp/artmatch-s3}/env"
. "${ARTMATCH_TEST_PG_DIR:-/tmp/artmatch-pg}/env"
set +a

ruff check .
ruff format --check .
mypy
python -m pytest -q "$@"
