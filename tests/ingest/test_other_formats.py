"""``distribution-access`` (real fixture), ``harbor-audit`` and ``zot-audit`` (fixtures built
from their documented shapes), ``jsonl`` (mapping)."""

from __future__ import annotations

import calendar
from collections import Counter

import pytest

from registry_slo.config import JsonlMapping
from registry_slo.ingest.formats import (
    AccessLogParser,
    HarborAuditParser,
    Ignored,
    JsonlParser,
    Rejected,
    ZotAuditParser,
    make_parser,
)
from registry_slo.ingest.formats.harbor import split_resource
from registry_slo.observation import Observation
from registry_slo.oci import Reason

from .conftest import FIXTURES

D = "sha256:" + "cd" * 32


def test_access_log_of_the_real_registry() -> None:
    parser = AccessLogParser("r", "s")
    counts: Counter[tuple[object, ...]] = Counter()
    for line in (FIXTURES / "distribution-2.8.2.access.log").read_bytes().splitlines():
        result = parser.parse(line)
        if isinstance(result, Ignored):
            counts[("ignored", result.reason)] += 1
        else:
            counts[(result.operation, result.status)] += 1
            assert not result.timed
    # Same traffic as the JSON log, but every 401 is there (challenges included).
    assert counts == Counter({
        ("auth", 401): 5, ("ignored", "probe_traffic"): 2, ("check_blob", 404): 2,
        ("push_blob", 202): 4, ("push_blob", 201): 2, ("push_manifest", 201): 1,
        ("pull_manifest", 200): 2, ("pull_blob", 200): 2, ("pull_manifest", 401): 1,
        ("pull_manifest", 404): 1, ("tags_list", 200): 1, ("catalog", 200): 1,
        ("delete", 202): 1,
    })


def test_access_log_fields() -> None:
    line = (b'10.0.0.7 - - [27/Nov/2026:02:59:52 +0100] "GET /v2/team/app/blobs/' + D.encode()
            + b' HTTP/1.1" 200 1234 "" "containerd/1.7"')
    result = AccessLogParser("r", "s").parse(line)
    assert isinstance(result, Observation)
    assert result.bytes_received == 1234
    assert result.time == calendar.timegm((2026, 11, 27, 1, 59, 52, 0, 0, 0))
    minimal = b'10.0.0.7 - - [27/Nov/2026:02:59:52 +0000] "HEAD /v2/ HTTP/1.1" 200 -'
    assert AccessLogParser("r", "s").parse(minimal).bytes_received == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "line",
    [
        b"not an access log line",
        b'10.0.0.7 - - [27/Nov/2026:02:59:52 +0000] "GET /v2/" 200 5',
        b'10.0.0.7 - - [99/Foo/2026:02:59:52 +0000] "GET /v2/ HTTP/1.1" 200 5',
    ],
)
def test_access_log_rejects(line: bytes) -> None:
    with pytest.raises(Rejected):
        AccessLogParser("r", "s").parse(line)


# Harbor: the forwarded audit line (src/pkg/auditext/manager.go + src/lib/log), as an
# rsyslog file stores it; see registry_slo/ingest/formats/harbor.py.
def harbor(action: str, resource_type: str, resource: str, syslog: bool = True) -> bytes:
    prefix = "Jan  5 08:00:01 harbor-core audit[1]: " if syslog else ""
    return (f"{prefix}2026-01-05T08:00:01Z [INFO] [/pkg/auditext/manager.go:79]"
            f'[operator="ci-bot" resourceType="{resource_type}" '
            f'time="2026-01-05 08:00:01 +0000 UTC"]: action:{action}, resource:{resource}'
            ).encode()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (harbor("create", "artifact", "team/app:v1"), ("push_manifest", "team/app", "v1", None)),
        (harbor("create", "artifact", f"team/app:{D}"), ("push_manifest", "team/app", None, D)),
        (harbor("pull", "artifact", "library/nginx:latest", syslog=False),
         ("pull_manifest", "library/nginx", "latest", None)),
        (harbor("delete", "artifact", f"team/app:{D}"), ("delete", "team/app", None, D)),
        (harbor("delete", "tag", "team/app:old"), ("delete", "team/app", "old", None)),
        (harbor("delete", "repository", "team/app"), ("delete", "team/app", None, None)),
    ],
)
def test_harbor_audit(line: bytes, expected: tuple[object, ...]) -> None:
    result = HarborAuditParser("r", "s").parse(line)
    assert isinstance(result, Observation)
    assert (result.operation, result.repository, result.tag, result.digest) == expected
    assert result.success and not result.timed
    assert result.time == calendar.timegm((2026, 1, 5, 8, 0, 1, 0, 0, 0))


def test_harbor_audit_other_records_and_garbage() -> None:
    parser = HarborAuditParser("r", "s")
    assert parser.parse(harbor("create", "project", "team")).reason == "not_an_operation"  # type: ignore[union-attr]
    with pytest.raises(Rejected):
        parser.parse(b"Jan  5 08:00:01 harbor-core core[1]: something else")
    with pytest.raises(Rejected):
        parser.parse(b'2026-01-05T08:00:01Z [INFO] [x.go:1][operator="a"]: action:create, '
                     b"resource:team/app:v1")  # no resourceType


def test_harbor_resource_forms() -> None:
    assert split_resource("a/b:v1") == ("a/b", "v1", None)
    assert split_resource(f"a/b@{D}") == ("a/b", None, D)
    assert split_resource("a/b") == ("a/b", None, None)
    assert split_resource("registry:5000/a") == ("registry:5000/a", None, None)


# zot: SessionAuditLogger in pkg/api/session.go (zerolog JSON); see formats/zot.py.
ZOT = ('{"level":"info","component":"session","clientIP":"10.0.0.7:41234","subject":"ci-bot",'
       '"action":"%s","object":"%s","status":%d,"time":"2026-01-05T08:00:01.5Z",'
       '"message":"HTTP API Audit"}')


@pytest.mark.parametrize(
    ("action", "obj", "status", "expected"),
    [
        ("PUT", "/v2/team/app/manifests/v1", 201, ("push_manifest", "team/app", "v1")),
        ("POST", "/v2/team/app/blobs/uploads/", 202, ("push_blob", "team/app", None)),
        ("PATCH", "/v2/team/app/blobs/uploads/1?x=y", 202, ("push_blob", "team/app", None)),
        ("DELETE", f"/v2/team/app/manifests/{D}", 202, ("delete", "team/app", None)),
    ],
)
def test_zot_audit(action: str, obj: str, status: int, expected: tuple[object, ...]) -> None:
    result = ZotAuditParser("r", "s").parse((ZOT % (action, obj, status)).encode())
    assert isinstance(result, Observation)
    assert (result.operation, result.repository, result.tag) == expected
    assert result.success and result.status == status and result.method == action
    assert result.time == calendar.timegm((2026, 1, 5, 8, 0, 1, 0, 0, 0)) + 0.5


def test_zot_older_shape_and_other_lines() -> None:
    parser = ZotAuditParser("r", "s")
    old = (b'{"level":"info","clientIP":"1.2.3.4:5","subject":"","action":"PUT",'
           b'"object":"/v2/a/manifests/v1","status":201,"time":"2026-01-05T08:00:01Z",'
           b'"message":"HTTP API Audit"}')
    assert isinstance(parser.parse(old), Observation)
    assert parser.parse(b'{"level":"info","message":"HTTP API"}') == Ignored("not_an_operation")
    text_status = (ZOT % ("PUT", "/v2/a/manifests/v", 201)).replace('"status":201', '"status":"x"')
    for bad, reason in [(b"{nope", "malformed_json"), (b"[1]", "malformed_json"),
                        (text_status.encode(), "bad_value"),
                        (b'{"message":"HTTP API Audit","action":"PUT"}', "missing_field")]:
        with pytest.raises(Rejected) as caught:
            parser.parse(bad)
        assert caught.value.reason == reason


def test_jsonl_with_method_and_path() -> None:
    mapping = JsonlMapping(method="req.method", path="req.path", status="res.status",
                           duration="res.ms", duration_unit="ms", time="ts",
                           user_agent="req.ua", bytes_received="res.bytes")
    parser = make_parser("jsonl", "r", "s", mapping)
    line = (b'{"ts":"2026-01-05T08:00:01Z","req":{"method":"get","path":"/v2/a/blobs/' + D.encode()
            + b'","ua":"docker/24"},"res":{"status":200,"ms":12.5,"bytes":99}}')
    result = parser.parse(line)
    assert isinstance(result, Observation)
    assert (result.operation, result.method, result.repository) == ("pull_blob", "GET", "a")
    assert result.duration_seconds == pytest.approx(0.0125) and result.timed
    assert result.bytes_received == 99
    probe = line.replace(b"docker/24", b"registry-slo/0.1.0")
    assert parser.parse(probe) == Ignored("probe_traffic")


def test_jsonl_with_operation_tag_and_digest() -> None:
    mapping = JsonlMapping(operation="event", operations={"image.push": "push_manifest"},
                           success="ok", repository="repo", tag="tag", digest="digest",
                           time="at", time_format="unix_ms")
    parser = JsonlParser("r", "s", mapping)
    result = parser.parse(f'{{"event":"image.push","ok":true,"repo":"a","tag":"v1",'
                          f'"digest":"{D}","at":1767600001500}}'.encode())
    assert isinstance(result, Observation)
    assert (result.operation, result.tag, result.digest) == ("push_manifest", "v1", D)
    assert result.time == 1767600001.5 and not result.timed
    failed = parser.parse(b'{"event":"pull","ok":false,"repo":"a","at":1767600002000}')
    assert isinstance(failed, Observation)
    assert (failed.operation, failed.success, failed.reason) == ("other", False, Reason.PROTOCOL)
    for bad in (b'{"ok":true}', b'{"event":"x","ok":"yes"}', b'{"event":"x","ok":true,"at":"s"}'):
        with pytest.raises(Rejected):
            parser.parse(bad)


def test_jsonl_mapping_is_validated() -> None:
    with pytest.raises(ValueError, match="operation"):
        JsonlMapping(status="s")
    with pytest.raises(ValueError, match="status or success"):
        JsonlMapping(operation="op")
    with pytest.raises(ValueError, match="unknown operation"):
        JsonlMapping(operation="op", success="ok", operations={"x": "teleport"})
