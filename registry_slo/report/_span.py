"""The period a report covers: a calendar month, the last N days, or any range; and the
period before it, for comparison."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from registry_slo._units import format_duration, parse_duration

__all__ = ["Span", "last", "month", "parse_time", "span_between"]


@dataclass(frozen=True, slots=True)
class Span:
    """``[start, end)`` in Unix seconds, with the name a reader sees."""

    start: float
    end: float
    label: str

    @property
    def seconds(self) -> float:
        """Its length."""
        return self.end - self.start

    def previous(self) -> Span:
        """The span of the same length right before this one (for a calendar month: the
        month before)."""
        if re.fullmatch(r"\d{4}-\d{2}", self.label):
            year, number = map(int, self.label.split("-"))
            year, number = (year - 1, 12) if number == 1 else (year, number - 1)
            return month(f"{year:04d}-{number:02d}")
        return Span(self.start - self.seconds, self.start,
                    f"the {format_duration(self.seconds)} before")


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def month(value: str) -> Span:
    """A calendar month in UTC, ``YYYY-MM``.

    Raises:
        ValueError: not a month.
    """
    match = re.fullmatch(r"(\d{4})-(\d{2})", value)
    if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1970:
        raise ValueError(f"{value!r} is not a month (YYYY-MM)")
    year, number = int(match[1]), int(match[2])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return Span(start.timestamp(), end.timestamp(), value)


def last(value: str, now: float) -> Span:
    """The last ``value`` (a duration such as ``30d``) up to ``now``.

    Raises:
        ValueError: not a positive duration.
    """
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"{value!r} must be a positive duration")
    return Span(now - seconds, now, f"last {format_duration(seconds)} to {_iso(now)}")


def parse_time(value: str) -> float:
    """An RFC 3339 time or date (UTC when no offset is given), as Unix seconds.

    Raises:
        ValueError: not a time.
    """
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not a time (e.g. 2026-11-01 or "
                         "2026-11-01T00:00:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def span_between(start: str, end: str) -> Span:
    """``--from``/``--to``.

    Raises:
        ValueError: a bound is not a time, or the end is not after the start.
    """
    begin, finish = parse_time(start), parse_time(end)
    if finish <= begin:
        raise ValueError(f"--to {end} is not after --from {start}")
    return Span(begin, finish, f"{_iso(begin)} to {_iso(finish)}")
