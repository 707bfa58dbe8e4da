"""``kubernetes-events``: image pulls as the kubelet reports them in Kubernetes Events.

Where the messages come from (kubernetes/kubernetes): ``pkg/kubelet/images/
image_manager.go`` records these events on the pod, through the core/v1 event recorder
(``client-go/tools/record``), with the reasons of ``pkg/kubelet/events/event.go``:

=====================  ====================================================  ===============
reason                 message                                               becomes
=====================  ====================================================  ===============
``Pulling``            ``Pulling image "X"``                                 not an operation
``Pulled``             ``Successfully pulled image "X" in 1.2s (1.5s         a pull
                       including waiting). Image size: N bytes.``
                       (current); older kubelets: without the size, and
                       before that with nanoseconds (``in 32.341313682s
                       (32.341329515s including waiting)``); ``in
                       7.46029133s`` alone (the wait included); nothing
                       after the image (the oldest)
``Pulled``             ``Container image "X" already present on machine``    already_present
``Failed``             ``Failed to pull image "X": <the runtime's error>``   a failed pull
``Failed``             ``Error: ErrImagePull`` (``ImagePullBackOff``,        not an operation
                       ``ErrImageNeverPull``, ``InvalidImageName``, …)
``BackOff``            ``Back-off pulling image "X"``                        not an operation
``ErrImageNeverPull``  ``Container image "X" is not present with pull        not an operation
                       policy of Never``
``InspectFailed``      ``Failed to inspect image "X": …``                    not an operation
=====================  ====================================================  ===============

**One pull attempt, one event.** The kubelet calls the runtime's ``PullImage`` once per
attempt and then writes exactly one of ``Successfully pulled image`` and ``Failed to pull
image``: those are the observations. ``Pulling`` comes before the same attempt;
``Error: ErrImagePull`` (``kuberuntime_container.go``, after any failure to get the image)
comes after it; ``BackOff`` is an attempt the kubelet did *not* make (the image is in
back-off), and ``ErrImageNeverPull`` and ``InspectFailed`` never reach a registry. The
repeats ``client-go``'s core/v1 recorder folds into one event (``count`` > 1) are one
line per update on a watch, each update one more occurrence: a line is one occurrence,
whatever its count. (The events.k8s.io recorder, which the kubelet does not use, updates a
``series`` only every 30 minutes: such a line may stand for several.) A resync that
eventrouter writes as ``UPDATED`` with an unchanged event is a ``duplicate``.

The operation is ``pull_manifest``: a pull starts by resolving the reference to a
manifest, which is where not found, authentication, authorization and rate limits
answer; its duration (the time without the kubelet's queue when the event gives both)
and size (the runtime's image size) are the whole image's. A failure's reason comes
from the runtime's error text (:func:`pull_failure`).

Lines: one Event object per line, as core/v1 (``message``, ``involvedObject``,
``lastTimestamp``, ``count``, ``source``) or events.k8s.io/v1 (``note``, ``regarding``,
``deprecatedLastTimestamp``, ``series``), bare (``kubectl get events -w -o json | jq -c
.``, kubernetes-event-exporter's file sink), in a watch stream's
``{"type": "ADDED", "object": …}`` (``kubectl get --raw '/api/v1/events?watch=1'``),
or in eventrouter's ``{"verb": "ADDED", "event": …}`` (its ``stdout`` sink, and its
default ``glog`` sink, whose line header is skipped). The registry is the image
reference's host (``docker.io`` when it has none, as the runtime reads it); a parser
given ``registries`` ignores the images of other registries (``other_registry``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from http import HTTPStatus
from typing import Any, ClassVar, Literal, assert_never

from registry_slo._names import repository_name, tag_name
from registry_slo.ingest.formats._base import (
    ALREADY_PRESENT,
    DUPLICATE,
    NOT_AN_OPERATION,
    OTHER_REGISTRY,
    Ignored,
    Rejected,
    SourceParser,
)
from registry_slo.ingest.formats._http import go_duration, rfc3339
from registry_slo.observation import Observation
from registry_slo.oci import Reason, reason_for_status

__all__ = [
    "DOCKER_HUB",
    "KubernetesEventsParser",
    "parse_image",
    "pull_failure",
    "registry_host",
]

OPERATION = "pull_manifest"
"""What one kubelet pull is counted as (see the module docstring)."""

DOCKER_HUB = "docker.io"
"""The registry of an image reference without a host, and the name every alias of
Docker Hub is counted under."""
_HUB_ALIASES = frozenset((DOCKER_HUB, "index.docker.io", "registry-1.docker.io"))

_COMBINED = "(combined from similar events): "  # client-go's aggregation prefix
_PULLED = 'Successfully pulled image "'
_PRESENT = 'Container image "'
_PRESENT_END = '" already present on machine'
_FAILED = 'Failed to pull image "'
# What follows the image in a Pulled message, every kubelet version (see above).
_PULLED_TAIL = re.compile(
    r"(?: in (?P<pull>[0-9][0-9.a-zµμ]*)"
    r"(?: \((?P<total>[0-9][0-9.a-zµμ]*) including waiting\))?"
    r"(?:\. Image size: (?P<size>[0-9]{1,20}) bytes\.?)?)?"
)
_GLOG_HEADER = re.compile(rb"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [^\]\s]*\] ")
_WATCH_TYPES = frozenset(("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"))
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
# Where the time of an event's latest occurrence is, most precise first.
_TIMES = ("lastTimestamp", "deprecatedLastTimestamp", "eventTime", "firstTimestamp",
          "deprecatedFirstTimestamp")
_DETAIL_CHARS = 300

_Kind = Literal["pulled", "present", "failed"]


def registry_host(host: str) -> str:
    """The name a registry host is counted under: lower case, Docker Hub's aliases
    (``index.docker.io``, ``registry-1.docker.io``) as :data:`DOCKER_HUB`."""
    host = host.lower()
    return DOCKER_HUB if host in _HUB_ALIASES else host


def parse_image(reference: str) -> tuple[str, str, str | None, str | None]:
    """Read an image reference as the container runtime does (Docker's normalisation).

    ``registry.example.com:5000/team/app:1.2`` is host ``registry.example.com:5000``,
    repository ``team/app``, tag ``1.2``; the first path component is a host only when
    it has a ``.`` or a ``:``, is ``localhost`` or has upper case letters, so ``nginx``
    and ``team/app`` are on Docker Hub (``library/nginx``). A reference without tag or
    digest is ``latest``; with both, the digest is what is pulled and the tag is dropped.

    Args:
        reference: the image as the pod names it.

    Returns:
        ``(host, repository, tag, digest)``: one of tag and digest is set.

    Raises:
        Rejected: ``bad_value`` when it is not an image reference.
    """
    name, at, digest = reference.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise Rejected("bad_value", f"not a digest: {digest[:80]!r}")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        host, path = registry_host(first), rest
    else:
        host, path = DOCKER_HUB, name
    path, colon, tag = path.rpartition(":") if ":" in path.rpartition("/")[2] else (path, "", "")
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    try:
        repository_name(path)
        if colon:
            tag_name(tag)
    except ValueError as exc:
        raise Rejected("bad_value", str(exc)) from None
    if digest:
        return host, path, None, digest
    return host, path, tag if colon else "latest", None


_HTTP_STATUS = re.compile(r"\b([45][0-9][0-9]) ([A-Z][A-Za-z]*(?: [A-Z][A-Za-z]*)*)")
_STATUS_CODE = re.compile(r"\bstatus(?: code)?:? ([45][0-9][0-9])\b")
# OCI error codes as runtimes print them: "denied: requested access to the resource ..."
_OCI_CODE = re.compile(
    r"(?<![\w-])(unauthorized|denied|toomanyrequests|manifest unknown|name unknown|"
    r"blob unknown|digest invalid|name invalid|manifest invalid|unsupported): "
)
# The runtime's own words, when no registry answer is quoted: first match wins.
_WORDS: tuple[tuple[str, Reason], ...] = (
    ("pull access denied", Reason.DENIED),  # Docker Hub: no such repository, or no access
    ("insufficient_scope", Reason.DENIED),
    ("too many requests", Reason.RATE_LIMITED),
    ("rate limit", Reason.RATE_LIMITED),
    ("deadline exceeded", Reason.TIMEOUT),
    ("timeout", Reason.TIMEOUT),
    ("timed out", Reason.TIMEOUT),
    ("x509: ", Reason.TLS),
    ("tls: ", Reason.TLS),
    ("certificate", Reason.TLS),
    ("http response to https client", Reason.TLS),
    ("connection refused", Reason.CONNECT),
    ("no such host", Reason.CONNECT),
    ("network is unreachable", Reason.CONNECT),
    ("no route to host", Reason.CONNECT),
    ("connection reset", Reason.CONNECT),
    ("registryunavailable", Reason.CONNECT),
    ("unexpected commit digest", Reason.DIGEST_MISMATCH),
    ("digest mismatch", Reason.DIGEST_MISMATCH),
    (": not found", Reason.NOT_FOUND),  # containerd's errdefs.ErrNotFound (a 404)
)


def _quoted_status(text: str) -> int | None:
    """An HTTP error status quoted in ``text``: ``503 Service Unavailable`` (with its own
    reason phrase, so a port or a size is not taken for one) or ``status code 503``."""
    for quoted in _HTTP_STATUS.finditer(text):
        status = int(quoted.group(1))
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            continue
        if quoted.group(2).startswith(phrase):
            return status
    coded = _STATUS_CODE.search(text)
    return int(coded.group(1)) if coded else None


def pull_failure(error: str) -> Reason:
    """The reason of a failed pull, from the runtime's error text (containerd, CRI-O,
    dockershim).

    A registry answer quoted in it (``401 Unauthorized``, ``status code 503``) decides
    with the OCI client's table, as for every ingest source; else an OCI error code
    (``denied: …``, ``toomanyrequests: …``, ``manifest unknown: …``); else the
    transport's words (``i/o timeout``, ``connection refused``, ``x509: …``,
    containerd's ``: not found``). Anything else is ``protocol``.
    """
    lowered = error.lower()
    code_match = _OCI_CODE.search(lowered)
    code = code_match.group(1) if code_match else None
    status = _quoted_status(error)
    if status is not None:
        return reason_for_status(status, code)
    if code is not None:
        # An error code without its status: a client error that the code names.
        return reason_for_status(400, code)
    for words, reason in _WORDS:
        if words in lowered:
            return reason
    return Reason.PROTOCOL


def _image(message: str, start: int) -> tuple[str, str]:
    """The quoted image starting at ``start`` and the rest of the message."""
    end = message.find('"', start)
    if end < 0:
        raise Rejected("bad_value", "the image's closing quote is missing")
    return message[start:end], message[end + 1 :]


def _image_event(reason: str, event: dict[str, Any]) -> tuple[_Kind, str, str] | None:
    """``(kind, image, rest)`` of an event that is one pull, ``None`` for the rest."""
    if reason not in ("Pulled", "Failed"):
        return None
    message = event.get("message")
    if message is None:
        message = event.get("note")
    if message is None:
        raise Rejected("missing_field", "message")
    if not isinstance(message, str):
        raise Rejected("bad_value", "message")
    message = message.removeprefix(_COMBINED)
    if reason == "Failed":
        if not message.startswith(_FAILED):
            return None  # "Error: ErrImagePull", a container that failed to start, ...
        image, rest = _image(message, len(_FAILED))
        return "failed", image, rest.removeprefix(": ")
    if message.startswith(_PULLED):
        image, rest = _image(message, len(_PULLED))
        return "pulled", image, rest
    if message.startswith(_PRESENT) and message.endswith(_PRESENT_END):
        return "present", message[len(_PRESENT) : -len(_PRESENT_END)], ""
    raise Rejected("bad_value", "a Pulled event of no known message")


def _pulled(rest: str) -> tuple[float | None, int]:
    """Seconds (without the wait, when the message gives both) and bytes of a pull."""
    match = _PULLED_TAIL.fullmatch(rest)
    if match is None:
        raise Rejected("bad_value", f"a Pulled message ending {rest[:60]!r}")
    pull, size = match.group("pull"), match.group("size")
    return (go_duration(pull) if pull else None), (int(size) if size else 0)


def _time(event: dict[str, Any]) -> float:
    """Unix time of the event's latest occurrence."""
    series = event.get("series")
    values: list[object] = [series.get("lastObservedTime")] if isinstance(series, dict) else []
    values += [event.get(key) for key in _TIMES]
    metadata = event.get("metadata")
    if isinstance(metadata, dict):
        values.append(metadata.get("creationTimestamp"))
    for value in values:
        if value is None:
            continue
        if not isinstance(value, str):
            raise Rejected("bad_value", "timestamp")
        return rfc3339(value)
    raise Rejected("missing_field", "lastTimestamp")


def _unwrap(record: dict[str, Any]) -> dict[str, Any] | Ignored:
    """The Event in a line: bare, in eventrouter's envelope or in a watch event."""
    inner = record.get("event")
    if "verb" in record and isinstance(inner, dict):
        if record["verb"] == "UPDATED" and record.get("old_event") == inner:
            return DUPLICATE  # the informer's periodic resync: nothing happened
        return inner
    inner = record.get("object")
    kind = record.get("type")
    if isinstance(inner, dict) and isinstance(kind, str) and kind in _WATCH_TYPES:
        # DELETED is the event's time to live running out; BOOKMARK, ERROR: no event.
        return inner if kind in ("ADDED", "MODIFIED") else NOT_AN_OPERATION
    return record


class KubernetesEventsParser(SourceParser):
    """Parser of Kubernetes Events, one JSON object per line (see the module docstring).

    Args:
        region: the ``region`` of the observations.
        source: the ingest source's name.
        registries: the registry hosts whose pulls count (``host`` or ``host:port`` as
            image references name them; Docker Hub under any of its names); ``None``:
            every registry.
    """

    format: ClassVar[str] = "kubernetes-events"

    def __init__(
        self, region: str, source: str, registries: Collection[str] | None = None
    ) -> None:
        super().__init__(region, source)
        self.registries = (
            None if registries is None else frozenset(map(registry_host, registries))
        )

    def parse(self, line: bytes) -> Observation | Ignored:
        """Read one line; see :class:`~registry_slo.ingest.formats.Parser`."""
        if not line.startswith(b"{"):
            header = _GLOG_HEADER.match(line)
            if header is not None:
                line = line[header.end() :]
                if not line.startswith(b"{"):
                    return NOT_AN_OPERATION  # eventrouter's own messages, same stream
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            raise Rejected("malformed_json") from None
        if not isinstance(record, dict):
            raise Rejected("malformed_json", "not an object")
        event = _unwrap(record)
        if isinstance(event, Ignored):
            return event
        reason = event.get("reason")
        if reason is None:
            raise Rejected("missing_field", "reason")
        if not isinstance(reason, str):
            raise Rejected("bad_value", "reason")
        found = _image_event(reason, event)
        if found is None:
            return NOT_AN_OPERATION
        kind, image, rest = found
        host, repository, tag, digest = parse_image(image)
        if self.registries is not None and host not in self.registries:
            return OTHER_REGISTRY
        match kind:
            case "present":
                return ALREADY_PRESENT
            case "pulled":
                duration, size = _pulled(rest)
                return self._observe((OPERATION, repository, None), _time(event),
                                     duration=duration, bytes_received=size, tag=tag,
                                     digest=digest)
            case "failed":
                return self._observe((OPERATION, repository, None), _time(event),
                                     failure=pull_failure(rest), tag=tag, digest=digest,
                                     detail=rest[:_DETAIL_CHARS])
            case _:
                assert_never(kind)
