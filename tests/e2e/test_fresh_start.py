"""A fresh, healthy exporter pages no one; its first failure fires what it should.

A real ``docker-registry`` behind the fault proxy (passing everything through), a fresh
``registry-slo serve`` probing it every 5 s and reading its log, and a real Prometheus
scraping every second and evaluating the rules ``registry-slo generate`` writes for the
same configuration, every 2 s (its ``prometheus`` section says so, so the rules are
sized for it). Every series a rule reads starts as a fresh exporter exposes it: failure
counters at zero, the protected repository's overwrite counter at zero.

1. For :data:`WATCH` seconds from the first scrape no alert fires — checked on every
   rule evaluation through ``ALERTS`` over the whole span, not by sampling;
2. then the proxy corrupts one blob the pull probe downloads: the digest-mismatch
   counter moves from 0 to 1, the pull SLI's 5m error ratio becomes positive, and
   ``RegistryBlobIntegrityError`` (page) fires — and nothing else does;
3. then the first user request the registry ever logs fails (a pull of a missing
   manifest, an error the traffic SLO counts): its request series, exposed at zero
   since start-up with every other status code, moves from 0 to 1 like the failure
   series, so the traffic SLI's 5m ratio is exactly 1 (one bad of one) and the traffic
   SLO's burn-rate page fires. A request series born at its first request would leave
   the SLI without a denominator, and the page silent.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import require_binary
from harness import FaultProxy
from harness.prometheus import LocalPrometheus, scrape_job
from harness.serve import ServeProcess

from registry_slo.config import load_config
from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.generate import generate

SCRAPE, EVALUATION = 1.0, 2.0
WATCH = 60.0
"""Seconds of a healthy start watched for alerts (every probe runs about 12 times)."""
FIRE_DEADLINE = 60.0


def _config(url: str, log: Path, port: int, state: Path) -> dict[str, Any]:
    return {
        "listen": f"127.0.0.1:{port}",
        "state_dir": str(state),  # fresh: no SLO counts from before
        "log_format": "json",
        "regions": [{"name": "fresh", "url": url, "probe": {
            "interval": "5s", "timeout": "4s", "blob_size": "16KiB",
            "enabled": ["push", "pull", "auth"]}}],
        "ingest": {"logs": [{"name": "fresh-log", "region": "fresh",
                             "format": "distribution", "paths": [str(log)],
                             "read_from": "beginning"}]},
        "slos": [
            {"name": "pull-availability",
             "sli": {"kind": "probe_success", "probe": "pull"}, "objective": 99},
            {"name": "push-availability",
             "sli": {"kind": "probe_success", "probe": "push"}, "objective": 99},
            {"name": "pull-traffic",
             "sli": {"kind": "traffic_success", "operations": ["pull_manifest"],
                     "errors": ["not_found"]}, "objective": 99},
        ],
        "alerting": {"protected_repositories": ["prod/api"]},
        "prometheus": {"scrape_interval": f"{SCRAPE:g}s",
                       "evaluation_interval": f"{EVALUATION:g}s"},
    }


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[LocalPrometheus, FaultProxy, Path, str]]:
    for binary in ("docker-registry", "prometheus"):
        require_binary(binary)
    with contextlib.ExitStack() as stack:
        registry = stack.enter_context(LocalRegistry(log_path=tmp_path / "registry.log"))
        proxy = stack.enter_context(FaultProxy(registry.url))
        port = free_port()
        config_path = tmp_path / "regions.yaml"
        config_path.write_text(yaml.safe_dump(
            _config(proxy.url, registry.log_path, port, tmp_path / "state")))
        out = tmp_path / "alerts"
        generate(load_config(config_path), out)
        log = tmp_path / "exporter.log"
        exporter = ServeProcess(config_path, log)
        stack.callback(exporter.stop)
        prometheus = stack.enter_context(LocalPrometheus(
            scrape_configs=[scrape_job("registry-slo", [f"127.0.0.1:{port}"])],
            rule_files=sorted((out / "rules").glob("*.yml")),
            scrape_interval=SCRAPE, evaluation_interval=EVALUATION,
        ))
        yield prometheus, proxy, log, registry.url


def _firing(prometheus: LocalPrometheus) -> list[dict[str, str]]:
    return [a["labels"] for a in prometheus.alerts() if a["state"] == "firing"]


def test_a_fresh_healthy_start_fires_nothing_and_the_first_failure_pages(
    fresh: tuple[LocalPrometheus, FaultProxy, Path, str],
) -> None:
    prometheus, proxy, log, registry_url = fresh
    prometheus.wait_for_targets(timeout=60)
    prometheus.wait_for("registry_slo_probe_last_run_timestamp_seconds", timeout=60)
    start = time.time()
    while time.time() < start + WATCH:
        assert not _firing(prometheus), (
            f"an alert fires on a healthy start: {_firing(prometheus)}\n"
            + log.read_text(errors="replace")[-2000:])
        time.sleep(EVALUATION)
    # Every evaluation of the span, not only the moments polled above.
    fired = prometheus.query_range('ALERTS{alertstate="firing"}', start - 30, time.time(),
                                   EVALUATION)
    assert not fired, [s.labels for s in fired]
    integrity = ('registry_slo_probe_failures_total{region="fresh",probe="pull",'
                 'reason="digest_mismatch"}')
    (zero,) = prometheus.query(integrity)
    assert zero.value == 0.0  # created at zero, not born at the first failure

    proxy.set_mode("corrupt_blobs", path="/blobs/", methods=["GET"], times=1)
    deadline = time.monotonic() + FIRE_DEADLINE
    while time.monotonic() < deadline:
        names = {a["alertname"] for a in _firing(prometheus)}
        if "RegistryBlobIntegrityError" in names:
            break
        time.sleep(1.0)
    firing = _firing(prometheus)
    assert {a["alertname"] for a in firing} == {"RegistryBlobIntegrityError"}, (
        firing, log.read_text(errors="replace")[-2000:])
    (page,) = firing
    assert page["severity"] == "page" and page["probe"] == "pull"
    (moved,) = prometheus.query(integrity)
    assert moved.value == 1.0
    # The SLI's recording rule is in another group, evaluated at its own offset: it
    # shows the failure at its next evaluation after the scrape that carried it, which
    # may come after the page's. Wait for that evaluation, with a deadline.
    deadline = time.monotonic() + 10 * EVALUATION
    while True:
        sli = prometheus.query(
            'slo:sli_error:ratio_rate5m{sloth_id="fresh-pull-availability"}')
        if (sli and sli[0].value > 0) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sli and sli[0].value > 0, "the first failure did not move the SLI"

    # 3. The first user request ever logged fails, with an error the traffic SLO counts.
    traffic = 'region="fresh",source="fresh-log",operation="pull_manifest"'
    requests = f'registry_slo_registry_requests_total{{{traffic},code="404"}}'
    failures = f'registry_slo_registry_request_failures_total{{{traffic},reason="not_found"}}'
    for series in (requests, failures):
        (zero,) = prometheus.query(series)
        assert zero.value == 0.0, series  # exposed at zero since start-up
    assert httpx.get(f"{registry_url}/v2/fresh/missing/manifests/latest",
                     timeout=10).status_code == 404
    deadline = time.monotonic() + FIRE_DEADLINE
    sli_expr = 'slo:sli_error:ratio_rate5m{sloth_id="fresh-pull-traffic"}'
    while time.monotonic() < deadline:
        pages = [a for a in _firing(prometheus) if a.get("sloth_slo") == "pull-traffic"]
        sli = prometheus.query(sli_expr)
        if pages and sli:
            break
        time.sleep(1.0)
    assert pages, (_firing(prometheus), log.read_text(errors="replace")[-2000:])
    assert {p["alertname"] for p in pages} == {"RegistrySLOBurnRatePage"}
    for series in (requests, failures):
        (moved,) = prometheus.query(series)
        assert moved.value == 1.0, series
    assert sli and sli[0].value == pytest.approx(1.0), sli
