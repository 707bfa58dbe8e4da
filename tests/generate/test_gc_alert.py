"""RegistryGarbageCollectionOverdue: generated for exactly the regions whose garbage
collector's output is read (a ``distribution-gc`` log source), and proved by promtool —
a fresh exporter raises nothing in its first hour, a collector that does not succeed
fires after ``alerting.gc_overdue_after`` and its ``for``, a run resolves it — for
intervals from 1h to 90d under any Prometheus timing a configuration may have."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml
from harness.fuzzing import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from registry_slo.config import Settings
from registry_slo.generate import generate, render
from registry_slo.generate.alerts import GC_OVERDUE_ALERT

from .conftest import require_tool


def _config(overdue: str, scrape: str, evaluation: str, collected: list[bool]) -> dict[str, Any]:
    regions = [{"name": f"r{i}", "url": f"http://127.0.0.1:{5000 + i}"}
               for i in range(len(collected))]
    logs = [{"name": f"r{i}-gc", "region": f"r{i}", "format": "distribution-gc",
             "paths": [f"/var/log/registry/r{i}-gc.log"]}
            for i, has in enumerate(collected) if has]
    return {
        "regions": regions,
        "ingest": {"logs": logs},
        "slos": [{"name": "pulls", "sli": {"kind": "probe_success", "probe": "pull"},
                  "objective": 99.9}],
        "alerting": {"gc_overdue_after": overdue},
        "prometheus": {"scrape_interval": scrape, "evaluation_interval": evaluation},
    }


def _alerts_by_region(settings: Settings) -> dict[str, set[str]]:
    rules = yaml.safe_load(render(settings)["rules/registry.yml"])
    return {group["name"].rsplit("/", 1)[1]: {r["alert"] for r in group["rules"]}
            for group in rules["groups"]}


def test_only_regions_with_a_collector_source_get_the_alert() -> None:
    settings = Settings.model_validate(_config("7d", "30s", "1m", [False, True, False]))
    alerts = _alerts_by_region(settings)
    assert [GC_OVERDUE_ALERT in alerts[r] for r in ("r0", "r1", "r2")] == \
        [False, True, False]
    tests = yaml.safe_load(render(settings)["tests/registry.test.yml"])["tests"]
    assert [t["name"] for t in tests if "garbage" in t["name"]] == \
        ["r1: no garbage collection for 7d, then a run"]
    fresh = tests[0]
    assert fresh["name"].startswith("a fresh, healthy exporter")
    assert [s["series"] for s in fresh["input_series"] if "_gc_" in s["series"]] == \
        ['registry_slo_gc_last_success_timestamp_seconds{region="r1",source="r1-gc"}']
    without = Settings.model_validate(_config("7d", "30s", "1m", [False]))
    assert not any(GC_OVERDUE_ALERT in a for a in _alerts_by_region(without).values())
    assert GC_OVERDUE_ALERT not in render(without)["tests/registry.test.yml"]


def test_the_interval_is_bounded() -> None:
    for overdue in ("59m", "91d"):
        with pytest.raises(ValueError, match="gc_overdue_after"):
            Settings.model_validate(_config(overdue, "30s", "1m", [True]))


@fuzz_settings(default=6)
@given(
    overdue=st.sampled_from(["1h", "90m", "1d", "7d", "8d12h", "30d", "90d"]),
    scrape=st.sampled_from(["10s", "15s", "30s", "1m"]),
    evaluation=st.sampled_from(["15s", "30s", "1m", "2m", "5m"]),
    collected=st.lists(st.booleans(), min_size=1, max_size=3).filter(any),
)
def test_the_generated_promtool_test_passes(
    tmp_path_factory: pytest.TempPathFactory, overdue: str, scrape: str, evaluation: str,
    collected: list[bool],
) -> None:
    out = tmp_path_factory.mktemp("gc")
    generate(Settings.model_validate(_config(overdue, scrape, evaluation, collected)), out)
    promtool = require_tool("promtool")
    result = subprocess.run([promtool, "test", "rules", str(out / "tests/registry.test.yml")],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

