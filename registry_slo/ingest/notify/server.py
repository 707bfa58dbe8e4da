"""Serve the webhook receiver on its own address (uvicorn, inside the exporter's loop)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn

from registry_slo.ingest.notify.receiver import NotificationReceiver

__all__ = ["serve_notifications"]


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the exporter owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _split(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an empty host means all


async def serve_notifications(receiver: NotificationReceiver, stop: asyncio.Event) -> None:
    """Serve ``receiver`` on ``config.listen`` until ``stop`` is set.

    Raises:
        OSError: the address cannot be bound.
    """
    host, port = _split(receiver.config.listen)
    server = _Server(uvicorn.Config(
        receiver.app, host=host, port=port, log_config=None, access_log=False,
        lifespan="off", timeout_graceful_shutdown=2,
    ))
    serving = asyncio.create_task(server.serve(), name="notifications")
    waiting = asyncio.create_task(stop.wait(), name="notifications-stop")
    await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    if not server.started:
        raise OSError(f"could not listen on {receiver.config.listen} for notifications")
