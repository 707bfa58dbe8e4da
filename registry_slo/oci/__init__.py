"""OCI Distribution client: auth, blobs, manifests, and the failure taxonomy."""

from __future__ import annotations

from registry_slo.oci import media
from registry_slo.oci._auth import Challenge, Credentials, parse_www_authenticate
from registry_slo.oci._client import USER_AGENT, Manifest, RegistryClient, sha256_digest
from registry_slo.oci._clock import ClockOffset
from registry_slo.oci._errors import reason_for_status
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
    ResponseError,
    ServerError,
    TLSFailed,
    TransportError,
)
from registry_slo.oci._metering import Meter, current_meter, metered, phase
from registry_slo.oci._ratelimit import Quota, RateLimits, read_rate_limits

__all__ = [
    "USER_AGENT",
    "AccessDenied",
    "AuthenticationFailed",
    "Challenge",
    "ClockOffset",
    "ConnectFailed",
    "Credentials",
    "DigestMismatch",
    "Manifest",
    "Meter",
    "NotFound",
    "OperationTimeout",
    "ProtocolViolation",
    "Quota",
    "RateLimited",
    "RateLimits",
    "Reason",
    "RegistryClient",
    "RegistryError",
    "ResponseError",
    "ServerError",
    "TLSFailed",
    "TransportError",
    "current_meter",
    "media",
    "metered",
    "parse_www_authenticate",
    "phase",
    "read_rate_limits",
    "reason_for_status",
    "sha256_digest",
]
