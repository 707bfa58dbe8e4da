#!/usr/bin/env bash
# Quick start: local registries plus an exporter probing them, on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/registry-slo demo "$@"
