"""The Alertmanager configuration: routing tree, inhibitions, maintenance windows.

- ``severity="page"`` goes to the page receiver, ``severity="ticket"`` (and anything
  else) to the ticket receiver; notifications are grouped by
  ``alertname``, ``region`` and ``repository``.
- A firing page of an SLO inhibits its tickets in the same region (the page says it
  all); ``RegistryProbeNotRunning`` and ``RegistryProbeNeverRan`` inhibit
  ``RegistrySLOSLIAbsent`` in their region (the cause is already reported).
- Each ``alerting.maintenance_windows`` entry becomes a ``time_intervals`` entry muting
  the routes of its regions (Alertmanager ≥ 0.25): notifications are held back, the
  alerts still fire and the error budget is still spent.
"""

from __future__ import annotations

from typing import Any

from registry_slo.config import AlertingConfig, MaintenanceWindow, Receiver
from registry_slo.generate.alerts import ABSENT_ALERT, NEVER_RAN_ALERT, NOT_RUNNING_ALERT

__all__ = ["GROUP_BY", "alertmanager_config"]

GROUP_BY = ("alertname", "region", "repository")


def _receiver(receiver: Receiver) -> dict[str, Any]:
    out: dict[str, Any] = {"name": receiver.name}
    if receiver.webhook_urls:
        out["webhook_configs"] = [
            {"url": url, "send_resolved": receiver.send_resolved}
            for url in receiver.webhook_urls
        ]
    return out


def _time_interval(window: MaintenanceWindow) -> dict[str, Any]:
    interval: dict[str, Any] = {}
    if window.weekdays:
        interval["weekdays"] = list(window.weekdays)
    interval["times"] = [{"start_time": window.start, "end_time": window.end}]
    interval["location"] = window.location
    return {"name": window.name, "time_intervals": [interval]}


def _regex(values: list[str]) -> str:
    # Region names are [a-z0-9._-]: a dot in a class needs no backslash.
    return "|".join(v.replace(".", "[.]") for v in values)


def _muting(alerting: AlertingConfig, regions: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """The route's own mute intervals, and child routes for regions muted differently.

    Child routes do not inherit ``mute_time_intervals``, so each carries its full list.
    """
    everywhere = [w.name for w in alerting.maintenance_windows if not w.regions]
    by_set: dict[tuple[str, ...], list[str]] = {}
    for region in regions:
        names = tuple(
            w.name for w in alerting.maintenance_windows
            if not w.regions or region in w.regions
        )
        if list(names) != everywhere:
            by_set.setdefault(names, []).append(region)
    children = [
        {"matchers": [f'region=~"{_regex(members)}"'], "mute_time_intervals": list(names)}
        for names, members in by_set.items()
    ]
    return everywhere, children


def alertmanager_config(alerting: AlertingConfig, regions: list[str]) -> dict[str, Any]:
    """The Alertmanager configuration for the alerts this package generates.

    Args:
        alerting: the ``alerting`` section.
        regions: the configured region names (maintenance windows may name some).

    Returns:
        The configuration as plain data, ready for YAML.
    """
    mute, children = _muting(alerting, regions)
    routes: list[dict[str, Any]] = []
    for severity, receiver, timing in (
        ("page", alerting.page, {"group_wait": "30s", "repeat_interval": "1h"}),
        ("ticket", alerting.ticket, {"group_wait": "5m", "repeat_interval": "1d"}),
    ):
        route: dict[str, Any] = {
            "receiver": receiver.name,
            "matchers": [f'severity="{severity}"'],
            **timing,
        }
        if mute:
            route["mute_time_intervals"] = mute
        if children:
            route["routes"] = children
        routes.append(route)
    config: dict[str, Any] = {
        "route": {
            "receiver": alerting.ticket.name,
            "group_by": list(GROUP_BY),
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": routes,
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="page"', 'sloth_slo=~".+"'],
                "target_matchers": ['severity="ticket"', 'sloth_slo=~".+"'],
                "equal": ["sloth_slo", "region"],
            },
            {
                "source_matchers": [f'alertname=~"{NOT_RUNNING_ALERT}|{NEVER_RAN_ALERT}"'],
                "target_matchers": [f'alertname="{ABSENT_ALERT}"'],
                "equal": ["region"],
            },
        ],
        "receivers": [_receiver(alerting.page), _receiver(alerting.ticket)],
    }
    if alerting.maintenance_windows:
        config["time_intervals"] = [_time_interval(w) for w in alerting.maintenance_windows]
    return config
