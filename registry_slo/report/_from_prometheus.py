"""A report's counts from Prometheus: the exporter's series read with the SLI shapes of
:mod:`registry_slo.generate.indicators` (the same the generated rules read), as
``increase`` over non-overlapping windows of one step; the burn-rate alerts that fired
from ``ALERTS``; failure reasons from the failure counters."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import assert_never

from registry_slo._units import format_duration
from registry_slo.config import SLOTarget
from registry_slo.generate.alerts import PAGE_ALERT, TICKET_ALERT
from registry_slo.generate.indicators import EventRatio, LagThreshold, indicator
from registry_slo.report._compute import StepCounts, runs
from registry_slo.report._prometheus import PrometheusSource, Samples
from registry_slo.report._span import Span
from registry_slo.vocabulary import PROBE_FAILURES, REGISTRY_FAILURES

__all__ = ["PrometheusCounts"]


def _exprs(target: SLOTarget, step: float) -> tuple[str, str, bool]:
    """PromQL for (bad or good events, all events) per step, and whether the first
    counts the good ones."""
    w = format_duration(step)
    found = indicator(target)
    match found:
        case EventRatio(counted, total, le=le):
            return (f"sum(increase({counted}[{w}]))", f"sum(increase({total}[{w}]))",
                    le is not None)
        case LagThreshold(lag, threshold):
            # Sampled every 15 s: samples above the threshold or unknown (NaN), of all.
            bad = f"sum_over_time((max(1 - ({lag} <= bool {threshold!r})))[{w}:15s])"
            return bad, f"count_over_time((max({lag}))[{w}:15s])", False
        case _:
            assert_never(found)


def _series(samples: Samples) -> dict[float, float]:
    """The one series of a ``sum(...)`` query (empty when it had no data)."""
    merged: dict[float, float] = {}
    for values in samples.values():
        merged.update(values)
    return merged


def _counts(source: PrometheusSource, target: SLOTarget, span: Span, step: float) -> StepCounts:
    first, all_events, good = _exprs(target, step)
    start = span.start + step
    times = [start + i * step for i in range(int(span.seconds // step))]
    counted = _series(source.range(first, start, span.end, step))
    totals = _series(source.range(all_events, start, span.end, step))
    bad: list[float | None] = []
    total: list[float | None] = []
    for at in times:
        events = totals.get(at)
        if events is None or math.isnan(events):
            bad.append(None)
            total.append(None)
            continue
        part = counted.get(at, 0.0)
        part = 0.0 if math.isnan(part) else part
        value = max(0.0, events - part) if good else min(part, events)
        bad.append(value)
        total.append(events)
    return StepCounts(times, bad, total)


def _totals(source: PrometheusSource, target: SLOTarget, span: Span) -> tuple[float, float]:
    """Bad and all events over the whole span, in two instant queries (the comparison
    span needs no steps)."""
    first, all_events, good = _exprs(target, span.seconds)
    total = sum(_series(source.instant(all_events, span.end)).values())
    counted = sum(_series(source.instant(first, span.end)).values())
    if math.isnan(total) or total <= 0:
        return 0.0, 0.0
    counted = 0.0 if math.isnan(counted) else counted
    return (max(0.0, total - counted) if good else min(counted, total)), total




def _alert_incidents(source: PrometheusSource, target: SLOTarget, span: Span, step: float
                     ) -> list[tuple[float, float, str]]:
    """Spans of the target's burn-rate alerts in ``ALERTS`` (empty when the rules never
    ran on this Prometheus or never fired)."""
    expr = (f'max by (severity) (ALERTS{{alertstate="firing",sloth_id="{target.sloth_id}",'
            f'alertname=~"{PAGE_ALERT}|{TICKET_ALERT}"}})')
    found = source.range(expr, span.start + step, span.end, step)
    spans: list[tuple[float, float, str]] = []
    times = [span.start + step * (i + 1) for i in range(int(span.seconds // step))]
    for labels, values in found.items():
        severity = dict(labels).get("severity", "page")
        spans += runs(times, [at in values for at in times], step, severity)
    return spans


def _top_reason(source: PrometheusSource, target: SLOTarget, start: float, end: float
                ) -> str | None:
    found = indicator(target)
    if not isinstance(found, EventRatio) or found.good:
        return None
    if not found.counted.startswith((PROBE_FAILURES.total, REGISTRY_FAILURES.total)):
        return None
    window = format_duration(max(60.0, round(end - start)))
    samples = source.instant(f"sum by (reason) (increase({found.counted}[{window}]))", end)
    ranked = sorted(((v, dict(k).get("reason", "")) for k, vs in samples.items()
                     for v in vs.values() if v > 0), reverse=True)
    return ranked[0][1] if ranked else None




@dataclass
class PrometheusCounts:
    """:class:`~registry_slo.report._compute.CountSource` over a Prometheus HTTP API."""

    source: PrometheusSource

    @property
    def description(self) -> str:
        """``Prometheus at URL``."""
        return f"Prometheus at {self.source.url}"

    def counts(self, target: SLOTarget, span: Span, step: float) -> StepCounts:
        """See :class:`~registry_slo.report._compute.CountSource`."""
        return _counts(self.source, target, span, step)

    def totals(self, target: SLOTarget, span: Span) -> tuple[float, float]:
        """See :class:`~registry_slo.report._compute.CountSource`."""
        return _totals(self.source, target, span)

    def alert_spans(self, target: SLOTarget, span: Span, step: float
                    ) -> list[tuple[float, float, str]]:
        """See :class:`~registry_slo.report._compute.CountSource`."""
        return _alert_incidents(self.source, target, span, step)

    def top_reason(self, target: SLOTarget, start: float, end: float) -> str | None:
        """See :class:`~registry_slo.report._compute.CountSource`."""
        return _top_reason(self.source, target, start, end)
