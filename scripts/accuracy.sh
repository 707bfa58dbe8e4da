#!/usr/bin/env bash
# The accuracy checks (tests/accuracy) with their measured figures: writes
# accuracy-results/figures.jsonl and prints the table of docs/accuracy.md.
#   scripts/accuracy.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p accuracy-results
rm -f accuracy-results/figures.jsonl
REGISTRY_SLO_ACCURACY_OUT="$PWD/accuracy-results/figures.jsonl" \
  pytest -q -p no:cacheprovider tests/accuracy "$@"
python tests/accuracy/_record.py accuracy-results/figures.jsonl
