"""The exporter's metric registry: one collector per domain, composed and rendered.

Every series is defined once, in its domain's module, and each part of the exporter is
handed only its domain (the recorder protocol it reports to, where it has one):

- :attr:`ExporterMetrics.probes` (:mod:`~registry_slo.telemetry.probe_metrics`): probe
  results, runs in flight, schedule delay; the probe scheduler's ``ProbeRecorder``.
- :attr:`ExporterMetrics.regions` (:mod:`~registry_slo.telemetry.region_metrics`):
  replication lag, registry clocks, TLS certificates, pull-through cache counters.
- :attr:`ExporterMetrics.ingest` (:mod:`~registry_slo.telemetry.ingest_metrics`):
  ``registry_slo_registry_*`` traffic and ``registry_slo_ingest_*``; the ingest
  service's ``IngestRecorder``.
- :attr:`ExporterMetrics.health` (:mod:`~registry_slo.telemetry.health`): build info,
  internal errors, process and runtime metrics, OpenTelemetry span accounting.
- :attr:`ExporterMetrics.slos` (:mod:`~registry_slo.telemetry.slo_metrics`):
  ``registry_slo_slo_*``, computed by the SLI engine at scrape.

Probe metrics are cached results: probes run on a schedule, not on scrape, and each
series says so in its HELP text; ``registry_slo_probe_last_run_timestamp_seconds`` tells
how fresh a value is.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from registry_slo.telemetry._series import Union
from registry_slo.telemetry.health import ExporterHealth
from registry_slo.telemetry.ingest_metrics import IngestMetrics
from registry_slo.telemetry.probe_metrics import ProbingMetrics
from registry_slo.telemetry.region_metrics import RegionMetrics
from registry_slo.telemetry.slo_metrics import SLOMetrics
from registry_slo.vocabulary import DURATION_BUCKETS

__all__ = ["ExporterMetrics"]


class ExporterMetrics:
    """The exporter's metric registry, composed of one collector per domain.

    :attr:`registry` holds everything (for prometheus-client consumers and tests);
    :meth:`render` writes the exposition, the many per-probe series on a fast path.
    """

    def __init__(self, buckets: Sequence[float] = DURATION_BUCKETS) -> None:
        self.health = ExporterHealth()
        """The exporter's own health; counts every part's internal errors."""
        self.regions = RegionMetrics()
        """Region health: replication lag, clocks, certificates, caches."""
        self.ingest = IngestMetrics(self.health.internal_error, buckets)
        """Registry traffic and ingest health: the ingest service's recorder."""
        self.slos = SLOMetrics()
        """Filled once the exporter hands it the engine (:meth:`SLOMetrics.track`)."""
        self.probes = ProbingMetrics(self.health.internal_error, buckets)
        """Probe results and scheduling health: the probe scheduler's recorder."""
        self.standard = CollectorRegistry()
        """Every domain but the probes' (rendered by prometheus-client)."""
        for domain in (self.health, self.regions, self.slos, self.ingest):
            self.standard.register(domain)
        self.registry = CollectorRegistry()
        """Everything."""
        self.registry.register(Union(self.standard))
        self.registry.register(self.probes)

    def render(self, openmetrics: bool = False) -> bytes:
        """The exposition of every series.

        Args:
            openmetrics: OpenMetrics 1.0 rather than the Prometheus text format 0.0.4.

        Returns:
            The exposition, encoded.
        """
        if openmetrics:
            standard: str = openmetrics_latest(self.standard).decode()  # type: ignore[no-untyped-call]
            standard = standard.removesuffix("# EOF\n")
            return (standard + self.probes.render(True) + "# EOF\n").encode()
        text: bytes = generate_latest(self.standard)
        return text + self.probes.render(False).encode()
