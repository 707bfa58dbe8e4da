"""Turning httpx exceptions and registry error answers into :class:`RegistryError`."""

from __future__ import annotations

import json
import ssl

import httpx

from registry_slo.oci._exceptions import (
    AccessDenied,
    AuthenticationFailed,
    ConnectFailed,
    DigestMismatch,
    NotFound,
    OperationTimeout,
    ProtocolViolation,
    RateLimited,
    RegistryError,
    ServerError,
    TLSFailed,
)

_BY_CODE: dict[str, type[RegistryError]] = {
    "UNAUTHORIZED": AuthenticationFailed,
    "DENIED": AccessDenied,
    "TOOMANYREQUESTS": RateLimited,
    "DIGEST_INVALID": DigestMismatch,
    "BLOB_UNKNOWN": NotFound,
    "MANIFEST_UNKNOWN": NotFound,
    "NAME_UNKNOWN": NotFound,
}


def oci_error(body: bytes) -> tuple[str | None, str | None]:
    """The first ``(code, message)`` of an OCI error body, or ``(None, None)``."""
    try:
        errors = json.loads(body)["errors"]
        first = errors[0]
        return str(first.get("code")), str(first.get("message", ""))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None, None


def error_from_response(response: httpx.Response, body: bytes | None = None) -> RegistryError:
    """Classify an unwanted answer; ``body`` is the (already read) response body."""
    status = response.status_code
    code, detail = oci_error(body if body is not None else b"")
    cls: type[RegistryError]
    if status == 401:
        cls = AuthenticationFailed
    elif status == 403:
        cls = AccessDenied
    elif status == 404:
        cls = NotFound
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_CODE.get(code or "", ProtocolViolation)
    request = response.request
    text = f"{request.method} {request.url.path} answered {status}"
    if code:
        text += f" {code}"
    if detail:
        text += f": {detail}"
    return cls(text, status=status, oci_code=code, url=str(request.url))


def _caused_by_ssl(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, ssl.SSLError | ssl.CertificateError):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return "SSL" in str(exc) or "certificate" in str(exc).lower()


def error_from_exception(exc: httpx.HTTPError, url: str | None = None) -> RegistryError:
    """Classify a transport-level httpx failure."""
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return OperationTimeout(f"timed out ({detail})", url=url)
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        if _caused_by_ssl(exc):
            return TLSFailed(f"TLS failure ({detail})", url=url)
        return ConnectFailed(f"connection failed ({detail})", url=url)
    return ProtocolViolation(f"HTTP failure ({detail})", url=url)
