"""The OCI client against a hostile registry (tests/harness/hostile.py): every answer is
read within a bound, malformed answers are ``protocol`` failures with a message, and
credentials do not go to a plain-HTTP token realm on another host.

Each case runs the client in a fresh Python process and reads that process's peak RSS
(``VmHWM`` in /proc/self/status: ``ru_maxrss`` would carry the test runner's peak across
``exec``), so a test sees the memory the case itself took. Before these bounds an
endless chunked ``/v2/`` took 2.7 GB within a 10 s timeout, a 500 MB ``/v2/`` body 1.2 GB
(and the auth probe reported success), a 100 MB token answer 1.2 GB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pytest
from harness.hostile import (
    HostileRegistry,
    Responder,
    chunked_forever,
    json_answer,
    raw_answer,
    sized_answer,
)

PEAK_RSS_MB = 250
"""The most a case may take (a bare client process is about 60 MB)."""

_RUN = r"""
import asyncio, json, sys
from registry_slo.oci import Credentials, RegistryClient, RegistryError
url, action, user = sys.argv[1], sys.argv[2], sys.argv[3]
async def main():
    creds = Credentials(user, "s3cret") if user else None
    async with RegistryClient(url, credentials=creds, timeout=10) as client:
        try:
            if action == "ping":
                await client.ping()
            elif action == "manifest":
                (await client.get_manifest("team/app", "v1")).json()
            return {"reason": None}
        except RegistryError as exc:
            return {"reason": str(exc.reason), "message": str(exc)}
out = asyncio.run(main())
# VmHWM: this process's own peak (ru_maxrss would carry the parent's across exec).
status = open("/proc/self/status").read()
out["maxrss_mb"] = int(status.split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps(out))
"""


def _client(url: str, action: str, user: str = "") -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _RUN, url, action, user],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["maxrss_mb"] < PEAK_RSS_MB, result
    return result


def _bearer(realm: str, then: Responder) -> Responder:
    """``/v2/``: a Bearer challenge naming ``realm`` until a token is presented."""
    challenge = raw_answer(
        b"HTTP/1.1 401 X\r\nContent-Length: 0\r\n"
        + f'WWW-Authenticate: Bearer realm="{realm}",service="hostile"\r\n'.encode())

    def respond(request: Any, out: Any) -> None:
        if request.headers.get("authorization", "").startswith("Bearer "):
            then(request, out)
        else:
            challenge(request, out)

    return respond


OK = json_answer(200, b"{}")


@pytest.mark.parametrize(("case", "routes", "message"), [
    ("an endless chunked /v2/", {"/v2/": chunked_forever()}, "larger than 1048576 bytes"),
    ("a 200 MB /v2/ body", {"/v2/": sized_answer(200, 200 << 20)}, "larger than"),
    ("a 200 MB error body", {"/v2/": sized_answer(500, 200 << 20)}, "larger than"),
    ("a 1 MB WWW-Authenticate header", {"/v2/": raw_answer(
        b"HTTP/1.1 401 X\r\nContent-Length: 0\r\nWWW-Authenticate: Bearer realm=\""
        + b"x" * (1 << 20) + b"\"\r\n")}, "malformed HTTP answer"),
])
def test_oversized_answers_are_protocol_failures_in_bounded_memory(
    case: str, routes: Mapping[str, Responder], message: str
) -> None:
    with HostileRegistry(routes) as hostile:
        result = _client(hostile.url, "ping")
    assert result["reason"] == "protocol", (case, result)
    assert message in result["message"], (case, result)


def test_a_100mb_token_answer_is_a_protocol_failure_in_bounded_memory() -> None:
    with HostileRegistry({}) as hostile:
        hostile.routes = {"/v2/": _bearer(f"{hostile.url}/token", OK),
                          "/token": sized_answer(200, 100 << 20)}
        result = _client(hostile.url, "ping")
    assert result["reason"] == "protocol" and "larger than" in result["message"], result


@pytest.mark.parametrize("expires_in", [-1, "NaN", 1e300, 0])
def test_an_unusable_token_lifetime_falls_back_to_the_default(expires_in: object) -> None:
    token = json.dumps({"token": "t", "expires_in": expires_in}).encode()
    with HostileRegistry({}) as hostile:
        hostile.routes = {"/v2/": _bearer(f"{hostile.url}/token", OK),
                          "/token": json_answer(200, token)}
        result = _client(hostile.url, "ping")
    assert result["reason"] is None, result


def test_a_manifest_nested_100k_deep_is_a_protocol_failure() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    routes = {"/v2/": OK, "/v2/team/app/manifests/v1": json_answer(
        200, deep, {"Docker-Content-Digest": "sha256:" + "0" * 64})}
    with HostileRegistry(routes) as hostile:
        result = _client(hostile.url, "manifest")
    # The digest header does not match the body: refused before parsing, as it should be.
    assert result["reason"] in ("digest_mismatch", "protocol"), result
    routes = {"/v2/": OK, "/v2/team/app/manifests/v1": json_answer(200, deep)}
    with HostileRegistry(routes) as hostile:
        result = _client(hostile.url, "manifest")
    assert result["reason"] == "protocol" and "nested too deeply" in result["message"], result


@pytest.mark.parametrize(("realm_host", "sent"), [("localhost", False), ("127.0.0.1", True)])
def test_credentials_go_to_a_plain_http_realm_only_on_the_registry_host(
    realm_host: str, sent: bool
) -> None:
    with HostileRegistry({}) as hostile:
        realm = f"http://{realm_host}:{hostile.port}/token"
        hostile.routes = {"/v2/": _bearer(realm, OK),
                          "/token": json_answer(200, b'{"token": "t"}')}
        result = _client(hostile.url, "ping", user="prober")
        asked = [r for r in hostile.received if r.path == "/token"]
    assert result["reason"] is None, result
    assert asked and all(("authorization" in r.headers) is sent for r in asked)
    assert all(("account=prober" in r.target) is sent for r in asked)
