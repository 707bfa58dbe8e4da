"""The exporter's HTTP listeners (``/metrics`` and friends, the webhook receiver): uvicorn
inside the exporter's event loop, with bounds on what clients may hold, and the
protection a web configuration file asks for (TLS, client certificates, Basic users,
response headers, a request rate limit: :class:`WebProtection`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import secrets
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import h11
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "HEADER_LIMIT",
    "HEAD_TIMEOUT",
    "IDLE_TIMEOUT",
    "BasicUsers",
    "QuietServer",
    "RateLimit",
    "TLSServer",
    "WebProtection",
    "bounded_server",
]

HEADER_LIMIT = 16 * 1024
"""The most bytes an incomplete request head may grow to (h11's bound): a client that
drips headers is answered 400 there, not buffered without end."""
IDLE_TIMEOUT = 5
"""Seconds an idle keep-alive connection is kept open."""
HEAD_TIMEOUT = 10.0
"""Seconds a client has, from connecting (after the TLS handshake) or from the end of the
previous answer, to send a whole request head; then the connection is closed. Without it
a client dripping a byte at a time holds a connection for ever (slowloris)."""


@dataclass(frozen=True)
class TLSServer:
    """HTTPS for a listener: its certificate and, for mutual TLS, the clients' CA.

    Attributes:
        cert_file: the server certificate (PEM, chain after it).
        key_file: its private key (PEM).
        client_ca_file: CAs that client certificates must chain to.
        client_auth: ``CERT_NONE`` (no client certificate asked), ``CERT_OPTIONAL``
            (verified when given) or ``CERT_REQUIRED`` (mutual TLS).
        min_version: the oldest TLS version accepted.
        max_version: the newest TLS version accepted.
        prefer_server_ciphers: the server's cipher order wins (TLS 1.2).
    """

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client_auth: ssl.VerifyMode = ssl.CERT_NONE
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    prefer_server_ciphers: bool = True

    def context(self) -> ssl.SSLContext:
        """A server context with these settings.

        Raises:
            ssl.SSLError, OSError: a file cannot be read or does not hold what it should.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = self.min_version
        context.maximum_version = self.max_version
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file is not None:
            context.load_verify_locations(cafile=self.client_ca_file)
        context.verify_mode = self.client_auth
        if self.prefer_server_ciphers:
            context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        return context


@dataclass(frozen=True)
class RateLimit:
    """A token bucket over every request of a listener: ``burst`` at once, then one per
    ``interval`` seconds; beyond it the answer is 429."""

    interval: float
    burst: int


@dataclass(frozen=True)
class WebProtection:
    """What a listener requires of its clients and adds to its answers.

    Attributes:
        tls: serve HTTPS (else plain HTTP).
        users: Basic-auth user names and their bcrypt hashes; empty: no Basic auth.
        headers: response headers added to every answer (``Strict-Transport-Security``,
            ``X-Frame-Options``, ...).
        rate_limit: requests beyond it are answered 429.
    """

    tls: TLSServer | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    rate_limit: RateLimit | None = None

    @property
    def scheme(self) -> str:
        """``https`` or ``http``."""
        return "https" if self.tls is not None else "http"


class BasicUsers:
    """Checks Basic credentials against bcrypt hashes.

    bcrypt is slow by design (tens of milliseconds at cost 10), so a verified user name
    and password pair is remembered (as a digest, never the password) and later requests
    with it cost a hash lookup; checks run in a worker thread, off the event loop. An
    unknown user name costs one bcrypt check against a dummy hash of the highest cost in
    use, so the answer's timing does not tell which user names exist.
    """

    CACHE_SIZE = 1024
    """Verified credentials remembered (least recently used dropped first)."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        costs = [int(hashed.split(b"$")[2]) for hashed in self._users.values()]
        # A hash of a random password: nothing matches it.
        self._dummy = bcrypt.hashpw(secrets.token_urlsafe(32).encode(),
                                    bcrypt.gensalt(max(costs, default=4)))
        self._verified: OrderedDict[bytes, None] = OrderedDict()

    def _key(self, user: str, password: bytes, hashed: bytes) -> bytes:
        return hashlib.sha256(b"\0".join((user.encode(), hashed, password))).digest()

    def check_now(self, user: str, password: bytes) -> bool:
        """Whether ``user`` with ``password`` is allowed (blocking: bcrypt runs here)."""
        hashed = self._users.get(user)
        if hashed is None:
            # bcrypt reads at most 72 bytes; longer passwords are refused below as well.
            bcrypt.checkpw(password[:72], self._dummy)
            return False
        key = self._key(user, password, hashed)
        if key in self._verified:
            self._verified.move_to_end(key)
            return True
        if len(password) > 72:  # bcrypt would ignore the rest: never a match
            bcrypt.checkpw(password[:72], self._dummy)
            return False
        if not bcrypt.checkpw(password, hashed):
            return False
        self._verified[key] = None
        if len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return True

    async def check(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header holds allowed Basic credentials."""
        if authorization is None:
            return False
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        if not sep:
            return False
        try:
            name = user.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return await asyncio.to_thread(self.check_now, name, password)


class _Bucket:
    """The token bucket of a :class:`RateLimit`."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(float(self._limit.burst),
                           self._tokens + (now - self._at) / self._limit.interval)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class _Guard:
    """ASGI middleware: the rate limit, then Basic auth, then the app; every answer
    (401 and 429 too) carries the configured headers."""

    def __init__(self, app: ASGIApp, protection: WebProtection) -> None:
        self._app = app
        self._users = BasicUsers(protection.users) if protection.users else None
        self._bucket = _Bucket(protection.rate_limit) if protection.rate_limit else None
        self._headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                         for k, v in protection.headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and self._headers:
                message = {**message, "headers": [*message.get("headers", []),
                                                  *self._headers]}
            await send(message)

        if self._bucket is not None and not self._bucket.take():
            await _refuse(send_with_headers, 429, b"too many requests\n", [])
            return
        if self._users is not None:
            authorization = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    authorization = value.decode("latin-1")
            if not await self._users.check(authorization):
                await _refuse(send_with_headers, 401, b"unauthorized\n",
                              [(b"www-authenticate", b'Basic realm="registry-slo"')])
                return
        await self._app(scope, receive, send_with_headers)


async def _refuse(send: Send, status: int, body: bytes,
                  headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class _HeadTimeoutProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with :data:`HEAD_TIMEOUT`: uvicorn bounds idle
    keep-alive time, but any byte cancels that, and a new connection has no bound."""

    _head_timer: asyncio.TimerHandle | None = None

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_expired)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._disarm_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the exporter owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bounded_server(
    app: ASGIApp, host: str, port: int, max_connections: int,
    protection: WebProtection | None = None,
) -> QuietServer:
    """A server for ``app`` on ``host:port`` that holds at most ``max_connections``
    connections and requests at once (beyond them it answers 503 at once rather than
    queue), closes idle keep-alive connections after :data:`IDLE_TIMEOUT`, connections
    without a whole request head after :data:`HEAD_TIMEOUT`, and refuses request heads
    larger than :data:`HEADER_LIMIT`; with ``protection``, what it requires.

    Raises:
        ssl.SSLError, OSError: the TLS files cannot be used.
    """
    tls = protection.tls if protection is not None else None
    context = tls.context() if tls is not None else None  # fails here, not at serve()
    if protection is not None and (protection.users or protection.headers
                                   or protection.rate_limit):
        app = _Guard(app, protection)

    def tls_context(_config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]
                    ) -> ssl.SSLContext:
        assert context is not None
        return context

    return QuietServer(uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
        timeout_graceful_shutdown=2, limit_concurrency=max_connections,
        timeout_keep_alive=IDLE_TIMEOUT, h11_max_incomplete_event_size=HEADER_LIMIT,
        http=_HeadTimeoutProtocol,
        ssl_context_factory=tls_context if context is not None else None,
    ))
