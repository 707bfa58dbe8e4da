"""The SLI engine's series: error ratios, burn rates and budget per SLO and region.

Computed at scrape from the engine's buckets (adding up a few thousand numbers per SLO
and region), so they are as fresh as the scrape. They are the exporter's own view; the
generated recording rules compute the same quantities in Prometheus (``slo:*``) from
the probe counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from registry_slo.sli.evaluation import SLOStatus

__all__ = ["SLOMetrics"]

Evaluate = Callable[[], Sequence[SLOStatus]]

_ENGINE = "Computed by the exporter's own SLI engine at scrape time."


class SLOMetrics(Collector):
    """``registry_slo_slo_*``: empty until :meth:`track` is given the engine."""

    def __init__(self) -> None:
        self._evaluate: Evaluate | None = None

    def track(self, evaluate: Evaluate) -> None:
        """Serve what ``evaluate()`` returns at every scrape."""
        self._evaluate = evaluate

    def collect(self) -> Iterable[Metric]:
        """The SLO series."""
        statuses = self._evaluate() if self._evaluate is not None else ()
        names = ["slo", "region"]
        objective = GaugeMetricFamily(
            "registry_slo_slo_objective_ratio",
            "The SLO's objective as a ratio (99.9% is 0.999).",
            labels=names,
        )
        error_ratio = GaugeMetricFamily(
            "registry_slo_slo_sli_error_ratio",
            "Bad events / all events of the SLO's SLI over the window (absent while the "
            f"window holds no events). {_ENGINE}",
            labels=[*names, "window"],
        )
        burn = GaugeMetricFamily(
            "registry_slo_slo_burn_rate",
            "Error ratio over the window / error budget (1 spends exactly the budget over "
            f"the period). {_ENGINE}",
            labels=[*names, "window"],
        )
        events = GaugeMetricFamily(
            "registry_slo_slo_window_events",
            "Events of the SLO's SLI in the window (probe runs, or replication-lag "
            f"samples). {_ENGINE}",
            labels=[*names, "window"],
        )
        remaining = GaugeMetricFamily(
            "registry_slo_slo_error_budget_remaining_ratio",
            "Fraction of the period's error budget left, 1 - period burn rate (negative "
            f"once overspent; absent while the period holds no events). {_ENGINE}",
            labels=names,
        )
        last_event = GaugeMetricFamily(
            "registry_slo_slo_last_event_timestamp_seconds",
            "Unix time at which the engine last counted an event of the SLO.",
            labels=names,
        )
        for status in statuses:
            values = [status.slo.name, status.region]
            objective.add_metric(values, status.slo.objective_ratio)
            for window in status.windows:
                labels = [*values, window.name]
                events.add_metric(labels, window.total)
                if window.error_ratio is not None:
                    error_ratio.add_metric(labels, window.error_ratio)
                if window.burn_rate is not None:
                    burn.add_metric(labels, window.burn_rate)
            budget = status.budget_remaining
            if budget is not None:
                remaining.add_metric(values, budget)
            if status.last_event is not None:
                last_event.add_metric(values, status.last_event)
        return [objective, error_ratio, burn, events, remaining, last_event]
