"""A registry's own metrics endpoint, normalised into the project's metrics.

Registries count since they started; we read them on an interval and add the increase
since the previous read to the same ``registry_slo_registry_*`` series that log and
webhook sources feed (``source`` = the scrape's name), so one dashboard serves every
implementation. The first read of a source is a baseline: what happened before the
exporter was watching is not counted as a burst. A counter that went down means the
registry restarted, and its new value is the increase.

What each implementation says:

- ``distribution`` (and Harbor's registry component, which is distribution):
  ``registry_http_requests_total{code,handler,method}`` → requests and failures by
  operation, ``registry_http_{request,response}_size_bytes_sum`` → bytes,
  ``registry_http_request_duration_seconds`` → the registry's latency histogram, served
  with its own buckets as ``registry_slo_registry_reported_request_duration_seconds``.
- ``zot``: ``zot_http_requests_total{code,method}`` (no route: operation ``other``),
  ``zot_repo_storage_bytes`` → storage used.
- ``harbor`` (its exporter component): ``harbor_project_quota_usage_byte`` and
  ``harbor_project_quota_byte`` → storage used and capacity.

The registry counts every client, the exporter's probes included: it cannot tell them
apart the way log sources do (by user agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
import structlog
from prometheus_client.parser import text_string_to_metric_families

from registry_slo.config import ScrapeFormat, ScrapeSourceConfig
from registry_slo.oci import reason_for_status
from registry_slo.telemetry.metrics import ExporterMetrics

__all__ = ["Reading", "ScrapeSource", "parse"]

log = structlog.get_logger("registry_slo.ingest")

_HANDLERS: dict[tuple[str, str], str] = {
    ("base", "get"): "auth",
    ("catalog", "get"): "catalog",
    ("tags", "get"): "tags_list",
    ("manifest", "get"): "pull_manifest",
    ("manifest", "head"): "pull_manifest",
    ("manifest", "put"): "push_manifest",
    ("manifest", "delete"): "delete",
    ("blob", "get"): "pull_blob",
    ("blob", "head"): "check_blob",
    ("blob", "delete"): "delete",
}


def operation_of(handler: str, method: str) -> str:
    """The operation of distribution's ``handler`` label and HTTP method."""
    if handler.startswith("blob_upload"):
        return "push_blob"
    return _HANDLERS.get((handler, method.lower()), "other")


@dataclass
class Reading:
    """What one read of a metrics endpoint says, cumulative since the registry started."""

    requests: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    """(operation, code) → requests."""
    bytes: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    """(operation, direction) → bytes (egress: to clients; ingress: from them)."""
    latency: dict[str, dict[float, float]] = field(default_factory=dict)
    """operation → cumulative bucket counts by upper bound (``inf`` included)."""
    latency_sum: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    storage_used: float | None = None
    storage_capacity: float | None = None


def parse(fmt: ScrapeFormat, text: str) -> Reading:
    """Read a Prometheus text exposition of format ``fmt``.

    Raises:
        ValueError: the text is not a Prometheus exposition.
    """
    reading = Reading()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if math.isnan(value):
                continue
            if fmt in ("distribution", "harbor"):
                _distribution(reading, name, labels, value)
            if fmt == "zot":
                _zot(reading, name, labels, value)
            if fmt == "harbor":
                _harbor(reading, name, value)
    return reading


def _distribution(reading: Reading, name: str, labels: dict[str, str], value: float) -> None:
    handler, method = labels.get("handler", ""), labels.get("method", "")
    if name == "registry_http_requests_total":
        reading.requests[(operation_of(handler, method), labels.get("code", ""))] += value
    elif name == "registry_http_response_size_bytes_sum":
        # Size metrics carry no method: bodies sent are pulls, bodies received pushes.
        reading.bytes[(operation_of(handler, method or "get"), "egress")] += value
    elif name == "registry_http_request_size_bytes_sum":
        reading.bytes[(operation_of(handler, method or "put"), "ingress")] += value
    elif name == "registry_http_request_duration_seconds_bucket":
        buckets = reading.latency.setdefault(operation_of(handler, method), defaultdict(float))
        buckets[float(labels["le"])] += value
    elif name == "registry_http_request_duration_seconds_sum":
        reading.latency_sum[operation_of(handler, method)] += value


def _zot(reading: Reading, name: str, labels: dict[str, str], value: float) -> None:
    if name == "zot_http_requests_total":
        reading.requests[("other", labels.get("code", ""))] += value
    elif name == "zot_repo_storage_bytes":
        reading.storage_used = (reading.storage_used or 0.0) + value


def _harbor(reading: Reading, name: str, value: float) -> None:
    if name == "harbor_project_quota_usage_byte":
        reading.storage_used = (reading.storage_used or 0.0) + value
    elif name == "harbor_project_quota_byte" and value > 0:  # -1: no quota
        reading.storage_capacity = (reading.storage_capacity or 0.0) + value


class _Increases:
    """Increase of each cumulative value since the previous read (restart-aware).

    Everything the first read shows is the baseline; a series that appears in a later
    read started from zero since then.
    """

    def __init__(self) -> None:
        self._last: dict[object, float] = {}
        self.baseline = True

    def __call__(self, key: object, value: float) -> float:
        previous = self._last.get(key)
        self._last[key] = value
        if previous is None:
            return 0.0 if self.baseline else value
        return value if value < previous else value - previous


class ScrapeSource:
    """Reads one metrics endpoint every ``interval`` until stopped."""

    def __init__(self, config: ScrapeSourceConfig, metrics: ExporterMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self._increase = _Increases()
        self.reads = 0

    def apply(self, reading: Reading) -> None:
        """Add what changed since the previous reading to the metrics."""
        c, m = self.config, self.metrics
        for (operation, code), value in reading.requests.items():
            count = self._increase(("requests", operation, code), value)
            if count:
                m.registry_requests.labels(c.region, c.name, operation, code).inc(count)
                if code.isdigit() and int(code) >= 400:
                    reason = str(reason_for_status(int(code)))
                    m.registry_failures.labels(c.region, c.name, operation, reason).inc(count)
        for (operation, direction), value in reading.bytes.items():
            count = self._increase(("bytes", operation, direction), value)
            if count:
                m.registry_bytes.labels(c.region, c.name, operation, direction).inc(count)
        for operation, buckets in reading.latency.items():
            m.reported_latency.update(
                c.region, c.name, operation, buckets, reading.latency_sum.get(operation, 0.0)
            )
        self._increase.baseline = False
        if reading.storage_used is not None:
            m.registry_storage_used.labels(c.region, c.name).set(reading.storage_used)
        if reading.storage_capacity is not None:
            m.registry_storage_capacity.labels(c.region, c.name).set(reading.storage_capacity)

    async def read_once(self, client: httpx.AsyncClient) -> None:
        """One read: fetch, parse, apply; failures are counted, never raised."""
        outcome = "ok"
        try:
            response = await client.get(self.config.url)
            response.raise_for_status()
            reading = await asyncio.to_thread(parse, self.config.format, response.text)
        except httpx.HTTPStatusError as exc:
            outcome = "http_error"
            detail = f"answered {exc.response.status_code}"
        except httpx.HTTPError as exc:
            outcome = "unreachable"
            detail = f"{type(exc).__name__}: {exc}"
        except (ValueError, KeyError) as exc:
            outcome = "malformed"
            detail = f"{type(exc).__name__}: {exc}"
        else:
            self.apply(reading)
            self.reads += 1
        self.metrics.ingest_scrapes.labels(self.config.name, outcome).inc()
        if outcome != "ok":
            log.warning("ingest: could not read a registry's metrics", source=self.config.name,
                        url=self.config.url, outcome=outcome, detail=detail)

    async def run(self, stop: asyncio.Event) -> None:
        """Read every ``interval`` until ``stop`` is set."""
        async with httpx.AsyncClient(timeout=self.config.timeout) as client:
            while not stop.is_set():
                await self.read_once(client)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.interval)
