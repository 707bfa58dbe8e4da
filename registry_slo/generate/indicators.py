"""What each SLI kind reads: the exporter's series and matchers, decided in one place.

:func:`indicator` turns an SLO target into one of two shapes, and every output that
writes PromQL for an SLI renders that shape instead of looking at the SLI kind again
(the recording rules with ``rate()`` over a window, the OpenSLO export as plain sums):

- :class:`EventRatio`: counters of events. Success SLIs (probe, auth, traffic) count the
  bad events: ``registry_slo_probe_failures_total`` (or the ingest series' failures of
  the SLI's ``errors``) over the requests. Latency SLIs count the good events: the
  duration histogram's bucket at the threshold over its count.
- :class:`LagThreshold`: replication lag, a gauge compared with the threshold each time
  it is sampled.

A new SLI kind is one more case in :func:`indicator` (mypy names it there); the outputs
follow as long as it has one of these shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import assert_never

from prometheus_client.utils import floatToGoString

from registry_slo._units import human_duration
from registry_slo.config import (
    SLI,
    AuthSuccessSLI,
    ProbeLatencySLI,
    ProbeSuccessSLI,
    ReplicationLagSLI,
    SLOTarget,
    TrafficLatencySLI,
    TrafficSuccessSLI,
)
from registry_slo.generate._model import GenerationError, selector
from registry_slo.vocabulary import (
    DURATION_BUCKETS,
    PROBE_DURATION,
    PROBE_FAILURES,
    PROBE_REQUESTS,
    REGISTRY_DURATION,
    REGISTRY_FAILURES,
    REGISTRY_REQUESTS,
    REPLICATION_LAG,
    Series,
)

__all__ = [
    "EventRatio",
    "Indicator",
    "LagThreshold",
    "indicator",
    "latency_bucket",
    "sli_threshold",
]


@dataclass(frozen=True, slots=True)
class EventRatio:
    """An SLI of counted events: bad events over all events, or, for latency SLIs, good
    events (requests under the threshold) over all events.

    Attributes:
        counted: the selector (metric and matchers) of the bad events' counter, or of
            the histogram bucket holding the good events when :attr:`le` is set.
        total: the selector of all events.
        le: the ``le`` label of the bucket at a latency SLI's threshold; ``None`` for
            success SLIs.
    """

    counted: str
    total: str
    le: str | None = None

    @property
    def good(self) -> bool:
        """Whether :attr:`counted` counts the good events (latency SLIs)."""
        return self.le is not None


@dataclass(frozen=True, slots=True)
class LagThreshold:
    """Replication lag: bad while the lag of any source is above the threshold or
    unknown (``NaN`` before the first heartbeat).

    Attributes:
        lag: the selector of the region's ``registry_slo_replication_lag_seconds``.
        threshold: seconds.
    """

    lag: str
    threshold: float


Indicator = EventRatio | LagThreshold
"""The shapes an SLI's PromQL takes."""


def _bucket(histogram: Series, threshold: float, slo: str) -> str:
    """The ``le`` label of ``histogram``'s bucket at ``threshold``."""
    for bound in DURATION_BUCKETS:
        if math.isclose(bound, threshold, rel_tol=1e-9):
            # The exporter's own spelling of the ``le`` label (``2.0``, ``0.25``).
            return str(floatToGoString(bound))  # type: ignore[no-untyped-call]
    choices = ", ".join(human_duration(b) for b in DURATION_BUCKETS)
    raise GenerationError(
        f"SLO {slo!r}: latency threshold {human_duration(threshold)} is not "
        f"a bucket boundary of {histogram}, so Prometheus cannot count what is under "
        f"it; use one of {choices}"
    )


def _latency(
    histogram: Series, labels: dict[str, str | tuple[str, ...]], threshold: float, slo: str
) -> EventRatio:
    le = _bucket(histogram, threshold, slo)
    return EventRatio(
        f"{histogram.bucket}{selector(**labels, le=le)}",
        f"{histogram.count}{selector(**labels)}",
        le,
    )


def indicator(target: SLOTarget) -> Indicator:
    """The series and matchers ``target``'s SLI reads.

    - probe and auth success: the probe's failures over its runs, in the region;
    - probe latency: the probe's duration bucket at the threshold over its runs;
    - traffic success and latency: the region's requests, as the target's ingest
      sources read them, of the SLI's operations (failures of the SLI's ``errors``, or
      the request duration bucket at the threshold);
    - replication lag: the region's lag of every source.

    Raises:
        GenerationError: naming the SLO when a latency threshold is not a histogram
            bucket boundary.
    """
    sli = target.slo.sli
    region = target.region
    slo = target.slo.name
    match sli:
        case ProbeSuccessSLI() | AuthSuccessSLI():
            sel = selector(region=region, probe=sli.probe_name)
            return EventRatio(f"{PROBE_FAILURES.total}{sel}", f"{PROBE_REQUESTS.total}{sel}")
        case ProbeLatencySLI():
            return _latency(PROBE_DURATION, {"region": region, "probe": sli.probe},
                            sli.threshold, slo)
        case TrafficSuccessSLI():
            labels = _traffic_labels(target, sli.operations)
            bad = selector(**labels, reason=tuple(str(r) for r in sli.errors))
            return EventRatio(f"{REGISTRY_FAILURES.total}{bad}",
                              f"{REGISTRY_REQUESTS.total}{selector(**labels)}")
        case TrafficLatencySLI():
            return _latency(REGISTRY_DURATION, _traffic_labels(target, sli.operations),
                            sli.threshold, slo)
        case ReplicationLagSLI():
            return LagThreshold(f"{REPLICATION_LAG.name}{selector(region=region)}",
                                sli.threshold)
        case _:
            assert_never(sli)


def _traffic_labels(
    target: SLOTarget, operations: tuple[str, ...]
) -> dict[str, str | tuple[str, ...]]:
    """The labels that select a traffic SLI's requests: region, sources, operations."""
    return {"region": target.region, "source": target.sources, "operation": operations}


def latency_bucket(target: SLOTarget) -> str:
    """The ``le`` label value of the histogram bucket at a latency SLO's threshold.

    Raises:
        GenerationError: naming the SLO when the threshold is not a bucket boundary.
        TypeError: when the SLI is not a latency SLI.
    """
    match indicator(target):
        case EventRatio(le=str() as le):
            return le
        case _:
            raise TypeError(f"SLO {target.slo.name!r}: a {target.slo.sli.kind} SLI has no "
                            "latency bucket")


def sli_threshold(sli: SLI) -> float | None:
    """The SLI's threshold in seconds (latency and replication lag), else ``None``."""
    match sli:
        case ProbeLatencySLI() | TrafficLatencySLI() | ReplicationLagSLI():
            return sli.threshold
        case ProbeSuccessSLI() | AuthSuccessSLI() | TrafficSuccessSLI():
            return None
        case _:
            assert_never(sli)
