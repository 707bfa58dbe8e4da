"""The exporter's HTTP endpoints: ``/metrics``, ``/healthz``, ``/readyz``, ``/api/v1/slo``
and the status page at ``/``."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable, Sequence

from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from registry_slo import __version__
from registry_slo.sli.evaluation import SLOStatus

__all__ = ["build_app"]


def build_app(
    render_metrics: Callable[[bool], bytes],
    ready: Callable[[], bool],
    slos: Callable[[], Sequence[SLOStatus]] | None = None,
    status_page: Callable[[], str] | None = None,
) -> Starlette:
    """The ASGI application.

    Args:
        render_metrics: renders what ``/metrics`` serves (its argument: OpenMetrics,
            when the scraper asks for it), e.g. :meth:`ExporterMetrics.render
            <registry_slo.telemetry.metrics.ExporterMetrics.render>`.
        ready: whether ``/readyz`` answers 200 (every probe has run once).
        slos: the SLI engine's evaluation, served as JSON at ``/api/v1/slo``.
        status_page: renders the HTML status page served at ``/`` (without it, ``/``
            is a plain-text index).

    Returns:
        The Starlette application uvicorn serves.
    """

    async def index(request: Request) -> Response:
        if status_page is not None:
            return HTMLResponse(await asyncio.to_thread(status_page))
        return PlainTextResponse(
            f"registry-slo {__version__}\n\n"
            "/metrics      Prometheus metrics\n"
            "/api/v1/slo   SLO windows, burn rates and error budgets (JSON)\n"
            "/healthz      liveness\n"
            "/readyz       readiness: every probe has completed a first run\n"
        )

    async def slo_api(request: Request) -> Response:
        statuses = await asyncio.to_thread(slos) if slos is not None else []
        return JSONResponse({
            "generated_at": time.time(),
            "slos": [status.to_json() for status in statuses],
        })

    async def metrics_endpoint(request: Request) -> Response:
        _, content_type = choose_encoder(request.headers.get("accept", ""))
        openmetrics = content_type.startswith("application/openmetrics-text")
        # Rendering takes milliseconds per thousand series: keep it off the event loop
        # so probe timings are not disturbed by scrapes.
        body = await asyncio.to_thread(render_metrics, openmetrics)
        headers = {}
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = await asyncio.to_thread(gzip.compress, body, 1)
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=content_type, headers=headers)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if ready():
            return PlainTextResponse("ready\n")
        return PlainTextResponse("waiting for the first run of every probe\n", status_code=503)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Route("/api/v1/slo", slo_api),
        ]
    )
