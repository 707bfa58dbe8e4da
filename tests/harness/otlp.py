"""A real OTLP/gRPC receiver, built from opentelemetry-proto's collector services."""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Any, Self

import grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class ReceivedSpan:
    """A received span, flattened for assertions."""

    def __init__(self, span: Span) -> None:
        self.name = span.name
        self.trace_id = span.trace_id.hex()
        self.span_id = span.span_id.hex()
        self.parent_span_id = span.parent_span_id.hex() or None
        self.kind = span.kind
        self.status_code = span.status.code
        self.attributes = {a.key: _value(a.value) for a in span.attributes}

    def __repr__(self) -> str:
        return f"<span {self.name} {self.attributes}>"


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, receiver: OTLPReceiver) -> None:
        self.receiver = receiver

    def Export(self, request: Any, context: Any) -> Any:
        with self.receiver.lock:
            self.receiver.raw.append(request.SerializeToString())
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self.receiver.spans.extend(ReceivedSpan(s) for s in scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    def __init__(self, receiver: OTLPReceiver) -> None:
        self.receiver = receiver

    def Export(self, request: Any, context: Any) -> Any:
        with self.receiver.lock:
            self.receiver.raw.append(request.SerializeToString())
            for resource_metrics in request.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    self.receiver.metrics.extend(scope_metrics.metrics)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class OTLPReceiver:
    """A gRPC OTLP endpoint on 127.0.0.1 collecting spans and metrics."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[ReceivedSpan] = []
        self.metrics: list[Any] = []
        self.raw: list[bytes] = []
        """Every export request as received (protobuf bytes), spans and metrics."""
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(self), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
            _Metrics(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` (plaintext gRPC)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start serving."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop(grace=None)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
