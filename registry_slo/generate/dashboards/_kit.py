"""Small helpers over grafana-foundation-sdk's builders, so the three dashboard modules
read as lists of panels.

Every panel and every query is bound to the ``$datasource`` variable; every panel gets a
description, a unit and an id (assigned in order by :class:`Board`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import prometheus as prom_models

from registry_slo.generate._files import MARKER

__all__ = [
    "DATASOURCE",
    "GENERATED_MARKER",
    "Board",
    "DashboardRef",
    "Step",
    "Target",
    "bar_gauge",
    "stat_panel",
    "table_panel",
    "thresholds",
    "time_series",
]

GENERATED_MARKER = MARKER
"""Starts every generated dashboard's description: how regeneration recognises its files."""

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
"""The datasource every panel and query uses: the ``datasource`` template variable."""

_REF_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

Step = tuple[float | None, str]
"""A threshold step: ``(value, color)``; the first step's value is ``None`` (the base)."""


@dataclass(frozen=True)
class DashboardRef:
    """A dashboard other dashboards link to."""

    uid: str
    title: str

    @property
    def url(self) -> str:
        """The relative URL Grafana serves it at (``/d/<uid>``)."""
        return f"/d/{self.uid}"


@dataclass(frozen=True)
class Target:
    """One PromQL query of a panel.

    Attributes:
        expr: the expression; may use ``$region``, ``$slo``, ``$__rate_interval``,
            ``$__range``.
        legend: the legend format (``{{region}}``).
        instant: an instant query (stat, bar gauge, table) instead of a range query.
        exemplar: ask for exemplars too (latency histograms: they link to traces).
        table: return a table (label columns) instead of time series.
    """

    expr: str
    legend: str = ""
    instant: bool = False
    exemplar: bool = False
    table: bool = False

    def build(self, ref_id: str) -> prometheus.Dataquery:
        """The SDK query builder."""
        query = (
            prometheus.Dataquery()
            .expr(self.expr)
            .ref_id(ref_id)
            .datasource(DATASOURCE)
            .editor_mode(prom_models.QueryEditorMode.CODE)
        )
        if self.legend:
            query.legend_format(self.legend)
        if self.instant:
            query.instant()
        else:
            query.range()
        if self.exemplar:
            query.exemplar(True)
        if self.table:
            query.format(prom_models.PromQueryFormat.TABLE)
        return query


def thresholds(steps: Sequence[Step]) -> builders.ThresholdsConfig:
    """Absolute thresholds from ``(value, color)`` steps."""
    return builders.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(
        [models.Threshold(value=value, color=color) for value, color in steps]
    )


def _links(links: Sequence[DashboardRef]) -> list[Builder[models.DashboardLink]]:
    return [
        builders.DashboardLink(f"Open {ref.title}")
        .type(models.DashboardLinkType.LINK)
        .url(ref.url)
        .include_vars(True)
        .keep_time(True)
        .target_blank(False)
        for ref in links
    ]


_PanelBuilder = timeseries.Panel | stat.Panel | bargauge.Panel | table.Panel


def _common(
    panel: _PanelBuilder,
    title: str,
    description: str,
    targets: Sequence[Target],
    unit: str,
    size: tuple[int, int],
    steps: Sequence[Step] | None,
    links: Sequence[DashboardRef],
    decimals: int | None,
) -> None:
    if not description.strip():
        raise ValueError(f"panel {title!r} needs a description")
    panel.title(title).description(description).datasource(DATASOURCE).unit(unit)
    panel.span(size[0]).height(size[1])
    panel.targets([t.build(_REF_IDS[i]) for i, t in enumerate(targets)])
    if steps is not None:
        panel.thresholds(thresholds(steps))
    if links:
        panel.links(_links(links))
    if decimals is not None:
        panel.decimals(decimals)


def time_series(
    title: str,
    description: str,
    targets: Sequence[Target],
    unit: str,
    *,
    size: tuple[int, int] = (12, 8),
    steps: Sequence[Step] | None = None,
    links: Sequence[DashboardRef] = (),
    decimals: int | None = None,
    soft_min: float | None = None,
    stacked: bool = False,
) -> timeseries.Panel:
    """A time series panel; ``steps`` are drawn as dashed threshold lines."""
    panel = timeseries.Panel()
    _common(panel, title, description, targets, unit, size, steps, links, decimals)
    panel.legend(
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["lastNotNull", "max"])
    )
    panel.tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
    if steps is not None:
        panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    if soft_min is not None:
        panel.axis_soft_min(soft_min)
    if stacked:
        panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
        panel.fill_opacity(40)
    return panel


def stat_panel(
    title: str,
    description: str,
    targets: Sequence[Target],
    unit: str,
    *,
    size: tuple[int, int] = (6, 5),
    steps: Sequence[Step] | None = None,
    links: Sequence[DashboardRef] = (),
    decimals: int | None = None,
    mappings: Sequence[tuple[str, str, str]] = (),
) -> stat.Panel:
    """A stat panel of the last value of each series, coloured by ``steps``.

    ``mappings``: ``(value, text, color)`` value mappings (e.g. ``("1", "up", "green")``).
    """
    panel = stat.Panel()
    _common(panel, title, description, targets, unit, size, steps, links, decimals)
    panel.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    panel.color_mode(common.BigValueColorMode.BACKGROUND)
    panel.graph_mode(common.BigValueGraphMode.NONE)
    if mappings:
        panel.mappings([
            models.ValueMap(options={
                value: models.ValueMappingResult(text=text, color=color, index=i)
                for i, (value, text, color) in enumerate(mappings)
            })
        ])
    return panel


def bar_gauge(
    title: str,
    description: str,
    targets: Sequence[Target],
    unit: str,
    *,
    size: tuple[int, int] = (12, 8),
    steps: Sequence[Step] | None = None,
    links: Sequence[DashboardRef] = (),
    decimals: int | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
) -> bargauge.Panel:
    """A horizontal bar gauge of the last value of each series."""
    panel = bargauge.Panel()
    _common(panel, title, description, targets, unit, size, steps, links, decimals)
    panel.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    panel.orientation(common.VizOrientation.HORIZONTAL)
    panel.display_mode(common.BarGaugeDisplayMode.LCD)
    if min_value is not None:
        panel.min(min_value)
    if max_value is not None:
        panel.max(max_value)
    return panel


def table_panel(
    title: str,
    description: str,
    targets: Sequence[Target],
    unit: str,
    *,
    size: tuple[int, int] = (12, 8),
    steps: Sequence[Step] | None = None,
    links: Sequence[DashboardRef] = (),
    decimals: int | None = None,
) -> table.Panel:
    """A table of instant results: one row per series, labels as columns.

    The ``Time`` column Grafana adds to instant results is hidden.
    """
    panel = table.Panel()
    _common(panel, title, description, targets, unit, size, steps, links, decimals)
    panel.with_transformation(models.DataTransformerConfig(
        id_val="organize", options={"excludeByName": {"Time": True}},
    ))
    return panel


class Board:
    """A dashboard under construction: variables, links, rows and panels with ids.

    Args:
        uid: the dashboard's uid (stable: links and bookmarks use it).
        title: its title.
        description: what it is for (the generated marker is prepended).
        links: the other dashboards, linked from the top of this one.
        variables: the template variables, in display order.
    """

    def __init__(
        self,
        uid: str,
        title: str,
        description: str,
        links: Sequence[DashboardRef],
        variables: Sequence[Builder[models.VariableModel]],
    ) -> None:
        self._next_id = 1
        self.builder = (
            builders.Dashboard(title)
            .uid(uid)
            .description(f"{GENERATED_MARKER} from the configuration; do not edit. "
                         f"{description}")
            .tags(["registry-slo", "oci-registry", "slo"])
            .timezone("browser")
            .time("now-6h", "now")
            .refresh("1m")
            .tooltip(models.DashboardCursorSync.CROSSHAIR)
            .readonly()
            .links(_links(links))
            .variables(list(variables))
        )

    def _id(self) -> int:
        value = self._next_id
        self._next_id += 1
        return value

    def row(self, title: str) -> Board:
        """Start a new row (a section header); following panels go under it."""
        self.builder.with_row(builders.Row(title).id(self._id()))
        return self

    def add(self, *panels: _PanelBuilder) -> Board:
        """Add panels left to right, wrapping at the grid's 24 columns."""
        for panel in panels:
            self.builder.with_panel(panel.id(self._id()))
        return self

    def build(self) -> models.Dashboard:
        """The finished dashboard model."""
        return self.builder.build()
