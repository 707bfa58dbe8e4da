"""``registry-slo replay``, the ``ingest`` configuration section, and the ingest metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from registry_slo.cli import main
from registry_slo.config import ConfigError, load_config
from registry_slo.observation import Observation
from registry_slo.oci import Reason
from registry_slo.telemetry.metrics import ExporterMetrics

from .conftest import FIXTURES

JSON_LOG = FIXTURES / "distribution-2.8.2.json.log"


def test_replay_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--format", "distribution", str(JSON_LOG), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["files"] == [str(JSON_LOG)]
    assert (data["lines"], data["observations"]) == (47, 18)
    assert data["requests"]["replay"]["push_manifest"] == {"201": 1}
    assert data["failures"]["replay"]["pull_manifest"] == {"auth": 1, "not_found": 1}
    assert data["repositories"]["replay"] == {"team/app": 17}  # all but the catalog
    assert data["requests_by_method_status"]["GET 200"] == 6
    assert data["lines_per_second"] > 0


def test_replay_human_output_and_errors(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    assert main(["replay", "-f", "distribution", str(JSON_LOG)]) == 0
    out = capsys.readouterr().out
    assert "47 line(s) in 1 file(s)" in out and "push_manifest" in out
    assert main(["replay", str(JSON_LOG)]) == 2  # no format
    assert main(["replay", "-f", "jsonl", str(JSON_LOG)]) == 2  # no mapping
    assert main(["replay", "-f", "distribution", str(tmp_path / "missing.log")]) == 1
    with pytest.raises(SystemExit):
        main(["replay", "-f", "nginx", str(JSON_LOG)])  # unknown format: argparse


def test_replay_takes_a_source_from_the_config(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"ingest": {
        "repositories": {"allow": ["nothing/*"]},
        "logs": [{"name": "eu-log", "region": "eu", "format": "jsonl", "paths": ["/x/*.log"],
                  "mapping": {"operation": "op", "success": "ok", "repository": "repo"}}],
    }}))
    log = tmp_path / "events.log"
    log.write_text('{"op":"pull_blob","ok":true,"repo":"a/b"}\n{"op":"delete","ok":false}\n')
    assert main(["replay", "-c", str(config), "--source", "eu-log", str(log), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["requests"] == {"eu": {"delete": {"-": 1}, "pull_blob": {"-": 1}}}
    assert data["repositories"] == {"eu": {"other": 1}}
    assert main(["replay", "-c", str(config), "--source", "nope", str(log)]) == 2


def test_ingest_config_errors_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"ingest": {"logs": [
        {"name": "Bad Name", "region": "r", "format": "distribution", "paths": ["rel.log"]},
        {"name": "b", "region": "r", "format": "jsonl", "paths": ["/a.log"]},
        {"name": "c", "region": "r", "format": "distribution", "paths": ["/a.log"],
         "colour": "blue"},
    ]}}))
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    message = str(caught.value)
    assert "ingest.logs[0].name" in message
    assert "ingest.logs[0].paths" in message and "absolute" in message
    assert "mapping" in message
    assert "ingest.logs[2].colour: unknown key" in message


def test_duplicate_source_names_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    source = {"name": "a", "region": "r", "format": "distribution", "paths": ["/a.log"]}
    config.write_text(yaml.safe_dump({"ingest": {"logs": [source, source]}}))
    with pytest.raises(ConfigError, match="used twice"):
        load_config(config)


def sample(metrics: ExporterMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_record_event_series() -> None:
    metrics = ExporterMetrics()
    ok = Observation("eu", "pull_blob", "log", True, None, 0.2, 0.0, bytes_received=100,
                     repository="team/app", status=200)
    failed = Observation("eu", "pull_blob", "log", False, Reason.NOT_FOUND, 0.0, 0.0,
                         repository="x/y", status=404, timed=False)
    metrics.ingest.record_event(ok, "team/app")
    metrics.ingest.record_event(ok, "team/app")
    metrics.ingest.record_event(failed, "other")
    labels = {"region": "eu", "source": "log", "operation": "pull_blob"}
    assert sample(metrics, "registry_slo_registry_requests_total", **labels, code="200") == 2
    assert sample(metrics, "registry_slo_registry_requests_total", **labels, code="404") == 1
    assert sample(metrics, "registry_slo_registry_request_failures_total", **labels,
                  reason="not_found") == 1
    assert sample(metrics, "registry_slo_registry_request_duration_seconds_count", **labels) == 2
    assert sample(metrics, "registry_slo_registry_bytes_total", **labels,
                  direction="egress") == 200
    assert sample(metrics, "registry_slo_registry_repository_requests_total", region="eu",
                  repository="other", operation="pull_blob", outcome="failure") == 1
    metrics.ingest.record_tag_overwrite("eu", "team/app")
    assert sample(metrics, "registry_slo_registry_tag_overwrites_total", region="eu",
                  repository="team/app") == 1
    rendered = metrics.render().decode()
    assert 'registry_slo_registry_requests_total{code="200"' in rendered
