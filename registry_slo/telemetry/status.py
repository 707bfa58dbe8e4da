"""The status page at ``/``: every region's probes and SLOs at a glance.

A server-rendered HTML page (Jinja2 template ``templates/status.html.j2``, autoescaped),
no scripts and no front-end build: for each region, the probes (last result, when they
last ran, the reason and detail of the last failure), two charts — the error budget left
across each SLO's current period and the 1-hour burn rate over the last day against the
page threshold — and the SLOs (SLI, objective, error budget remaining, burn rates over
the alert windows, which burn-rate alert rows hold). Regions with failing probes or
burning SLOs come first. It reloads itself every 30 seconds (``<meta refresh>``).

:class:`ProbeBoard` is the page's source for probes: an observation sink that keeps
the last result and the last failure of each (region, probe). :class:`StatusCharts`
draws the charts and keeps each region's for :data:`CHART_TTL` seconds.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import jinja2

from registry_slo import __version__
from registry_slo._render import Line, burn_down_png, burn_rate_png, data_uri, environment
from registry_slo._units import format_duration
from registry_slo.config import sli_summary
from registry_slo.observation import Observation
from registry_slo.sli.evaluation import SLOStatus
from registry_slo.sli.history import RATE_WINDOW, SHOWN, SLOHistory
from registry_slo.sli.windows import DAY, HOUR, MINUTE

__all__ = [
    "BURN_WINDOWS",
    "CHART_TTL",
    "ProbeBoard",
    "ProbeState",
    "RegionCharts",
    "StatusCharts",
    "format_burn_rate",
    "format_percent",
    "region_charts",
    "region_order",
    "render_status_page",
]

BURN_WINDOWS: tuple[int, ...] = (5 * MINUTE, HOUR, 6 * HOUR, DAY, 3 * DAY)
"""The windows whose burn rates the page shows (5m, 1h, 6h, 1d, 3d), plus the period."""

REFRESH_SECONDS = 30
CHART_TTL = 60.0
"""Seconds a region's charts are reused before they are drawn again."""


@dataclass(frozen=True)
class ProbeState:
    """What the page shows of one (region, probe).

    Attributes:
        region: the region.
        probe: the probe kind.
        runs: runs seen since start.
        failures: failed runs since start.
        last: the last result (``None`` before the first run).
        last_failure: the last failed result.
    """

    region: str
    probe: str
    runs: int = 0
    failures: int = 0
    last: Observation | None = None
    last_failure: Observation | None = None


class ProbeBoard:
    """The last result and last failure of every probe (an observation sink)."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], ProbeState] = {}
        self._lock = threading.Lock()

    def configure(self, region: str, probe: str) -> None:
        """Declare a scheduled probe, so it shows before its first run."""
        with self._lock:
            self._states.setdefault((region, probe), ProbeState(region, probe))

    def record(self, observation: Observation) -> None:
        """Keep a probe result (other sources are ignored)."""
        if observation.source != "probe":
            return
        key = (observation.region, observation.operation)
        with self._lock:
            state = self._states.get(key) or ProbeState(*key)
            failed = not observation.success
            self._states[key] = replace(
                state,
                runs=state.runs + 1,
                failures=state.failures + failed,
                last=observation,
                last_failure=observation if failed else state.last_failure,
            )

    def snapshot(self) -> list[ProbeState]:
        """Every probe, in the order they were configured (or first seen)."""
        with self._lock:
            return list(self._states.values())


# -- formatting (the test of the page uses the same rules) ---------------------------


def format_percent(ratio: float | None) -> str:
    """``0.99872`` → ``99.87%``; ``None`` → ``no data``."""
    return "no data" if ratio is None else f"{ratio * 100:.2f}%"


def format_burn_rate(rate: float | None) -> str:
    """``1.5`` → ``1.50x``; ``None`` (no events in the window) → ``-``."""
    return "-" if rate is None else f"{rate:.2f}x"


def _since(when: float, now: float) -> str:
    seconds = max(0.0, now - when)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h ago"
    return f"{seconds / 86400:.0f}d ago"


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _outcome(probe: ProbeState) -> str:
    if probe.last is None:
        return "pending"
    return "ok" if probe.last.success else "failed"


@functools.cache
def _template() -> jinja2.Template:
    return environment(
        "registry_slo.telemetry", since=_since, iso=_iso, num=_num, outcome=_outcome,
        percent=format_percent, rate=format_burn_rate, dur=format_duration, sli=sli_summary,
    ).get_template("status.html.j2")


# -- charts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionCharts:
    """A region's two charts, as ``data:`` URIs."""

    burn_down: str
    burn_rate: str


def region_charts(region: str, histories: Sequence[SLOHistory], now: float
                  ) -> RegionCharts | None:
    """Draw a region's charts: one line per SLO (``None`` while no SLO has events)."""
    if not any(h.burn_down or h.burn_rates for h in histories):
        return None
    start = min(h.start for h in histories)
    thresholds = sorted({round(h.threshold, 2) for h in histories})
    window = format_duration(RATE_WINDOW)
    return RegionCharts(
        data_uri(burn_down_png(
            f"{region}: error budget left over the SLO period", start, now,
            [Line(h.slo.name, h.burn_down) for h in histories])),
        data_uri(burn_rate_png(
            f"{region}: burn rate over {window}, last {format_duration(SHOWN)}",
            now - SHOWN, now, [Line(h.slo.name, h.burn_rates) for h in histories],
            [(f"page threshold ({window} window) {t:g}x", t) for t in thresholds])),
    )


@dataclass
class StatusCharts:
    """The page's charts, each region's drawn at most once per :data:`CHART_TTL`
    (a chart is tens of milliseconds of matplotlib; the page reloads every 30 s).

    Args:
        history: the engine's :meth:`~registry_slo.sli.engine.SLIEngine.history`, read
            only when a region's charts are due.
        ttl: seconds a region's charts are reused.
        clock: monotonic seconds.
    """

    history: Callable[[float], Sequence[SLOHistory]]
    ttl: float = CHART_TTL
    clock: Callable[[], float] = time.monotonic
    _drawn: dict[str, tuple[float, RegionCharts | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def charts(self, regions: Sequence[str], now: float) -> dict[str, RegionCharts]:
        """The charts of ``regions`` (regions without events have none)."""
        with self._lock:  # one drawing at a time: two page loads share the result
            at = self.clock()
            due = [r for r in regions
                   if r not in self._drawn or at - self._drawn[r][0] >= self.ttl]
            if due:
                histories = self.history(now)
                for region in due:
                    mine = [h for h in histories if h.region == region]
                    self._drawn[region] = (at, region_charts(region, mine, now))
            return {r: c for r in regions if (c := self._drawn[r][1]) is not None}


# -- the page --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Region:
    name: str
    probes: list[ProbeState]
    slos: list[SLOStatus]
    charts: RegionCharts | None

    @property
    def failing(self) -> int:
        return sum(1 for p in self.probes if p.last is not None and not p.last.success)

    @property
    def burning(self) -> int:
        return sum(1 for s in self.slos if any(t.firing for t in s.tiers))


def region_order(regions: Sequence[str], probes: Sequence[ProbeState],
                 slos: Sequence[SLOStatus]) -> list[str]:
    """Regions with failing probes or burning SLOs first, each group in configuration
    order (regions seen but not configured after the configured ones, sorted)."""
    order = list(regions) + sorted(
        ({p.region for p in probes} | {s.region for s in slos}) - set(regions))
    troubled = {p.region for p in probes if p.last is not None and not p.last.success} | {
        s.region for s in slos if any(t.firing for t in s.tiers)}
    return sorted(order, key=lambda r: r not in troubled)


def render_status_page(
    regions: Sequence[str],
    probes: Sequence[ProbeState],
    slos: Sequence[SLOStatus],
    now: float,
    ready: bool,
    charts: Mapping[str, RegionCharts] | None = None,
) -> str:
    """The status page.

    Args:
        regions: the configured regions, in configuration order.
        probes: every probe's state (:meth:`ProbeBoard.snapshot`).
        slos: every SLO's status in every region (the SLI engine's evaluation).
        now: Unix time the page is rendered at.
        ready: whether every probe has completed a first run.
        charts: each region's charts (:meth:`StatusCharts.charts`); regions without
            an entry show none.

    Returns:
        A complete HTML document.
    """
    shown = [
        _Region(name, [p for p in probes if p.region == name],
                [s for s in slos if s.region == name], (charts or {}).get(name))
        for name in region_order(regions, probes, slos)
    ]
    return _template().render(
        regions=shown, now=now, ready=ready, refresh=REFRESH_SECONDS, version=__version__,
        probe_count=len(probes), slo_count=len(slos),
        failing=sum(r.failing for r in shown), burning=sum(r.burning for r in shown),
        burn_windows=BURN_WINDOWS, rate_window=RATE_WINDOW, rate_shown=SHOWN,
    )
