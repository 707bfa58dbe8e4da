"""The status page at ``/``: every region's probes and SLOs at a glance.

A small server-rendered HTML page, no scripts and no front-end build: for each region,
the probes (last result, when they last ran, the reason and detail of the last failure)
and the SLOs (SLI, objective, error budget remaining, burn rates over the alert windows,
which burn-rate alert rows hold). It reloads itself every 30 seconds (``<meta
refresh>``). Every value from configuration or from a registry is HTML-escaped.

:class:`ProbeBoard` is the page's source for probes: an observation sink that keeps
the last result and the last failure of each (region, probe).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html import escape

from registry_slo import __version__
from registry_slo._units import format_duration
from registry_slo.config import sli_summary
from registry_slo.observation import Observation
from registry_slo.sli.evaluation import SLOStatus
from registry_slo.sli.windows import DAY, HOUR, MINUTE

__all__ = [
    "BURN_WINDOWS",
    "ProbeBoard",
    "ProbeState",
    "format_burn_rate",
    "format_percent",
    "render_status_page",
]

BURN_WINDOWS: tuple[int, ...] = (5 * MINUTE, HOUR, 6 * HOUR, DAY, 3 * DAY)
"""The windows whose burn rates the page shows (5m, 1h, 6h, 1d, 3d), plus the period."""

REFRESH_SECONDS = 30
_WAITING = ', <span class="pending">waiting for the first run of every probe</span>'


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


def _ago(when: float | None, now: float) -> str:
    if when is None:
        return "never"
    seconds = max(0.0, now - when)
    if seconds < 120:
        text = f"{seconds:.0f}s ago"
    elif seconds < 7200:
        text = f"{seconds / 60:.0f}m ago"
    elif seconds < 172800:
        text = f"{seconds / 3600:.0f}h ago"
    else:
        text = f"{seconds / 86400:.0f}d ago"
    stamp = datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")
    return f'<time datetime="{stamp}" title="{stamp}">{text}</time>'


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


# -- the page --------------------------------------------------------------------------

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2329;background:#fafbfc}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin:1.6rem 0 .4rem}
h3{font-size:.95rem;margin:.8rem 0 .3rem;color:#4a5560}
table{border-collapse:collapse;background:#fff;margin-bottom:.5rem}
th,td{border:1px solid #d8dde3;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17702f;font-weight:600}.bad{color:#b3261e;font-weight:600}.muted{color:#6b7680}
.pending{color:#8a6d00;font-weight:600}.detail{color:#4a5560;font-size:.9em}
nav a{margin-right:1rem}p.summary{margin:.2rem 0 1rem}
"""


def _probe_rows(probes: Sequence[ProbeState], now: float) -> str:
    rows = []
    for p in probes:
        last, failure = p.last, p.last_failure
        if last is None:
            result = '<span class="pending">pending</span>'
            outcome = "pending"
        elif last.success:
            result = '<span class="ok">ok</span>'
            outcome = "ok"
        else:
            outcome = "failed"
            result = f'<span class="bad">FAILED: {escape(str(last.reason or "protocol"))}</span>'
        duration = "" if last is None else f"{last.duration_seconds * 1000:.0f} ms"
        if failure is None:
            failure_cell = '<span class="muted">none since start</span>'
        else:
            detail = f'<div class="detail">{escape(failure.detail)}</div>' if failure.detail \
                else ""
            failure_cell = (
                f'<span data-field="last-failure-reason">'
                f"{escape(str(failure.reason or 'protocol'))}</span> "
                f"({_ago(failure.time, now)}){detail}"
            )
        rows.append(
            f'<tr data-region="{_attr(p.region)}" data-probe="{_attr(p.probe)}" '
            f'data-outcome="{outcome}">'
            f"<td>{escape(p.probe)}</td>"
            f'<td data-field="result">{result}</td>'
            f'<td data-field="last-run">{_ago(None if last is None else last.time, now)}</td>'
            f'<td class="num" data-field="duration">{duration}</td>'
            f'<td class="num" data-field="runs">{p.runs}</td>'
            f'<td class="num" data-field="failures">{p.failures}</td>'
            f'<td data-field="last-failure">{failure_cell}</td>'
            "</tr>"
        )
    return (
        "<table><thead><tr><th>probe</th><th>last result</th><th>last run</th>"
        "<th>duration</th><th>runs since start</th><th>failures since start</th>"
        "<th>last failure</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _slo_rows(statuses: Sequence[SLOStatus], now: float) -> str:
    rows = []
    for s in statuses:
        slo = s.slo
        budget = s.budget_remaining
        budget_class = "muted" if budget is None else ("ok" if budget > 0 else "bad")
        cells = [
            f'<td data-field="slo">{escape(slo.name)}'
            + (f'<div class="detail">{escape(slo.description)}</div>' if slo.description else "")
            + "</td>",
            f'<td data-field="sli">{escape(sli_summary(slo.sli))}</td>',
            f'<td class="num" data-field="objective" data-value="{_num(slo.objective)}">'
            f"{slo.objective:g}% / {escape(format_duration(slo.period_seconds))}</td>",
            f'<td class="num" data-field="budget" data-value="{_num(budget)}">'
            f'<span class="{budget_class}">{format_percent(budget)}</span></td>',
        ]
        for seconds in (*BURN_WINDOWS, slo.period_seconds):
            window = s.window(seconds)
            rate = window.burn_rate
            cells.append(
                f'<td class="num" data-field="burn-{escape(window.name)}" '
                f'data-value="{_num(rate)}" title="{window.total:.0f} events">'
                f"{format_burn_rate(rate)}</td>"
            )
        firing = [t for t in s.tiers if t.firing]
        alerts = ", ".join(
            f'<span class="{"bad" if t.tier.severity == "page" else "pending"}">'
            f"{escape(t.tier.severity)} {escape(format_duration(t.tier.long_window))}/"
            f"{escape(format_duration(t.tier.short_window))} &gt; {t.factor:g}x</span>"
            for t in firing
        ) or '<span class="muted">none</span>'
        cells.append(f'<td data-field="alerts">{alerts}</td>')
        cells.append(f'<td data-field="last-update">{_ago(s.last_event, now)}</td>')
        rows.append(
            f'<tr data-slo="{_attr(slo.name)}" data-region="{_attr(s.region)}">'
            f"{''.join(cells)}</tr>"
        )
    heads = "".join(f"<th>burn {escape(format_duration(w))}</th>" for w in BURN_WINDOWS)
    return (
        "<table><thead><tr><th>SLO</th><th>SLI</th><th>objective</th>"
        f"<th>budget remaining</th>{heads}<th>burn period</th><th>burning (alert rows)</th>"
        "<th>last event</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def render_status_page(
    regions: Sequence[str],
    probes: Sequence[ProbeState],
    slos: Sequence[SLOStatus],
    now: float,
    ready: bool,
) -> str:
    """The status page.

    Args:
        regions: the configured regions, in configuration order.
        probes: every probe's state (:meth:`ProbeBoard.snapshot`).
        slos: every SLO's status in every region (the SLI engine's evaluation).
        now: Unix time the page is rendered at.
        ready: whether every probe has completed a first run.

    Returns:
        A complete HTML document.
    """
    order = list(regions) + sorted(
        ({p.region for p in probes} | {s.region for s in slos}) - set(regions)
    )
    failing = sum(1 for p in probes if p.last is not None and not p.last.success)
    burning = sum(1 for s in slos if any(t.firing for t in s.tiers))
    stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>registry-slo: {len(order)} region(s)</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<header><h1>registry-slo</h1><p class=\"summary\" id=\"summary\">"
        f'<span id="regions">{len(order)} region(s)</span>, '
        f'<span id="probes">{len(probes)} probe(s)</span>, '
        f'<span id="failing" class="{"bad" if failing else "ok"}">{failing} failing</span>, '
        f'<span id="slos">{len(slos)} SLO target(s)</span>, '
        f'<span id="burning" class="{"bad" if burning else "ok"}">{burning} burning</span>'
        f"{'' if ready else _WAITING}"
        f'. <span class="muted">As of <time datetime="{stamp}">{stamp}</time>; '
        f"reloads every {REFRESH_SECONDS}s. Version {escape(__version__)}.</span></p>",
        '<nav><a href="/metrics">/metrics</a><a href="/api/v1/slo">/api/v1/slo</a>'
        '<a href="/readyz">/readyz</a><a href="/healthz">/healthz</a></nav></header>',
        "<main>",
    ]
    if not order:
        parts.append("<p>No regions configured: add a <code>regions:</code> section to the "
                     "configuration (see the README).</p>")
    if not slos:
        parts.append(
            '<p class="muted" id="no-slos">No SLOs configured: declare them under '
            "<code>slos:</code> (see docs/slos.md) to see error budgets and burn rates "
            "here.</p>"
        )
    for region in order:
        region_probes = [p for p in probes if p.region == region]
        region_slos = [s for s in slos if s.region == region]
        down = sum(1 for p in region_probes if p.last is not None and not p.last.success)
        badge = (f'<span class="bad">{down} failing</span>' if down
                 else '<span class="ok">ok</span>' if region_probes else "")
        parts.append(
            f'<section id="region-{_attr(region)}" data-region="{_attr(region)}">'
            f"<h2>{escape(region)} {badge}</h2>"
        )
        if region_probes:
            parts.append(f"<h3>Probes</h3>{_probe_rows(region_probes, now)}")
        if region_slos:
            parts.append(f"<h3>SLOs</h3>{_slo_rows(region_slos, now)}")
        parts.append("</section>")
    parts.append("</main></body></html>\n")
    return "".join(parts)
