"""The engine's recent past (registry_slo.sli.history): burn-down and burn-rate lines,
checked against the engine's own window evaluation, which counts another way."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_slo.sli.engine import SLIEngine
from registry_slo.sli.history import RATE_STEP, RATE_WINDOW, SHOWN, burn_down, burn_rates
from registry_slo.sli.windows import BURN_RATE_TIERS, DAY, HOUR, MINUTE

from .helpers import T0, Clock, probe, settings, status_of


def _history(engine: SLIEngine, slo: str, region: str, now: float):  # type: ignore[no-untyped-def]
    (found,) = [h for h in engine.history(now) if h.slo.name == slo and h.region == region]
    return found


def test_lines_agree_with_the_engine_windows() -> None:
    clock = Clock()
    engine = SLIEngine(settings().slo_targets(), clock=clock)
    # Two days of one run a minute; 30 minutes down in the second day.
    start = math.ceil(T0 / DAY) * DAY
    outage = (start + 40 * HOUR, start + 40 * HOUR + 30 * MINUTE)
    for step in range(2 * 24 * 60):
        clock.now = start + step * MINUTE + 7
        engine.observe(probe("east", "pull", success=not outage[0] <= clock.now < outage[1]))
    now = clock.now + 20
    history = _history(engine, "pull-availability", "east", now)
    status = status_of(engine, "pull-availability", "east")
    # The burn-down ends where the engine's budget remaining is.
    assert history.burn_down[-1][0] == now
    assert history.burn_down[-1][1] == pytest.approx(status.budget_remaining)
    # It starts at the first hour with events, is flat before the outage, falls through it.
    assert history.burn_down[0] == (start + HOUR, 1.0)
    before = [v for t, v in history.burn_down if t <= outage[0]]
    assert set(before) == {1.0}
    assert history.burn_down[-1][1] < 0  # 30 of 2,880 runs failed: far over 0.1 %
    # Every burn-rate point equals the engine's 1h window at that moment (evaluated just
    # before it: evaluated later, the engine counts the minute bucket beginning there).
    assert history.burn_rates, "no burn-rate points"
    assert history.burn_rates[0][0] >= now - SHOWN
    for at, rate in history.burn_rates:
        assert at % RATE_STEP == 0 and at <= now
        window = engine.evaluate(at - 0.001).pop(0).window(RATE_WINDOW)
        assert window.burn_rate == pytest.approx(rate, rel=1e-4, abs=1e-3), at
    assert len(history.burn_rates) == SHOWN // RATE_STEP
    # The outage is inside the last day: its points cross the 1h page threshold.
    assert history.threshold == pytest.approx(BURN_RATE_TIERS[0].factor(30 * DAY))
    peak = max(rate for at, rate in history.burn_rates)
    assert peak == pytest.approx(30 / 60 / 0.001)
    assert history.start == now - 30 * DAY and history.end == now


def test_a_target_without_events_has_empty_lines() -> None:
    engine = SLIEngine(settings().slo_targets(), clock=Clock())
    for history in engine.history():
        assert history.burn_down == [] and history.burn_rates == []


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=80),
       st.sampled_from([0.99, 0.999, 0.9]))
def test_burn_down_spends_the_budget_of_the_period(counts: list[tuple[int, int]],
                                                   objective: float) -> None:
    buckets = [(float(i + 1), float(min(b, t)), float(t)) for i, (b, t) in enumerate(counts)]
    line = burn_down(buckets, objective)
    total = sum(t for _, _, t in buckets)
    if total == 0:
        assert line == []
        return
    bad = sum(b for _, b, _ in buckets)
    assert line[-1][1] == pytest.approx(1 - bad / ((1 - objective) * total))
    values = [v for _, v in line]
    assert values == sorted(values, reverse=True)  # never rises: spent budget stays spent


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=0, max_size=400))
def test_burn_rates_are_one_hour_windows_every_five_minutes(
        counts: list[tuple[int, int]]) -> None:
    buckets = [(float(min(b, t)), float(t)) for b, t in counts]
    points = burn_rates(0, MINUTE, buckets, 0.99, 0)
    expected = []
    for end in range(RATE_WINDOW, len(buckets) * MINUTE + 1, RATE_STEP):
        inside = buckets[(end - RATE_WINDOW) // MINUTE: end // MINUTE]
        total = sum(t for _, t in inside)
        if total:
            expected.append((end, sum(b for b, _ in inside) / total / 0.01))
    assert [t for t, _ in points] == [t for t, _ in expected]
    assert [r for _, r in points] == pytest.approx([r for _, r in expected])
