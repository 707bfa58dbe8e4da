"""The exporter's own health: build info, internal errors, process and runtime metrics.

The OpenTelemetry span accounting (``registry_slo_otel_spans_total``, see
:class:`~registry_slo.telemetry.otel.SpanAccounting`) joins this group when traces
are on (:meth:`ExporterHealth.register`).
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Counter, Info
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from registry_slo import __version__
from registry_slo.telemetry._series import SeriesGroup, Union
from registry_slo.vocabulary import Component

__all__ = ["ExporterHealth"]


class ExporterHealth(SeriesGroup):
    """``process_*``, ``python_*``, ``registry_slo_build_info`` and
    ``registry_slo_internal_errors_total{component}``."""

    def __init__(self) -> None:
        super().__init__()
        runtime = CollectorRegistry()
        ProcessCollector(registry=runtime)
        PlatformCollector(registry=runtime)
        GCCollector(registry=runtime)
        self.add(Union(runtime))
        self.build_info = self.add(Info(
            "registry_slo_build", "Version of the registry-slo exporter.", registry=None
        ))
        self.build_info.info({"version": __version__, "python": platform.python_version()})
        self.internal_errors = self.add(Counter(
            "registry_slo_internal_errors",
            "Unexpected exceptions inside the exporter, by component (a bug: please report).",
            ["component"],
            registry=None,
        ))

    def internal_error(self, component: Component) -> None:
        """Count one unexpected exception of ``component``.

        Args:
            component: where it happened (see :data:`registry_slo.vocabulary.Component`).
        """
        self.internal_errors.labels(component).inc()

    def register(self, collector: Collector) -> None:
        """Serve another collector of the exporter's own health (e.g. the OpenTelemetry
        span accounting) with this group.

        Args:
            collector: an unregistered collector.
        """
        self.add(collector)
