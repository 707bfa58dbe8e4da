"""The report's registry-health section: per region, what the SLOs do not show.

Weekly pull and push probe latency (p50, p95, p99, from the duration histograms with
Prometheus' own ``histogram_quantile``), failure reasons ranked, the auth failure rate,
replication lag (p95 and max) of mirrors, the cache hit ratio of pull-through caches,
storage use with its trend and a 30-day projection, the share of pushed manifests that
are signatures and SBOMs, and tag overwrites. One query answers a figure for every
region at once; a figure without data is ``None`` (shown as "—"), never 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from registry_slo._units import format_duration
from registry_slo.report._prometheus import PrometheusSource, Samples
from registry_slo.report._span import Span
from registry_slo.vocabulary import (
    PROBE_DURATION,
    PROBE_FAILURES,
    PROBE_REQUESTS,
    REPLICATION_LAG,
    STORAGE_USED,
    TAG_OVERWRITES,
)

__all__ = ["QUANTILES", "RegionHealth", "Week", "health"]

QUANTILES = (0.5, 0.95, 0.99)
WEEK = 7 * 86400
_PUSHES = "registry_slo_registry_manifest_pushes_total"
_PROJECTION = 30 * 86400


@dataclass(frozen=True, slots=True)
class Week:
    """Probe latency percentiles of one week (the last may be shorter)."""

    start: float
    end: float
    pull: dict[float, float | None]
    push: dict[float, float | None]


@dataclass(slots=True)
class RegionHealth:
    """One region's health figures over the span; ``None``: no data."""

    region: str
    pull: dict[float, float | None] = field(default_factory=dict)
    push: dict[float, float | None] = field(default_factory=dict)
    weeks: list[Week] = field(default_factory=list)
    reasons: list[tuple[str, float]] = field(default_factory=list)
    failures: float | None = None
    auth_failure_rate: float | None = None
    lag_p95: float | None = None
    lag_max: float | None = None
    cache_hit_ratio: float | None = None
    storage_start: float | None = None
    storage_end: float | None = None
    storage_projected: float | None = None
    signed_share: float | None = None
    sbom_share: float | None = None
    tag_overwrites: float | None = None


def _by_region(samples: Samples, key: str = "region") -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, values in samples.items():
        for value in values.values():
            if not math.isnan(value):
                out[dict(labels).get(key, "")] = value
    return out


def _weeks(span: Span) -> list[tuple[float, float]]:
    weeks = []
    start = span.start
    while start < span.end:
        weeks.append((start, min(span.end, start + WEEK)))
        start += WEEK
    return weeks


def health(source: PrometheusSource, regions: Sequence[str], span: Span,
           weekly: bool = True) -> list[RegionHealth]:
    """Every region's figures (as many queries as figures and weeks, not regions);
    without ``weekly``, no weekly latency rows (the comparison span needs none)."""
    found = {region: RegionHealth(region) for region in regions}
    window = format_duration(span.seconds)
    at = span.end

    def each(expr: str, when: float = at) -> dict[str, float]:
        return {r: v for r, v in _by_region(source.instant(expr, when)).items() if r in found}

    def percentiles(start: float, end: float) -> dict[str, dict[float, dict[str, float]]]:
        w = format_duration(end - start)
        return {probe: {q: each(
            f"histogram_quantile({q}, sum by (region, le) (increase("
            f'{PROBE_DURATION.bucket}{{probe="{probe}"}}[{w}])))', end) for q in QUANTILES}
            for probe in ("pull", "push")}

    whole = percentiles(span.start, span.end)
    for region, figure in found.items():
        figure.pull = {q: whole["pull"][q].get(region) for q in QUANTILES}
        figure.push = {q: whole["push"][q].get(region) for q in QUANTILES}
    for start, end in _weeks(span) if weekly else ():
        figures = percentiles(start, end)
        for region, figure in found.items():
            figure.weeks.append(Week(
                start, end,
                {q: figures["pull"][q].get(region) for q in QUANTILES},
                {q: figures["push"][q].get(region) for q in QUANTILES}))
    reasons = source.instant(
        f"sum by (region, reason) (increase({PROBE_FAILURES.total}[{window}])) > 0", at)
    for labels, values in reasons.items():
        named = dict(labels)
        if named.get("region") in found:
            for value in values.values():
                found[named["region"]].reasons.append((named.get("reason", ""), value))
    # No failure series while probes ran: none failed (0), not "no data".
    failures = each(f"sum by (region) (increase({PROBE_FAILURES.total}[{window}])) or "
                    f"0 * sum by (region) (increase({PROBE_REQUESTS.total}[{window}]))")
    for region, figure in found.items():
        figure.reasons.sort(key=lambda pair: (-pair[1], pair[0]))
        figure.failures = failures.get(region)
    auth = each(
        f'sum by (region) (increase({PROBE_FAILURES.total}{{probe="auth"}}[{window}])) / '
        f'(sum by (region) (increase({PROBE_REQUESTS.total}{{probe="auth"}}[{window}])) > 0)')
    lag = f"(max by (region) ({REPLICATION_LAG.name}))[{window}:1m]"
    lag_p95 = each(f"quantile_over_time(0.95, {lag})")
    lag_max = each(f"max_over_time({lag})")
    hits = each(
        f"sum by (region) (increase(registry_slo_cache_hits_total[{window}])) / "
        f"(sum by (region) (increase(registry_slo_cache_requests_total[{window}])) > 0)")
    used = f"max by (region) ({STORAGE_USED.name})"
    storage_end = each(used)
    storage_start = each(used, span.start + 60)
    projected = each(f"max by (region) (predict_linear({STORAGE_USED.name}[{window}], "
                     f"{_PROJECTION}))")
    pushes = source.instant(f"sum by (region, artifact) (increase({_PUSHES}[{window}]))", at)
    kinds: dict[str, dict[str, float]] = {}
    for labels, values in pushes.items():
        named = dict(labels)
        for value in values.values():
            kinds.setdefault(named.get("region", ""), {})[named.get("artifact", "")] = value
    overwrites = each(f"sum by (region) (increase({TAG_OVERWRITES.total}[{window}]))")
    for region, figure in found.items():
        figure.auth_failure_rate = auth.get(region)
        figure.lag_p95, figure.lag_max = lag_p95.get(region), lag_max.get(region)
        figure.cache_hit_ratio = hits.get(region)
        figure.storage_start = storage_start.get(region)
        figure.storage_end = storage_end.get(region)
        figure.storage_projected = projected.get(region)
        figure.tag_overwrites = overwrites.get(region)
        counted = kinds.get(region, {})
        images = counted.get("image", 0.0)
        if images > 0:
            figure.signed_share = min(1.0, counted.get("signature", 0.0) / images)
            figure.sbom_share = min(1.0, counted.get("sbom", 0.0) / images)
    return list(found.values())
