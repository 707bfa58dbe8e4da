"""The long-running exporter: probes on a schedule, results on ``/metrics``.

:class:`Exporter` wires the sources (probes, ingest) to the SLI engine and the outputs,
handing each its part of the metrics (the recorder protocols of
:mod:`registry_slo.probes.scheduler` and :mod:`registry_slo.ingest.service`), and runs
them as one supervised group (:meth:`Exporter.run`): a part that dies stops the
exporter with :class:`ExporterFailed`, and ``registry-slo serve`` exits with status 1
so that its service manager restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from collections.abc import Awaitable, Collection, Coroutine, Sequence
from typing import Literal, assert_never

import structlog
import uvicorn

from registry_slo import __version__
from registry_slo._serving import bounded_server
from registry_slo.config import Settings, TrafficSuccessSLI, listen_address, web_protection
from registry_slo.ingest import IngestService
from registry_slo.observation import Observation
from registry_slo.probes import (
    LagTracker,
    ProbeScheduler,
    build_probes,
    build_regions,
    execute,
)
from registry_slo.sli.engine import SLIEngine
from registry_slo.sli.store import StoreError
from registry_slo.telemetry.metrics import ExporterMetrics
from registry_slo.telemetry.otel import OpenTelemetry
from registry_slo.telemetry.server import build_app
from registry_slo.telemetry.status import ProbeBoard, StatusCharts, render_status_page

log = structlog.get_logger("registry_slo")

__all__ = ["Exporter", "ExporterFailed", "Part", "describe_error", "describe_part",
           "probe_once"]

CLOCK_TOLERANCE = 1.0
"""Seconds of registry clock offset beyond which the exporter warns."""

Part = Literal["http_server", "probe_scheduler", "sli_engine", "ingest"]
"""The parts of a running exporter, each a task; the ``component`` label of its
``registry_slo_internal_errors_total`` when it dies."""


def describe_part(part: Part) -> str:
    """A part's name in a sentence.

    Args:
        part: the part.

    Returns:
        E.g. ``the SLI engine``.
    """
    match part:
        case "http_server":
            return "the HTTP server"
        case "probe_scheduler":
            return "the probe scheduler"
        case "sli_engine":
            return "the SLI engine"
        case "ingest":
            return "ingest"
        case _:
            assert_never(part)


def describe_error(error: BaseException) -> str:
    """``Type: message`` of an exception, of each one in an exception group.

    Args:
        error: the exception.

    Returns:
        One line.
    """
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(describe_error(e) for e in error.exceptions)
    return f"{type(error).__name__}: {error}"


class ExporterFailed(Exception):
    """A part of the running exporter died, so the exporter stopped.

    Args:
        failures: each part that died, and why, in the order they died.
    """

    def __init__(self, failures: Sequence[tuple[Part, BaseException]]) -> None:
        self.failures = list(failures)
        super().__init__("; ".join(
            f"{describe_part(part)} failed: {describe_error(error)}"
            for part, error in self.failures
        ))


class Exporter:
    """Wires the sources, the metrics and the HTTP server together.

    Args:
        settings: the validated configuration.
        metrics: the metric registry (a fresh one by default).
        regions: serve only these regions (their probes, SLOs and ingest sources), as
            one exporter per region does (``serve --region``); default: every region and
            every ingest source.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: ExporterMetrics | None = None,
        regions: Collection[str] | None = None,
    ) -> None:
        self.settings = settings
        self.regions = frozenset(regions) if regions is not None else None
        self.protection = web_protection(settings)
        buckets = settings.duration_buckets()
        self.metrics = metrics or ExporterMetrics(buckets)
        self.states = build_regions(settings, self.regions)
        probes, trackers = build_probes(
            settings, self.states, self._first_sight,
            self.metrics.regions.cache_counters.update, self.regions,
        )
        targets = settings.slo_targets()
        ingest = settings.ingest
        if self.regions is not None:
            targets = [t for t in targets if t.region in self.regions]
            ingest = ingest.for_regions(self.regions)
        self.otel = OpenTelemetry(settings.otel, self.metrics.health, buckets)
        flush_interval = settings.slo_engine.flush_interval
        if ingest.logs:
            # Log checkpoints are committed with the engine's counts: flush as often as
            # a checkpoint file would be written.
            flush_interval = min(flush_interval, ingest.checkpoint_interval)
        self.engine = SLIEngine(
            targets,
            settings.state_path,
            flush_interval=flush_interval,
            lag_sample_interval=settings.slo_engine.lag_sample_interval,
            on_store_error=functools.partial(self.metrics.health.internal_error, "slo_store"),
        )
        self.board = ProbeBoard()
        self.charts = StatusCharts(self.engine.history)
        for scheduled in probes:
            self.board.configure(scheduled.probe.region, scheduled.probe.kind)
        self.scheduler = ProbeScheduler(
            probes, self.metrics.probes,
            sinks=[self._check_clock, self.otel.record, self.engine.observe, self.board.record],
            tracer=self.otel.tracer,
        )
        for tracker in trackers:
            self.metrics.regions.track_replication(
                tracker.region, tracker.source_region, tracker.reading
            )
            self.engine.track_lag(tracker.region, tracker.reading)
        self.metrics.slos.track(self.engine.evaluate)
        for state in self.states.values():
            if self.regions is not None and state.name not in self.regions:
                continue  # a cache's upstream, used by the cache probe only
            self.metrics.regions.track_clock(state.name, state.client.clock.value)
            self.metrics.regions.track_rate_limits(state.name, state.client.rate_limits)
            if state.config.coverage is not None:
                self.metrics.regions.track_coverage(state.name, state.coverage)
            if state.rollback is not None:
                self.metrics.regions.track_rollback(state.name, state.rollback[1])
            if state.config.base_url.startswith("https://"):
                self.metrics.regions.track_certificate(
                    state.name, state.client.certificate_expiry
                )
        self._clock_warned: set[str] = set()
        for target in self.engine.targets:
            sli = target.slo.sli
            if isinstance(sli, TrafficSuccessSLI):
                self.metrics.ingest.configure_traffic_failures(
                    target.region, target.sources, sli.operations, map(str, sli.errors)
                )
        self.ingest = IngestService(
            ingest, self.metrics.ingest,
            # What ingest sees also tells rollback readiness which digests to keep checking.
            [self.engine.observe, *(state.rollback[0].record for state in self.states.values()
                                    if state.rollback is not None)],
            self.engine.cursor if self.engine.persistent else None,
            protected=settings.alerting.protected_repositories,
            journals=self.engine.journal if self.engine.persistent else None,
            protection=self.protection,
        )
        self.app = build_app(
            self.metrics.render, lambda: self.scheduler.ready, self.engine.evaluate,
            self.status_page,
        )

    def status_page(self) -> str:
        """The HTML status page: every region's probes and SLOs."""
        regions = [r.name for r in self.settings.regions
                   if self.regions is None or r.name in self.regions]
        now = time.time()
        return render_status_page(
            regions,
            self.board.snapshot(),
            self.engine.evaluate(now),
            now,
            self.scheduler.ready,
            self.charts.charts(regions, now),
        )

    def _first_sight(self, tracker: LagTracker, lag: float) -> None:
        self.metrics.regions.first_sight(tracker.region, tracker.source_region, lag)

    def _check_clock(self, observation: Observation) -> None:
        state = self.states[observation.region]
        clock = state.client.clock
        if clock.certainly_beyond(CLOCK_TOLERANCE):
            if state.name not in self._clock_warned:
                self._clock_warned.add(state.name)
                log.warning(
                    "registry clock differs from the exporter's by more than "
                    f"{CLOCK_TOLERANCE:g}s: replication lag figures are off by as much",
                    region=state.name,
                    offset_seconds=round(clock.estimate, 3),
                    uncertainty_seconds=round(clock.uncertainty, 3),
                )
        else:
            self._clock_warned.discard(state.name)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Serve until ``stop`` is set, SIGINT/SIGTERM, or a part dies.

        The parts (the HTTP server, the probe scheduler, the SLI engine, ingest) run as
        tasks of one :class:`asyncio.TaskGroup`. A part dies when its task raises (ingest
        counts and survives a failed poll, the engine a failed write: see
        :mod:`registry_slo.sli.engine` for when the SLO store is given up) or, for the
        HTTP server, when it stops unasked. A dead part is logged with its exception and
        counted in ``registry_slo_internal_errors_total{component}``, and the exporter
        stops as on SIGTERM. Stopping is ordered: scheduling ends, ingest hands over its
        last lines and stages its checkpoints, the engine commits them with the last
        buckets and closes the store, the HTTP server stops; then, whatever happened
        (an :class:`contextlib.AsyncExitStack`), the store is closed, the region clients
        too, and OpenTelemetry is flushed.

        Args:
            stop: stops the exporter when set (default: only signals and dead parts).

        Raises:
            ExporterFailed: a part died (after everything was stopped and closed).
            SystemExit: the SLO store cannot be opened (e.g. another exporter holds it).
        """
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        failures: list[tuple[Part, Exception]] = []
        async with contextlib.AsyncExitStack() as teardown:
            # Undone in reverse order: OpenTelemetry is flushed last, with every span.
            teardown.push_async_callback(self.otel.shutdown)
            teardown.push_async_callback(self._close_regions)
            try:
                await asyncio.to_thread(self.engine.open)  # restores the SLO windows
            except StoreError as exc:
                raise SystemExit(f"registry-slo: {exc}") from None
            # Closed by the engine's task when it ran; here when it never did.
            teardown.push_async_callback(asyncio.to_thread, self.engine.close)
            async with asyncio.TaskGroup() as parts:
                await self._run_parts(parts, stop, failures)
        if failures:
            raise ExporterFailed(failures)

    async def _run_parts(
        self, parts: asyncio.TaskGroup, stop: asyncio.Event,
        failures: list[tuple[Part, Exception]],
    ) -> None:
        """Start the parts in ``parts``, wait for ``stop``, stop them in order."""

        def start(part: Part, work: Coroutine[object, object, None]) -> asyncio.Task[None]:
            return parts.create_task(self._part(part, work, stop, failures), name=part)

        host, port = listen_address(self.settings.listen)
        server = bounded_server(self.app, host, port, self.settings.max_connections,
                                self.protection)
        http = start("http_server", self._serve_http(server))
        while not server.started:
            if http.done():
                return  # could not listen: the failure is recorded
            await asyncio.sleep(0.01)
        scheduling, ingesting, counting = asyncio.Event(), asyncio.Event(), asyncio.Event()
        start("probe_scheduler", self.scheduler.run(scheduling))
        engine = start("sli_engine", self.engine.run(counting))
        ingest = start("ingest", self.ingest.run(ingesting))
        log.info(
            "registry-slo exporter started",
            version=__version__,
            listen=self.settings.listen,
            regions=list(self.states),
            probes=len(self.scheduler.probes),
        )
        await stop.wait()
        log.info("shutting down", failed=[part for part, _ in failures] or None)
        scheduling.set()
        ingesting.set()
        await ingest  # hands the last lines to the engine and stages the checkpoints
        counting.set()
        await engine  # commits the last SLO buckets with the checkpoints, closes the store
        server.should_exit = True
        await http

    async def _part(
        self, part: Part, work: Awaitable[None], stop: asyncio.Event,
        failures: list[tuple[Part, Exception]],
    ) -> None:
        """Run one part; when it dies, log and count it, and stop the exporter."""
        try:
            await work
        except Exception as exc:
            failures.append((part, exc))
            self.metrics.health.internal_error(part)
            log.error(f"{describe_part(part)} failed: the exporter stops", component=part,
                      error=describe_error(exc), exc_info=exc)
            stop.set()

    async def _serve_http(self, server: uvicorn.Server) -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn's answer to an address it cannot bind
            raise OSError(f"could not listen on {self.settings.listen}") from None
        if not server.should_exit:
            raise RuntimeError("the HTTP server stopped on its own")

    async def _close_regions(self) -> None:
        for state in self.states.values():
            try:
                await state.aclose()
            except Exception:
                log.exception("could not close a region's client", region=state.name)


async def probe_once(settings: Settings, regions: list[str] | None = None) -> list[Observation]:
    """Run every probe of every (or the named) region once.

    Regions run concurrently; a region's probes run one after another (heartbeat writers
    before readers) so that the pull probe's canary seeding does not race the push probe.
    """
    states = build_regions(settings, regions or None)
    wanted, _ = build_probes(settings, states, selected=regions or None)
    order = {"heartbeat": 0, "replication": 2}
    wanted.sort(key=lambda s: order.get(s.probe.kind, 1))

    async def region_runs(name: str) -> list[Observation]:
        return [await execute(s.probe, s.timeout) for s in wanted if s.probe.region == name]

    try:
        names = list(dict.fromkeys(s.probe.region for s in wanted))
        per_region = await asyncio.gather(*(region_runs(name) for name in names))
    finally:
        for state in states.values():
            await state.aclose()
    return [o for runs in per_region for o in runs]
