"""What a web configuration file asks of a listener, served by real uvicorn on loopback
with real TLS (``registry_slo._serving``): HTTPS and client certificates, Basic users
checked in constant bcrypt time, headers on every answer, the rate limit, and the
request-head timeout that ends slowloris connections."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import bcrypt
import httpx
import pytest
import trustme
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from registry_slo import _serving
from registry_slo._serving import (
    BasicUsers,
    QuietServer,
    RateLimit,
    TLSServer,
    WebProtection,
    bounded_server,
)
from registry_slo.devenv import free_port


async def _ok(_: object) -> PlainTextResponse:
    return PlainTextResponse("ok\n")


@contextlib.asynccontextmanager
async def _serving_app(protection: WebProtection | None) -> AsyncIterator[str]:
    port = free_port()
    server: QuietServer = bounded_server(
        Starlette(routes=[Route("/", _ok)]), "127.0.0.1", port, 16, protection)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done()
            await asyncio.sleep(0.01)
        scheme = protection.scheme if protection is not None else "http"
        yield f"{scheme}://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving


class _PKI:
    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(self.ca_file)
        server = self.ca.issue_cert("127.0.0.1")
        self.cert_file, self.key_file = directory / "server.pem", directory / "server.key"
        server.cert_chain_pems[0].write_to_path(self.cert_file)
        server.private_key_pem.write_to_path(self.key_file)
        self.client = self.ca.issue_cert("prometheus@example.com")
        self.stranger = trustme.CA().issue_cert("prometheus@example.com")

    def tls(self, client_auth: ssl.VerifyMode = ssl.CERT_NONE) -> TLSServer:
        return TLSServer(self.cert_file, self.key_file,
                         self.ca_file if client_auth != ssl.CERT_NONE else None, client_auth)

    def client_context(self, cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if cert is not None:
            cert.configure_cert(context)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> _PKI:
    return _PKI(tmp_path_factory.mktemp("pki"))


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_https_with_the_configured_certificate(pki: _PKI) -> None:
    async with _serving_app(WebProtection(tls=pki.tls())) as url:
        assert url.startswith("https://")
        async with httpx.AsyncClient(verify=pki.client_context()) as client:
            assert (await client.get(url)).status_code == 200
        async with httpx.AsyncClient(verify=ssl.create_default_context()) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(url)
        # Plain HTTP to the TLS port gets no answer.
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(url.replace("https://", "http://"))


async def test_mutual_tls_requires_a_certificate_from_the_client_ca(pki: _PKI) -> None:
    async with _serving_app(WebProtection(tls=pki.tls(ssl.CERT_REQUIRED))) as url:
        async with httpx.AsyncClient(verify=pki.client_context(pki.client)) as client:
            assert (await client.get(url)).status_code == 200
        for cert in (None, pki.stranger):  # none, or one from another CA
            async with httpx.AsyncClient(verify=pki.client_context(cert)) as client:
                with pytest.raises(httpx.HTTPError):
                    await client.get(url)


async def test_optional_client_certificates_are_verified_when_given(pki: _PKI) -> None:
    async with _serving_app(WebProtection(tls=pki.tls(ssl.CERT_OPTIONAL))) as url:
        for cert in (None, pki.client):
            async with httpx.AsyncClient(verify=pki.client_context(cert)) as client:
                assert (await client.get(url)).status_code == 200
        async with httpx.AsyncClient(verify=pki.client_context(pki.stranger)) as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(url)


async def test_basic_users_headers_on_every_answer() -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4))
    protection = WebProtection(
        users={"prometheus": hashed},
        headers={"X-Frame-Options": "deny", "Strict-Transport-Security": "max-age=3600"},
    )
    async with _serving_app(protection) as url, httpx.AsyncClient() as client:
        allowed = await client.get(url, headers=_basic("prometheus", "s3cret"))
        assert allowed.status_code == 200
        assert allowed.text == "ok\n"
        for headers in ({}, _basic("prometheus", "wrong"), _basic("nobody", "s3cret"),
                        {"Authorization": "Basic !!!"}, {"Authorization": "Bearer s3cret"},
                        _basic("prometheus", "s3cret" + "x" * 100)):
            refused = await client.get(url, headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"].startswith("Basic ")
            assert "s3cret" not in refused.text
        for answer in (allowed, refused):
            assert answer.headers["x-frame-options"] == "deny"
            assert answer.headers["strict-transport-security"] == "max-age=3600"


def test_unknown_users_cost_as_much_bcrypt_time_as_known_ones() -> None:
    """Timing must not tell which user names exist: an unknown name spends a bcrypt check
    of the highest cost in use. Compared as a ratio in one run (a cached success costs
    microseconds; a bcrypt check at cost 10 tens of milliseconds)."""
    users = BasicUsers({"alice": bcrypt.hashpw(b"right", bcrypt.gensalt(10))})

    def median_seconds(user: str, password: bytes) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            users.check_now(user, password)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    known_wrong = median_seconds("alice", b"wrong")
    unknown = median_seconds("mallory", b"wrong")
    assert users.check_now("alice", b"right")
    cached = median_seconds("alice", b"right")
    assert unknown > 0.5 * known_wrong, (unknown, known_wrong)
    assert cached < 0.1 * known_wrong, (cached, known_wrong)


async def test_the_rate_limit_answers_429_beyond_the_burst() -> None:
    protection = WebProtection(rate_limit=RateLimit(interval=3600, burst=3),
                               headers={"X-Content-Type-Options": "nosniff"})
    async with _serving_app(protection) as url, httpx.AsyncClient() as client:
        codes = [(await client.get(url)).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        assert (await client.get(url)).headers["x-content-type-options"] == "nosniff"


async def test_a_request_head_not_finished_in_time_ends_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slowloris: a new connection that says nothing, one that drips a head a byte at a
    time (each byte would cancel uvicorn's keep-alive timer), and one that drips after a
    first answer are all closed :data:`HEAD_TIMEOUT` after they started waiting."""
    monkeypatch.setattr(_serving, "HEAD_TIMEOUT", 0.6)
    async with _serving_app(None) as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))

        async def closed_after(first: bytes, drip: bytes) -> float:
            start = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(first)
            await writer.drain()
            if first:
                answer = await asyncio.wait_for(reader.readuntil(b"ok\n"), 5)
                assert answer.startswith(b"HTTP/1.1 200")
                start = time.monotonic()
            with contextlib.suppress(ConnectionError):
                for byte in drip:
                    if reader.at_eof():
                        break
                    writer.write(bytes([byte]))
                    await writer.drain()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(reader.read(1), 0.1)
                assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            return time.monotonic() - start

        head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        assert 0.5 < await closed_after(b"", b"") < 3
        assert 0.5 < await closed_after(b"", head) < 3
        first = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        assert 0.5 < await closed_after(first, head) < 3
        # A client that sends its head in time is answered as before.
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).status_code == 200
