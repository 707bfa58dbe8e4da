"""The report's "what changed" section: every figure of the span beside the comparison
span's, with the difference and whether it moved the good way.

Figures per region: each SLO's attainment and budget consumed, pull and push probe
latency percentiles over the whole span, probe failures (all reasons), the auth failure
rate, replication lag p95 and max, the cache hit ratio, storage use at the end, the
signature and SBOM shares, and tag overwrites. A figure without data in either span is
listed with "—", never compared with 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from registry_slo.report._compute import SLOResult
from registry_slo.report._health import QUANTILES, RegionHealth

__all__ = ["Better", "Change", "Kind", "changes"]

Kind = Literal["ratio", "seconds", "size", "count"]
"""How a figure is shown: a share, a duration, bytes, or a number of events."""
Better = Literal["higher", "lower", "neither"]
"""Which way a figure improves (storage use is neither: it is a fact to plan with)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One figure in both spans.

    Attributes:
        region: the region.
        figure: what is compared, e.g. ``pull p95``.
        kind: how it is shown.
        better: which way it improves.
        now: its value over the span (``None``: no data).
        before: its value over the comparison span.
    """

    region: str
    figure: str
    kind: Kind
    better: Better
    now: float | None
    before: float | None

    @property
    def difference(self) -> float | None:
        """``now - before``; ``None`` unless both have data."""
        if self.now is None or self.before is None:
            return None
        return self.now - self.before

    @property
    def verdict(self) -> Literal["better", "worse", "same", "changed", "no data"]:
        """Whether the figure moved the good way."""
        difference = self.difference
        if difference is None:
            return "no data"
        if abs(difference) <= 1e-12 * max(1.0, abs(self.before or 0.0)):
            return "same"
        if self.better == "neither":
            return "changed"
        return "better" if (difference > 0) == (self.better == "higher") else "worse"


def _health_figures(h: RegionHealth) -> list[tuple[str, Kind, Better, float | None]]:
    latency: list[tuple[str, Kind, Better, float | None]] = [
        (f"{probe} p{round(q * 100)}", "seconds", "lower", figures.get(q))
        for probe, figures in (("pull", h.pull), ("push", h.push)) for q in QUANTILES]
    return [
        *latency,
        ("probe failures", "count", "lower", h.failures),
        ("auth failure rate", "ratio", "lower", h.auth_failure_rate),
        ("replication lag p95", "seconds", "lower", h.lag_p95),
        ("replication lag max", "seconds", "lower", h.lag_max),
        ("cache hit ratio", "ratio", "higher", h.cache_hit_ratio),
        ("storage used at the end", "size", "neither", h.storage_end),
        ("signatures per image", "ratio", "higher", h.signed_share),
        ("SBOMs per image", "ratio", "higher", h.sbom_share),
        ("tag overwrites", "count", "lower", h.tag_overwrites),
    ]


def changes(results: Sequence[SLOResult], now: Sequence[RegionHealth],
            before: Sequence[RegionHealth]) -> list[Change]:
    """Every figure of every region against the comparison span, SLOs first; figures
    without data in both spans are left out."""
    regions = list(dict.fromkeys([*(r.region for r in results), *(h.region for h in now)]))
    current = {h.region: h for h in now}
    previous = {h.region: h for h in before}
    out = []
    for region in regions:
        for r in results:
            if r.region == region:
                out.append(Change(region, f"{r.slo} attainment", "ratio", "higher",
                                  r.attainment, r.previous_attainment))
                out.append(Change(region, f"{r.slo} budget consumed", "ratio", "lower",
                                  r.consumed, r.previous_consumed))
        for (figure, kind, better, value), (_, _, _, old) in zip(
                _health_figures(current.get(region) or RegionHealth(region)),
                _health_figures(previous.get(region) or RegionHealth(region)), strict=True):
            if value is not None or old is not None:
                out.append(Change(region, figure, kind, better, value, old))
    return out
