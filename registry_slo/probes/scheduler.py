"""Runs every (region, probe) on its own interval with jitter (apscheduler).

At most one run per (region, probe) is in flight: a run still going when the next is due
makes the scheduler skip that one (counted). Runs are asyncio tasks in one event loop, so
a slow or black-holed region only ever holds up its own probes.

The scheduler reports what it does to a :class:`ProbeRecorder` (the exporter hands it
its probe metrics) and hands every result to its sinks; it knows nothing of the outputs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from opentelemetry.trace import Tracer

from registry_slo.observation import Observation
from registry_slo.probes._base import Probe, execute
from registry_slo.vocabulary import Component

log = structlog.get_logger("registry_slo.scheduler")

__all__ = ["REPEAT_EVERY", "ProbeRecorder", "ProbeScheduler", "ScheduledProbe", "Sink"]

Sink = Callable[[Observation], None]

REPEAT_EVERY = 20
"""A failure that keeps repeating is logged again (as a warning) every this many runs."""


class ProbeRecorder(Protocol):
    """What the scheduler reports: runs, their results, and its own health."""

    def configure(self, region: str, probe: str) -> None:
        """A probe is scheduled (its series exist from now on, at zero)."""
        ...

    def run_started(self) -> None:
        """A run started."""
        ...

    def run_finished(self, observation: Observation | None) -> None:
        """A started run ended with ``observation`` (``None``: cancelled before it had
        a result)."""
        ...

    def skipped(self, region: str, probe: str) -> None:
        """A scheduled run was skipped (the previous one still going, or missed)."""
        ...

    def run_delayed(self, seconds: float) -> None:
        """A run started ``seconds`` after its scheduled time."""
        ...

    def internal_error(self, component: Component) -> None:
        """An unexpected exception (an observation sink raised)."""
        ...


class ScheduledProbe:
    """A probe with its timing: interval, jitter and hard timeout (seconds)."""

    def __init__(self, probe: Probe, interval: float, jitter: float, timeout: float) -> None:
        self.probe = probe
        self.interval = interval
        self.jitter = min(jitter, interval / 2)
        self.timeout = timeout
        self.runs = 0
        self.failing_since: int | None = None  # run number of the first failure in a row
        self.last_reason: str | None = None

    @property
    def job_id(self) -> str:
        """``region/probe``."""
        return f"{self.probe.region}/{self.probe.kind}"


class ProbeScheduler:
    """Schedules probe runs and hands each result to the recorder and to ``sinks``.

    Args:
        probes: what to run.
        recorder: where results and scheduling health are recorded.
        sinks: further consumers of every observation.
        first_run_within: the first runs of the probes are spread evenly over this many
            seconds, which sets their phase for good (runs keep their spacing). Default:
            5 s, or 50 ms per probe when that is longer, but never more than a probe's
            interval: a few probes give results soon after start, hundreds do not all
            start in the same second of every interval.
        tracer: when set, every run is a trace, and duration histograms carry its trace
            id as exemplar.
    """

    def __init__(
        self,
        probes: Iterable[ScheduledProbe],
        recorder: ProbeRecorder,
        sinks: Iterable[Sink] = (),
        first_run_within: float | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.probes = {p.job_id: p for p in probes}
        self.tracer = tracer
        self.recorder = recorder
        self.sinks = list(sinks)
        self.first_run_within = first_run_within
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)

    def start(self) -> None:
        """Start scheduling (call from within the running event loop)."""
        now = datetime.now(UTC)
        count = len(self.probes)
        window = self.first_run_within
        if window is None:
            window = max(5.0, 0.05 * count)
        for index, (job_id, scheduled) in enumerate(self.probes.items()):
            self.recorder.configure(scheduled.probe.region, scheduled.probe.kind)
            # apscheduler adds 0..jitter to each run, cumulatively; shortening the interval
            # by half the jitter keeps the mean spacing at the configured interval.
            trigger = IntervalTrigger(
                seconds=scheduled.interval - scheduled.jitter / 2,
                jitter=scheduled.jitter or None,
                timezone=UTC,
            )
            offset = min(window, scheduled.interval) * index / max(count, 1)
            first = now + timedelta(seconds=offset)
            self._scheduler.add_job(
                self.run_once,
                trigger,
                args=[scheduled],
                id=job_id,
                name=job_id,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(scheduled.interval / 2)),
                next_run_time=first,
            )
        self._scheduler.start()
        log.info("scheduler started", probes=len(self.probes))

    def shutdown(self) -> None:
        """Stop scheduling; runs in progress are cancelled with the event loop."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def run(self, stop: asyncio.Event) -> None:
        """Schedule probe runs until ``stop`` is set (:meth:`start`, then
        :meth:`shutdown`).

        Args:
            stop: ends scheduling when set.
        """
        self.start()
        try:
            await stop.wait()
        finally:
            self.shutdown()

    @property
    def ready(self) -> bool:
        """True once every scheduled probe has finished at least one run."""
        return all(p.runs > 0 for p in self.probes.values())

    async def run_once(self, scheduled: ScheduledProbe) -> Observation:
        """Run one probe now, record and hand on the result.

        Args:
            scheduled: the probe.

        Returns:
            Its result.
        """
        self.recorder.run_started()
        observation: Observation | None = None
        try:
            observation = await execute(scheduled.probe, scheduled.timeout, self.tracer)
        finally:
            self.recorder.run_finished(observation)
        scheduled.runs += 1
        for sink in self.sinks:
            try:
                sink(observation)
            except Exception:
                self.recorder.internal_error("sink")
                log.exception("observation sink failed", sink=repr(sink))
        self._log(scheduled, observation)
        return observation

    @staticmethod
    def _log(scheduled: ScheduledProbe, observation: Observation) -> None:
        """Log changes at warning/info; repeats of the same failure only every
        :data:`REPEAT_EVERY` runs (the metrics count every one)."""
        fields = _fields(observation)
        if observation.success:
            if scheduled.failing_since is not None:
                log.info("probe recovered", failed_runs=scheduled.runs - scheduled.failing_since,
                         **fields)
                scheduled.failing_since, scheduled.last_reason = None, None
            else:
                log.debug("probe ok", **fields)
            return
        reason = str(observation.reason)
        if scheduled.failing_since is None or reason != scheduled.last_reason:
            scheduled.failing_since = scheduled.failing_since or scheduled.runs
            scheduled.last_reason = reason
            log.warning("probe failed", **fields)
        elif (scheduled.runs - scheduled.failing_since) % REPEAT_EVERY == 0:
            log.warning("probe still failing",
                        failed_runs=scheduled.runs - scheduled.failing_since + 1, **fields)
        else:
            log.debug("probe failed again", **fields)

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        now = time.time()
        for scheduled_at in event.scheduled_run_times:
            self.recorder.run_delayed(max(0.0, now - scheduled_at.timestamp()))

    def _on_skipped(self, event: JobEvent) -> None:
        scheduled = self.probes.get(event.job_id)
        if scheduled is None:
            return
        self.recorder.skipped(scheduled.probe.region, scheduled.probe.kind)
        log.warning(
            "probe run skipped: the previous run is still in progress or the run was missed",
            region=scheduled.probe.region, probe=scheduled.probe.kind,
        )


def _fields(observation: Observation) -> dict[str, Any]:
    data = observation.to_json()
    data.pop("time", None)
    return {k: v for k, v in data.items() if v is not None}
