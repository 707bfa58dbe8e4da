"""Per-operation accounting: exclusive phase timings and bytes moved.

A :class:`Meter` is bound to the current task with :func:`metered`; the client adds the
bytes it moves and times token fetches as the ``auth`` phase. Phases nest and are
exclusive: time spent in an inner phase is not counted again in the outer one, so the
phases of a probe add up to its duration. When the meter carries an OpenTelemetry tracer,
each phase is also a span, and :func:`span` makes the client's HTTP requests child spans.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Span, SpanKind, Tracer

__all__ = ["Meter", "current_meter", "metered", "phase", "span"]


@dataclass
class Meter:
    """Phase timings (seconds) and bytes sent and received by one operation."""

    phases: dict[str, float] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0
    tracer: Tracer | None = None
    _stack: list[list[float]] = field(default_factory=list, repr=False)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the enclosed block as phase ``name`` (exclusive of nested phases)."""
        frame = [time.perf_counter(), 0.0]  # start, time spent in nested phases
        self._stack.append(frame)
        try:
            if self.tracer is None:
                yield
            else:
                with self.tracer.start_as_current_span(
                    name, attributes={"registry_slo.phase": name}
                ):
                    yield
        finally:
            self._stack.pop()
            elapsed = time.perf_counter() - frame[0]
            self.phases[name] = self.phases.get(name, 0.0) + elapsed - frame[1]
            if self._stack:
                self._stack[-1][1] += elapsed


_current: ContextVar[Meter | None] = ContextVar("registry_slo_meter", default=None)


def current_meter() -> Meter | None:
    """The meter bound to this task, if any."""
    return _current.get()


@contextmanager
def metered(meter: Meter) -> Iterator[Meter]:
    """Bind ``meter`` to the current task for the enclosed block."""
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time a phase on the current meter; a no-op when none is bound."""
    meter = _current.get()
    if meter is None:
        yield
        return
    with meter.phase(name):
        yield


@contextmanager
def span(
    name: str, attributes: dict[str, Any] | None = None, kind: SpanKind = SpanKind.CLIENT
) -> Iterator[Span | None]:
    """A child span of the current one when the bound meter traces, else ``None``."""
    meter = _current.get()
    if meter is None or meter.tracer is None:
        yield None
        return
    with meter.tracer.start_as_current_span(
        name, kind=kind, attributes=attributes, record_exception=False,
        set_status_on_exception=False,
    ) as current:
        yield current
