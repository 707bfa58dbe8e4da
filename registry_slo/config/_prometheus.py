"""The Prometheus that scrapes the exporter and evaluates the generated rules.

The generator needs its timing: a ``rate()`` window holding fewer than four scrapes is
unreliable (one missed scrape and it holds one sample, which gives no rate at all), and an
alert's ``for:`` shorter than one evaluation interval means nothing. The ServiceMonitor
and scrape configurations use the same ``scrape_interval``.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from registry_slo._units import Duration
from registry_slo.config._base import Strict
from registry_slo.vocabulary import ALERT_WINDOWS

__all__ = ["MIN_SCRAPES_PER_WINDOW", "PrometheusConfig"]

MIN_SCRAPES_PER_WINDOW = 4
"""A range window holds at least this many scrape intervals (the usual ``rate()``
guidance)."""

_SHORTEST_WINDOW = float(ALERT_WINDOWS[0])
"""The shortest burn-rate window (5m): it must hold four scrapes, and the shortest
non-zero ``for:`` of the generated alerts (5m, on the 6h page) one evaluation."""


class PrometheusConfig(Strict):
    """Timing of the Prometheus that runs the generated rules.

    Attributes:
        scrape_interval: how often it scrapes the exporter.
        evaluation_interval: how often it evaluates rule groups.
    """

    scrape_interval: Duration = Field(
        default=30.0, description="how often Prometheus scrapes the exporter (default 30s)"
    )
    evaluation_interval: Duration = Field(
        default=60.0, description="how often Prometheus evaluates the rules (default 1m)"
    )

    @field_validator("scrape_interval", "evaluation_interval")
    @classmethod
    def _whole(cls, value: float) -> float:
        if not value >= 1 or value != int(value):
            raise ValueError(f"must be whole seconds, at least 1s, not {value:g}s")
        return value

    @field_validator("scrape_interval")
    @classmethod
    def _scrape(cls, value: float) -> float:
        longest = _SHORTEST_WINDOW / MIN_SCRAPES_PER_WINDOW
        if value > longest:
            raise ValueError(
                f"at most {longest:g}s: the shortest burn-rate window "
                f"({_SHORTEST_WINDOW / 60:g}m) must hold {MIN_SCRAPES_PER_WINDOW} scrapes, "
                f"not {value:g}s"
            )
        return value

    @field_validator("evaluation_interval")
    @classmethod
    def _evaluation(cls, value: float) -> float:
        if value > _SHORTEST_WINDOW:
            raise ValueError(
                f"at most {_SHORTEST_WINDOW / 60:g}m: the shortest `for:` of the generated "
                f"alerts and the shortest burn-rate window, not {value:g}s"
            )
        return value

    @property
    def shortest_window(self) -> float:
        """The shortest range window the rules may use: four scrape intervals."""
        return MIN_SCRAPES_PER_WINDOW * self.scrape_interval

    def window(self, seconds: float) -> float:
        """``seconds``, raised to :attr:`shortest_window` when shorter."""
        return max(seconds, self.shortest_window)

    def hold(self, seconds: float) -> float:
        """A ``for:`` duration: 0 stays 0 (fire at once), else at least one evaluation."""
        return 0.0 if seconds <= 0 else max(seconds, self.evaluation_interval)
