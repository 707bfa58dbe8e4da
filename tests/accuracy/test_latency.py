"""Probe durations against an injected delay.

A fault proxy in front of a real registry delays every answer by a known ``DELAY``. The
probe's reported duration must be the undelayed duration plus ``DELAY`` per request of
its measured part, within 2 ms + 5 %, for push, pull and auth; so must each phase, and
the phases must add up to the run.

"Undelayed" is the same probe through the same proxy in passthrough, interleaved run by
run with the delayed ones, so the proxy's own cost and the machine's drift cancel; the
medians of ``RUNS`` runs of each are compared. Which requests belong to the measured
part (not to the untimed prepare and cleanup steps) is read from the run's own trace:
every HTTP request is a span under the phase that made it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FaultProxyFactory
from harness import PROBER
from harness.regions import region
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from registry_slo.devenv import LocalRegistry
from registry_slo.observation import Observation
from registry_slo.probes import AuthProbe, Probe, PullProbe, PushProbe, RegionState, execute

from ._record import record

DELAY = 0.2
RUNS = 7
UNTIMED = {"prepare", "cleanup"}


@pytest.fixture
def tracing() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield provider, spans
    provider.shutdown()


def measured_requests(spans: tuple[ReadableSpan, ...]) -> Counter[str]:
    """Requests per phase of one run's measured part, from its trace."""
    by_id = {s.context.span_id: s for s in spans}
    counts: Counter[str] = Counter()
    for span in spans:
        if span.kind is not SpanKind.CLIENT or span.attributes is None \
                or "registry_slo.phase" in span.attributes:
            continue
        phases = []
        parent = span.parent
        while parent is not None and parent.span_id in by_id:
            ancestor = by_id[parent.span_id]
            if ancestor.attributes and "registry_slo.phase" in ancestor.attributes:
                phases.append(str(ancestor.attributes["registry_slo.phase"]))
            parent = ancestor.parent
        if phases and not UNTIMED & set(phases):
            counts[phases[0]] += 1
    return counts


async def one_run(probe: Probe, tracing: tuple[TracerProvider, InMemorySpanExporter]
                  ) -> tuple[Observation, Counter[str]]:
    provider, spans = tracing
    spans.clear()
    observation = await execute(probe, 10, provider.get_tracer("accuracy"))
    assert observation.success, observation.detail
    return observation, measured_requests(spans.get_finished_spans())


def within(measured: float, expected: float) -> bool:
    return abs(measured - expected) <= 0.002 + 0.05 * expected


@pytest.mark.parametrize("kind", ["push", "pull", "auth"])
async def test_reported_durations_carry_exactly_the_injected_delay(
    kind: str, registry: LocalRegistry, htpasswd_registry: LocalRegistry,
    fault_proxy: FaultProxyFactory, tracing: tuple[TracerProvider, InMemorySpanExporter],
    tmp_path: Path,
) -> None:
    # Auth against a registry that asks for credentials: the 401 and the retry both count.
    upstream = htpasswd_registry if kind == "auth" else registry
    proxy = fault_proxy(upstream)
    if kind == "auth":
        state: RegionState = region(proxy.url, "lat", tmp_path, PROBER.username,
                                    PROBER.password)
    else:
        state = region(proxy.url, "lat")
    probe: Probe = {"push": PushProbe, "pull": PullProbe, "auth": AuthProbe}[kind](state)
    try:
        await one_run(probe, tracing)  # warm: canary seeded, connections open
        direct: list[Observation] = []
        delayed: list[Observation] = []
        requests: set[tuple[tuple[str, int], ...]] = set()
        for _ in range(RUNS):
            proxy.passthrough()
            observation, counts = await one_run(probe, tracing)
            direct.append(observation)
            requests.add(tuple(sorted(counts.items())))
            proxy.set_mode("delay", delay=DELAY)
            observation, counts = await one_run(probe, tracing)
            delayed.append(observation)
            requests.add(tuple(sorted(counts.items())))
    finally:
        proxy.passthrough()
        await state.aclose()
    # Every run of a probe makes the same requests: the truth is exact.
    assert len(requests) == 1, requests
    per_phase = dict(next(iter(requests)))
    injected = DELAY * sum(per_phase.values())
    base = statistics.median(o.duration_seconds for o in direct)
    got = statistics.median(o.duration_seconds for o in delayed)
    expected = base + injected
    record("latency", probe=kind, requests=sum(per_phase.values()), injected=injected,
           direct=base, measured=got, error=got - expected)
    assert within(got, expected), (kind, per_phase, base, got, expected)
    for phase, count in per_phase.items():
        phase_base = statistics.median(o.phases.get(phase, 0.0) for o in direct)
        phase_got = statistics.median(o.phases.get(phase, 0.0) for o in delayed)
        assert within(phase_got, phase_base + DELAY * count), (phase, phase_base, phase_got)
    for observation in direct + delayed:
        assert set(observation.phases) == set(per_phase)
        assert within(sum(observation.phases.values()), observation.duration_seconds)
