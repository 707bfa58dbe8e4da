"""OpenTelemetry outputs: probe traces and probe metrics over OTLP (gRPC or HTTP).

Spans leave through the SDK's batch processor: a bounded queue drained by a background
thread, so an unreachable collector never slows probing; spans that cannot be exported
(queue full, export failed) are counted in ``registry_slo_otel_spans_total``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import structlog
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Tracer
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from registry_slo import __version__
from registry_slo.config import OtelConfig
from registry_slo.observation import Observation
from registry_slo.vocabulary import DURATION_BUCKETS

__all__ = ["CollectorHost", "OpenTelemetry", "SpanAccounting"]

log = structlog.get_logger("registry_slo.otel")


class CollectorHost(Protocol):
    """Where a collector can be registered: a ``CollectorRegistry``, or the exporter's
    :class:`~registry_slo.telemetry.health.ExporterHealth`."""

    def register(self, collector: Collector) -> None:
        """Serve ``collector``'s series from now on."""
        ...


class SpanAccounting(Collector):
    """What happened to the spans handed to the exporter, as Prometheus counters.

    ``dropped`` counts spans the full queue pushed out, estimated at hand-off from the
    spans ended, exported, failed and in flight (exact except for the instant between the
    export thread taking a batch and starting to send it).
    """

    def __init__(self, max_queue_size: int) -> None:
        self.max_queue_size = max_queue_size
        self._lock = threading.Lock()
        self.ended = 0
        self.exported = 0
        self.failed = 0
        self.dropped = 0
        self.in_flight = 0

    @property
    def queued(self) -> int:
        """Spans waiting in the queue."""
        return max(0, self.ended - self.exported - self.failed - self.in_flight - self.dropped)

    def on_end(self) -> None:
        """A sampled span was handed to the batch processor."""
        with self._lock:
            if self.queued >= self.max_queue_size:
                self.dropped += 1  # the processor's deque pushes out its oldest span
            self.ended += 1

    def export_started(self, count: int) -> None:
        """The export thread is sending ``count`` spans."""
        with self._lock:
            self.in_flight += count

    def export_finished(self, count: int, ok: bool) -> None:
        """The export of ``count`` spans succeeded (``ok``) or failed."""
        with self._lock:
            self.in_flight -= count
            if ok:
                self.exported += count
            else:
                self.failed += count

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        spans = CounterMetricFamily(
            "registry_slo_otel_spans",
            "Probe spans by outcome: exported, failed (the collector refused or was "
            "unreachable), dropped (the bounded queue was full).",
            labels=["outcome"],
        )
        with self._lock:
            spans.add_metric(["exported"], self.exported)
            spans.add_metric(["failed"], self.failed)
            spans.add_metric(["dropped"], self.dropped)
            queued = self.queued
        yield spans
        yield GaugeMetricFamily(
            "registry_slo_otel_span_queue_size", "Spans waiting to be exported.", value=queued
        )


class _CountingExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, accounting: SpanAccounting) -> None:
        self._inner = inner
        self._accounting = accounting

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._accounting.export_started(len(spans))
        ok = False
        try:
            result = self._inner.export(spans)
            ok = result is SpanExportResult.SUCCESS
            return result
        finally:
            self._accounting.export_finished(len(spans), ok)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _CountingProcessor(SpanProcessor):
    def __init__(self, inner: SpanProcessor, accounting: SpanAccounting) -> None:
        self._inner = inner
        self._accounting = accounting

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self._accounting.on_end()
        self._inner.on_end(span)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _endpoint(config: OtelConfig, signal: str) -> str | None:
    if config.endpoint is None:
        return None  # the exporter reads OTEL_EXPORTER_OTLP_[SIGNAL_]ENDPOINT
    if config.effective_protocol == "grpc":
        return config.endpoint
    return config.endpoint.rstrip("/") + f"/v1/{signal}"


def _exporter_args(config: OtelConfig, signal: str) -> dict[str, Any]:
    args: dict[str, Any] = {"timeout": config.export_timeout}
    endpoint = _endpoint(config, signal)
    if endpoint is not None:
        args["endpoint"] = endpoint
    if config.headers:
        args["headers"] = dict(config.headers)
    if config.effective_protocol == "grpc":
        if endpoint is not None and endpoint.startswith("http://"):
            args["insecure"] = True
        elif config.ca_file is not None:
            import grpc

            args["credentials"] = grpc.ssl_channel_credentials(config.ca_file.read_bytes())
    elif config.ca_file is not None:
        args["certificate_file"] = str(config.ca_file)
    return args


def span_exporter(config: OtelConfig) -> SpanExporter:
    """The OTLP span exporter for the configured protocol."""
    args = _exporter_args(config, "traces")
    if config.effective_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter(**args)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter(**args)


def metric_exporter(config: OtelConfig) -> MetricExporter:
    """The OTLP metric exporter for the configured protocol."""
    args = _exporter_args(config, "metrics")
    if config.effective_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        return GrpcMetricExporter(**args)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    return HttpMetricExporter(**args)


class OpenTelemetry:
    """The tracer probes use, and the OTLP metric instruments probe results feed.

    Args:
        config: the ``otel`` section.
        span_accounting_registry: where :class:`SpanAccounting` is registered when
            traces are on (the exporter's own health metrics).
    """

    def __init__(
        self, config: OtelConfig, span_accounting_registry: CollectorHost | None = None,
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> None:
        self.config = config
        self.tracer: Tracer | None = None
        self.accounting: SpanAccounting | None = None
        self._tracer_provider: TracerProvider | None = None
        self._meter_provider: MeterProvider | None = None
        resource = Resource.create(
            {"service.name": config.service_name, "service.version": __version__}
        )
        if config.traces:
            self.accounting = SpanAccounting(config.max_queue_size)
            if span_accounting_registry is not None:
                span_accounting_registry.register(self.accounting)
            exporter = _CountingExporter(span_exporter(config), self.accounting)
            processor = BatchSpanProcessor(
                exporter,
                max_queue_size=config.max_queue_size,
                max_export_batch_size=min(512, config.max_queue_size),
                export_timeout_millis=config.export_timeout * 1000,
            )
            self._tracer_provider = TracerProvider(resource=resource)
            self._tracer_provider.add_span_processor(_CountingProcessor(processor, self.accounting))
            self.tracer = self._tracer_provider.get_tracer("registry_slo", __version__)
        if config.metrics:
            reader = PeriodicExportingMetricReader(
                metric_exporter(config),
                export_interval_millis=config.metrics_interval * 1000,
                export_timeout_millis=config.export_timeout * 1000,
            )
            self._meter_provider = MeterProvider(
                resource=resource,
                metric_readers=[reader],
                views=[View(
                    instrument_name="registry_slo.probe.duration",
                    aggregation=ExplicitBucketHistogramAggregation(list(buckets)),
                )],
            )
            meter = self._meter_provider.get_meter("registry_slo", __version__)
            self._requests = meter.create_counter(
                "registry_slo.probe.requests", unit="{run}", description="Probe runs attempted.")
            self._failures = meter.create_counter(
                "registry_slo.probe.failures", unit="{run}",
                description="Probe runs that failed, by reason.")
            self._duration = meter.create_histogram(
                "registry_slo.probe.duration", unit="s", description="Duration of probe runs.")
            self._bytes = meter.create_counter(
                "registry_slo.probe.io", unit="By", description="Bytes moved by probes.")

    def record(self, observation: Observation) -> None:
        """Feed one probe result to the OTLP metric instruments (a scheduler sink)."""
        if self._meter_provider is None or observation.source != "probe":
            return
        attributes = {"region": observation.region, "probe": observation.operation}
        self._requests.add(1, attributes)
        if not observation.success:
            self._failures.add(1, {**attributes, "reason": str(observation.reason)})
        self._duration.record(observation.duration_seconds, attributes)
        self._bytes.add(observation.bytes_sent, {**attributes, "direction": "sent"})
        self._bytes.add(observation.bytes_received, {**attributes, "direction": "received"})

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Flush and stop, waiting at most ``timeout`` seconds (a dead collector must not
        hold up the exporter's exit)."""
        for provider in (self._tracer_provider, self._meter_provider):
            if provider is None:
                continue
            try:
                await asyncio.wait_for(asyncio.to_thread(provider.shutdown), timeout)
            except TimeoutError:
                log.warning("telemetry not flushed: the OTLP collector did not answer in time",
                            timeout_seconds=timeout)
