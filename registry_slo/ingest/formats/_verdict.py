"""What a line becomes when it is not an observation: an :class:`Ignored` verdict, or
:class:`Rejected`.

The two reason sets are closed: they are the ``reason`` label values of
``registry_slo_ingest_ignored_total`` and ``registry_slo_ingest_rejected_total``.
This module imports nothing of the package, so the helpers that raise :class:`Rejected`
(``_http``) and the parser base that returns :class:`Ignored` (``_base``) both build on it.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    "Ignored",
    "Rejected",
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
    "already_present",
    "other_registry",
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
ALREADY_PRESENT = Ignored("already_present")
"""A node that did not pull: the image was already on the machine (Kubernetes events)."""
OTHER_REGISTRY = Ignored("other_registry")
"""An operation on a registry this source does not report (Kubernetes events)."""
