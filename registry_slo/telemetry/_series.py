"""What every metric collector of :mod:`registry_slo.telemetry` shares.

Each domain (probe results, region health, ingest, the exporter's own health, SLOs)
owns its series in one collector; :class:`~registry_slo.telemetry.metrics.ExporterMetrics`
registers the collectors in one registry. The series are created unregistered
(``registry=None``) and collected through their domain's :class:`SeriesGroup`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Metric, disable_created_metrics
from prometheus_client.registry import Collector

from registry_slo.vocabulary import Component

__all__ = ["CountInternalError", "SeriesGroup", "Union"]

# ``*_created`` series double the series count and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

CountInternalError = Callable[[Component], None]
"""Counts one unexpected exception of a component
(``registry_slo_internal_errors_total``, owned by
:class:`~registry_slo.telemetry.health.ExporterHealth`)."""

_C = TypeVar("_C", bound=Collector)


class SeriesGroup(Collector):
    """The series of one domain, collected together, in the order they were added."""

    def __init__(self) -> None:
        self._members: list[Collector] = []

    def add(self, member: _C) -> _C:
        """Collect ``member`` with the group's other series.

        Args:
            member: an unregistered metric or collector.

        Returns:
            ``member``, so that a series is defined and kept in one statement.
        """
        self._members.append(member)
        return member

    def collect(self) -> Iterable[Metric]:
        """Every member's metric families."""
        for member in self._members:
            yield from member.collect()


class Union(Collector):
    """Everything of one registry, as one collector (to compose registries)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        """The registry's metric families."""
        return self._registry.collect()
