"""The ``distribution`` format on what the real registry wrote (fixtures/), in all three
logrus formatters, and on bad input."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench.ingest_gen import generate
from registry_slo.ingest.formats import DistributionParser, Ignored, Rejected
from registry_slo.observation import Observation
from registry_slo.oci import Reason

from .conftest import FIXTURES


def parse_all(path: Path) -> list[Observation | Ignored | str]:
    parser = DistributionParser("r", "s")
    out: list[Observation | Ignored | str] = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(parser.parse(line))
        except Rejected as exc:
            out.append(exc.reason)
    return out


def summary(results: list[Observation | Ignored | str]) -> Counter[tuple[object, ...]]:
    counts: Counter[tuple[object, ...]] = Counter()
    for r in results:
        if isinstance(r, Observation):
            counts[(r.operation, r.method, r.status, r.reason, r.repository, r.tag,
                    r.timed)] += 1
        elif isinstance(r, Ignored):
            counts[("ignored", r.reason)] += 1
        else:
            counts[("rejected", r)] += 1
    return counts


# What the capture script's traffic is (fixtures/capture.py), as the JSON log tells it.
EXPECTED = Counter({
    ("ignored", "not_an_operation"): 22,  # start-up lines, "authorized request", ...
    ("ignored", "auth_challenge"): 5,     # one anonymous /v2/ per skopeo run + probe
    ("ignored", "probe_traffic"): 2,      # the exporter's own client: challenge + ping
    ("check_blob", "HEAD", 404, Reason.NOT_FOUND, "team/app", None, True): 2,
    ("push_blob", "POST", 202, None, "team/app", None, True): 2,
    ("push_blob", "PATCH", 202, None, "team/app", None, True): 2,
    ("push_blob", "PUT", 201, None, "team/app", None, True): 2,
    ("push_manifest", "PUT", 201, None, "team/app", "v1", True): 1,
    ("pull_manifest", "GET", 200, None, "team/app", "v1", True): 2,  # pull, delete
    ("pull_blob", "GET", 200, None, "team/app", None, True): 2,
    ("pull_manifest", "GET", 401, Reason.AUTH, "team/app", "v1", False): 1,  # wrong pw
    ("pull_manifest", "GET", 404, Reason.NOT_FOUND, "team/app", "nope", True): 1,
    ("tags_list", "GET", 200, None, "team/app", None, True): 1,
    ("catalog", "GET", 200, None, None, None, True): 1,
    ("delete", "DELETE", 202, None, "team/app", None, True): 1,
})


@pytest.mark.parametrize("formatter", ["json", "text", "logstash"])
def test_real_registry_log_in_every_formatter(formatter: str) -> None:
    results = parse_all(FIXTURES / f"distribution-2.8.2.{formatter}.log")
    assert summary(results) == EXPECTED


def test_observation_fields_from_a_real_line() -> None:
    results = parse_all(FIXTURES / "distribution-2.8.2.json.log")
    pulls = [r for r in results if isinstance(r, Observation) and r.operation == "pull_blob"]
    first = pulls[0]
    assert first.region == "r" and first.source == "s" and first.success
    assert first.bytes_received > 0 and first.duration_seconds > 0
    assert first.time > 1.7e9
    deletes = [r for r in results if isinstance(r, Observation) and r.operation == "delete"]
    assert deletes[0].digest is None  # only manifest references become digests/tags
    manifests = [r for r in results if isinstance(r, Observation) and r.operation == "pull_manifest"
                 and r.status == 404]
    assert manifests[0].oci_code == "manifest unknown"


def test_formatters_agree_on_each_request() -> None:
    def key(r: Observation) -> tuple[object, ...]:
        return (r.operation, r.method, r.status, r.repository, r.bytes_received, r.timed)

    seqs = [
        [key(r) for r in parse_all(FIXTURES / f"distribution-2.8.2.{f}.log")
         if isinstance(r, Observation)]
        for f in ("json", "text", "logstash")
    ]
    assert seqs[0] == seqs[1] == seqs[2]


def _json_path(line: bytes) -> Observation | Ignored:
    """Parse without the fast path: the same line with one extra key defeats it."""
    fields = json.loads(line)
    fields["zz.extra"] = {"nested": True}
    return DistributionParser("r", "s").parse(json.dumps(fields).encode())


def test_fast_path_equals_json_path_on_real_and_generated_lines() -> None:
    lines = (FIXTURES / "distribution-2.8.2.json.log").read_bytes().splitlines()
    lines += [line.encode() for line in generate(3000, seed=7)]
    parser = DistributionParser("r", "s")
    compared = 0
    for line in lines:
        fast = parser.parse(line)
        slow = _json_path(line)
        assert fast == slow, line
        compared += isinstance(fast, Observation)
    assert compared > 1000


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"msg":"response completed","http.request.method":"GET"', "malformed_json"),
        (b'{"msg":"response completed", "oops"}', "malformed_json"),
        (b'{"msg":"response completed"}{"msg":"response completed"}', "malformed_json"),
        (b'["response completed"]', "unknown_format"),
        (b"plain text, response completed", "unknown_format"),
        (b'{"msg":"response completed","http.request.uri":"/v2/","time":"2026-01-01T00:00:00Z",'
         b'"http.response.duration":"1ms","http.response.status":200}', "missing_field"),
        (b'{"msg":"response completed","http.request.method":"GET","http.request.uri":"/v2/",'
         b'"time":"2026-01-01T00:00:00Z","http.response.duration":"soon",'
         b'"http.response.status":200}', "bad_value"),
        (b'{"msg":"response completed","http.request.method":"GET","http.request.uri":"/v2/",'
         b'"time":"2026-01-01T00:00:00Z","http.response.duration":"1ms",'
         b'"http.response.status":"ok"}', "bad_value"),
        (b'{"msg":"response completed","http.request.method":"GET","http.request.uri":"/v2/",'
         b'"time":"then","http.response.duration":"1ms","http.response.status":200}',
         "bad_value"),
        (b'{"msg":"response completed","http.request.method":"GET","http.request.uri":"/v2/",'
         b'"http.response.duration":"1ms","http.response.status":200}', "missing_field"),
    ],
)
def test_bad_lines_are_rejected_with_a_reason(line: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        DistributionParser("r", "s").parse(line)
    assert caught.value.reason == reason


def test_lines_that_are_not_operations() -> None:
    parser = DistributionParser("r", "s")
    assert parser.parse(b'{"msg":"authorized request","level":"info"}').reason == "not_an_operation"
    assert parser.parse(b'time="2026-01-01T00:00:00Z" level=info msg="redis not configured"'
                        ).reason == "not_an_operation"
    # A registry request outside /v2/ (the debug server shares the log)
    line = (b'{"http.request.method":"GET","http.request.uri":"/metrics",'
            b'"http.response.duration":"1ms","http.response.status":200,'
            b'"msg":"response completed","time":"2026-01-01T00:00:00Z"}')
    assert parser.parse(line).reason == "not_registry_api"


@pytest.mark.parametrize(
    ("why", "expected"),
    [
        ("authorization token required", "auth_challenge"),
        ('basic authentication challenge for realm \\"r\\": invalid authorization credential',
         "auth_challenge"),
        ("invalid token", Reason.AUTH),
        ('basic authentication challenge for realm \\"r\\": authentication failure', Reason.AUTH),
        ("insufficient scope", Reason.DENIED),
    ],
)
def test_authorization_errors(why: str, expected: object) -> None:
    line = ('{"http.request.method":"GET","http.request.uri":"/v2/team/app/manifests/v1",'
            '"http.request.useragent":"docker/24","level":"warning",'
            f'"msg":"error authorizing context: {why}","time":"2026-01-01T00:00:00Z"}}')
    result = DistributionParser("r", "s").parse(line.encode())
    if isinstance(expected, Reason):
        assert isinstance(result, Observation)
        assert (result.reason, result.status, result.timed) == (expected, 401, False)
    else:
        assert result == Ignored(str(expected))


def test_escaped_values_are_unescaped() -> None:
    line = (b'{"http.request.method":"PUT","http.request.uri":"/v2/a/blobs/uploads/u?_state=x'
            b'\\u0026digest=sha256%3Aab","http.request.useragent":"x \\"quoted\\"",'
            b'"http.response.duration":"1ms","http.response.status":201,'
            b'"http.response.written":0,"level":"info","msg":"response completed",'
            b'"time":"2026-01-01T00:00:00Z"}')
    result = DistributionParser("r", "s").parse(line)
    assert isinstance(result, Observation)
    assert (result.operation, result.repository) == ("push_blob", "a")


def test_a_nested_msg_key_does_not_hide_the_message() -> None:
    line = (b'{"err.detail":{"msg":"authorized request"},"http.request.method":"GET",'
            b'"http.request.uri":"/v2/a/manifests/v1","http.response.duration":"1ms",'
            b'"http.response.status":404,"msg":"response completed with error",'
            b'"time":"2026-01-01T00:00:00Z"}')
    result = DistributionParser("r", "s").parse(line)
    assert isinstance(result, Observation) and result.status == 404


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_a_head_answer_moves_no_body_bytes(method: str) -> None:
    # Go's server counts the error body a HEAD handler writes, but never sends it.
    line = (b'{"err.code":"blob unknown","http.request.method":"' + method.encode()
            + b'","http.request.uri":"/v2/a/blobs/sha256:' + b"0" * 64
            + b'","http.request.useragent":"x","http.response.duration":"1ms",'
            b'"http.response.status":404,"http.response.written":157,"level":"error",'
            b'"msg":"response completed with error","time":"2026-01-01T00:00:00Z"}')
    fast = DistributionParser("r", "s").parse(line)
    assert isinstance(fast, Observation)
    assert fast == _json_path(line)  # both paths agree
    assert fast.bytes_received == (0 if method == "HEAD" else 157)
