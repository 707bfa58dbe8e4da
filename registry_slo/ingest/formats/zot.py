"""``zot-audit``: zot's JSON audit log (``log.audit`` in zot's config).

Where the shape comes from (project-zot/zot): ``SessionAuditLogger`` in
``pkg/api/session.go`` writes, through zerolog (one JSON object per line, ``time`` and
``message`` keys), one record per *successful* mutating request (POST, PUT, PATCH or
DELETE answered 200, 201 or 202)::

    {"level":"info","component":"session","clientIP":"10.0.0.7:41234",
     "subject":"ci-bot","action":"PUT","object":"/v2/team/app/manifests/v1",
     "status":201,"time":"2026-01-05T08:00:01.123456789Z","message":"HTTP API Audit"}

(older zot versions have no ``component``). ``action`` and ``object`` are the method
and the URI, classified like any HTTP request. Pulls and failures are not in this log,
and it has no duration and no user agent.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from registry_slo.ingest.formats._base import (
    NOT_AN_OPERATION,
    NOT_REGISTRY_API,
    Ignored,
    Rejected,
    SourceParser,
)
from registry_slo.ingest.formats._http import classify, rfc3339
from registry_slo.observation import Observation

__all__ = ["ZotAuditParser"]

_AUDIT_MESSAGE = "HTTP API Audit"


class ZotAuditParser(SourceParser):
    """Parser of zot's audit log (see the module docstring)."""

    format: ClassVar[str] = "zot-audit"

    def parse(self, line: bytes) -> Observation | Ignored:
        """Read one line; see :class:`~registry_slo.ingest.formats.Parser`."""
        try:
            record = json.loads(line)
        except ValueError:
            raise Rejected("malformed_json") from None
        if not isinstance(record, dict):
            raise Rejected("malformed_json", "not an object")
        if record.get("message", record.get("msg")) != _AUDIT_MESSAGE:
            return NOT_AN_OPERATION
        method = _str(record, "action")
        classified = classify(method.upper(), _str(record, "object"))
        if classified is None:
            return NOT_REGISTRY_API
        status = record.get("status")
        if not isinstance(status, int) or isinstance(status, bool):
            raise Rejected("bad_value" if status is not None else "missing_field", "status")
        return self._observe(
            classified, rfc3339(_str(record, "time")), method=method.upper(), status=status
        )


def _str(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if value is None:
        raise Rejected("missing_field", key)
    if not isinstance(value, str):
        raise Rejected("bad_value", key)
    return value
