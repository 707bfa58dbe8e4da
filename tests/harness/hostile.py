"""A hostile registry for tests: a loopback HTTP server that answers each path with a
scripted, possibly malicious, raw answer (endless bodies, huge headers, deep JSON).

It is not a registry: it stands for the peer a real registry could turn into (a
compromised host, a broken proxy) in the size, depth and slow-drip cases no real
registry can be made to produce. Every request it received is recorded (method, path,
headers) so a test can check what the client sent, e.g. that credentials were withheld.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import BinaryIO, Self

__all__ = ["HostileRegistry", "Request", "Responder", "chunked_forever", "json_answer",
           "raw_answer", "sized_answer"]


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    method: str
    target: str
    headers: Mapping[str, str]

    @property
    def path(self) -> str:
        """The target without its query."""
        return self.target.split("?", 1)[0]


Responder = Callable[[Request, BinaryIO], None]
"""Writes a whole raw HTTP answer for a request."""


def raw_answer(head: bytes, body: bytes = b"") -> Responder:
    """Answer exactly ``head`` (status line and headers, CRLF-terminated) and ``body``."""

    def respond(_: Request, out: BinaryIO) -> None:
        out.write(head + b"\r\n" + body)

    return respond


def json_answer(status: int, body: bytes, headers: Mapping[str, str] | None = None
                ) -> Responder:
    """A well-formed JSON answer."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}").encode()
    return raw_answer(head, body)


def sized_answer(status: int, size: int, headers: Mapping[str, str] | None = None
                 ) -> Responder:
    """A ``size``-byte body of ``x``, written in 64 KiB pieces (not built in memory)."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())

    def respond(_: Request, out: BinaryIO) -> None:
        out.write(f"HTTP/1.1 {status} X\r\nContent-Length: {size}\r\n{extra}\r\n".encode())
        piece = b"x" * 65536
        left = size
        while left > 0:
            out.write(piece[:left])
            left -= len(piece)

    return respond


def chunked_forever(status: int = 200) -> Responder:
    """A chunked body that never ends (until the client goes away)."""

    def respond(_: Request, out: BinaryIO) -> None:
        out.write(f"HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
        while True:
            out.write(chunk)

    return respond


@dataclass
class HostileRegistry:
    """Serve ``routes`` (path → responder; ``"*"`` for any other path) on 127.0.0.1.

    ``with HostileRegistry({...}) as hostile: hostile.url`` …
    """

    routes: Mapping[str, Responder]
    host: str = "127.0.0.1"
    received: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while True:
                    line = self.rfile.readline(65536)
                    if not line.strip():
                        return
                    method, target, _ = line.decode("latin-1").split(" ", 2)
                    headers: dict[str, str] = {}
                    while (header := self.rfile.readline(65536)) not in (b"\r\n", b"\n", b""):
                        name, _, value = header.decode("latin-1").partition(":")
                        headers[name.strip().lower()] = value.strip()
                    length = int(headers.get("content-length", "0") or 0)
                    if length:
                        self.rfile.read(length)
                    request = Request(method, target, headers)
                    owner.received.append(request)
                    respond = owner.routes.get(request.path) or owner.routes.get("*")
                    try:
                        if respond is None:
                            self.wfile.write(b"HTTP/1.1 404 X\r\nContent-Length: 0\r\n\r\n")
                        else:
                            respond(request, self.wfile)
                        self.wfile.flush()
                    except OSError:  # the client gave up: what a hostile peer wants
                        return

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((self.host, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The ephemeral port."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
