"""The ingest sources of a running exporter: one tailer per configured log, on a loop,
and the notification receiver on its own address.

Each source polls in a worker thread (file reads and parsing never block the event loop
that serves ``/metrics``), on its own schedule, with a read budget per poll so that one
source's backlog does not hold up the others. A failing poll is logged and counted
(``registry_slo_internal_errors{component="ingest"}``) and the source goes on at its next
poll: bad input never stops the exporter. What the sources read and how they are doing
is reported to an :class:`IngestRecorder` (the exporter's ingest metrics). A
``distribution-gc`` source reports garbage collection runs instead of traffic (its
reports go to :meth:`TrafficRecorder.record_gc`), and, when its region's storage
filesystem is read, what each run reclaimed (:class:`~registry_slo.ingest.reclaim.ReclaimMeter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

import structlog

from registry_slo._serving import WebProtection
from registry_slo.config import IngestConfig, LogSourceConfig
from registry_slo.ingest.artifacts import ARTIFACT_KINDS, pushed_artifact
from registry_slo.ingest.checkpoint import CheckpointStore, Cursor
from registry_slo.ingest.filesystem import FilesystemUsage
from registry_slo.ingest.formats import GcFact, GcReport, GcRunEnded, make_parser
from registry_slo.ingest.labels import RepositoryLabeler
from registry_slo.ingest.notify import Journal, NotificationReceiver, serve_notifications
from registry_slo.ingest.overwrite import TagOverwriteDetector
from registry_slo.ingest.pipeline import SourcePipeline
from registry_slo.ingest.reclaim import ReclaimMeter
from registry_slo.ingest.scrape import ScrapeRecorder, ScrapeSource
from registry_slo.ingest.sink import LineCounts
from registry_slo.ingest.tail import FileTailer
from registry_slo.observation import Observation
from registry_slo.vocabulary import OPERATIONS, STATUS_CODES, Component, Reason

__all__ = ["IngestRecorder", "IngestService", "MetricsSink", "TrafficRecorder"]

log = structlog.get_logger("registry_slo.ingest")


class TrafficRecorder(Protocol):
    """What a :class:`MetricsSink` reports: the operations sources read, and their line
    accounting."""

    def record_event(self, observation: Observation, repository: str | None = None) -> None:
        """One operation; ``repository`` is its bounded label (``None``: none)."""
        ...

    def record_manifest_push(self, region: str, source: str, artifact: str) -> None:
        """One manifest pushed, by what it is (image, signature, ...)."""
        ...

    def record_tag_overwrite(self, region: str, repository: str | None) -> None:
        """A push that moved an existing tag to another digest."""
        ...

    def record_gc(self, region: str, source: str, fact: GcFact) -> None:
        """What a garbage collector's output reports (a run's summary, a deletion, the
        end of a run, the last success)."""
        ...

    def record_ingest_lines(
        self, source: str, lines: int, observations: int, ignored: Mapping[str, int],
        rejected: Mapping[str, int], nbytes: int,
    ) -> None:
        """A batch of line accounting (ignored and rejected lines by reason)."""
        ...


class IngestRecorder(TrafficRecorder, ScrapeRecorder, Protocol):
    """What the ingest service reports: its sources' series (declared at zero), their
    traffic, files, notification requests and failed polls."""

    def configure_ingest_source(self, source: str) -> None:
        """Declare a log or notification source (its series exist at zero)."""
        ...

    def configure_manifest_pushes(
        self, region: str, source: str, artifacts: Iterable[str]
    ) -> None:
        """Declare a source's manifest push series, one per artifact kind, at zero."""
        ...

    def configure_traffic_failures(
        self, region: str, sources: Iterable[str], operations: Iterable[str],
        reasons: Iterable[str],
    ) -> None:
        """Declare the failure series of ``sources`` for these operations and reasons."""
        ...

    def configure_tag_overwrites(self, region: str, repositories: Iterable[str]) -> None:
        """Declare the tag overwrite series of ``repositories`` in ``region``."""
        ...

    def configure_gc(self, region: str, source: str, reclaim: bool) -> None:
        """Declare a garbage collection source's series (counters at zero; bytes
        reclaimed unknown when ``reclaim``)."""
        ...

    def record_gc_reclaimed(self, region: str, source: str, nbytes: float) -> None:
        """The bytes a source's last successful run reclaimed (NaN: not measurable)."""
        ...

    def record_ingest_files(
        self, source: str, files: int, lag_bytes: int, events: Mapping[str, int], when: float
    ) -> None:
        """A log source's files after a poll (``events``: new since the last)."""
        ...

    def record_notification_request(self, source: str, code: int) -> None:
        """One request answered by the notification receiver."""
        ...

    def track_storage(
        self, region: str, source: str, used: Callable[[], float],
        capacity: Callable[[], float],
    ) -> None:
        """Serve a filesystem source's bytes used and capacity, read when asked."""
        ...

    def internal_error(self, component: Component) -> None:
        """An unexpected exception (a poll that failed)."""
        ...


class MetricsSink:
    """A :class:`~registry_slo.ingest.sink.Sink` that feeds a :class:`TrafficRecorder`
    (the exporter's metrics), and hands every observation to ``observers`` too (the SLI
    engine).

    Args:
        metrics: the recorder.
        observers: also receive every observation.
        meters: garbage collection source name → what measures its runs' reclaimed
            bytes (told when a run ends).
    """

    def __init__(
        self, metrics: TrafficRecorder, observers: Sequence[Callable[[Observation], None]] = (),
        meters: Mapping[str, ReclaimMeter] | None = None,
    ) -> None:
        self.metrics = metrics
        self.observers = tuple(observers)
        self.meters = meters if meters is not None else {}

    def observe(self, observation: Observation, repository: str | None) -> None:
        """See :meth:`~registry_slo.ingest.sink.Sink.observe`."""
        o = observation
        self.metrics.record_event(o, repository)
        artifact = pushed_artifact(o)
        if artifact is not None:
            self.metrics.record_manifest_push(o.region, o.source, artifact)
        for observer in self.observers:
            observer(observation)

    def tag_overwrite(self, observation: Observation, repository: str | None) -> None:
        """See :meth:`~registry_slo.ingest.sink.Sink.tag_overwrite`."""
        self.metrics.record_tag_overwrite(observation.region, repository)

    def account(self, source: str, counts: LineCounts) -> None:
        """See :meth:`~registry_slo.ingest.sink.Sink.account`."""
        self.metrics.record_ingest_lines(
            source, counts.lines, counts.observations, counts.ignored, counts.rejected,
            counts.bytes,
        )

    def gc_report(self, report: GcReport) -> None:
        """See :meth:`~registry_slo.ingest.sink.Sink.gc_report`."""
        meter = self.meters.get(report.source)
        for fact in report.facts:
            self.metrics.record_gc(report.region, report.source, fact)
            if meter is not None and isinstance(fact, GcRunEnded):
                meter.ended(fact)


class _Source:
    def __init__(self, config: LogSourceConfig, tailer: FileTailer,
                 meter: ReclaimMeter | None = None) -> None:
        self.config = config
        self.tailer = tailer
        self.meter = meter
        self.reported: Counter[str] = Counter()


class IngestService:
    """Every configured log source, followed until stopped.

    Args:
        config: the ``ingest`` section.
        metrics: the recorder (the exporter's ingest metrics).
        observers: also receive every operation read (the SLI engine's traffic SLIs).
        cursors: name → where a log source keeps its checkpoint instead of its file
            (the SLI engine's cursors: committed with the counts of the lines before).
        protected: repositories whose moved tags page (``alerting.protected_repositories``):
            labelled by name, their overwrite series created at zero in every region
            with a source.
        journals: ``(webhook endpoint, capacity)`` → where its event ids are committed
            with the counts of their events (the SLI engine's journals); webhooks are
            then answered once committed.
        protection: what the webhook listener requires (the web configuration file).
    """

    def __init__(
        self,
        config: IngestConfig,
        metrics: IngestRecorder,
        observers: Sequence[Callable[[Observation], None]] = (),
        cursors: Callable[[str], Cursor] | None = None,
        protected: Sequence[str] = (),
        journals: Callable[[str, int], Journal] | None = None,
        protection: WebProtection | None = None,
    ) -> None:
        self.config = config
        self.protection = protection
        self.metrics = metrics
        storage: dict[str, FilesystemUsage] = {}
        for filesystem in config.filesystems:
            usage = FilesystemUsage(filesystem)
            storage.setdefault(filesystem.region, usage)
            metrics.track_storage(filesystem.region, filesystem.name, usage.used,
                                  usage.capacity)
        meters = {
            source.name: ReclaimMeter(
                storage[source.region].used,
                functools.partial(metrics.record_gc_reclaimed, source.region, source.name))
            for source in config.logs
            if not source.reads_traffic and source.region in storage
        }
        sink = MetricsSink(metrics, observers, meters)
        labeler = RepositoryLabeler(config.repositories, keep=protected)
        overwrites = TagOverwriteDetector(config.tag_memory)
        directory = config.checkpoint_path
        self.sources: list[_Source] = []
        for source in config.logs:
            pipeline = SourcePipeline(
                source.name,
                make_parser(source.format, source.region, source.name, source.mapping,
                            source.registries),
                sink,
                labeler,
                overwrites,
            )
            tailer = FileTailer(
                source.paths,
                pipeline,
                CheckpointStore(
                    directory / f"{source.name}.json",
                    cursor=cursors(f"ingest/{source.name}") if cursors else None,
                ),
                read_from=source.read_from,
                max_line_bytes=source.max_line_bytes,
                exclude=source.exclude,
                rotate_wait=config.rotate_wait,
                checkpoint_interval=config.checkpoint_interval,
            )
            if source.reads_traffic:
                self._declare(source.region, source.name, protected, STATUS_CODES)
            else:  # garbage collection runs: no traffic series
                metrics.configure_ingest_source(source.name)
                metrics.configure_gc(source.region, source.name, source.name in meters)
            self.sources.append(_Source(source, tailer, meters.get(source.name)))
        self.scrapes = [ScrapeSource(source, metrics) for source in config.scrapes]
        notifications = config.notifications
        self.receiver: NotificationReceiver | None = None
        if notifications.endpoints:
            pipelines = {}
            for endpoint in notifications.endpoints:
                pipelines[endpoint.name] = SourcePipeline(
                    endpoint.name, None, sink, labeler, overwrites
                )
                # Notifications are successful operations and carry no status.
                self._declare(endpoint.region, endpoint.name, protected, ("",))
            self.receiver = NotificationReceiver(
                notifications, pipelines, metrics.record_notification_request,
                journals=(lambda name, capacity: journals(f"notify/{name}", capacity))
                if journals is not None else None,
            )

    def _declare(self, region: str, source: str, protected: Sequence[str],
                 codes: Sequence[str]) -> None:
        """Create the series of a log or notification source that alerts read, at zero:
        ``rate()`` and ``increase()`` cannot see the first event of a series born at 1.
        ``codes``: the ``code`` values the source can report."""
        self.metrics.configure_ingest_source(source)
        self.metrics.configure_requests(region, source, OPERATIONS, codes)
        self.metrics.configure_manifest_pushes(region, source, ARTIFACT_KINDS)
        self.metrics.configure_traffic_failures(region, [source], OPERATIONS, [Reason.AUTH])
        self.metrics.configure_tag_overwrites(region, protected)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow every source until ``stop`` is set, then save the checkpoints.

        Args:
            stop: ends ingest when set.

        Raises:
            ExceptionGroup: a source's task died (a bug: failed polls and reads are
                counted and retried, never raised); the other sources were stopped
                first, their checkpoints saved.
        """
        work = [self._follow(source, stop) for source in self.sources]
        work += [scrape.run(stop) for scrape in self.scrapes]
        if self.receiver is not None:
            work.append(self._receive(self.receiver, stop))
        if not work:
            return
        log.info("ingest started", sources=[s.config.name for s in self.sources],
                 scrapes=[s.config.name for s in self.scrapes],
                 checkpoint_dir=str(self.config.checkpoint_path),
                 notifications=self.config.notifications.listen if self.receiver else None)
        async with asyncio.TaskGroup() as sources:
            for coroutine in work:
                sources.create_task(coroutine)

    async def _receive(self, receiver: NotificationReceiver, stop: asyncio.Event) -> None:
        try:
            await serve_notifications(receiver, stop, self.protection)
        except Exception:
            self.metrics.internal_error("ingest")
            log.exception("ingest: the notification receiver failed",
                          listen=receiver.config.listen)

    async def _follow(self, source: _Source, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                busy = False
                try:
                    busy = await asyncio.to_thread(self._poll, source)
                except Exception:
                    self.metrics.internal_error("ingest")
                    log.exception("ingest: poll failed", source=source.config.name)
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.config.poll_interval)
        finally:
            try:
                await asyncio.to_thread(source.tailer.close)
                self._report(source)
            except Exception:
                self.metrics.internal_error("ingest")
                log.exception("ingest: closing failed", source=source.config.name)

    def _poll(self, source: _Source) -> bool:
        if source.meter is not None:
            source.meter.sample()  # before reading: a run's lines may follow
        busy = source.tailer.poll()
        self._report(source)
        return busy

    def _report(self, source: _Source) -> None:
        tailer = source.tailer
        events = tailer.events - source.reported
        source.reported = Counter(tailer.events)
        self.metrics.record_ingest_files(
            source.config.name, tailer.files, tailer.lag_bytes, events, time.time()
        )
