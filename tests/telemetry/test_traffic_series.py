"""The series a traffic SLI reads exist before the first failure."""

from __future__ import annotations

from pathlib import Path

from registry_slo.config import Settings
from registry_slo.exporter import Exporter


def test_traffic_failure_series_start_at_zero(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path / "state",
        regions=[{"name": "east", "url": "http://127.0.0.1:1"}],
        ingest={"checkpoint_dir": str(tmp_path / "checkpoints"), "logs": [
            {"name": "east-log", "region": "east", "format": "distribution",
             "paths": [str(tmp_path / "registry.log")]}]},
        slos=[{"name": "pulls", "objective": 99.9,
               "sli": {"kind": "traffic_success",
                       "operations": ["pull_manifest", "pull_blob"]}}],
    )
    exporter = Exporter(settings)
    for operation in ("pull_manifest", "pull_blob"):
        for reason in ("server_error", "rate_limited"):
            labels = {"region": "east", "source": "east-log", "operation": operation,
                      "reason": reason}
            assert exporter.metrics.registry.get_sample_value(
                "registry_slo_registry_request_failures_total", labels) == 0.0
    # Only the SLI's reasons: the others are born at their first failure.
    assert exporter.metrics.registry.get_sample_value(
        "registry_slo_registry_request_failures_total",
        {"region": "east", "source": "east-log", "operation": "pull_blob",
         "reason": "not_found"}) is None
