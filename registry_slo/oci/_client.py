"""An async client for the OCI Distribution API, built on httpx."""

from __future__ import annotations

import hashlib
import json
import math
import re
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlencode

import httpx

from registry_slo import __version__
from registry_slo.oci import media
from registry_slo.oci._auth import Credentials, TokenAuth
from registry_slo.oci._clock import ClockOffset
from registry_slo.oci._errors import error_from_exception, error_from_response
from registry_slo.oci._exceptions import DigestMismatch, ProtocolViolation
from registry_slo.oci._metering import current_meter, phase
from registry_slo.oci._ratelimit import RateLimits
from registry_slo.oci._transport import ANSWER_LIMIT, read_body, send

__all__ = ["Manifest", "RegistryClient", "sha256_digest"]

USER_AGENT = f"registry-slo/{__version__}"
_MAX_MANIFEST_BYTES = 4 << 20  # the OCI spec's suggested limit


def sha256_digest(data: bytes) -> str:
    """The ``sha256:…`` digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry served it."""

    body: bytes
    media_type: str
    digest: str

    def json(self) -> Any:
        """The parsed manifest."""
        try:
            return json.loads(self.body)
        except RecursionError:
            raise ProtocolViolation(f"manifest {self.digest} is nested too deeply") from None
        except ValueError as exc:
            raise ProtocolViolation(f"manifest {self.digest} is not JSON: {exc}") from exc


def _count_sent(content: bytes | None) -> None:
    meter = current_meter()
    if meter is not None and content:
        meter.bytes_sent += len(content)


def _count_received(n: int) -> None:
    meter = current_meter()
    if meter is not None:
        meter.bytes_received += n


_SHA256_HEX = re.compile(r"[a-f0-9]{64}")
_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")


class RegistryClient:
    """The OCI Distribution API of one registry.

    Every method raises a :class:`~registry_slo.oci.RegistryError` whose ``reason`` is one
    of the closed set. Token fetches are timed as the ``auth`` phase and bytes are counted
    on the task's :class:`~registry_slo.oci.Meter`, when one is bound.

    Args:
        base_url: ``http(s)://host[:port]``.
        credentials: for Basic auth and the token realm; ``None`` for anonymous.
        verify: TLS verification (an :class:`ssl.SSLContext`, or a bool).
        timeout: seconds for connect, each read and each write.
        chunk_size: blobs larger than this are uploaded in ``PATCH`` chunks.
        transport: an httpx transport (tests, proxies).
    """

    MAX_TAG_PAGES = 1000
    """The most ``Link`` pages :meth:`list_tags` follows (a million tags at 1,000 a page):
    a registry whose pages point at each other is not followed for ever."""

    def __init__(
        self,
        base_url: str,
        *,
        credentials: Credentials | None = None,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 10.0,
        chunk_size: int = 8 << 20,
        user_agent: str = USER_AGENT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.chunk_size = chunk_size
        self._http = httpx.AsyncClient(
            verify=verify,
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            headers={"User-Agent": user_agent},
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
            transport=transport,
        )
        self.auth = TokenAuth(self._http, credentials, httpx.URL(self.base_url).host)
        self.clock = ClockOffset()
        """The registry's clock offset, estimated from every answer's ``Date`` header."""
        self.rate_limits = RateLimits()
        """What the registry's answers say of its rate limits (policy, quota, remaining)."""
        self.certificate_not_after: float | None = None
        """Unix time at which the registry's TLS certificate expires (verified https)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- plumbing ---------------------------------------------------------------

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    async def _send(
        self,
        method: str,
        url: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request, answering an auth challenge once; the caller checks status
        and reads the (streamed) body with :meth:`_read` or :meth:`_expect`."""
        url = self._url(url)
        sent = await self.auth.prepare(scope)
        for attempt in (1, 2):
            request_headers = dict(headers or {})
            if sent is not None:
                request_headers["Authorization"] = sent
            request = self._http.build_request(
                method, url, headers=request_headers, content=content, params=params
            )
            sent_at = time.time()
            response = await send(self._http, request)
            self.clock.observe(response.headers.get("date"), sent_at, time.time())
            self.rate_limits.observe(response.headers, response.status_code)
            if url.startswith("https://"):
                self._note_certificate(response)
            _count_sent(content)
            if response.status_code != 401:
                return response
            body = await self._read(response)
            if attempt == 2:
                raise self.auth.refused(response, body)
            sent = await self.auth.answer(response, body, scope, sent)
        raise AssertionError("unreachable")

    def _note_certificate(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
        if ssl_object is None:
            return
        # Only a verified peer's certificate is decoded (not with insecure_skip_verify).
        not_after = (ssl_object.getpeercert() or {}).get("notAfter")
        if isinstance(not_after, str):
            self.certificate_not_after = float(ssl.cert_time_to_seconds(not_after))

    def certificate_expiry(self) -> float:
        """:attr:`certificate_not_after`, or NaN while unknown (for a gauge)."""
        return math.nan if self.certificate_not_after is None else self.certificate_not_after

    async def _read(self, response: httpx.Response, limit: int = ANSWER_LIMIT) -> bytes:
        data = await read_body(response, limit)
        _count_received(len(data))
        return data

    async def _expect(
        self, response: httpx.Response, *statuses: int, limit: int = ANSWER_LIMIT
    ) -> bytes:
        body = await self._read(response, limit)
        if response.status_code not in statuses:
            raise error_from_response(response, body)
        return body

    @staticmethod
    def _scope(repository: str, actions: str) -> str:
        return f"repository:{repository}:{actions}"

    # -- API --------------------------------------------------------------------

    async def ping(self) -> None:
        """``GET /v2/``, authenticating as the registry asks."""
        response = await self._send("GET", "/v2/", scope="")
        await self._expect(response, 200)

    async def authenticate(self, repository: str, actions: str = "pull") -> float:
        """Obtain fresh credentials for ``repository`` and return the seconds it took.

        For a Bearer registry this fetches a new token (ignoring the cache); for Basic or
        anonymous access it is an authenticated ``GET /v2/``.
        """
        with phase("auth"):
            if self.auth.scheme is None:
                started = time.perf_counter()
                await self.ping()  # learns the scheme; without a challenge, it is the check
                if self.auth.scheme is None:
                    return time.perf_counter() - started
            scope = self._scope(repository, actions)
            if self.auth.scheme == "bearer":
                return await self.auth.fetch_token(scope)
            response = await self._send("GET", "/v2/", scope=scope)
            await self._expect(response, 200)
            return response.elapsed.total_seconds()

    async def blob_exists(self, repository: str, digest: str) -> bool:
        """``HEAD`` a blob."""
        response = await self._send(
            "HEAD", f"/v2/{repository}/blobs/{digest}", scope=self._scope(repository, "pull")
        )
        body = await self._read(response)
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise error_from_response(response, body)
        return True

    async def upload_blob(self, repository: str, data: bytes, digest: str | None = None) -> str:
        """Upload a blob: ``POST`` then ``PUT`` with the digest; ``PATCH`` chunks when large.

        Returns:
            The blob's digest.
        """
        digest = digest or sha256_digest(data)
        scope = self._scope(repository, "pull,push")
        response = await self._send("POST", f"/v2/{repository}/blobs/uploads/", scope=scope)
        await self._expect(response, 202)
        location = self._location(response)
        if len(data) > self.chunk_size:
            offset = 0
            while offset < len(data):
                chunk = data[offset : offset + self.chunk_size]
                response = await self._send(
                    "PATCH",
                    location,
                    scope=scope,
                    content=chunk,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                    },
                )
                await self._expect(response, 202)
                location = self._location(response)
                offset += len(chunk)
            body: bytes | None = None
        else:
            body = data
        url = httpx.URL(location).copy_merge_params({"digest": digest})
        response = await self._send(
            "PUT",
            str(url),
            scope=scope,
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        await self._expect(response, 201)
        reported = response.headers.get("docker-content-digest")
        if reported and reported != digest:
            raise DigestMismatch(f"uploaded {digest}, registry stored {reported}")
        return digest

    def _location(self, response: httpx.Response) -> str:
        location = response.headers.get("location")
        if not location:
            raise ProtocolViolation(
                f"{response.request.method} {response.request.url.path}: no Location header",
                status=response.status_code,
            )
        return str(response.request.url.join(location))

    async def stream_blob(self, repository: str, digest: str) -> AsyncIterator[bytes]:
        """Stream a blob's bytes, verifying them against ``digest`` at the end.

        Raises:
            DigestMismatch: the bytes do not hash to ``digest``.
        """
        algorithm, _, expected = digest.partition(":")
        if algorithm != "sha256" or not _SHA256_HEX.fullmatch(expected):
            raise ProtocolViolation(f"unsupported digest {digest[:80]!r}")
        response = await self._send(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scope=self._scope(repository, "pull"),
        )
        if response.status_code != 200:
            raise error_from_response(response, await self._read(response))
        hasher = hashlib.sha256()
        try:
            async for chunk in response.aiter_raw():
                hasher.update(chunk)
                _count_received(len(chunk))
                yield chunk
        except httpx.HTTPError as exc:
            raise error_from_exception(exc, str(response.request.url)) from exc
        finally:
            await response.aclose()
        if hasher.hexdigest() != expected:
            raise DigestMismatch(
                f"blob {digest} downloaded as sha256:{hasher.hexdigest()}",
                url=str(response.request.url),
            )

    async def verify_blob(self, repository: str, digest: str, size: int | None = None) -> int:
        """Download a blob without keeping it, verify digest and size; return its size."""
        received = 0
        async for chunk in self.stream_blob(repository, digest):
            received += len(chunk)
        if size is not None and received != size:
            raise DigestMismatch(f"blob {digest}: {received} bytes, descriptor says {size}")
        return received

    async def fetch_blob(self, repository: str, digest: str, limit: int = 4 << 20) -> bytes:
        """Download a small blob (a config) into memory, verified."""
        data = bytearray()
        async for chunk in self.stream_blob(repository, digest):
            data += chunk
            if len(data) > limit:
                raise ProtocolViolation(f"blob {digest} is larger than {limit} bytes")
        return bytes(data)

    async def delete_blob(self, repository: str, digest: str) -> None:
        """``DELETE`` a blob (needs delete enabled on the registry)."""
        response = await self._send(
            "DELETE",
            f"/v2/{repository}/blobs/{digest}",
            scope=self._scope(repository, "delete"),
        )
        await self._expect(response, 202)

    async def put_manifest(
        self, repository: str, reference: str, body: bytes, media_type: str
    ) -> str:
        """``PUT`` a manifest under a tag or digest; return its digest."""
        digest = sha256_digest(body)
        response = await self._send(
            "PUT",
            f"/v2/{repository}/manifests/{quote(reference, safe=':')}",
            scope=self._scope(repository, "pull,push"),
            content=body,
            headers={"Content-Type": media_type},
        )
        await self._expect(response, 201)
        reported = response.headers.get("docker-content-digest")
        if reported and reported != digest:
            raise DigestMismatch(f"manifest {digest}: registry reported {reported}")
        return digest

    async def get_manifest(self, repository: str, reference: str) -> Manifest:
        """``GET`` a manifest by tag or digest and verify its digest."""
        response = await self._send(
            "GET",
            f"/v2/{repository}/manifests/{quote(reference, safe=':')}",
            scope=self._scope(repository, "pull"),
            headers={"Accept": ", ".join(media.MANIFEST_TYPES)},
        )
        body = await self._expect(response, 200, limit=_MAX_MANIFEST_BYTES)
        digest = sha256_digest(body)
        reported = response.headers.get("docker-content-digest")
        if reported and reported != digest:
            raise DigestMismatch(f"manifest {reference}: body is {digest}, header {reported}")
        if reference.startswith("sha256:") and reference != digest:
            raise DigestMismatch(f"manifest {reference} downloaded as {digest}")
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        return Manifest(body=body, media_type=media_type, digest=digest)

    async def head_manifest(self, repository: str, reference: str) -> str | None:
        """``HEAD`` a manifest; return its digest, or ``None`` when it does not exist."""
        response = await self._send(
            "HEAD",
            f"/v2/{repository}/manifests/{quote(reference, safe=':')}",
            scope=self._scope(repository, "pull"),
            headers={"Accept": ", ".join(media.MANIFEST_TYPES)},
        )
        body = await self._read(response)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise error_from_response(response, body)
        digest: str | None = response.headers.get("docker-content-digest")
        if not digest:
            raise ProtocolViolation(f"HEAD manifest {reference}: no Docker-Content-Digest")
        return digest

    async def delete_manifest(self, repository: str, digest: str) -> None:
        """``DELETE`` a manifest by digest (tags pointing at it go with it)."""
        response = await self._send(
            "DELETE",
            f"/v2/{repository}/manifests/{digest}",
            scope=self._scope(repository, "delete"),
        )
        await self._expect(response, 202)

    async def _pages(self, url: str, repository: str, what: str,
                     missing_ok: bool = False) -> AsyncIterator[bytes | None]:
        """The bodies of a paginated answer (``Link: <…>; rel="next"`` on the registry's
        own host, at most :attr:`MAX_TAG_PAGES` pages); ``None`` once when the first page
        is a 404 and ``missing_ok``."""
        origin = httpx.URL(self.base_url)
        for number in range(self.MAX_TAG_PAGES):
            response = await self._send("GET", url, scope=self._scope(repository, "pull"))
            if missing_ok and number == 0 and response.status_code == 404:
                await self._read(response)
                yield None
                return
            yield await self._expect(response, 200)
            link = response.links.get("next", {}).get("url")
            if not link:
                return
            try:
                following = response.request.url.join(link)
            except httpx.InvalidURL as exc:
                raise ProtocolViolation(f"{what}: unusable Link: {exc}") from exc
            if (following.scheme, following.host, following.port) != (
                    origin.scheme, origin.host, origin.port):
                # The next request carries the registry's credentials.
                raise ProtocolViolation(
                    f"{what}: the next page is on another host ({following.host}): "
                    "not followed")
            url = str(following)
        raise ProtocolViolation(f"{what}: more than {self.MAX_TAG_PAGES} pages")

    async def list_tags(self, repository: str) -> list[str]:
        """All tags of ``repository`` (following ``Link`` pagination on the registry's
        own host, for at most :attr:`MAX_TAG_PAGES` pages)."""
        tags: list[str] = []
        async for body in self._pages(f"/v2/{repository}/tags/list?n=1000", repository,
                                      "tags list"):
            assert body is not None
            try:
                page = json.loads(body).get("tags") or []
            except (ValueError, AttributeError, TypeError, RecursionError) as exc:
                raise ProtocolViolation(f"tags list is not JSON: {exc}") from exc
            if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
                raise ProtocolViolation("tags list: \"tags\" is not a list of names")
            tags.extend(page)
        return tags

    async def referrers(self, repository: str, digest: str,
                        artifact_type: str | None = None) -> list[dict[str, Any]] | None:
        """The descriptors of the manifests whose ``subject`` is ``digest`` (the OCI 1.1
        referrers API, ``Link`` pages followed as for tags), only those of
        ``artifact_type`` when given (a registry may ignore the filter: it is applied
        here too); ``None`` when the registry has no referrers API (404)."""
        if not _SHA256.fullmatch(digest):
            raise ProtocolViolation(f"not a sha256 digest: {digest[:80]!r}")
        url = f"/v2/{repository}/referrers/{digest}"
        if artifact_type is not None:
            url += "?" + urlencode({"artifactType": artifact_type})
        found: list[dict[str, Any]] = []
        async for body in self._pages(url, repository, "referrers", missing_ok=True):
            if body is None:
                return None
            try:
                page = json.loads(body).get("manifests") or []
            except (ValueError, AttributeError, TypeError, RecursionError) as exc:
                raise ProtocolViolation(f"referrers: not an index: {exc}") from exc
            if not isinstance(page, list) or not all(isinstance(d, dict) for d in page):
                raise ProtocolViolation("referrers: \"manifests\" is not a list of descriptors")
            found.extend(page)
        if artifact_type is not None:
            found = [d for d in found if d.get("artifactType") == artifact_type]
        return found


