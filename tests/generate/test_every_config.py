"""Every valid configuration generates rules that work: a property-based test.

Hypothesis draws valid configurations — 1 to 6 regions, probe intervals from 1s to 10m,
mirrors and pull-through caches, every SLI kind, objectives from 90 to 99.999%, periods
from 7 to 90 days, Prometheus scrape intervals from 10s to the 75s the 5m burn-rate
window allows, evaluation intervals up to 5m, traffic sources, alert routing — and
requires of what ``registry-slo generate`` writes for each:

- ``promtool check rules`` on every rule file,
- ``amtool check-config`` on the Alertmanager configuration,
- ``promtool test rules`` on the registry alerts' tests (where the fresh-start hour and
  the windows derived from probe intervals live) of every configuration, and on one SLO
  test file of the first configuration of a batch in one batch in :data:`SLO_EVERY`
  (both drawn, so that a failing example replays the same checks). An SLO test file takes
  1-25 s of promtool time (it evaluates every rule at every evaluation over hours of
  samples), far too much for all of them in the normal suite; with
  ``REGISTRY_SLO_FUZZ_EXAMPLES`` set (``scripts/fuzz.sh``) every SLO test file of every
  configuration is tested.

The normal suite draws 200 configurations (derandomized: the same 200 in every run), in
batches of :data:`BATCH` checked two at a time, one generating while the other's promtool
runs. A counter-example found here is kept as a regular test in :data:`FOUND`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from harness.fuzzing import fuzz_examples, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from registry_slo.config import Settings
from registry_slo.generate import generate
from registry_slo.vocabulary import DURATION_BUCKETS, OPERATIONS

from .conftest import require_tool

BATCH = 10
"""Configurations per hypothesis example."""
SLO_EVERY = 10
"""In the normal suite, the SLO test files of one configuration in about one batch in
this many."""
EVERY_SLO_FILE = bool(os.environ.get("REGISTRY_SLO_FUZZ_EXAMPLES", "").strip())
"""Under the fuzz budget, promtool-test every SLO test file, not one per batch."""

_INTERVALS = ["1s", "2s", "5s", "10s", "15s", "30s", "1m", "2m", "5m", "10m"]
_THRESHOLDS = [f"{b:g}s" for b in DURATION_BUCKETS]
_PROBES = ["push", "pull", "auth"]


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid configuration, as the YAML file would hold it."""
    count = draw(st.integers(1, 6))
    regions: list[dict[str, Any]] = []
    for i in range(count):
        interval = draw(st.sampled_from(_INTERVALS))
        enabled = draw(st.lists(st.sampled_from(_PROBES), min_size=1, max_size=3,
                                unique=True))
        region: dict[str, Any] = {
            "name": f"r{i}",
            "url": draw(st.sampled_from(["http", "https"])) + f"://127.0.0.1:{5000 + i}",
            "probe": {"interval": interval, "timeout": "1s", "enabled": enabled},
        }
        if i > 0:
            role = draw(st.sampled_from(["primary", "mirror", "cache"]))
            if role == "mirror":
                region["replicates_from"] = "r0"
            elif role == "cache":
                region["pull_through_cache_of"] = "r0"
                region["probe"]["enabled"] = sorted({*enabled, "cache"} - {"push"})
        regions.append(region)
    logs = [
        {"name": f"log-{r['name']}", "region": r["name"], "format": "distribution",
         "paths": [f"/var/log/registry/{r['name']}.log"]}
        for r in regions if draw(st.booleans())
    ]
    mirrors = [r["name"] for r in regions if "replicates_from" in r]
    probes = sorted({p for r in regions for p in r["probe"]["enabled"] if p != "cache"})
    kinds = ["probe_success", "probe_latency", "auth_success"]
    kinds += ["replication_lag"] if mirrors else []
    kinds += ["traffic_success", "traffic_latency"] if logs else []
    slos = []
    for index in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(kinds))
        sli: dict[str, Any] = {"kind": kind}
        match kind:
            case "probe_success" | "probe_latency":
                sli["probe"] = draw(st.sampled_from(probes))
            case "auth_success":
                if "auth" not in probes:
                    sli = {"kind": "probe_success", "probe": probes[0]}
            case "replication_lag":
                sli["threshold"] = draw(st.sampled_from(["30s", "1m", "5m", "10m"]))
            case "traffic_success" | "traffic_latency":
                sli["operations"] = draw(st.lists(
                    st.sampled_from([o for o in OPERATIONS if o != "other"]),
                    min_size=1, max_size=3, unique=True))
        if kind.endswith("latency"):
            sli["threshold"] = draw(st.sampled_from(_THRESHOLDS))
        slos.append({
            "name": f"slo-{index}",
            "sli": sli,
            "objective": draw(st.sampled_from([90, 95, 99, 99.5, 99.9, 99.95, 99.99,
                                               99.999])),
            "period": f"{draw(st.integers(7, 90))}d",
            "labels": {"team": "registry"},
        })
    alerting: dict[str, Any] = {
        "rule_mode": draw(st.sampled_from(["full", "performance"])),
        "page": {"name": "page",
                 "webhook_urls": draw(st.sampled_from([[], ["http://pager.example/hook"]]))},
    }
    if logs and draw(st.booleans()):
        alerting["protected_repositories"] = ["prod/api"]
    config: dict[str, Any] = {
        "regions": regions,
        "ingest": {"logs": logs},
        "slos": slos,
        "alerting": alerting,
        "prometheus": {
            "scrape_interval": f"{draw(st.integers(10, 75))}s",
            "evaluation_interval": draw(st.sampled_from(["15s", "30s", "1m", "2m", "5m"])),
        },
    }
    if draw(st.booleans()):
        config["kubernetes"] = {
            "group_by": draw(st.sampled_from([[], ["cluster"], ["cluster", "region"]])),
            "kubelet_selector": draw(st.sampled_from(['job="kubelet"', "",
                                                      'job="kubelet", env="prod"'])),
            "pull_failure_ratio": draw(st.sampled_from([0.01, 0.05, 0.2, 0.5, 0.95])),
            "pull_latency_threshold": draw(st.sampled_from(
                ["1s", "7s", "2m", "5m", "29m", "59m"])),
            "blocked_pods_page": draw(st.integers(1, 30)),
        }
    return config


def _settings(config: dict[str, Any]) -> Settings:
    return Settings.model_validate(config)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=900, check=False)


ALL = -1
"""``slo_files`` value: promtool-test every SLO test file of the configuration."""


def _generate_and_test(config: dict[str, Any], out: Path,
                       slo_files: int | None) -> dict[str, str]:
    """Generate ``config`` into ``out`` and promtool-test its registry alerts and, by
    ``slo_files``, none (``None``), every one (:data:`ALL`) or the ``n``-th (modulo their
    number) of its SLO test files: what failed, by file."""
    generate(_settings(config), out)
    promtool = require_tool("promtool")
    tests = [out / "tests" / "registry.test.yml",
             *(out / "tests").glob("kubelet.test.yml")]
    slo_tests = sorted((out / "tests").glob("slo-*.test.yml"))
    if slo_files == ALL:
        tests += slo_tests
    elif slo_files is not None and slo_tests:
        tests.append(slo_tests[slo_files % len(slo_tests)])
    failed = {}
    for test in tests:
        result = _run(promtool, "test", "rules", str(test))
        if result.returncode:
            failed[str(test)] = (result.stdout + result.stderr)[-3000:]
    return failed


def _check_all(tmp_path: Path, batch: Sequence[dict[str, Any]],
               slo_files: Sequence[int | None]) -> None:
    """Generate and test every configuration of ``batch``, two at a time (one
    generating while the other's promtool runs), then check every rule file and
    Alertmanager configuration at once."""
    directories = [tmp_path / str(index) for index in range(len(batch))]
    # The slow ones (SLO test files) first, so that none is left running alone.
    order = sorted(range(len(batch)), key=lambda i: slo_files[i] is None)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(
            lambda i: _generate_and_test(batch[i], directories[i], slo_files[i]), order))
    failed = {name: text for result in results for name, text in result.items()}
    assert not failed, failed
    promtool, amtool = require_tool("promtool"), require_tool("amtool")
    rule_files = [str(p) for d in directories for p in sorted((d / "rules").glob("*.yml"))]
    checked = _run(promtool, "check", "rules", *rule_files)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    amtool_checked = _run(amtool, "check-config",
                          *(str(d / "alertmanager" / "alertmanager.yml") for d in directories))
    assert amtool_checked.returncode == 0, amtool_checked.stdout + amtool_checked.stderr


@pytest.mark.fuzz
@pytest.mark.timeout(1800)
@fuzz_settings(default=max(1, fuzz_examples(200) // BATCH))
@given(batch=st.lists(configs(), min_size=BATCH, max_size=BATCH),
       slo_turn=st.integers(0, SLO_EVERY - 1), slo_pick=st.integers(0, 5))
def test_every_valid_config_generates_rules_that_pass_promtool_and_amtool(
    tmp_path_factory: pytest.TempPathFactory, batch: list[dict[str, Any]], slo_turn: int,
    slo_pick: int,
) -> None:
    slo_files = [
        ALL if EVERY_SLO_FILE else slo_pick if index == 0 and slo_turn == 0 else None
        for index in range(len(batch))
    ]
    _check_all(tmp_path_factory.mktemp("configs"), batch, slo_files)


FOUND: list[dict[str, Any]] = [
    # A 2s probe behind a 30s scrape: RegistryProbeRunsSkipped was increase(...[20s]),
    # which holds at most one sample and never fires (issue 12).
    {
        "regions": [{"name": "r0", "url": "http://127.0.0.1:5000",
                     "probe": {"interval": "2s", "timeout": "1s"}}],
        "slos": [{"name": "a", "sli": {"kind": "probe_success", "probe": "pull"},
                  "objective": 99}],
        "prometheus": {"scrape_interval": "30s"},
    },
    # A mirror read before its first heartbeat: a NaN lag paged at the first evaluation.
    {
        "regions": [{"name": "r0", "url": "http://127.0.0.1:5000"},
                    {"name": "r1", "url": "http://127.0.0.1:5001", "replicates_from": "r0",
                     "probe": {"enabled": ["pull"]}}],
        "slos": [{"name": "lag", "sli": {"kind": "replication_lag", "threshold": "1m"},
                  "objective": 99}],
    },
    # Rules evaluated every 15s: the lag SLI's 1d subquery had 5,760 steps, which
    # promtool refuses ("would load too many samples into memory"); it now steps 44s.
    {
        "regions": [{"name": "r0", "url": "http://127.0.0.1:5000"},
                    {"name": "r1", "url": "http://127.0.0.1:5001", "replicates_from": "r0",
                     "probe": {"enabled": ["pull"]}}],
        "slos": [{"name": "lag", "sli": {"kind": "replication_lag", "threshold": "5m"},
                  "objective": 99, "period": "78d"}],
        "prometheus": {"scrape_interval": "44s", "evaluation_interval": "15s"},
    },
]


@pytest.mark.parametrize("index", range(len(FOUND)))
def test_found_configs(tmp_path: Path, index: int) -> None:
    _check_all(tmp_path, [FOUND[index]], [ALL])
