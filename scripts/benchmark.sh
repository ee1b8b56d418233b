#!/usr/bin/env bash
# Benchmark: run `artmatch eval` on every evaluation set found in ../shared/eval (or $EVAL_DIR)
# and print one JSON line per run, then a summary table. Figures, not pass/fail: compare them
# with the targets in the README. Takes about half an hour on 2 cores (the distractor runs
# embed 3,695 extra photos each).
#
#   bash scripts/benchmark.sh [--quick]     # --quick: no distractor runs
set -euo pipefail
cd "$(dirname "$0")/.."
EVAL_DIR=${EVAL_DIR:-../shared/eval}
OUT=${OUT:-benchmark-results}
[[ -d $EVAL_DIR ]] || { echo "benchmark: no evaluation sets at $EVAL_DIR" >&2; exit 2; }
. .venv/bin/activate
mkdir -p "$OUT"

run() {  # name, then artmatch eval arguments
    local name=$1; shift
    echo "== $name: artmatch eval $*" >&2
    artmatch eval "$@" --json 2>"$OUT/$name.log" | tail -n 1 > "$OUT/$name.json"
    echo "{\"run\": \"$name\", \"figures\": $(cat "$OUT/$name.json")}"
}

run museum "$EVAL_DIR/museum-paintings"
run museum-noverify "$EVAL_DIR/museum-paintings" --no-verify
run coil100 "$EVAL_DIR/coil100"
run coil100-noverify "$EVAL_DIR/coil100" --no-verify
run seizure-lots "$EVAL_DIR/seizure-lots"
# The small-catalogue trap: 10 and 100 objects, ~690 queries that are not in the catalogue.
TRAP=${TRAP:-/tmp/artmatch-trap}
python scripts/make_trap_set.py --source "$EVAL_DIR/museum-paintings" --distractors "$EVAL_DIR/distractors" \
    --lots "$EVAL_DIR/seizure-lots" "$TRAP-10" >&2
python scripts/make_trap_set.py --source "$EVAL_DIR/museum-paintings" --distractors "$EVAL_DIR/distractors" \
    --lots "$EVAL_DIR/seizure-lots" --catalogue-size 100 "$TRAP-100" >&2
run trap-10 "$TRAP-10"
run trap-100 "$TRAP-100"
if [[ ${1:-} != --quick ]]; then
    run museum-distractors "$EVAL_DIR/museum-paintings" --distractors "$EVAL_DIR/distractors"
    run coil100-distractors "$EVAL_DIR/coil100" --distractors "$EVAL_DIR/distractors"
fi
python - "$OUT" <<'PY'
import json, pathlib, sys
rows = [(p.stem, json.loads(p.read_text())) for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json"))]
keys = ["recall@1", "recall@1_global", "recall@10", "mrr", "false_match_rate", "wrong_match_rate",
        "unverified_leads", "multi_object_recall", "ingest_images_per_s", "query_ms_p50",
        "query_ms_p95", "catalogue_images"]
print("run".ljust(22) + "".join(k[:14].rjust(15) for k in keys))
for name, fig in rows:
    print(name.ljust(22) + "".join(str(fig.get(k, "")).rjust(15) for k in keys))
PY
