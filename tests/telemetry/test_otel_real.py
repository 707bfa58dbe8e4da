"""Probe traces and OTLP metrics reach a real OTLP receiver; exemplars link to them."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from harness.otlp import OTLPReceiver, ReceivedSpan
from harness.regions import region
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from registry_slo.config import OtelConfig
from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.probes import AuthProbe, ProbeScheduler, PullProbe, PushProbe, ScheduledProbe
from registry_slo.probes import execute as run_probe
from registry_slo.telemetry.metrics import ExporterMetrics
from registry_slo.telemetry.otel import OpenTelemetry


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as r:
        yield r


def wait_for(predicate: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


async def test_probe_trace_structure(registry: LocalRegistry, receiver: OTLPReceiver) -> None:
    otel = OpenTelemetry(OtelConfig(traces=True, endpoint=receiver.endpoint))
    state = region(registry.url)
    try:
        pull = await run_probe(PullProbe(state), 5, otel.tracer)
        push = await run_probe(PushProbe(state), 5, otel.tracer)
    finally:
        await state.aclose()
        await otel.shutdown()
    assert pull.success and push.success
    assert pull.trace_id and push.trace_id and pull.trace_id != push.trace_id
    spans = list(receiver.spans)
    (root,) = [s for s in spans if s.trace_id == pull.trace_id and s.parent_span_id is None]
    assert root.name == "probe pull"
    assert root.attributes["registry_slo.region"] == "test"
    assert root.attributes["registry_slo.probe"] == "pull"
    assert root.attributes["oci.repository"] == "registry-slo/probe"
    assert root.attributes["oci.digest"] == pull.digest
    phases = {s.name: s for s in children(spans, root)}
    assert {"prepare", "manifest", "download", "cleanup"} <= set(phases)
    # The canary is seeded under "prepare" (HEAD, blob checks, uploads, manifest PUT).
    seeding = children(spans, phases["prepare"])
    assert {s.name for s in seeding} >= {"HEAD", "PUT"}
    manifest_requests = children(spans, phases["manifest"])
    assert [s.name for s in manifest_requests] == ["GET", "GET"]
    for request in manifest_requests:
        assert request.attributes["http.response.status_code"] == 200
        assert request.attributes["url.full"].startswith(registry.url + "/v2/registry-slo/probe")
        assert request.attributes["server.port"] == registry.port
    downloads = children(spans, phases["download"])
    assert len(downloads) == 2 and all("/blobs/sha256:" in s.attributes["url.full"]
                                       for s in downloads)
    (push_root,) = [s for s in spans if s.trace_id == push.trace_id and s.parent_span_id is None]
    push_phases = {s.name for s in children(spans, push_root)}
    assert {"upload", "manifest", "cleanup"} <= push_phases


async def test_failed_probe_span_carries_reason(receiver: OTLPReceiver,
                                                stopped_registry_url: str) -> None:
    otel = OpenTelemetry(OtelConfig(traces=True, endpoint=receiver.endpoint))
    state = region(stopped_registry_url)
    result = await run_probe(AuthProbe(state), 5, otel.tracer)
    await state.aclose()
    await otel.shutdown()
    assert result.reason is not None
    (root,) = [s for s in receiver.spans if s.parent_span_id is None]
    assert root.attributes["registry_slo.reason"] == "connect"
    assert root.attributes["error.type"] == "connect"
    assert root.status_code == 2  # STATUS_CODE_ERROR
    (request,) = [s for s in receiver.spans if s.name == "GET"]
    assert request.attributes["error.type"] == "connect"


def test_exemplars_on_metrics_match_received_traces(
    registry: LocalRegistry, receiver: OTLPReceiver, tmp_path: Path
) -> None:
    port = free_port()
    config = {
        "listen": f"127.0.0.1:{port}", "log_format": "json",
        "regions": [{"name": "r", "url": registry.url,
                     "probe": {"interval": "1s", "timeout": "1s", "blob_size": "8KiB"}}],
        "otel": {"traces": True, "metrics": True, "endpoint": receiver.endpoint,
                 "metrics_interval": "1s"},
    }
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen([sys.executable, "-m", "registry_slo", "serve", "--config", str(path)],
                            stderr=(tmp_path / "log").open("wb"))
    try:
        base = f"http://127.0.0.1:{port}"
        exemplars: dict[str, str] = {}

        def collect_exemplars() -> bool:
            try:
                text = httpx.get(f"{base}/metrics",
                                 headers={"Accept": "application/openmetrics-text"}).text
            except httpx.HTTPError:
                return False
            for family in text_string_to_metric_families(text):
                if family.name != "registry_slo_probe_duration_seconds":
                    continue
                for s in family.samples:
                    if s.exemplar is not None:
                        exemplars[s.exemplar.labels["trace_id"]] = s.labels["probe"]
            return len(set(exemplars.values())) == 3

        wait_for(collect_exemplars, 20)
        wait_for(lambda: {s.trace_id for s in receiver.spans} >= set(exemplars), 20)
        roots = {s.trace_id: s for s in receiver.spans if s.parent_span_id is None}
        for trace_id, probe in exemplars.items():
            assert roots[trace_id].attributes["registry_slo.probe"] == probe
        # The same probe results went out as OTLP metrics too.
        wait_for(lambda: any(m.name == "registry_slo.probe.duration" for m in receiver.metrics))
        names = {m.name for m in receiver.metrics}
        assert {"registry_slo.probe.requests", "registry_slo.probe.duration"} <= names
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0, (tmp_path / "log").read_text()[-2000:]


@pytest.mark.parametrize("collector", ["refused", "blackhole"])
async def test_unreachable_collector_never_slows_probing(
    registry: LocalRegistry, collector: str
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if collector == "blackhole":
        listener.listen(0)  # accepts TCP, never speaks gRPC
    else:
        listener.close()
    metrics = ExporterMetrics()
    otel = OpenTelemetry(
        OtelConfig(traces=True, endpoint=f"http://127.0.0.1:{port}", max_queue_size=8,
                   export_timeout=1.0),
        metrics.standard,
    )
    state = region(registry.url)
    scheduler = ProbeScheduler(
        [ScheduledProbe(PullProbe(state), 0.5, 0.0, 2.0),
         ScheduledProbe(AuthProbe(state), 0.5, 0.0, 2.0)],
        metrics.probes, first_run_within=0.05, tracer=otel.tracer,
    )
    scheduler.start()
    await asyncio.sleep(5)
    scheduler.shutdown()
    started = time.monotonic()
    await otel.shutdown(timeout=3)
    assert time.monotonic() - started < 4
    await state.aclose()
    listener.close()

    def value(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    runs = value("registry_slo_probe_requests_total", region="test", probe="pull")
    assert runs >= 8, runs  # ~10 runs in 5 s: nothing waited on the collector
    assert value("registry_slo_probe_success", region="test", probe="pull") == 1
    delays = value("registry_slo_probe_schedule_delay_seconds_count")
    late = delays - value("registry_slo_probe_schedule_delay_seconds_bucket", le="0.25")
    assert late == 0
    lost = (value("registry_slo_otel_spans_total", outcome="dropped")
            + value("registry_slo_otel_spans_total", outcome="failed"))
    assert value("registry_slo_otel_spans_total", outcome="exported") == 0
    assert lost > 0
