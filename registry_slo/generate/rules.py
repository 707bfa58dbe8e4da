"""Prometheus recording rules for the SLOs, with Sloth's names and labels.

For every SLO and region (a :class:`~registry_slo.config.SLOTarget`):

- ``slo:sli_error:ratio_rate<W>`` for W in 5m, 30m, 1h, 2h, 6h, 1d, 3d and the period
  (label ``sloth_window``);
- ``slo:objective:ratio``, ``slo:error_budget:ratio``, ``slo:time_period:days``;
- ``slo:current_burn_rate:ratio`` (5m) and ``slo:period_burn_rate:ratio``;
- ``slo:period_error_budget_remaining:ratio``;
- ``slo:info`` (value 1) carrying the metadata that may change: objective, period, SLI,
  description and the SLO's ``labels``. The recorded series carry only the identity
  labels (``sloth_id``, ``sloth_service``, ``sloth_slo``, ``region``), so changing an
  objective or a team never breaks a series.

In ``full`` mode every window is computed from the exporter's metrics; in ``performance``
mode windows longer than 5m average the 5m recording (``sum_over_time`` /
``count_over_time``), which is cheaper and works on Thanos/Mimir rulers that only see
recorded series. The average weighs each 5m step equally: exact for probes, which run
at a constant rate; for traffic SLIs an approximation that gives quiet hours the weight
of busy ones (as Sloth's optimized rules do). Replication lag is a fraction of time
sampled at each rule evaluation (a subquery); its windows longer than 1d average the 5m
recording in both modes, which counts the same samples without a 43 200-step subquery.
"""

from __future__ import annotations

import math
from typing import Any, Literal, assert_never

from registry_slo._units import format_duration, human_duration
from registry_slo.config import (
    AuthSuccessSLI,
    ProbeLatencySLI,
    ProbeSuccessSLI,
    ReplicationLagSLI,
    SLOTarget,
    TrafficLatencySLI,
    TrafficSuccessSLI,
)
from registry_slo.generate._model import identity, num, period_name, slo_selector
from registry_slo.generate.indicators import (
    EventRatio,
    Indicator,
    LagThreshold,
    indicator,
    sli_threshold,
)
from registry_slo.sli.windows import ALERT_WINDOWS, error_budget, slo_windows

__all__ = [
    "MAX_SUBQUERY_STEPS", "RuleMode", "error_ratio_expr", "info_labels", "recording_rules",
    "subquery_resolution",
]

RuleMode = Literal["full", "performance"]
"""See the module docstring."""

_SHORTEST = ALERT_WINDOWS[0]
_LONGEST_SUBQUERY = 86400
"""Replication-lag windows longer than this average the 5m recording even in full mode:
a 30d subquery would evaluate 43 200 steps at every rule evaluation."""
MAX_SUBQUERY_STEPS = 2000
"""Steps of a replication-lag subquery at most. At a short evaluation interval a 1d
subquery would evaluate 5,760 (15s) to 86,400 (1s) steps at every evaluation; ``promtool
test rules`` refuses about 5,000 ("would load too many samples into memory")."""


def subquery_resolution(window: float, evaluation: float) -> int | None:
    """The step of a replication-lag subquery over ``window`` seconds: ``None`` (the
    evaluation interval, Prometheus' default) while that makes at most
    :data:`MAX_SUBQUERY_STEPS` steps, else the whole seconds that keep it within."""
    if window / evaluation <= MAX_SUBQUERY_STEPS:
        return None
    return math.ceil(window / MAX_SUBQUERY_STEPS)


def _ratio_expr(found: Indicator, window: int, evaluation: float) -> str:
    w = format_duration(window)
    match found:
        case EventRatio(counted, total, le=None):
            failures = f"sum(rate({counted}[{w}]))"
            requests = f"sum(rate({total}[{w}]))"
            return f"(\n  {failures}\n  or\n  0 * {requests}\n)\n/\n({requests} > 0)\n"
        case EventRatio(counted, total):
            fast = f"sum(rate({counted}[{w}]))"
            runs = f"sum(rate({total}[{w}]))"
            return f"1 - (\n  {fast}\n  /\n  ({runs} > 0)\n)\n"
        case LagThreshold(lag, threshold):
            step = subquery_resolution(window, evaluation)
            resolution = "" if step is None else format_duration(step)
            return (
                "avg_over_time(\n"
                f"  (max(1 - ({lag} <= bool {num(threshold)})))[{w}:{resolution}]\n"
                ")\n"
            )
        case _:
            assert_never(found)


def error_ratio_expr(target: SLOTarget, window: int, evaluation: float = 60.0) -> str:
    """PromQL for the SLI's error ratio over ``window`` seconds, from the exporter's series
    (:func:`~registry_slo.generate.indicators.indicator` says which).

    - success SLIs (probe, auth, traffic): bad events / events. A region with no
      failure yet has no failure series, hence the ``or 0 * …``; a window without
      events gives no sample rather than ``NaN``.
    - latency SLIs (probe, traffic): 1 - (events under the threshold / timed events),
      from the histogram bucket.
    - replication lag: the fraction of time the lag of any source is above the
      threshold or unknown (``NaN`` before the first heartbeat), sampled at the rule
      evaluation interval (coarser when that would exceed :data:`MAX_SUBQUERY_STEPS`).

    Args:
        target: the SLO and region.
        window: seconds.
        evaluation: the evaluation interval of the Prometheus that runs the rule.

    Returns:
        A multi-line PromQL expression.

    Raises:
        GenerationError: when a latency threshold is not a histogram bucket boundary.
    """
    return _ratio_expr(indicator(target), window, evaluation)


def _from_short_window(target: SLOTarget, window: int) -> str:
    short = f"slo:sli_error:ratio_rate{format_duration(_SHORTEST)}{slo_selector(target)}"
    w = format_duration(window)
    return (
        f"sum_over_time({short}[{w}])\n"
        "/ ignoring (sloth_window)\n"
        f"count_over_time({short}[{w}])\n"
    )


def _longest_raw_window(found: Indicator, mode: RuleMode) -> float:
    """The longest window computed from the exporter's series; longer windows average
    the 5m recording."""
    if mode == "performance":
        return _SHORTEST
    match found:
        case EventRatio():
            return math.inf
        case LagThreshold():
            return _LONGEST_SUBQUERY  # its expression is a subquery
        case _:
            assert_never(found)


def recording_rules(target: SLOTarget, mode: RuleMode,
                    evaluation: float = 60.0) -> list[dict[str, Any]]:
    """The recording rules of one target, in evaluation order (5m first).

    Args:
        target: the SLO and region.
        mode: ``full`` or ``performance``.
        evaluation: the evaluation interval of the Prometheus that runs the rules.

    Returns:
        Rule dicts (``record``, ``expr``, ``labels``) for a Prometheus rule group.

    Raises:
        GenerationError: when the SLI cannot be expressed (e.g. a latency threshold that
            is not a bucket boundary).
    """
    if mode not in ("full", "performance"):
        raise ValueError(f"unknown rule mode {mode!r}")
    slo = target.slo
    labels = identity(target)
    found = indicator(target)
    longest_raw = _longest_raw_window(found, mode)
    rules: list[dict[str, Any]] = []
    for window in slo_windows(slo.period_seconds):
        expr = (
            _ratio_expr(found, window, evaluation) if window <= longest_raw
            else _from_short_window(target, window)
        )
        rules.append({
            "record": f"slo:sli_error:ratio_rate{format_duration(window)}",
            "expr": expr,
            "labels": {**labels, "sloth_window": format_duration(window)},
        })
    sel = slo_selector(target)
    budget = f"slo:error_budget:ratio{sel}"
    rules += [
        {
            "record": "slo:objective:ratio",
            "expr": f"vector({num(slo.objective_ratio)})",
            "labels": labels,
        },
        {
            "record": "slo:error_budget:ratio",
            "expr": f"vector({num(error_budget(slo.objective_ratio))})",
            "labels": labels,
        },
        {
            "record": "slo:time_period:days",
            "expr": f"vector({slo.period_seconds // 86400})",
            "labels": labels,
        },
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate{format_duration(_SHORTEST)}{sel}\n"
            f"/ ignoring (sloth_window)\n{budget}\n",
            "labels": labels,
        },
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate{period_name(target)}{sel}\n"
            f"/ ignoring (sloth_window)\n{budget}\n",
            "labels": labels,
        },
        {
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": f"1 - slo:period_burn_rate:ratio{sel}",
            "labels": labels,
        },
        {"record": "slo:info", "expr": "vector(1)", "labels": info_labels(target, mode)},
    ]
    return rules


def _traffic_info(target: SLOTarget, operations: tuple[str, ...]) -> dict[str, str]:
    return {"sli_operations": ",".join(operations), "sli_sources": ",".join(target.sources)}


def _sli_labels(target: SLOTarget) -> dict[str, str]:
    """The ``slo:info`` labels that say what the SLI counts: its probe, or its
    operations, sources and failure reasons; its threshold."""
    sli = target.slo.sli
    labels: dict[str, str]
    match sli:
        case ProbeSuccessSLI() | ProbeLatencySLI() | AuthSuccessSLI():
            labels = {"sli_probe": sli.probe_name}
        case TrafficSuccessSLI():
            labels = {**_traffic_info(target, sli.operations),
                      "sli_errors": ",".join(str(r) for r in sli.errors)}
        case TrafficLatencySLI():
            labels = _traffic_info(target, sli.operations)
        case ReplicationLagSLI():
            labels = {}
        case _:
            assert_never(sli)
    threshold = sli_threshold(sli)
    if threshold is not None:
        labels["sli_threshold"] = human_duration(threshold)
    return labels


def info_labels(target: SLOTarget, mode: RuleMode) -> dict[str, str]:
    """The labels of ``slo:info``: identity plus everything that may change."""
    slo = target.slo
    labels = {
        **identity(target),
        "sloth_mode": mode,
        "sloth_objective": num(slo.objective),
        "period": period_name(target),
        "sli_kind": slo.sli.kind,
        **_sli_labels(target),
    }
    if slo.description:
        labels["description"] = slo.description
    return {**labels, **dict(sorted(slo.labels.items()))}
