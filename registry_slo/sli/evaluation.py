"""What the SLI engine reports for one SLO in one region: windows, burn rates, budget.

The numbers come from :mod:`registry_slo.sli.windows` (the math the generated rules use
too); this module only arranges them, and turns them into the JSON of ``/api/v1/slo``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, assert_never

from registry_slo._units import format_duration
from registry_slo.config import (
    AuthSuccessSLI,
    ProbeLatencySLI,
    ProbeSuccessSLI,
    ReplicationLagSLI,
    SLOSpec,
    TrafficLatencySLI,
    TrafficSuccessSLI,
)
from registry_slo.sli.windows import (
    BURN_RATE_TIERS,
    BurnRateTier,
    budget_remaining,
    burn_rate,
    error_budget,
    error_ratio,
    slo_windows,
    tier_firing,
)

__all__ = ["SLOStatus", "TierStatus", "WindowStatus", "describe_sli", "evaluate_target"]


@dataclass(frozen=True, slots=True)
class WindowStatus:
    """One window of one SLO in one region.

    Attributes:
        seconds: the window's length.
        bad: bad events in it (fractional at the window's start: see ``BucketRing``).
        total: all events in it.
        error_ratio: ``bad / total``; ``None`` when the window holds no events.
        burn_rate: ``error_ratio / error budget``; ``None`` likewise.
    """

    seconds: int
    bad: float
    total: float
    error_ratio: float | None
    burn_rate: float | None

    @property
    def name(self) -> str:
        """Prometheus' spelling of the window (``5m``, ``30d``)."""
        return format_duration(self.seconds)


@dataclass(frozen=True, slots=True)
class TierStatus:
    """One row of the burn-rate alert table, evaluated.

    Attributes:
        tier: the row.
        factor: its burn-rate threshold for this SLO's period.
        firing: whether both of its windows burn faster than ``factor`` (ignoring the
            alert's ``for``).
    """

    tier: BurnRateTier
    factor: float
    firing: bool


@dataclass(frozen=True, slots=True)
class SLOStatus:
    """Everything the engine knows about one SLO in one region at one moment.

    Attributes:
        slo: the SLO.
        region: the region.
        evaluated_at: Unix time of the evaluation.
        windows: 5m … 3d and the period, ascending.
        tiers: the burn-rate alert rows, fastest first.
        last_event: Unix time of the newest event counted (``None``: none yet).
    """

    slo: SLOSpec
    region: str
    evaluated_at: float
    windows: tuple[WindowStatus, ...]
    tiers: tuple[TierStatus, ...]
    last_event: float | None

    def window(self, seconds: int) -> WindowStatus:
        """The window of that length."""
        for window in self.windows:
            if window.seconds == seconds:
                return window
        raise KeyError(seconds)

    @property
    def period(self) -> WindowStatus:
        """The whole period's window."""
        return self.window(self.slo.period_seconds)

    @property
    def budget_remaining(self) -> float | None:
        """The fraction of the period's error budget left (negative once overspent);
        ``None`` while the period holds no events."""
        ratio = self.period.error_ratio
        return None if ratio is None else budget_remaining(ratio, self.slo.objective_ratio)

    def to_json(self) -> dict[str, Any]:
        """The JSON of one ``/api/v1/slo`` entry."""
        slo = self.slo
        return {
            "slo": slo.name,
            "region": self.region,
            "description": slo.description,
            "sli": describe_sli(slo),
            "objective": slo.objective,
            "objective_ratio": slo.objective_ratio,
            "error_budget": error_budget(slo.objective_ratio),
            "period": format_duration(slo.period_seconds),
            "period_seconds": slo.period_seconds,
            "labels": dict(sorted(slo.labels.items())),
            "windows": [
                {
                    "window": w.name,
                    "seconds": w.seconds,
                    "bad_events": w.bad,
                    "events": w.total,
                    "error_ratio": w.error_ratio,
                    "burn_rate": w.burn_rate,
                }
                for w in self.windows
            ],
            "current_burn_rate": self.windows[0].burn_rate,
            "period_burn_rate": self.period.burn_rate,
            "error_budget_remaining": self.budget_remaining,
            "alerts": [
                {
                    "name": t.tier.name,
                    "severity": t.tier.severity,
                    "long_window": format_duration(t.tier.long_window),
                    "short_window": format_duration(t.tier.short_window),
                    "factor": t.factor,
                    "firing": t.firing,
                }
                for t in self.tiers
            ],
            "last_update": self.last_event,
            "evaluated_at": self.evaluated_at,
        }


def describe_sli(slo: SLOSpec) -> dict[str, Any]:
    """The SLI as JSON: ``kind`` plus ``probe``, ``operations``, ``errors``,
    ``sources`` and ``threshold_seconds`` where they apply."""
    sli = slo.sli
    out: dict[str, Any] = {"kind": sli.kind}
    match sli:
        case ProbeSuccessSLI() | AuthSuccessSLI():
            out["probe"] = sli.probe_name
        case ProbeLatencySLI():
            out["probe"] = sli.probe_name
            out["threshold_seconds"] = sli.threshold
        case ReplicationLagSLI():
            out["threshold_seconds"] = sli.threshold
        case TrafficSuccessSLI() | TrafficLatencySLI():
            out["operations"] = list(sli.operations)
            if sli.sources is not None:
                out["sources"] = list(sli.sources)
            if isinstance(sli, TrafficSuccessSLI):
                out["errors"] = [str(r) for r in sli.errors]
            else:
                out["threshold_seconds"] = sli.threshold
        case _:
            assert_never(sli)
    return out


def evaluate_target(
    slo: SLOSpec,
    region: str,
    now: float,
    counts: Mapping[int, tuple[float, float]],
    last_event: float | None,
) -> SLOStatus:
    """Turn the window counts of one SLO in one region into its status.

    Args:
        slo: the SLO.
        region: the region.
        now: Unix time of the evaluation.
        counts: window seconds → ``(bad, total)`` for every window of
            :func:`~registry_slo.sli.windows.slo_windows`.
        last_event: Unix time of the newest event counted.

    Returns:
        The status, with error ratios, burn rates and alert rows.
    """
    objective = slo.objective_ratio
    windows = []
    for seconds in slo_windows(slo.period_seconds):
        bad, total = counts[seconds]
        bad = min(bad, total)  # float noise of the fractional first bucket
        ratio = error_ratio(bad, total)
        windows.append(WindowStatus(
            seconds, bad, total, ratio, None if ratio is None else burn_rate(ratio, objective)
        ))
    by_seconds = {w.seconds: w.error_ratio for w in windows}
    period = float(slo.period_seconds)
    tiers = tuple(
        TierStatus(
            tier,
            tier.factor(period),
            tier_firing(tier, by_seconds[tier.long_window], by_seconds[tier.short_window],
                        objective, period),
        )
        for tier in BURN_RATE_TIERS
    )
    return SLOStatus(slo, region, now, tuple(windows), tiers, last_event)
