"""Every metric the exporter serves, defined once, here.

Probe metrics are cached results: probes run on a schedule, not on scrape, and each
series says so in its HELP text; ``registry_slo_probe_last_run_timestamp_seconds`` tells
how fresh a value is.
"""

from __future__ import annotations

import platform

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from registry_slo import __version__
from registry_slo.observation import Observation

__all__ = ["DURATION_BUCKETS", "ExporterMetrics"]

DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
)
"""Histogram boundaries (seconds); latency SLO thresholds must be one of them."""

_CACHED = "Probes run on a schedule; this is the result of the last run, not of the scrape."

# ``*_created`` series double the series count and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class ExporterMetrics:
    """The exporter's metric registry and every series in it.

    Args:
        registry: where to register (a fresh :class:`CollectorRegistry` by default, with
            the process, platform and GC collectors).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.registry = registry
        r = registry

        self.build_info = Info(
            "registry_slo_build", "Version of the registry-slo exporter.", registry=r
        )
        self.build_info.info({"version": __version__, "python": platform.python_version()})

        # -- probe results (M1-M5, M11) -------------------------------------------
        self.probe_requests = Counter(
            "registry_slo_probe_requests",
            "Probe runs attempted, by region and probe. " + _CACHED,
            ["region", "probe"],
            registry=r,
        )
        self.probe_failures = Counter(
            "registry_slo_probe_failures",
            "Probe runs that failed, by region, probe and reason "
            "(timeout, connect, tls, auth, denied, not_found, rate_limited, server_error, "
            "digest_mismatch, protocol).",
            ["region", "probe", "reason"],
            registry=r,
        )
        self.probe_duration = Histogram(
            "registry_slo_probe_duration_seconds",
            "Duration of probe runs, successful or not. " + _CACHED,
            ["region", "probe"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.probe_phase_duration = Histogram(
            "registry_slo_probe_phase_duration_seconds",
            "Exclusive time per probe phase (auth, upload, manifest, download).",
            ["region", "probe", "phase"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.probe_success = Gauge(
            "registry_slo_probe_success",
            "1 if the last run of the probe succeeded, else 0. " + _CACHED,
            ["region", "probe"],
            registry=r,
        )
        self.probe_last_duration = Gauge(
            "registry_slo_probe_last_duration_seconds",
            "Duration of the last run of the probe. " + _CACHED,
            ["region", "probe"],
            registry=r,
        )
        self.probe_last_run = Gauge(
            "registry_slo_probe_last_run_timestamp_seconds",
            "Unix time at which the last run of the probe started.",
            ["region", "probe"],
            registry=r,
        )
        self.probe_bytes = Counter(
            "registry_slo_probe_bytes",
            "Bytes moved by probes (direction: sent, received).",
            ["region", "probe", "direction"],
            registry=r,
        )

        # -- the exporter's own health --------------------------------------------
        self.probe_in_flight = Gauge(
            "registry_slo_probe_runs_in_flight",
            "Probe runs currently in progress.",
            registry=r,
        )
        self.probe_skipped = Counter(
            "registry_slo_probe_skipped",
            "Scheduled probe runs skipped because the previous run of the same probe "
            "was still in progress or the run was missed.",
            ["region", "probe"],
            registry=r,
        )
        self.schedule_delay = Histogram(
            "registry_slo_probe_schedule_delay_seconds",
            "How late probe runs start compared with their scheduled time.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.probes_configured = Gauge(
            "registry_slo_probes_configured",
            "Probes scheduled by this exporter, by region and probe (always 1).",
            ["region", "probe"],
            registry=r,
        )
        self.internal_errors = Counter(
            "registry_slo_internal_errors",
            "Unexpected exceptions inside the exporter, by component (a bug: please report).",
            ["component"],
            registry=r,
        )

    def configure_probe(self, region: str, probe: str) -> None:
        """Declare a scheduled probe so its series exist (at zero) before the first run."""
        self.probes_configured.labels(region, probe).set(1)
        self.probe_requests.labels(region, probe)
        self.probe_bytes.labels(region, probe, "sent")
        self.probe_bytes.labels(region, probe, "received")
        self.probe_skipped.labels(region, probe)

    def record_probe(self, observation: Observation) -> None:
        """Account one probe result."""
        region, probe = observation.region, observation.operation
        self.probe_requests.labels(region, probe).inc()
        if not observation.success:
            reason = str(observation.reason) if observation.reason else "protocol"
            self.probe_failures.labels(region, probe, reason).inc()
        self.probe_duration.labels(region, probe).observe(observation.duration_seconds)
        for name, seconds in observation.phases.items():
            self.probe_phase_duration.labels(region, probe, name).observe(seconds)
        self.probe_success.labels(region, probe).set(1 if observation.success else 0)
        self.probe_last_duration.labels(region, probe).set(observation.duration_seconds)
        self.probe_last_run.labels(region, probe).set(observation.time)
        self.probe_bytes.labels(region, probe, "sent").inc(observation.bytes_sent)
        self.probe_bytes.labels(region, probe, "received").inc(observation.bytes_received)
