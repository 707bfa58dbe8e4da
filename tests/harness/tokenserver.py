"""A Docker-registry token server (``auth.token`` realm) for tests.

The server generates an EC P-256 key and a self-signed certificate on `TokenServer.start`;
the certificate file (`TokenServer.rootcertbundle`) is the registry's ``rootcertbundle``.
Tokens are ES256 JWTs whose header carries the certificate in ``x5c``, which
distribution 2.8 verifies against the bundle.

``GET /token?service=S&scope=repository:NAME:pull,push`` with Basic auth answers
``{"token", "access_token", "expires_in", "issued_at"}``. Requested actions are filtered
by the user's ACL (a denied scope yields an entry with empty ``actions``, as real token
servers do); a wrong password is answered 401.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fnmatch
import json
import secrets
import shutil
import tempfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["Acl", "IssuedToken", "TokenServer", "parse_scope"]

Acl = Mapping[str, Mapping[str, Sequence[str]]]
"""user → repository glob (``fnmatch``) → allowed actions (``"*"`` allows every action).

A key that contains a colon (``"registry:catalog"``) matches a non-repository scope's
``type:name`` instead of a repository name.
"""


@dataclass(frozen=True)
class IssuedToken:
    """Record of one token the server handed out.

    Attributes:
        subject: the authenticated user (``""`` for anonymous).
        service: the ``service`` query parameter.
        access: the granted ``access`` claim.
        claims: every JWT claim.
        token: the signed token itself (a secret of whoever holds it).
    """

    subject: str
    service: str
    access: list[dict[str, Any]]
    claims: dict[str, Any]
    token: str = ""


def parse_scope(scope: str) -> tuple[str, str, list[str]]:
    """Split ``type:name:action,action`` (the name may contain colons, e.g. a port).

    Args:
        scope: one scope string.

    Returns:
        ``(type, name, actions)``.

    Raises:
        ValueError: when the scope has fewer than three parts.
    """
    type_, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not type_ or not name:
        raise ValueError(f"malformed scope {scope!r}")
    return type_, name, [a for a in actions.split(",") if a]


def _self_signed(key: ec.EllipticCurvePrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


class TokenServer:
    """Token endpoint for a registry running with ``auth.token``.

    Args:
        users: user name → password (checked with Basic auth).
        acl: per-user allowed actions, see `Acl`.
        anonymous: ACL for requests without credentials; ``None`` answers them 401.
        service: the service name (the ``aud`` claim; the registry's ``auth.token.service``).
        issuer: the ``iss`` claim (the registry's ``auth.token.issuer``).
        expires_in: token lifetime in seconds (``exp - iat`` and the ``expires_in`` field);
            may be changed on a running server.
        exp_offset: seconds added to the ``exp`` claim only (negative values produce
            tokens the registry already considers expired); may be changed at run time.

    Attributes:
        token_requests: number of ``/token`` requests received (any outcome).
        issued: every token handed out, oldest first.
    """

    def __init__(
        self,
        users: Mapping[str, str],
        acl: Acl,
        *,
        anonymous: Mapping[str, Sequence[str]] | None = None,
        service: str = "registry-slo-test",
        issuer: str = "registry-slo-test-issuer",
        expires_in: int = 300,
        exp_offset: int = 0,
    ) -> None:
        self.users: dict[str, str] = dict(users)
        self.acl: dict[str, dict[str, list[str]]] = {
            user: {pattern: list(actions) for pattern, actions in rules.items()}
            for user, rules in acl.items()
        }
        self.anonymous: dict[str, list[str]] | None = (
            {p: list(a) for p, a in anonymous.items()} if anonymous is not None else None
        )
        self.service = service
        self.issuer = issuer
        self.expires_in = expires_in
        self.exp_offset = exp_offset
        self.token_requests = 0
        self.issued: list[IssuedToken] = []
        self._lock = threading.Lock()
        self._dir: Path | None = None
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._cert_der_b64 = ""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- addresses and files -----------------------------------------------------------

    @property
    def port(self) -> int:
        """TCP port the server listens on."""
        if self._server is None:
            raise RuntimeError("token server not started")
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        """The token endpoint URL (the registry's ``auth.token.realm``)."""
        return f"{self.url}/token"

    @property
    def rootcertbundle(self) -> Path:
        """PEM certificate the registry must trust (``auth.token.rootcertbundle``)."""
        if self._dir is None:
            raise RuntimeError("token server not started")
        return self._dir / "token-cert.pem"

    @property
    def key_path(self) -> Path:
        """PEM private key signing the tokens."""
        if self._dir is None:
            raise RuntimeError("token server not started")
        return self._dir / "token-key.pem"

    # -- tokens ------------------------------------------------------------------------

    def _allowed(self, rules: Mapping[str, Sequence[str]], type_: str, name: str) -> set[str]:
        allowed: set[str] = set()
        for pattern, actions in rules.items():
            if ":" in pattern:
                matched = fnmatch.fnmatchcase(f"{type_}:{name}", pattern)
            else:
                matched = type_ == "repository" and fnmatch.fnmatchcase(name, pattern)
            if matched:
                allowed.update(actions)
        return allowed

    def grant(self, user: str | None, scopes: Sequence[str]) -> list[dict[str, Any]]:
        """Compute the ``access`` claim for ``user`` asking for ``scopes``.

        Args:
            user: the authenticated user, or ``None`` for anonymous.
            scopes: requested scope strings.

        Returns:
            One ``{"type", "name", "actions"}`` entry per scope, actions filtered.
        """
        rules = (self.anonymous or {}) if user is None else self.acl.get(user, {})
        access: list[dict[str, Any]] = []
        for scope in scopes:
            type_, name, wanted = parse_scope(scope)
            allowed = self._allowed(rules, type_, name)
            granted = [a for a in wanted if "*" in allowed or a in allowed]
            access.append({"type": type_, "name": name, "actions": granted})
        return access

    def issue(
        self, user: str | None, service: str, scopes: Sequence[str]
    ) -> tuple[str, dict[str, Any]]:
        """Mint a signed token (also used by the HTTP handler).

        Args:
            user: the subject, or ``None`` for anonymous.
            service: the audience.
            scopes: requested scope strings.

        Returns:
            ``(jwt, claims)``.
        """
        if self._key is None:
            raise RuntimeError("token server not started")
        now = int(dt.datetime.now(dt.UTC).timestamp())
        access = self.grant(user, scopes)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": service,
            "exp": now + self.expires_in + self.exp_offset,
            "nbf": now - 1,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        token = jwt.encode(
            claims,
            self._key,
            algorithm="ES256",
            headers={"typ": "JWT", "x5c": [self._cert_der_b64]},
        )
        with self._lock:
            self.issued.append(IssuedToken(user or "", service, access, claims, token))
        return token, claims

    def _authenticate(self, header: str | None) -> tuple[bool, str | None]:
        """Return ``(ok, user)``; ``user`` is ``None`` for an anonymous request."""
        if not header:
            return self.anonymous is not None, None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False, None
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False, None
        expected = self.users.get(user)
        if expected is None or not secrets.compare_digest(expected, password):
            return False, None
        return True, user

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        """Generate the key and certificate, then serve on an ephemeral 127.0.0.1 port.

        Returns:
            ``self``.
        """
        if self._server is not None:
            return self
        self._dir = Path(tempfile.mkdtemp(prefix="registry-slo-token-"))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _self_signed(key, "registry-slo test token signer")
        self._key = key
        self._cert_der_b64 = base64.b64encode(
            cert.public_bytes(serialization.Encoding.DER)
        ).decode()
        self.rootcertbundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="token-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and remove the key material."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _handler_for(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: dict[str, Any], headers: Mapping[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            with server._lock:
                server.token_requests += 1
            if parts.path != "/token":
                self._send(404, {"errors": [{"code": "NOT_FOUND", "message": "no such path"}]}, {})
                return
            ok, user = server._authenticate(self.headers.get("Authorization"))
            if not ok:
                self._send(
                    401,
                    {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]},
                    {"WWW-Authenticate": 'Basic realm="registry-slo-token"'},
                )
                return
            query = parse_qs(parts.query)
            service = query.get("service", [server.service])[0]
            scopes = [s for raw in query.get("scope", []) for s in raw.split(" ") if s]
            try:
                token, claims = server.issue(user, service, scopes)
            except ValueError as exc:
                self._send(400, {"errors": [{"code": "INVALID_SCOPE", "message": str(exc)}]}, {})
                return
            issued_at = dt.datetime.fromtimestamp(claims["iat"], dt.UTC)
            self._send(
                200,
                {
                    "token": token,
                    "access_token": token,
                    "expires_in": server.expires_in,
                    "issued_at": issued_at.isoformat().replace("+00:00", "Z"),
                },
                {},
            )

    return Handler
