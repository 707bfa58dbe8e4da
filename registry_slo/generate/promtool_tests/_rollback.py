"""The promtool scenarios of the rollback alerts (in ``tests/registry.test.yml``): the
check's gauges as the exporter serves them, a target disappearing, a protected tag's
previous release disappearing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry_slo.config import PrometheusConfig, RegionConfig
from registry_slo.generate.alerts._rollback import (
    PREVIOUS_MISSING,
    ROLLBACK_GONE_ALERT,
    ROLLBACK_GONE_FOR,
    ROLLBACK_MISSING_ALERT,
    ROLLBACK_MISSING_FOR,
    TARGETS_MISSING,
)
from registry_slo.generate.promtool_tests._series import (
    Timing,
    alert_test,
    expected_alert,
    no_alerts,
    series,
)
from registry_slo.sli.windows import HOUR, MINUTE

__all__ = ["rollback_fresh_series", "rollback_test"]


def _labels(region: RegionConfig) -> tuple[dict[str, str], dict[str, str]]:
    assert region.rollback is not None
    repository = region.rollback.repositories[0]
    tag = (region.rollback.protected_tags or ("prod",))[0]
    return ({"region": region.name, "repository": repository},
            {"region": region.name, "repository": repository, "tag": tag})


def rollback_fresh_series(region: RegionConfig, samples: int) -> list[dict[str, str]]:
    """A healthy region's rollback gauges: nothing missing, from the first check on (the
    first scrape has none)."""
    if region.rollback is None:
        return []
    repository, tagged = _labels(region)
    zeros: list[float | None] = [None, *([0.0] * (samples - 1))]
    return [series(TARGETS_MISSING, repository, zeros),
            *([series(PREVIOUS_MISSING, tagged, zeros)] if region.rollback.protected_tags
              else [])]


def rollback_test(region: RegionConfig, rules: Mapping[str, Mapping[str, Any]],
                  prometheus: PrometheusConfig, t: Timing) -> dict[str, Any] | None:
    """One target goes missing at 10m (the ticket), the protected tag's previous release
    at 30m (the page); ``None`` for a region without a ``rollback:`` section."""
    if region.rollback is None:
        return None
    repository, tagged = _labels(region)
    gone, previous_gone = 10 * MINUTE, 30 * MINUTE
    samples = t.samples(HOUR + 30 * MINUTE)
    at = [i * t.scrape for i in range(samples)]
    missing = [0.0 if s < gone else (1.0 if s < previous_gone else 2.0) for s in at]
    previous = [0.0 if s < previous_gone else 1.0 for s in at]
    ticket_at = t.round_up(t.next_sample(gone) + prometheus.hold(ROLLBACK_MISSING_FOR)
                           + t.evaluation)
    page_at = t.round_up(t.next_sample(previous_gone) + prometheus.hold(ROLLBACK_GONE_FOR)
                         + t.evaluation)
    checks = [
        *no_alerts([ROLLBACK_MISSING_ALERT, ROLLBACK_GONE_ALERT], [gone - t.evaluation]),
        alert_test(ROLLBACK_MISSING_ALERT, ticket_at,
                   [expected_alert(rules[ROLLBACK_MISSING_ALERT], repository)]),
    ]
    inputs = [series(TARGETS_MISSING, repository, missing)]
    if region.rollback.protected_tags:
        inputs.append(series(PREVIOUS_MISSING, tagged, previous))
        checks += [
            *no_alerts([ROLLBACK_GONE_ALERT], [previous_gone - t.evaluation]),
            alert_test(ROLLBACK_GONE_ALERT, page_at,
                       [expected_alert(rules[ROLLBACK_GONE_ALERT], tagged)]),
        ]
    return t.scenario(f"{region.name}: rollback targets go missing", inputs, checks)
