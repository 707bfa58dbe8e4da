"""SLO specifications and the alerting section of the configuration.

These models are the ``slos:`` and ``alerting:`` sections of :class:`registry_slo.config.Settings`.
Like the rest of the configuration they are strict: unknown keys are errors and every
error names the key. Checks that need the configured regions live in
:func:`check_slos` and :func:`check_alerting`, which ``Settings`` calls.

Example::

    slos:
      - name: pull-availability
        sli: {kind: probe_success, probe: pull}
        objective: 99.9
        labels: {team: registry, tier: "1"}
      - name: pull-traffic                 # what users' pulls saw, from ingested logs
        sli: {kind: traffic_success, operations: [pull_manifest, pull_blob]}
        objective: 99.9
    alerting:
      page: {name: registry-page, webhook_urls: ["http://127.0.0.1:9095/page"]}
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from registry_slo._units import Duration, format_duration, human_duration
from registry_slo.observation import OPERATIONS
from registry_slo.oci import Reason
from registry_slo.sli.windows import ALERT_WINDOWS, DAY, objective_ratio

__all__ = [
    "RESERVED_LABELS",
    "SLI",
    "SLI_KINDS",
    "AlertingConfig",
    "AuthSuccessSLI",
    "MaintenanceWindow",
    "ProbeLatencySLI",
    "ProbeSuccessSLI",
    "Receiver",
    "ReplicationLagSLI",
    "SLIKind",
    "SLIProbe",
    "SLOSpec",
    "SLOTopology",
    "TrafficLatencySLI",
    "TrafficSLI",
    "TrafficSuccessSLI",
    "check_alerting",
    "check_slos",
    "sli_summary",
]

SLIKind = Literal[
    "probe_success", "probe_latency", "replication_lag", "auth_success",
    "traffic_success", "traffic_latency",
]
SLI_KINDS: tuple[SLIKind, ...] = (
    "probe_success", "probe_latency", "replication_lag", "auth_success",
    "traffic_success", "traffic_latency",
)
SLIProbe = Literal["push", "pull", "auth", "cache"]
"""The probes an SLI can be built on: ``config.PROBE_KINDS`` (a test pins the two)."""

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

RESERVED_LABELS = frozenset({
    "alertname", "severity", "region", "probe", "reason", "source_region", "le", "job",
    "instance", "long_window", "short_window", "period", "description", "objective",
})
"""Label names an SLO's ``labels`` may not use: the generator sets them itself."""
_RESERVED_PREFIXES = ("__", "sloth_", "sli_")

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62})$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RECEIVER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _positive(seconds: float, key: str) -> None:
    if seconds <= 0:
        raise ValueError(f"{key}: must be positive")


class ProbeSuccessSLI(_Strict):
    """Probe runs that succeed: ``failures / attempts`` of one probe in one region."""

    kind: Literal["probe_success"]
    probe: SLIProbe

    @property
    def probe_name(self) -> str:
        """The ``probe`` label the SLI reads."""
        return self.probe


class ProbeLatencySLI(_Strict):
    """Probe runs faster than ``threshold`` (successful or not: a timeout is slow).

    ``threshold`` must be a histogram bucket boundary of
    ``registry_slo_probe_duration_seconds`` to generate Prometheus rules.
    """

    kind: Literal["probe_latency"]
    probe: SLIProbe
    threshold: Duration

    @model_validator(mode="after")
    def _check(self) -> ProbeLatencySLI:
        _positive(self.threshold, "threshold")
        return self

    @property
    def probe_name(self) -> str:
        """The ``probe`` label the SLI reads."""
        return self.probe


class ReplicationLagSLI(_Strict):
    """The fraction of time a region's replication lag (max over sources) is at most
    ``threshold``, from ``registry_slo_replication_lag_seconds{region,source_region}``."""

    kind: Literal["replication_lag"]
    threshold: Duration

    @model_validator(mode="after")
    def _check(self) -> ReplicationLagSLI:
        _positive(self.threshold, "threshold")
        return self

    @property
    def probe_name(self) -> None:
        """Replication lag is not a probe's success ratio."""
        return None


class AuthSuccessSLI(_Strict):
    """Authentication round trips that succeed: the ``auth`` probe's success ratio."""

    kind: Literal["auth_success"]

    @property
    def probe_name(self) -> str:
        """The ``probe`` label the SLI reads (always ``auth``)."""
        return "auth"


def _check_operations(operations: tuple[str, ...]) -> None:
    if not operations:
        raise ValueError("operations: give at least one operation")
    unknown = [o for o in operations if o not in OPERATIONS]
    if unknown:
        raise ValueError(
            f"operations: unknown operation(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(OPERATIONS)})"
        )
    if len(set(operations)) != len(operations):
        raise ValueError("operations: lists an operation twice")


def _check_sources(sources: tuple[str, ...] | None) -> None:
    if sources is not None and (not sources or len(set(sources)) != len(sources)):
        raise ValueError("sources: give each source once, or leave it out")


class TrafficSuccessSLI(_Strict):
    """Registry requests as users made them, read by the ingest sources (logs,
    notifications): bad when the request failed for one of ``errors``.

    The default ``errors`` are the registry's own failures (5xx, and 429: a rate-limited
    pull is a pull users did not get); client errors such as ``auth``, ``denied`` and
    ``not_found`` do not burn the budget. ``sources`` names the ingest sources to count
    (default: the region's log sources; notification endpoints see successful
    operations only).
    """

    kind: Literal["traffic_success"]
    operations: tuple[str, ...]
    errors: tuple[Reason, ...] = (Reason.SERVER_ERROR, Reason.RATE_LIMITED)
    sources: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _check(self) -> TrafficSuccessSLI:
        _check_operations(self.operations)
        if not self.errors or len(set(self.errors)) != len(self.errors):
            raise ValueError("errors: give each failure reason once, at least one")
        _check_sources(self.sources)
        return self

    @property
    def probe_name(self) -> None:
        """Traffic is not a probe."""
        return None


class TrafficLatencySLI(_Strict):
    """Registry requests, read by the ingest sources, served within ``threshold`` (as
    the registry logged their duration; sources that log no duration do not count).

    ``threshold`` must be a bucket boundary of
    ``registry_slo_registry_request_duration_seconds`` to generate Prometheus rules.
    """

    kind: Literal["traffic_latency"]
    operations: tuple[str, ...]
    threshold: Duration
    sources: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _check(self) -> TrafficLatencySLI:
        _check_operations(self.operations)
        _positive(self.threshold, "threshold")
        _check_sources(self.sources)
        return self

    @property
    def probe_name(self) -> None:
        """Traffic is not a probe."""
        return None


TrafficSLI = TrafficSuccessSLI | TrafficLatencySLI
"""The SLIs read from ingested traffic (``isinstance(sli, TrafficSLI)``)."""

SLI = Annotated[
    ProbeSuccessSLI | ProbeLatencySLI | ReplicationLagSLI | AuthSuccessSLI
    | TrafficSuccessSLI | TrafficLatencySLI,
    Field(discriminator="kind"),
]


def sli_summary(sli: SLI) -> str:
    """The SLI in a few words, for pages and docs: ``pull probe success``,
    ``pull probe ≤ 2s``, ``pull_manifest, pull_blob requests served``."""
    if isinstance(sli, ProbeSuccessSLI | AuthSuccessSLI):
        return f"{sli.probe_name} probe success"
    if isinstance(sli, ProbeLatencySLI):
        return f"{sli.probe} probe ≤ {human_duration(sli.threshold)}"
    if isinstance(sli, ReplicationLagSLI):
        return f"replication lag ≤ {human_duration(sli.threshold)}"
    operations = ", ".join(sli.operations)
    if isinstance(sli, TrafficSuccessSLI):
        return f"{operations} requests served"
    return f"{operations} requests ≤ {human_duration(sli.threshold)}"


def _label_value(value: Any) -> Any:
    # ``tier: 1`` in YAML is an int; a label value is a string.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


LabelValue = Annotated[str, BeforeValidator(_label_value)]


class SLOSpec(_Strict):
    """One service level objective, applied per region.

    Attributes:
        name: lowercase letters, digits and ``-``; the ``sloth_slo`` label.
        description: free text for the info metric, alerts and docs.
        sli: what is measured (``kind`` chooses the indicator).
        objective: the target in percent, e.g. ``99.9``.
        period: the compliance period, whole days (default ``30d``; ``28d`` works).
        regions: the regions the SLO applies to (default: every region that runs the
            SLI's probe; for replication lag every mirror; for traffic every region
            with an ingest source to count).
        labels: metadata such as ``team`` or ``tier``, on the info metric and alerts.
    """

    name: str
    description: str = ""
    sli: SLI
    objective: float
    period: Duration = 30 * DAY
    regions: tuple[str, ...] | None = None
    labels: dict[str, LabelValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> SLOSpec:
        if not _NAME.match(self.name):
            raise ValueError(
                f"name: {self.name!r} must be lowercase letters, digits and '-' "
                "(at most 63 characters)"
            )
        if not 0 < self.objective < 100:
            raise ValueError(f"objective: {self.objective!r} must be a percentage in (0, 100)")
        if self.period % DAY:
            raise ValueError(f"period: {format_duration(self.period)} must be whole days")
        if self.period < ALERT_WINDOWS[-1]:
            raise ValueError(
                f"period: must be at least {format_duration(ALERT_WINDOWS[-1])}, "
                "the longest burn-rate window"
            )
        if self.regions is not None:
            if not self.regions:
                raise ValueError("regions: give at least one region, or leave it out")
            if len(set(self.regions)) != len(self.regions):
                raise ValueError("regions: lists a region twice")
        for key, value in self.labels.items():
            if not _LABEL_NAME.match(key):
                raise ValueError(f"labels.{key}: not a valid Prometheus label name")
            if key in RESERVED_LABELS or key.startswith(_RESERVED_PREFIXES):
                raise ValueError(f"labels.{key}: reserved, the generator sets it")
            if not value:
                raise ValueError(f"labels.{key}: must not be empty")
        return self

    @property
    def objective_ratio(self) -> float:
        """The objective as a ratio (``99.9`` → ``0.999``)."""
        return objective_ratio(self.objective)

    @property
    def period_seconds(self) -> int:
        """The period in whole seconds."""
        return int(self.period)


class Receiver(_Strict):
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
        if not _RECEIVER.match(self.name):
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


class MaintenanceWindow(_Strict):
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
        if not _RECEIVER.match(self.name):
            raise ValueError(f"name: {self.name!r} must be letters, digits, '_', '.' or '-'")
        for key in ("start", "end"):
            if not _CLOCK.match(getattr(self, key)):
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


class AlertingConfig(_Strict):
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
        protected_repositories: repositories where moving a tag is an incident
            (``RegistryProtectedTagOverwritten``, F4); they must be labelled, i.e. in
            ``ingest.repositories.allow`` or its top-N.
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
    protected_repositories: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> AlertingConfig:
        if self.page.name == self.ticket.name:
            raise ValueError("ticket.name: must differ from page.name")
        for key in ("runbook_url", "dashboard_url"):
            url = getattr(self, key)
            if url is not None:
                _check_url(url, key)
        _positive(self.replication_lag_threshold, "replication_lag_threshold")
        names = [window.name for window in self.maintenance_windows]
        if len(set(names)) != len(names):
            raise ValueError("maintenance_windows: a name is used twice")
        return self


@dataclass(frozen=True)
class SLOTopology:
    """What SLOs apply to: the configured regions, the probes each runs, the mirrors,
    and the ingest sources that read each region's traffic.

    Attributes:
        region_probes: every configured region → the probes it runs.
        mirrors: the regions that replicate from another (``replicates_from``).
        log_sources: ingest log source name → its region.
        event_sources: notification endpoint name → its region.
    """

    region_probes: Mapping[str, Sequence[str]]
    mirrors: Collection[str] = ()
    log_sources: Mapping[str, str] = field(default_factory=dict)
    event_sources: Mapping[str, str] = field(default_factory=dict)

    def sources(self, slo: SLOSpec, region: str) -> tuple[str, ...]:
        """The ingest sources a traffic SLO counts in ``region`` (``()`` for other SLIs):
        its ``sources`` of that region, else the region's log sources."""
        sli = slo.sli
        if not isinstance(sli, TrafficSLI):
            return ()
        if sli.sources is None:
            return tuple(name for name, r in self.log_sources.items() if r == region)
        everything = {**self.log_sources, **self.event_sources}
        return tuple(name for name in sli.sources if everything.get(name) == region)

    def regions(self, slo: SLOSpec) -> tuple[str, ...]:
        """The regions an SLO applies to, in configuration order: ``slo.regions`` when
        given; otherwise every region running the SLI's probe, every mirror (replication
        lag), or every region with a source to count (traffic)."""
        if slo.regions is not None:
            return slo.regions
        sli = slo.sli
        if isinstance(sli, ReplicationLagSLI):
            return tuple(name for name in self.region_probes if name in self.mirrors)
        if isinstance(sli, TrafficSLI):
            return tuple(name for name in self.region_probes if self.sources(slo, name))
        probe = sli.probe_name
        return tuple(name for name, probes in self.region_probes.items() if probe in probes)

    def targets(self, slos: Sequence[SLOSpec]) -> list[tuple[SLOSpec, str, tuple[str, ...]]]:
        """Every ``(slo, region, sources)`` the SLOs apply to, in configuration order:
        what the engine counts and the generator writes rules for."""
        return [
            (slo, region, self.sources(slo, region))
            for slo in slos
            for region in self.regions(slo)
        ]

    def _check_region(self, slo: SLOSpec, region: str, key: str) -> None:
        sli = slo.sli
        if region not in self.region_probes:
            raise ValueError(f"{key}.regions: no region named {region!r}")
        if isinstance(sli, ReplicationLagSLI):
            if region not in self.mirrors:
                raise ValueError(
                    f"{key}.regions: region {region!r} has no replicates_from, so no "
                    "replication lag"
                )
        elif isinstance(sli, TrafficSLI):
            if not self.sources(slo, region):
                raise ValueError(
                    f"{key}.regions: region {region!r} has no ingest source to count"
                    + (" among sli.sources" if sli.sources is not None else "")
                )
        elif sli.probe_name not in self.region_probes[region]:
            raise ValueError(
                f"{key}.regions: region {region!r} does not run the {sli.probe_name} probe"
            )

    def check(self, slos: Sequence[SLOSpec]) -> None:
        """Check the SLOs against the configuration.

        Raises:
            ValueError: naming the key (``slos[1].regions``) that is wrong.
        """
        seen: set[str] = set()
        everything = {**self.log_sources, **self.event_sources}
        for index, slo in enumerate(slos):
            key = f"slos[{index}]"
            if slo.name in seen:
                raise ValueError(f"{key}.name: the name {slo.name!r} is used twice")
            seen.add(slo.name)
            sli = slo.sli
            if isinstance(sli, TrafficSLI):
                for name in sli.sources or ():
                    if name not in everything:
                        raise ValueError(
                            f"{key}.sli.sources: no ingest log or notification source "
                            f"named {name!r}"
                        )
            for region in slo.regions or ():
                self._check_region(slo, region, key)
            if self.region_probes and not self.regions(slo):
                if isinstance(sli, ReplicationLagSLI):
                    what = "replicates from another region"
                elif isinstance(sli, TrafficSLI):
                    what = "has an ingest source to count (ingest.logs)"
                else:
                    what = f"runs the {sli.probe_name} probe"
                raise ValueError(f"{key}: no configured region {what}")


def check_slos(slos: Sequence[SLOSpec], topology: SLOTopology) -> None:
    """Check the SLOs against the configuration (see :meth:`SLOTopology.check`)."""
    topology.check(slos)


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
