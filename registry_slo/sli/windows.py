"""Windows, error budgets and burn rates: the math shared by the SLI engine and the generator.

Everything here is a pure function of numbers; durations are seconds. The burn-rate alert
table is the Google SRE Workbook's multi-window, multi-burn-rate table (chapter 5,
"Alerting on SLOs"), defined by the *fraction of the period's error budget* each row
spends in its long window, so the factors scale with the period::

    factor = budget_fraction * period / long_window

which gives the Workbook's 14.4, 6, 3 and 1 for a 30-day period and, for example,
13.44, 5.6, 2.8 and 0.933 for 28 days.

Vocabulary (all ratios are in ``[0, 1]``):

- *objective*: the target good ratio, e.g. ``0.999``;
- *error budget*: ``1 - objective``;
- *error ratio*: bad events / all events over a window;
- *burn rate*: error ratio / error budget (1 spends exactly the budget over the period);
- *budget remaining*: ``1 - burn rate over the whole period``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from registry_slo._units import objective_ratio
from registry_slo.vocabulary import ALERT_WINDOWS, DAY, HOUR, MINUTE

__all__ = [
    "ALERT_WINDOWS",
    "BURN_RATE_TIERS",
    "DAY",
    "HOUR",
    "MINUTE",
    "BurnRateTier",
    "Severity",
    "budget_consumed",
    "budget_remaining",
    "burn_factor",
    "burn_rate",
    "error_budget",
    "error_ratio",
    "objective_ratio",
    "single_failure_burn",
    "slo_windows",
    "tier_firing",
    "time_to_exhaustion",
]

Severity = Literal["page", "ticket"]

@dataclass(frozen=True, slots=True)
class BurnRateTier:
    """One row of the multi-window, multi-burn-rate table.

    The row fires when the error ratio over *both* windows exceeds
    ``factor(period) * error_budget``: the long window proves the burn is significant,
    the short window that it is still going on (so the alert resets quickly).

    Attributes:
        name: a stable identifier, e.g. ``page-1h``.
        severity: ``page`` (wake someone) or ``ticket`` (next business day).
        long_window: seconds.
        short_window: seconds; the Workbook uses 1/12 of the long window.
        budget_fraction: the fraction of the period's error budget spent in the long
            window when the error ratio sits exactly at the threshold.
        for_seconds: how long the condition must hold before the alert fires.
    """

    name: str
    severity: Severity
    long_window: int
    short_window: int
    budget_fraction: float
    for_seconds: int

    def factor(self, period: float) -> float:
        """The burn-rate threshold of this row for an SLO ``period`` seconds long."""
        return burn_factor(self.budget_fraction, self.long_window, period)


BURN_RATE_TIERS: tuple[BurnRateTier, ...] = (
    # 2% of the budget in 1h: 14.4x for 30d. No `for`: crossing the long window's
    # threshold already means 2% of the budget is gone, the 5m short window proves the
    # burn is still going on, and a full outage must page within 2 minutes.
    BurnRateTier("page-1h", "page", HOUR, 5 * MINUTE, 0.02, 0),
    # 5% in 6h: 6x for 30d. A short `for` against flapping at the threshold.
    BurnRateTier("page-6h", "page", 6 * HOUR, 30 * MINUTE, 0.05, 5 * MINUTE),
    # 10% in 1d: 3x for 30d. Tickets are not urgent: hold for a quarter of the short
    # window (2h) ...
    BurnRateTier("ticket-1d", "ticket", DAY, 2 * HOUR, 0.10, 30 * MINUTE),
    # ... and of the 6h short window here. 1x for 30d.
    BurnRateTier("ticket-3d", "ticket", 3 * DAY, 6 * HOUR, 0.10, 90 * MINUTE),
)
"""The Google SRE Workbook's table, fastest first."""


def error_budget(objective: float) -> float:
    """The error budget ``1 - objective`` of an objective given as a ratio."""
    if not 0 < objective < 1:
        raise ValueError(f"objective ratio {objective!r} must be between 0 and 1 (exclusive)")
    return float(1 - Decimal(repr(objective)))


def error_ratio(bad: float, total: float) -> float | None:
    """The error ratio of a window.

    Args:
        bad: bad events (failed probes, slow requests, seconds out of bounds …).
        total: all events.

    Returns:
        ``bad / total``, or ``None`` when the window holds no events.
    """
    if bad < 0 or total < 0:
        raise ValueError("event counts cannot be negative")
    if bad > total:
        raise ValueError(f"bad events ({bad}) exceed all events ({total})")
    if total == 0:
        return None
    return bad / total


def burn_rate(ratio: float, objective: float) -> float:
    """How fast a window's error ratio spends the budget (1 = exactly over the period).

    Args:
        ratio: the window's error ratio.
        objective: the objective as a ratio.

    Returns:
        ``ratio / (1 - objective)``.
    """
    return ratio / error_budget(objective)


def budget_consumed(rate: float, window: float, period: float) -> float:
    """The fraction of the period's budget spent by burning at ``rate`` for ``window`` s."""
    return rate * window / period


def budget_remaining(period_ratio: float, objective: float) -> float:
    """The fraction of the period's budget left (negative once overspent).

    Args:
        period_ratio: the error ratio over the whole period.
        objective: the objective as a ratio.

    Returns:
        ``1 - burn_rate(period_ratio, objective)`` (Sloth's
        ``slo:period_error_budget_remaining:ratio``).
    """
    return 1 - burn_rate(period_ratio, objective)


@functools.cache  # a handful of inputs, asked for at every step of a report
def burn_factor(budget_fraction: float, long_window: float, period: float) -> float:
    """The burn-rate threshold that spends ``budget_fraction`` of the budget in ``long_window``.

    Args:
        budget_fraction: e.g. ``0.02`` for 2% of the budget.
        long_window: the alert's long window in seconds.
        period: the SLO period in seconds.

    Returns:
        ``budget_fraction * period / long_window``, rounded to 10 significant digits so
        that the Workbook's factors come out exactly (``14.4``, not ``14.400000000000002``).
    """
    if long_window <= 0 or period <= 0:
        raise ValueError("windows must be positive")
    return float(f"{budget_fraction * period / long_window:.10g}")


def tier_firing(
    tier: BurnRateTier,
    long_ratio: float | None,
    short_ratio: float | None,
    objective: float,
    period: float,
) -> bool:
    """Whether a burn-rate row's condition holds (ignoring its ``for`` duration).

    Args:
        tier: the row.
        long_ratio: the error ratio over ``tier.long_window`` (``None``: no events).
        short_ratio: the error ratio over ``tier.short_window``.
        objective: the objective as a ratio.
        period: the SLO period in seconds.

    Returns:
        True when both windows burn faster than the row's factor.
    """
    if long_ratio is None or short_ratio is None:
        return False
    threshold = tier.factor(period) * error_budget(objective)
    return long_ratio > threshold and short_ratio > threshold


def time_to_exhaustion(rate: float, period: float, remaining: float = 1.0) -> float:
    """Seconds until the budget is gone when burning steadily at ``rate``.

    Args:
        rate: the burn rate.
        period: the SLO period in seconds.
        remaining: the fraction of the budget still left.

    Returns:
        Seconds (0 if the budget is already spent, ``inf`` when nothing burns).
    """
    if remaining <= 0:
        return 0.0
    if rate <= 0:
        return math.inf
    return remaining * period / rate


def single_failure_burn(events_per_second: float, window: float, objective: float) -> float:
    """The burn rate one bad event causes in a window of a low-traffic SLI (e.g. probes).

    A probe running every 30 seconds makes 120 events an hour: at 99.95% a single failed
    probe burns 16.7x the budget over 1h, above the 14.4x page threshold.

    Args:
        events_per_second: the SLI's event rate (1 / probe interval).
        window: the window in seconds.
        objective: the objective as a ratio.

    Returns:
        The burn rate of one bad event among ``events_per_second * window`` events.
    """
    events = events_per_second * window
    if events <= 0:
        return math.inf
    return burn_rate(min(1.0, 1 / events), objective)


def slo_windows(period: int) -> tuple[int, ...]:
    """Every window an SLO needs, ascending: the alert windows plus the period itself."""
    return tuple(sorted({*ALERT_WINDOWS, period}))
