"""The exporter's HTTP listeners (``/metrics`` and friends, the webhook receiver): uvicorn
inside the exporter's event loop, with bounds on what clients may hold."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

__all__ = ["HEADER_LIMIT", "IDLE_TIMEOUT", "QuietServer", "bounded_server"]

HEADER_LIMIT = 16 * 1024
"""The most bytes an incomplete request head may grow to (h11's bound): a client that
drips headers is answered 400 there, not buffered without end."""
IDLE_TIMEOUT = 5
"""Seconds an idle keep-alive connection is kept open."""


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the exporter owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bounded_server(app: ASGIApp, host: str, port: int, max_connections: int) -> QuietServer:
    """A server for ``app`` on ``host:port`` that holds at most ``max_connections``
    connections and requests at once (beyond them it answers 503 at once rather than
    queue), closes idle keep-alive connections after :data:`IDLE_TIMEOUT` and refuses
    request heads larger than :data:`HEADER_LIMIT`."""
    return QuietServer(uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
        timeout_graceful_shutdown=2, limit_concurrency=max_connections,
        timeout_keep_alive=IDLE_TIMEOUT, h11_max_incomplete_event_size=HEADER_LIMIT,
    ))
