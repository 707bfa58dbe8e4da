"""A report's counts from the exporter's own SLO store (``state_dir``), for a review
without Prometheus: the SLI engine's hourly buckets over each SLO's period (minute
buckets over the last three days).

The store keeps what the engine needs for its windows, so a report from it covers at
most the last period (30 days by default) at hourly resolution; incidents are
recomputed at that resolution (a burn-rate row's short window of 5 minutes is then one
hour), failure reasons are not kept, and an hour in which the exporter was down cannot
be told from an hour without events: the report says so.
"""

from __future__ import annotations

from pathlib import Path

from registry_slo.config import SLOTarget
from registry_slo.report._compute import StepCounts
from registry_slo.report._prometheus import ReportError
from registry_slo.report._span import Span
from registry_slo.sli.engine import COARSE_WIDTH
from registry_slo.sli.store import StoreError, read_buckets

__all__ = ["StoreCounts"]

NOTE = ("from the exporter's store: hourly counts, incidents recomputed hourly, no "
        "failure reasons; an hour the exporter was down counts as an hour without events")


class StoreCounts:
    """:class:`~registry_slo.report._compute.CountSource` over a ``state_dir``.

    Raises:
        ReportError: there is no readable store in ``state_dir``.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        try:
            rows = read_buckets(state_dir)
        except StoreError as exc:
            raise ReportError(str(exc)) from None
        self._hours: dict[str, dict[int, tuple[float, float]]] = {
            target: {index: (bad, total) for width, index, bad, total in kept
                     if width == COARSE_WIDTH}
            for target, kept in rows.items()
        }

    @property
    def description(self) -> str:
        """``the SLO store in DIR``."""
        return f"the SLO store in {self.state_dir}"

    def counts(self, target: SLOTarget, span: Span, step: float) -> StepCounts:
        """Events per step (a whole number of hours): steps before the oldest hour the
        store holds for the target, or after the newest, are gaps."""
        if step % COARSE_WIDTH:
            raise ReportError("the store keeps hourly counts: use --step 1h (or whole hours)")
        hours = self._hours.get(target.key, {})
        per = int(step // COARSE_WIDTH)
        first, last = (min(hours), max(hours)) if hours else (1, 0)
        times: list[float] = []
        bad: list[float | None] = []
        total: list[float | None] = []
        for i in range(int(span.seconds // step)):
            end = span.start + (i + 1) * step
            start_hour = int((end - step) // COARSE_WIDTH)
            covered = [h for h in range(start_hour, start_hour + per) if first <= h <= last]
            times.append(end)
            if not covered:
                bad.append(None)
                total.append(None)
                continue
            bad.append(sum(hours.get(h, (0.0, 0.0))[0] for h in covered))
            total.append(sum(hours.get(h, (0.0, 0.0))[1] for h in covered))
        return StepCounts(times, bad, total)

    def totals(self, target: SLOTarget, span: Span) -> tuple[float, float]:
        """Bad and all events of the hours inside ``span``."""
        hours = self._hours.get(target.key, {})
        inside = [v for h, v in hours.items()
                  if span.start <= h * COARSE_WIDTH and (h + 1) * COARSE_WIDTH <= span.end]
        return sum(b for b, _ in inside), sum(t for _, t in inside)

    def alert_spans(self, target: SLOTarget, span: Span, step: float
                    ) -> list[tuple[float, float, str]]:
        """The store keeps no alerts: always recomputed."""
        return []

    def top_reason(self, target: SLOTarget, start: float, end: float) -> str | None:
        """The store keeps no failure reasons."""
        return None
