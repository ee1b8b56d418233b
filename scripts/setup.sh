#!/usr/bin/env bash
# Install artmatch into ./.venv (idempotent). torch comes first and pinned: pip takes these
# builds from the local disk here; any other resolver (uv, poetry) would download gigabytes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
python -m pip install -q -e ".[dev]"
echo "setup: artmatch installed in $(pwd)/.venv" >&2
