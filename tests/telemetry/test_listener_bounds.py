"""The exporter's HTTP listeners hold a bounded number of connections and refuse
oversized request heads (``registry_slo._serving``), with real uvicorn on loopback."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from registry_slo._serving import HEADER_LIMIT, bounded_server
from registry_slo.devenv import free_port


async def _ok(_: object) -> PlainTextResponse:
    return PlainTextResponse("ok\n")


async def test_beyond_max_connections_the_listener_answers_503_and_recovers() -> None:
    port = free_port()
    server = bounded_server(Starlette(routes=[Route("/", _ok)]), "127.0.0.1", port, 4)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{port}/"
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).status_code == 200
        idle = []
        for _ in range(4):  # clients that connect and say nothing (slowloris)
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            idle.append(writer)
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).status_code == 503
        for writer in idle:
            writer.close()
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).status_code == 200
        # A request head that keeps growing beyond the limit is refused, not buffered.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (HEADER_LIMIT * 2))
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(200), 5)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 400"), answer
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
