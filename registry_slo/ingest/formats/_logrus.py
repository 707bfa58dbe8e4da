"""One logrus line (the logger of distribution's registry and of its garbage collector)
read into its fields, whatever the formatter: ``json`` and ``logstash`` write a JSON
object, ``text`` writes ``time="…" level=info msg="…" key=value …`` pairs."""

from __future__ import annotations

import json
import re
from typing import Any

from registry_slo.ingest.formats._verdict import Rejected

__all__ = ["TEXT_PAIR", "logrus_fields", "text_value"]

TEXT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')
"""One ``key=value`` pair of the text formatter (the value quoted when it needs it)."""


def text_value(raw: str) -> str:
    """A text formatter value, unquoted (Go's ``%q`` quoting is JSON's for what logrus
    writes)."""
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        try:
            return str(json.loads(raw))
        except ValueError:
            return raw[1:-1]
    return raw


def logrus_fields(text: str) -> dict[str, Any] | None:
    """The fields of a logrus line (the message under ``msg``, or ``message`` for
    logstash), or ``None`` when ``text`` is no logrus line (neither a JSON object nor
    text-formatter pairs starting with ``time=`` or ``level=``).

    Raises:
        Rejected: ``malformed_json`` for a JSON object that does not decode.
    """
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise Rejected("malformed_json") from None
        if not isinstance(fields, dict):
            raise Rejected("malformed_json", "not an object")
        return fields
    if text.startswith(("time=", "level=")):
        return {key: text_value(value) for key, value in TEXT_PAIR.findall(text)}
    return None
