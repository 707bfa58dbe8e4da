"""The window and burn-rate math (registry_slo.sli.windows)."""

from __future__ import annotations

import math

import pytest

from registry_slo._units import format_duration
from registry_slo.sli.windows import (
    ALERT_WINDOWS,
    BURN_RATE_TIERS,
    DAY,
    HOUR,
    MINUTE,
    budget_consumed,
    budget_remaining,
    burn_factor,
    burn_rate,
    error_budget,
    error_ratio,
    objective_ratio,
    single_failure_burn,
    slo_windows,
    tier_firing,
    time_to_exhaustion,
)

PAGE_1H, PAGE_6H, TICKET_1D, TICKET_3D = BURN_RATE_TIERS


def test_the_workbook_table_for_30_days() -> None:
    assert [t.factor(30 * DAY) for t in BURN_RATE_TIERS] == [14.4, 6.0, 3.0, 1.0]
    assert [(t.long_window, t.short_window) for t in BURN_RATE_TIERS] == [
        (HOUR, 5 * MINUTE), (6 * HOUR, 30 * MINUTE), (DAY, 2 * HOUR), (3 * DAY, 6 * HOUR),
    ]
    assert [t.severity for t in BURN_RATE_TIERS] == ["page", "page", "ticket", "ticket"]
    assert [t.budget_fraction for t in BURN_RATE_TIERS] == [0.02, 0.05, 0.10, 0.10]


def test_factors_scale_with_the_period() -> None:
    assert [t.factor(28 * DAY) for t in BURN_RATE_TIERS] == [13.44, 5.6, 2.8, 0.9333333333]
    assert [t.factor(7 * DAY) for t in BURN_RATE_TIERS] == [3.36, 1.4, 0.7, 0.2333333333]


@pytest.mark.parametrize("period_days", [7, 14, 28, 30, 90])
def test_a_scaled_factor_spends_the_same_budget_fraction(period_days: int) -> None:
    period = period_days * DAY
    for tier in BURN_RATE_TIERS:
        spent = budget_consumed(tier.factor(period), tier.long_window, period)
        assert spent == pytest.approx(tier.budget_fraction, rel=1e-9)


def test_burn_factor_rejects_empty_windows() -> None:
    with pytest.raises(ValueError):
        burn_factor(0.02, 0, 30 * DAY)


def test_objective_and_budget_without_float_noise() -> None:
    assert objective_ratio(99.9) == 0.999
    assert objective_ratio(99.95) == 0.9995
    assert error_budget(0.999) == 0.001
    assert error_budget(objective_ratio(99.99)) == 0.0001
    for bad in (0, 100, -1, 101):
        with pytest.raises(ValueError):
            objective_ratio(bad)
    with pytest.raises(ValueError):
        error_budget(1.0)


def test_error_ratio() -> None:
    assert error_ratio(1, 4) == 0.25
    assert error_ratio(0, 10) == 0.0
    assert error_ratio(0, 0) is None
    with pytest.raises(ValueError):
        error_ratio(5, 4)
    with pytest.raises(ValueError):
        error_ratio(-1, 4)


def test_error_ratio_to_burn_rate_to_budget_remaining() -> None:
    # 30 days of a probe every 30s: 86 400 runs, 0.1% budget = 86.4 failures.
    runs = 30 * DAY / 30
    ratio = error_ratio(43.2, runs)
    assert ratio is not None
    assert burn_rate(ratio, 0.999) == pytest.approx(0.5)
    assert budget_remaining(ratio, 0.999) == pytest.approx(0.5)
    overspent = error_ratio(172.8, runs)
    assert overspent is not None
    assert burn_rate(overspent, 0.999) == pytest.approx(2.0)
    assert budget_remaining(overspent, 0.999) == pytest.approx(-1.0)
    assert budget_remaining(0.0, 0.999) == 1.0


def test_budget_consumed() -> None:
    # 14.4x for an hour of a 30d period spends 2% of the budget.
    assert budget_consumed(14.4, HOUR, 30 * DAY) == pytest.approx(0.02)
    assert budget_consumed(1.0, 30 * DAY, 30 * DAY) == 1.0


def test_tier_firing_needs_both_windows() -> None:
    threshold = 14.4 * 0.001
    above, below = threshold * 1.01, threshold * 0.99
    assert tier_firing(PAGE_1H, above, above, 0.999, 30 * DAY)
    assert not tier_firing(PAGE_1H, above, below, 0.999, 30 * DAY)
    assert not tier_firing(PAGE_1H, below, above, 0.999, 30 * DAY)
    assert not tier_firing(PAGE_1H, None, above, 0.999, 30 * DAY)
    # A 2x burn: a ticket over 3d, neither page nor the 1d ticket.
    two_x = 2 * 0.001
    firing = [t.name for t in BURN_RATE_TIERS if tier_firing(t, two_x, two_x, 0.999, 30 * DAY)]
    assert firing == ["ticket-3d"]


def test_time_to_exhaustion() -> None:
    assert time_to_exhaustion(14.4, 30 * DAY) == pytest.approx(50 * HOUR)
    assert time_to_exhaustion(1.0, 30 * DAY, remaining=0.5) == 15 * DAY
    assert time_to_exhaustion(0.0, 30 * DAY) == math.inf
    assert time_to_exhaustion(3.0, 30 * DAY, remaining=0.0) == 0.0


def test_single_failure_burn_of_a_probe_every_30s() -> None:
    # 120 runs an hour: one failure is 1/120 of the hour.
    assert single_failure_burn(1 / 30, HOUR, 0.999) == pytest.approx(8.333, rel=1e-3)
    assert single_failure_burn(1 / 30, HOUR, 0.9995) == pytest.approx(16.667, rel=1e-3)
    assert single_failure_burn(1 / 30, HOUR, 0.9995) > PAGE_1H.factor(30 * DAY)
    assert single_failure_burn(0, HOUR, 0.999) == math.inf


def test_slo_windows() -> None:
    assert [format_duration(w) for w in slo_windows(30 * DAY)] == [
        "5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d",
    ]
    assert slo_windows(3 * DAY) == ALERT_WINDOWS
    assert format_duration(28 * DAY) == "28d"


def test_for_durations_grow_with_the_tier() -> None:
    fors = [t.for_seconds for t in BURN_RATE_TIERS]
    assert fors == sorted(fors)
    assert PAGE_1H.for_seconds == 0
    for tier in BURN_RATE_TIERS:
        assert tier.for_seconds < tier.short_window
    assert TICKET_1D.for_seconds < TICKET_3D.for_seconds
    assert PAGE_6H.for_seconds <= 5 * MINUTE
