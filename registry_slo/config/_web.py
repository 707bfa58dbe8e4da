"""The web configuration file: TLS, client certificates, Basic users, response headers
and a rate limit for the exporter's listeners, in the format every Prometheus exporter
reads with ``--web.config.file`` (the Prometheus exporter-toolkit's).

What Python's TLS cannot do the way Go's does is refused with the reason, never ignored:
inline certificates and keys, ``RequestClientCert`` and ``RequireAnyClientCert`` (Python
verifies every client certificate it asks for), ``client_allowed_sans``, and Go's cipher
suite and curve names.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from registry_slo._serving import RateLimit, TLSServer, WebProtection
from registry_slo._units import Duration
from registry_slo.config._base import Strict

__all__ = ["WebConfigFile"]

_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
TLSVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
ClientAuthType = Literal[
    "NoClientCert", "RequestClientCert", "RequireAnyClientCert",
    "VerifyClientCertIfGiven", "RequireAndVerifyClientCert",
]
_VERIFY = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNSUPPORTED_TLS = {
    "cert": "give the certificate as a file: cert_file",
    "key": "give the key as a file: key_file",
    "client_ca": "give the client CA as a file: client_ca_file",
    "client_allowed_sans": "registry-slo cannot match client certificate SANs; issue "
    "client certificates from a CA of their own and give it as client_ca_file",
    "cipher_suites": "Go's cipher suite names have no Python equivalent here; leave it "
    "out for OpenSSL's defaults, or raise min_version to TLS13",
    "curve_preferences": "Go's curve names have no Python equivalent here; leave it out "
    "for OpenSSL's defaults",
}
_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options",
            "X-XSS-Protection", "Strict-Transport-Security")
_BCRYPT = re.compile(r"\$2[abxy]?\$(?P<cost>\d\d)\$[./A-Za-z0-9]{53}")


class _TLSServerConfig(Strict):
    cert_file: Path
    key_file: Path
    client_auth_type: ClientAuthType = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: TLSVersionName = "TLS12"
    max_version: TLSVersionName = "TLS13"
    prefer_server_cipher_suites: bool = True
    cert: Any = None
    key: Any = None
    client_ca: Any = None
    client_allowed_sans: Any = None
    cipher_suites: Any = None
    curve_preferences: Any = None

    @model_validator(mode="after")
    def _check(self) -> _TLSServerConfig:
        for key, instead in _UNSUPPORTED_TLS.items():
            if getattr(self, key) not in (None, [], ""):
                raise ValueError(f"{key} is not supported: {instead}")
        if self.client_auth_type in ("RequestClientCert", "RequireAnyClientCert"):
            raise ValueError(
                f"client_auth_type {self.client_auth_type} is not supported: Python's TLS "
                "verifies every client certificate it asks for; use VerifyClientCertIfGiven "
                "or RequireAndVerifyClientCert with client_ca_file"
            )
        verifies = self.client_auth_type != "NoClientCert"
        if verifies and self.client_ca_file is None:
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file")
        if not verifies and self.client_ca_file is not None:
            raise ValueError("client_ca_file is set but client_auth_type is NoClientCert: "
                             "set client_auth_type: RequireAndVerifyClientCert for mutual TLS")
        if _VERSIONS[self.min_version] > _VERSIONS[self.max_version]:
            raise ValueError(f"min_version {self.min_version} is newer than max_version "
                             f"{self.max_version}")
        return self


class _HTTPServerConfig(Strict):
    http2: bool = Field(default=True, description="accepted; the listeners speak HTTP/1.1")
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if name not in _HEADERS:
                raise ValueError(f"header {name!r} cannot be set; these can: "
                                 f"{', '.join(_HEADERS)}")
            if any(c in value for c in "\r\n\0") or not value.isascii():
                raise ValueError(f"header {name}: the value must be one line of ASCII")
            lowered = value.lower()
            if name == "X-Frame-Options" and lowered not in ("deny", "sameorigin"):
                raise ValueError("header X-Frame-Options: deny or sameorigin")
            if name == "X-Content-Type-Options" and lowered != "nosniff":
                raise ValueError("header X-Content-Type-Options: nosniff")
        return {name: value for name, value in headers.items() if value}


class _RateLimitConfig(Strict):
    interval: Duration = Field(description="between two requests; 0 turns the limit off")
    burst: int = Field(ge=1, le=1_000_000)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if not 0 <= value <= 3600:
            raise ValueError("must be between 0 and 1h")
        return value


class WebConfigFile(Strict):
    """The web configuration file (``--web.config.file``), as exporter-toolkit defines it."""

    tls_server_config: _TLSServerConfig | None = None
    http_server_config: _HTTPServerConfig = _HTTPServerConfig()
    basic_auth_users: dict[str, SecretStr] = Field(default_factory=dict)
    rate_limit: _RateLimitConfig | None = None

    @field_validator("basic_auth_users")
    @classmethod
    def _users(cls, users: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, hashed in users.items():
            if not name or ":" in name or any(c in name for c in "\r\n\0"):
                raise ValueError(f"user {name!r}: a user name is not empty and has no ':'")
            match = _BCRYPT.fullmatch(hashed.get_secret_value())
            if match is None:
                # Not the value: it is a secret, even when it is not a hash.
                raise ValueError(f"user {name!r}: not a bcrypt hash (make one with "
                                 "`htpasswd -nBC 10 \"\" | tr -d ':\\n'`)")
            if not 4 <= int(match["cost"]) <= 31:
                raise ValueError(f"user {name!r}: bcrypt cost {match['cost']} is not 4 to 31")
        return users

    def protection(self, directory: Path) -> WebProtection:
        """What the listeners require and add; relative file names are taken from
        ``directory`` (the web configuration file's own, as exporter-toolkit does)."""
        tls = None
        if (c := self.tls_server_config) is not None:
            tls = TLSServer(
                cert_file=directory / c.cert_file,
                key_file=directory / c.key_file,
                client_ca_file=directory / c.client_ca_file if c.client_ca_file else None,
                client_auth=_VERIFY[c.client_auth_type],
                min_version=_VERSIONS[c.min_version],
                max_version=_VERSIONS[c.max_version],
                prefer_server_ciphers=c.prefer_server_cipher_suites,
            )
        limit = self.rate_limit
        return WebProtection(
            tls=tls,
            users={name: hashed.get_secret_value().encode()
                   for name, hashed in self.basic_auth_users.items()},
            headers=self.http_server_config.headers,
            rate_limit=RateLimit(limit.interval, limit.burst)
            if limit is not None and limit.interval > 0 else None,
        )
