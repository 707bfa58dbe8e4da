"""The report's charts: one burn-down per SLO and region (drawn by :mod:`registry_slo._render`)."""

from __future__ import annotations

from registry_slo._render import Line, Shade
from registry_slo._render import burn_down_png as _burn_down_png
from registry_slo.report._compute import SLOResult
from registry_slo.report._span import Span

__all__ = ["burn_down_png"]


def burn_down_png(result: SLOResult, span: Span) -> bytes:
    """Remaining error budget across the span against the ideal straight line, with
    incidents shaded (page red, ticket orange) and gaps grey."""
    return _burn_down_png(
        f"{result.slo} in {result.region}", span.start, span.end,
        [Line("remaining", result.burn_down)],
        [*(Shade(i.start, i.end, i.severity) for i in result.incidents),
         *(Shade(start, end, "gap") for start, end in result.gaps)],
    )
