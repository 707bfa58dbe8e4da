"""What a format parser is: one line in, an :class:`Observation` or a verdict out.

A parser is bound to one source (its ``region`` and ``source`` name) and turns one log
line (bytes, already known to be valid UTF-8, without its newline) into either

* an :class:`~registry_slo.observation.Observation` (a registry operation),
* an :class:`Ignored` verdict (a line that is fine but is not an operation to count:
  a start-up message, the exporter's own probe traffic, an anonymous auth challenge),

or raises :class:`Rejected` (a line that should have been an operation but cannot be
read). Every line ends up in exactly one of the three, which is what makes the
``lines = observations + ignored + rejected`` accounting exact.

Every format reads its own line shape, then ends the same way: the operation it found
(most through :func:`~registry_slo.ingest.formats.classify`) and what the line says of
its outcome go to :meth:`SourceParser._observe`, the one place that turns them into an
observation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from time import time as wall_clock
from typing import Any, ClassVar, Protocol, runtime_checkable

from registry_slo._units import LARGEST_SIZE
from registry_slo.ingest.formats._gc_facts import GcReport
from registry_slo.ingest.formats._http import outcome, split_reference
from registry_slo.ingest.formats._verdict import (
    ALREADY_PRESENT,
    AUTH_CHALLENGE,
    BLANK,
    DUPLICATE,
    IGNORED_REASONS,
    NOT_AN_OPERATION,
    NOT_REGISTRY_API,
    OTHER_REGISTRY,
    PROBE_TRAFFIC,
    REJECTED_REASONS,
    Ignored,
    Rejected,
)
from registry_slo.observation import Observation
from registry_slo.vocabulary import Reason

__all__ = [
    "ALREADY_PRESENT",
    "AUTH_CHALLENGE",
    "BLANK",
    "DUPLICATE",
    "IGNORED_REASONS",
    "NOT_AN_OPERATION",
    "NOT_REGISTRY_API",
    "OTHER_REGISTRY",
    "PROBE_TRAFFIC",
    "REJECTED_REASONS",
    "Classified",
    "Ignored",
    "Parser",
    "Rejected",
    "SourceParser",
    "StatefulParser",
    "check_values",
]

Classified = tuple[str, str | None, str | None]
"""``(operation, repository, reference)``: what a request did, to which repository, with
which tag or digest, as :func:`~registry_slo.ingest.formats.classify` names it."""


class Parser(Protocol):
    """One source's line parser (see the module docstring)."""

    format: ClassVar[str]

    def parse(self, line: bytes) -> Observation | Ignored:
        """Read one line (valid UTF-8, no newline).

        Raises:
            Rejected: the line cannot be read.
        """
        ...


@runtime_checkable
class StatefulParser(Parser, Protocol):
    """A parser of output that comes in units spanning lines (a garbage collector's
    runs): it keeps what it read of the unit in progress. Its state is saved in the
    source's checkpoint with the read positions (so a restart goes on exactly where the
    positions do), and a unit may end on quiet rather than on a line."""

    def snapshot(self) -> dict[str, Any]:
        """The state to save (JSON-ready)."""
        ...

    def restore(self, saved: Mapping[str, Any] | None) -> GcReport:
        """Go on from a saved state (``None``: a first start); report the figures it
        holds.

        Raises:
            ValueError: not a state this parser wrote.
        """
        ...

    def settle(self, now: float) -> GcReport | None:
        """End a unit whose outcome is known when nothing was read for a while
        (``now = math.inf``: the input is over); report it."""
        ...


class SourceParser:
    """The base of the line parsers: bound to one source's region and name, which every
    observation it yields carries.

    Args:
        region: the ``region`` of the observations.
        source: the ingest source's name.
    """

    format: ClassVar[str]

    def __init__(self, region: str, source: str) -> None:
        self.region = region
        self.source = source

    def _observe(
        self,
        classified: Classified,
        time: float,
        *,
        method: str | None = None,
        status: int | None = None,
        code: str | None = None,
        failure: Reason | None = None,
        duration: float | None = None,
        bytes_sent: int = 0,
        bytes_received: int = 0,
        tag: str | None = None,
        digest: str | None = None,
        detail: str | None = None,
    ) -> Observation:
        """The observation of one operation: the tail every format's parse ends in.

        A parser calls it once it knows the line is an operation (after the checks that
        turn a line into :class:`Ignored`), so its outcome, time and duration are only
        read, and only rejected, for lines that count.

        Args:
            classified: the operation, repository and reference (:data:`Classified`).
            time: Unix time of the operation.
            method: the HTTP method, when the source saw one request.
            status: the HTTP status; with ``code``, it decides success and reason
                through :func:`~registry_slo.ingest.formats.outcome`.
            code: the registry's OCI error code, if it logged one.
            failure: the reason, when the source says the operation failed otherwise
                than by its status (an authorization warning, a ``false`` success flag);
                it wins over ``status``. With neither, the operation succeeded (audit
                logs and flags record no status).
            duration: seconds the operation took; ``None`` when the source does not say
                (the observation is then untimed).
            bytes_sent: request body bytes.
            bytes_received: response body bytes.
            tag: the tag, when the source names it apart from the path.
            digest: the digest, when the source names it apart from the path. When
                neither is given, a manifest operation's reference is one of them.
            detail: a human-readable description of the failure.

        Returns:
            The observation, carrying this parser's region and source.
        """
        check_values(time, status, duration, bytes_sent, bytes_received)
        operation, repository, reference = classified
        if failure is not None:
            success, reason = False, failure
        elif status is None:
            success, reason = True, None
        else:
            success, reason = outcome(status, code)
        if tag is None and digest is None and operation.endswith("manifest"):
            tag, digest = split_reference(reference)
        return Observation(
            self.region,
            operation,
            self.source,
            success,
            reason,
            0.0 if duration is None else duration,
            time,
            bytes_sent=bytes_sent,
            bytes_received=bytes_received,
            repository=repository,
            digest=digest,
            status=status,
            oci_code=code,
            detail=detail,
            method=method,
            tag=tag,
            timed=duration is not None,
        )


EARLIEST = 946_684_800.0
"""2000-01-01T00:00:00Z: an operation logged before it is a broken clock or field."""
FUTURE = 86_400.0
"""Seconds past the exporter's clock an operation may be logged at (clock skew)."""
LONGEST = 7 * 86_400.0
"""The longest duration a request may have taken: a week."""


def check_values(time: float, status: int | None, duration: float | None,
                  bytes_sent: int, bytes_received: int) -> None:
    """Reject (``bad_value``) a record whose values cannot be true: a status outside
    100-599, a duration that is not finite or outside 0 to a week, a byte count below
    0 or above 2**53, a time that is not finite, before 2000 or more than a day ahead
    of this clock. Counted as observations, they would poison counters and SLIs."""
    if status is not None and not 100 <= status <= 599:
        raise Rejected("bad_value", f"HTTP status {status} is not 100-599")
    if duration is not None and not 0 <= duration <= LONGEST:
        raise Rejected("bad_value", f"duration {duration!r}s is not 0 to {LONGEST:g}s")
    for name, count in (("request", bytes_sent), ("response", bytes_received)):
        if not 0 <= count <= LARGEST_SIZE:
            raise Rejected("bad_value", f"{name} bytes {count!r} are not 0 to 2**53")
    if not (math.isfinite(time) and EARLIEST <= time <= wall_clock() + FUTURE):
        raise Rejected("bad_value", f"time {time!r} is not between 2000 and tomorrow")
