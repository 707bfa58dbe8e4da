"""The fast exposition path says exactly what prometheus-client's reference renderer says."""

from __future__ import annotations

import math
import random
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as om_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Exemplar

from registry_slo.observation import Observation
from registry_slo.oci import Reason
from registry_slo.telemetry.metrics import ExporterMetrics
from registry_slo.telemetry.probe_metrics import ProbeMetrics
from registry_slo.vocabulary import DURATION_BUCKETS


def populated(seed: int = 7) -> ProbeMetrics:
    rng = random.Random(seed)
    metrics = ProbeMetrics(DURATION_BUCKETS)
    for region in ("us-east", "eu-west", "ap.cache_1"):
        for probe in ("push", "pull", "auth"):
            metrics.configure(region, probe)
            for _ in range(rng.randint(0, 20)):
                ok = rng.random() > 0.3
                duration = rng.choice([0.003, 0.1, 2.0, 2.0000001, 61.0, rng.random() * 5])
                metrics.record(
                    Observation(
                        region=region, operation=probe, source="probe", success=ok,
                        reason=None if ok else rng.choice(list(Reason)),
                        duration_seconds=duration, time=time.time(),
                        phases={"auth": duration / 3, "upload": duration / 2},
                        bytes_sent=rng.randint(0, 10**6), bytes_received=rng.randint(0, 10**6),
                    ),
                    exemplar=Exemplar({"trace_id": f"{rng.getrandbits(128):032x}"}, duration)
                    if rng.random() > 0.5 else None,
                )
            if rng.random() > 0.5:
                metrics.skipped(region, probe)
    return metrics


def reference(metrics: ProbeMetrics, openmetrics: bool) -> str:
    registry = CollectorRegistry()
    registry.register(metrics)
    render = om_latest if openmetrics else generate_latest
    return render(registry).decode()


def samples(text: str, openmetrics: bool) -> dict[tuple[str, tuple[tuple[str, str], ...]], object]:
    parse = om_parse if openmetrics else text_string_to_metric_families
    out: dict[tuple[str, tuple[tuple[str, str], ...]], object] = {}
    for family in parse(text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            out[key] = (s.value, s.exemplar) if openmetrics else s.value
    return out


@pytest.mark.parametrize("openmetrics", [False, True])
def test_fast_render_equals_reference(openmetrics: bool) -> None:
    metrics = populated()
    fast = metrics.render(openmetrics) + ("# EOF\n" if openmetrics else "")
    ref = reference(metrics, openmetrics)
    assert samples(fast, openmetrics) == samples(ref, openmetrics)
    # Same families, same types, same HELP.
    parse = om_parse if openmetrics else text_string_to_metric_families
    assert [(f.name, f.type, f.documentation) for f in parse(fast)] == [
        (f.name, f.type, f.documentation) for f in parse(ref)]


def test_bucket_boundaries_are_inclusive() -> None:
    metrics = ProbeMetrics((1.0, 2.0))
    for value in (1.0, 2.0, 2.5):
        metrics.record(Observation(region="r", operation="pull", source="probe", success=True,
                                   reason=None, duration_seconds=value, time=0.0))
    lines = [line for line in metrics.render(False).splitlines()
             if line.startswith("registry_slo_probe_duration_seconds_bucket")]
    assert [line.rsplit(" ", 1)[1] for line in lines] == ["1.0", "2.0", "3.0"]


def test_exporter_render_is_complete_and_parses() -> None:
    metrics = ExporterMetrics()
    metrics.probes.configure("r", "pull")
    for openmetrics in (False, True):
        text = metrics.render(openmetrics).decode()
        names = {f.name for f in (om_parse if openmetrics else text_string_to_metric_families)(
            text)}
        build = "registry_slo_build" if openmetrics else "registry_slo_build_info"
        assert {"registry_slo_probes_configured", build,
                "process_resident_memory_bytes",
                "registry_slo_probe_schedule_delay_seconds"} <= names
    assert metrics.registry.get_sample_value(
        "registry_slo_probes_configured", {"region": "r", "probe": "pull"}) == 1


def test_replication_lag_has_no_sample_before_the_mirror_is_read() -> None:
    from registry_slo.probes.heartbeat import LagTracker

    metrics = ExporterMetrics()
    tracker = LagTracker("west", "east", now=lambda: 100.0)
    metrics.regions.track_replication("west", "east", tracker.reading)
    labels = {"region": "west", "source_region": "east"}
    get = metrics.registry.get_sample_value
    assert get("registry_slo_replication_lag_seconds", labels) is None
    tracker.checked = True
    value = get("registry_slo_replication_lag_seconds", labels)
    assert value is not None and math.isnan(value)  # read, no heartbeat: unknown
    tracker.see(90.0, "writer")
    assert get("registry_slo_replication_lag_seconds", labels) == 10.0


def test_duration_histograms_gain_boundaries_beside_each_latency_threshold() -> None:
    from registry_slo.config import Settings
    from registry_slo.exporter import Exporter
    from registry_slo.vocabulary import DURATION_BUCKETS, NEAR_THRESHOLD, duration_buckets

    assert duration_buckets() == DURATION_BUCKETS
    settings = Settings.model_validate({
        "regions": [{"name": "r", "url": "http://127.0.0.1:1"}],
        "slos": [
            {"name": "fast", "sli": {"kind": "probe_latency", "probe": "pull",
                                     "threshold": "250ms"}, "objective": 99},
            {"name": "also", "sli": {"kind": "probe_latency", "probe": "push",
                                     "threshold": "2s"}, "objective": 99},
        ],
    })
    bounds = settings.duration_buckets()
    assert set(bounds) - set(DURATION_BUCKETS) == {0.23, 0.27, 1.84, 2.16}
    assert list(bounds) == sorted(bounds)
    # Between the two neighbours a quantile is off by at most (b - a) / a.
    for low, high in ((0.23, 0.25), (0.25, 0.27), (1.84, 2.0), (2.0, 2.16)):
        assert (high - low) / low <= NEAR_THRESHOLD / (1 - NEAR_THRESHOLD) + 1e-9
    # The running exporter's histograms use them, probe and traffic alike.
    exporter = Exporter(settings)
    exporter.metrics.probes.results.record(Observation(
        region="r", operation="pull", source="probe", success=True, reason=None,
        duration_seconds=0.26, time=0.0))
    text = exporter.metrics.render().decode()
    assert 'registry_slo_probe_duration_seconds_bucket{region="r",probe="pull",le="0.27"} 1' \
        in text
    assert 'registry_slo_probe_duration_seconds_bucket{region="r",probe="pull",le="0.25"} 0' \
        in text
