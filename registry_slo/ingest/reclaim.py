"""Bytes a garbage collection run reclaimed (M8): the storage filesystem's bytes used
before the run's first deletion minus after its last one.

A ``distribution-gc`` source whose region also has an ``ingest.filesystems`` source reads
that filesystem (``statvfs``, microseconds) at each of its polls and keeps the readings
of the last :data:`HISTORY` seconds. When a successful run ends, its deletion lines'
logrus timestamps bracket what it removed: the figure is the last reading over before
the first deletion minus the first reading begun :data:`AFTER` seconds or more after the
last one, each within :data:`MAX_GAP` seconds of its mark. The deletion lines are logged
just before each removal, so such readings are clean of the run's own work whenever
the exporter was reading the filesystem while the run went on, however late the log
lines arrive.

Otherwise there is no clean "before" and the figure is NaN, never a guess: the exporter
was not running (or had just restarted) when the run began, the run's deletion lines
had no timestamp, or the readings are too far apart. A run that deleted nothing
reclaimed exactly 0; dry runs and failed runs change nothing. What else writes to the
filesystem meanwhile counts too (distribution wants the registry read-only or stopped
during a run anyway; a shared filesystem counts everything on it), and the clocks of
the collector and the exporter are taken to agree (one host, or NTP).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from registry_slo.ingest.formats import GcRunEnded

__all__ = ["AFTER", "HISTORY", "MAX_GAP", "ReclaimMeter"]

HISTORY = 900.0
"""Seconds of storage readings kept (how late a run's lines may be read)."""
AFTER = 1.0
"""Seconds after the last deletion line before a reading counts as after the run (the
removal follows its line by microseconds)."""
MAX_GAP = 5.0
"""Seconds a reading may be away from the mark it stands for (polls are a second apart
when idle)."""


class ReclaimMeter:
    """The bytes reclaimed by a source's runs (see the module docstring).

    Args:
        used: bytes in use on the storage filesystem (NaN when unreadable).
        report: receives each run's figure (NaN: not measurable).
        clock: wall clock (the collector's logrus timestamps are wall time).
    """

    def __init__(self, used: Callable[[], float], report: Callable[[float], None],
                 clock: Callable[[], float] = time.time) -> None:
        self._used = used
        self._report = report
        self._clock = clock
        # (read from, read until, bytes): a reading counts as before a time only when it
        # was over by then, and as after one only when it began after it.
        self._readings: deque[tuple[float, float, float]] = deque(maxlen=8192)
        self._pending: tuple[float, float] | None = None  # (bytes before, last deletion)

    def sample(self) -> None:
        """Read the filesystem now (each poll of the source, before it reads), and
        finish a measurement that waited for this reading."""
        start = self._clock()
        value = self._used()
        now = self._clock()
        if not math.isnan(value):
            self._readings.append((start, now, value))
        while self._readings and self._readings[0][0] < now - HISTORY:
            self._readings.popleft()
        if self._pending is not None:
            before, last = self._pending
            if start >= last + AFTER:
                self._pending = None
                self._finish(before, last)

    def ended(self, run: GcRunEnded) -> None:
        """A run of the source ended: measure what it reclaimed, now or at a later
        reading."""
        if run.result != "ok":
            return
        self._pending = None
        if run.deleted == 0:
            self._report(0.0)
            return
        if run.deletions is None:
            self._report(math.nan)
            return
        first, last = run.deletions
        before = next((value for start, end, value in reversed(self._readings)
                       if first - MAX_GAP <= start and end < first), None)
        if before is None:
            self._report(math.nan)
            return
        if any(start >= last + AFTER for start, _, _ in self._readings):
            self._finish(before, last)
        else:
            self._pending = (before, last)

    def _finish(self, before: float, last: float) -> None:
        after = next((value for start, _, value in self._readings
                      if last + AFTER <= start <= last + AFTER + MAX_GAP), None)
        self._report(math.nan if after is None else before - after)
