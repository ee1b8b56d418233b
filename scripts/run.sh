#!/usr/bin/env bash
# Install artmatch and start the web service on the embedded default (local photos, SQLite,
# FAISS files under ARTMATCH_HOME, default ~/.local/share/artmatch) with a small generated
# demo catalogue on first start. Prints the URL and how to log in. Debian's Pango and a font
# come first: WeasyPrint needs them for the PDF match reports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh --runtime
bash scripts/setup.sh
. .venv/bin/activate
exec artmatch serve --demo "$@"
