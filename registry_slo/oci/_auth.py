"""Registry authentication: Basic, and the Bearer token flow driven by ``WWW-Authenticate``.

The registry tells the client how to authenticate in its 401 challenge. For ``Bearer``,
a token for the challenged scope is fetched from the realm (with Basic credentials when
we have them), cached until shortly before it expires, and then fetched again.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass

import httpx
import structlog

from registry_slo.oci._errors import error_from_response
from registry_slo.oci._exceptions import AccessDenied, ProtocolViolation, RegistryError
from registry_slo.oci._metering import current_meter, phase
from registry_slo.oci._transport import ANSWER_LIMIT, read_body, send

__all__ = ["Challenge", "Credentials", "TokenAuth", "parse_www_authenticate"]

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')
log = structlog.get_logger("registry_slo.oci")

_DEFAULT_TOKEN_LIFETIME = 60.0  # the token spec's default for a missing expires_in
_LONGEST_TOKEN_LIFETIME = 86400.0  # beyond a day, a token lifetime is not believed


@dataclass(frozen=True)
class Credentials:
    """A username and password; never printed."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"

    def basic_header(self) -> str:
        """The ``Authorization`` header value for Basic auth."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header."""

    scheme: str
    params: dict[str, str]


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` header into its challenges (scheme lower-cased)."""
    challenges: list[Challenge] = []
    pos = 0
    text = header.strip()
    while pos < len(text):
        match = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)(?=\s|$)").match(text, pos)
        if not match:
            break
        scheme = match.group(1).lower()
        pos = match.end()
        params: dict[str, str] = {}
        while pos < len(text):
            param = _PARAM.match(text, pos)
            if not param:
                break
            value = param.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[param.group(1).lower()] = value
            pos = param.end()
        challenges.append(Challenge(scheme, params))
    return challenges


@dataclass
class _Token:
    value: str
    expires_at: float  # time.monotonic()
    refresh_at: float


class TokenAuth:
    """Answers a registry's challenges and remembers how to authenticate next time.

    Args:
        http: the client used to reach the token realm.
        credentials: Basic credentials, or ``None`` for anonymous access.
        registry_host: the registry's host name. Credentials go to a token realm only
            over HTTPS or on this host (a registry may name any realm, and plain HTTP
            to another host would expose them): elsewhere the token is asked for
            anonymously, and that is logged once per realm.
    """

    def __init__(self, http: httpx.AsyncClient, credentials: Credentials | None,
                 registry_host: str | None = None) -> None:
        self._http = http
        self._credentials = credentials
        self._registry_host = registry_host
        self._withheld_from: set[str] = set()
        self._scheme: str | None = None
        self._realm: str | None = None
        self._service: str | None = None
        self._tokens: dict[str, _Token] = {}
        self.token_fetches = 0

    @property
    def scheme(self) -> str | None:
        """``"basic"`` or ``"bearer"`` once the registry has challenged us, else ``None``."""
        return self._scheme

    def header(self, scope: str) -> str | None:
        """The ``Authorization`` value to send for ``scope`` now, if we have one."""
        if self._scheme == "basic" and self._credentials is not None:
            return self._credentials.basic_header()
        if self._scheme == "bearer":
            token = self._tokens.get(scope)
            if token is not None and time.monotonic() < token.refresh_at:
                return f"Bearer {token.value}"
        return None

    async def prepare(self, scope: str) -> str | None:
        """Like :meth:`header`, but fetches a Bearer token first when it is due."""
        if self._scheme == "bearer" and self.header(scope) is None:
            await self.fetch_token(scope)
        return self.header(scope)

    async def answer(self, response: httpx.Response, body: bytes, scope: str,
                     sent: str | None) -> str:
        """Handle a first 401: return the ``Authorization`` value to retry with.

        Args:
            response: the 401 answer.
            body: its body, already read.
            scope: the scope the request needs (``repository:NAME:ACTIONS`` or ``""``).
            sent: the ``Authorization`` value the refused request carried.

        Raises:
            AuthenticationFailed: credentials are missing or were refused.
        """
        challenges = parse_www_authenticate(response.headers.get("www-authenticate", ""))
        by_scheme = {c.scheme: c for c in challenges}
        if "bearer" in by_scheme:
            challenge = by_scheme["bearer"]
            realm = challenge.params.get("realm")
            if not realm:
                raise ProtocolViolation("Bearer challenge without a realm", status=401)
            wanted = challenge.params.get("scope") or scope
            self._scheme, self._realm = "bearer", realm
            self._service = challenge.params.get("service")
            await self.fetch_token(wanted)
            if wanted != scope:
                self._tokens[scope] = self._tokens[wanted]
            header = self.header(scope)
            assert header is not None
            return header
        if "basic" in by_scheme:
            if self._credentials is None or (sent is not None and sent.startswith("Basic ")):
                raise self.refused(response, body)
            self._scheme = "basic"
            return self._credentials.basic_header()
        raise self.refused(response, body)

    def refused(self, response: httpx.Response, body: bytes = b"") -> RegistryError:
        """Classify a 401 that authenticating did not cure (``body``: its body, read).

        ``insufficient_scope`` means we are known but not allowed (``denied``); anything
        else means the credentials or token were not accepted (``auth``).
        """
        error = error_from_response(response, body)
        challenges = parse_www_authenticate(response.headers.get("www-authenticate", ""))
        if any(c.params.get("error") == "insufficient_scope" for c in challenges):
            return AccessDenied(
                f"not allowed: {error.message}",
                status=401, oci_code=error.oci_code, url=error.url,
            )
        if self._credentials is None and self._scheme != "bearer":
            error.message = f"credentials needed, none configured: {error.message}"
            error.args = (error.message,)
        return error

    async def fetch_token(self, scope: str) -> float:
        """Fetch a fresh token for ``scope`` from the realm, timed as the ``auth`` phase.

        Returns:
            The seconds it took.
        """
        if self._realm is None:
            raise ProtocolViolation("no Bearer realm known yet; ping the registry first")
        params: list[tuple[str, str | int | float | bool | None]] = []
        if self._service:
            params.append(("service", self._service))
        params.extend(("scope", part) for part in scope.split(" ") if part)
        headers = {}
        if self._credentials is not None and self._may_send_credentials(self._realm):
            headers["Authorization"] = self._credentials.basic_header()
            params.append(("account", self._credentials.username))
        started = time.perf_counter()
        with phase("auth"):
            request = self._http.build_request(
                "GET", self._realm, params=httpx.QueryParams(params), headers=headers
            )
            response = await send(self._http, request)
            content = await read_body(response, ANSWER_LIMIT)
            self.token_fetches += 1
            meter = current_meter()
            if meter is not None:
                meter.bytes_received += len(content)
            if response.status_code != 200:
                error = error_from_response(response, content)
                error.message = f"token service: {error.message}"
                error.args = (error.message,)
                raise error
            try:
                body = json.loads(content)
                value = body.get("token") or body.get("access_token")
                lifetime = float(body.get("expires_in") or _DEFAULT_TOKEN_LIFETIME)
            except (ValueError, AttributeError, TypeError, RecursionError) as exc:
                raise ProtocolViolation(f"token service answered non-JSON: {exc}") from exc
            if not isinstance(value, str) or not value:
                raise ProtocolViolation("token service answered without a token")
            if not 0 < lifetime <= _LONGEST_TOKEN_LIFETIME:  # also NaN
                # As docker does for an expires_in it cannot use: the default lifetime.
                lifetime = _DEFAULT_TOKEN_LIFETIME
        now = time.monotonic()
        margin = min(10.0, lifetime * 0.2)
        self._tokens[scope] = _Token(value, now + lifetime, now + lifetime - margin)
        return time.perf_counter() - started

    def _may_send_credentials(self, realm: str) -> bool:
        """Whether Basic credentials may go to ``realm``: over HTTPS, or on the registry's
        own host. Logs the first refusal per realm."""
        url = httpx.URL(realm)
        if url.scheme == "https" or self._registry_host in (None, url.host):
            return True
        if realm not in self._withheld_from:
            self._withheld_from.add(realm)
            log.warning("oci: credentials withheld from a plain-HTTP token realm on another "
                        "host; asking for an anonymous token", realm=str(url.copy_with(
                            query=None)), registry_host=self._registry_host)
        return False

    def forget(self) -> None:
        """Drop cached tokens (the next request fetches new ones)."""
        self._tokens.clear()


