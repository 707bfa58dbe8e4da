"""Turning httpx exceptions and registry error answers into :class:`RegistryError`."""

from __future__ import annotations

import json
import re
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
    Reason,
    RegistryError,
    ServerError,
    TLSFailed,
)

_BY_STATUS: dict[int, Reason] = {
    401: Reason.AUTH,
    403: Reason.DENIED,
    404: Reason.NOT_FOUND,
    408: Reason.TIMEOUT,
    429: Reason.RATE_LIMITED,
}
_BY_CODE: dict[str, Reason] = {  # for answers whose status says nothing more
    "UNAUTHORIZED": Reason.AUTH,
    "DENIED": Reason.DENIED,
    "TOOMANYREQUESTS": Reason.RATE_LIMITED,
    "DIGEST_INVALID": Reason.DIGEST_MISMATCH,
    "BLOB_UNKNOWN": Reason.NOT_FOUND,
    "MANIFEST_UNKNOWN": Reason.NOT_FOUND,
    "NAME_UNKNOWN": Reason.NOT_FOUND,
}
_EXCEPTIONS: dict[Reason, type[RegistryError]] = {
    Reason.TIMEOUT: OperationTimeout,
    Reason.CONNECT: ConnectFailed,
    Reason.TLS: TLSFailed,
    Reason.AUTH: AuthenticationFailed,
    Reason.DENIED: AccessDenied,
    Reason.NOT_FOUND: NotFound,
    Reason.RATE_LIMITED: RateLimited,
    Reason.SERVER_ERROR: ServerError,
    Reason.DIGEST_MISMATCH: DigestMismatch,
    Reason.PROTOCOL: ProtocolViolation,
}


def reason_for_status(status: int, code: str | None = None) -> Reason:
    """The failure reason of an error answer: by status, else by the OCI error code.

    One table for everything that sees registry answers (the client, log and webhook
    ingest), so SLIs from probes and from traffic share the reason set.

    Args:
        status: an HTTP status of 400 or more.
        code: the OCI error code, as the body carries it (``MANIFEST_UNKNOWN``) or as
            distribution logs it (``manifest unknown``).
    """
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return Reason.SERVER_ERROR
    if code:
        return _BY_CODE.get(code.upper().replace(" ", "_"), Reason.PROTOCOL)
    return Reason.PROTOCOL


def oci_error(body: bytes) -> tuple[str | None, str | None]:
    """The first ``(code, message)`` of an OCI error body, or ``(None, None)``."""
    try:
        errors = json.loads(body)["errors"]
        first = errors[0]
        return str(first.get("code")), str(first.get("message", ""))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return None, None


def error_from_response(response: httpx.Response, body: bytes | None = None) -> RegistryError:
    """Classify an unwanted answer; ``body`` is the (already read) response body."""
    status = response.status_code
    code, detail = oci_error(body if body is not None else b"")
    cls = _EXCEPTIONS[reason_for_status(status, code)]
    request = response.request
    text = f"{request.method} {request.url.path} answered {status}"
    if code:
        text += f" {code}"
    if detail:
        text += f": {detail}"
    return cls(text, status=status, oci_code=code, url=str(request.url))


_DISCONNECTED = re.compile(r"disconnect|closed|reset|EOF|incomplete", re.IGNORECASE)
"""httpx's RemoteProtocolError messages for a peer that went away mid-answer."""


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
    if isinstance(exc, httpx.RemoteProtocolError) and not _DISCONNECTED.search(str(exc)):
        # An answer that is not HTTP (a header too large, a malformed status line): the
        # registry spoke, wrongly.
        return ProtocolViolation(f"malformed HTTP answer ({detail})", url=url)
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        if _caused_by_ssl(exc):
            return TLSFailed(f"TLS failure ({detail})", url=url)
        return ConnectFailed(f"connection failed ({detail})", url=url)
    return ProtocolViolation(f"HTTP failure ({detail})", url=url)
