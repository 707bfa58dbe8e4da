"""Availability and latency quantiles against injected ground truth.

- Availability: the fault proxy answers 503 to a random share of a real registry's
  answers (seeded). The exporter's counters and the SLI engine must report exactly the
  runs the proxy failed, and that share must sit within the binomial bound of the
  injected probability.
- Quantiles: the proxy delays each run by a random amount (seeded) around a latency
  SLO's threshold. The p95 that ``histogram_quantile`` reads from the exporter's
  duration histogram must be within 10 % of the exact p95 of the same runs, thanks to
  the buckets the exporter adds beside each threshold; the standard layout alone is
  measured beside it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest
from conftest import FaultProxyFactory
from harness.faultproxy import FaultProxy
from harness.regions import region

from registry_slo.config import Settings
from registry_slo.devenv import LocalRegistry
from registry_slo.observation import Observation
from registry_slo.probes import AuthProbe, PullProbe, execute
from registry_slo.sli.engine import SLIEngine
from registry_slo.telemetry.metrics import ExporterMetrics
from registry_slo.vocabulary import DURATION_BUCKETS, PROBE_DURATION, PROBE_FAILURES, PROBE_REQUESTS

from ._record import record

SEED = 20261203


def settings_for(url: str, threshold: str = "250ms") -> Settings:
    return Settings.model_validate({
        "regions": [{"name": "acc", "url": url}],
        "slos": [
            {"name": "pulls", "sli": {"kind": "probe_success", "probe": "pull"},
             "objective": 99},
            {"name": "auth-fast", "sli": {"kind": "auth_success"}, "objective": 99},
            {"name": "auth-latency", "sli": {"kind": "probe_latency", "probe": "auth",
                                             "threshold": threshold}, "objective": 95},
        ],
    })


async def test_availability_is_exactly_the_failed_runs_and_within_the_binomial_bound(
    registry: LocalRegistry,
) -> None:
    runs, share = 200, 0.05
    with FaultProxy(registry.url, seed=SEED) as proxy:
        await _availability(proxy, runs, share)


async def _availability(proxy: FaultProxy, runs: int, share: float) -> None:
    settings = settings_for(proxy.url)
    state = region(proxy.url, "acc")
    metrics = ExporterMetrics(settings.duration_buckets())
    engine = SLIEngine(settings.slo_targets())
    observations: list[Observation] = []
    try:
        assert (await execute(PullProbe(state), 10)).success  # seeds the canary
        # A pull is four GETs (manifest by tag and by digest, config, layer); the first
        # 503 ends the run, so a failed run holds exactly one injected fault.
        proxy.set_mode("status", status=503, methods=["GET"], path="/(manifests|blobs)/",
                       probability=share)
        for _ in range(runs):
            before = proxy.faults_injected
            observation = await execute(PullProbe(state), 10)
            assert observation.success == (proxy.faults_injected == before), observation
            observations.append(observation)
            metrics.probes.results.record(observation)
            engine.observe(observation)
    finally:
        proxy.passthrough()
        await state.aclose()
    failed = proxy.faults_injected
    labels = {"region": "acc", "probe": "pull"}
    requests = metrics.registry.get_sample_value(PROBE_REQUESTS.total, labels)
    failures = sum(
        metrics.registry.get_sample_value(PROBE_FAILURES.total, {**labels, "reason": reason})
        or 0.0 for reason in ("server_error", "rate_limited", "protocol", "not_found"))
    assert (requests, failures) == (runs, failed)
    (status,) = [s for s in engine.evaluate() if s.slo.name == "pulls"]
    assert (status.period.bad, status.period.total) == (failed, runs)
    # Truth: a run fails when any of its four GETs is drawn.
    truth = 1 - (1 - share) ** 4
    sigma = math.sqrt(truth * (1 - truth) / runs)
    reported = 1 - failures / requests
    record("availability", runs=runs, injected_failure_ratio=truth,
           reported_availability=reported, failed_runs=failed, bound=4 * sigma,
           deviation=(failures / requests) - truth)
    assert abs(failures / requests - truth) <= 4 * sigma, (failures, truth, sigma)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus' ``histogram_quantile`` over cumulative ``(le, count)`` pairs: linear
    interpolation inside the bucket holding rank ``q * count`` (the first bucket starts
    at 0)."""
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    raise AssertionError("unreachable: the +Inf bucket holds every observation")


def exact_quantile(q: float, values: Sequence[float]) -> float:
    """The nearest-rank quantile of the raw values."""
    ordered = sorted(values)
    return ordered[math.ceil(q * len(ordered)) - 1]


def cumulative(values: Sequence[float], bounds: Sequence[float]) -> list[tuple[float, float]]:
    return [(b, float(sum(v <= b for v in values))) for b in [*bounds, math.inf]]


@pytest.mark.parametrize("beside", [0.965, 1.053])
async def test_p95_from_the_histogram_is_within_10_percent_near_the_threshold(
    beside: float, registry: LocalRegistry, fault_proxy: FaultProxyFactory,
) -> None:
    runs, threshold = 100, 0.25
    proxy = fault_proxy(registry)
    settings = settings_for(proxy.url)
    bounds = settings.duration_buckets()
    assert {0.23, 0.25, 0.27} <= set(bounds)
    metrics = ExporterMetrics(bounds)
    state = region(proxy.url, "acc")
    draw = random.Random(SEED)
    durations: list[float] = []
    try:
        for _ in range(runs):
            # One request per auth run: its duration is the delay and a few ms, the delay
            # uniform so that the p95 lands at about `beside` x the threshold.
            proxy.set_mode("delay", delay=draw.uniform(0.0, beside * threshold / 0.95))
            observation = await execute(AuthProbe(state), 10)
            assert observation.success, observation.detail
            durations.append(observation.duration_seconds)
            metrics.probes.results.record(observation)
    finally:
        proxy.passthrough()
        await state.aclose()
    labels = {"region": "acc", "probe": "auth"}
    served = [(b, metrics.registry.get_sample_value(PROBE_DURATION.bucket,
                                                    {**labels, "le": str(b)}) or 0.0)
              for b in bounds]
    served.append((math.inf, metrics.registry.get_sample_value(PROBE_DURATION.count, labels)
                   or 0.0))
    # The exporter's histogram holds exactly the runs' durations.
    assert served == cumulative(durations, bounds)
    exact = exact_quantile(0.95, durations)
    estimate = histogram_quantile(0.95, served)
    standard = histogram_quantile(0.95, cumulative(durations, DURATION_BUCKETS))
    error = abs(estimate - exact) / exact
    record("quantile", runs=runs, beside=beside, threshold=threshold, exact_p95=exact,
           histogram_p95=estimate, error=error, standard_layout_p95=standard,
           standard_layout_error=abs(standard - exact) / exact)
    assert 0.23 <= exact <= 0.27, exact  # the spread put it beside the threshold
    assert error <= 0.10, (exact, estimate)
