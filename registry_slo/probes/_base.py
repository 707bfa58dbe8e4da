"""What every probe is, and how one run becomes an :class:`Observation`."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import structlog

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


async def execute(probe: Probe, timeout: float) -> Observation:
    """Run ``probe`` once within ``timeout`` seconds (prepare, run and cleanup together).

    Never raises for a registry failure: the failure is the observation's ``reason``.
    """
    meter = Meter()
    started = time.time()
    t0 = time.perf_counter()
    measured: float | None = None
    outcome = Outcome()
    error: RegistryError | None = None
    reason: Reason | None = None
    try:
        async with asyncio.timeout(timeout):
            await probe.prepare()
            t0 = time.perf_counter()  # preparation is not part of the measurement
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
        # Cleanup has its own budget: it must not turn a measured success into a failure.
        async with asyncio.timeout(timeout):
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
