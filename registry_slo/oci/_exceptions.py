"""Failures of registry operations, each mapped to one reason of a closed set.

Our exception hierarchy::

    RegistryError                 (reason: one of Reason)
    ├── TransportError
    │   ├── OperationTimeout      timeout
    │   ├── ConnectFailed         connect
    │   └── TLSFailed             tls
    ├── ResponseError             (an HTTP answer we did not want; keeps status and OCI code)
    │   ├── AuthenticationFailed  auth
    │   ├── AccessDenied          denied
    │   ├── NotFound              not_found
    │   ├── RateLimited           rate_limited
    │   └── ServerError           server_error
    ├── DigestMismatch            digest_mismatch
    └── ProtocolViolation         protocol
"""

from __future__ import annotations

from registry_slo.vocabulary import Reason

__all__ = [
    "AccessDenied",
    "AuthenticationFailed",
    "ConnectFailed",
    "DigestMismatch",
    "NotFound",
    "OperationTimeout",
    "ProtocolViolation",
    "RateLimited",
    "Reason",
    "RegistryError",
    "ResponseError",
    "ServerError",
    "TLSFailed",
    "TransportError",
]


class RegistryError(Exception):
    """Base class: a registry operation failed for :attr:`reason`.

    Attributes:
        reason: the failure reason (a label value).
        status: the HTTP status code, when there was an answer.
        oci_code: the first error code of the registry's OCI error body, for logs.
        url: the request URL, when known.
    """

    reason: Reason = Reason.PROTOCOL

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        oci_code: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.oci_code = oci_code
        self.url = url


class TransportError(RegistryError):
    """No usable HTTP answer."""


class OperationTimeout(TransportError):
    """The registry did not answer in time."""

    reason = Reason.TIMEOUT


class ConnectFailed(TransportError):
    """The connection could not be made, or was reset or closed before an answer."""

    reason = Reason.CONNECT


class TLSFailed(TransportError):
    """The TLS handshake failed (certificate, protocol)."""

    reason = Reason.TLS


class ResponseError(RegistryError):
    """The registry answered with an error status."""


class AuthenticationFailed(ResponseError):
    """Credentials were refused (401 after authenticating, or by the token service)."""

    reason = Reason.AUTH


class AccessDenied(ResponseError):
    """Authenticated, but not allowed (403, or 401 for insufficient scope)."""

    reason = Reason.DENIED


class NotFound(ResponseError):
    """The repository, manifest or blob does not exist (404)."""

    reason = Reason.NOT_FOUND


class RateLimited(ResponseError):
    """The registry asked us to slow down (429)."""

    reason = Reason.RATE_LIMITED


class ServerError(ResponseError):
    """The registry failed (5xx)."""

    reason = Reason.SERVER_ERROR


class DigestMismatch(RegistryError):
    """Content did not hash to its digest, or the registry reported another digest."""

    reason = Reason.DIGEST_MISMATCH


class ProtocolViolation(RegistryError):
    """An answer that breaks the OCI Distribution protocol (or an unexpected status)."""

    reason = Reason.PROTOCOL
