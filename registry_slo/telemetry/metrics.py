"""Every metric the exporter serves, defined once, here.

Probe metrics are cached results: probes run on a schedule, not on scrape, and each
series says so in its HELP text; ``registry_slo_probe_last_run_timestamp_seconds`` tells
how fresh a value is.
"""

from __future__ import annotations

import itertools
import platform
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    Metric,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from registry_slo import __version__
from registry_slo.observation import Observation
from registry_slo.telemetry.probe_metrics import ProbeMetrics
from registry_slo.telemetry.slo_metrics import SLOMetrics
from registry_slo.vocabulary import DURATION_BUCKETS, LAG_BUCKETS

__all__ = ["ExporterMetrics"]

# ``*_created`` series double the series count and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class RegistryCacheCounters(Collector):
    """A pull-through cache's own hit/miss counters, as last read from the registry.

    They are the registry's counters (reset when it restarts), exposed as counters so
    ``rate()`` handles the resets: the cache hit ratio is
    ``rate(registry_slo_cache_hits_total) / rate(registry_slo_cache_requests_total)``.
    """

    _FIELDS = (("requests", "Requests"), ("hits", "Hits"), ("misses", "Misses"))

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], dict[str, float]] = {}

    def update(self, region: str, kind: str, values: dict[str, float]) -> None:
        """Store the registry's counters for ``kind`` (``blob`` or ``manifest``)."""
        self._values[(region, kind)] = dict(values)

    def collect(self) -> Iterable[Metric]:
        for name, field_name in self._FIELDS:
            family = CounterMetricFamily(
                f"registry_slo_cache_{name}",
                f"Pull-through cache {name} counted by the registry itself (read from its "
                "/debug/vars or metrics endpoint when the cache probe runs), by kind.",
                labels=["region", "kind"],
            )
            for (region, kind), values in sorted(self._values.items()):
                if field_name in values:
                    family.add_metric([region, kind], values[field_name])
            yield family


class ReportedLatency(Collector):
    """Registries' own request-latency histograms, as last read, with their own buckets.

    Served as ``registry_slo_registry_reported_request_duration_seconds{region,source,
    operation}``: the registry's cumulative counts (resets when it restarts, which
    ``rate()`` handles), its operations normalised like every other ingest source.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[str, str, str], tuple[dict[float, float], float]] = {}

    def update(
        self, region: str, source: str, operation: str, buckets: dict[float, float],
        total: float,
    ) -> None:
        """Store cumulative bucket counts (upper bound → count) and the sum."""
        self._values[(region, source, operation)] = (dict(buckets), total)

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(
            "registry_slo_registry_reported_request_duration_seconds",
            "Request latency as the registry itself measures it (its metrics endpoint, read "
            "by a scrape source), with the registry's own buckets.",
            labels=["region", "source", "operation"],
        )
        for labels, (buckets, total) in sorted(self._values.items()):
            ordered = sorted(buckets.items())
            family.add_metric(
                list(labels),
                [(floatToGoString(le), count) for le, count in ordered],  # type: ignore[no-untyped-call]
                total,
            )
        yield family


class _Union(Collector):
    """Everything of one registry, as one collector (to compose registries)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


class ExporterMetrics:
    """The exporter's metric registry and every series in it.

    :attr:`registry` holds everything (for prometheus-client consumers and tests);
    :meth:`render` writes the exposition, the many per-probe series on a fast path.
    """

    def __init__(self) -> None:
        self.standard = r = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.probes = ProbeMetrics(DURATION_BUCKETS)
        """Per-(region, probe) results (M1-M5, M11)."""
        self.registry = CollectorRegistry()
        self.registry.register(_Union(self.standard))
        self.registry.register(self.probes)

        self.build_info = Info(
            "registry_slo_build", "Version of the registry-slo exporter.", registry=r
        )
        self.build_info.info({"version": __version__, "python": platform.python_version()})

        # -- multi-region: replication lag (M6), clocks, caches (M13) ---------------
        self.replication_lag = Gauge(
            "registry_slo_replication_lag_seconds",
            "Seconds since the newest heartbeat visible on the mirror was written at the "
            "source region; computed at scrape, so it keeps growing while replication is "
            "stopped. NaN until the mirror has shown a heartbeat.",
            ["region", "source_region"],
            registry=r,
        )
        self.replication_lag_first_sight = Histogram(
            "registry_slo_replication_lag_at_first_sight_seconds",
            "Age of each new heartbeat when first seen on the mirror (includes up to one "
            "heartbeat interval of polling delay).",
            ["region", "source_region"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.clock_offset = Gauge(
            "registry_slo_registry_clock_offset_seconds",
            "Estimated offset of the registry's clock from the exporter's "
            "(registry - exporter), from HTTP Date headers; lag figures are only as good "
            "as the clocks.",
            ["region"],
            registry=r,
        )
        self.cache_counters = RegistryCacheCounters()
        r.register(self.cache_counters)
        self.certificate_expiry = Gauge(
            "registry_slo_tls_certificate_expiry_timestamp_seconds",
            "Unix time at which the registry's TLS certificate expires, as presented to the "
            "probes (https regions with verification; NaN until a probe has connected).",
            ["region"],
            registry=r,
        )

        # -- the SLI engine: error ratios, burn rates, budget (registry_slo_slo_*) ---
        self.slos = SLOMetrics()
        """Filled once the exporter hands it the engine (:meth:`SLOMetrics.track`)."""
        r.register(self.slos)

        # -- the exporter's own health --------------------------------------------
        self.probe_in_flight = Gauge(
            "registry_slo_probe_runs_in_flight",
            "Probe runs currently in progress.",
            registry=r,
        )
        self.schedule_delay = Histogram(
            "registry_slo_probe_schedule_delay_seconds",
            "How late probe runs start compared with their scheduled time.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.internal_errors = Counter(
            "registry_slo_internal_errors",
            "Unexpected exceptions inside the exporter, by component (a bug: please report).",
            ["component"],
            registry=r,
        )

        # -- registry traffic from what registries emit (ingest: logs, events) --------
        self.registry_requests = Counter(
            "registry_slo_registry_requests",
            "Requests served by the registry, as read from what it emits (logs, events), "
            "by region, ingest source, operation and HTTP status code (empty when the "
            "source does not say).",
            ["region", "source", "operation", "code"],
            registry=r,
        )
        self.registry_failures = Counter(
            "registry_slo_registry_request_failures",
            "Requests served by the registry that failed, by reason (the probes' closed "
            "set: timeout, connect, tls, auth, denied, not_found, rate_limited, "
            "server_error, digest_mismatch, protocol).",
            ["region", "source", "operation", "reason"],
            registry=r,
        )
        self.registry_duration = Histogram(
            "registry_slo_registry_request_duration_seconds",
            "Duration of requests as the registry logged it (sources that log durations).",
            ["region", "source", "operation"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.registry_bytes = Counter(
            "registry_slo_registry_bytes",
            "Body bytes of registry requests, by direction as seen from the registry "
            "(egress: sent to clients; ingress: received from them), when the source says.",
            ["region", "source", "operation", "direction"],
            registry=r,
        )
        self.registry_repository_requests = Counter(
            "registry_slo_registry_repository_requests",
            "Requests by repository (only the configured top-N or allow-list have their "
            "own label; the rest are 'other') and outcome (success, failure).",
            ["region", "repository", "operation", "outcome"],
            registry=r,
        )
        self.registry_tag_overwrites = Counter(
            "registry_slo_registry_tag_overwrites",
            "Pushes that moved an existing tag to another digest, by repository (bounded "
            "like registry_slo_registry_repository_requests).",
            ["region", "repository"],
            registry=r,
        )
        self.registry_manifest_pushes = Counter(
            "registry_slo_registry_manifest_pushes",
            "Manifests pushed successfully, by what they are from the tag they were pushed "
            "under (artifact: image, signature, attestation, sbom by cosign's "
            "sha256-<digest>.sig/.att/.sbom tags; untagged: pushed by digest only). "
            "Signed image ratio (M10): signature / image.",
            ["region", "source", "artifact"],
            registry=r,
        )
        self.registry_storage_used = Gauge(
            "registry_slo_registry_storage_used_bytes",
            "Storage the registry reports in use (zot: sum of its repositories; Harbor: "
            "sum of project quota usage; a filesystem source: bytes used on it), by "
            "region and source (M7).",
            ["region", "source"],
            registry=r,
        )
        self.registry_storage_capacity = Gauge(
            "registry_slo_registry_storage_capacity_bytes",
            "Storage the registry allows (Harbor: sum of project quotas that are set; a "
            "filesystem source: its size, less blocks reserved for root).",
            ["region", "source"],
            registry=r,
        )
        self.reported_latency = ReportedLatency()
        r.register(self.reported_latency)
        self.ingest_scrapes = Counter(
            "registry_slo_ingest_scrapes",
            "Reads of registries' metrics endpoints by outcome (ok, http_error, "
            "unreachable, malformed).",
            ["source", "outcome"],
            registry=r,
        )
        self.ingest_lines = Counter(
            "registry_slo_ingest_lines",
            "Records read by an ingest source (log lines, notification events); each is "
            "exactly one observation, ignored record or rejected record.",
            ["source"],
            registry=r,
        )
        self.ingest_observations = Counter(
            "registry_slo_ingest_observations",
            "Records read by an ingest source that were registry operations.",
            ["source"],
            registry=r,
        )
        self.ingest_ignored = Counter(
            "registry_slo_ingest_ignored",
            "Records that were not operations to count, by reason (blank, not_an_operation, "
            "probe_traffic, auth_challenge, not_registry_api, duplicate).",
            ["source", "reason"],
            registry=r,
        )
        self.ingest_rejected = Counter(
            "registry_slo_ingest_rejected",
            "Records that could not be read, by reason (non_utf8, line_too_long, "
            "malformed_json, unknown_format, missing_field, bad_value, body_too_large, "
            "internal_error).",
            ["source", "reason"],
            registry=r,
        )
        self.ingest_bytes = Counter(
            "registry_slo_ingest_bytes", "Bytes read by an ingest source.", ["source"],
            registry=r,
        )
        self.ingest_files = Gauge(
            "registry_slo_ingest_files", "Files an ingest source has open.", ["source"],
            registry=r,
        )
        self.ingest_lag_bytes = Gauge(
            "registry_slo_ingest_lag_bytes",
            "Bytes written to an ingest source's files and not read yet.",
            ["source"],
            registry=r,
        )
        self.ingest_file_events = Counter(
            "registry_slo_ingest_file_events",
            "File events of an ingest source (opened, rotated, truncated, copy_followed, "
            "copy_not_found, closed).",
            ["source", "event"],
            registry=r,
        )
        self.ingest_last_poll = Gauge(
            "registry_slo_ingest_last_poll_timestamp_seconds",
            "Unix time at which an ingest source last looked for new data.",
            ["source"],
            registry=r,
        )
        self.ingest_notification_requests = Counter(
            "registry_slo_ingest_notification_requests",
            "Requests to the notification (webhook) receiver, by endpoint and the HTTP "
            "status answered (401: bad token, 413: body too large).",
            ["source", "code"],
            registry=r,
        )
        self._event_series: dict[tuple[str, str, str, str, str | None], tuple[Any, ...]] = {}

    def render(self, openmetrics: bool = False) -> bytes:
        """The exposition: Prometheus text format 0.0.4, or OpenMetrics 1.0."""
        if openmetrics:
            standard: str = openmetrics_latest(self.standard).decode()  # type: ignore[no-untyped-call]
            standard = standard.removesuffix("# EOF\n")
            return (standard + self.probes.render(True) + "# EOF\n").encode()
        text: bytes = generate_latest(self.standard)
        return text + self.probes.render(False).encode()

    def track_replication(
        self, region: str, source_region: str, lag: Callable[[], float]
    ) -> None:
        """Serve ``lag()`` as the replication lag of ``region`` behind ``source_region``."""
        self.replication_lag.labels(region, source_region).set_function(lag)

    def track_clock(self, region: str, offset: Callable[[], float]) -> None:
        """Serve ``offset()`` as the clock offset of ``region``'s registry."""
        self.clock_offset.labels(region).set_function(offset)

    def track_certificate(self, region: str, expiry: Callable[[], float]) -> None:
        """Serve ``expiry()`` as the TLS certificate expiry of ``region``'s registry."""
        self.certificate_expiry.labels(region).set_function(expiry)

    def configure_manifest_pushes(self, region: str, source: str,
                                  artifacts: Iterable[str]) -> None:
        """Create a source's manifest push series at zero (the signed ratio of a region
        without signatures is 0, not absent)."""
        for artifact in artifacts:
            self.registry_manifest_pushes.labels(region, source, artifact)

    def record_manifest_push(self, region: str, source: str, artifact: str) -> None:
        """Count one manifest pushed (see ``registry_slo_registry_manifest_pushes``)."""
        self.registry_manifest_pushes.labels(region, source, artifact).inc()

    def track_storage(
        self, region: str, source: str, used: Callable[[], float],
        capacity: Callable[[], float],
    ) -> None:
        """Serve ``used()`` and ``capacity()`` (bytes, read at scrape) as ``region``'s
        storage use and capacity from ``source``."""
        self.registry_storage_used.labels(region, source).set_function(used)
        self.registry_storage_capacity.labels(region, source).set_function(capacity)

    def configure_traffic_failures(
        self, region: str, sources: Iterable[str], operations: Iterable[str],
        reasons: Iterable[str],
    ) -> None:
        """Create the failure series a traffic SLI reads, at zero: Prometheus' ``rate()``
        cannot see the first increment of a series that is born at 1."""
        for source, operation, reason in itertools.product(sources, operations, reasons):
            self.registry_failures.labels(region, source, operation, reason)

    def configure_ingest_source(self, source: str) -> None:
        """Declare an ingest source so its series exist (at zero) before it reads."""
        self.ingest_lines.labels(source)
        self.ingest_observations.labels(source)
        self.ingest_bytes.labels(source)
        self.ingest_files.labels(source)
        self.ingest_lag_bytes.labels(source)

    def record_event(self, observation: Observation, repository: str | None = None) -> None:
        """Account one registry operation read by an ingest source.

        Args:
            observation: the operation.
            repository: its bounded ``repository`` label (``None``: not labelled).
        """
        o = observation
        code = "" if o.status is None else str(o.status)
        key = (o.region, o.source, o.operation, code, repository)
        series = self._event_series.get(key)
        if series is None:
            outcome = ("success", "failure")
            series = self._event_series[key] = (
                self.registry_requests.labels(o.region, o.source, o.operation, code),
                self.registry_duration.labels(o.region, o.source, o.operation),
                self.registry_bytes.labels(o.region, o.source, o.operation, "egress"),
                self.registry_bytes.labels(o.region, o.source, o.operation, "ingress"),
                *(
                    (
                        self.registry_repository_requests.labels(
                            o.region, repository, o.operation, name
                        )
                        for name in outcome
                    )
                    if repository is not None
                    else (None, None)
                ),
            )
        requests, duration, egress, ingress, repo_ok, repo_failed = series
        requests.inc()
        if not o.success:
            reason = str(o.reason) if o.reason else "protocol"
            self.registry_failures.labels(o.region, o.source, o.operation, reason).inc()
        if o.timed:
            duration.observe(o.duration_seconds)
        if o.bytes_received:
            egress.inc(o.bytes_received)
        if o.bytes_sent:
            ingress.inc(o.bytes_sent)
        if repo_ok is not None:
            (repo_ok if o.success else repo_failed).inc()

    def record_tag_overwrite(self, region: str, repository: str | None) -> None:
        """Account one push that moved an existing tag to another digest."""
        self.registry_tag_overwrites.labels(region, repository or "").inc()

    def record_ingest_lines(
        self,
        source: str,
        lines: int,
        observations: int,
        ignored: Mapping[str, int],
        rejected: Mapping[str, int],
        nbytes: int,
    ) -> None:
        """Account a batch of lines read by an ingest source."""
        self.ingest_lines.labels(source).inc(lines)
        self.ingest_observations.labels(source).inc(observations)
        for reason, count in ignored.items():
            self.ingest_ignored.labels(source, reason).inc(count)
        for reason, count in rejected.items():
            self.ingest_rejected.labels(source, reason).inc(count)
        self.ingest_bytes.labels(source).inc(nbytes)

    def record_notification_request(self, source: str, code: int) -> None:
        """Account one request answered by the notification receiver."""
        self.ingest_notification_requests.labels(source, str(code)).inc()

    def record_ingest_files(
        self, source: str, files: int, lag_bytes: int, events: Mapping[str, int], when: float
    ) -> None:
        """Record an ingest source's files after a poll (``events``: new since the last)."""
        self.ingest_files.labels(source).set(files)
        self.ingest_lag_bytes.labels(source).set(lag_bytes)
        for event, count in events.items():
            self.ingest_file_events.labels(source, event).inc(count)
        self.ingest_last_poll.labels(source).set(when)
