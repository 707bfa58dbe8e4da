"""Serve the webhook receiver on its own address (uvicorn, inside the exporter's loop)."""

from __future__ import annotations

import asyncio
import contextlib

from registry_slo._serving import WebProtection, bounded_server
from registry_slo.config import listen_address
from registry_slo.ingest.notify.receiver import NotificationReceiver

__all__ = ["serve_notifications"]


async def serve_notifications(
    receiver: NotificationReceiver, stop: asyncio.Event,
    protection: WebProtection | None = None,
) -> None:
    """Serve ``receiver`` on ``config.listen`` until ``stop`` is set, requiring what
    ``protection`` asks for.

    Raises:
        OSError: the address cannot be bound.
    """
    host, port = listen_address(receiver.config.listen)
    server = bounded_server(receiver.app, host, port, receiver.config.max_connections,
                            protection)
    serving = asyncio.create_task(server.serve(), name="notifications")
    waiting = asyncio.create_task(stop.wait(), name="notifications-stop")
    await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    if not server.started:
        raise OSError(f"could not listen on {receiver.config.listen} for notifications")
