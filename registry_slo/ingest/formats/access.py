"""``distribution-access``: the registry's access log (stdout), Apache combined format.

Distribution wraps its router in gorilla's ``CombinedLoggingHandler``, so every request
is one line::

    127.0.0.1 - - [27/Nov/2026:02:59:52 +0000] "GET /v2/ HTTP/1.1" 401 87 "" "skopeo/1.13.3"

The format has no duration (observations are untimed) and cannot tell the anonymous
challenge from a failed login: every 401 is an ``auth`` failure here, while the JSON
log (format ``distribution``) tells them apart.
"""

from __future__ import annotations

import calendar
import re
from typing import ClassVar

from registry_slo.ingest.formats._base import (
    NOT_REGISTRY_API,
    PROBE_TRAFFIC,
    Ignored,
    Rejected,
    SourceParser,
)
from registry_slo.ingest.formats._http import classify, is_probe
from registry_slo.observation import Observation

__all__ = ["AccessLogParser"]

_LINE = re.compile(
    r'(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] '
    r'"(?P<method>[A-Z]+) (?P<uri>\S+) (?P<proto>[^"]*)" (?P<status>\d{3}) (?P<size>\d+|-)'
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?\s*$'
)
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
)}
_CLF_TIME = re.compile(r"(\d\d)/(\w{3})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$")


def clf_time(text: str) -> float:
    """Unix time of a common-log-format timestamp (``27/Nov/2026:02:59:52 +0000``).

    Raises:
        Rejected: ``bad_value`` when the text is not such a timestamp.
    """
    match = _CLF_TIME.match(text)
    if match is None or match.group(2) not in _MONTHS:
        raise Rejected("bad_value", f"not a timestamp: {text[:40]!r}")
    day, month, year, hour, minute, second, sign, off_h, off_m = match.groups()
    base = calendar.timegm(
        (int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), 0, 0, 0)
    )
    offset = int(off_h) * 3600 + int(off_m) * 60
    return float(base - offset if sign == "+" else base + offset)


class AccessLogParser(SourceParser):
    """Parser of the combined-format access log (see the module docstring)."""

    format: ClassVar[str] = "distribution-access"

    def parse(self, line: bytes) -> Observation | Ignored:
        """Read one line; see :class:`~registry_slo.ingest.formats.Parser`."""
        match = _LINE.match(line.decode())
        if match is None:
            raise Rejected("unknown_format", "not a combined log format line")
        if is_probe(match.group("agent")):
            return PROBE_TRAFFIC
        method = match.group("method")
        classified = classify(method, match.group("uri"))
        if classified is None:
            return NOT_REGISTRY_API
        size = match.group("size")
        return self._observe(
            classified,
            clf_time(match.group("time")),
            method=method,
            status=int(match.group("status")),
            bytes_received=0 if size == "-" else int(size),
        )
