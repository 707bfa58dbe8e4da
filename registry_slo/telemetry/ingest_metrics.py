"""The ingest domain: registry traffic as registries report it, and ingest health.

``registry_slo_registry_*``: what log files, notifications and metrics endpoints say
about the requests registries served (one set of series whatever the source, ``source``
naming it). ``registry_slo_gc_*``: the registries' garbage collection runs, as their
output (``distribution-gc`` sources) tells them. ``registry_slo_ingest_*``: how the
sources themselves are doing (lines read and rejected, files followed, scrapes).
:class:`IngestMetrics` is the recorder the ingest service and its scrape sources report
to (:class:`~registry_slo.ingest.service.IngestRecorder`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, assert_never

from prometheus_client import Counter, Gauge, Histogram

from registry_slo.ingest.formats import (
    GC_RESULTS,
    IGNORED_REASONS,
    REJECTED_REASONS,
    GcDeleted,
    GcFact,
    GcLastSuccess,
    GcRunEnded,
    GcSummary,
)
from registry_slo.observation import Observation
from registry_slo.telemetry._last_read import ReportedLatency
from registry_slo.telemetry._series import CountInternalError, SeriesGroup
from registry_slo.vocabulary import (
    DURATION_BUCKETS,
    GC_BLOBS_DELETED,
    GC_LAST_SUCCESS,
    GC_RECLAIMED,
    GC_RUNS,
    INGEST_LINES,
    REGISTRY_DURATION,
    REGISTRY_FAILURES,
    REGISTRY_REQUESTS,
    STATUS_CODES,
    STORAGE_CAPACITY,
    STORAGE_USED,
    TAG_OVERWRITES,
    Component,
    code_label,
)

__all__ = ["IngestMetrics"]


class IngestMetrics(SeriesGroup):
    """The ingest domain's series, and the ingest service's recorder.

    Args:
        count_internal_error: counts a failed poll of an ingest source.
    """

    def __init__(self, count_internal_error: CountInternalError,
                 buckets: Sequence[float] = DURATION_BUCKETS) -> None:
        super().__init__()
        self._count_internal_error = count_internal_error
        # -- registry traffic from what registries emit (logs, events, metrics) --------
        self.registry_requests = self.add(Counter(
            REGISTRY_REQUESTS.name,
            "Requests served by the registry, as read from what it emits (logs, events), "
            "by region, ingest source, operation and HTTP status code (a closed set: "
            "statuses the distribution API answers with, other statuses by class such "
            "as 4xx, empty when the source does not say).",
            ["region", "source", "operation", "code"],
            registry=None,
        ))
        self.registry_failures = self.add(Counter(
            REGISTRY_FAILURES.name,
            "Requests served by the registry that failed, by reason (the probes' closed "
            "set: timeout, connect, tls, auth, denied, not_found, rate_limited, "
            "server_error, digest_mismatch, protocol).",
            ["region", "source", "operation", "reason"],
            registry=None,
        ))
        self.registry_duration = self.add(Histogram(
            REGISTRY_DURATION.name,
            "Duration of requests as the registry logged it (sources that log durations).",
            ["region", "source", "operation"],
            buckets=tuple(buckets),
            registry=None,
        ))
        self.registry_bytes = self.add(Counter(
            "registry_slo_registry_bytes",
            "Body bytes of registry requests, by direction as seen from the registry "
            "(egress: sent to clients; ingress: received from them), when the source says.",
            ["region", "source", "operation", "direction"],
            registry=None,
        ))
        self.registry_repository_requests = self.add(Counter(
            "registry_slo_registry_repository_requests",
            "Requests by repository (only the configured top-N or allow-list have their "
            "own label; the rest are 'other') and outcome (success, failure).",
            ["region", "repository", "operation", "outcome"],
            registry=None,
        ))
        self.registry_tag_overwrites = self.add(Counter(
            TAG_OVERWRITES.name,
            "Pushes that moved an existing tag to another digest, by repository (bounded "
            "like registry_slo_registry_repository_requests).",
            ["region", "repository"],
            registry=None,
        ))
        self.registry_manifest_pushes = self.add(Counter(
            "registry_slo_registry_manifest_pushes",
            "Manifests pushed successfully, by what they are from the tag they were pushed "
            "under (artifact: image, signature, attestation, sbom by cosign's "
            "sha256-<digest>.sig/.att/.sbom tags; untagged: pushed by digest only). "
            "Signed image ratio (M10): signature / image.",
            ["region", "source", "artifact"],
            registry=None,
        ))
        self.registry_storage_used = self.add(Gauge(
            STORAGE_USED.name,
            "Storage the registry reports in use (zot: sum of its repositories; Harbor: "
            "sum of project quota usage; a filesystem source: bytes used on it), by "
            "region and source (M7).",
            ["region", "source"],
            registry=None,
        ))
        self.registry_storage_capacity = self.add(Gauge(
            STORAGE_CAPACITY.name,
            "Storage the registry allows (Harbor: sum of project quotas that are set; a "
            "filesystem source: its size, less blocks reserved for root).",
            ["region", "source"],
            registry=None,
        ))
        self.registry_reported_latency = self.add(ReportedLatency())
        # -- garbage collection runs (distribution-gc sources, M8) ----------------------
        self.gc_runs = self.add(Counter(
            GC_RUNS.name,
            "Garbage collection runs read from the collector's output, by result (ok: "
            "it deleted what was eligible or found nothing to delete; dry_run: it listed "
            "eligible blobs and deleted none; failed: an error, or its output stopped "
            "before it was complete).",
            ["region", "source", "result"],
            registry=None,
        ))
        self.gc_blobs_marked = self.add(Gauge(
            "registry_slo_gc_blobs_marked",
            "Blobs (manifests included) the last garbage collection run marked as in use, "
            "from its summary line.",
            ["region", "source"],
            registry=None,
        ))
        self.gc_blobs_eligible = self.add(Gauge(
            "registry_slo_gc_blobs_eligible",
            "Blobs the last garbage collection run found eligible for deletion (deleted "
            "unless it was a dry run), from its summary line.",
            ["region", "source"],
            registry=None,
        ))
        self.gc_manifests_eligible = self.add(Gauge(
            "registry_slo_gc_manifests_eligible",
            "Untagged manifests the last garbage collection run found eligible for "
            "deletion (--delete-untagged), from its summary line.",
            ["region", "source"],
            registry=None,
        ))
        self.gc_blobs_deleted = self.add(Counter(
            GC_BLOBS_DELETED.name,
            "Blobs garbage collection deleted (its 'Deleting blob' lines).",
            ["region", "source"],
            registry=None,
        ))
        self.gc_manifests_deleted = self.add(Counter(
            "registry_slo_gc_manifests_deleted",
            "Untagged manifests garbage collection deleted (its 'deleting manifest' lines).",
            ["region", "source"],
            registry=None,
        ))
        self.gc_last_success = self.add(Gauge(
            GC_LAST_SUCCESS.name,
            "Unix time the last successful (not dry) garbage collection run completed, as "
            "read: its last line's timestamp, else when that line was read. Before the "
            "source has read one: when it started watching (kept across restarts).",
            ["region", "source"],
            registry=None,
        ))
        self.gc_reclaimed = self.add(Gauge(
            GC_RECLAIMED.name,
            "Bytes the last successful garbage collection run reclaimed: the storage "
            "filesystem's bytes used before its first deletion minus after its last (the "
            "region's ingest.filesystems source); NaN when that could not be read "
            "cleanly.",
            ["region", "source"],
            registry=None,
        ))
        # -- the ingest sources' own health ---------------------------------------------
        self.ingest_scrapes = self.add(Counter(
            "registry_slo_ingest_scrapes",
            "Reads of registries' metrics endpoints by outcome (ok, http_error, "
            "unreachable, malformed).",
            ["source", "outcome"],
            registry=None,
        ))
        self.ingest_lines = self.add(Counter(
            INGEST_LINES.name,
            "Records read by an ingest source (log lines, notification events); each is "
            "exactly one observation, ignored record or rejected record.",
            ["source"],
            registry=None,
        ))
        self.ingest_observations = self.add(Counter(
            "registry_slo_ingest_observations",
            "Records read by an ingest source that were registry operations.",
            ["source"],
            registry=None,
        ))
        self.ingest_ignored = self.add(Counter(
            "registry_slo_ingest_ignored",
            "Records that were not operations to count, by reason "
            f"({', '.join(IGNORED_REASONS)}).",
            ["source", "reason"],
            registry=None,
        ))
        self.ingest_rejected = self.add(Counter(
            "registry_slo_ingest_rejected",
            f"Records that could not be read, by reason ({', '.join(REJECTED_REASONS)}).",
            ["source", "reason"],
            registry=None,
        ))
        self.ingest_bytes = self.add(Counter(
            "registry_slo_ingest_bytes", "Bytes read by an ingest source.", ["source"],
            registry=None,
        ))
        self.ingest_files = self.add(Gauge(
            "registry_slo_ingest_files", "Files an ingest source has open.", ["source"],
            registry=None,
        ))
        self.ingest_lag_bytes = self.add(Gauge(
            "registry_slo_ingest_lag_bytes",
            "Bytes written to an ingest source's files and not read yet.",
            ["source"],
            registry=None,
        ))
        self.ingest_file_events = self.add(Counter(
            "registry_slo_ingest_file_events",
            "File events of an ingest source (opened, rotated, truncated, copy_followed, "
            "copy_not_found, closed).",
            ["source", "event"],
            registry=None,
        ))
        self.ingest_last_poll = self.add(Gauge(
            "registry_slo_ingest_last_poll_timestamp_seconds",
            "Unix time at which an ingest source last looked for new data.",
            ["source"],
            registry=None,
        ))
        self.ingest_notification_requests = self.add(Counter(
            "registry_slo_ingest_notification_requests",
            "Requests to the notification (webhook) receiver, by endpoint and the HTTP "
            "status answered (401: bad token, 413: body too large).",
            ["source", "code"],
            registry=None,
        ))
        self._event_series: dict[tuple[str, str, str, str, str | None], tuple[Any, ...]] = {}

    # -- declaring series at zero ---------------------------------------------------------

    def configure_ingest_source(self, source: str) -> None:
        """Declare an ingest source so its series exist (at zero) before it reads.

        Args:
            source: the source's name.
        """
        self.ingest_lines.labels(source)
        self.ingest_observations.labels(source)
        self.ingest_bytes.labels(source)
        self.ingest_files.labels(source)
        self.ingest_lag_bytes.labels(source)

    def configure_manifest_pushes(self, region: str, source: str,
                                  artifacts: Iterable[str]) -> None:
        """Create a source's manifest push series at zero (the signed ratio of a region
        without signatures is 0, not absent).

        Args:
            region: the source's region.
            source: the source's name.
            artifacts: every ``artifact`` label value.
        """
        for artifact in artifacts:
            self.registry_manifest_pushes.labels(region, source, artifact)

    def configure_scrape(self, source: str, outcomes: Iterable[str]) -> None:
        """Create a scrape source's outcome series at zero.

        Args:
            source: the scrape source's name.
            outcomes: every ``outcome`` label value.
        """
        for outcome in outcomes:
            self.ingest_scrapes.labels(source, outcome)

    def configure_requests(self, region: str, source: str, operations: Iterable[str],
                           codes: Iterable[str] = STATUS_CODES) -> None:
        """Create a source's request series at zero, for every operation and ``code``:
        rules sum them over codes, and ``rate()`` cannot see the first request of a code
        whose series is born at 1.

        Args:
            region: the source's region.
            source: the source's name.
            operations: the operations it can report.
            codes: the ``code`` values it can report.
        """
        codes = tuple(codes)
        for operation in operations:
            for code in codes:
                self.registry_requests.labels(region, source, operation, code)

    def configure_traffic_failures(
        self, region: str, sources: Iterable[str], operations: Iterable[str],
        reasons: Iterable[str],
    ) -> None:
        """Create the failure series a traffic SLI reads, at zero: Prometheus' ``rate()``
        cannot see the first increment of a series that is born at 1.

        Args:
            region: the SLO's region.
            sources: the ingest sources of the region.
            operations: the SLI's operations.
            reasons: the SLI's failure reasons.
        """
        for source, operation, reason in itertools.product(sources, operations, reasons):
            self.registry_failures.labels(region, source, operation, reason)

    def configure_tag_overwrites(self, region: str, repositories: Iterable[str]) -> None:
        """Create the tag overwrite series of protected repositories at zero, so that
        ``increase()`` sees the first moved tag.

        Args:
            region: a region with a log or notification source.
            repositories: ``alerting.protected_repositories``.
        """
        for repository in repositories:
            self.registry_tag_overwrites.labels(region, repository)

    def configure_gc(self, region: str, source: str, reclaim: bool) -> None:
        """Create a garbage collection source's counters at zero (``increase()`` sees
        the first run), and its reclaimed bytes at NaN (unknown) when measured.

        Args:
            region: the source's region.
            source: the ``distribution-gc`` source's name.
            reclaim: whether the region's storage filesystem is read (bytes reclaimed).
        """
        for result in GC_RESULTS:
            self.gc_runs.labels(region, source, result)
        self.gc_blobs_deleted.labels(region, source)
        self.gc_manifests_deleted.labels(region, source)
        if reclaim:
            self.gc_reclaimed.labels(region, source).set(math.nan)

    # -- log and notification sources -------------------------------------------------------

    def record_event(self, observation: Observation, repository: str | None = None) -> None:
        """Account one registry operation read by an ingest source.

        Args:
            observation: the operation.
            repository: its bounded ``repository`` label (``None``: not labelled).
        """
        o = observation
        code = code_label(o.status)
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

    def record_manifest_push(self, region: str, source: str, artifact: str) -> None:
        """Count one manifest pushed (see ``registry_slo_registry_manifest_pushes``).

        Args:
            region: the registry's region.
            source: the ingest source.
            artifact: what it is (image, signature, attestation, sbom, untagged).
        """
        self.registry_manifest_pushes.labels(region, source, artifact).inc()

    def record_tag_overwrite(self, region: str, repository: str | None) -> None:
        """Account one push that moved an existing tag to another digest.

        Args:
            region: the registry's region.
            repository: its bounded ``repository`` label (``None``: not labelled).
        """
        self.registry_tag_overwrites.labels(region, repository or "").inc()

    def record_gc(self, region: str, source: str, fact: GcFact) -> None:
        """Account what a garbage collector's output reports.

        Args:
            region: the registry's region.
            source: the ``distribution-gc`` source.
            fact: a run's summary, a deletion, the end of a run, or the last success.
        """
        match fact:
            case GcSummary():
                self.gc_blobs_marked.labels(region, source).set(fact.blobs_marked)
                self.gc_blobs_eligible.labels(region, source).set(fact.blobs_eligible)
                self.gc_manifests_eligible.labels(region, source).set(
                    fact.manifests_eligible)
            case GcDeleted():
                match fact.kind:
                    case "blob":
                        self.gc_blobs_deleted.labels(region, source).inc()
                    case "manifest":
                        self.gc_manifests_deleted.labels(region, source).inc()
                    case _:
                        assert_never(fact.kind)
            case GcRunEnded():
                self.gc_runs.labels(region, source, fact.result).inc()
            case GcLastSuccess():
                self.gc_last_success.labels(region, source).set(fact.time)
            case _:
                assert_never(fact)

    def record_gc_reclaimed(self, region: str, source: str, nbytes: float) -> None:
        """Set the bytes the last successful run reclaimed.

        Args:
            region: the registry's region.
            source: the ``distribution-gc`` source.
            nbytes: storage used before minus after (NaN: not measurable).
        """
        self.gc_reclaimed.labels(region, source).set(nbytes)

    def record_ingest_lines(
        self,
        source: str,
        lines: int,
        observations: int,
        ignored: Mapping[str, int],
        rejected: Mapping[str, int],
        nbytes: int,
    ) -> None:
        """Account a batch of lines read by an ingest source.

        Args:
            source: the source's name.
            lines: records read.
            observations: records that were operations.
            ignored: ignored records by reason.
            rejected: rejected records by reason.
            nbytes: bytes consumed.
        """
        self.ingest_lines.labels(source).inc(lines)
        self.ingest_observations.labels(source).inc(observations)
        for reason, count in ignored.items():
            self.ingest_ignored.labels(source, reason).inc(count)
        for reason, count in rejected.items():
            self.ingest_rejected.labels(source, reason).inc(count)
        self.ingest_bytes.labels(source).inc(nbytes)

    def record_ingest_files(
        self, source: str, files: int, lag_bytes: int, events: Mapping[str, int], when: float
    ) -> None:
        """Record an ingest source's files after a poll.

        Args:
            source: the source's name.
            files: files open.
            lag_bytes: bytes written to them and not read yet.
            events: file events since the last poll, by kind.
            when: Unix time of the poll.
        """
        self.ingest_files.labels(source).set(files)
        self.ingest_lag_bytes.labels(source).set(lag_bytes)
        for event, count in events.items():
            self.ingest_file_events.labels(source, event).inc(count)
        self.ingest_last_poll.labels(source).set(when)

    def record_notification_request(self, source: str, code: int) -> None:
        """Account one request answered by the notification receiver.

        Args:
            source: the endpoint's name.
            code: the HTTP status answered.
        """
        self.ingest_notification_requests.labels(source, str(code)).inc()

    def track_storage(
        self, region: str, source: str, used: Callable[[], float],
        capacity: Callable[[], float],
    ) -> None:
        """Serve ``used()`` and ``capacity()`` (bytes, read at scrape) as ``region``'s
        storage use and capacity from ``source``.

        Args:
            region: the registry's region.
            source: the filesystem source.
            used: bytes in use (NaN while unknown).
            capacity: bytes available in all (NaN while unknown).
        """
        self.registry_storage_used.labels(region, source).set_function(used)
        self.registry_storage_capacity.labels(region, source).set_function(capacity)

    def internal_error(self, component: Component) -> None:
        """Count an unexpected exception (``registry_slo_internal_errors_total``).

        Args:
            component: where it happened.
        """
        self._count_internal_error(component)

    # -- scrape sources: what a registry's metrics endpoint said --------------------------

    def add_requests(
        self, region: str, source: str, operation: str, code: str, count: float
    ) -> None:
        """Add requests the registry counted since the previous read.

        Args:
            region: the registry's region.
            source: the scrape source.
            operation: the normalised operation.
            code: the HTTP status code (bounded by `code_label`).
            count: the increase.
        """
        self.registry_requests.labels(region, source, operation, code_label(code)).inc(count)

    def add_failures(
        self, region: str, source: str, operation: str, reason: str, count: float
    ) -> None:
        """Add failed requests the registry counted since the previous read.

        Args:
            region: the registry's region.
            source: the scrape source.
            operation: the normalised operation.
            reason: the failure reason of their status code.
            count: the increase.
        """
        self.registry_failures.labels(region, source, operation, reason).inc(count)

    def add_bytes(
        self, region: str, source: str, operation: str, direction: str, count: float
    ) -> None:
        """Add body bytes the registry counted since the previous read.

        Args:
            region: the registry's region.
            source: the scrape source.
            operation: the normalised operation.
            direction: ``egress`` (to clients) or ``ingress`` (from them).
            count: the increase.
        """
        self.registry_bytes.labels(region, source, operation, direction).inc(count)

    def reported_latency(
        self, region: str, source: str, operation: str, buckets: Mapping[float, float],
        total: float,
    ) -> None:
        """Serve the registry's own latency histogram of ``operation`` as last read.

        Args:
            region: the registry's region.
            source: the scrape source.
            operation: the normalised operation.
            buckets: upper bound (``inf`` included) → cumulative count.
            total: the sum of the observed durations.
        """
        self.registry_reported_latency.update(region, source, operation, buckets, total)

    def storage(
        self, region: str, source: str, used: float | None, capacity: float | None
    ) -> None:
        """Set the storage the registry reports (``None``: not reported, left as is).

        Args:
            region: the registry's region.
            source: the scrape source.
            used: bytes in use.
            capacity: bytes allowed.
        """
        if used is not None:
            self.registry_storage_used.labels(region, source).set(used)
        if capacity is not None:
            self.registry_storage_capacity.labels(region, source).set(capacity)

    def scraped(self, source: str, outcome: str) -> None:
        """Count one read of a metrics endpoint.

        Args:
            source: the scrape source.
            outcome: ``ok``, ``http_error``, ``unreachable`` or ``malformed``.
        """
        self.ingest_scrapes.labels(source, outcome).inc()
