"""``harbor-audit``: Harbor's audit log as forwarded to a syslog endpoint.

Where the shape comes from (goharbor/harbor): ``src/pkg/auditext/manager.go`` (2.13+;
``src/pkg/audit`` before) writes each audit record, when
``audit_log_forward_endpoint`` is set, with::

    LogMgr.DefaultLogger(ctx).WithField("operator", audit.Username).
        WithField("time", audit.OpTime).WithField("resourceType", audit.ResourceType).
        Infof("action:%s, resource:%s", audit.Operation, audit.Resource)

through Harbor's ``TextFormatter`` (``src/lib/log/textformatter.go``: ``"%s [%s] "``
time and level, then the caller ``[file:line]`` and the fields sorted by key as
``[k="v" …]``, a ``:``, a space and the message) to a syslog writer tagged ``audit``.
A line as a syslog server stores it::

    Jan  5 08:00:01 harbor-core audit[1]: 2026-01-05T08:00:01Z [INFO] \
[/pkg/auditext/manager.go:79][operator="ci-bot" resourceType="artifact" \
time="2026-01-05 08:00:01 +0000 UTC"]: action:create, resource:team/app:v1

Artifact records (``src/controller/event/topic.go``): ``create`` is a push, ``pull``
a pull, ``delete`` a delete; the resource is ``repository:tag`` (the first tag) or
``repository:sha256:…`` when there was no tag. Harbor records only operations that
succeeded, with no duration, status or user agent: probe traffic cannot be told apart
(give the probes their own Harbor project and leave it out with a repository filter).
"""

from __future__ import annotations

import re
from typing import ClassVar

from registry_slo.ingest.formats._base import NOT_AN_OPERATION, Ignored, Rejected, SourceParser
from registry_slo.ingest.formats._http import rfc3339
from registry_slo.observation import Observation

__all__ = ["HarborAuditParser"]

_LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) "
    r"\[(?P<level>[A-Z]+)\] (?:\[[^\]]*\.go:\d+\])?\[(?P<fields>[^\]]*)\]: ?"
    r"action:(?P<action>[^,]*), resource:(?P<resource>\S*)"
)
_FIELD = re.compile(r'(\w+)="([^"]*)"')
# (resourceType, operation) → our operation
_OPERATIONS = {
    ("artifact", "create"): "push_manifest",
    ("artifact", "pull"): "pull_manifest",
    ("artifact", "delete"): "delete",
    ("tag", "delete"): "delete",
    ("repository", "delete"): "delete",
}


def split_resource(resource: str) -> tuple[str, str | None, str | None]:
    """``(repository, tag, digest)`` of a Harbor audit resource.

    ``team/app:v1`` → tag; ``team/app:sha256:…`` and ``team/app@sha256:…`` → digest;
    a bare name (repository records) has neither.
    """
    for marker in ("@sha256:", ":sha256:", "@sha512:", ":sha512:"):
        cut = resource.find(marker)
        if cut > 0:
            return resource[:cut], None, resource[cut + 1 :]
    name, sep, tag = resource.rpartition(":")
    if sep and name and "/" not in tag:
        return name, tag, None
    return resource, None, None


class HarborAuditParser(SourceParser):
    """Parser of Harbor's forwarded audit log (see the module docstring)."""

    format: ClassVar[str] = "harbor-audit"

    def parse(self, line: bytes) -> Observation | Ignored:
        """Read one line; see :class:`~registry_slo.ingest.formats.Parser`."""
        match = _LINE.search(line.decode())
        if match is None:
            raise Rejected("unknown_format", "not a Harbor audit line")
        fields = dict(_FIELD.findall(match.group("fields")))
        resource_type = fields.get("resourceType")
        if resource_type is None:
            raise Rejected("missing_field", "resourceType")
        operation = _OPERATIONS.get((resource_type, match.group("action").strip()))
        if operation is None:
            return NOT_AN_OPERATION
        repository, tag, digest = split_resource(match.group("resource"))
        if resource_type == "tag" and tag is None:
            raise Rejected("bad_value", "tag resource without a tag")
        return self._observe(
            (operation, repository, None), rfc3339(match.group("time")), tag=tag, digest=digest
        )
