"""The promtool tests of one SLO's rules: an outage, steady burns, and absent data."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

from registry_slo._units import format_duration
from registry_slo.config import (
    AlertingConfig,
    AuthSuccessSLI,
    ProbeLatencySLI,
    ProbeSuccessSLI,
    ReplicationLagSLI,
    SLOTarget,
    TrafficLatencySLI,
    TrafficSuccessSLI,
)
from registry_slo.generate._model import identity, num, selector, slo_selector
from registry_slo.generate.alerts import (
    ABSENT_ALERT,
    ABSENT_FOR,
    PAGE_ALERT,
    TICKET_ALERT,
    absent_alert,
    burn_rate_alerts,
)
from registry_slo.generate.indicators import EventRatio, LagThreshold, indicator, latency_bucket
from registry_slo.generate.promtool_tests._series import (
    DEFAULT_TIMING,
    Timing,
    alert_test,
    expected_alert,
    no_alerts,
    series,
)
from registry_slo.generate.rules import RuleMode, info_labels, subquery_resolution
from registry_slo.sli.windows import BURN_RATE_TIERS, HOUR, MINUTE, BurnRateTier, error_budget
from registry_slo.vocabulary import (
    INGEST_LINES,
    PROBE_DURATION,
    PROBE_FAILURES,
    PROBE_REQUESTS,
    REGISTRY_DURATION,
    REGISTRY_FAILURES,
    REGISTRY_REQUESTS,
    REPLICATION_LAG,
    Series,
)

__all__ = ["all_pages_bound", "burn_scenarios", "detection_bound", "slo_test_file"]

HEALTHY = 6 * HOUR
"""Healthy history before an outage: enough to fill the 6h window."""
STEADY_HORIZON = max(tier.for_seconds for tier in BURN_RATE_TIERS) + 15 * MINUTE
"""Long enough for every row's ``for`` (1h30m at most), and no longer: promtool's cost
grows with the square of a test's span (every evaluation reads every sample of the
windows longer than the span)."""
RECOVERY_BOUND = 6 * MINUTE
"""The 14.4x page resolves within this after recovery."""
_PAGE_FAST, _PAGE_SLOW = BURN_RATE_TIERS[:2]


def _tier_bound(target: SLOTarget, tier: BurnRateTier, mode: RuleMode,
                t: Timing, began: int = 0) -> tuple[int, int] | None:
    """When a full outage establishes ``tier``'s condition (seconds after its first
    failed scrape), and when its alert fires (the evaluation after ``began``, the time
    of that scrape, plus the condition, plus the row's ``for``); ``None`` when no
    outage can.

    The long window crosses the threshold after ``factor * budget * long window``
    seconds of failures; the exporter's failure series is born at the first failure, so
    ``rate()`` sees failures one scrape late; then comes the next rule evaluation and
    the row's ``for``. In performance mode the long window averages 5m ratios, which
    ramp up over 5 minutes: half of that more. A replication-lag subquery coarser than
    the evaluation interval (:func:`~registry_slo.generate.rules.subquery_resolution`)
    may see the outage one of its steps later.
    """
    slo = target.slo
    threshold = tier.factor(slo.period_seconds) * error_budget(slo.objective_ratio)
    if threshold >= 1:
        return None
    condition = t.scrape * (1 + math.ceil(threshold * tier.long_window / t.scrape))
    if mode == "performance":
        condition += _PAGE_FAST.short_window // 2
    elif isinstance(indicator(target), LagThreshold):
        condition += subquery_resolution(tier.long_window, t.evaluation) or 0
    return condition, t.round_up(began + condition) + tier.for_seconds


def detection_bound(target: SLOTarget, mode: RuleMode = "full",
                    t: Timing = DEFAULT_TIMING) -> int | None:
    """Seconds from the first failed scrape of a full outage to the 14.4x page, or
    ``None`` when a full outage cannot page (an objective below about 93%).

    2 minutes at 99.9% (30s scrapes, 1m evaluations).
    """
    bound = _tier_bound(target, _PAGE_FAST, mode, t)
    return None if bound is None else bound[1]


def all_pages_bound(mode: RuleMode = "full", t: Timing = DEFAULT_TIMING) -> int:
    """Seconds after recovery by which every page has resolved: the longest page short
    window (plus the 5m recording it averages in performance mode) and one evaluation."""
    longest = max(t.short_window for t in BURN_RATE_TIERS if t.severity == "page")
    if mode == "performance":
        longest += _PAGE_FAST.short_window
    return longest + t.evaluation


def burn_scenarios(target: SLOTarget) -> list[float]:
    """The steady burn rates to test: 0.5 (half the budget) and 2 (the issue's
    statements), and one rate in every gap between the period's factors and above the
    highest, so each row is seen both below and above its threshold.

    Rates too close (within 5%) to a factor, or whose error ratio would exceed 1, are
    left out.
    """
    slo = target.slo
    budget = error_budget(slo.objective_ratio)
    factors = sorted({t.factor(slo.period_seconds) for t in BURN_RATE_TIERS})
    bounds = [0.0, *factors, factors[-1] * 3]
    rates = {0.5, 2.0}
    for low, high in itertools.pairwise(bounds):
        if any(low < rate < high for rate in rates):
            continue
        middle = (low + high) / 2
        rounded = float(f"{middle:.2g}")
        rates.add(rounded if low < rounded < high else middle)
    return sorted(
        rate for rate in rates
        if rate * budget < 1 and all(abs(rate - f) > 0.05 * f for f in factors)
    )


@dataclass(frozen=True)
class _Shape:
    """Per-scrape error indicator: 1 = every event of the scrape bad, 0 = all good."""

    samples: int
    bad: Callable[[int], float]


def _histogram(histogram: Series, labels: dict[str, str], target: SLOTarget,
               runs: Sequence[float], good: Sequence[float]) -> list[dict[str, str]]:
    """A duration histogram: every event timed, the good ones under the threshold."""
    return [
        series(histogram.count, labels, runs),
        series(histogram.bucket, {**labels, "le": latency_bucket(target)}, good),
    ]


def _traffic(target: SLOTarget, operations: tuple[str, ...]) -> dict[str, str]:
    """One request a scrape, of the SLI's first operation, read by the target's first
    source."""
    return {"region": target.region, "source": target.sources[0], "operation": operations[0]}


def _lag(threshold: float, shape: _Shape, t: Timing) -> list[float]:
    """Behind: the lag is over the threshold and grows by a scrape interval a scrape."""
    lag: list[float] = []
    behind = 0
    for i in range(shape.samples):
        behind = behind + 1 if shape.bad(i) else 0
        lag.append(threshold + t.scrape * behind if behind else 1.0)
    return lag


def _sli_series(target: SLOTarget, shape: _Shape, born: bool,
                t: Timing) -> list[dict[str, str]]:
    """The exporter's series for ``target``'s SLI with the given per-scrape badness.

    Args:
        target: the SLO and region.
        shape: how bad each scrape is.
        born: model a failure counter that only exists from its first failure (the
            exporter's behaviour) instead of one starting at zero.
    """
    sli = target.slo.sli
    n = shape.samples
    bad_total: list[float] = []
    total = 0.0
    for i in range(n):
        total += shape.bad(i) if i else 0.0
        bad_total.append(total)
    runs = [float(i) for i in range(n)]
    good = [runs[i] - bad_total[i] for i in range(n)]
    failures: list[float | None] = list(bad_total)
    if born:
        failures = [v if v > 0 else None for v in bad_total]
    region = target.region
    match sli:
        case ProbeSuccessSLI() | AuthSuccessSLI():
            labels = {"region": region, "probe": sli.probe_name}
            return [
                series(PROBE_REQUESTS.total, labels, runs),
                series(PROBE_FAILURES.total, {**labels, "reason": "connect"}, failures),
            ]
        case ProbeLatencySLI():
            return _histogram(PROBE_DURATION, {"region": region, "probe": sli.probe}, target,
                              runs, good)
        case TrafficSuccessSLI():
            labels = _traffic(target, sli.operations)
            return [
                series(REGISTRY_REQUESTS.total, {**labels, "code": "200"}, good),
                series(REGISTRY_REQUESTS.total, {**labels, "code": "503"}, failures),
                # The exporter creates a traffic SLI's failure series at zero.
                series(REGISTRY_FAILURES.total, {**labels, "reason": str(sli.errors[0])},
                       bad_total),
            ]
        case TrafficLatencySLI():
            return _histogram(REGISTRY_DURATION, _traffic(target, sli.operations), target,
                              runs, good)
        case ReplicationLagSLI():
            return [series(REPLICATION_LAG.name, {"region": region, "source_region": "source"},
                           _lag(sli.threshold, shape, t))]
        case _:
            assert_never(sli)


def _labelled(name: str, labels: dict[str, str]) -> str:
    """A series as promtool prints an expected sample: its labels sorted."""
    return name + selector(**dict(sorted(labels.items())))


def _close(target: SLOTarget, record: str, value: float, at: int) -> dict[str, Any]:
    """A promql_expr_test asserting the target's ``record`` equals ``value`` within a
    relative 1e-6 (the input series are written with 12 significant digits)."""
    tolerance = num(max(abs(value), 1.0) * 1e-6)
    return {
        "expr": f"abs({record}{slo_selector(target)} - {num(value)}) < bool {tolerance}",
        "eval_time": format_duration(at),
        "exp_samples": [{"labels": selector(**identity(target)), "value": 1}],
    }


def _outage_test(target: SLOTarget, alerting: AlertingConfig,
                 t: Timing) -> dict[str, Any] | None:
    mode = alerting.rule_mode
    bound = detection_bound(target, mode, t)
    if bound is None:
        return None
    all_pages = all_pages_bound(mode, t)
    outage = max(10 * MINUTE, bound + 5 * MINUTE)
    # The first failed scrape is the first at or after HEALTHY (scrapes need not divide
    # it); every expected time counts from the scrape that shows the change.
    began = t.next_sample(HEALTHY)
    start = began // t.scrape
    stop = start + t.samples(outage)
    recovered = stop * t.scrape
    samples = t.samples(recovered + all_pages + 5 * MINUTE)
    fast_fires = _tier_bound(target, _PAGE_FAST, mode, t, began)
    assert fast_fires is not None  # as the bound is not None
    shape = _Shape(samples, lambda i: 1.0 if start <= i < stop else 0.0)
    fast, slow = burn_rate_alerts(target, alerting)[:2]
    ident = identity(target)
    slow_checks: list[dict[str, Any]] = []
    slow_fires = _tier_bound(target, _PAGE_SLOW, mode, t, began)
    if slow_fires is not None and slow_fires[0] <= outage - MINUTE:
        # The 6x page: the outage crossed its 6h threshold, and its 30m short window
        # keeps it true after recovery, so it fires after its `for` either way.
        labels = {"alertname": PAGE_ALERT, "alertstate": "firing", **ident, **slow["labels"]}
        slow_checks.append({
            "expr": "ALERTS" + selector(alertname=PAGE_ALERT, sloth_id=target.sloth_id,
                                        long_window=slow["labels"]["long_window"],
                                        alertstate="firing"),
            "eval_time": format_duration(slow_fires[1]),
            "exp_samples": [{"labels": _labelled("ALERTS", labels), "value": 1}],
        })
    return t.scenario(
        f"{target.sloth_id}: full outage pages within "
        f"{format_duration(bound)}, resolves within {format_duration(RECOVERY_BOUND)}",
        _sli_series(target, shape, born=True, t=t),
        [
            *no_alerts([PAGE_ALERT, TICKET_ALERT], [HEALTHY - MINUTE]),
            alert_test(PAGE_ALERT, fast_fires[1], [expected_alert(fast, ident)]),
            *no_alerts([PAGE_ALERT], [recovered + all_pages]),
        ],
        [
            _close(target, "slo:period_error_budget_remaining:ratio", 1.0, HEALTHY - MINUTE),
            {
                "expr": "ALERTS" + selector(alertname=PAGE_ALERT, sloth_id=target.sloth_id,
                                            long_window=fast["labels"]["long_window"]),
                "eval_time": format_duration(recovered + RECOVERY_BOUND),
                "exp_samples": [],
            },
            *slow_checks,
        ],
    )


FRESH_HORIZON = HOUR
"""A fresh start is watched this long: no alert at any evaluation."""


def _fresh_series(target: SLOTarget, shape: _Shape, t: Timing) -> list[dict[str, str]]:
    """``target``'s SLI series as a fresh exporter exposes them: failure counters at
    zero from the first scrape, no replication lag before the mirror is first read,
    and the ingest sources of traffic SLIs declared."""
    sli = target.slo.sli
    match sli:
        case ReplicationLagSLI():
            lag: list[float | None] = [None, *_lag(sli.threshold, shape, t)[1:]]
            return [series(REPLICATION_LAG.name,
                           {"region": target.region, "source_region": "source"}, lag)]
        case TrafficSuccessSLI() | TrafficLatencySLI():
            lines = [float(i) for i in range(shape.samples)]
            return [
                *_sli_series(target, shape, born=False, t=t),
                *(series(INGEST_LINES.total, {"source": source}, lines)
                  for source in target.sources),
            ]
        case ProbeSuccessSLI() | ProbeLatencySLI() | AuthSuccessSLI():
            return _sli_series(target, shape, born=False, t=t)
        case _:
            assert_never(sli)


def _fresh_start_tests(targets: Sequence[SLOTarget], alerting: AlertingConfig,
                       t: Timing) -> list[dict[str, Any]]:
    """A fresh, healthy exporter in every region of the SLO raises no alert at any
    evaluation of the first hour; then a full outage in the first region pages within
    :func:`detection_bound`, its first failures counted from zero."""
    target = targets[0]
    mode = alerting.rule_mode
    bound = detection_bound(target, mode, t)
    began = t.next_sample(FRESH_HORIZON)
    stop = began + (bound or 0) + 2 * t.evaluation + MINUTE
    samples = t.samples(stop) + 1
    start = began // t.scrape
    failing = bound is not None
    input_series = _fresh_series(
        target, _Shape(samples, lambda i: 1.0 if failing and i >= start else 0.0), t
    )
    for other in targets[1:]:
        input_series += _fresh_series(other, _Shape(samples, lambda i: 0.0), t)
    quiet = no_alerts([PAGE_ALERT, TICKET_ALERT, ABSENT_ALERT],
                      t.evaluations(0, FRESH_HORIZON - 1))
    checks: list[dict[str, Any]] = []
    name = f"{target.slo.name}: a fresh healthy start raises no alert for an hour"
    fires = _tier_bound(target, _PAGE_FAST, mode, t, began)
    if bound is not None and fires is not None:
        fast = burn_rate_alerts(target, alerting)[0]
        labels = {"alertname": PAGE_ALERT, "alertstate": "firing", **identity(target),
                  **fast["labels"]}
        checks.append({
            "expr": "ALERTS" + selector(alertname=PAGE_ALERT, sloth_id=target.sloth_id,
                                        long_window=fast["labels"]["long_window"],
                                        alertstate="firing"),
            "eval_time": format_duration(fires[1]),
            "exp_samples": [{"labels": _labelled("ALERTS", labels), "value": 1}],
        })
        name += (f"; then the first failures in {target.region} page within "
                 f"{format_duration(bound)}")
    return [t.scenario(name, input_series, quiet, checks)]


def _steady_test(
    target: SLOTarget, alerting: AlertingConfig, rate: float, metadata: bool, t: Timing
) -> dict[str, Any]:
    """A steady burn at ``rate`` x the budget from the start: exactly the tiers whose
    factor is below ``rate`` fire (after their ``for``). With ``metadata``, also check
    the objective, budget, period and info recordings."""
    slo = target.slo
    budget = error_budget(slo.objective_ratio)
    samples = t.samples(STEADY_HORIZON) + 1
    shape = _Shape(samples, lambda i: rate * budget)
    ident = identity(target)
    tier_rules = burn_rate_alerts(target, alerting)
    checks = [STEADY_HORIZON]
    tests: list[dict[str, Any]] = []
    outcome: list[str] = []
    for name, severity in ((PAGE_ALERT, "page"), (TICKET_ALERT, "ticket")):
        expected = [
            expected_alert(rule, ident)
            for tier, rule in zip(BURN_RATE_TIERS, tier_rules, strict=True)
            if tier.severity == severity and rate > tier.factor(slo.period_seconds)
        ]
        tests += [
            alert_test(name, t, expected)
            for t in [HOUR // 2, *checks]
            if not expected or t > max(tier.for_seconds for tier in BURN_RATE_TIERS) + MINUTE
        ]
        windows = [e["exp_labels"]["long_window"] for e in expected]
        outcome.append(f"{severity}s ({', '.join(windows)})" if windows else f"no {severity}")
    end = STEADY_HORIZON
    recorded = [
        _close(target, "slo:current_burn_rate:ratio", rate, end),
        _close(target, "slo:period_burn_rate:ratio", rate, end),
        _close(target, "slo:period_error_budget_remaining:ratio", 1 - rate, end),
    ]
    if metadata:
        recorded += [
            _close(target, "slo:objective:ratio", slo.objective_ratio, end),
            _close(target, "slo:error_budget:ratio", budget, end),
            _close(target, "slo:time_period:days", slo.period_seconds // 86400, end),
            {
                "expr": f"slo:info{slo_selector(target)}",
                "eval_time": format_duration(end),
                "exp_samples": [{
                    "labels": _labelled("slo:info", info_labels(target, alerting.rule_mode)),
                    "value": 1,
                }],
            },
        ]
    return t.scenario(
        f"{target.sloth_id}: a steady {num(rate * budget * 100)}% error ratio "
        f"({num(rate)}x the budget) raises {' and '.join(outcome)}",
        _sli_series(target, shape, born=False, t=t),
        tests,
        recorded,
    )


def _absent_test(targets: Sequence[SLOTarget], alerting: AlertingConfig,
                 t: Timing) -> dict[str, Any]:
    return t.scenario(
        f"{targets[0].slo.name}: the SLI-absent alert fires without series",
        [],
        [
            *no_alerts([ABSENT_ALERT], [ABSENT_FOR - MINUTE]),
            alert_test(ABSENT_ALERT, ABSENT_FOR + MINUTE,
                       [expected_alert(absent_alert(target, alerting), {})
                        for target in targets]),
        ],
    )


def _steady_tests(target: SLOTarget, alerting: AlertingConfig,
                  t: Timing) -> list[dict[str, Any]]:
    """The steady burns of :func:`burn_scenarios`, for SLIs of counted events."""
    found = indicator(target)
    match found:
        case EventRatio():
            return [
                _steady_test(target, alerting, rate, metadata=index == 0, t=t)
                for index, rate in enumerate(burn_scenarios(target))
            ]
        case LagThreshold():
            # Replication lag is sampled per evaluation: a steady fraction of a minute
            # over the threshold cannot be drawn; its outage scenario proves the math.
            return []
        case _:
            assert_never(found)


def slo_test_file(
    targets: Sequence[SLOTarget], rule_file: str, alerting: AlertingConfig,
    t: Timing = DEFAULT_TIMING,
) -> dict[str, Any]:
    """The promtool test document for one SLO (all its regions share ``rule_file``).

    Args:
        targets: the SLO in each of its regions; scenarios run in the first.
        rule_file: the SLO's rule file, relative to the test file.
        alerting: the ``alerting`` section (annotations depend on it).
        t: the scrape and evaluation intervals of the configured Prometheus.

    Returns:
        The test document.
    """
    target = targets[0]
    outage = _outage_test(target, alerting, t)
    return t.document(rule_file, [
        *([outage] if outage is not None else []),
        *_fresh_start_tests(targets, alerting, t),
        *_steady_tests(target, alerting, t),
        _absent_test(targets, alerting, t),
    ])
