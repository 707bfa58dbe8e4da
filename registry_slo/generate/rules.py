"""Prometheus recording rules for the SLOs, with Sloth's names and labels.

For every SLO and region (a :class:`~registry_slo.generate._model.SLOTarget`):

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
from typing import Any, Literal

from prometheus_client.utils import floatToGoString

from registry_slo.config import (
    AuthSuccessSLI,
    ProbeLatencySLI,
    ProbeSuccessSLI,
    ReplicationLagSLI,
    SLOTarget,
    TrafficLatencySLI,
    TrafficSLI,
    TrafficSuccessSLI,
)
from registry_slo.generate._model import (
    GenerationError,
    human_duration,
    identity,
    num,
    period_name,
    selector,
    slo_selector,
)
from registry_slo.sli.windows import ALERT_WINDOWS, error_budget, slo_windows, window_name
from registry_slo.vocabulary import (
    DURATION_BUCKETS,
    PROBE_DURATION,
    PROBE_FAILURES,
    PROBE_REQUESTS,
    REGISTRY_DURATION,
    REGISTRY_FAILURES,
    REGISTRY_REQUESTS,
    REPLICATION_LAG,
)

__all__ = [
    "RuleMode", "error_ratio_expr", "latency_bucket", "recording_rules", "traffic_labels",
]

RuleMode = Literal["full", "performance"]
"""See the module docstring."""

_SHORTEST = ALERT_WINDOWS[0]
_LONGEST_SUBQUERY = 86400
"""Replication-lag windows longer than this average the 5m recording even in full mode:
a 30d subquery would evaluate 43 200 steps at every rule evaluation."""


def latency_bucket(target: SLOTarget) -> str:
    """The ``le`` label value of the histogram bucket at a latency SLO's threshold.

    Raises:
        GenerationError: naming the SLO when the threshold is not a bucket boundary.
    """
    sli = target.slo.sli
    assert isinstance(sli, ProbeLatencySLI | TrafficLatencySLI)
    histogram = (
        "registry_slo_probe_duration_seconds" if isinstance(sli, ProbeLatencySLI)
        else "registry_slo_registry_request_duration_seconds"
    )
    for bound in DURATION_BUCKETS:
        if math.isclose(bound, sli.threshold, rel_tol=1e-9):
            # The exporter's own spelling of the ``le`` label (``2.0``, ``0.25``).
            return str(floatToGoString(bound))  # type: ignore[no-untyped-call]
    choices = ", ".join(human_duration(b) for b in DURATION_BUCKETS)
    raise GenerationError(
        f"SLO {target.slo.name!r}: latency threshold {human_duration(sli.threshold)} is not "
        f"a bucket boundary of {histogram}, so Prometheus cannot count what is under "
        f"it; use one of {choices}"
    )


def traffic_labels(target: SLOTarget) -> dict[str, str | tuple[str, ...]]:
    """The labels that select a traffic SLI's requests: region, sources, operations."""
    sli = target.slo.sli
    assert isinstance(sli, TrafficSLI)
    return {"region": target.region, "source": target.sources, "operation": sli.operations}


def error_ratio_expr(target: SLOTarget, window: int) -> str:
    """PromQL for the SLI's error ratio over ``window`` seconds, from the exporter's series.

    - probe success (and auth success): failed runs / runs. A region with no failure
      yet has no ``registry_slo_probe_failures_total`` series, hence the ``or 0 * …``;
      a window without runs gives no sample rather than ``NaN``.
    - probe latency: 1 - (runs under the threshold / runs), from the histogram bucket.
    - replication lag: the fraction of time the lag of any source is above the
      threshold or unknown (``NaN`` before the first heartbeat), sampled at the rule
      evaluation interval.
    - traffic success: requests that failed for one of the SLI's reasons / requests, as
      the target's ingest sources read them; no sample in a window without traffic.
    - traffic latency: 1 - (requests under the threshold / timed requests).

    Args:
        target: the SLO and region.
        window: seconds.

    Returns:
        A multi-line PromQL expression.
    """
    sli = target.slo.sli
    w = window_name(window)
    if isinstance(sli, ProbeSuccessSLI | AuthSuccessSLI):
        sel = selector(region=target.region, probe=sli.probe_name)
        failures = f"sum(rate({PROBE_FAILURES.total}{sel}[{w}]))"
        requests = f"sum(rate({PROBE_REQUESTS.total}{sel}[{w}]))"
        return f"(\n  {failures}\n  or\n  0 * {requests}\n)\n/\n({requests} > 0)\n"
    if isinstance(sli, ProbeLatencySLI):
        bucket_sel = selector(
            region=target.region, probe=sli.probe, le=latency_bucket(target)
        )
        sel = selector(region=target.region, probe=sli.probe)
        fast = f"sum(rate({PROBE_DURATION.bucket}{bucket_sel}[{w}]))"
        runs = f"sum(rate({PROBE_DURATION.count}{sel}[{w}]))"
        return f"1 - (\n  {fast}\n  /\n  ({runs} > 0)\n)\n"
    if isinstance(sli, TrafficSuccessSLI):
        labels = traffic_labels(target)
        bad_sel = selector(**labels, reason=tuple(str(r) for r in sli.errors))
        failures = f"sum(rate({REGISTRY_FAILURES.total}{bad_sel}[{w}]))"
        requests = f"sum(rate({REGISTRY_REQUESTS.total}{selector(**labels)}[{w}]))"
        return f"(\n  {failures}\n  or\n  0 * {requests}\n)\n/\n({requests} > 0)\n"
    if isinstance(sli, TrafficLatencySLI):
        labels = traffic_labels(target)
        bucket_sel = selector(**labels, le=latency_bucket(target))
        fast = f"sum(rate({REGISTRY_DURATION.bucket}{bucket_sel}[{w}]))"
        timed = f"sum(rate({REGISTRY_DURATION.count}{selector(**labels)}[{w}]))"
        return f"1 - (\n  {fast}\n  /\n  ({timed} > 0)\n)\n"
    assert isinstance(sli, ReplicationLagSLI)
    lag = f"{REPLICATION_LAG.name}{selector(region=target.region)}"
    return (
        "avg_over_time(\n"
        f"  (max(1 - ({lag} <= bool {num(sli.threshold)})))[{w}:]\n"
        ")\n"
    )


def _from_short_window(target: SLOTarget, window: int) -> str:
    short = f"slo:sli_error:ratio_rate{window_name(_SHORTEST)}{slo_selector(target)}"
    w = window_name(window)
    return (
        f"sum_over_time({short}[{w}])\n"
        "/ ignoring (sloth_window)\n"
        f"count_over_time({short}[{w}])\n"
    )


def recording_rules(target: SLOTarget, mode: RuleMode) -> list[dict[str, Any]]:
    """The recording rules of one target, in evaluation order (5m first).

    Args:
        target: the SLO and region.
        mode: ``full`` or ``performance``.

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
    rules: list[dict[str, Any]] = []
    for window in slo_windows(slo.period_seconds):
        use_raw = window == _SHORTEST or (
            mode == "full"
            and not (isinstance(slo.sli, ReplicationLagSLI) and window > _LONGEST_SUBQUERY)
        )
        expr = error_ratio_expr(target, window) if use_raw else _from_short_window(
            target, window
        )
        rules.append({
            "record": f"slo:sli_error:ratio_rate{window_name(window)}",
            "expr": expr,
            "labels": {**labels, "sloth_window": window_name(window)},
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
            "expr": f"slo:sli_error:ratio_rate{window_name(_SHORTEST)}{sel}\n"
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


def info_labels(target: SLOTarget, mode: RuleMode) -> dict[str, str]:
    """The labels of ``slo:info``: identity plus everything that may change."""
    slo = target.slo
    sli = slo.sli
    labels = {
        **identity(target),
        "sloth_mode": mode,
        "sloth_objective": num(slo.objective),
        "period": period_name(target),
        "sli_kind": sli.kind,
    }
    if sli.probe_name is not None:
        labels["sli_probe"] = sli.probe_name
    if isinstance(sli, TrafficSLI):
        labels["sli_operations"] = ",".join(sli.operations)
        labels["sli_sources"] = ",".join(target.sources)
    if isinstance(sli, TrafficSuccessSLI):
        labels["sli_errors"] = ",".join(str(r) for r in sli.errors)
    if isinstance(sli, ProbeLatencySLI | ReplicationLagSLI | TrafficLatencySLI):
        labels["sli_threshold"] = human_duration(sli.threshold)
    if slo.description:
        labels["description"] = slo.description
    return {**labels, **dict(sorted(slo.labels.items()))}
