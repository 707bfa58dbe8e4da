"""Human units for durations ("30s", "1m30s", "250ms"), sizes ("1MiB", "512KB") and
percentages ("99.9")."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

LONGEST_DURATION = 3650 * 86400.0
"""The longest duration a configuration may give (ten years): longer is a typo, and
beyond it arithmetic on seconds loses its meaning."""
LARGEST_SIZE = 2**53
"""The largest size a configuration may give: a float still holds every byte count."""

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*", re.IGNORECASE)
_SIZE_FACTOR = {
    "B": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
}


def _show(value: object) -> str:
    """``value`` for an error message, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def parse_duration(value: object) -> float:
    """Parse a duration into seconds.

    Args:
        value: a number of seconds, or a string of unit-suffixed parts
            (``ms``, ``s``, ``m``, ``h``, ``d``, ``w``) such as ``"1m30s"``.

    Returns:
        The duration in seconds.

    Raises:
        ValueError: when the value is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h30m")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"{_show(value)} is not a finite duration") from None
    elif isinstance(value, str):
        text = value.strip()
        pos = 0
        seconds = 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(f"invalid duration {value!r}: expected e.g. 30s, 5m, 1h30m, 250ms")
    else:
        raise ValueError("expected a duration such as 30s, 5m, 1h30m")
    if not math.isfinite(seconds):
        raise ValueError(f"{_show(value)} is not a finite duration")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > LONGEST_DURATION:
        raise ValueError(f"{_show(value)} is longer than {LONGEST_DURATION // 86400:g}d")
    return seconds


def parse_size(value: object) -> int:
    """Parse a size into bytes.

    Args:
        value: a number of bytes, or a string such as ``"1MiB"``, ``"512KB"``, ``"64B"``.

    Returns:
        The size in bytes.

    Raises:
        ValueError: when the value is not a size.
    """
    if isinstance(value, bool):
        raise ValueError("expected a size such as 1MiB, 512KiB, 4096")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if not match:
            raise ValueError(f"invalid size {value!r}: expected e.g. 1MiB, 512KiB, 10MB, 4096")
        unit = (match.group(2) or "B").upper()
        size = int(Decimal(match.group(1)) * _SIZE_FACTOR[unit])
    else:
        raise ValueError("expected a size such as 1MiB, 512KiB, 4096")
    if size < 0:
        raise ValueError("a size cannot be negative")
    if size > LARGEST_SIZE:
        raise ValueError(f"{_show(value)} is larger than 2**53 bytes")
    return size


def format_duration(seconds: float) -> str:
    """Render seconds the way Prometheus writes durations (``30s``, ``5m``, ``1h30m``)."""
    total_ms = round(seconds * 1000)
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000),
                       ("ms", 1)):
        if total_ms >= size:
            parts.append(f"{total_ms // size}{unit}")
            total_ms %= size
    return "".join(parts) or "0s"


Duration = Annotated[
    float, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]
"""Seconds, written in config as ``30s``, ``5m``, ``1h``."""

ByteSize = Annotated[int, BeforeValidator(parse_size)]
"""Bytes, written in config as ``1MiB``, ``512KB`` or a plain integer."""


def human_duration(seconds: float) -> str:
    """A duration for people and config files: ``250ms``, ``2.5s``, ``1m30s``.

    (:func:`format_duration` writes Prometheus durations, which have no fractions: it
    would round 2.5s to 2s.)
    """
    if seconds >= 1 and seconds != int(seconds):
        return f"{seconds:.12g}s"
    return format_duration(seconds)


def objective_ratio(percent: float) -> float:
    """Convert an objective in percent (``99.9``) to a ratio (``0.999``) without float noise.

    Args:
        percent: the objective, ``0 < percent < 100``.

    Returns:
        The ratio, the float nearest to the exact decimal value.

    Raises:
        ValueError: when the objective is not strictly between 0 and 100.
    """
    if not 0 < percent < 100:
        raise ValueError(f"objective {percent!r} must be between 0 and 100 (exclusive)")
    return float(Decimal(repr(float(percent))) / 100)
