"""The long-running exporter: probes on a schedule, results on ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from collections.abc import Iterator

import structlog
import uvicorn

from registry_slo import __version__
from registry_slo.config import Settings, TrafficSuccessSLI, listen_address
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
from registry_slo.telemetry.status import ProbeBoard, render_status_page

log = structlog.get_logger("registry_slo")

__all__ = ["Exporter", "probe_once"]

CLOCK_TOLERANCE = 1.0
"""Seconds of registry clock offset beyond which the exporter warns."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the exporter owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Exporter:
    """Wires the sources, the metrics and the HTTP server together.

    Args:
        settings: the validated configuration.
        metrics: the metric registry (a fresh one by default).
    """

    def __init__(self, settings: Settings, metrics: ExporterMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or ExporterMetrics()
        self.states = build_regions(settings)
        probes, trackers = build_probes(
            settings, self.states, self._first_sight,
            self.metrics.regions.cache_counters.update,
        )
        self.otel = OpenTelemetry(settings.otel, self.metrics.health)
        flush_interval = settings.slo_engine.flush_interval
        if settings.ingest.logs:
            # Log checkpoints are committed with the engine's counts: flush as often as
            # a checkpoint file would be written.
            flush_interval = min(flush_interval, settings.ingest.checkpoint_interval)
        self.engine = SLIEngine(
            settings.slo_targets(),
            settings.state_path,
            flush_interval=flush_interval,
            lag_sample_interval=settings.slo_engine.lag_sample_interval,
            on_store_error=functools.partial(self.metrics.health.internal_error, "slo_store"),
        )
        self.board = ProbeBoard()
        for scheduled in probes:
            self.board.configure(scheduled.probe.region, scheduled.probe.kind)
        self.scheduler = ProbeScheduler(
            probes, self.metrics.probes,
            sinks=[self._check_clock, self.otel.record, self.engine.observe, self.board.record],
            tracer=self.otel.tracer,
        )
        for tracker in trackers:
            self.metrics.regions.track_replication(
                tracker.region, tracker.source_region, tracker.lag
            )
            self.engine.track_lag(tracker.region, tracker.lag)
        self.metrics.slos.track(self.engine.evaluate)
        for state in self.states.values():
            self.metrics.regions.track_clock(state.name, state.client.clock.value)
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
            settings.ingest, self.metrics.ingest, [self.engine.observe],
            self.engine.cursor if self.engine.persistent else None,
        )
        self.app = build_app(
            self.metrics.render, lambda: self.scheduler.ready, self.engine.evaluate,
            self.status_page,
        )

    def status_page(self) -> str:
        """The HTML status page: every region's probes and SLOs."""
        return render_status_page(
            [r.name for r in self.settings.regions],
            self.board.snapshot(),
            self.engine.evaluate(),
            time.time(),
            self.scheduler.ready,
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
        """Serve until ``stop`` is set, or SIGINT/SIGTERM."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await asyncio.to_thread(self.engine.open)  # restores the SLO windows
        except StoreError as exc:
            raise SystemExit(f"registry-slo: {exc}") from None
        host, port = listen_address(self.settings.listen)
        server = _Server(
            uvicorn.Config(
                self.app, host=host, port=port, log_config=None, access_log=False,
                lifespan="off", timeout_graceful_shutdown=2,
            )
        )
        serving = asyncio.create_task(server.serve(), name="http")
        while not server.started:
            if serving.done():
                await asyncio.to_thread(self.engine.close)
                await serving  # raises when the address cannot be bound
                raise SystemExit(f"could not listen on {self.settings.listen}")
            await asyncio.sleep(0.01)
        self.scheduler.start()
        engine_stop = asyncio.Event()
        engine = asyncio.create_task(self.engine.run(engine_stop), name="sli-engine")
        ingest_stop = asyncio.Event()
        ingesting = asyncio.create_task(self.ingest.run(ingest_stop), name="ingest")
        log.info(
            "registry-slo exporter started",
            version=__version__,
            listen=self.settings.listen,
            regions=list(self.states),
            probes=len(self.scheduler.probes),
        )
        waiting = asyncio.create_task(stop.wait(), name="stop")
        await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
        log.info("shutting down")
        self.scheduler.shutdown()
        ingest_stop.set()
        await ingesting  # hands the last lines to the engine and stages the checkpoints
        engine_stop.set()
        await engine  # commits the last SLO buckets with the checkpoints, closes the store
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        waiting.cancel()
        for state in self.states.values():
            await state.aclose()
        await self.otel.shutdown()


async def probe_once(settings: Settings, regions: list[str] | None = None) -> list[Observation]:
    """Run every probe of every (or the named) region once.

    Regions run concurrently; a region's probes run one after another (heartbeat writers
    before readers) so that the pull probe's canary seeding does not race the push probe.
    """
    states = build_regions(settings)
    scheduled, _ = build_probes(settings, states)
    wanted = [s for s in scheduled if not regions or s.probe.region in regions]
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
