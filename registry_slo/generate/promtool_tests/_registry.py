"""The promtool tests of the registry alerts: probes not running (stalled and never
run), skipped runs, blob integrity errors, rejected credentials, storage, an
authentication failure spike, an expiring certificate, a moved protected tag, and
replication lag."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from registry_slo._units import format_duration, human_duration
from registry_slo.config import AlertingConfig, RegionConfig, Settings
from registry_slo.generate._model import num, selector
from registry_slo.generate.alerts import (
    AUTH_REJECTED_ALERT,
    AUTH_SPIKE_ALERT,
    AUTH_SPIKE_FOR,
    AUTH_SPIKE_WINDOW,
    BLOB_INTEGRITY_ALERT,
    CERTIFICATE_ALERT,
    COUNTER_WINDOW,
    NEVER_RAN_ALERT,
    NOT_RUNNING_ALERT,
    NOT_RUNNING_INTERVALS,
    REPLICATION_LAG_ALERT,
    REPLICATION_LAG_FOR,
    SKIPPED_ALERT,
    SKIPPED_INTERVALS,
    STORAGE_ALERT,
    STORAGE_FOR,
    TAG_OVERWRITE_ALERT,
    region_alerts,
)
from registry_slo.generate.promtool_tests._series import (
    SCRAPE_INTERVAL,
    alert_test,
    document,
    expected_alert,
    no_alerts,
    round_up,
    scenario,
    series,
)
from registry_slo.sli.windows import HOUR, MINUTE
from registry_slo.vocabulary import (
    CERTIFICATE_EXPIRY,
    PROBE_FAILURES,
    PROBE_LAST_RUN,
    PROBE_SKIPPED,
    PROBES_CONFIGURED,
    REGISTRY_FAILURES,
    REGISTRY_REQUESTS,
    REPLICATION_LAG,
    STORAGE_CAPACITY,
    STORAGE_USED,
    TAG_OVERWRITES,
)

__all__ = ["registry_test_file"]

_Rules = Mapping[str, Mapping[str, Any]]
"""A region's registry alerts, rendered, by name."""
_HOUR = HOUR // SCRAPE_INTERVAL
"""Samples in an hour."""


def _rules(region: RegionConfig, alerting: AlertingConfig) -> _Rules:
    return {rule["alert"]: rule for rule in region_alerts(region, alerting)}


def _fires(rules: _Rules, alert: str, at: float, *labels: dict[str, str]) -> dict[str, Any]:
    """An ``alert_rule_test``: ``alert`` fires at ``at``, once for each of ``labels``."""
    return alert_test(alert, at, [expected_alert(rules[alert], each) for each in labels])


def _last_run_values(interval: float, samples: int, stop: int) -> list[float]:
    """``registry_slo_probe_last_run_timestamp_seconds``: the start of the latest run,
    runs every ``interval`` seconds until ``stop`` seconds, then none."""
    out: list[float] = []
    for i in range(samples):
        now = min(i * SCRAPE_INTERVAL, stop)
        out.append(float(math.floor(now / interval) * interval))
    return out


def _not_running_test(region: RegionConfig, rules: _Rules) -> dict[str, Any]:
    name = region.name
    interval = region.probe.interval
    stale = NOT_RUNNING_INTERVALS * interval
    stop = 10 * MINUTE
    samples = (stop + int(stale) + 10 * MINUTE) // SCRAPE_INTERVAL
    last_value = math.floor(stop / interval) * interval
    fires_at = round_up(last_value + stale + 1)
    never_fires = round_up(stale)
    pull = {"region": name, "probe": "pull"}
    push = {"region": name, "probe": "push"}
    return scenario(
        f"{name}: a stalled probe and a probe that never ran are not running",
        [
            series(PROBES_CONFIGURED.name, pull, [1.0] * samples),
            series(PROBES_CONFIGURED.name, push, [1.0] * samples),
            series(PROBE_LAST_RUN.name, pull, _last_run_values(interval, samples, stop)),
        ],
        [
            *no_alerts([NOT_RUNNING_ALERT, NEVER_RAN_ALERT], [0]),
            _fires(rules, NEVER_RAN_ALERT, never_fires, push),
            *no_alerts([NOT_RUNNING_ALERT], [stop]),
            _fires(rules, NOT_RUNNING_ALERT, fires_at, pull),
            _fires(rules, NEVER_RAN_ALERT, fires_at, push),
        ],
    )


def _skipped_test(region: RegionConfig, rules: _Rules) -> dict[str, Any]:
    pull = {"region": region.name, "probe": "pull"}
    skip_from = 10 * MINUTE // SCRAPE_INTERVAL
    skip_window = SKIPPED_INTERVALS * region.probe.interval
    skip_samples = (10 * MINUTE + int(skip_window) + 5 * MINUTE) // SCRAPE_INTERVAL
    return scenario(
        f"{region.name}: skipped runs",
        [series(PROBE_SKIPPED.total, pull,
                [float(max(0, i - skip_from)) for i in range(skip_samples)])],
        [
            *no_alerts([SKIPPED_ALERT], [10 * MINUTE]),
            _fires(rules, SKIPPED_ALERT, 10 * MINUTE + skip_window, pull),
        ],
    )


def _counter_tests(region: RegionConfig, rules: _Rules) -> list[dict[str, Any]]:
    """Blob integrity errors and rejected credentials: the first failure fires, the
    alert resolves after the counter window, and a new failure fires again."""
    pull = {"region": region.name, "probe": "pull"}
    born = 10 * MINUTE
    again = born + COUNTER_WINDOW + 5 * MINUTE
    samples = (again + 5 * MINUTE) // SCRAPE_INTERVAL
    counter: list[float | None] = [
        None if t < born else (1.0 if t < again else 2.0)
        for t in (i * SCRAPE_INTERVAL for i in range(samples))
    ]
    return [
        scenario(
            f"{region.name}: {alert} fires on the first failure and on each new one",
            [series(PROBE_FAILURES.total, {**pull, "reason": reason}, counter)],
            [
                *no_alerts([alert], [born - MINUTE]),
                _fires(rules, alert, born, pull),
                *no_alerts([alert], [born + COUNTER_WINDOW + MINUTE]),
                _fires(rules, alert, again, pull),
            ],
        )
        for alert, reason in ((BLOB_INTEGRITY_ALERT, "digest_mismatch"),
                              (AUTH_REJECTED_ALERT, "auth"))
    ]


def _storage_test(region: RegionConfig, alerting: AlertingConfig,
                  rules: _Rules) -> dict[str, Any]:
    source = {"region": region.name, "source": f"{region.name}-metrics"}
    capacity = 1e12
    below = alerting.storage_threshold * capacity * 0.9
    above = min(capacity, alerting.storage_threshold * capacity * 1.1)
    grows_at = 10 * MINUTE
    used = [below if i * SCRAPE_INTERVAL < grows_at else above for i in range(_HOUR)]
    return scenario(
        f"{region.name}: storage above {num(100 * alerting.storage_threshold)}% of capacity",
        [
            series(STORAGE_USED.name, source, used),
            series(STORAGE_CAPACITY.name, source, [capacity] * _HOUR),
        ],
        [
            *no_alerts([STORAGE_ALERT], [grows_at, grows_at + STORAGE_FOR - MINUTE]),
            _fires(rules, STORAGE_ALERT, grows_at + STORAGE_FOR + MINUTE, source),
        ],
    )


def _auth_spike_test(region: RegionConfig, alerting: AlertingConfig,
                     rules: _Rules) -> dict[str, Any]:
    # 10 requests/s, of which first 1% fail authentication, then 5x the threshold.
    spike_at = 20 * MINUTE
    requests: list[float] = []
    failures: list[float] = []
    total = failed = 0.0
    high = min(1.0, 5 * alerting.auth_failure_ratio)
    for i in range(_HOUR):
        total += 10 * SCRAPE_INTERVAL
        failed += 10 * SCRAPE_INTERVAL * (0.01 if i * SCRAPE_INTERVAL < spike_at else high)
        requests.append(total)
        failures.append(failed)
    traffic = {"region": region.name, "source": f"{region.name}-log",
               "operation": "pull_manifest"}
    return scenario(
        f"{region.name}: authentication failure spike in the traffic",
        [
            series(REGISTRY_REQUESTS.total, {**traffic, "code": "200"}, requests),
            series(REGISTRY_FAILURES.total, {**traffic, "reason": "auth"}, failures),
        ],
        [
            *no_alerts([AUTH_SPIKE_ALERT], [spike_at]),
            _fires(rules, AUTH_SPIKE_ALERT, spike_at + AUTH_SPIKE_WINDOW + AUTH_SPIKE_FOR,
                   {"region": region.name}),
        ],
    )


def _certificate_test(region: RegionConfig, alerting: AlertingConfig,
                      rules: _Rules) -> dict[str, Any]:
    expires = alerting.certificate_expiry_warning + 30 * MINUTE  # in the window after 30m
    labels = {"region": region.name}
    return scenario(
        f"{region.name}: certificate expiring",
        [series(CERTIFICATE_EXPIRY.name, labels, [expires] * _HOUR)],
        [
            *no_alerts([CERTIFICATE_ALERT], [29 * MINUTE]),
            _fires(rules, CERTIFICATE_ALERT, 31 * MINUTE, labels),
        ],
    )


def _tag_overwrite_test(region: RegionConfig, protected: str,
                        rules: _Rules) -> dict[str, Any]:
    born = 10 * MINUTE
    overwrites: list[float | None] = [
        None if i * SCRAPE_INTERVAL < born else 1.0 for i in range(_HOUR)
    ]
    labels = {"region": region.name, "repository": protected}
    return scenario(
        f"{region.name}: a tag of a protected repository moved",
        [
            series(TAG_OVERWRITES.total, labels, overwrites),
            series(TAG_OVERWRITES.total, {"region": region.name, "repository": "other"},
                   [float(i) for i in range(_HOUR)]),
        ],
        [
            *no_alerts([TAG_OVERWRITE_ALERT], [born - MINUTE]),
            _fires(rules, TAG_OVERWRITE_ALERT, born, labels),
        ],
    )


def _lag_test(region: RegionConfig, alerting: AlertingConfig) -> dict[str, Any]:
    rules = _rules(region, alerting)
    threshold = alerting.replication_lag_threshold
    behind_from = 10 * MINUTE
    samples = (behind_from + REPLICATION_LAG_FOR + 5 * MINUTE) // SCRAPE_INTERVAL
    source = region.replicates_from or ""
    labels = {"region": region.name, "source_region": source}
    lag = [
        5.0 if i * SCRAPE_INTERVAL < behind_from else threshold + i * SCRAPE_INTERVAL
        for i in range(samples)
    ]
    # A mirror that never showed a heartbeat exports NaN: unknown counts as behind.
    unknown = {"region": region.name, "source_region": f"{source}-unknown"}
    return scenario(
        f"{region.name}: replication lag above {human_duration(threshold)}, or unknown, "
        f"for {format_duration(REPLICATION_LAG_FOR)}",
        [
            series(REPLICATION_LAG.name, labels, lag),
            {"series": REPLICATION_LAG.name + selector(**unknown),
             "values": " ".join(["NaN"] * samples)},
        ],
        [
            _fires(rules, REPLICATION_LAG_ALERT, behind_from + REPLICATION_LAG_FOR - MINUTE,
                   unknown),
            _fires(rules, REPLICATION_LAG_ALERT, behind_from + REPLICATION_LAG_FOR + MINUTE,
                   labels, unknown),
        ],
    )


def _region_tests(region: RegionConfig, alerting: AlertingConfig) -> list[dict[str, Any]]:
    """The probe and traffic scenarios of one region."""
    rules = _rules(region, alerting)
    tests = [
        _not_running_test(region, rules),
        _skipped_test(region, rules),
        *_counter_tests(region, rules),
        _storage_test(region, alerting, rules),
        _auth_spike_test(region, alerting, rules),
    ]
    # The optional alerts are tested when the region has them.
    if CERTIFICATE_ALERT in rules:
        tests.append(_certificate_test(region, alerting, rules))
    if TAG_OVERWRITE_ALERT in rules:
        tests.append(_tag_overwrite_test(region, alerting.protected_repositories[0], rules))
    return tests


def registry_test_file(settings: Settings, rule_file: str) -> dict[str, Any] | None:
    """The promtool test document for the registry alerts (``None`` without regions).

    The probe scenarios run in the first region, the replication scenario in the first
    mirror (a region with ``replicates_from``).
    """
    if not settings.regions:
        return None
    tests = _region_tests(settings.regions[0], settings.alerting)
    mirror = next((r for r in settings.regions if r.replicates_from), None)
    if mirror is not None:
        tests.append(_lag_test(mirror, settings.alerting))
    return document(rule_file, tests)
