"""Fuzz targets for what a registry answers: ``Date`` and ``WWW-Authenticate`` headers,
``Link`` pagination with tag lists, token JSON, manifests (through the pull probe's own
reading of them) and heartbeat annotations.

The client-level targets talk HTTP over loopback to the hostile registry of
``tests/harness/hostile.py``, answering each request as the drawn example says. Whatever
arrives, the client returns a value or raises a :class:`RegistryError` (which the probes
count under its reason): never another exception, never a hang, never a request to a host
other than the registry's. ``scripts/fuzz.sh`` runs 100,000 examples per target.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any, BinaryIO

import pytest
from harness.fuzzing import fuzz_settings
from harness.hostile import HostileRegistry, Request, Responder, json_answer, raw_answer
from hypothesis import example, given
from hypothesis import strategies as st

from registry_slo.oci import (
    ClockOffset,
    Credentials,
    RegistryClient,
    RegistryError,
    parse_www_authenticate,
    sha256_digest,
)
from registry_slo.probes.heartbeat import TIME_ANNOTATION, read_heartbeat
from registry_slo.probes.pull import pull_and_verify

pytestmark = pytest.mark.fuzz

HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)
"""What can be a header value on the wire (printable ASCII)."""

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12,
)


def _dates() -> st.SearchStrategy[str]:
    """``Date`` values: well-formed ones of any year, near-misses, and noise."""
    well_formed = st.datetimes(timezones=st.just(UTC)).map(
        lambda d: email.utils.format_datetime(d, usegmt=True))
    fields = st.tuples(
        st.sampled_from(["Mon", "Tue", "Xyz", ""]), st.integers(-5, 99),
        st.sampled_from(["Jan", "Feb", "Dec", "Foo"]), st.integers(-1, 100000),
        st.integers(-1, 99), st.integers(-1, 99), st.integers(-1, 99),
        st.sampled_from(["GMT", "UTC", "+0000", "-2359", "+9999", "EST", ""]),
    ).map(lambda f: f"{f[0]}, {f[1]:02d} {f[2]} {f[3]} {f[4]:02d}:{f[5]:02d}:{f[6]:02d} {f[7]}")
    return well_formed | fields | HEADER_TEXT


@fuzz_settings()
@given(header=_dates(), sent=st.floats(0, 4e9), rtt=st.floats(0, 60))
def test_date_headers_never_break_the_clock_estimate(header: str, sent: float,
                                                     rtt: float) -> None:
    clock = ClockOffset()
    clock.observe(header, sent, sent + rtt)
    clock.observe(header, sent + 1, sent + 1 + rtt)
    if clock.known:
        assert math.isfinite(clock.low)
        assert math.isfinite(clock.high)
        assert clock.low <= clock.high


def _challenges() -> st.SearchStrategy[str]:
    token = st.text(st.sampled_from("abcAZ09-._~+/"), min_size=1, max_size=10)
    quoted = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20).map(
        lambda v: '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"')
    param = st.tuples(token, token | quoted).map(lambda kv: f"{kv[0]}={kv[1]}")
    challenge = st.tuples(st.sampled_from(["Bearer", "Basic", "bearer", "X"]),
                          st.lists(param, max_size=4)).map(
        lambda c: f"{c[0]} {', '.join(c[1])}".strip())
    return st.lists(challenge, min_size=1, max_size=3).map(", ".join) | HEADER_TEXT


@fuzz_settings()
@given(header=_challenges())
def test_www_authenticate_is_parsed_or_ignored(header: str) -> None:
    for challenge in parse_www_authenticate(header):
        assert challenge.scheme == challenge.scheme.lower()
        assert all(isinstance(v, str) for v in challenge.params.values())


class _Script:
    """The hostile registry's answers for the current example: the first route whose
    path fragment is in the request path answers."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, Callable[[Request, BinaryIO], None]]] = []

    def __call__(self, request: Request, out: BinaryIO) -> None:
        for fragment, respond in self.routes:
            if fragment in request.path:
                respond(request, out)
                return
        out.write(b"HTTP/1.1 404 X\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[HostileRegistry, _Script, asyncio.AbstractEventLoop]]:
    script = _Script()
    loop = asyncio.new_event_loop()
    with HostileRegistry({"*": script}) as registry:
        yield registry, script, loop
    loop.close()


def _run(loop: asyncio.AbstractEventLoop, url: str, work: Any) -> object:
    """``work(client)`` against ``url``: its value, or the RegistryError it raised."""

    async def main() -> object:
        async with RegistryClient(url, credentials=Credentials("prober", "s3cret"),
                                  timeout=5) as client:
            try:
                return await asyncio.wait_for(work(client), 30)
            except RegistryError as exc:
                return exc

    return loop.run_until_complete(main())


def _links() -> st.SearchStrategy[str]:
    target = st.sampled_from([
        "/v2/team/app/tags/list?n=2&last=b", "/v2/team/app/tags/list", "?last=%ff",
        "http://127.0.0.1:1/v2/x", "//elsewhere.example/v2/x", "", "/../../etc",
    ]) | HEADER_TEXT
    return st.tuples(target, st.sampled_from(['rel="next"', "rel=next", 'rel="prev"', ""])
                     ).map(lambda t: f"<{t[0]}>; {t[1]}") | HEADER_TEXT


@fuzz_settings()
@given(link=st.none() | _links(), body=JSON | st.binary(max_size=50).map(repr))
def test_tag_pages_with_any_link_header(
    hostile: tuple[HostileRegistry, _Script, asyncio.AbstractEventLoop],
    link: str | None, body: object,
) -> None:
    registry, script, loop = hostile
    headers = {"Link": link} if link is not None else {}
    encoded = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
    script.routes = [("/tags/list", json_answer(200, encoded, headers)),
                     ("/v2/", json_answer(200, b"{}"))]
    before = len(registry.received)
    result = _run(loop, registry.url, lambda c: c.list_tags("team/app"))
    if not isinstance(result, RegistryError):
        assert isinstance(result, list)
        assert all(isinstance(tag, str) for tag in result)
    # A self-referring Link may be followed, but only within the page bound.
    assert len(registry.received) - before <= 1 + RegistryClient.MAX_TAG_PAGES


@fuzz_settings()
@given(answer=JSON, status=st.sampled_from([200, 200, 200, 401, 500]))
def test_token_answers_of_any_shape(
    hostile: tuple[HostileRegistry, _Script, asyncio.AbstractEventLoop],
    answer: object, status: int,
) -> None:
    registry, script, loop = hostile
    challenge = (f'WWW-Authenticate: Bearer realm="{registry.url}/token",'
                 'service="hostile"\r\n').encode()
    script.routes = [
        ("/token", json_answer(status, json.dumps(answer).encode())),
        ("/v2/", raw_answer(b"HTTP/1.1 401 X\r\nContent-Length: 0\r\n" + challenge)),
    ]
    result = _run(loop, registry.url, lambda c: c.authenticate("team/app"))
    if not isinstance(result, RegistryError):
        assert isinstance(result, float)


def _manifests() -> st.SearchStrategy[object]:
    descriptor = st.fixed_dictionaries({}, optional={
        "digest": st.sampled_from(["sha256:" + "a" * 64, "sha256:zz", "../x", "", 5]) | JSON,
        "size": st.integers(-2, 10**30) | st.floats() | st.text(max_size=5),
        "mediaType": st.text(max_size=10),
    })
    shaped = st.fixed_dictionaries({}, optional={
        "schemaVersion": st.integers(0, 3),
        "mediaType": st.sampled_from([
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json", ""]),
        "config": descriptor | JSON,
        "layers": st.lists(descriptor, max_size=3) | JSON,
        "manifests": st.lists(descriptor, max_size=2) | JSON,
        "annotations": st.dictionaries(
            st.sampled_from([TIME_ANNOTATION, "other"]),
            st.sampled_from(["2026-12-04T08:00:00Z", "0001-01-01T00:00:00",
                             "9999-12-31T23:59:59+14:00", "now"]) | st.text(max_size=30)),
    })
    return shaped | JSON


@fuzz_settings()
@given(document=_manifests(), blob=st.binary(max_size=20))
# Found by this target: an infinite size crashed the pull probe outside its error handling.
@example(document={"config": {"digest": "sha256:" + "a" * 64, "size": math.inf}}, blob=b"")
def test_pulling_a_manifest_of_any_shape(
    hostile: tuple[HostileRegistry, _Script, asyncio.AbstractEventLoop],
    document: object, blob: bytes,
) -> None:
    registry, script, loop = hostile
    body = json.dumps(document).encode()
    headers = {"Docker-Content-Digest": sha256_digest(body),
               "Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    script.routes = [("/manifests/", json_answer(200, body, headers)),
                     ("/blobs/", json_answer(200, blob)),
                     ("/v2/", json_answer(200, b"{}"))]
    result = _run(loop, registry.url, lambda c: pull_and_verify(c, "team/app", "canary"))
    if not isinstance(result, RegistryError):
        assert result == sha256_digest(body)
    if isinstance(document, dict):
        try:
            written, writer = read_heartbeat(document)
        except RegistryError:
            pass
        else:
            assert math.isfinite(written)
            assert isinstance(writer, str)


def _list_tags(page: Responder) -> tuple[object, list[Request]]:
    """``list_tags`` against a registry answering every tags page with ``page``: the
    result, and the requests the registry received."""
    script = _Script()
    script.routes = [("/tags/list", page)]
    with HostileRegistry({"*": script}) as registry:
        loop = asyncio.new_event_loop()
        try:
            result = _run(loop, registry.url, lambda c: c.list_tags("team/app"))
        finally:
            loop.close()
    return result, registry.received


def test_a_link_to_another_host_is_not_followed() -> None:
    """A ``Link`` naming another host would carry the registry's credentials there:
    refused, and nothing is sent to it."""
    with HostileRegistry({"*": json_answer(200, b'{"tags": []}')}) as elsewhere:
        link = f'<{elsewhere.url}/v2/team/app/tags/list?last=a>; rel="next"'
        result, _ = _list_tags(json_answer(200, b'{"tags": ["a"]}', {"Link": link}))
        assert isinstance(result, RegistryError)
        assert "another host" in str(result)
        assert elsewhere.received == []


def test_an_endless_chain_of_pages_stops_at_the_bound() -> None:
    result, received = _list_tags(json_answer(
        200, b'{"tags": ["a"]}', {"Link": '</v2/team/app/tags/list?n=1&last=a>; rel="next"'}))
    assert isinstance(result, RegistryError)
    assert "pages" in str(result)
    assert len(received) <= RegistryClient.MAX_TAG_PAGES + 1
