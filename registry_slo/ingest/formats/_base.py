"""What a format parser is: one line in, an :class:`Observation` or a verdict out.

A parser is bound to one source (its ``region`` and ``source`` name) and turns one log
line (bytes, already known to be valid UTF-8, without its newline) into either

* an :class:`~registry_slo.observation.Observation` (a registry operation),
* an :class:`Ignored` verdict (a line that is fine but is not an operation to count:
  a start-up message, the exporter's own probe traffic, an anonymous auth challenge),

or raises :class:`Rejected` (a line that should have been an operation but cannot be
read). Every line ends up in exactly one of the three, which is what makes the
``lines = observations + ignored + rejected`` accounting exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from registry_slo.observation import Observation

__all__ = [
    "AUTH_CHALLENGE",
    "BLANK",
    "DUPLICATE",
    "IGNORED_REASONS",
    "NOT_AN_OPERATION",
    "NOT_REGISTRY_API",
    "PROBE_TRAFFIC",
    "REJECTED_REASONS",
    "Ignored",
    "Parser",
    "Rejected",
    "SourceParser",
]

REJECTED_REASONS = (
    "non_utf8",
    "line_too_long",
    "malformed_json",
    "unknown_format",
    "missing_field",
    "bad_value",
    "body_too_large",
    "internal_error",
)
"""The closed set of ``reason`` values of ``registry_slo_ingest_rejected_total``."""

IGNORED_REASONS = (
    "blank",
    "not_an_operation",
    "probe_traffic",
    "auth_challenge",
    "not_registry_api",
    "duplicate",
)
"""The closed set of ``reason`` values of ``registry_slo_ingest_ignored_total``."""


class Rejected(Exception):
    """The line cannot be read as the configured format.

    Attributes:
        reason: one of :data:`REJECTED_REASONS`.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REJECTED_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Ignored:
    """A readable line that is not an operation to count.

    Attributes:
        reason: one of :data:`IGNORED_REASONS`.
    """

    reason: str


BLANK = Ignored("blank")
NOT_AN_OPERATION = Ignored("not_an_operation")
PROBE_TRAFFIC = Ignored("probe_traffic")
AUTH_CHALLENGE = Ignored("auth_challenge")
NOT_REGISTRY_API = Ignored("not_registry_api")
DUPLICATE = Ignored("duplicate")


class Parser(Protocol):
    """One source's line parser (see the module docstring)."""

    format: ClassVar[str]

    def parse(self, line: bytes) -> Observation | Ignored:
        """Read one line (valid UTF-8, no newline).

        Raises:
            Rejected: the line cannot be read.
        """
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
