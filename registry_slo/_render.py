"""Rendering shared by the outputs that draw documents: the status page and the report.

- :func:`environment`: a Jinja2 environment over a package's ``templates/`` folder, with
  autoescaping for ``*.html.j2`` (Markdown templates are not HTML and are not escaped).
- :func:`burn_down_png` and :func:`burn_rate_png`: charts drawn with matplotlib's Agg
  canvas (no display), returned as PNG bytes. They take plain series, so each output
  keeps its own data model.

matplotlib is imported on the first chart, not with this module: an exporter whose status
page nobody opens does not carry it (about 45 MB).
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import jinja2

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "Line",
    "Shade",
    "burn_down_png",
    "burn_rate_png",
    "data_uri",
    "environment",
]

SHADE_COLOURS = {"page": "#d62728", "ticket": "#ff7f0e", "gap": "#bbbbbb"}
"""Shaded spans: incidents by severity, and spans without data."""


@dataclass(frozen=True)
class Line:
    """One line of a chart: ``(Unix time, value)`` points and the legend's label."""

    label: str
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Shade:
    """A shaded span of a chart: an incident (``page``/``ticket``) or a ``gap``."""

    start: float
    end: float
    kind: str


def environment(package: str, **helpers: Callable[..., Any] | object) -> jinja2.Environment:
    """The Jinja2 environment of ``package``'s ``templates/`` folder.

    Args:
        package: the package holding the templates, e.g. ``registry_slo.report``.
        helpers: globals the templates may call (formatters) or read.
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=jinja2.select_autoescape(["html.j2"], default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.globals.update(helpers)
    return env


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, for a document that must open offline."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _days(at: float) -> float:
    """Unix seconds as matplotlib's date number: days since its epoch (1970 by default)."""
    return at / 86400.0


class _Canvas:
    """A figure kept for the next chart of its kind (in this thread): a new figure builds
    its axes, ticks and labels again, a quarter of a chart's time. What one chart adds
    is removed before the next, so a reused canvas draws the same bytes as a new one."""

    def __init__(self, height: float, setup: Callable[[Axes], None]) -> None:
        import matplotlib

        matplotlib.use("Agg")  # no display, no GUI toolkit
        import matplotlib.dates as mdates
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(8, height), dpi=100)
        # Fixed margins: a layout engine would measure every label again.
        self.figure.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.14)
        self.axes = self.figure.add_subplot()
        self.axes.xaxis_date("UTC")
        self.formatter = mdates.DateFormatter
        self.axes.grid(alpha=0.3)
        setup(self.axes)
        self.drawn: list[Any] = []

    def begin(self) -> Axes:
        """The axes, cleared of the previous chart."""
        for artist in self.drawn:
            artist.remove()
        self.drawn.clear()
        self.axes.set_prop_cycle(None)  # the same colours as on a new figure
        return self.axes

    def add(self, artist: Any) -> None:
        """Remember an artist to remove before the next chart."""
        self.drawn.append(artist)

    def finish(self, title: str, start: float, end: float, date_format: str,
               legend: Literal["lower left", "upper left"], bottom: float | None = None
               ) -> bytes:
        """Scale the axes to what is drawn and write the PNG."""
        axes = self.axes
        axes.set_autoscaley_on(True)
        axes.relim()
        axes.autoscale_view(scalex=False)
        if bottom is not None:
            axes.set_ylim(bottom=bottom)
        axes.set_xlim(_days(start), _days(end))
        axes.xaxis.set_major_formatter(
            self.formatter(date_format, tz="UTC"))  # type: ignore[no-untyped-call]
        axes.set_title(title, fontsize=10, y=1.0)  # a fixed place: no measuring of the axes
        axes.legend(loc=legend, fontsize=8)
        out = io.BytesIO()
        # No timestamp in the file: the same data gives the same bytes.
        self.figure.savefig(out, format="png", metadata={"Software": None})
        return out.getvalue()


_canvases = threading.local()


def _canvas(kind: str, height: float, setup: Callable[[Axes], None]) -> _Canvas:
    found: _Canvas | None = getattr(_canvases, kind, None)
    if found is None:
        found = _Canvas(height, setup)
        setattr(_canvases, kind, found)
    return found


def _setup_burn_down(axes: Axes) -> None:
    axes.axhline(0, color="black", linewidth=0.5)
    axes.set_ylabel("error budget left (%)")


def _setup_burn_rate(axes: Axes) -> None:
    axes.axhline(1, color="#7f7f7f", linewidth=1, linestyle=":", label="1x (budget pace)")
    axes.set_yscale("symlog", linthresh=1.0)
    axes.set_ylabel("burn rate")


def burn_down_png(title: str, start: float, end: float, lines: Sequence[Line],
                  shades: Sequence[Shade] = (), date_format: str = "%m-%d") -> bytes:
    """Error budget left (as a fraction: 1 is all of it) across ``[start, end]`` against
    the ideal straight line from all of it to none, one line per series.

    Args:
        title: the chart's title.
        start: Unix time the budget period starts.
        end: Unix time it ends.
        lines: the budget left over time; a line of fewer than two points is not drawn.
        shades: incidents and gaps to shade.
        date_format: ``strftime`` format of the time axis.
    """
    canvas = _canvas("burn_down", 3, _setup_burn_down)
    axes = canvas.begin()
    canvas.add(*axes.plot([_days(start), _days(end)], [100, 0], linestyle="--",
                          color="#7f7f7f", linewidth=1, label="ideal"))
    for line in lines:
        if len(line.points) > 1:
            canvas.add(*axes.plot([_days(t) for t, _ in line.points],
                                  [100 * v for _, v in line.points], linewidth=1.5,
                                  label=line.label))
    for shade in shades:
        canvas.add(axes.axvspan(_days(shade.start), _days(shade.end),
                                alpha=0.3 if shade.kind == "gap" else 0.25, linewidth=0,
                                color=SHADE_COLOURS.get(shade.kind, SHADE_COLOURS["page"])))
    return canvas.finish(title, start, end, date_format, "lower left")


def burn_rate_png(title: str, start: float, end: float, lines: Sequence[Line],
                  thresholds: Sequence[tuple[str, float]] = (),
                  date_format: str = "%H:%M") -> bytes:
    """Burn rates over time (1 spends exactly the budget over the period), on a scale
    that is linear up to 1 and logarithmic above, with alert thresholds as dashed lines.

    Args:
        title: the chart's title.
        start: Unix time the chart starts.
        end: Unix time it ends.
        lines: burn rates over time, one line per series.
        thresholds: ``(label, burn rate)`` lines to draw across the chart.
        date_format: ``strftime`` format of the time axis.
    """
    canvas = _canvas("burn_rate", 2.6, _setup_burn_rate)
    axes = canvas.begin()
    for line in lines:
        if line.points:
            canvas.add(*axes.plot([_days(t) for t, _ in line.points],
                                  [v for _, v in line.points], linewidth=1.5,
                                  label=line.label))
    for label, value in thresholds:
        canvas.add(axes.axhline(value, color=SHADE_COLOURS["page"], linewidth=1,
                                linestyle="--", label=label))
    return canvas.finish(title, start, end, date_format, "upper left", bottom=0)
