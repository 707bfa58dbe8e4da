"""The figures of a report, from a target's events per step (a :class:`CountSource`:
Prometheus, or the exporter's own store).

Attainment is good ÷ all events over the whole span, so every event weighs the same (a
busy hour more than a quiet night); replication-lag SLIs have no events and are weighed
by time (the fraction of samples above the threshold). Steps without data are gaps:
shown and excluded, never counted as good.

Incidents are the spans in which a burn-rate alert fired: from the source where it
knows them (Prometheus' ``ALERTS``), else recomputed from the same counts with the
burn-rate table the rules and the engine share (:mod:`registry_slo.sli.windows`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from registry_slo.config import ReplicationLagSLI, SLOTarget
from registry_slo.generate import GenerationError
from registry_slo.report._prometheus import ReportError
from registry_slo.report._span import Span
from registry_slo.sli.windows import BURN_RATE_TIERS, error_budget

__all__ = [
    "AT_RISK_REMAINING",
    "DEFAULT_STEP",
    "CountSource",
    "Incident",
    "SLOResult",
    "StepCounts",
    "compute",
    "runs",
]

DEFAULT_STEP = 300.0
"""Seconds per count: the shortest burn-rate window (5m), so a recomputed incident's
start and end are within one step."""
BURN_DOWN_RESOLUTION = 3600.0
"""Seconds between the points of a burn-down (a month: 720 points per SLO and region)."""
AT_RISK_REMAINING = 0.25
"""An SLO met with less than this share of its budget left is "at risk"."""

Status = Literal["met", "at risk", "missed", "no data"]


@dataclass(frozen=True, slots=True)
class Incident:
    """A span in which burn-rate alerts fired without a break (a page and the tickets
    that follow it are one incident).

    Attributes:
        start: Unix seconds: when the first alert fired.
        end: Unix seconds: the end of the last step an alert fired in.
        severity: ``page`` when a page alert fired in it, else ``ticket``.
        paged: seconds a page alert was firing.
        bad: bad events during it.
        budget_consumed: ``bad`` as a share of the span's error budget.
        top_reason: the failure reason with the most failures during it, when the SLI
            counts failures by reason.
        source: ``alerts`` (Prometheus' ``ALERTS``) or ``recomputed``.
    """

    start: float
    end: float
    severity: str
    paged: float
    bad: float
    budget_consumed: float
    top_reason: str | None
    source: str

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class SLOResult:
    """One SLO in one region over a span. Ratios are in [0, 1]; ``None`` where there
    were no events."""

    slo: str
    region: str
    description: str
    objective: float
    weighting: Literal["events", "time"]
    total: float
    bad: float
    attainment: float | None
    budget_events: float
    budget_minutes: float
    consumed: float | None
    remaining: float | None
    status: Status
    coverage: float
    gaps: list[tuple[float, float]]
    burn_down: list[tuple[float, float]]
    incidents: list[Incident]
    previous_attainment: float | None = None
    previous_consumed: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class StepCounts:
    """A target's events per step: ``times`` are the steps' ends; a step covers
    ``(time - step, time]``; ``None`` marks a step without data (a gap)."""

    times: list[float]
    bad: list[float | None]
    total: list[float | None]


class CountSource(Protocol):
    """Where a report's counts come from: Prometheus, or the exporter's store."""

    @property
    def description(self) -> str:
        """Where the counts come from, in words (``Prometheus at URL``)."""

    def counts(self, target: SLOTarget, span: Span, step: float) -> StepCounts:
        """Events per step over ``span``."""

    def totals(self, target: SLOTarget, span: Span) -> tuple[float, float]:
        """Bad and all events over the whole span (the comparison span)."""

    def alert_spans(self, target: SLOTarget, span: Span, step: float
                    ) -> list[tuple[float, float, str]]:
        """``(start, end, severity)`` of the burn-rate alerts that fired, where the
        source knows them (else empty: they are recomputed)."""

    def top_reason(self, target: SLOTarget, start: float, end: float) -> str | None:
        """The failure reason with the most failures in ``(start, end]``, if known."""


def _gaps(counts: StepCounts, step: float) -> list[tuple[float, float]]:
    gaps: list[tuple[float, float]] = []
    for at, events in zip(counts.times, counts.total, strict=True):
        if events is not None:
            continue
        if gaps and math.isclose(gaps[-1][1], at - step):
            gaps[-1] = (gaps[-1][0], at)
        else:
            gaps.append((at - step, at))
    return gaps


def _recomputed_incidents(counts: StepCounts, target: SLOTarget, step: float
                          ) -> list[tuple[float, float, str]]:
    """Spans in which a burn-rate row's condition held for its ``for``, as the rules
    evaluate it (:func:`~registry_slo.sli.windows.tier_firing`: the error ratio over
    both windows above the row's threshold), at the resolution of one step. In numpy:
    a month has 8,640 steps of 5 minutes, four rows, two windows each."""
    objective = target.slo.objective_ratio
    period = float(target.slo.period_seconds)
    present = np.array([t is not None for t in counts.total], dtype=bool)
    bad = np.cumsum([0.0, *(b or 0.0 for b in counts.bad)])
    total = np.cumsum([0.0, *(t or 0.0 for t in counts.total)])
    index = np.arange(len(counts.times))

    def above(n: int, threshold: float) -> Any:
        lo = np.maximum(0, index + 1 - n)
        events = total[index + 1] - total[lo]
        errors = bad[index + 1] - bad[lo]
        with np.errstate(divide="ignore", invalid="ignore"):
            return (events > 0) & (errors / events > threshold)

    spans: list[tuple[float, float, str]] = []
    for severity in ("page", "ticket"):
        firing = np.zeros(len(counts.times), dtype=bool)
        for tier in (t for t in BURN_RATE_TIERS if t.severity == severity):
            threshold = tier.factor(period) * error_budget(objective)
            held = (present & above(max(1, round(tier.long_window / step)), threshold)
                    & above(max(1, round(tier.short_window / step)), threshold))
            # Consecutive steps the condition has held, ending at each step.
            breaks = np.where(held, 0, index + 1)
            run = index + 1 - np.maximum.accumulate(breaks)
            need = math.ceil(tier.for_seconds / step)
            firing |= (run > need) if need else held
        spans += runs(counts.times, [bool(f) for f in firing], step, severity)
    return spans


def runs(times: Sequence[float], on: Sequence[bool], step: float, severity: str
         ) -> list[tuple[float, float, str]]:
    """The spans of consecutive steps that are ``on``, as ``(start, end, severity)``."""
    found: list[tuple[float, float, str]] = []
    for at, firing in zip(times, on, strict=True):
        if not firing:
            continue
        if found and math.isclose(found[-1][1], at - step) and found[-1][2] == severity:
            found[-1] = (found[-1][0], at, severity)
        else:
            found.append((at - step, at, severity))
    return found


def _connected(spans: list[tuple[float, float, str]]) -> list[list[tuple[float, float, str]]]:
    """Alert spans grouped where they overlap or touch, in time order."""
    groups: list[list[tuple[float, float, str]]] = []
    for span in sorted(spans):
        if groups and span[0] <= max(e for _, e, _ in groups[-1]):
            groups[-1].append(span)
        else:
            groups.append([span])
    return groups


def _union_seconds(spans: list[tuple[float, float]]) -> float:
    total, reached = 0.0, -math.inf
    for start, end in sorted(spans):
        if end > reached:
            total += end - max(start, reached)
            reached = end
    return total


def _attainment(counts: StepCounts) -> tuple[float, float]:
    bad = sum(b for b in counts.bad if b is not None)
    total = sum(t for t in counts.total if t is not None)
    return bad, total


def compute(source: CountSource, target: SLOTarget, span: Span,
            previous: Span | None, step: float = DEFAULT_STEP) -> SLOResult:
    """The figures of ``target`` over ``span`` (and its attainment over ``previous``).

    Raises:
        ReportError: Prometheus cannot be reached or refuses a query, or the SLO
            cannot be expressed as PromQL.
    """
    try:
        counts = source.counts(target, span, step)
    except GenerationError as exc:
        raise ReportError(str(exc)) from None
    objective = target.slo.objective_ratio
    budget_share = error_budget(objective)
    bad, total = _attainment(counts)
    covered = sum(t is not None for t in counts.total)
    coverage = covered / len(counts.times) if counts.times else 0.0
    gaps = _gaps(counts, step)
    notes: list[str] = []
    budget = budget_share * total
    attainment = None if total <= 0 else 1.0 - bad / total
    consumed = None if budget <= 0 else bad / budget
    status: Status
    if attainment is None:
        status = "no data"
        notes.append("no events in the span" if covered else
                     f"{source.description} has no data of this SLO in the span")
    elif attainment < objective:
        status = "missed"
    elif consumed is not None and 1.0 - consumed < AT_RISK_REMAINING:
        status = "at risk"
    else:
        status = "met"
    burn_down: list[tuple[float, float]] = [(span.start, 1.0)]
    spent = 0.0
    every = max(1, round(BURN_DOWN_RESOLUTION / step))
    for i, (at, b) in enumerate(zip(counts.times, counts.bad, strict=True)):
        spent += b or 0.0
        if budget > 0 and ((i + 1) % every == 0 or i == len(counts.times) - 1):
            burn_down.append((at, 1.0 - spent / budget))
    spans = source.alert_spans(target, span, step)
    origin = "alerts"
    if not spans:
        spans, origin = _recomputed_incidents(counts, target, step), "recomputed"
    incidents = []
    for group in _connected(spans):
        start, end = group[0][0], max(e for _, e, _ in group)
        pages = [(s, e) for s, e, severity in group if severity == "page"]
        inside = sum(b or 0.0 for at, b in zip(counts.times, counts.bad, strict=True)
                     if start < at <= end)
        incidents.append(Incident(
            start, end, "page" if pages else "ticket", _union_seconds(pages), inside,
            inside / budget if budget > 0 else 0.0,
            source.top_reason(target, start, end), origin))
    previous_attainment = previous_consumed = None
    if previous is not None:
        prev_bad, prev_total = source.totals(target, previous)
        if prev_total > 0:
            previous_attainment = 1.0 - prev_bad / prev_total
            previous_consumed = prev_bad / (budget_share * prev_total)
    return SLOResult(
        slo=target.slo.name, region=target.region, description=target.slo.description,
        objective=objective,
        weighting="time" if isinstance(target.slo.sli, ReplicationLagSLI) else "events",
        total=total, bad=bad, attainment=attainment, budget_events=budget,
        budget_minutes=budget_share * span.seconds / 60.0, consumed=consumed,
        remaining=None if consumed is None else 1.0 - consumed, status=status,
        coverage=coverage, gaps=gaps, burn_down=burn_down, incidents=incidents,
        previous_attainment=previous_attainment, previous_consumed=previous_consumed,
        notes=notes,
    )
