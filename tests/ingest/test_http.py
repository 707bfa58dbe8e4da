"""Operations from method + path, outcomes from status, Go durations, timestamps."""

from __future__ import annotations

import calendar

import pytest

from registry_slo.ingest.formats import (
    PROBE_AGENT_PREFIX,
    Rejected,
    classify,
    go_duration,
    is_probe,
    outcome,
    rfc3339,
    split_reference,
)
from registry_slo.oci import USER_AGENT, Reason

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("method", "uri", "expected"),
    [
        ("GET", "/v2/", ("auth", None, None)),
        ("GET", "/v2", ("auth", None, None)),
        ("GET", "/v2/_catalog?n=100", ("catalog", None, None)),
        ("GET", "/v2/team/app/tags/list?n=10", ("tags_list", "team/app", None)),
        ("GET", "/v2/team/app/manifests/v1", ("pull_manifest", "team/app", "v1")),
        ("HEAD", f"/v2/a/b/c/manifests/{D}", ("pull_manifest", "a/b/c", D)),
        ("PUT", "/v2/team/app/manifests/latest", ("push_manifest", "team/app", "latest")),
        ("DELETE", f"/v2/team/app/manifests/{D}", ("delete", "team/app", D)),
        ("GET", f"/v2/team/app/blobs/{D}", ("pull_blob", "team/app", D)),
        ("HEAD", f"/v2/team/app/blobs/{D}", ("check_blob", "team/app", D)),
        ("DELETE", f"/v2/team/app/blobs/{D}", ("delete", "team/app", D)),
        ("POST", "/v2/team/app/blobs/uploads/", ("push_blob", "team/app", None)),
        ("POST", f"/v2/team/app/blobs/uploads/?mount={D}&from=x/y",
         ("push_blob", "team/app", None)),
        ("PATCH", "/v2/team/app/blobs/uploads/4b1c?_state=x", ("push_blob", "team/app", None)),
        ("PUT", f"/v2/team/app/blobs/uploads/4b1c?_state=x&digest={D}",
         ("push_blob", "team/app", None)),
        ("DELETE", "/v2/team/app/blobs/uploads/4b1c", ("push_blob", "team/app", None)),
        # a repository whose name contains a route word
        ("GET", "/v2/manifests/blobs/manifests/v2", ("pull_manifest", "manifests/blobs", "v2")),
        ("POST", "/v2/team/app/manifests/v1", ("other", "team/app", "v1")),
        ("GET", "/v2/team/app/referrers/" + D, ("other", None, None)),
        ("GET", "/", None),
        ("GET", "/debug/vars", None),
        ("GET", "/v2x/", None),
    ],
)
def test_classify(method: str, uri: str, expected: object) -> None:
    assert classify(method, uri) == expected


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (200, None, (True, None)),
        (202, None, (True, None)),
        (307, None, (True, None)),
        (401, None, (False, Reason.AUTH)),
        (403, None, (False, Reason.DENIED)),
        (404, "manifest unknown", (False, Reason.NOT_FOUND)),
        (408, None, (False, Reason.TIMEOUT)),
        (429, None, (False, Reason.RATE_LIMITED)),
        (500, "unknown", (False, Reason.SERVER_ERROR)),
        (503, None, (False, Reason.SERVER_ERROR)),
        (400, "digest invalid", (False, Reason.DIGEST_MISMATCH)),
        (400, "DIGEST_INVALID", (False, Reason.DIGEST_MISMATCH)),
        (400, "blob unknown", (False, Reason.NOT_FOUND)),
        (400, "manifest blob unknown", (False, Reason.PROTOCOL)),
        (405, None, (False, Reason.PROTOCOL)),
        (416, "range invalid", (False, Reason.PROTOCOL)),
    ],
)
def test_outcome(status: int, code: str | None, expected: object) -> None:
    assert outcome(status, code) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("12.917786ms", 0.012917786),
        ("850.5µs", 0.0008505),
        ("850.5μs", 0.0008505),  # Greek mu, as some Go versions print it
        ("850us", 0.00085),
        ("1.5s", 1.5),
        ("1m2.5s", 62.5),
        ("2h3m4s", 7384.0),
        ("123ns", 1.23e-7),
        ("0s", 0.0),
        ("0", 0.0),
    ],
)
def test_go_duration(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("text", ["", "ms", "12 ms", "1.2.3s", "5x", "abc", "-"])
def test_go_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(Rejected) as caught:
        go_duration(text)
    assert caught.value.reason == "bad_value"


def test_rfc3339_variants_agree() -> None:
    base = calendar.timegm((2026, 11, 27, 2, 59, 52, 0, 0, 0))
    assert rfc3339("2026-11-27T02:59:52Z") == base
    assert rfc3339("2026-11-27T02:59:52.429296439Z") == pytest.approx(base + 0.429296439)
    assert rfc3339("2026-11-27T02:59:52.5+00:00") == base + 0.5
    assert rfc3339("2026-11-27T04:59:52.5+02:00") == base + 0.5
    assert rfc3339("2026-11-27T01:29:52-0130") == base
    # the cached second is used for the next lines of the same second
    assert rfc3339("2026-11-27T02:59:52.25Z") == base + 0.25


@pytest.mark.parametrize("text", ["yesterday", "2026-13-40T00:00:00Z", "2026-11-27T02:59:52+2"])
def test_rfc3339_rejects_garbage(text: str) -> None:
    with pytest.raises(Rejected):
        rfc3339(text)


def test_probe_agent_is_any_registry_slo_version() -> None:
    assert USER_AGENT.startswith(PROBE_AGENT_PREFIX)
    assert is_probe(USER_AGENT)
    assert is_probe("registry-slo/9.9.9")
    assert not is_probe("skopeo/1.9.3")
    assert not is_probe(None)
    assert not is_probe("my-registry-slo/1")


def test_split_reference() -> None:
    assert split_reference("v1") == ("v1", None)
    assert split_reference(D) == (None, D)
    assert split_reference(None) == (None, None)


def test_cached_classify_always_agrees_with_the_rules() -> None:
    import random

    from registry_slo.ingest.formats import classify_uncached

    rng = random.Random(4)
    words = ["v2", "", "_catalog", "manifests", "blobs", "uploads", "tags", "list", "a", "b",
             D, "latest", "uploadsX", "referrers", "x.y", "v2x"]
    methods = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"]
    checked = 0
    for _ in range(20000):
        parts = [rng.choice(words) for _ in range(rng.randint(0, 6))]
        uri = "/" + "/".join(parts) + rng.choice(["", "/", "?x=1", "/?y"])
        if rng.random() < 0.5:
            uri = "/v2/" + uri.lstrip("/")
        method = rng.choice(methods)
        assert classify(method, uri) == classify_uncached(method, uri), (method, uri)
        checked += classify(method, uri) is not None
    assert checked > 5000
