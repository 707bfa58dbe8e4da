"""``jsonl``: one JSON object per line, fields found through a configured mapping.

For any registry whose log is JSON but none of the built-in formats: say where the
operation (or the method and path), the outcome (an HTTP status or a boolean) and,
optionally, the time, duration, repository, tag, digest, user agent and sizes are. See
:class:`~registry_slo.config.JsonlMapping`. A source whose lines carry both a tag
and a digest on pushes feeds tag overwrite detection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, ClassVar

from registry_slo.config import JsonlMapping
from registry_slo.ingest.formats._base import (
    NOT_REGISTRY_API,
    PROBE_TRAFFIC,
    Ignored,
    Rejected,
    SourceParser,
)
from registry_slo.ingest.formats._http import (
    OPERATIONS,
    classify,
    go_duration,
    is_probe,
    rfc3339,
)
from registry_slo.observation import Observation
from registry_slo.oci import Reason

__all__ = ["JsonlParser", "lookup"]

_MISSING = object()
_UNIT = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def lookup(record: dict[str, Any], field: str) -> Any:
    """The value at ``field``: the key itself, else the dotted path through nested objects.

    Returns:
        The value, or a private sentinel when absent (compare with :func:`present`).
    """
    value = record.get(field, _MISSING)
    if value is not _MISSING:
        return value
    node: Any = record
    for part in field.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def present(value: Any) -> bool:
    """Whether a :func:`lookup` found something (``null`` counts as absent)."""
    return value is not _MISSING and value is not None


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Rejected("bad_value", field)
    try:
        return float(value)
    except ValueError:
        raise Rejected("bad_value", field) from None


class JsonlParser(SourceParser):
    """Parser of JSON lines through a :class:`JsonlMapping` (see the module docstring).

    Args:
        region: the ``region`` of the observations.
        source: the ingest source's name.
        mapping: where the fields are.
    """

    format: ClassVar[str] = "jsonl"

    def __init__(
        self,
        region: str,
        source: str,
        mapping: JsonlMapping,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(region, source)
        self.mapping = mapping
        self._clock = clock

    def _get(self, record: dict[str, Any], field: str | None) -> Any:
        return lookup(record, field) if field is not None else _MISSING

    def _str(self, record: dict[str, Any], field: str | None) -> str | None:
        value = self._get(record, field)
        if not present(value):
            return None
        if not isinstance(value, str):
            raise Rejected("bad_value", str(field))
        return value

    def parse(self, line: bytes) -> Observation | Ignored:
        """Read one line; see :class:`~registry_slo.ingest.formats.Parser`."""
        try:
            record = json.loads(line)
        except ValueError:
            raise Rejected("malformed_json") from None
        if not isinstance(record, dict):
            raise Rejected("malformed_json", "not an object")
        m = self.mapping
        if is_probe(self._str(record, m.user_agent)):
            return PROBE_TRAFFIC
        method = self._str(record, m.method)
        repository = self._str(record, m.repository)
        reference: str | None = None
        if m.operation is not None:
            raw = self._get(record, m.operation)
            if not present(raw):
                raise Rejected("missing_field", m.operation)
            raw_text = str(raw)
            operation = m.operations.get(raw_text, raw_text if raw_text in OPERATIONS else "other")
        else:
            path = self._str(record, m.path)
            if method is None or path is None:
                raise Rejected("missing_field", f"{m.method} / {m.path}")
            classified = classify(method.upper(), path)
            if classified is None:
                return NOT_REGISTRY_API
            operation, path_repository, reference = classified
            repository = repository or path_repository
        status, failure = self._outcome(record)
        tag = self._str(record, m.tag)
        digest = self._str(record, m.digest)
        duration = self._duration(record)
        return self._observe(
            (operation, repository, reference),
            self._time(record),
            method=method.upper() if method is not None else None,
            status=status,
            failure=failure,
            duration=duration,
            bytes_sent=self._int(record, m.bytes_sent),
            bytes_received=self._int(record, m.bytes_received),
            tag=tag,
            digest=digest,
        )

    def _outcome(self, record: dict[str, Any]) -> tuple[int | None, Reason | None]:
        """``(status, failure)`` for :meth:`_observe`: the status, or else the flag."""
        m = self.mapping
        status_value = self._get(record, m.status)
        if present(status_value):
            return int(_number(status_value, str(m.status))), None
        flag = self._get(record, m.success)
        if not present(flag):
            raise Rejected("missing_field", str(m.status or m.success))
        if not isinstance(flag, bool):
            raise Rejected("bad_value", str(m.success))
        return None, None if flag else Reason.PROTOCOL

    def _duration(self, record: dict[str, Any]) -> float | None:
        m = self.mapping
        value = self._get(record, m.duration)
        if not present(value):
            return None
        if m.duration_unit == "go":
            if not isinstance(value, str):
                raise Rejected("bad_value", str(m.duration))
            return go_duration(value)
        return _number(value, str(m.duration)) * _UNIT[m.duration_unit]

    def _time(self, record: dict[str, Any]) -> float:
        m = self.mapping
        value = self._get(record, m.time)
        if not present(value):
            if m.time is not None:
                raise Rejected("missing_field", m.time)
            return self._clock()
        if m.time_format == "rfc3339":
            if not isinstance(value, str):
                raise Rejected("bad_value", str(m.time))
            return rfc3339(value)
        seconds = _number(value, str(m.time))
        return seconds / 1000 if m.time_format == "unix_ms" else seconds

    def _int(self, record: dict[str, Any], field: str | None) -> int:
        value = self._get(record, field)
        if not present(value):
            return 0
        return int(_number(value, str(field)))
