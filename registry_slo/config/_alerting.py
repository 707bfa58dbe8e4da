"""The ``alerting:`` section: where alerts go and what the generated rules look like.

Read by :mod:`registry_slo.generate` (rules, alerts, Alertmanager routing). It lives with
the other configuration sections because :class:`~registry_slo.config.Settings` composes
and validates them together, and the generator sits above the configuration.

Example::

    alerting:
      page: {name: registry-page, webhook_urls: ["http://127.0.0.1:9095/page"]}
      runbook_url: https://runbooks.example.com/registry
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from registry_slo._units import Duration
from registry_slo.config._base import Strict, require_positive

__all__ = ["AlertingConfig", "MaintenanceWindow", "Receiver", "check_alerting"]

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

_RECEIVER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00")


class Receiver(Strict):
    """An Alertmanager receiver: a name, and the webhooks it posts to (if any).

    With no ``webhook_urls`` the receiver only has a name: add its integrations
    (PagerDuty, e-mail, …) to the generated Alertmanager configuration by hand, or
    route to a receiver of that name in an existing configuration.
    """

    name: str
    webhook_urls: tuple[str, ...] = ()
    send_resolved: bool = True

    @model_validator(mode="after")
    def _check(self) -> Receiver:
        if not _RECEIVER.fullmatch(self.name):
            raise ValueError(f"name: {self.name!r} is not a valid receiver name")
        for index, url in enumerate(self.webhook_urls):
            _check_url(url, f"webhook_urls[{index}]")
        if len(set(self.webhook_urls)) != len(self.webhook_urls):
            raise ValueError("webhook_urls: lists a URL twice")
        return self


def _check_url(url: str, key: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{key}: {url!r} must be an http:// or https:// URL")


class MaintenanceWindow(Strict):
    """A recurring window (e.g. registry garbage collection) during which notifications
    are muted, rendered as an Alertmanager ``time_interval``.

    Attributes:
        name: the ``time_intervals`` name.
        weekdays: the days it applies (default: every day).
        start: ``HH:MM``, inclusive.
        end: ``HH:MM``, exclusive (``24:00`` for midnight); after ``start``.
        location: an IANA time zone (default ``UTC``).
        regions: the regions muted (default: all).
    """

    name: str
    weekdays: tuple[Weekday, ...] = ()
    start: str
    end: str
    location: str = "UTC"
    regions: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> MaintenanceWindow:
        if not _RECEIVER.fullmatch(self.name):
            raise ValueError(f"name: {self.name!r} must be letters, digits, '_', '.' or '-'")
        for key in ("start", "end"):
            if not _CLOCK.fullmatch(getattr(self, key)):
                raise ValueError(f"{key}: {getattr(self, key)!r} must be HH:MM (24-hour)")
        if self.start == "24:00":
            raise ValueError("start: must be before 24:00")
        if self.end <= self.start:
            raise ValueError(
                "end: must be after start; split a window that crosses midnight in two"
            )
        if len(set(self.weekdays)) != len(self.weekdays):
            raise ValueError("weekdays: lists a day twice")
        try:
            ZoneInfo(self.location)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"location: {self.location!r} is not a known time zone") from None
        return self


class AlertingConfig(Strict):
    """Where alerts go and what the generated rules look like.

    Attributes:
        rule_mode: ``full`` computes every window from the exporter's metrics;
            ``performance`` builds windows longer than 5m from the 5m recording
            (cheaper, and what Thanos/Mimir rulers want).
        page: the receiver for ``severity="page"`` alerts.
        ticket: the receiver for ``severity="ticket"`` alerts (and the default route).
        runbook_url: base URL; alerts link ``<base>/<slo name>`` or ``<base>/<alert>``.
        dashboard_url: base URL; alerts link ``<base>?var-region=…&var-slo=…``.
        replication_lag_threshold: ``RegistryReplicationLagHigh`` fires above it.
        maintenance_windows: recurring windows that mute notifications (GC runs).
        storage_threshold: ``RegistryStorageHigh`` fires above this fraction of the
            capacity the registry reports (M7: 70%).
        auth_failure_ratio: ``RegistryAuthFailureSpike`` fires when this fraction of the
            traffic a region's ingest sources see fails authentication (M11, F7).
        certificate_expiry_warning: ``RegistryCertificateExpiring`` fires when the
            registry's TLS certificate expires within this time.
        rate_limit_headroom: ``RegistryRateLimitHeadroomLow`` (ticket) fires when less
            than this share of a registry's rate-limit quota is left (F9);
            ``RegistryRateLimitExhausted`` pages when none is.
        protected_repositories: repositories where moving a tag is an incident
            (``RegistryProtectedTagOverwritten``, F4); they must be labelled, i.e. in
            ``ingest.repositories.allow`` or its top-N.
        gc_overdue_after: ``RegistryGarbageCollectionOverdue`` (ticket) fires in a
            region with a ``distribution-gc`` log source when its last successful
            garbage collection is older than this (M8: weekly).
    """

    rule_mode: Literal["full", "performance"] = "full"
    page: Receiver = Receiver(name="page")
    ticket: Receiver = Receiver(name="ticket")
    runbook_url: str | None = None
    dashboard_url: str | None = None
    replication_lag_threshold: Duration = 300.0
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()
    storage_threshold: float = Field(default=0.7, gt=0, lt=1)
    auth_failure_ratio: float = Field(default=0.05, gt=0, lt=1)
    certificate_expiry_warning: Duration = 14 * 86400.0
    rate_limit_headroom: float = Field(default=0.2, gt=0, lt=1)
    protected_repositories: tuple[str, ...] = ()
    gc_overdue_after: Duration = 7 * 86400.0

    @model_validator(mode="after")
    def _check(self) -> AlertingConfig:
        if self.page.name == self.ticket.name:
            raise ValueError("ticket.name: must differ from page.name")
        for key in ("runbook_url", "dashboard_url"):
            url = getattr(self, key)
            if url is not None:
                _check_url(url, key)
        require_positive(self.replication_lag_threshold, "replication_lag_threshold")
        if not 3600 <= self.gc_overdue_after <= 90 * 86400:
            raise ValueError("gc_overdue_after: must be between 1h and 90d")
        names = [window.name for window in self.maintenance_windows]
        if len(set(names)) != len(names):
            raise ValueError("maintenance_windows: a name is used twice")
        return self




def check_alerting(alerting: AlertingConfig, regions: Sequence[str]) -> None:
    """Check the alerting section against the configured regions.

    Raises:
        ValueError: naming the key that is wrong.
    """
    for index, window in enumerate(alerting.maintenance_windows):
        for region in window.regions:
            if region not in regions:
                raise ValueError(
                    f"alerting.maintenance_windows[{index}].regions: "
                    f"no region named {region!r}"
                )
