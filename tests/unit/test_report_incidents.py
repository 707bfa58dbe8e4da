"""The report's recomputed incidents follow the burn-rate rule the rules and the engine
share: its numpy version equals :func:`registry_slo.sli.windows.tier_firing` evaluated
step by step, with each row's ``for``, on any counts (gaps included)."""

from __future__ import annotations

import math

from harness.fuzzing import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from registry_slo.config import Settings
from registry_slo.report._compute import StepCounts as _Counts
from registry_slo.report._compute import _recomputed_incidents
from registry_slo.report._compute import runs as _runs
from registry_slo.sli.windows import BURN_RATE_TIERS, error_ratio, tier_firing

STEP = 300.0


def _target(objective: float, period: str) -> object:
    settings = Settings.model_validate({
        "regions": [{"name": "r", "url": "http://127.0.0.1:5000"}],
        "slos": [{"name": "a", "sli": {"kind": "probe_success", "probe": "pull"},
                  "objective": objective, "period": period}]})
    return settings.slo_targets()[0]


def _reference(counts: _Counts, target: object, step: float) -> list[tuple[float, float, str]]:
    objective = target.slo.objective_ratio  # type: ignore[attr-defined]
    period = float(target.slo.period_seconds)  # type: ignore[attr-defined]

    bad, total = [0.0], [0.0]
    for b, t in zip(counts.bad, counts.total, strict=True):
        bad.append(bad[-1] + (b or 0.0))
        total.append(total[-1] + (t or 0.0))

    def ratio(i: int, window: float) -> float | None:
        lo = max(0, i + 1 - max(1, round(window / step)))
        events = total[i + 1] - total[lo]
        return error_ratio(min(events, bad[i + 1] - bad[lo]), events)

    spans = []
    for severity in ("page", "ticket"):
        firing = [False] * len(counts.times)
        for tier in (t for t in BURN_RATE_TIERS if t.severity == severity):
            need, held = math.ceil(tier.for_seconds / step), 0
            for i in range(len(counts.times)):
                on = counts.total[i] is not None and tier_firing(
                    tier, ratio(i, tier.long_window), ratio(i, tier.short_window),
                    objective, period)
                held = held + 1 if on else 0
                firing[i] = firing[i] or (held > need if need else on)
        spans += _runs(counts.times, firing, step, severity)
    return spans


@st.composite
def _counts(draw: st.DrawFn) -> _Counts:
    n = draw(st.integers(1, 600))
    bad: list[float | None] = []
    total: list[float | None] = []
    for _ in range(n):
        if draw(st.integers(0, 30)) == 0:
            bad.append(None)
            total.append(None)
            continue
        events = float(draw(st.integers(0, 20)))
        bad.append(float(draw(st.integers(0, int(events)))) if draw(st.booleans()) else 0.0)
        total.append(events)
    return _Counts([STEP * (i + 1) for i in range(n)], bad, total)


@fuzz_settings(100)
@given(counts=_counts(), objective=st.sampled_from([90.0, 99.0, 99.9]),
       period=st.sampled_from(["7d", "28d", "30d"]))
def test_the_numpy_rule_is_the_shared_rule(counts: _Counts, objective: float,
                                           period: str) -> None:
    target = _target(objective, period)
    assert _recomputed_incidents(counts, target, STEP) == _reference(counts, target, STEP)
