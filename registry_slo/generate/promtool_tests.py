"""``promtool test rules`` files that prove the generated rules behave.

For each SLO, in its first region, from the exporter's own series (scraped every 30s,
one probe run, or one request for traffic SLIs, per scrape, rules evaluated every
minute):

- **outage**: six healthy hours, then every probe fails (or is slow, or replication is
  behind). The 1h/5m page fires within the :func:`detection_bound` (2 minutes at 99.9%)
  and resolves within 6 minutes of recovery; the 6h/30m page fires too when the outage
  crosses its threshold; every page is gone within :func:`all_pages_bound` (31 minutes).
- **steady burns** (:func:`burn_scenarios`): 0.5x the budget (0.05% errors at 99.9%),
  2x, and one rate in every gap between the period's factors. Exactly the rows whose
  factor is below the rate fire; the recorded burn rate and budget remaining are right.
- **absent**: without any series the SLI-absent alert fires after 10 minutes in every
  region of the SLO.

Steady rates are modelled as fractional counter increments (an ideal steady rate); the
outage uses the integer counters exactly as the exporter emits them, including the
failure series appearing only at the first failure. Replication lag, sampled once per
evaluation, has the outage and absent scenarios only.

The registry alerts get their own file: probes not running (stalled and never run),
skipped runs, replication lag, blob integrity errors, rejected credentials.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from registry_slo._units import format_duration
from registry_slo.config import (
    AlertingConfig,
    ProbeLatencySLI,
    RegionConfig,
    ReplicationLagSLI,
    Settings,
    SLOTarget,
    TrafficLatencySLI,
    TrafficSLI,
)
from registry_slo.generate import alerts as alert_rules
from registry_slo.generate._model import (
    human_duration,
    identity,
    num,
    slo_selector,
)
from registry_slo.generate.rules import RuleMode, latency_bucket, recording_rules
from registry_slo.sli.windows import BURN_RATE_TIERS, HOUR, MINUTE, error_budget
from registry_slo.vocabulary import (
    CERTIFICATE_EXPIRY,
    PROBE_DURATION,
    PROBE_FAILURES,
    PROBE_LAST_RUN,
    PROBE_REQUESTS,
    PROBE_SKIPPED,
    PROBES_CONFIGURED,
    REGISTRY_DURATION,
    REGISTRY_FAILURES,
    REGISTRY_REQUESTS,
    REPLICATION_LAG,
    STORAGE_CAPACITY,
    STORAGE_USED,
    TAG_OVERWRITES,
)

__all__ = [
    "EVALUATION_INTERVAL",
    "SCRAPE_INTERVAL",
    "all_pages_bound",
    "burn_scenarios",
    "detection_bound",
    "encode_values",
    "registry_test_file",
    "slo_test_file",
]

SCRAPE_INTERVAL = 30
"""Seconds between input samples (one probe run per scrape)."""
EVALUATION_INTERVAL = 60
HEALTHY = 6 * HOUR
"""Healthy history before an outage: enough to fill the 6h window."""
STEADY_HORIZON = 3 * HOUR
"""Long enough for every row's ``for`` (1h30m at most)."""
RECOVERY_BOUND = 6 * MINUTE
"""The 14.4x page resolves within this after recovery."""
_PAGE_FAST = BURN_RATE_TIERS[0]


def encode_values(values: Sequence[float | None]) -> str:
    """Write samples in promtool's expanding notation (``0+1x719 _x3 5x20``).

    Args:
        values: one value per scrape; ``None`` is a missing sample.

    Returns:
        The ``values`` string of a promtool input series.
    """
    parts: list[str] = []
    i, n = 0, len(values)
    while i < n:
        first = values[i]
        j = i + 1
        if first is None:
            while j < n and values[j] is None:
                j += 1
            parts.append("_" if j - i == 1 else f"_x{j - i}")
            i = j
            continue
        following = values[j] if j < n else None
        step = 0.0 if following is None else following - first
        while j < n:
            value = values[j]
            expected = first + step * (j - i)
            if value is None or not math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12):
                break
            j += 1
        count = j - i
        if count == 1:
            parts.append(num(first))
        elif step == 0:
            parts.append(f"{num(first)}x{count - 1}")
        else:
            sign = "+" if step > 0 else "-"
            parts.append(f"{num(first)}{sign}{num(abs(step))}x{count - 1}")
        i = j
    return " ".join(parts)


def _duration(seconds: float) -> str:
    return format_duration(seconds)


def _series(name: str, labels: dict[str, str], values: Sequence[float | None]) -> dict[str, str]:
    matchers = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{matchers}}}", "values": encode_values(values)}


def detection_bound(target: SLOTarget, mode: RuleMode = "full") -> int | None:
    """Seconds from the first failed scrape of a full outage to the 14.4x page, or
    ``None`` when a full outage cannot page (an objective below about 93%).

    The long window crosses the threshold after ``factor * budget * 1h`` seconds of
    failures; the exporter's failure series is born at the first failure, so ``rate()``
    sees failures one scrape late; then comes the next rule evaluation and the row's
    ``for``. 2 minutes at 99.9% (30s scrapes, 1m evaluations). In performance mode the
    long window averages 5m ratios, which ramp up over 5 minutes: half of that more.
    """
    slo = target.slo
    threshold = _PAGE_FAST.factor(slo.period_seconds) * error_budget(slo.objective_ratio)
    if threshold >= 1:
        return None
    seconds = SCRAPE_INTERVAL * (
        1 + math.ceil(threshold * _PAGE_FAST.long_window / SCRAPE_INTERVAL)
    )
    if mode == "performance":
        seconds += _PAGE_FAST.short_window // 2
    return _round_up(seconds) + _PAGE_FAST.for_seconds


def all_pages_bound(mode: RuleMode = "full") -> int:
    """Seconds after recovery by which every page has resolved: the longest page short
    window (plus the 5m recording it averages in performance mode) and one evaluation."""
    longest = max(t.short_window for t in BURN_RATE_TIERS if t.severity == "page")
    if mode == "performance":
        longest += _PAGE_FAST.short_window
    return longest + EVALUATION_INTERVAL


def _round_up(seconds: float) -> int:
    """Up to the next rule evaluation."""
    return math.ceil(seconds / EVALUATION_INTERVAL) * EVALUATION_INTERVAL


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


def _sli_series(target: SLOTarget, shape: _Shape, born: bool) -> list[dict[str, str]]:
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
    region = target.region
    if isinstance(sli, ReplicationLagSLI):
        # Behind: the lag is over the threshold and grows by a scrape interval a scrape.
        lag: list[float | None] = []
        behind = 0
        for i in range(n):
            behind = behind + 1 if shape.bad(i) else 0
            lag.append(sli.threshold + SCRAPE_INTERVAL * behind if behind else 1.0)
        return [_series(REPLICATION_LAG.name, {"region": region, "source_region": "source"}, lag)]
    if isinstance(sli, ProbeLatencySLI):
        timed: str = sli.probe
        return [
            _series(PROBE_DURATION.count, {"region": region, "probe": timed}, runs),
            _series(
                PROBE_DURATION.bucket,
                {"region": region, "probe": timed, "le": latency_bucket(target)},
                good,
            ),
        ]
    failures: list[float | None] = list(bad_total)
    if born:
        failures = [v if v > 0 else None for v in bad_total]
    if isinstance(sli, TrafficSLI):
        # One request a scrape, read by the target's first source.
        labels = {"region": region, "source": target.sources[0],
                  "operation": sli.operations[0]}
        if isinstance(sli, TrafficLatencySLI):
            return [
                _series(REGISTRY_DURATION.count, labels, runs),
                _series(REGISTRY_DURATION.bucket, {**labels, "le": latency_bucket(target)},
                        good),
            ]
        return [
            _series(REGISTRY_REQUESTS.total, {**labels, "code": "200"}, good),
            _series(REGISTRY_REQUESTS.total, {**labels, "code": "503"}, failures),
            # The exporter creates a traffic SLI's failure series at zero.
            _series(REGISTRY_FAILURES.total, {**labels, "reason": str(sli.errors[0])}, bad_total),
        ]
    probe = sli.probe_name or ""
    return [
        _series(PROBE_REQUESTS.total, {"region": region, "probe": probe}, runs),
        _series(
            PROBE_FAILURES.total, {"region": region, "probe": probe, "reason": "connect"}, failures
        ),
    ]


def _alert(name: str, rule: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """An expected alert: the rule's labels and annotations (templates are not used in
    SLO alerts, so they are literal)."""
    assert rule["alert"] == name
    return {
        "exp_labels": {**labels, **rule["labels"]},
        "exp_annotations": dict(rule["annotations"]),
    }


def _close(expr: str, labels: dict[str, str], value: float, at: int) -> dict[str, Any]:
    """A promql_expr_test asserting ``expr`` equals ``value`` within a relative 1e-6
    (the input series are written with 12 significant digits)."""
    matchers = ",".join(f'{k}="{v}"' for k, v in labels.items())
    tolerance = num(max(abs(value), 1.0) * 1e-6)
    return {
        "expr": f"abs({expr} - {num(value)}) < bool {tolerance}",
        "eval_time": _duration(at),
        "exp_samples": [{"labels": f"{{{matchers}}}", "value": 1}],
    }


def _no_alerts(names: Sequence[str], times: Sequence[int]) -> list[dict[str, Any]]:
    return [
        {"alertname": name, "eval_time": _duration(t), "exp_alerts": []}
        for t in times
        for name in names
    ]


def _outage_test(target: SLOTarget, alerting: AlertingConfig) -> dict[str, Any] | None:
    mode = alerting.rule_mode
    bound = detection_bound(target, mode)
    if bound is None:
        return None
    all_pages = all_pages_bound(mode)
    outage = max(10 * MINUTE, bound + 5 * MINUTE)
    start = HEALTHY // SCRAPE_INTERVAL
    stop = start + outage // SCRAPE_INTERVAL
    recovered = HEALTHY + outage
    samples = (recovered + all_pages + 5 * MINUTE) // SCRAPE_INTERVAL
    shape = _Shape(samples, lambda i: 1.0 if start <= i < stop else 0.0)
    fast, slow = alert_rules.burn_rate_alerts(target, alerting)[:2]
    ident = identity(target)
    fast_selector = (
        f'ALERTS{{alertname="{alert_rules.PAGE_ALERT}",sloth_id="{target.sloth_id}",'
        f'long_window="{fast["labels"]["long_window"]}"}}'
    )
    slow_checks: list[dict[str, Any]] = []
    slow_fires = _slow_page_bound(target, mode)
    if slow_fires is not None and slow_fires[0] <= outage - MINUTE:
        # The 6x page: the outage crossed its 6h threshold, and its 30m short window
        # keeps it true after recovery, so it fires after its `for` either way.
        labels = {"alertname": alert_rules.PAGE_ALERT, "alertstate": "firing",
                  **ident, **slow["labels"]}
        slow_checks.append({
            "expr": f'ALERTS{{alertname="{alert_rules.PAGE_ALERT}",'
            f'sloth_id="{target.sloth_id}",long_window="{slow["labels"]["long_window"]}",'
            'alertstate="firing"}',
            "eval_time": _duration(HEALTHY + slow_fires[1]),
            "exp_samples": [{
                "labels": "ALERTS{"
                + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}",
                "value": 1,
            }],
        })
    return {
        "name": f"{target.sloth_id}: full outage pages within "
        f"{_duration(bound)}, resolves within {_duration(RECOVERY_BOUND)}",
        "interval": _duration(SCRAPE_INTERVAL),
        "input_series": _sli_series(target, shape, born=True),
        "alert_rule_test": [
            *_no_alerts([alert_rules.PAGE_ALERT, alert_rules.TICKET_ALERT], [HEALTHY - MINUTE]),
            {
                "alertname": alert_rules.PAGE_ALERT,
                "eval_time": _duration(HEALTHY + bound),
                "exp_alerts": [_alert(alert_rules.PAGE_ALERT, fast, ident)],
            },
            *_no_alerts([alert_rules.PAGE_ALERT], [recovered + all_pages]),
        ],
        "promql_expr_test": [
            _close(f"slo:period_error_budget_remaining:ratio{slo_selector(target)}", ident, 1.0,
                   HEALTHY - MINUTE),
            {
                "expr": fast_selector,
                "eval_time": _duration(recovered + RECOVERY_BOUND),
                "exp_samples": [],
            },
            *slow_checks,
        ],
    }


def _slow_page_bound(target: SLOTarget, mode: RuleMode) -> tuple[int, int] | None:
    """When a full outage establishes the 6x page's condition, and when it fires
    (seconds after the first failed scrape); ``None`` when no outage can."""
    tier = BURN_RATE_TIERS[1]
    slo = target.slo
    threshold = tier.factor(slo.period_seconds) * error_budget(slo.objective_ratio)
    if threshold >= 1:
        return None
    condition = SCRAPE_INTERVAL * (1 + math.ceil(threshold * tier.long_window / SCRAPE_INTERVAL))
    if mode == "performance":
        condition += _PAGE_FAST.short_window // 2
    return condition, _round_up(condition) + tier.for_seconds


def _steady_test(
    target: SLOTarget, alerting: AlertingConfig, rate: float, metadata: bool
) -> dict[str, Any]:
    """A steady burn at ``rate`` x the budget from the start: exactly the tiers whose
    factor is below ``rate`` fire (after their ``for``). With ``metadata``, also check
    the objective, budget, period and info recordings."""
    slo = target.slo
    budget = error_budget(slo.objective_ratio)
    samples = STEADY_HORIZON // SCRAPE_INTERVAL + 1
    shape = _Shape(samples, lambda i: rate * budget)
    ident = identity(target)
    tier_rules = alert_rules.burn_rate_alerts(target, alerting)
    checks = [2 * HOUR, STEADY_HORIZON]
    tests: list[dict[str, Any]] = []
    outcome: list[str] = []
    for name, severity in (
        (alert_rules.PAGE_ALERT, "page"), (alert_rules.TICKET_ALERT, "ticket")
    ):
        expected = [
            _alert(name, rule, ident)
            for tier, rule in zip(BURN_RATE_TIERS, tier_rules, strict=True)
            if tier.severity == severity and rate > tier.factor(slo.period_seconds)
        ]
        tests += [
            {"alertname": name, "eval_time": _duration(t), "exp_alerts": expected}
            for t in [HOUR // 2, *checks]
            if not expected or t > max(tier.for_seconds for tier in BURN_RATE_TIERS) + MINUTE
        ]
        windows = [e["exp_labels"]["long_window"] for e in expected]
        outcome.append(f"{severity}s ({', '.join(windows)})" if windows else f"no {severity}")
    end = STEADY_HORIZON
    info: dict[str, Any] = {
        "expr": f"slo:info{slo_selector(target)}",
        "eval_time": _duration(end),
        "exp_samples": [{
            "labels": "slo:info{"
            + ",".join(
                f'{k}="{v}"'
                for k, v in sorted(next(
                    r for r in recording_rules(target, alerting.rule_mode)
                    if r["record"] == "slo:info"
                )["labels"].items())
            )
            + "}",
            "value": 1,
        }],
    }
    return {
        "name": f"{target.sloth_id}: a steady {num(rate * budget * 100)}% error ratio "
        f"({num(rate)}x the budget) raises {' and '.join(outcome)}",
        "interval": _duration(SCRAPE_INTERVAL),
        "input_series": _sli_series(target, shape, born=False),
        "alert_rule_test": tests,
        "promql_expr_test": [
            _close(f"slo:current_burn_rate:ratio{slo_selector(target)}", ident, rate, end),
            _close(f"slo:period_burn_rate:ratio{slo_selector(target)}", ident, rate, end),
            _close(f"slo:period_error_budget_remaining:ratio{slo_selector(target)}", ident,
                   1 - rate, end),
            *([
                _close(f"slo:objective:ratio{slo_selector(target)}", ident, slo.objective_ratio,
                       end),
                _close(f"slo:error_budget:ratio{slo_selector(target)}", ident, budget, end),
                _close(f"slo:time_period:days{slo_selector(target)}", ident,
                       slo.period_seconds // 86400, end),
                info,
            ] if metadata else []),
        ],
    }


def _absent_test(targets: Sequence[SLOTarget], alerting: AlertingConfig) -> dict[str, Any]:
    first = targets[0]
    after = alert_rules.ABSENT_FOR + MINUTE
    return {
        "name": f"{first.slo.name}: the SLI-absent alert fires without series",
        "interval": _duration(SCRAPE_INTERVAL),
        "input_series": [],
        "alert_rule_test": [
            {
                "alertname": alert_rules.ABSENT_ALERT,
                "eval_time": _duration(alert_rules.ABSENT_FOR - MINUTE),
                "exp_alerts": [],
            },
            {
                "alertname": alert_rules.ABSENT_ALERT,
                "eval_time": _duration(after),
                "exp_alerts": [
                    _alert(
                        alert_rules.ABSENT_ALERT,
                        alert_rules.absent_alert(target, alerting),
                        {},
                    )
                    for target in targets
                ],
            },
        ],
    }


def slo_test_file(
    targets: Sequence[SLOTarget], rule_file: str, alerting: AlertingConfig
) -> dict[str, Any]:
    """The promtool test document for one SLO (all its regions share ``rule_file``).

    Args:
        targets: the SLO in each of its regions; scenarios run in the first.
        rule_file: the SLO's rule file, relative to the test file.
        alerting: the ``alerting`` section (annotations depend on it).

    Returns:
        The test document.
    """
    target = targets[0]
    tests: list[dict[str, Any]] = []
    outage = _outage_test(target, alerting)
    if outage is not None:
        tests.append(outage)
    if not isinstance(target.slo.sli, ReplicationLagSLI):
        # Replication lag is sampled per evaluation: a steady fraction of a minute
        # over the threshold cannot be drawn; its outage scenario proves the math.
        tests += [
            _steady_test(target, alerting, rate, metadata=index == 0)
            for index, rate in enumerate(burn_scenarios(target))
        ]
    tests.append(_absent_test(targets, alerting))
    return {
        "rule_files": [rule_file],
        "evaluation_interval": _duration(EVALUATION_INTERVAL),
        "tests": tests,
    }


def _last_run_values(interval: float, samples: int, stop: int) -> list[float | None]:
    """``registry_slo_probe_last_run_timestamp_seconds``: the start of the latest run,
    runs every ``interval`` seconds until ``stop`` seconds, then none."""
    out: list[float | None] = []
    for i in range(samples):
        now = min(i * SCRAPE_INTERVAL, stop)
        out.append(float(math.floor(now / interval) * interval))
    return out


def _expected(name: str, rules: Sequence[dict[str, Any]], labels: dict[str, str],
              template: dict[str, str]) -> dict[str, Any]:
    """An expected registry alert, with ``{{ $labels.X }}`` rendered from ``template``."""
    rule = next(r for r in rules if r["alert"] == name)
    annotations = {}
    for key, text in rule["annotations"].items():
        for label, value in template.items():
            text = text.replace(f"{{{{ $labels.{label} }}}}", value)
        annotations[key] = text
    return {"exp_labels": {**labels, **rule["labels"]}, "exp_annotations": annotations}


def _registry_tests(region: RegionConfig, settings: Settings) -> list[dict[str, Any]]:
    rules = next(
        g["rules"] for g in alert_rules.registry_alerts(settings)
        if g["name"].endswith(f"/{region.name}")
    )
    name = region.name
    interval = region.probe.interval
    stale = alert_rules.NOT_RUNNING_INTERVALS * interval
    stop = 10 * MINUTE
    samples = (stop + int(stale) + 10 * MINUTE) // SCRAPE_INTERVAL
    last_value = math.floor(stop / interval) * interval
    fires_at = math.ceil((last_value + stale + 1) / EVALUATION_INTERVAL) * EVALUATION_INTERVAL
    never_fires = math.ceil(stale / EVALUATION_INTERVAL) * EVALUATION_INTERVAL
    pull = {"region": name, "probe": "pull"}
    push = {"region": name, "probe": "push"}

    def expect(alert: str, labels: dict[str, str]) -> dict[str, Any]:
        return _expected(alert, rules, labels, labels)

    tests: list[dict[str, Any]] = [{
        "name": f"{name}: a stalled probe and a probe that never ran are not running",
        "interval": _duration(SCRAPE_INTERVAL),
        "input_series": [
            _series(PROBES_CONFIGURED.name, pull, [1.0] * samples),
            _series(PROBES_CONFIGURED.name, push, [1.0] * samples),
            _series(PROBE_LAST_RUN.name, pull, _last_run_values(interval, samples, stop)),
        ],
        "alert_rule_test": [
            *_no_alerts([alert_rules.NOT_RUNNING_ALERT, alert_rules.NEVER_RAN_ALERT], [0]),
            {
                "alertname": alert_rules.NEVER_RAN_ALERT,
                "eval_time": _duration(never_fires),
                "exp_alerts": [expect(alert_rules.NEVER_RAN_ALERT, push)],
            },
            *_no_alerts([alert_rules.NOT_RUNNING_ALERT], [stop]),
            {
                "alertname": alert_rules.NOT_RUNNING_ALERT,
                "eval_time": _duration(fires_at),
                "exp_alerts": [expect(alert_rules.NOT_RUNNING_ALERT, pull)],
            },
            {
                "alertname": alert_rules.NEVER_RAN_ALERT,
                "eval_time": _duration(fires_at),
                "exp_alerts": [expect(alert_rules.NEVER_RAN_ALERT, push)],
            },
        ],
    }]
    skip_from = 10 * MINUTE // SCRAPE_INTERVAL
    skip_window = alert_rules.SKIPPED_INTERVALS * interval
    skip_samples = (10 * MINUTE + int(skip_window) + 5 * MINUTE) // SCRAPE_INTERVAL
    tests.append({
        "name": f"{name}: skipped runs",
        "interval": _duration(SCRAPE_INTERVAL),
        "input_series": [_series(
            PROBE_SKIPPED.total, pull,
            [float(max(0, i - skip_from)) for i in range(skip_samples)],
        )],
        "alert_rule_test": [
            {"alertname": alert_rules.SKIPPED_ALERT, "eval_time": _duration(10 * MINUTE),
             "exp_alerts": []},
            {
                "alertname": alert_rules.SKIPPED_ALERT,
                "eval_time": _duration(10 * MINUTE + skip_window),
                "exp_alerts": [expect(alert_rules.SKIPPED_ALERT, pull)],
            },
        ],
    })
    window = alert_rules.COUNTER_WINDOW
    born = 10 * MINUTE
    again = born + window + 5 * MINUTE
    counter_samples = (again + 5 * MINUTE) // SCRAPE_INTERVAL
    counter: list[float | None] = [
        None if t < born else (1.0 if t < again else 2.0)
        for t in (i * SCRAPE_INTERVAL for i in range(counter_samples))
    ]
    for alert, reason in (
        (alert_rules.BLOB_INTEGRITY_ALERT, "digest_mismatch"),
        (alert_rules.AUTH_REJECTED_ALERT, "auth"),
    ):
        tests.append({
            "name": f"{name}: {alert} fires on the first failure and on each new one",
            "interval": _duration(SCRAPE_INTERVAL),
            "input_series": [_series(PROBE_FAILURES.total, {**pull, "reason": reason}, counter)],
            "alert_rule_test": [
                {"alertname": alert, "eval_time": _duration(born - MINUTE), "exp_alerts": []},
                {"alertname": alert, "eval_time": _duration(born),
                 "exp_alerts": [expect(alert, pull)]},
                {"alertname": alert, "eval_time": _duration(born + window + MINUTE),
                 "exp_alerts": []},
                {"alertname": alert, "eval_time": _duration(again),
                 "exp_alerts": [expect(alert, pull)]},
            ],
        })
    tests += _traffic_tests(region, settings, rules)
    return tests


def _traffic_tests(
    region: RegionConfig, settings: Settings, rules: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Storage, auth failure spike, certificate expiry and protected tag overwrites."""
    alerting = settings.alerting
    name = region.name
    source = {"region": name, "source": f"{name}-metrics"}
    hour = HOUR // SCRAPE_INTERVAL
    storage_for = alert_rules.STORAGE_FOR
    capacity = 1e12
    below = alerting.storage_threshold * capacity * 0.9
    above = min(capacity, alerting.storage_threshold * capacity * 1.1)
    grows_at = 10 * MINUTE
    used = [below if i * SCRAPE_INTERVAL < grows_at else above for i in range(hour)]
    tests: list[dict[str, Any]] = [{
        "name": f"{name}: storage above {num(100 * alerting.storage_threshold)}% of capacity",
        "interval": _duration(SCRAPE_INTERVAL),
        "input_series": [
            _series(STORAGE_USED.name, source, used),
            _series(STORAGE_CAPACITY.name, source, [capacity] * hour),
        ],
        "alert_rule_test": [
            *_no_alerts([alert_rules.STORAGE_ALERT], [grows_at, grows_at + storage_for - MINUTE]),
            {
                "alertname": alert_rules.STORAGE_ALERT,
                "eval_time": _duration(grows_at + storage_for + MINUTE),
                "exp_alerts": [_expected(alert_rules.STORAGE_ALERT, rules, source, source)],
            },
        ],
    }]
    # Auth failures: 10 requests/s, of which first 1%, then 5x the threshold.
    spike_at = 20 * MINUTE
    requests: list[float] = []
    failures: list[float] = []
    total = failed = 0.0
    high = min(1.0, 5 * alerting.auth_failure_ratio)
    for i in range(hour):
        total += 10 * SCRAPE_INTERVAL
        failed += 10 * SCRAPE_INTERVAL * (0.01 if i * SCRAPE_INTERVAL < spike_at else high)
        requests.append(total)
        failures.append(failed)
    traffic = {"region": name, "source": f"{name}-log", "operation": "pull_manifest"}
    spike_for = alert_rules.AUTH_SPIKE_FOR
    tests.append({
        "name": f"{name}: authentication failure spike in the traffic",
        "interval": _duration(SCRAPE_INTERVAL),
        "input_series": [
            _series(REGISTRY_REQUESTS.total, {**traffic, "code": "200"}, requests),
            _series(REGISTRY_FAILURES.total, {**traffic, "reason": "auth"}, failures),
        ],
        "alert_rule_test": [
            *_no_alerts([alert_rules.AUTH_SPIKE_ALERT], [spike_at]),
            {
                "alertname": alert_rules.AUTH_SPIKE_ALERT,
                "eval_time": _duration(spike_at + alert_rules.AUTH_SPIKE_WINDOW + spike_for),
                "exp_alerts": [_expected(alert_rules.AUTH_SPIKE_ALERT, rules,
                                         {"region": name}, {"region": name})],
            },
        ],
    })
    if region.base_url.startswith("https://"):
        warning = alerting.certificate_expiry_warning
        expires = warning + 30 * MINUTE  # enters the warning window after 30 minutes
        labels = {"region": name}
        tests.append({
            "name": f"{name}: certificate expiring",
            "interval": _duration(SCRAPE_INTERVAL),
            "input_series": [_series(CERTIFICATE_EXPIRY.name, labels, [expires] * hour)],
            "alert_rule_test": [
                *_no_alerts([alert_rules.CERTIFICATE_ALERT], [29 * MINUTE]),
                {
                    "alertname": alert_rules.CERTIFICATE_ALERT,
                    "eval_time": _duration(31 * MINUTE),
                    "exp_alerts": [_expected(alert_rules.CERTIFICATE_ALERT, rules, labels,
                                             labels)],
                },
            ],
        })
    if alerting.protected_repositories:
        protected = alerting.protected_repositories[0]
        born = 10 * MINUTE
        overwrites: list[float | None] = [
            None if i * SCRAPE_INTERVAL < born else 1.0 for i in range(hour)
        ]
        labels = {"region": name, "repository": protected}
        tests.append({
            "name": f"{name}: a tag of a protected repository moved",
            "interval": _duration(SCRAPE_INTERVAL),
            "input_series": [
                _series(TAG_OVERWRITES.total, labels, overwrites),
                _series(TAG_OVERWRITES.total, {"region": name, "repository": "other"},
                        [float(i) for i in range(hour)]),
            ],
            "alert_rule_test": [
                *_no_alerts([alert_rules.TAG_OVERWRITE_ALERT], [born - MINUTE]),
                {
                    "alertname": alert_rules.TAG_OVERWRITE_ALERT,
                    "eval_time": _duration(born),
                    "exp_alerts": [_expected(alert_rules.TAG_OVERWRITE_ALERT, rules, labels,
                                             labels)],
                },
            ],
        })
    return tests


def _lag_test(region: RegionConfig, settings: Settings) -> dict[str, Any]:
    rules = next(
        g["rules"] for g in alert_rules.registry_alerts(settings)
        if g["name"].endswith(f"/{region.name}")
    )
    threshold = settings.alerting.replication_lag_threshold
    behind_from = 10 * MINUTE
    samples = (behind_from + alert_rules.REPLICATION_LAG_FOR + 5 * MINUTE) // SCRAPE_INTERVAL
    source = region.replicates_from or ""
    labels = {"region": region.name, "source_region": source}
    lag = [
        5.0 if i * SCRAPE_INTERVAL < behind_from else threshold + i * SCRAPE_INTERVAL
        for i in range(samples)
    ]
    # A mirror that never showed a heartbeat exports NaN: unknown counts as behind.
    unknown = {"region": region.name, "source_region": f"{source}-unknown"}
    return {
        "name": f"{region.name}: replication lag above "
        f"{human_duration(threshold)}, or unknown, for "
        f"{format_duration(alert_rules.REPLICATION_LAG_FOR)}",
        "interval": _duration(SCRAPE_INTERVAL),
        "input_series": [
            _series(REPLICATION_LAG.name, labels, lag),
            {"series": REPLICATION_LAG.name + "{" + ",".join(
                f'{k}="{v}"' for k, v in unknown.items()) + "}",
             "values": " ".join(["NaN"] * samples)},
        ],
        "alert_rule_test": [
            {
                "alertname": alert_rules.REPLICATION_LAG_ALERT,
                "eval_time": _duration(behind_from + alert_rules.REPLICATION_LAG_FOR - MINUTE),
                "exp_alerts": [_expected(alert_rules.REPLICATION_LAG_ALERT, rules, unknown,
                                         unknown)],
            },
            {
                "alertname": alert_rules.REPLICATION_LAG_ALERT,
                "eval_time": _duration(behind_from + alert_rules.REPLICATION_LAG_FOR + MINUTE),
                "exp_alerts": [
                    _expected(alert_rules.REPLICATION_LAG_ALERT, rules, labels, labels),
                    _expected(alert_rules.REPLICATION_LAG_ALERT, rules, unknown, unknown),
                ],
            },
        ],
    }


def registry_test_file(settings: Settings, rule_file: str) -> dict[str, Any] | None:
    """The promtool test document for the registry alerts (``None`` without regions).

    The probe scenarios run in the first region, the replication scenario in the first
    mirror (a region with ``replicates_from``).
    """
    if not settings.regions:
        return None
    tests = _registry_tests(settings.regions[0], settings)
    mirror = next((r for r in settings.regions if r.replicates_from), None)
    if mirror is not None:
        tests.append(_lag_test(mirror, settings))
    return {
        "rule_files": [rule_file],
        "evaluation_interval": _duration(EVALUATION_INTERVAL),
        "tests": tests,
    }
