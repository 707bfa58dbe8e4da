"""The exporter's ingest service: sources polled in threads, metrics fed, failures survived."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_slo.ingest import IngestConfig, IngestService
from registry_slo.observation import Observation
from registry_slo.telemetry.metrics import ExporterMetrics
from registry_slo.vocabulary import OPERATIONS, STATUS_CODES, code_label

from .conftest import FIXTURES


def sample(metrics: ExporterMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def run_until(service: IngestService, metrics: ExporterMetrics, lines: int) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    for _ in range(200):
        if sample(metrics, "registry_slo_ingest_lines_total", source="reg") >= lines:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 10)


def config(tmp_path: Path, log: Path) -> IngestConfig:
    return IngestConfig(
        checkpoint_dir=tmp_path / "cp", poll_interval=0.02,
        logs=[{"name": "reg", "region": "eu", "format": "distribution", "paths": [str(log)],
               "read_from": "beginning"}],  # type: ignore[list-item]
    )


async def test_lines_become_metrics_and_bad_lines_are_counted(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    good = (FIXTURES / "distribution-2.8.2.json.log").read_bytes()
    log.write_bytes(good + b"{broken\n\xff\xfe\n")
    metrics = ExporterMetrics()
    service = IngestService(config(tmp_path, log), metrics.ingest)
    await run_until(service, metrics, 49)
    assert sample(metrics, "registry_slo_ingest_lines_total", source="reg") == 49
    assert sample(metrics, "registry_slo_ingest_observations_total", source="reg") == 18
    assert sample(metrics, "registry_slo_ingest_rejected_total", source="reg",
                  reason="malformed_json") == 1
    assert sample(metrics, "registry_slo_ingest_rejected_total", source="reg",
                  reason="non_utf8") == 1
    assert sample(metrics, "registry_slo_registry_requests_total", region="eu", source="reg",
                  operation="push_manifest", code="201") == 1
    assert sample(metrics, "registry_slo_ingest_files", source="reg") == 0  # closed at stop
    assert (tmp_path / "cp" / "reg.json").exists()


async def test_a_failing_poll_is_counted_and_the_source_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "registry.log"
    log.write_bytes((FIXTURES / "distribution-2.8.2.json.log").read_bytes())
    metrics = ExporterMetrics()
    service = IngestService(config(tmp_path, log), metrics.ingest)
    tailer = service.sources[0].tailer
    real_poll = tailer.poll
    failures = iter([OSError("disk on fire")])

    def flaky() -> bool:
        for exc in failures:
            raise exc
        return real_poll()

    monkeypatch.setattr(tailer, "poll", flaky)
    await run_until(service, metrics, 47)
    assert sample(metrics, "registry_slo_internal_errors_total", component="ingest") == 1
    assert sample(metrics, "registry_slo_ingest_lines_total", source="reg") == 47


def test_series_that_alerts_read_exist_at_zero_before_the_first_event(tmp_path: Path) -> None:
    """The authentication-failure spike and the protected-tag alert read these with
    ``rate()``/``increase()``, which cannot see the first event of a series born at 1."""
    log = tmp_path / "registry.log"
    log.write_bytes(b"")
    metrics = ExporterMetrics()
    IngestService(config(tmp_path, log), metrics.ingest, protected=["prod/api"])
    get = metrics.registry.get_sample_value
    assert get("registry_slo_registry_request_failures_total", {
        "region": "eu", "source": "reg", "operation": "pull_manifest", "reason": "auth",
    }) == 0.0
    assert get("registry_slo_registry_tag_overwrites_total",
               {"region": "eu", "repository": "prod/api"}) == 0.0
    # Rules sum requests over ``code``: every code's series is there before its first
    # request, so a first 503 moves the denominator as it moves the failures.
    for operation in OPERATIONS:
        for code in STATUS_CODES:
            assert get("registry_slo_registry_requests_total", {
                "region": "eu", "source": "reg", "operation": operation, "code": code,
            }) == 0.0, (operation, code)


def test_request_codes_are_a_closed_set(tmp_path: Path) -> None:
    """Odd statuses are counted under their class, non-statuses under ``""``: the series
    stay the ones declared at zero, however many distinct values a registry logs."""
    log = tmp_path / "registry.log"
    log.write_bytes(b"")
    metrics = ExporterMetrics()
    IngestService(config(tmp_path, log), metrics.ingest)
    families = list(metrics.registry.collect())
    before = {s.labels["code"] for f in families for s in f.samples
              if s.name == "registry_slo_registry_requests_total"}
    for status in (200, 418, 599, 299, 999, 0, -5, 100, None):
        metrics.ingest.record_event(Observation(
            region="eu", source="reg", operation="pull_blob", success=True, reason=None,
            duration_seconds=0.1, time=1.0, status=status))
    after = {s.labels["code"] for f in metrics.registry.collect() for s in f.samples
             if s.name == "registry_slo_registry_requests_total"}
    assert after == before == set(STATUS_CODES)
    get = metrics.registry.get_sample_value
    labels = {"region": "eu", "source": "reg", "operation": "pull_blob"}
    assert get("registry_slo_registry_requests_total", {**labels, "code": "4xx"}) == 1
    assert get("registry_slo_registry_requests_total", {**labels, "code": "5xx"}) == 1
    assert get("registry_slo_registry_requests_total", {**labels, "code": "2xx"}) == 1
    assert get("registry_slo_registry_requests_total", {**labels, "code": ""}) == 5


@given(st.one_of(st.none(), st.integers(), st.text(max_size=6)))
def test_every_status_maps_into_the_code_set(status: int | str | None) -> None:
    assert code_label(status) in STATUS_CODES


def test_protected_repositories_keep_their_label_beyond_the_allow_list() -> None:
    from registry_slo.config import RepositoryLabels
    from registry_slo.ingest.labels import RepositoryLabeler

    labeler = RepositoryLabeler(RepositoryLabels(allow=["library/*"]), keep=["prod/api"])
    assert labeler.label("eu", "prod/api") == "prod/api"
    assert labeler.label("eu", "prod/web") == "other"
    assert labeler.label("eu", "library/alpine") == "library/alpine"
