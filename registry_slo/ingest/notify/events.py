"""Registry notifications → observations: distribution envelopes and Harbor webhooks.

Each payload yields records: ``(event id, Observation or Ignored)``, or raises
:class:`~registry_slo.ingest.formats.Rejected` when it cannot be read. Registries only
notify operations that succeeded; notifications carry no duration and no status.

distribution (``application/vnd.docker.distribution.events.v1+json``, v2 in 3.x), as the
real 2.8 registry sends it (``tests/ingest/fixtures/distribution-2.8.2.notifications.json``)::

    {"events": [{"id": "…", "timestamp": "…", "action": "push",
                 "target": {"mediaType": "…", "size": 121, "digest": "sha256:…",
                            "repository": "team/app", "tag": "v1", "url": "…"},
                 "request": {"method": "PUT", "useragent": "skopeo/1.9.3", …},
                 "actor": {"name": "…"}, "source": {…}}]}

``push``/``pull`` of a manifest media type are manifest operations, of anything else
blob operations (a ``pull`` by ``HEAD`` of a blob, which 2.8 notifies too, is a
``check_blob``, as in the log); ``mount`` is a blob push; ``delete`` with a digest is a
delete, while the tag-only ``delete`` that 2.8 sends alongside (same request) is its
consequence and is ignored. The exporter's own probes are ignored by user agent.

Harbor (goharbor/harbor ``src/pkg/notifier/model/event.go``: ``Payload``, and
``src/pkg/notifier/formats/cloudevents.go``): the Default payload
``{"type": "PUSH_ARTIFACT", "occur_at": 1680000000, "operator": "…", "event_data":
{"resources": [{"digest", "tag", "resource_url"}], "repository": {"repo_full_name", …}}}``
and CloudEvents ``{"specversion": "1.0", "id": "…", "type": "harbor.artifact.pushed",
"time": "…", "data": {"resources": […], "repository": {…}}, "operator": "…"}``. One record
per resource; push, pull and delete of artifacts count, other event types (scans, quota,
replication, retention) are ignored. The Default payload has no event id: a delivery is
identified by a hash of its body, so a retried delivery counts once (and two identical
payloads inside the dedup memory count once too).
"""

from __future__ import annotations

import hashlib
from typing import Any

from registry_slo.ingest.formats import (
    NOT_AN_OPERATION,
    PROBE_TRAFFIC,
    Ignored,
    Rejected,
    check_values,
    is_probe,
    rfc3339,
)
from registry_slo.observation import Observation

__all__ = ["Record", "distribution_records", "harbor_records"]

Record = tuple[str | None, Observation | Ignored | Rejected]
"""One event of an envelope: its id (for duplicate detection) and what it is. An event
that cannot be read is a :class:`Rejected` record of its own: the others of its
envelope still count (the registry does not resend an envelope answered 2xx)."""
"""An event id (``None``: no id, never deduplicated) and what the event is."""

_MANIFEST_TYPES = ("manifest", "image.index")


def _is_manifest(media_type: str | None, tag: str | None) -> bool:
    if media_type:
        return any(kind in media_type for kind in _MANIFEST_TYPES)
    return tag is not None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def distribution_records(body: Any, region: str, source: str) -> list[Record]:
    """Read a distribution notification envelope.

    Raises:
        Rejected: ``malformed_json`` when the body is not an envelope.
    """
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise Rejected("malformed_json", "not a notification envelope")
    records: list[Record] = []
    for event in body["events"]:
        if not isinstance(event, dict):
            records.append((None, Rejected("malformed_json", "an event is not an object")))
            continue
        result: Observation | Ignored | Rejected
        try:
            result = _distribution_event(event, region, source)
        except Rejected as exc:
            result = exc
        records.append((_str(event.get("id")), result))
    return records


def _distribution_event(
    event: dict[str, Any], region: str, source: str
) -> Observation | Ignored:
    target: dict[str, Any] = event["target"] if isinstance(event.get("target"), dict) else {}
    request: dict[str, Any] = event["request"] if isinstance(event.get("request"), dict) else {}
    if is_probe(_str(request.get("useragent"))):
        return PROBE_TRAFFIC
    action = event.get("action")
    repository = _str(target.get("repository"))
    tag, digest = _str(target.get("tag")), _str(target.get("digest"))
    manifest = _is_manifest(_str(target.get("mediaType")), tag)
    size = _int(target.get("size")) or _int(target.get("length"))
    sent = received = 0
    if action == "push":
        operation = "push_manifest" if manifest else "push_blob"
        sent = size
    elif action == "mount":
        operation = "push_blob"
    elif action == "pull":
        method = _str(request.get("method"))
        if manifest:
            operation = "pull_manifest"
        elif method == "HEAD":  # 2.8 notifies a blob HEAD as a pull
            operation = "check_blob"
        else:
            operation = "pull_blob"
        received = size if method != "HEAD" else 0
    elif action == "delete":
        if digest is None:
            return NOT_AN_OPERATION  # the tag removal that accompanies a manifest delete
        operation = "delete"
    else:
        return NOT_AN_OPERATION
    if repository is None:
        raise Rejected("missing_field", "target.repository")
    stamp = _str(event.get("timestamp"))
    if stamp is None:
        raise Rejected("missing_field", "timestamp")
    when = rfc3339(stamp)
    check_values(when, None, None, sent, received)
    return Observation(
        region, operation, source, True, None, 0.0, when,
        bytes_sent=sent, bytes_received=received, repository=repository,
        digest=digest if manifest or operation == "delete" else None,
        method=_str(request.get("method")),
        tag=tag if manifest else None, timed=False,
    )


_HARBOR_TYPES = {
    "PUSH_ARTIFACT": "push_manifest", "harbor.artifact.pushed": "push_manifest",
    "PULL_ARTIFACT": "pull_manifest", "harbor.artifact.pulled": "pull_manifest",
    "DELETE_ARTIFACT": "delete", "harbor.artifact.deleted": "delete",
}


def harbor_records(raw: bytes, body: Any, region: str, source: str) -> list[Record]:
    """Read a Harbor webhook (Default or CloudEvents payload).

    Raises:
        Rejected: ``malformed_json``/``missing_field``/``bad_value`` when it is not one.
    """
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise Rejected("malformed_json", "not a Harbor webhook payload")
    cloud = "specversion" in body
    if cloud:
        event_id = _str(body.get("id"))
        data = body.get("data")
        stamp = _str(body.get("time"))
        when = rfc3339(stamp) if stamp else None
    else:
        event_id = "sha256:" + hashlib.sha256(raw).hexdigest()
        data = body.get("event_data")
        occur = body.get("occur_at")
        when = None
        if isinstance(occur, int | float) and not isinstance(occur, bool):
            try:
                when = float(occur)
            except OverflowError:
                raise Rejected("bad_value", "occur_at") from None
    operation = _HARBOR_TYPES.get(body["type"])
    if operation is None:
        return [(event_id, NOT_AN_OPERATION)]
    if not isinstance(data, dict):
        raise Rejected("missing_field", "data" if cloud else "event_data")
    if when is None:
        raise Rejected("missing_field", "time" if cloud else "occur_at")
    repo = data.get("repository")
    repository = _str(repo.get("repo_full_name")) if isinstance(repo, dict) else None
    if repository is None:
        raise Rejected("missing_field", "repository.repo_full_name")
    resources = data.get("resources")
    if not isinstance(resources, list) or not resources:
        raise Rejected("missing_field", "resources")
    check_values(when, None, None, 0, 0)
    records: list[Record] = []
    for i, resource in enumerate(resources):
        if not isinstance(resource, dict):
            raise Rejected("bad_value", "resources")
        digest = _str(resource.get("digest"))
        tag = _str(resource.get("tag"))
        if tag is not None and tag == digest:  # pulled or pushed by digest
            tag = None
        observation = Observation(
            region, operation, source, True, None, 0.0, when, repository=repository,
            digest=digest, tag=tag, timed=False,
        )
        records.append((f"{event_id}#{i}" if event_id else None, observation))
    return records
