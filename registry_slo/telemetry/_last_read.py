"""Collectors of registries' own counters, as last read by a probe or a scrape source.

The registry counts since it started; these serve its cumulative values as counters
(or histograms), so that ``rate()`` handles its restarts like any other counter reset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Metric
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["RegistryCacheCounters", "ReportedLatency"]


class RegistryCacheCounters(Collector):
    """A pull-through cache's own hit/miss counters, as last read from the registry.

    They are the registry's counters (reset when it restarts), exposed as counters so
    ``rate()`` handles the resets: the cache hit ratio is
    ``rate(registry_slo_cache_hits_total) / rate(registry_slo_cache_requests_total)``.
    """

    _FIELDS = (("requests", "Requests"), ("hits", "Hits"), ("misses", "Misses"))

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], dict[str, float]] = {}

    def update(self, region: str, kind: str, values: Mapping[str, float]) -> None:
        """Store the registry's counters for ``kind`` (a cache probe's counter sink).

        Args:
            region: the cache region.
            kind: ``blob`` or ``manifest``.
            values: ``{"Requests": n, "Hits": n, "Misses": n}`` (any of them).
        """
        self._values[(region, kind)] = dict(values)

    def collect(self) -> Iterable[Metric]:
        """``registry_slo_cache_{requests,hits,misses}_total{region,kind}``."""
        for name, field_name in self._FIELDS:
            family = CounterMetricFamily(
                f"registry_slo_cache_{name}",
                f"Pull-through cache {name} counted by the registry itself (read from its "
                "/debug/vars or metrics endpoint when the cache probe runs), by kind.",
                labels=["region", "kind"],
            )
            for (region, kind), values in sorted(self._values.items()):
                if field_name in values:
                    family.add_metric([region, kind], values[field_name])
            yield family


class ReportedLatency(Collector):
    """Registries' own request-latency histograms, as last read, with their own buckets.

    Served as ``registry_slo_registry_reported_request_duration_seconds{region,source,
    operation}``: the registry's cumulative counts (resets when it restarts, which
    ``rate()`` handles), its operations normalised like every other ingest source.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[str, str, str], tuple[dict[float, float], float]] = {}

    def update(
        self, region: str, source: str, operation: str, buckets: Mapping[float, float],
        total: float,
    ) -> None:
        """Store cumulative bucket counts and the sum.

        Args:
            region: the registry's region.
            source: the scrape source.
            operation: the normalised operation.
            buckets: upper bound (``inf`` included) → cumulative count.
            total: the sum of the observed durations.
        """
        self._values[(region, source, operation)] = (dict(buckets), total)

    def collect(self) -> Iterable[Metric]:
        """The histograms, one per (region, source, operation)."""
        family = HistogramMetricFamily(
            "registry_slo_registry_reported_request_duration_seconds",
            "Request latency as the registry itself measures it (its metrics endpoint, read "
            "by a scrape source), with the registry's own buckets.",
            labels=["region", "source", "operation"],
        )
        for labels, (buckets, total) in sorted(self._values.items()):
            ordered = sorted(buckets.items())
            family.add_metric(
                list(labels),
                [(floatToGoString(le), count) for le, count in ordered],  # type: ignore[no-untyped-call]
                total,
            )
        yield family
