#!/usr/bin/env bash
# Install what registry-slo needs on Debian 12 (run as root): Debian packages and a venv.
#   scripts/bootstrap.sh          the exporter and the quick start
#   scripts/bootstrap.sh --dev    also the test suite's and benchmarks' real components
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

runtime=(docker-registry skopeo ca-certificates)
dev=(prometheus prometheus-alertmanager mtail prometheus-blackbox-exporter curl chromium systemd)
packages=("${runtime[@]}")
extras="."
if [[ "${1:-}" == "--dev" ]]; then
  packages+=("${dev[@]}")
  extras=".[dev]"
fi
python=${PYTHON:-python3}
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  packages+=(python3-venv)
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    echo "bootstrap: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]}" >&2
  # Debian starts packaged daemons (registry, prometheus, alertmanager) on all interfaces
  # after install; we only need the binaries, so keep them from starting.
  created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  trap '[[ $created_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
stamp=".venv/.bootstrap-$(sha256sum pyproject.toml | cut -c1-16)-${extras//[^a-z]/}"
if [[ ! -e "$stamp" ]]; then
  log=.venv/bootstrap.log
  if ! { .venv/bin/python -m pip install -q --upgrade pip &&
         .venv/bin/python -m pip install -q -e "$extras"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "bootstrap: pip install failed (log above, also in $log)" >&2
    exit 1
  fi
  rm -f .venv/.bootstrap-*
  touch "$stamp"
fi
