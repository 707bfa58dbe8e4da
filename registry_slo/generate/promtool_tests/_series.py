"""What the promtool test documents share: the input series in promtool's notation, the
timing of scrapes and rule evaluations, and the shape of tests and expected alerts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from registry_slo._units import format_duration
from registry_slo.config import PrometheusConfig
from registry_slo.generate._model import num, selector

__all__ = [
    "DEFAULT_TIMING",
    "Timing",
    "alert_test",
    "encode_values",
    "expected_alert",
    "no_alerts",
    "series",
]


@dataclass(frozen=True, slots=True)
class Timing:
    """The clock of a promtool test document: input samples one scrape interval apart
    (one probe run per scrape), rules evaluated every evaluation interval, as the
    configured Prometheus (the ``prometheus`` section) does.

    Attributes:
        scrape: seconds between input samples.
        evaluation: seconds between rule evaluations.
    """

    scrape: int
    evaluation: int

    @classmethod
    def of(cls, prometheus: PrometheusConfig) -> Timing:
        """The timing of the configured Prometheus."""
        return cls(int(prometheus.scrape_interval), int(prometheus.evaluation_interval))

    def samples(self, seconds: float) -> int:
        """Input samples in ``seconds``."""
        return int(seconds // self.scrape)

    def next_sample(self, seconds: float) -> int:
        """The time of the first input sample at or after ``seconds``."""
        return math.ceil(seconds / self.scrape) * self.scrape

    def seen(self, seconds: float) -> int:
        """The first rule evaluation that sees a change made at ``seconds``."""
        return self.round_up(self.next_sample(seconds))

    def round_up(self, seconds: float) -> int:
        """Up to the next rule evaluation."""
        return math.ceil(seconds / self.evaluation) * self.evaluation

    def evaluations(self, start: float, stop: float) -> list[int]:
        """Every rule evaluation from ``start`` up to ``stop`` (both included)."""
        return list(range(self.round_up(start), int(stop) + 1, self.evaluation))

    def scenario(
        self,
        name: str,
        input_series: list[dict[str, str]],
        alert_rule_test: list[dict[str, Any]],
        promql_expr_test: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """One promtool test: input series sampled every scrape interval, and what must
        (not) fire and which expressions must hold when."""
        test: dict[str, Any] = {
            "name": name,
            "interval": format_duration(self.scrape),
            "input_series": input_series,
            "alert_rule_test": alert_rule_test,
        }
        if promql_expr_test is not None:
            test["promql_expr_test"] = promql_expr_test
        return test

    def document(self, rule_file: str, tests: list[dict[str, Any]]) -> dict[str, Any]:
        """A promtool test document for ``rule_file`` (relative to the document)."""
        return {
            "rule_files": [rule_file],
            "evaluation_interval": format_duration(self.evaluation),
            "tests": tests,
        }


DEFAULT_TIMING = Timing.of(PrometheusConfig())
"""30s scrapes, 1m evaluations: the ``prometheus`` section's defaults."""


def encode_values(values: Sequence[float | None]) -> str:
    """Write samples in promtool's expanding notation (``0+1x719 _x3 5x20``).

    Args:
        values: one value per scrape; ``None`` is a missing sample.

    Returns:
        The ``values`` string of a promtool input series.
    """
    parts: list[str] = []
    i, n = 0, len(values)
    while i < n:
        first = values[i]
        j = i + 1
        if first is None:
            while j < n and values[j] is None:
                j += 1
            parts.append("_" if j - i == 1 else f"_x{j - i}")
            i = j
            continue
        following = values[j] if j < n else None
        step = 0.0 if following is None else following - first
        while j < n:
            value = values[j]
            expected = first + step * (j - i)
            if value is None or not math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12):
                break
            j += 1
        count = j - i
        if count == 1:
            parts.append(num(first))
        elif step == 0:
            parts.append(f"{num(first)}x{count - 1}")
        else:
            sign = "+" if step > 0 else "-"
            parts.append(f"{num(first)}{sign}{num(abs(step))}x{count - 1}")
        i = j
    return " ".join(parts)


def series(name: str, labels: dict[str, str], values: Sequence[float | None]) -> dict[str, str]:
    """A promtool input series: one value per scrape (``None``: no sample)."""
    return {"series": f"{name}{selector(**labels)}", "values": encode_values(values)}


def expected_alert(rule: Mapping[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """The alert ``rule`` raises for a series with ``labels``: its labels plus the rule's,
    its annotations with ``{{ $labels.X }}`` filled in from ``labels``."""
    annotations = {}
    for key, text in rule["annotations"].items():
        for label, value in labels.items():
            text = text.replace(f"{{{{ $labels.{label} }}}}", value)
        annotations[key] = text
    return {"exp_labels": {**labels, **rule["labels"]}, "exp_annotations": annotations}


def alert_test(name: str, at: float, expected: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """An ``alert_rule_test``: exactly ``expected`` alerts of ``name`` fire at ``at``."""
    return {"alertname": name, "eval_time": format_duration(at), "exp_alerts": list(expected)}


def no_alerts(names: Iterable[str], times: Iterable[float]) -> list[dict[str, Any]]:
    """``alert_rule_test`` entries: none of ``names`` fires at any of ``times``."""
    names = list(names)
    return [alert_test(name, t, []) for t in times for name in names]
