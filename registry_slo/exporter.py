"""The long-running exporter: probes on a schedule, results on ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import structlog
import uvicorn

from registry_slo import __version__
from registry_slo.config import Settings, listen_address
from registry_slo.observation import Observation
from registry_slo.probes import ProbeScheduler, RegionState, build_probes, execute
from registry_slo.telemetry.metrics import ExporterMetrics
from registry_slo.telemetry.server import build_app

log = structlog.get_logger("registry_slo")

__all__ = ["Exporter", "probe_once"]


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
        self.states = [RegionState(region) for region in settings.regions]
        self.scheduler = ProbeScheduler(build_probes(self.states), self.metrics)
        self.app = build_app(self.metrics, lambda: self.scheduler.ready)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Serve until ``stop`` is set, or SIGINT/SIGTERM."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
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
                await serving  # raises when the address cannot be bound
                raise SystemExit(f"could not listen on {self.settings.listen}")
            await asyncio.sleep(0.01)
        self.scheduler.start()
        log.info(
            "registry-slo exporter started",
            version=__version__,
            listen=self.settings.listen,
            regions=[s.name for s in self.states],
            probes=len(self.scheduler.probes),
        )
        waiting = asyncio.create_task(stop.wait(), name="stop")
        await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
        log.info("shutting down")
        self.scheduler.shutdown()
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        waiting.cancel()
        for state in self.states:
            await state.aclose()


async def probe_once(settings: Settings, regions: list[str] | None = None) -> list[Observation]:
    """Run every enabled probe of every (or the named) region once.

    Regions run concurrently; a region's probes run one after another so that the pull
    probe's canary seeding does not race the push probe.
    """
    states = [RegionState(r) for r in settings.regions if not regions or r.name in regions]
    scheduled = build_probes(states)

    async def region_runs(state: RegionState) -> list[Observation]:
        return [
            await execute(s.probe, s.timeout) for s in scheduled if s.probe.region == state.name
        ]

    try:
        per_region = await asyncio.gather(*(region_runs(s) for s in states))
    finally:
        for state in states:
            await state.aclose()
    return [o for runs in per_region for o in runs]
