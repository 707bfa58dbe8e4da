"""Event counts in fixed-width time buckets, kept in a ring: the SLI engine's memory.

A :class:`BucketRing` holds, for one SLO in one region, the bad and total events of the
last ``size`` buckets of ``width`` seconds each (bucket ``i`` covers
``[i * width, (i + 1) * width)`` in Unix time). Memory is two flat arrays of doubles, so
a 30-day period in 1-hour buckets and 3 days in 1-minute buckets cost about 80 KB per SLO
and region.

:meth:`BucketRing.window` adds a window up. The bucket that holds the window's start
is only partly inside it and counts in proportion (events are taken to be spread evenly
over a bucket), so a window slides smoothly instead of jumping a bucket at a time.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator

__all__ = ["BucketRing", "WindowCounts"]

WindowCounts = tuple[float, float]
"""``(bad, total)`` events of a window."""


def _zeros(size: int) -> array[float]:
    return array("d", bytes(8 * size))


class BucketRing:
    """The newest ``size`` buckets of ``width`` seconds: bad and total events each.

    Args:
        width: seconds per bucket.
        size: how many buckets are kept; older ones are forgotten as time moves on.
    """

    __slots__ = ("_bad", "_total", "head", "size", "width")

    def __init__(self, width: int, size: int) -> None:
        if width <= 0 or size <= 0:
            raise ValueError("width and size must be positive")
        self.width = width
        self.size = size
        self._bad = _zeros(size)
        self._total = _zeros(size)
        self.head: int | None = None
        """The newest bucket index held (``None``: nothing yet)."""

    def index(self, when: float) -> int:
        """The index of the bucket holding Unix time ``when``."""
        return math.floor(when / self.width)

    def _advance(self, index: int) -> None:
        head = self.head
        if head is not None and index > head:
            # Forget the buckets the ring now reuses (at most all of them).
            for stale in range(head + 1, min(index, head + self.size) + 1):
                slot = stale % self.size
                self._bad[slot] = 0.0
                self._total[slot] = 0.0
        if head is None or index > head:
            self.head = index

    def holds(self, index: int) -> bool:
        """Whether bucket ``index`` is within the ring's reach (or newer)."""
        return self.head is None or index > self.head - self.size

    def add(self, when: float, bad: float, total: float) -> int | None:
        """Count events at Unix time ``when``.

        Returns:
            The bucket index counted into, or ``None`` when the bucket is older than the
            ring keeps (the events are dropped).
        """
        index = self.index(when)
        if not self.holds(index):
            return None
        self._advance(index)
        slot = index % self.size
        self._bad[slot] += bad
        self._total[slot] += total
        return index

    def set(self, index: int, bad: float, total: float) -> bool:
        """Set bucket ``index`` to the given counts (restoring from the store).

        Returns:
            False when the bucket is too old to be kept.
        """
        if not self.holds(index):
            return False
        self._advance(index)
        slot = index % self.size
        self._bad[slot] = bad
        self._total[slot] = total
        return True

    def get(self, index: int) -> WindowCounts:
        """The counts of bucket ``index`` (zeros when not held)."""
        head = self.head
        if head is None or index > head or index <= head - self.size:
            return 0.0, 0.0
        slot = index % self.size
        return self._bad[slot], self._total[slot]

    def buckets(self) -> Iterator[tuple[int, float, float]]:
        """Every held bucket with events: ``(index, bad, total)``, oldest first."""
        head = self.head
        if head is None:
            return
        for index in range(head - self.size + 1, head + 1):
            slot = index % self.size
            if self._total[slot] or self._bad[slot]:
                yield index, self._bad[slot], self._total[slot]

    def oldest(self) -> int | None:
        """The oldest bucket index the ring can still hold (``None`` when empty)."""
        return None if self.head is None else self.head - self.size + 1

    def _sum(self, first: int, last: int) -> WindowCounts:
        # Buckets first..last, all held (first > head - size, last <= head).
        size = self.size
        start, stop = first % size, last % size
        if start <= stop:
            return (math.fsum(self._bad[start:stop + 1]),
                    math.fsum(self._total[start:stop + 1]))
        return (math.fsum(self._bad[start:]) + math.fsum(self._bad[:stop + 1]),
                math.fsum(self._total[start:]) + math.fsum(self._total[:stop + 1]))

    def window(self, start: float, end: float) -> WindowCounts:
        """The events in the window ``(start, end]`` (Unix times).

        The bucket holding ``start`` counts by the fraction of it inside the window;
        buckets the ring no longer holds count nothing.
        """
        head = self.head
        if head is None or end <= start:
            return 0.0, 0.0
        first, last = self.index(start), min(self.index(end), head)
        lowest = head - self.size + 1
        partial = first >= lowest
        first = max(first, lowest)
        if first > last:
            return 0.0, 0.0
        bad, total = self._sum(first, last)
        if partial:
            # Take away the part of the first bucket that lies before the window.
            outside = (start - first * self.width) / self.width
            first_bad, first_total = self.get(first)
            bad -= outside * first_bad
            total -= outside * first_total
        return max(0.0, bad), max(0.0, total)
