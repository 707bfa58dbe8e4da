"""Pin the public API: changing it must be a deliberate act."""

from __future__ import annotations

import registry_slo.oci as oci
from registry_slo.oci import Reason, RegistryError


def test_oci_public_api() -> None:
    assert sorted(oci.__all__) == sorted([
        "USER_AGENT", "AccessDenied", "AuthenticationFailed", "Challenge", "ClockOffset",
        "ConnectFailed", "Credentials", "DigestMismatch", "Manifest", "Meter", "NotFound",
        "OperationTimeout",
        "ProtocolViolation", "Quota", "RateLimited", "RateLimits", "Reason", "RegistryClient",
        "RegistryError", "read_rate_limits",
        "ResponseError", "ServerError", "TLSFailed", "TransportError", "current_meter",
        "media", "metered", "parse_www_authenticate", "phase", "reason_for_status", "sha256_digest",
    ])
    for name in oci.__all__:
        assert hasattr(oci, name)


def test_every_reason_has_exactly_one_exception() -> None:
    def leaves(cls: type[RegistryError]) -> list[type[RegistryError]]:
        subs = cls.__subclasses__()
        return [c for s in subs for c in leaves(s)] if subs else [cls]

    reasons = [cls.reason for cls in leaves(RegistryError)]
    assert sorted(reasons) == sorted(Reason)
    assert [str(r) for r in Reason] == [
        "timeout", "connect", "tls", "auth", "denied", "not_found", "rate_limited",
        "server_error", "digest_mismatch", "protocol",
    ]
