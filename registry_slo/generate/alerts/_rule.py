"""An alerting rule as data, and the one renderer that turns it into Prometheus' rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, assert_never

from registry_slo._units import format_duration
from registry_slo.config import AlertingConfig, SLOTarget
from registry_slo.generate._model import identity
from registry_slo.sli.windows import Severity

__all__ = ["AlertRule", "render_alert"]


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alerting rule, typed (as Pyrra types its rules) and rendered by
    :func:`render_alert`.

    Attributes:
        name: the ``alert`` name.
        expr: the PromQL condition.
        severity: ``page`` or ``ticket``: the ``severity`` label Alertmanager routes on.
        summary: the ``summary`` annotation.
        description: the ``description`` annotation.
        runbook: the runbook's slug under ``alerting.runbook_url`` (spelled out, not
            derived from the name: renaming an alert must not move its runbook).
        about: what the alert is about: a region name (the rule is labelled with the
            region), an SLO target (its identity labels and the SLO's ``labels``; the
            dashboard link selects the SLO too), or ``None`` for what spans the regions
            (the clusters' kubelets): no identity labels.
        for_seconds: how long the condition must hold before the alert fires (0: at
            once, no ``for``).
        labels: further labels, after ``severity`` (the burn-rate windows).
    """

    name: str
    expr: str
    severity: Severity
    summary: str
    description: str
    runbook: str
    about: str | SLOTarget | None
    for_seconds: float = 0
    labels: Mapping[str, str] = field(default_factory=dict)


def _runbook(alerting: AlertingConfig, slug: str) -> dict[str, str]:
    if alerting.runbook_url is None:
        return {}
    return {"runbook_url": f"{alerting.runbook_url.rstrip('/')}/{slug}"}


def _dashboard(alerting: AlertingConfig, region: str | None, slo: str | None
               ) -> dict[str, str]:
    if alerting.dashboard_url is None:
        return {}
    base = alerting.dashboard_url
    query = "&".join([*([f"var-region={region}"] if region else []),
                      *([f"var-slo={slo}"] if slo else [])])
    if not query:
        return {"dashboard_url": base}
    return {"dashboard_url": f"{base}{'&' if '?' in base else '?'}{query}"}


def render_alert(rule: AlertRule, alerting: AlertingConfig) -> dict[str, Any]:
    """The Prometheus rule of ``rule``.

    Args:
        rule: the rule.
        alerting: the ``alerting`` section (the runbook and dashboard base URLs).

    Returns:
        ``alert``, ``expr``, ``for`` (when the rule has one), ``labels`` (what it is
        about, ``severity``, the rule's labels, the SLO's ``labels``) and
        ``annotations`` (``summary``, ``description``, and ``runbook_url`` and
        ``dashboard_url`` when their base URLs are configured).
    """
    about = rule.about
    slo: str | None
    region: str | None
    scope: dict[str, str]
    match about:
        case SLOTarget():
            scope, region, slo = identity(about), about.region, about.slo.name
            metadata = dict(sorted(about.slo.labels.items()))
        case str():
            scope, region, slo, metadata = {"region": about}, about, None, {}
        case None:
            scope, region, slo, metadata = {}, None, None, {}
        case _:
            assert_never(about)
    rendered: dict[str, Any] = {"alert": rule.name, "expr": rule.expr}
    if rule.for_seconds:
        rendered["for"] = format_duration(rule.for_seconds)
    rendered["labels"] = {**scope, "severity": rule.severity, **rule.labels, **metadata}
    rendered["annotations"] = {
        "summary": rule.summary,
        "description": rule.description,
        **_runbook(alerting, rule.runbook),
        **_dashboard(alerting, region, slo),
    }
    return rendered
