"""How far a registry's clock is from ours, from the HTTP ``Date`` header.

``Date`` has one-second resolution: an answer received between local times ``sent`` and
``received`` carrying ``Date: D`` means the registry's clock read somewhere in
``[D, D + 1)`` while ours read somewhere in ``[sent, received]``. Each answer therefore
bounds the offset (registry - local) to ``(D - received, D + 1 - sent)``; intersecting the
bounds of many answers narrows the estimate well below a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["ClockOffset"]


@dataclass
class ClockOffset:
    """A running estimate of one registry's clock offset (seconds, registry - local)."""

    low: float = float("-inf")
    high: float = float("inf")
    samples: int = 0

    def observe(self, date_header: str | None, sent: float, received: float) -> None:
        """Narrow the bounds with one answer (``sent``/``received`` are Unix times)."""
        if not date_header:
            return
        try:
            server = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError, IndexError):
            return
        low, high = server - received, server + 1.0 - sent
        if low > self.high or high < self.low:
            # Inconsistent with what we knew: a clock was stepped. Start again.
            self.low, self.high, self.samples = low, high, 0
        else:
            self.low, self.high = max(self.low, low), min(self.high, high)
        self.samples += 1

    @property
    def known(self) -> bool:
        """Whether at least one answer carried a usable ``Date``."""
        return self.samples > 0

    @property
    def estimate(self) -> float:
        """The midpoint of the bounds."""
        return (self.low + self.high) / 2

    def value(self) -> float:
        """:attr:`estimate`, or NaN while nothing is known (for a gauge)."""
        return self.estimate if self.known else float("nan")

    @property
    def uncertainty(self) -> float:
        """Half the width of the bounds."""
        return (self.high - self.low) / 2

    def certainly_beyond(self, limit: float) -> bool:
        """True when the offset is larger than ``limit`` seconds whatever its exact value."""
        return self.known and (self.low > limit or self.high < -limit)
