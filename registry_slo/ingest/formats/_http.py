"""Shared by the formats: operations from method + path, outcomes from HTTP status,
Go durations, timestamps, and recognising the exporter's own probe traffic."""

from __future__ import annotations

import calendar
import re
from datetime import datetime

from registry_slo.ingest.formats._verdict import Rejected
from registry_slo.oci import USER_AGENT, Reason, reason_for_status
from registry_slo.vocabulary import OPERATIONS

__all__ = [
    "OPERATIONS",
    "PROBE_AGENT_PREFIX",
    "classify",
    "classify_uncached",
    "go_duration",
    "is_probe",
    "outcome",
    "rfc3339",
    "split_reference",
]

PROBE_AGENT_PREFIX = USER_AGENT.partition("/")[0] + "/"
"""User agents starting with this are the exporter's own probes (any version)."""


def is_probe(user_agent: str | None) -> bool:
    """Whether a request came from a registry-slo probe."""
    return user_agent is not None and user_agent.startswith(PROBE_AGENT_PREFIX)


_Route = tuple[str, str | None, bool]  # operation, repository, last segment is the reference
_ROUTES: dict[tuple[str, str], _Route | None] = {}
_ROUTES_MAX = 16384
_NOT_CACHED: _Route = ("", None, False)
# Last path segments classify_uncached looks at: with any other, the segment never changes
# the operation or the repository, only (possibly) which reference it is.
_SPECIAL_SEGMENTS = frozenset(("", "_catalog", "uploads", "list", "v2"))


def classify(method: str, uri: str) -> tuple[str, str | None, str | None] | None:
    """Name the registry operation of an HTTP request.

    Args:
        method: the HTTP method (upper case).
        uri: the request URI (path and optional query).

    Returns:
        ``(operation, repository, reference)`` (repository and reference when the path
        has them; the reference is a tag or a digest), or ``None`` when the path is not
        the registry API (``/v2/...``).

    The same answer as :func:`classify_uncached`, with the route (method and the path up
    to its last ``/``) cached: a busy log costs a dict lookup per line.
    """
    path = uri.partition("?")[0]
    cut = path.rfind("/") + 1
    segment = path[cut:]
    if segment in _SPECIAL_SEGMENTS:
        return classify_uncached(method, path)
    key = (method, path[:cut])
    route = _ROUTES.get(key, _NOT_CACHED)
    if route is _NOT_CACHED:
        full = classify_uncached(method, path)
        if full is None:
            route = None
        elif full[2] is None:
            route = (full[0], full[1], False)
        elif full[2] == segment:
            route = (full[0], full[1], True)
        else:
            return full  # a reference spanning segments: not cached
        if len(_ROUTES) >= _ROUTES_MAX:
            _ROUTES.clear()
        _ROUTES[key] = route
    if route is None:
        return None
    operation, repository, has_reference = route
    return operation, repository, segment if has_reference else None


def classify_uncached(method: str, uri: str) -> tuple[str, str | None, str | None] | None:
    """:func:`classify` without its cache (the rules themselves)."""
    path = uri.partition("?")[0]
    if not path.startswith("/v2"):
        return None
    if path in ("/v2/", "/v2"):
        return "auth", None, None
    if not path.startswith("/v2/"):
        return None
    rest = path[4:]
    if rest == "_catalog":
        return "catalog", None, None
    # A reference never contains "/", so the last marker splits name and reference.
    cut = rest.rfind("/manifests/")
    if cut > 0:
        repository, reference = rest[:cut], rest[cut + 11 :]
        if method in ("GET", "HEAD"):
            return "pull_manifest", repository, reference
        if method == "PUT":
            return "push_manifest", repository, reference
        if method == "DELETE":
            return "delete", repository, reference
        return "other", repository, reference
    cut = rest.rfind("/blobs/uploads")
    if cut > 0 and rest[cut + 14 : cut + 15] in ("", "/"):
        return "push_blob", rest[:cut], None
    cut = rest.rfind("/blobs/")
    if cut > 0:
        repository, digest = rest[:cut], rest[cut + 7 :]
        if method == "GET":
            return "pull_blob", repository, digest
        if method == "HEAD":
            return "check_blob", repository, digest
        if method == "DELETE":
            return "delete", repository, digest
        return "other", repository, digest
    if rest.endswith("/tags/list"):
        return "tags_list", rest[:-10], None
    return "other", None, None


def split_reference(reference: str | None) -> tuple[str | None, str | None]:
    """``(tag, digest)`` of a manifest reference: one of them is set."""
    if reference is None or reference == "":
        return None, None
    if ":" in reference:
        return None, reference
    return reference, None


def outcome(status: int, code: str | None = None) -> tuple[bool, Reason | None]:
    """Map an HTTP status (and the OCI error code, if any) to success and reason.

    The rules are the OCI client's (:func:`registry_slo.oci.reason_for_status`), so an
    SLI computed from logs and one computed from probes use the same closed reason set.

    Args:
        status: the HTTP status.
        code: the OCI error code, in either form (``MANIFEST_UNKNOWN`` or
            ``manifest unknown`` as distribution logs it).

    Returns:
        ``(success, reason)``; the reason is ``None`` on success.
    """
    if status < 400:
        return True, None
    return False, reason_for_status(status, code)


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
             "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration(text: str) -> float:
    """Seconds of a Go ``time.Duration`` string (``12.9ms``, ``850µs``, ``1m2.5s``).

    Raises:
        Rejected: ``bad_value`` when the text is not a duration.
    """
    # The common shapes first: one plain decimal number and one unit.
    for unit, factor in (("ms", 1e-3), ("µs", 1e-6), ("s", 1.0)):
        if text.endswith(unit):
            number = text[: -len(unit)]
            if number.replace(".", "", 1).isdecimal():
                return float(number) * factor
            break
    if text == "0":
        return 0.0
    total, pos = 0.0, 0
    negative = text.startswith("-")
    if negative:
        pos = 1
    while pos < len(text):
        match = _GO_PART.match(text, pos)
        if match is None:
            raise Rejected("bad_value", f"not a Go duration: {text[:40]!r}")
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if pos == (1 if negative else 0):
        raise Rejected("bad_value", "empty duration")
    return -total if negative else total


SECOND_CACHE: dict[str, float] = {}
"""Unix time of each whole second seen (``YYYY-MM-DDTHH:MM:SS``), for the hot paths."""
_OFFSET = re.compile(r"([+-])(\d\d):?(\d\d)$")


def rfc3339(text: str) -> float:
    """Unix time of an RFC 3339 timestamp (any number of fraction digits, ``Z`` or offset).

    Whole seconds are cached, so a log's timestamps cost a dict lookup and a float.

    Raises:
        Rejected: ``bad_value`` when the text is not such a timestamp.
    """
    head = text[:19]
    base = SECOND_CACHE.get(head)
    if base is not None and text[-1:] == "Z" and text[19:20] == ".":
        try:  # the common shape: 2026-01-05T08:00:00.000566622Z
            return base + float(text[19:-1])
        except ValueError:
            pass
    if base is None:
        try:
            parsed = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            try:
                parsed = datetime.strptime(head, "%Y-%m-%d %H:%M:%S")
            except ValueError:
                raise Rejected("bad_value", f"not a timestamp: {text[:40]!r}") from None
        base = float(calendar.timegm(parsed.timetuple()))
        if len(SECOND_CACHE) > 4096:
            SECOND_CACHE.clear()
        SECOND_CACHE[head] = base
    tail = text[19:]
    if tail == "Z":
        return base
    fraction = 0.0
    if tail.startswith("."):
        end = 1
        while end < len(tail) and "0" <= tail[end] <= "9":  # not isdigit(): "²" is one
            end += 1
        if end > 1:
            fraction = float("0" + tail[:end])
        tail = tail[end:]
    if tail in ("Z", "", " UTC", "+00:00"):
        return base + fraction
    match = _OFFSET.search(tail)
    if match is None:
        raise Rejected("bad_value", f"not a timestamp: {text[:40]!r}")
    sign = 1 if match.group(1) == "+" else -1
    return base + fraction - sign * (int(match.group(2)) * 3600 + int(match.group(3)) * 60)
