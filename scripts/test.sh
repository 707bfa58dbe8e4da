#!/usr/bin/env bash
# The whole test suite: lint, types, generated-artifact drift, and every test against the
# real components (docker-registry, skopeo, promtool, amtool, ...). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff" && ruff check registry_slo tests bench
echo "== mypy" && mypy
echo "== import layers (docs/architecture.md)" && lint-imports
echo "== generated artifacts" && registry-slo generate --check --config examples/regions.yaml
echo "== pytest" && pytest -q -p no:cacheprovider "$@"
