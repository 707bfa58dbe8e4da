"""The promtool tests of the registry alerts: probes not running (stalled and never
run), skipped runs, blob integrity errors, rejected credentials, storage, an
authentication failure spike, rate-limit headroom running low and exhausted, an expiring
certificate, a moved protected tag, replication lag, and overdue garbage collection."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from registry_slo._units import format_duration, human_duration
from registry_slo.config import AlertingConfig, PrometheusConfig, RegionConfig, Settings
from registry_slo.generate._model import num, selector
from registry_slo.generate.alerts import (
    AUTH_REJECTED_ALERT,
    AUTH_SPIKE_ALERT,
    AUTH_SPIKE_FOR,
    AUTH_SPIKE_WINDOW,
    BLOB_INTEGRITY_ALERT,
    CERTIFICATE_ALERT,
    GC_OVERDUE_ALERT,
    GC_OVERDUE_FOR,
    NEVER_RAN_ALERT,
    NOT_RUNNING_ALERT,
    RATE_LIMIT_EXHAUSTED_ALERT,
    RATE_LIMIT_EXHAUSTED_FOR,
    RATE_LIMIT_LOW_ALERT,
    RATE_LIMIT_LOW_FOR,
    REPLICATION_LAG_ALERT,
    REPLICATION_LAG_FOR,
    SKIPPED_ALERT,
    STORAGE_ALERT,
    STORAGE_FOR,
    TAG_OVERWRITE_ALERT,
    counter_window,
    gc_sources,
    not_running_after,
    region_alerts,
    skipped_window,
)
from registry_slo.generate.promtool_tests._rollback import rollback_fresh_series, rollback_test
from registry_slo.generate.promtool_tests._series import (
    Timing,
    alert_test,
    expected_alert,
    no_alerts,
    series,
)
from registry_slo.sli.windows import HOUR, MINUTE
from registry_slo.vocabulary import (
    CERTIFICATE_EXPIRY,
    GC_LAST_SUCCESS,
    PROBE_FAILURES,
    PROBE_LAST_RUN,
    PROBE_SKIPPED,
    PROBES_CONFIGURED,
    RATE_LIMIT_LIMIT,
    RATE_LIMIT_REMAINING,
    REGISTRY_FAILURES,
    REGISTRY_REQUESTS,
    REPLICATION_LAG,
    STORAGE_CAPACITY,
    STORAGE_USED,
    TAG_OVERWRITES,
    Reason,
)

__all__ = ["registry_test_file"]

_Rules = Mapping[str, Mapping[str, Any]]
"""A region's registry alerts, rendered, by name."""


def _rules(region: RegionConfig, alerting: AlertingConfig,
           prometheus: PrometheusConfig, gc: bool = False) -> _Rules:
    return {rule["alert"]: rule
            for rule in region_alerts(region, alerting, prometheus, gc=gc)}


def _fires(rules: _Rules, alert: str, at: float, *labels: dict[str, str]) -> dict[str, Any]:
    """An ``alert_rule_test``: ``alert`` fires at ``at``, once for each of ``labels``."""
    return alert_test(alert, at, [expected_alert(rules[alert], each) for each in labels])


def _last_run_values(interval: float, samples: int, stop: float, t: Timing) -> list[float]:
    """``registry_slo_probe_last_run_timestamp_seconds``: the start of the latest run,
    runs every ``interval`` seconds until ``stop`` seconds, then none."""
    out: list[float] = []
    for i in range(samples):
        now = min(i * t.scrape, stop)
        out.append(float(math.floor(now / interval) * interval))
    return out


def _not_running_test(region: RegionConfig, rules: _Rules, stale: float,
                      t: Timing) -> dict[str, Any]:
    name = region.name
    interval = region.probe.interval
    stop = 10 * MINUTE
    samples = t.samples(stop + stale + 10 * MINUTE)
    last_value = math.floor(stop / interval) * interval
    fires_at = t.round_up(last_value + stale + 1)
    never_fires = t.round_up(max(stale, t.evaluation))
    pull = {"region": name, "probe": "pull"}
    push = {"region": name, "probe": "push"}
    return t.scenario(
        f"{name}: a stalled probe and a probe that never ran are not running",
        [
            series(PROBES_CONFIGURED.name, pull, [1.0] * samples),
            series(PROBES_CONFIGURED.name, push, [1.0] * samples),
            series(PROBE_LAST_RUN.name, pull, _last_run_values(interval, samples, stop, t)),
        ],
        [
            *no_alerts([NOT_RUNNING_ALERT, NEVER_RAN_ALERT], [0]),
            _fires(rules, NEVER_RAN_ALERT, never_fires, push),
            *no_alerts([NOT_RUNNING_ALERT], [stop]),
            _fires(rules, NOT_RUNNING_ALERT, fires_at, pull),
            _fires(rules, NEVER_RAN_ALERT, fires_at, push),
        ],
    )


def _skipped_test(region: RegionConfig, rules: _Rules, skip_window: float,
                  t: Timing) -> dict[str, Any]:
    """One run skipped per scrape from 10 minutes on: more than the threshold in the
    window once the window holds enough of them."""
    pull = {"region": region.name, "probe": "pull"}
    skip_from = t.samples(10 * MINUTE)
    skip_samples = t.samples(10 * MINUTE + skip_window + 5 * MINUTE)
    return t.scenario(
        f"{region.name}: skipped runs",
        [series(PROBE_SKIPPED.total, pull,
                [float(max(0, i - skip_from)) for i in range(skip_samples)])],
        [
            *no_alerts([SKIPPED_ALERT], [10 * MINUTE]),
            _fires(rules, SKIPPED_ALERT, t.round_up(10 * MINUTE + skip_window), pull),
        ],
    )


def _counter_tests(region: RegionConfig, rules: _Rules, window: float,
                   t: Timing) -> list[dict[str, Any]]:
    """Blob integrity errors and rejected credentials, from a counter the exporter
    created at zero: the first failure fires at the next evaluation, the alert resolves
    after the counter window, and a new failure fires again."""
    pull = {"region": region.name, "probe": "pull"}
    born = 10 * MINUTE
    resolved = t.round_up(born + window + t.scrape)
    again = resolved + t.evaluation + 5 * MINUTE
    samples = t.samples(t.seen(again) + 5 * MINUTE)
    counter: list[float | None] = [
        0.0 if at < born else (1.0 if at < again else 2.0)
        for at in (i * t.scrape for i in range(samples))
    ]
    return [
        t.scenario(
            f"{region.name}: {alert} fires on the first failure and on each new one",
            [series(PROBE_FAILURES.total, {**pull, "reason": reason}, counter)],
            [
                *no_alerts([alert], t.evaluations(0, born - 1)),
                _fires(rules, alert, t.seen(born), pull),
                *no_alerts([alert], [resolved]),
                _fires(rules, alert, t.seen(again), pull),
            ],
        )
        for alert, reason in ((BLOB_INTEGRITY_ALERT, "digest_mismatch"),
                              (AUTH_REJECTED_ALERT, "auth"))
    ]


def _storage_test(region: RegionConfig, alerting: AlertingConfig,
                  rules: _Rules, t: Timing) -> dict[str, Any]:
    source = {"region": region.name, "source": f"{region.name}-metrics"}
    capacity = 1e12
    below = alerting.storage_threshold * capacity * 0.9
    above = min(capacity, alerting.storage_threshold * capacity * 1.1)
    grows_at = 10 * MINUTE
    hour = t.samples(HOUR)
    used = [below if i * t.scrape < grows_at else above for i in range(hour)]
    return t.scenario(
        f"{region.name}: storage above {num(100 * alerting.storage_threshold)}% of capacity",
        [
            series(STORAGE_USED.name, source, used),
            series(STORAGE_CAPACITY.name, source, [capacity] * hour),
        ],
        [
            *no_alerts([STORAGE_ALERT], [grows_at, grows_at + STORAGE_FOR - MINUTE]),
            _fires(rules, STORAGE_ALERT,
                   t.round_up(t.next_sample(grows_at) + STORAGE_FOR + t.evaluation), source),
        ],
    )


def _auth_spike_test(region: RegionConfig, alerting: AlertingConfig,
                     rules: _Rules, window: float, t: Timing) -> dict[str, Any]:
    # 10 requests/s, of which first 1% fail authentication, then 5x the threshold.
    spike_at = 20 * MINUTE
    requests: list[float] = []
    failures: list[float] = []
    total = failed = 0.0
    high = min(1.0, 5 * alerting.auth_failure_ratio)
    for i in range(t.samples(HOUR)):
        total += 10 * t.scrape
        failed += 10 * t.scrape * (0.01 if i * t.scrape < spike_at else high)
        requests.append(total)
        failures.append(failed)
    traffic = {"region": region.name, "source": f"{region.name}-log",
               "operation": "pull_manifest"}
    return t.scenario(
        f"{region.name}: authentication failure spike in the traffic",
        [
            series(REGISTRY_REQUESTS.total, {**traffic, "code": "200"}, requests),
            series(REGISTRY_FAILURES.total, {**traffic, "reason": "auth"}, failures),
        ],
        [
            *no_alerts([AUTH_SPIKE_ALERT], [spike_at]),
            _fires(rules, AUTH_SPIKE_ALERT,
                   t.round_up(t.next_sample(spike_at) + window + AUTH_SPIKE_FOR
                              + t.evaluation),
                   {"region": region.name}),
        ],
    )


def _rate_limit_test(region: RegionConfig, alerting: AlertingConfig,
                     rules: _Rules, t: Timing) -> dict[str, Any]:
    """A quota of 1,000 spent in steps: half left, then under the headroom share (the
    ticket, after its ``for``), then none (the page; the ticket clears: exhausted is
    the page's)."""
    limit = 1000.0
    low_at, spent_at = 20 * MINUTE, 50 * MINUTE
    low = math.floor(limit * alerting.rate_limit_headroom / 2)
    samples = t.samples(HOUR + 20 * MINUTE)
    remaining = [
        limit / 2 if at < low_at else (low if at < spent_at else 0.0)
        for at in (i * t.scrape for i in range(samples))
    ]
    labels = {"region": region.name, "policy": "default"}
    ticket_at = t.round_up(t.next_sample(low_at) + RATE_LIMIT_LOW_FOR + t.evaluation)
    page_at = t.round_up(t.next_sample(spent_at) + RATE_LIMIT_EXHAUSTED_FOR + t.evaluation)
    return t.scenario(
        f"{region.name}: rate-limit quota running low, then exhausted",
        [
            series(RATE_LIMIT_REMAINING.name, labels, remaining),
            series(RATE_LIMIT_LIMIT.name, labels, [limit] * samples),
        ],
        [
            *no_alerts([RATE_LIMIT_LOW_ALERT, RATE_LIMIT_EXHAUSTED_ALERT],
                       [low_at - t.evaluation, t.round_up(low_at + RATE_LIMIT_LOW_FOR)
                        - 2 * t.evaluation]),
            _fires(rules, RATE_LIMIT_LOW_ALERT, ticket_at, labels),
            *no_alerts([RATE_LIMIT_LOW_ALERT], [page_at]),
            _fires(rules, RATE_LIMIT_EXHAUSTED_ALERT, page_at, labels),
        ],
    )


def _certificate_test(region: RegionConfig, alerting: AlertingConfig,
                      rules: _Rules, t: Timing) -> dict[str, Any]:
    expires = alerting.certificate_expiry_warning + 30 * MINUTE  # in the window after 30m
    labels = {"region": region.name}
    return t.scenario(
        f"{region.name}: certificate expiring",
        [series(CERTIFICATE_EXPIRY.name, labels, [expires] * t.samples(HOUR))],
        [
            *no_alerts([CERTIFICATE_ALERT], [t.round_up(29 * MINUTE) - t.evaluation]),
            _fires(rules, CERTIFICATE_ALERT, t.round_up(31 * MINUTE), labels),
        ],
    )


def _tag_overwrite_test(region: RegionConfig, protected: str,
                        rules: _Rules, t: Timing) -> dict[str, Any]:
    """A protected repository's overwrite counter, created at zero, moves once."""
    born = 10 * MINUTE
    hour = t.samples(HOUR)
    overwrites: list[float | None] = [
        0.0 if i * t.scrape < born else 1.0 for i in range(hour)
    ]
    labels = {"region": region.name, "repository": protected}
    return t.scenario(
        f"{region.name}: a tag of a protected repository moved",
        [
            series(TAG_OVERWRITES.total, labels, overwrites),
            series(TAG_OVERWRITES.total, {"region": region.name, "repository": "other"},
                   [float(i) for i in range(hour)]),
        ],
        [
            *no_alerts([TAG_OVERWRITE_ALERT], t.evaluations(0, born - 1)),
            _fires(rules, TAG_OVERWRITE_ALERT, t.seen(born), labels),
        ],
    )


def _lag_test(region: RegionConfig, alerting: AlertingConfig, prometheus: PrometheusConfig,
              t: Timing) -> dict[str, Any]:
    rules = _rules(region, alerting, prometheus)
    threshold = alerting.replication_lag_threshold
    behind_from = 10 * MINUTE
    fires = t.round_up(behind_from + REPLICATION_LAG_FOR + t.scrape + t.evaluation)
    samples = t.samples(fires + 5 * MINUTE)
    source = region.replicates_from or ""
    labels = {"region": region.name, "source_region": source}
    lag = [
        5.0 if i * t.scrape < behind_from else threshold + i * t.scrape
        for i in range(samples)
    ]
    # A mirror that never showed a heartbeat exports NaN: unknown counts as behind.
    unknown = {"region": region.name, "source_region": f"{source}-unknown"}
    return t.scenario(
        f"{region.name}: replication lag above {human_duration(threshold)}, or unknown, "
        f"for {format_duration(REPLICATION_LAG_FOR)}",
        [
            series(REPLICATION_LAG.name, labels, lag),
            {"series": REPLICATION_LAG.name + selector(**unknown),
             "values": " ".join(["NaN"] * samples)},
        ],
        [
            _fires(rules, REPLICATION_LAG_ALERT,
                   t.round_up(behind_from + REPLICATION_LAG_FOR - MINUTE) - t.evaluation,
                   unknown),
            _fires(rules, REPLICATION_LAG_ALERT, fires, labels, unknown),
        ],
    )


def _gc_overdue_test(region: RegionConfig, source: str, alerting: AlertingConfig,
                     rules: _Rules, t: Timing) -> dict[str, Any]:
    """A garbage collector that has not succeeded since ``gc_overdue_after`` minus 30
    minutes before the test begins (its last run then, or the exporter's start: the
    series holds either the same way): the alert fires ``for`` after the interval is
    crossed, at 30 minutes, and resolves once a run completes. (Starting the series 30
    minutes short of the interval spares promtool days of evaluations.)"""
    after = alerting.gc_overdue_after
    crossed = 30 * MINUTE
    since = float(crossed - after)
    overdue = t.round_up(crossed + 1)  # the first evaluation past the interval
    fires_at = overdue + GC_OVERDUE_FOR
    ran_at = fires_at + 10 * MINUTE
    samples = t.samples(ran_at + 30 * MINUTE)
    last_success = [since if i * t.scrape < ran_at else float(t.next_sample(ran_at))
                    for i in range(samples)]
    labels = {"region": region.name}
    return t.scenario(
        f"{region.name}: no garbage collection for {human_duration(after)}, then a run",
        [series(GC_LAST_SUCCESS.name, {**labels, "source": source}, last_success)],
        [
            *no_alerts([GC_OVERDUE_ALERT], [crossed, fires_at - t.evaluation]),
            _fires(rules, GC_OVERDUE_ALERT, fires_at, labels),
            *no_alerts([GC_OVERDUE_ALERT], [t.seen(ran_at)]),
        ],
    )


FRESH_HORIZON = HOUR
"""A fresh start is watched this long: no registry alert at any evaluation."""


def _fresh_series(region: RegionConfig, alerting: AlertingConfig, sources: Sequence[str],
                  t: Timing, collectors: Sequence[str] = ()) -> list[dict[str, str]]:
    """The series of one region as a fresh, healthy exporter exposes them: every
    configured probe declared, its last run from the second scrape on (probes start
    spread over their interval), failure and skip counters at zero, the traffic its
    ingest sources read with the authentication failures at zero, storage below the
    threshold, a certificate far from expiry, protected repositories' overwrites at
    zero, no replication lag before the mirror is first read, and the last successful
    garbage collection of each ``collectors`` source (``distribution-gc``) at the time
    the exporter started, none having run yet."""
    n = t.samples(FRESH_HORIZON) + 1
    interval = region.probe.interval
    zeros = [0.0] * n
    out: list[dict[str, str]] = []
    for probe in region.probes:
        labels = {"region": region.name, "probe": probe}
        # No run has finished at the first scrape; then one every interval.
        last_run: list[float | None] = [
            None, *_last_run_values(interval, n, math.inf, t)[1:]
        ]
        out += [
            series(PROBES_CONFIGURED.name, labels, [1.0] * n),
            series(PROBE_LAST_RUN.name, labels, last_run),
            series(PROBE_SKIPPED.total, labels, zeros),
            *(series(PROBE_FAILURES.total, {**labels, "reason": str(reason)}, zeros)
              for reason in Reason),
        ]
    for source in sources:
        traffic = {"region": region.name, "source": source, "operation": "pull_manifest"}
        out += [
            series(REGISTRY_REQUESTS.total, {**traffic, "code": "200"},
                   [10.0 * t.scrape * i for i in range(n)]),
            series(REGISTRY_FAILURES.total, {**traffic, "reason": "auth"}, zeros),
            series(STORAGE_USED.name, {"region": region.name, "source": source},
                   [alerting.storage_threshold * 0.5e12] * n),
            series(STORAGE_CAPACITY.name, {"region": region.name, "source": source},
                   [1e12] * n),
        ]
        for repository in alerting.protected_repositories:
            out.append(series(TAG_OVERWRITES.total,
                              {"region": region.name, "repository": repository}, zeros))
    # A metered registry with its whole quota left.
    quota = {"region": region.name, "policy": "default"}
    out += [series(RATE_LIMIT_REMAINING.name, quota, [100.0] * n),
            series(RATE_LIMIT_LIMIT.name, quota, [100.0] * n)]
    if region.base_url.startswith("https://"):
        out.append(series(CERTIFICATE_EXPIRY.name, {"region": region.name},
                          [alerting.certificate_expiry_warning + 90 * 86400.0] * n))
    if region.replicates_from:
        lag: list[float | None] = [None] + [5.0] * (n - 1)  # not read before 1st scrape
        out.append(series(REPLICATION_LAG.name,
                          {"region": region.name, "source_region": region.replicates_from},
                          lag))
    out += [series(GC_LAST_SUCCESS.name, {"region": region.name, "source": collector},
                   [0.0] * n) for collector in collectors]
    out += rollback_fresh_series(region, n)
    return out


def _fresh_start_test(settings: Settings, t: Timing) -> dict[str, Any]:
    """Every region of a fresh, healthy exporter: no registry alert at any evaluation
    of the first hour."""
    sources: dict[str, list[str]] = {r.name: [] for r in settings.regions}
    for log in settings.ingest.traffic_logs:
        sources[log.region].append(log.name)
    for endpoint in settings.ingest.notifications.endpoints:
        sources[endpoint.region].append(endpoint.name)
    collectors = gc_sources(settings.ingest)
    names: set[str] = set()
    input_series: list[dict[str, str]] = []
    for region in settings.regions:
        gc = collectors.get(region.name, [])
        names |= set(_rules(region, settings.alerting, settings.prometheus, bool(gc)))
        input_series += _fresh_series(region, settings.alerting, sources[region.name], t,
                                      gc)
    return t.scenario(
        "a fresh, healthy exporter raises no registry alert in its first hour",
        input_series,
        no_alerts(sorted(names), t.evaluations(0, FRESH_HORIZON)),
    )


def _region_tests(region: RegionConfig, alerting: AlertingConfig,
                  prometheus: PrometheusConfig, t: Timing) -> list[dict[str, Any]]:
    """The probe and traffic scenarios of one region."""
    rules = _rules(region, alerting, prometheus)
    tests = [
        _not_running_test(region, rules, not_running_after(region, prometheus), t),
        _skipped_test(region, rules, skipped_window(region, prometheus), t),
        *_counter_tests(region, rules, counter_window(prometheus), t),
        _storage_test(region, alerting, rules, t),
        _auth_spike_test(region, alerting, rules, prometheus.window(AUTH_SPIKE_WINDOW), t),
        _rate_limit_test(region, alerting, rules, t),
    ]
    # The optional alerts are tested when the region has them.
    if CERTIFICATE_ALERT in rules:
        tests.append(_certificate_test(region, alerting, rules, t))
    if TAG_OVERWRITE_ALERT in rules:
        tests.append(_tag_overwrite_test(region, alerting.protected_repositories[0], rules,
                                         t))
    return tests


def registry_test_file(settings: Settings, rule_file: str) -> dict[str, Any] | None:
    """The promtool test document for the registry alerts (``None`` without regions).

    A fresh start of every region, then the probe scenarios in the first region and
    the replication scenario in the first mirror (a region with ``replicates_from``),
    sampled and evaluated at the ``prometheus`` section's intervals.
    """
    if not settings.regions:
        return None
    t = Timing.of(settings.prometheus)
    tests = [
        _fresh_start_test(settings, t),
        *_region_tests(settings.regions[0], settings.alerting, settings.prometheus, t),
    ]
    mirror = next((r for r in settings.regions if r.replicates_from), None)
    if mirror is not None:
        tests.append(_lag_test(mirror, settings.alerting, settings.prometheus, t))
    tests += _gc_tests(settings, t)
    checked = next((r for r in settings.regions if r.rollback is not None), None)
    if checked is not None:
        rollback = rollback_test(
            checked, _rules(checked, settings.alerting, settings.prometheus),
            settings.prometheus, t)
        if rollback is not None:
            tests.append(rollback)
    return t.document(rule_file, tests)


def _gc_tests(settings: Settings, t: Timing) -> list[dict[str, Any]]:
    """The garbage collection scenario, in the first region with a ``distribution-gc``
    source (none without one)."""
    collectors = gc_sources(settings.ingest)
    region = next((r for r in settings.regions if r.name in collectors), None)
    if region is None:
        return []
    rules = _rules(region, settings.alerting, settings.prometheus, gc=True)
    return [_gc_overdue_test(region, collectors[region.name][0], settings.alerting, rules, t)]
