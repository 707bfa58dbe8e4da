"""The one event model: every source turns what it sees into an :class:`Observation`.

Probes, log tailers, webhook receivers and scrapers all yield this record, and the SLI
engine and every output consume it without knowing which source it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from registry_slo.vocabulary import Reason

__all__ = ["Observation"]

@dataclass(frozen=True, slots=True)
class Observation:
    """One registry operation, seen by a probe or read from what a registry emits.

    Attributes:
        region: the configured region name (the ``region`` label).
        operation: ``push``, ``pull``, ``auth``, … (for probes, the ``probe`` label).
        source: ``probe`` for synthetic probes; ingest sources name themselves.
        success: whether the operation succeeded.
        reason: why it failed (``None`` on success).
        duration_seconds: wall time of the measured part.
        time: Unix time at which the operation started.
        phases: exclusive seconds per phase (``auth``, ``upload``, ``manifest``, ``download``).
        bytes_sent: request body bytes.
        bytes_received: response body bytes.
        repository: the repository, when there is one.
        digest: the manifest digest involved, when known.
        status: the HTTP status of the failing answer, when there was one.
        oci_code: the registry's OCI error code, for logs.
        detail: a human-readable description of the failure.
        method: the HTTP method, when the source saw one request (ingest).
        tag: the tag involved, when known (ingest: tag overwrite detection).
        trace_id: the run's OpenTelemetry trace id (32 hex digits), when traced.
        timed: ``False`` when the source did not say how long the operation took
            (audit logs, 401s logged without a response line); ``duration_seconds``
            is then 0 and must not be observed.
    """

    region: str
    operation: str
    source: str
    success: bool
    reason: Reason | None
    duration_seconds: float
    time: float
    phases: Mapping[str, float] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0
    repository: str | None = None
    digest: str | None = None
    status: int | None = None
    oci_code: str | None = None
    detail: str | None = None
    method: str | None = None
    tag: str | None = None
    timed: bool = True
    trace_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``probe --once --json`` line format)."""
        data: dict[str, Any] = {
            "region": self.region,
            "probe" if self.source == "probe" else "operation": self.operation,
            "source": self.source,
            "success": self.success,
            "reason": str(self.reason) if self.reason else None,
            "duration_seconds": round(self.duration_seconds, 6),
            "phases": {k: round(v, 6) for k, v in sorted(self.phases.items())},
            "bytes": {"sent": self.bytes_sent, "received": self.bytes_received},
            "repository": self.repository,
            "digest": self.digest,
            "status": self.status,
            "oci_code": self.oci_code,
            "detail": self.detail,
            "time": round(self.time, 3),
        }
        # Ingest-only fields appear only when set, so probe output keeps its shape.
        if self.method is not None:
            data["method"] = self.method
        if self.tag is not None:
            data["tag"] = self.tag
        if not self.timed:
            data["timed"] = False
        if self.trace_id is not None:
            data["trace_id"] = self.trace_id
        return data
