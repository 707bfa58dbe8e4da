"""What the generators share: the (SLO, region) targets, their labels, the exporter's
series names, and number formatting for PromQL."""

from __future__ import annotations

from dataclasses import dataclass

from registry_slo._units import human_duration
from registry_slo.config import Settings
from registry_slo.sli.spec import SLOSpec
from registry_slo.sli.windows import window_name

__all__ = [
    "CERTIFICATE_EXPIRY",
    "DURATION_BUCKET",
    "DURATION_COUNT",
    "INGEST_LINES",
    "LAST_RUN",
    "PROBES_CONFIGURED",
    "PROBE_FAILURES",
    "PROBE_REQUESTS",
    "PROBE_SKIPPED",
    "REGISTRY_DURATION_BUCKET",
    "REGISTRY_DURATION_COUNT",
    "REGISTRY_FAILURES",
    "REGISTRY_REQUESTS",
    "REPLICATION_LAG",
    "STORAGE_CAPACITY",
    "STORAGE_USED",
    "TAG_OVERWRITES",
    "GenerationError",
    "SLOTarget",
    "human_duration",
    "num",
    "selector",
    "slo_targets",
]

# The exporter's series the rules read (telemetry/metrics.py; a test pins the names).
PROBE_REQUESTS = "registry_slo_probe_requests_total"
PROBE_FAILURES = "registry_slo_probe_failures_total"
DURATION_BUCKET = "registry_slo_probe_duration_seconds_bucket"
DURATION_COUNT = "registry_slo_probe_duration_seconds_count"
LAST_RUN = "registry_slo_probe_last_run_timestamp_seconds"
PROBES_CONFIGURED = "registry_slo_probes_configured"
PROBE_SKIPPED = "registry_slo_probe_skipped_total"
REPLICATION_LAG = "registry_slo_replication_lag_seconds"
REGISTRY_REQUESTS = "registry_slo_registry_requests_total"
REGISTRY_FAILURES = "registry_slo_registry_request_failures_total"
REGISTRY_DURATION_BUCKET = "registry_slo_registry_request_duration_seconds_bucket"
REGISTRY_DURATION_COUNT = "registry_slo_registry_request_duration_seconds_count"
INGEST_LINES = "registry_slo_ingest_lines_total"
TAG_OVERWRITES = "registry_slo_registry_tag_overwrites_total"
STORAGE_USED = "registry_slo_registry_storage_used_bytes"
STORAGE_CAPACITY = "registry_slo_registry_storage_capacity_bytes"
CERTIFICATE_EXPIRY = "registry_slo_tls_certificate_expiry_timestamp_seconds"


class GenerationError(Exception):
    """The configuration cannot be turned into rules; the message names the SLO."""


@dataclass(frozen=True)
class SLOTarget:
    """One SLO in one region: the unit every rule group, alert and test is made for.

    Attributes:
        slo: the SLO.
        region: the region name.
        probe_interval: seconds between the region's probe runs.
        sources: the ingest sources a traffic SLI counts in this region.
    """

    slo: SLOSpec
    region: str
    probe_interval: float
    sources: tuple[str, ...] = ()

    @property
    def sloth_id(self) -> str:
        """``<region>-<slo>``: unique per target."""
        return f"{self.region}-{self.slo.name}"

    @property
    def identity(self) -> dict[str, str]:
        """The labels every ``slo:*`` series of this target carries.

        Sloth's labels, so Sloth's dashboards work: ``sloth_service`` is the region (the
        registry in that region is the service), ``sloth_slo`` the SLO name; ``region``
        is kept for routing and for the exporter's own dashboards.
        """
        return {
            "region": self.region,
            "sloth_id": self.sloth_id,
            "sloth_service": self.region,
            "sloth_slo": self.slo.name,
        }

    @property
    def selector(self) -> str:
        """The label matcher that selects this target's ``slo:*`` series."""
        return f'{{sloth_id="{self.sloth_id}"}}'

    @property
    def period(self) -> str:
        """The period as a Prometheus duration (``30d``)."""
        return window_name(self.slo.period_seconds)


def slo_targets(settings: Settings) -> list[SLOTarget]:
    """Every (SLO, region) pair of the configuration, in configuration order."""
    return [
        SLOTarget(slo, region, settings.region(region).probe.interval, sources)
        for slo, region, sources in settings.slo_topology().targets(settings.slos)
    ]


def selector(**labels: str | tuple[str, ...]) -> str:
    """A PromQL label selector; a tuple of values becomes an alternation (``=~"a|b"``).

    >>> selector(region="us-east", operation=("pull_manifest", "pull_blob"))
    '{region="us-east",operation=~"pull_manifest|pull_blob"}'
    """
    parts = []
    for key, value in labels.items():
        if isinstance(value, tuple):
            if len(value) != 1:
                parts.append(f'{key}=~"{"|".join(value)}"')
                continue
            value = value[0]
        parts.append(f'{key}="{value}"')
    return "{" + ",".join(parts) + "}"


def num(value: float) -> str:
    """A number as PromQL and YAML should show it: ``0.001``, ``14.4``, ``30``."""
    text = f"{value:.12g}"
    if "e" in text:
        text = f"{value:.15f}".rstrip("0").rstrip(".")
    return text
