#!/usr/bin/env bash
# Long fuzz run: every property-based test marked `fuzz`, with a large example budget.
#   scripts/fuzz.sh                 100,000 examples per target
#   scripts/fuzz.sh 5000 -k webhook  fewer examples, some targets
# Writes the per-target counts (hypothesis statistics) to fuzz-results/counts.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-100000}
shift || true
bash scripts/bootstrap.sh --dev
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p fuzz-results
REGISTRY_SLO_FUZZ_EXAMPLES=$examples pytest -q -p no:cacheprovider -m fuzz \
  --timeout=0 --hypothesis-show-statistics "$@" | tee fuzz-results/run.log
grep -E '^tests/| passing, |Stopped because' \
  fuzz-results/run.log > fuzz-results/counts.txt || true
echo "fuzz: counts in fuzz-results/counts.txt"
