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

A :class:`ScrapeSource` computes the increases and hands them to a
:class:`ScrapeRecorder` (the exporter's ingest metrics); it writes no series itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

import httpx
import structlog
from prometheus_client.parser import text_string_to_metric_families

from registry_slo.config import ScrapeFormat, ScrapeSourceConfig
from registry_slo.oci import reason_for_status
from registry_slo.vocabulary import OPERATIONS, STATUS_CODES

__all__ = ["SCRAPE_OUTCOMES", "Reading", "ScrapeOutcome", "ScrapeRecorder", "ScrapeSource",
           "parse"]

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


ScrapeOutcome = Literal["ok", "http_error", "unreachable", "malformed"]
"""How a read of a metrics endpoint went (``registry_slo_ingest_scrapes_total``)."""
SCRAPE_OUTCOMES: tuple[ScrapeOutcome, ...] = get_args(ScrapeOutcome)


class ScrapeRecorder(Protocol):
    """What a scrape source reports: the increase of the registry's counters since its
    previous read, its latency histogram and storage as read, and how each read went.

    ``region`` and ``source`` are the scrape source's; ``operation`` is normalised like
    every ingest source's.
    """

    def configure_scrape(self, source: str, outcomes: Iterable[str]) -> None:
        """Declare a scrape source: its series of every read outcome exist (at zero)."""
        ...

    def configure_requests(self, region: str, source: str, operations: Iterable[str],
                           codes: Iterable[str] = STATUS_CODES) -> None:
        """Declare a source's request series, every operation and ``code``, at zero."""
        ...

    def add_requests(
        self, region: str, source: str, operation: str, code: str, count: float
    ) -> None:
        """``count`` more requests answered with status ``code``."""
        ...

    def add_failures(
        self, region: str, source: str, operation: str, reason: str, count: float
    ) -> None:
        """``count`` more failed requests, whose status means ``reason``."""
        ...

    def add_bytes(
        self, region: str, source: str, operation: str, direction: str, count: float
    ) -> None:
        """``count`` more body bytes (direction ``egress``: to clients; ``ingress``)."""
        ...

    def reported_latency(
        self, region: str, source: str, operation: str, buckets: Mapping[float, float],
        total: float,
    ) -> None:
        """The registry's latency histogram as read: cumulative counts by upper bound
        (``inf`` included), and the sum."""
        ...

    def storage(
        self, region: str, source: str, used: float | None, capacity: float | None
    ) -> None:
        """Storage in use and allowed, in bytes (``None``: the registry does not say)."""
        ...

    def scraped(self, source: str, outcome: str) -> None:
        """One read ended with ``outcome``."""
        ...


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
    """Reads one metrics endpoint every ``interval`` until stopped.

    Args:
        config: the scrape source.
        recorder: receives what each read says.
    """

    def __init__(self, config: ScrapeSourceConfig, recorder: ScrapeRecorder) -> None:
        self.config = config
        self.recorder = recorder
        self._increase = _Increases()
        self.reads = 0
        recorder.configure_scrape(config.name, SCRAPE_OUTCOMES)
        recorder.configure_requests(config.region, config.name, OPERATIONS)

    def apply(self, reading: Reading) -> None:
        """Hand what changed since the previous reading to the recorder.

        Args:
            reading: what the endpoint said now.
        """
        c, r = self.config, self.recorder
        for (operation, code), value in reading.requests.items():
            count = self._increase(("requests", operation, code), value)
            if count:
                r.add_requests(c.region, c.name, operation, code, count)
                if code.isdigit() and int(code) >= 400:
                    reason = str(reason_for_status(int(code)))
                    r.add_failures(c.region, c.name, operation, reason, count)
        for (operation, direction), value in reading.bytes.items():
            count = self._increase(("bytes", operation, direction), value)
            if count:
                r.add_bytes(c.region, c.name, operation, direction, count)
        for operation, buckets in reading.latency.items():
            r.reported_latency(
                c.region, c.name, operation, buckets, reading.latency_sum.get(operation, 0.0)
            )
        self._increase.baseline = False
        if reading.storage_used is not None or reading.storage_capacity is not None:
            r.storage(c.region, c.name, reading.storage_used, reading.storage_capacity)

    async def read_once(self, client: httpx.AsyncClient) -> None:
        """One read: fetch, parse, apply; failures are counted, never raised."""
        outcome: ScrapeOutcome = "ok"
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
        self.recorder.scraped(self.config.name, outcome)
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
