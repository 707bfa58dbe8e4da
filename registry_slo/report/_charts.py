"""Charts of a report, drawn with matplotlib (no display needed) as PNG bytes."""

from __future__ import annotations

import io
from datetime import UTC

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, no GUI toolkit

import matplotlib.dates as mdates
from matplotlib.figure import Figure

from registry_slo.report._compute import SLOResult
from registry_slo.report._span import Span

__all__ = ["burn_down_png"]

_COLOURS = {"page": "#d62728", "ticket": "#ff7f0e"}


def _when(at: float) -> float:
    """Unix seconds as matplotlib's date number: days since its epoch (1970 by default)."""
    return at / 86400.0


def burn_down_png(result: SLOResult, span: Span) -> bytes:
    """Remaining error budget across the span against the ideal straight line, with
    incidents shaded (page red, ticket orange) and gaps grey."""
    figure = Figure(figsize=(8, 3), dpi=100)
    # Fixed margins: a layout engine would measure every label again (a third of the time).
    figure.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.12)
    axes = figure.add_subplot()
    axes.plot([_when(span.start), _when(span.end)], [100, 0], linestyle="--",
              color="#7f7f7f", linewidth=1, label="ideal")
    if len(result.burn_down) > 1:
        axes.plot([_when(t) for t, _ in result.burn_down],
                  [100 * r for _, r in result.burn_down], color="#1f77b4", linewidth=1.5,
                  label="remaining")
    for incident in result.incidents:
        axes.axvspan(_when(incident.start), _when(incident.end), alpha=0.25,
                     color=_COLOURS.get(incident.severity, "#d62728"), linewidth=0)
    for start, end in result.gaps:
        axes.axvspan(_when(start), _when(end), alpha=0.3, color="#bbbbbb", linewidth=0)
    axes.axhline(0, color="black", linewidth=0.5)
    axes.set_ylabel("error budget left (%)")
    axes.set_xlim(_when(span.start), _when(span.end))
    axes.xaxis_date(UTC)
    axes.xaxis.set_major_formatter(
        mdates.DateFormatter("%m-%d", tz=UTC))  # type: ignore[no-untyped-call]
    axes.set_title(f"{result.slo} in {result.region}", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize=8)
    out = io.BytesIO()
    # No timestamp in the file: the same data gives the same bytes.
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()
