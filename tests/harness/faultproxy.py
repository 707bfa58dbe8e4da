"""An HTTP/1.1 fault-injection proxy to put in front of a real registry in tests.

`FaultProxy` is a raw asyncio stream server that parses HTTP with h11 (so it controls
the socket: it can stall or reset a connection, not only answer) and runs on its own
event loop in a background thread, so sync and async tests can use it alike.

Modes (see `FaultMode`), switchable at run time with `FaultProxy.set_mode`:

- ``passthrough``: forward to the upstream registry.
- ``stall``: read the request, never answer (until the client gives up).
- ``reset``: read the request, then close the socket with ``SO_LINGER 0`` (TCP RST).
- ``status``: answer a given status with an OCI error body (and ``Retry-After``).
- ``corrupt_blobs``: forward, but flip the first body byte of successful
  ``GET .../blobs/sha256:...`` responses.
- ``delay``: wait N seconds, then forward.
- ``headers``: forward, adding the fault's ``headers`` to the registry's answer (rate-limit
  headers a metered registry would send, well-formed or not).

A fault may be limited to request paths matching a regex, to some methods, to the
first N matching requests, and to a random share of them (seeded); other requests pass
through.

Forwarding rewrites ``Host`` to the upstream and absolute ``Location`` headers back to
the proxy, re-frames request bodies with ``Content-Length``, streams responses with the
upstream's framing (``Content-Length`` or chunked) and keeps connections alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import random
import re
import socket
import struct
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import h11

__all__ = ["Fault", "FaultMode", "FaultProxy"]

_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_READ_SIZE = 65536
_DEFAULT_ERROR_CODES = {
    400: "UNSUPPORTED",
    401: "UNAUTHORIZED",
    403: "DENIED",
    404: "NAME_UNKNOWN",
    405: "UNSUPPORTED",
    429: "TOOMANYREQUESTS",
    503: "UNAVAILABLE",
}


class FaultMode(enum.StrEnum):
    """What the proxy does with a request the current fault applies to."""

    PASSTHROUGH = "passthrough"
    STALL = "stall"
    RESET = "reset"
    STATUS = "status"
    CORRUPT_BLOBS = "corrupt_blobs"
    DELAY = "delay"
    HEADERS = "headers"


@dataclass(frozen=True)
class Fault:
    """The active fault.

    Attributes:
        mode: what to do.
        status: HTTP status for ``status`` mode.
        error_code: OCI error code in the body (default derived from ``status``,
            e.g. 429 → ``TOOMANYREQUESTS``, otherwise ``UNKNOWN``).
        message: OCI error message in the body.
        retry_after: ``Retry-After`` header value (seconds) for ``status`` mode.
        headers: extra response headers for ``status`` and ``headers`` modes.
        delay: seconds to wait before forwarding in ``delay`` mode.
        path: regex searched in the request target; ``None`` matches every path.
        methods: upper-case methods the fault applies to; ``None`` matches all.
        times: apply to at most this many matching requests, then pass through.
        probability: apply to each matching request with this probability, drawn from
            the proxy's seeded generator (`FaultProxy(seed=...)`), so a run is repeatable.
    """

    mode: FaultMode = FaultMode.PASSTHROUGH
    status: int = 500
    error_code: str | None = None
    message: str = "fault injected by registry-slo test proxy"
    retry_after: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    path: str | None = None
    methods: frozenset[str] | None = None
    times: int | None = None
    probability: float = 1.0

    def matches(self, method: str, target: str) -> bool:
        """Whether this fault applies to ``method`` ``target`` (ignoring ``times``)."""
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return self.path is None or re.search(self.path, target) is not None

    def body(self) -> bytes:
        """The OCI error JSON body answered in ``status`` mode."""
        code = self.error_code or _DEFAULT_ERROR_CODES.get(self.status, "UNKNOWN")
        return json.dumps({"errors": [{"code": code, "message": self.message}]}).encode()


@dataclass
class _Upstream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    conn: h11.Connection
    used: bool = False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await self.writer.wait_closed()


class _UpstreamGone(Exception):
    """A reused keep-alive upstream connection closed before answering."""


async def _next_event(
    conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None = None
) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        if writer is not None and conn.they_are_waiting_for_100_continue:
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
        conn.receive_data(await reader.read(_READ_SIZE))


class FaultProxy:
    """Fault-injecting HTTP proxy on an ephemeral 127.0.0.1 port.

    Args:
        upstream: base URL of the upstream registry (``http://127.0.0.1:PORT``).

    Attributes:
        requests: number of requests received (faulted or not).
        connections: number of client connections accepted.
        faults_injected: number of requests a non-passthrough fault applied to.
        seen: ``(method, target)`` of every request, oldest first.
        faulted: ``(method, target)`` of every request a fault applied to, oldest first.

    Args:
        upstream: the registry's ``http://`` URL.
        seed: seed of the generator that draws a fault's ``probability``.
    """

    def __init__(self, upstream: str, seed: int = 0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self._up_host = parts.hostname
        self._up_port = parts.port or 80
        self._up_netloc = parts.netloc
        self.requests = 0
        self.connections = 0
        self.faults_injected = 0
        self.seen: list[tuple[str, str]] = []
        self.faulted: list[tuple[str, str]] = []
        self._random = random.Random(seed)
        self._fault = Fault()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._port: int | None = None

    # -- addresses ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The proxy's TCP port."""
        if self._port is None:
            raise RuntimeError("fault proxy not started")
        return self._port

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}"

    # -- faults ------------------------------------------------------------------------

    @property
    def fault(self) -> Fault:
        """The active fault."""
        return self._fault

    @property
    def mode(self) -> FaultMode:
        """The active fault's mode."""
        return self._fault.mode

    def set_mode(
        self,
        mode: FaultMode | str,
        *,
        status: int = 500,
        error_code: str | None = None,
        message: str = "fault injected by registry-slo test proxy",
        retry_after: int | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        path: str | None = None,
        methods: Iterable[str] | None = None,
        times: int | None = None,
        probability: float = 1.0,
    ) -> Fault:
        """Switch the fault applied to subsequent requests (thread-safe).

        Args:
            mode: a `FaultMode` or its value.
            status: status answered in ``status`` mode.
            error_code: OCI error code (default derived from ``status``).
            message: OCI error message.
            retry_after: ``Retry-After`` seconds in ``status`` mode.
            headers: extra headers in ``status`` mode.
            delay: seconds before forwarding in ``delay`` mode.
            path: regex the request target must contain (e.g. ``"/blobs/"``).
            methods: methods the fault is limited to.
            times: number of matching requests to fault before passing through.
            probability: share of matching requests to fault, at random (seeded).

        Returns:
            The new `Fault`.
        """
        fault = Fault(
            mode=FaultMode(mode),
            status=status,
            error_code=error_code,
            message=message,
            retry_after=retry_after,
            headers=dict(headers or {}),
            delay=delay,
            path=path,
            methods=frozenset(m.upper() for m in methods) if methods is not None else None,
            times=times,
            probability=probability,
        )
        with self._lock:
            self._fault = fault
        return fault

    def passthrough(self) -> None:
        """Stop injecting faults."""
        self.set_mode(FaultMode.PASSTHROUGH)

    def _take_fault(self, method: str, target: str) -> Fault | None:
        with self._lock:
            self.requests += 1
            self.seen.append((method, target))
            fault = self._fault
            if fault.mode is FaultMode.PASSTHROUGH or not fault.matches(method, target):
                return None
            if fault.times is not None:
                if fault.times <= 0:
                    return None
                self._fault = dataclasses.replace(fault, times=fault.times - 1)
            if fault.probability < 1.0 and self._random.random() >= fault.probability:
                return None
            self.faults_injected += 1
            self.faulted.append((method, target))
            return fault

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        """Start listening in a background thread with its own event loop.

        Returns:
            ``self``.
        """
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, "127.0.0.1", 0)
                )
                self._port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # pragma: no cover - reported to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError("fault proxy failed to start") from failure[0]
        return self

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        """Close the listener and every open connection, then stop the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- connection handling -----------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        with self._lock:
            self.connections += 1
        conn = h11.Connection(h11.SERVER)
        upstream: _Upstream | None = None
        aborted = False
        try:
            while True:
                received = await self._read_request(conn, reader, writer)
                if received is None:
                    break
                request, body = received
                method = request.method.decode("ascii")
                target = request.target.decode("latin-1")
                fault = self._take_fault(method, target)
                mode = fault.mode if fault is not None else FaultMode.PASSTHROUGH
                if mode is FaultMode.STALL:
                    while await reader.read(_READ_SIZE):
                        pass
                    break
                if mode is FaultMode.RESET:
                    self._reset(writer)
                    aborted = True
                    break
                if fault is not None and mode is FaultMode.STATUS:
                    await self._send_status(conn, writer, fault, method)
                else:
                    if fault is not None and mode is FaultMode.DELAY:
                        await asyncio.sleep(fault.delay)
                    corrupt = (
                        mode is FaultMode.CORRUPT_BLOBS
                        and method == "GET"
                        and "/blobs/sha256:" in target
                    )
                    extra = fault.headers if fault is not None and mode is FaultMode.HEADERS \
                        else {}
                    upstream = await self._forward(conn, writer, request, body, upstream, corrupt,
                                                   extra)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (OSError, h11.ProtocolError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Proxy shutdown. Finish normally: asyncio's stream callback calls
            # task.exception(), which raises for a cancelled task.
            pass
        finally:
            if upstream is not None:
                await upstream.close()
            if not aborted:
                writer.close()
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await writer.wait_closed()
            self._tasks.discard(task)

    @staticmethod
    async def _read_request(
        conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[h11.Request, bytes] | None:
        event = await _next_event(conn, reader, writer)
        if not isinstance(event, h11.Request):
            return None
        chunks: list[bytes] = []
        while True:
            part = await _next_event(conn, reader, writer)
            if isinstance(part, h11.Data):
                chunks.append(bytes(part.data))
            elif isinstance(part, h11.EndOfMessage):
                return event, b"".join(chunks)
            else:
                return None

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    @staticmethod
    async def _send_status(
        conn: h11.Connection, writer: asyncio.StreamWriter, fault: Fault, method: str
    ) -> None:
        body = fault.body()
        headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Docker-Distribution-Api-Version", "registry/2.0"),
            ("Content-Length", str(len(body))),
        ]
        if fault.retry_after is not None:
            headers.append(("Retry-After", str(fault.retry_after)))
        headers.extend(fault.headers.items())
        data = conn.send(h11.Response(status_code=fault.status, headers=headers)) or b""
        if method != "HEAD":
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        writer.write(data)
        await writer.drain()

    async def _connect_upstream(self) -> _Upstream:
        reader, writer = await asyncio.open_connection(self._up_host, self._up_port)
        return _Upstream(reader, writer, h11.Connection(h11.CLIENT))

    def _upstream_request(self, request: h11.Request, body: bytes) -> h11.Request:
        had_body = False
        headers: list[tuple[bytes, bytes]] = []
        for name, value in request.headers:
            lname = bytes(name).lower()
            if lname in (b"content-length", b"transfer-encoding"):
                had_body = True
                continue
            if lname in _HOP_BY_HOP or lname in (b"host", b"expect"):
                continue
            headers.append((bytes(name), bytes(value)))
        headers.insert(0, (b"Host", self._up_netloc.encode()))
        if had_body or body:
            headers.append((b"Content-Length", str(len(body)).encode()))
        return h11.Request(method=request.method, target=request.target, headers=headers)

    def _client_headers(self, response: h11.Response) -> list[tuple[bytes, bytes]]:
        up_base = self.upstream.encode()
        headers: list[tuple[bytes, bytes]] = []
        for name, value in response.headers:
            lname = bytes(name).lower()
            if lname in (b"connection", b"keep-alive", b"proxy-connection"):
                continue
            out = bytes(value)
            if lname == b"location" and out.startswith(up_base):
                out = self.url.encode() + out[len(up_base) :]
            headers.append((bytes(name), out))
        return headers

    async def _exchange(
        self, upstream: _Upstream, request: h11.Request, body: bytes
    ) -> h11.Response:
        conn = upstream.conn
        data = conn.send(self._upstream_request(request, body)) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        reused = upstream.used
        upstream.used = True
        try:
            upstream.writer.write(data)
            await upstream.writer.drain()
            while True:
                event = await _next_event(conn, upstream.reader)
                if isinstance(event, h11.Response):
                    return event
                if isinstance(event, h11.InformationalResponse):
                    continue
                raise _UpstreamGone
        except (OSError, h11.RemoteProtocolError, _UpstreamGone) as exc:
            if reused:
                raise _UpstreamGone from exc
            raise

    async def _forward(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        request: h11.Request,
        body: bytes,
        upstream: _Upstream | None,
        corrupt: bool,
        extra: Mapping[str, str],
    ) -> _Upstream | None:
        try:
            if upstream is None:
                upstream = await self._connect_upstream()
            try:
                response = await self._exchange(upstream, request, body)
            except _UpstreamGone:
                await upstream.close()
                upstream = await self._connect_upstream()
                response = await self._exchange(upstream, request, body)
        except (OSError, h11.ProtocolError, _UpstreamGone):
            if upstream is not None:
                await upstream.close()
            await self._send_status(
                conn,
                writer,
                Fault(
                    FaultMode.STATUS,
                    status=502,
                    error_code="UNAVAILABLE",
                    message=f"fault proxy: upstream {self.upstream} unreachable",
                ),
                request.method.decode("ascii"),
            )
            return None

        writer.write(
            conn.send(
                h11.Response(
                    status_code=response.status_code,
                    headers=[*self._client_headers(response),
                             *((k.encode(), v.encode()) for k, v in extra.items())],
                    reason=response.reason,
                )
            )
            or b""
        )
        flip = corrupt and response.status_code in (200, 206)
        try:
            while True:
                event = await _next_event(upstream.conn, upstream.reader)
                if isinstance(event, h11.Data):
                    chunk = bytes(event.data)
                    if flip and chunk:
                        chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                        flip = False
                    writer.write(conn.send(h11.Data(data=chunk)) or b"")
                    await writer.drain()
                elif isinstance(event, h11.EndOfMessage):
                    writer.write(conn.send(h11.EndOfMessage()) or b"")
                    await writer.drain()
                    break
                else:
                    raise ConnectionResetError("upstream closed mid-response")
        except BaseException:
            await upstream.close()
            raise
        up = upstream.conn
        if up.our_state is h11.DONE and up.their_state is h11.DONE:
            up.start_next_cycle()
            return upstream
        await upstream.close()
        return None
