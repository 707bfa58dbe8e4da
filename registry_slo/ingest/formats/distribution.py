"""``distribution``: the CNCF distribution registry's own log (logrus), 2.x and 3.x.

All three logrus formatters are read: ``json`` (the one LocalRegistry and most
deployments use), ``logstash`` (JSON with ``message`` and ``@timestamp``) and ``text``
(``time="…" level=info msg="response completed" key=value …``).

What counts as a request:

* ``response completed`` and ``response completed with error`` lines: method, URI,
  user agent, ``http.response.status``, ``http.response.duration`` (a Go duration),
  ``http.response.written`` (bytes sent to the client; 0 for ``HEAD``, whose body Go's
  server counts but never sends) and ``err.code``;
* ``error authorizing context: …`` warnings: a 401 that distribution answers without
  a ``response completed`` line. The anonymous challenge every client gets before it
  sends credentials (``authorization token required``, ``invalid authorization
  credential``) is not an operation and is ignored as ``auth_challenge``; a failed
  login (``authentication failure``, ``invalid token``, …) is an ``auth`` failure and
  ``insufficient scope`` is ``denied``. These lines say nothing of duration.

Everything else (``authorized request``, start-up messages, …) is ignored. The
hot path does not decode every line as JSON: a line is only parsed when it carries one
of the two markers, and a flat logrus line is read by one regular expression over its
sorted keys, falling back to :func:`json.loads` whenever that expression does not match
exactly (other key sets, escapes, nested objects), so both paths give the same answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from registry_slo.ingest.formats._base import (
    AUTH_CHALLENGE,
    NOT_AN_OPERATION,
    NOT_REGISTRY_API,
    PROBE_TRAFFIC,
    Ignored,
    Rejected,
    SourceParser,
    check_values,
)
from registry_slo.ingest.formats._http import (
    PROBE_AGENT_PREFIX,
    classify,
    go_duration,
    is_probe,
    outcome,
    rfc3339,
)
from registry_slo.ingest.formats._logrus import TEXT_PAIR as _TEXT_PAIR
from registry_slo.ingest.formats._logrus import text_value as _text_value
from registry_slo.observation import Observation
from registry_slo.oci import Reason

__all__ = ["DistributionParser"]

_RESPONSE = b"response completed"
_UNAUTHORIZED = b"error authorizing context"
# The keys of a logrus JSON "response completed" line, in encoding/json's sorted order.
_FAST = re.compile(
    rb'"http\.request\.method":"([A-Z]+)",'
    rb'(?:"http\.request\.remoteaddr":"[^"\\]*",)?'
    rb'"http\.request\.uri":"([^"]*)",'
    rb'"http\.request\.useragent":"([^"]*)",'
    rb'(?:"http\.response\.contenttype":"[^"\\]*",)?'
    rb'"http\.response\.duration":"(\d+(?:\.\d+)?)(ms|\xc2\xb5s|s)",'
    rb'"http\.response\.status":(\d+),'
    rb'"http\.response\.written":(\d+),'
    rb'"level":"[a-z]+",'
    rb'"msg":"response completed( with error)?",'
    rb'"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z"[,}]'
)
"""A flat logrus JSON response line with the usual keys and shapes (anything else, such as
a duration of a minute or more, or a time zone offset, goes through json.loads)."""
_UNITS = {b"ms": 1e-3, "µs".encode(): 1e-6, b"s": 1.0}
_SECONDS: dict[bytes, float] = {}
_ERR_CODE = re.compile(rb'"err\.code":"([^"\\]*)"')
_PROBE_AGENT = PROBE_AGENT_PREFIX.encode()
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE")}
_STATUSES = {str(n).encode(): n for n in range(100, 600)}
_NO_PHASES: Mapping[str, float] = MappingProxyType({})
_CHALLENGES = ("authorization token required", "invalid authorization credential")


def _unescape(raw: bytes) -> str:
    text = raw.decode()
    if "\\" in text:
        try:
            return str(json.loads(f'"{text}"'))
        except ValueError:
            raise Rejected("malformed_json", "bad string escape") from None
    return text


class DistributionParser(SourceParser):
    """Parser of the distribution registry's logrus log (see the module docstring)."""

    format: ClassVar[str] = "distribution"

    def parse(self, line: bytes) -> Observation | Ignored:
        """Read one line; see :class:`~registry_slo.ingest.formats.Parser`."""
        if line.startswith(b"{") and line.endswith(b"}"):
            stripped = line  # the common case: no copy
        else:
            stripped = line.strip()
            if not stripped:
                raise Rejected("unknown_format", "blank line")
        if stripped.startswith(b"{"):
            if not stripped.endswith(b"}"):
                raise Rejected("malformed_json", "truncated JSON object")
            # In a flat object, the first "msg":" is the message's key (inside strings,
            # quotes are escaped); logstash's "message" and nested objects take the
            # two-scan way.
            flat = stripped.count(b"{") == 1
            at = stripped.find(b'"msg":"') if flat else -1
            if at >= 0:
                response = stripped.startswith(_RESPONSE, at + 7)
                if not response and not stripped.startswith(_UNAUTHORIZED, at + 7):
                    return NOT_AN_OPERATION
            else:
                response = _RESPONSE in stripped
                if not response and _UNAUTHORIZED not in stripped:
                    return NOT_AN_OPERATION
            if response and flat:
                fast = _FAST.search(stripped)
                if fast is not None:
                    result = self._fast(stripped, fast)
                    if result is not None:
                        return result
            try:
                fields = json.loads(stripped)
            except ValueError:
                raise Rejected("malformed_json") from None
            if not isinstance(fields, dict):
                raise Rejected("malformed_json", "not an object")
            return self._fields(fields)
        if stripped.startswith(b"time="):
            if _RESPONSE not in stripped and _UNAUTHORIZED not in stripped:
                return NOT_AN_OPERATION
            text = stripped.decode()
            pairs = {key: _text_value(value) for key, value in _TEXT_PAIR.findall(text)}
            return self._fields(pairs)
        raise Rejected("unknown_format", "neither a logrus JSON nor a text line")

    # -- the fast path: one regex over a flat logrus JSON line ------------------------

    def _fast(self, line: bytes, match: re.Match[bytes]) -> Observation | Ignored | None:
        """The observation of a matched line, or ``None`` to let json.loads decide."""
        (method_b, uri_b, agent_b, amount_b, unit_b, status_b, written_b, error_b, second_b,
         fraction_b) = match.groups()
        if agent_b.startswith(_PROBE_AGENT):
            return PROBE_TRAFFIC
        uri = uri_b.decode()
        if "\\" in uri:
            uri = _unescape(uri_b)
        method = _METHODS.get(method_b) or method_b.decode()
        kind = classify(method, uri)
        if kind is None:
            return NOT_REGISTRY_API
        operation, repository, reference = kind
        status = _STATUSES.get(status_b) or int(status_b)
        code: str | None = None
        if error_b is not None:
            found = _ERR_CODE.search(line, 0, match.start())
            code = found.group(1).decode() if found is not None else None
        if status < 400:
            success, reason = True, None
        else:
            success, reason = outcome(status, code)
        tag = digest = None
        if reference is not None and operation.endswith("manifest"):
            if ":" in reference:
                digest = reference
            else:
                tag = reference
        base = _SECONDS.get(second_b)
        if base is None:
            base = rfc3339(second_b.decode() + "Z")
            if len(_SECONDS) > 4096:
                _SECONDS.clear()
            _SECONDS[second_b] = base
        duration = float(amount_b) * _UNITS[unit_b]
        when = base + float(fraction_b) if fraction_b else base
        written = 0 if method == "HEAD" else int(written_b)
        check_values(when, status, duration, 0, written)
        return Observation(
            self.region, operation, self.source, success, reason, duration, when,
            _NO_PHASES, 0, written, repository, digest, status, code, None, method, tag,
        )

    # -- the general path: a dict of fields (JSON, logstash, text) --------------------

    def _fields(self, fields: dict[str, Any]) -> Observation | Ignored:
        message = fields.get("msg", fields.get("message"))
        if not isinstance(message, str):
            raise Rejected("missing_field", "msg")
        if message.startswith("response completed"):
            if is_probe(_optional_str(fields, "http.request.useragent")):
                return PROBE_TRAFFIC
            code = _optional_str(fields, "err.code")
            return self._response(
                _required_str(fields, "http.request.method"),
                _required_str(fields, "http.request.uri"),
                _required_str(fields, "http.response.duration"),
                _int(fields, "http.response.status", required=True),
                _int(fields, "http.response.written", required=False),
                _timestamp(fields),
                code,
            )
        if message.startswith("error authorizing context"):
            if is_probe(_optional_str(fields, "http.request.useragent")):
                return PROBE_TRAFFIC
            return self._unauthorized(fields, message)
        return NOT_AN_OPERATION

    # -- building observations ----------------------------------------------------------

    def _response(
        self,
        method: str,
        uri: str,
        duration: str,
        status: int,
        written: int,
        timestamp: str,
        code: str | None,
    ) -> Observation | Ignored:
        classified = classify(method, uri)
        if classified is None:
            return NOT_REGISTRY_API
        seconds = go_duration(duration)  # read before the time, as it always was
        return self._observe(
            classified,
            rfc3339(timestamp),
            method=method,
            status=status,
            code=code,
            duration=seconds,
            # Go counts what a HEAD handler writes, but never sends a body for HEAD.
            bytes_received=0 if method == "HEAD" else written,
        )

    def _unauthorized(self, fields: dict[str, Any], message: str) -> Observation | Ignored:
        if message.endswith(_CHALLENGES):
            return AUTH_CHALLENGE
        method = _required_str(fields, "http.request.method")
        classified = classify(method, _required_str(fields, "http.request.uri"))
        if classified is None:
            return NOT_REGISTRY_API
        return self._observe(
            classified,
            _timestamp_seconds(fields),
            method=method,
            status=401,
            failure=Reason.DENIED if message.endswith("insufficient scope") else Reason.AUTH,
            detail=message,
        )


def _optional_str(fields: dict[str, Any], key: str) -> str | None:
    value = fields.get(key)
    return value if isinstance(value, str) else None


def _required_str(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key)
    if value is None:
        raise Rejected("missing_field", key)
    if not isinstance(value, str):
        raise Rejected("bad_value", key)
    return value


def _int(fields: dict[str, Any], key: str, *, required: bool) -> int:
    value = fields.get(key)
    if value is None:
        if required:
            raise Rejected("missing_field", key)
        return 0
    if isinstance(value, bool):
        raise Rejected("bad_value", key)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise Rejected("bad_value", key)


def _timestamp(fields: dict[str, Any]) -> str:
    value = fields.get("time", fields.get("@timestamp"))
    if not isinstance(value, str):
        raise Rejected("missing_field", "time")
    return value


def _timestamp_seconds(fields: dict[str, Any]) -> float:
    return rfc3339(_timestamp(fields))
