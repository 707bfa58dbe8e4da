"""The recent past of one SLO in one region, from the engine's buckets: what the status
page draws.

- *Budget burn-down* over the current (rolling) period: after each hour, the share of the
  period's error budget left, where the budget is that of all events the period holds so
  far (as ``/api/v1/slo`` computes it). Its last point is the budget remaining now, up to
  the partly counted oldest hour.
- *Burn rate* over the fastest page row's long window (1 hour), every 5 minutes across
  the last day, from the 1-minute buckets: the line the 1-hour page alert compares with
  its threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from registry_slo.config import SLOSpec
from registry_slo.sli.windows import (
    BURN_RATE_TIERS,
    DAY,
    MINUTE,
    burn_rate,
    error_budget,
    error_ratio,
)

__all__ = ["RATE_STEP", "RATE_TIER", "RATE_WINDOW", "SHOWN", "SLOHistory", "burn_down",
           "burn_rates"]

RATE_TIER = BURN_RATE_TIERS[0]
"""The row whose long window the burn-rate line uses (the fastest page row)."""
RATE_WINDOW = RATE_TIER.long_window
"""Seconds each point of the burn-rate line looks back."""
RATE_STEP = 5 * MINUTE
"""Seconds between two points of the burn-rate line."""
SHOWN = DAY
"""Seconds of burn-rate line up to now."""


@dataclass(frozen=True)
class SLOHistory:
    """One SLO in one region over its current period.

    Attributes:
        slo: the SLO.
        region: the region.
        start: Unix time the rolling period starts (``end`` minus the period).
        end: Unix time of the evaluation.
        burn_down: ``(time, budget left)`` after every hour of the period with events;
            empty while the period holds none.
        burn_rates: ``(time, burn rate)`` over :data:`RATE_WINDOW` every
            :data:`RATE_STEP` across the last :data:`SHOWN` seconds (windows without
            events are left out).
        threshold: the burn rate above which :data:`RATE_TIER` pages (with its short
            window agreeing).
    """

    slo: SLOSpec
    region: str
    start: float
    end: float
    burn_down: list[tuple[float, float]]
    burn_rates: list[tuple[float, float]]
    threshold: float


def burn_down(buckets: Sequence[tuple[float, float, float]], objective: float
              ) -> list[tuple[float, float]]:
    """The budget left after each bucket.

    Args:
        buckets: ``(end time, bad, total)`` of consecutive buckets, oldest first.
        objective: the SLO's good ratio, e.g. ``0.999``.

    Returns:
        ``(end time, budget left)`` per bucket from the first with events; ``1`` is all of
        the budget, below ``0`` overspent.
    """
    total = sum(t for _, _, t in buckets)
    if total <= 0:
        return []
    allowed = error_budget(objective) * total
    out = []
    spent = 0.0
    started = False
    for end, bad, events in buckets:
        started = started or events > 0
        spent += bad
        if started:
            out.append((end, 1.0 - spent / allowed))
    return out


def burn_rates(start: float, width: int, buckets: Sequence[tuple[float, float]],
               objective: float, first: float) -> list[tuple[float, float]]:
    """Burn rates over :data:`RATE_WINDOW` every :data:`RATE_STEP`.

    Args:
        start: Unix time the first bucket starts (a multiple of ``width``).
        width: seconds per bucket (divides :data:`RATE_WINDOW` and :data:`RATE_STEP`).
        buckets: ``(bad, total)`` of consecutive buckets from ``start``.
        objective: the SLO's good ratio.
        first: the earliest end time a point may have.

    Returns:
        ``(window end, burn rate)`` for every window that holds events.
    """
    bad = [0.0, *accumulate(b for b, _ in buckets)]
    total = [0.0, *accumulate(t for _, t in buckets)]
    per_window, per_step = RATE_WINDOW // width, RATE_STEP // width
    out = []
    for i in range(per_window, len(buckets) + 1):
        end = start + i * width
        if end < first or (end // width) % per_step:
            continue
        ratio = error_ratio(min(bad[i] - bad[i - per_window], total[i] - total[i - per_window]),
                            total[i] - total[i - per_window])
        if ratio is not None:
            out.append((end, burn_rate(ratio, objective)))
    return out
