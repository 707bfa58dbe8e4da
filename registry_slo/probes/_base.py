"""What every probe is, and how one run becomes an :class:`Observation`."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import ClassVar

import structlog
from opentelemetry.trace import StatusCode, Tracer

from registry_slo.observation import Observation
from registry_slo.oci import Meter, Reason, RegistryError, metered

log = structlog.get_logger("registry_slo.probes")


@dataclass(frozen=True)
class Outcome:
    """What a successful run reports besides its timings."""

    repository: str | None = None
    digest: str | None = None


class Probe(ABC):
    """One kind of synthetic check against one region.

    A run has three steps: :meth:`prepare` (untimed: build content, seed a canary),
    :meth:`run` (the measured part) and :meth:`cleanup` (untimed: delete what was pushed).
    """

    kind: ClassVar[str]

    def __init__(self, region: str) -> None:
        self.region = region

    async def prepare(self) -> None:  # noqa: B027 - optional step
        """Untimed work before the measured part."""

    @abstractmethod
    async def run(self) -> Outcome:
        """The measured part; raises :class:`RegistryError` on failure."""

    async def cleanup(self) -> None:  # noqa: B027 - optional step
        """Untimed work after the measured part (runs after failures too)."""


async def execute(probe: Probe, timeout: float, tracer: Tracer | None = None) -> Observation:
    """Run ``probe`` once within ``timeout`` seconds (prepare, run and cleanup together).

    Never raises for a registry failure: the failure is the observation's ``reason``.
    With a ``tracer``, the run is a trace: a root span with the region, probe, repository,
    digest and reason, a child per step (prepare, cleanup) and phase, and a grandchild per
    HTTP request.
    """
    if tracer is None:
        return await _execute(probe, timeout, None)
    attributes = {"registry_slo.region": probe.region, "registry_slo.probe": probe.kind}
    with tracer.start_as_current_span(
        f"probe {probe.kind}", attributes=attributes, record_exception=False,
        set_status_on_exception=False,
    ) as root:
        observation = await _execute(probe, timeout, tracer)
        if observation.repository:
            root.set_attribute("oci.repository", observation.repository)
        if observation.digest:
            root.set_attribute("oci.digest", observation.digest)
        if observation.status is not None:
            root.set_attribute("http.response.status_code", observation.status)
        if observation.reason is not None:
            root.set_attribute("registry_slo.reason", str(observation.reason))
            root.set_attribute("error.type", str(observation.reason))
            root.set_status(StatusCode.ERROR, observation.detail)
        context = root.get_span_context()
        if context.trace_flags.sampled:
            return replace(observation, trace_id=format(context.trace_id, "032x"))
        return observation


async def _execute(probe: Probe, timeout: float, tracer: Tracer | None) -> Observation:
    meter = Meter(tracer=tracer)
    started = time.time()
    started_at = time.perf_counter()
    t0 = time.perf_counter()
    measured: float | None = None
    outcome = Outcome()
    error: RegistryError | None = None
    reason: Reason | None = None
    try:
        async with asyncio.timeout(timeout):
            # Preparation (content, canary seeding) is traced but not measured.
            with metered(Meter(tracer=tracer)) as side, side.phase("prepare"):
                await probe.prepare()
            t0 = time.perf_counter()
            with metered(meter):
                outcome = await probe.run()
            measured = time.perf_counter() - t0
    except TimeoutError:
        reason = Reason.TIMEOUT
    except RegistryError as exc:
        error, reason = exc, exc.reason
    except Exception:
        # A bug, not a registry failure: keep probing, but say so loudly.
        log.exception("probe crashed", region=probe.region, probe=probe.kind)
        reason = Reason.PROTOCOL
    if measured is None:
        measured = time.perf_counter() - t0
    try:
        # Cleanup must not turn a measured success into a failure, and must not hold the
        # probe's slot much past its timeout: it gets what is left of the timeout, and at
        # least a quarter of it (a run lasts at most 1.25 x timeout).
        left = timeout - (time.perf_counter() - started_at)
        async with asyncio.timeout(max(left, timeout / 4)):
            with metered(Meter(tracer=tracer)) as side, side.phase("cleanup"):
                await probe.cleanup()
    except TimeoutError:
        log.warning("probe cleanup timed out", region=probe.region, probe=probe.kind)
    except Exception:
        log.exception("probe cleanup crashed", region=probe.region, probe=probe.kind)
    detail = None
    if reason is Reason.TIMEOUT and error is None:
        detail = f"no result within {timeout:g}s"
    elif error is not None:
        detail = error.message
    return Observation(
        region=probe.region,
        operation=probe.kind,
        source="probe",
        success=reason is None,
        reason=reason,
        duration_seconds=measured,
        time=started,
        phases=dict(meter.phases),
        bytes_sent=meter.bytes_sent,
        bytes_received=meter.bytes_received,
        repository=outcome.repository,
        digest=outcome.digest,
        status=error.status if error else None,
        oci_code=error.oci_code if error else None,
        detail=detail,
    )
