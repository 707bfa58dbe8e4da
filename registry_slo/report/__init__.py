"""The monthly SLO review: ``registry-slo report``.

From the exporter's series in Prometheus, for every SLO in every region over a span (a
calendar month, the last N days, any range): event-weighted attainment, the error
budget in events and in minutes of full outage, budget consumed and left, status, the
change against the previous span, the budget burn-down, the incidents (burn-rate
alerts that fired), and the spans without data. Written as ``report.html`` (one file,
charts embedded, opens offline), ``report.md`` with its charts beside it, and
``report.json`` with every figure.
"""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, assert_never

from jinja2 import Environment

from registry_slo import __version__
from registry_slo._render import data_uri, environment
from registry_slo._units import human_duration
from registry_slo.config import Settings
from registry_slo.report._changes import Change, changes
from registry_slo.report._charts import burn_down_png
from registry_slo.report._compute import (
    DEFAULT_STEP,
    CountSource,
    Incident,
    SLOResult,
    compute,
)
from registry_slo.report._from_prometheus import PrometheusCounts
from registry_slo.report._from_store import NOTE as store_note
from registry_slo.report._from_store import StoreCounts
from registry_slo.report._health import QUANTILES, RegionHealth, health
from registry_slo.report._prometheus import PrometheusSource, ReportError
from registry_slo.report._span import Span, last, month, span_between

__all__ = [
    "DEFAULT_STEP",
    "Incident",
    "PrometheusSource",
    "RegionHealth",
    "Report",
    "ReportError",
    "SLOResult",
    "Span",
    "StoreCounts",
    "build_report",
    "last",
    "month",
    "span_between",
    "write_report",
]


QUERY_THREADS = 4
"""SLO targets computed at once."""
PARALLEL_CHARTS = 16
"""Charts per worker process below which they are drawn in this process."""


@dataclass(frozen=True, slots=True)
class Report:
    """Every figure of one review."""

    span: Span
    previous: Span | None
    results: list[SLOResult]
    health: list[RegionHealth]
    origin: str
    """Where the figures come from (``N queries to URL``, or the store)."""
    step: float
    generated_at: float
    changes: list[Change] = field(default_factory=list)
    """Every figure against the comparison span (none without one)."""
    version: str = __version__


def build_report(settings: Settings, source: PrometheusSource | StoreCounts, span: Span,
                 previous: Span | None, step: float = DEFAULT_STEP,
                 threads: int = QUERY_THREADS) -> Report:
    """Compute every configured SLO target over ``span``, ``threads`` targets at once,
    from Prometheus (with the registry-health section) or from the exporter's store.

    Raises:
        ReportError: no SLOs configured, a span Prometheus cannot answer for, or
            Prometheus cannot be reached or refuses a query.
    """
    targets = settings.slo_targets()
    if not targets:
        raise ReportError("the configuration has no SLOs: nothing to report")
    now = time.time()
    if span.start >= now:
        raise ReportError(f"{span.label} has not begun yet")
    if span.end > now:  # the current month: up to now, not a future without data
        span = Span(span.start, now, f"{span.label} to date")
    if span.seconds < step:
        raise ReportError(f"{span.label} is shorter than one step ({human_duration(step)})")
    # Queries for several SLO targets at once: Prometheus answers them in parallel, and
    # reading one answer overlaps waiting for the next.
    counts: CountSource = (PrometheusCounts(source) if isinstance(source, PrometheusSource)
                           else source)
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda t: compute(counts, t, span, previous, step), targets))
    if isinstance(source, PrometheusSource):
        names = [region.name for region in settings.regions]
        regions = health(source, names, span)
        before = [] if previous is None else health(source, names, previous, weekly=False)
        origin = f"{source.queries} queries to {source.url}"
    else:
        regions, before = [], []
        origin = f"{counts.description} ({store_note})"
    return Report(span, previous, results, regions, origin, step, time.time(),
                  changes(results, regions, before) if previous is not None else [])


def _pct(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.{digits}f}%"


def _delta(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return "—"
    return f"{100 * (now - before):+.3f} pp"


def _count(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == 0 else f"{value:.2f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _figure(kind: str, value: float | None) -> str:
    """A figure of the "what changed" section, shown the way its kind is."""
    match kind:
        case "ratio":
            return _pct(value)
        case "seconds":
            return _seconds(value)
        case "size":
            return _size(value)
        case _:
            return "—" if value is None else _count(value)


def _change(change: Change) -> str:
    """The difference of a figure: percentage points, a signed duration, size or count."""
    difference = change.difference
    if difference is None:
        return "—"
    match change.kind:
        case "ratio":
            return _delta(change.now, change.before)
        case "seconds":
            return ("+" if difference >= 0 else "-") + _seconds(abs(difference))
        case "size":
            return ("+" if difference >= 0 else "-") + _size(abs(difference))
        case "count":
            return f"{difference:+,.0f}"
        case _ as unreachable:
            assert_never(unreachable)


def _size(value: float | None) -> str:
    if value is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M")


def _slug(result: SLOResult) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_"
                   for c in f"{result.slo}-{result.region}")


def _environment() -> Environment:
    return environment("registry_slo.report", pct=_pct, delta=_delta, count=_count,
                       fmt_time=_time, dur=human_duration, secs=_seconds, size=_size,
                       figure=_figure, change=_change,
                       quantiles=QUANTILES)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: ``null`` instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _charts(report: Report) -> list[bytes]:
    """Every burn-down chart; in worker processes when there are many (a chart takes
    tens of milliseconds of matplotlib)."""
    spans = [report.span] * len(report.results)
    workers = min(os.cpu_count() or 1, len(report.results) // PARALLEL_CHARTS)
    if workers < 2:
        return list(map(burn_down_png, report.results, spans))
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(burn_down_png, report.results, spans, chunksize=8))


def write_report(report: Report, out: Path) -> list[Path]:
    """Write ``report.html``, ``report.md`` (charts in ``charts/``) and ``report.json``
    into ``out``.

    Returns:
        The files written.
    """
    charts_dir = out / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    pngs = _charts(report)
    names = []
    for result, png in zip(report.results, pngs, strict=True):
        path = charts_dir / f"burn-down-{_slug(result)}.png"
        path.write_bytes(png)
        written.append(path)
        names.append(f"charts/{path.name}")
    env = _environment()
    html = env.get_template("report.html.j2").render(
        report=report, charts=[data_uri(p) for p in pngs])
    markdown = env.get_template("report.md.j2").render(
        report=report, chart_files=names)
    document = _finite({
        "span": asdict(report.span), "previous": asdict(report.previous)
        if report.previous else None,
        "origin": report.origin, "step": report.step,
        "generated_at": report.generated_at, "version": report.version,
        "weighting": "events (replication lag: time)",
        "slos": [{**asdict(r), "incidents": [{**asdict(i), "duration": i.duration}
                                             for i in r.incidents]}
                 for r in report.results],
        "health": [{**asdict(h),
                    "pull": {str(q): v for q, v in h.pull.items()},
                    "push": {str(q): v for q, v in h.push.items()},
                    "weeks": [
            {"start": w.start, "end": w.end,
             "pull": {str(q): v for q, v in w.pull.items()},
             "push": {str(q): v for q, v in w.push.items()}} for w in h.weeks]}
            for h in report.health],
        "changes": [{**asdict(c), "difference": c.difference, "verdict": c.verdict}
                    for c in report.changes],
    })
    for name, text in (("report.html", html), ("report.md", markdown),
                       ("report.json", json.dumps(document, indent=2, allow_nan=False))):
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
