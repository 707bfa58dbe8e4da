"""Sending one HTTP request: classified failures, and a client span when tracing."""

from __future__ import annotations

import httpx
from opentelemetry.trace import StatusCode

from registry_slo.oci._errors import error_from_exception
from registry_slo.oci._exceptions import ProtocolViolation
from registry_slo.oci._metering import span

ANSWER_LIMIT = 1 << 20
"""The most read of an answer that is not a manifest or a blob (a ping, an error body, a
token, a tags page): a registry sending more is violating the protocol, and reading it
all would let it fill the exporter's memory."""


async def send(http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send ``request``; transport failures become :class:`RegistryError`.

    The answer comes back streamed: its body is read with :func:`read_body` (within a
    limit) or streamed by the caller, never all at once by httpx.

    Within a traced probe run the request is a CLIENT span with the OpenTelemetry HTTP
    attributes (the URL without its query: upload URLs carry opaque state).
    """
    url = request.url
    attributes = {
        "http.request.method": request.method,
        "url.full": str(url.copy_with(query=None)),
        "server.address": url.host,
        "server.port": url.port or (443 if url.scheme == "https" else 80),
    }
    with span(request.method, attributes) as current:
        try:
            response = await http.send(request, stream=True)
        except httpx.HTTPError as exc:
            error = error_from_exception(exc, str(url))
            if current is not None:
                current.set_attribute("error.type", str(error.reason))
                current.set_status(StatusCode.ERROR, error.message)
            raise error from exc
        if current is not None:
            status = response.status_code
            current.set_attribute("http.response.status_code", status)
            # A 401 is the registry's auth challenge, part of the normal handshake.
            if status >= 400 and status != 401:
                current.set_attribute("error.type", str(status))
                current.set_status(StatusCode.ERROR)
        return response


async def read_body(response: httpx.Response, limit: int = ANSWER_LIMIT) -> bytes:
    """Read a streamed ``response``'s body, at most ``limit`` bytes, and close it.

    Raises:
        ProtocolViolation: the body is larger than ``limit``.
        RegistryError: the transport failed while reading.
    """
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                raise ProtocolViolation(
                    f"{response.request.method} {response.request.url.path}: answer body "
                    f"larger than {limit} bytes",
                    url=str(response.request.url),
                )
    except httpx.HTTPError as exc:
        raise error_from_exception(exc, str(response.request.url)) from exc
    finally:
        await response.aclose()
    return bytes(body)
