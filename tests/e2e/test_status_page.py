"""The status page at ``/``, as a browser shows it, checked against ``/api/v1/slo``.

A real exporter (``registry-slo serve``) probes a real registry and a region where nothing
listens; headless Debian ``chromium`` loads the page and dumps its DOM, and every SLO
cell must show what the JSON API says.
"""

from __future__ import annotations

import base64
import math
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from harness import require_binary
from prometheus_client.parser import text_string_to_metric_families

from registry_slo.config import SLOSpec, SLOTarget
from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.observation import Observation
from registry_slo.oci import Reason
from registry_slo.sli.engine import SLIEngine
from registry_slo.telemetry.status import (
    ProbeBoard,
    StatusCharts,
    format_burn_rate,
    format_percent,
    render_status_page,
)

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
BURN_FIELDS = {"5m": "burn-5m", "1h": "burn-1h", "6h": "burn-6h", "1d": "burn-1d",
               "3d": "burn-3d"}


class Page(HTMLParser):
    """The rows of the page: SLO rows and probe rows, each field's text and data-value."""

    def __init__(self) -> None:
        super().__init__()
        self.slos: dict[tuple[str, str], dict[str, tuple[str, str | None]]] = {}
        self.probes: dict[tuple[str, str], dict[str, str]] = {}
        self.tags: list[str] = []
        self.sections: list[str] = []
        self.charts: dict[str, list[dict[str, str | None]]] = {}
        self.title = ""
        self._row: dict[str, Any] | None = None
        self._field: tuple[str, str | None] | None = None
        self._text: list[str] = []
        self._depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "title":
            self._in_title = True
        if tag == "section":
            self.sections.append(str(a["data-region"]))
        if tag == "figure" and a.get("data-charts"):
            self.charts[str(a["data-charts"])] = []
        if tag == "img" and self.charts:
            self.charts[list(self.charts)[-1]].append(a)
        if tag == "tr" and a.get("data-region"):
            self._row = {"attrs": a, "fields": {}}
        elif tag == "td" and self._row is not None and a.get("data-field"):
            self._field = (str(a["data-field"]), a.get("data-value"))
            self._text = []
            self._depth = 0
        elif self._field is not None:
            self._depth += 1
            if tag == "div":  # a block: the browser shows it on its own line
                self._text.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag == "td" and self._field is not None and self._depth == 0:
            name, value = self._field
            assert self._row is not None
            self._row["fields"][name] = (" ".join("".join(self._text).split()), value)
            self._field = None
        elif self._field is not None and tag != "td":
            self._depth -= 1
        elif tag == "tr" and self._row is not None:
            attrs, fields = self._row["attrs"], self._row["fields"]
            if attrs.get("data-slo"):
                self.slos[(attrs["data-slo"], attrs["data-region"])] = fields
            else:
                self.probes[(attrs["data-region"], attrs["data-probe"])] = {
                    "outcome": attrs["data-outcome"],
                    **{k: v[0] for k, v in fields.items()},
                }
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._field is not None:
            self._text.append(data)


def png_size(src: str | None) -> tuple[int, int]:
    """The width and height of a PNG ``data:`` URI (from its IHDR chunk)."""
    assert src is not None and src.startswith("data:image/png;base64,"), str(src)[:60]
    png = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def dump_dom(url: str, profile: Path) -> str:
    chromium = require_binary("chromium")
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<html" in result.stdout, result.stderr[-2000:]
    return result.stdout


def stable(api: dict[str, Any]) -> list[dict[str, Any]]:
    """The API's SLO entries without the evaluation time."""
    return [{k: v for k, v in s.items() if k != "evaluated_at"} for s in api["slos"]]


@pytest.fixture
def exporter(tmp_path: Path, registry: LocalRegistry,
             stopped_registry_url: str) -> Iterator[str]:
    port = free_port()
    slow = {"interval": "60s", "blob_size": "16KiB"}  # one run each while the test looks
    config = {
        "listen": f"127.0.0.1:{port}",
        "log_format": "json",
        "state_dir": str(tmp_path / "state"),
        "regions": [
            {"name": "good", "url": registry.url, "probe": {**slow, "timeout": "10s"}},
            {"name": "down", "url": stopped_registry_url,
             "probe": {**slow, "timeout": "2s", "enabled": ["pull", "auth"]}},
        ],
        "slos": [
            {"name": "pull-availability", "description": "Image pulls <b>succeed</b>",
             "sli": {"kind": "probe_success", "probe": "pull"}, "objective": 99.9},
            {"name": "pull-latency", "sli": {"kind": "probe_latency", "probe": "pull",
                                             "threshold": "2s"}, "objective": 99},
            {"name": "auth-success", "sli": {"kind": "auth_success"}, "objective": 99.5,
             "period": "28d"},
        ],
    }
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "exporter.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "registry_slo", "serve", "--config",
                                 str(path)], stderr=stderr, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, f"never ready: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_the_status_page_shows_what_the_api_says(exporter: str, tmp_path: Path) -> None:
    base = exporter
    for attempt in range(3):
        before = httpx.get(f"{base}/api/v1/slo").json()
        dom = dump_dom(f"{base}/", tmp_path / f"chromium-{attempt}")
        after = httpx.get(f"{base}/api/v1/slo").json()
        if stable(before) == stable(after):
            break  # no probe ran in between: the page showed exactly this
    else:
        pytest.fail("the SLO values kept changing while the page loaded")
    page = Page()
    page.feed(dom)
    assert "script" not in page.tags  # no JavaScript at all
    assert page.title == "registry-slo: 2 region(s)"
    # The failing region first, though configured second.
    assert page.sections == ["down", "good"]
    # Both regions have events: a burn-down and a burn-rate chart each, drawn as PNGs.
    assert set(page.charts) == {"down", "good"}
    for region, images in page.charts.items():
        assert [png_size(i["src"]) for i in images] == [(800, 300), (800, 260)], region
        assert [i["alt"] for i in images] == [
            f"error budget left over the SLO period in {region}",
            f"burn rate over 1h, last 1d, in {region}"]

    slos = after["slos"]
    assert {(s["slo"], s["region"]) for s in slos} == set(page.slos) == {
        (slo, region) for region in ("good", "down")
        for slo in ("pull-availability", "pull-latency", "auth-success")
    }
    for entry in slos:
        row = page.slos[(entry["slo"], entry["region"])]
        where = (entry["slo"], entry["region"])
        text, value = row["budget"]
        assert text == format_percent(entry["error_budget_remaining"]), where
        assert value is not None and math.isclose(
            float(value), entry["error_budget_remaining"]), where
        windows = {w["window"]: w for w in entry["windows"]}
        for window, field in {**BURN_FIELDS, entry["period"]: f"burn-{entry['period']}"}.items():
            text, value = row[field]
            assert text == format_burn_rate(windows[window]["burn_rate"]), (where, window)
            assert value is not None and math.isclose(
                float(value), windows[window]["burn_rate"]), (where, window)
        assert row["objective"][0] == f"{entry['objective']:g}% / {entry['period']}"
        firing = [a for a in entry["alerts"] if a["firing"]]
        assert (row["alerts"][0] == "none") == (not firing), where
        for alert in firing:
            assert f"{alert['severity']} {alert['long_window']}/{alert['short_window']}" \
                in row["alerts"][0], where
    # What the numbers must be: one successful pull, one failed pull, and so on.
    good = page.slos[("pull-availability", "good")]
    down = page.slos[("pull-availability", "down")]
    assert good["budget"][0] == "100.00%" and good["burn-5m"][0] == "0.00x"
    assert down["budget"][0] == "-99900.00%" and down["burn-5m"][0] == "1000.00x"
    assert "page 1h/5m" in down["alerts"][0]
    assert page.slos[("pull-availability", "good")]["slo"][0] == (
        "pull-availability Image pulls <b>succeed</b>")  # escaped: shown as text
    assert page.slos[("pull-latency", "good")]["sli"][0] == "pull probe ≤ 2s"
    assert page.slos[("auth-success", "down")]["objective"][0] == "99.5% / 28d"

    # Probes: what the page shows agrees with /metrics.
    samples = {
        (s.labels["region"], s.labels["probe"]): s.value
        for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text)
        for s in family.samples if s.name == "registry_slo_probe_success"
    }
    assert set(page.probes) == set(samples) == {
        ("good", "push"), ("good", "pull"), ("good", "auth"), ("down", "pull"),
        ("down", "auth")}
    for key, probe in page.probes.items():
        if samples[key] == 1:
            assert probe["outcome"] == "ok" and probe["result"] == "ok", key
            assert probe["last-failure"] == "none since start", key
        else:
            assert probe["outcome"] == "failed", key
            assert probe["result"] == "FAILED: connect", key
            assert probe["last-failure"].startswith("connect ("), key
        assert probe["last-run"].endswith("s ago"), key
    assert page.probes[("down", "pull")]["outcome"] == "failed"
    # The SLO gauges on /metrics say the same as the API.
    gauges = {
        (s.labels["slo"], s.labels["region"]): s.value
        for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text)
        for s in family.samples if s.name == "registry_slo_slo_error_budget_remaining_ratio"
    }
    assert gauges == {(s["slo"], s["region"]): s["error_budget_remaining"] for s in slos}


def test_everything_on_the_page_is_escaped() -> None:
    slo = SLOSpec(name="pulls", description='<img src=x onerror="alert(1)">',
                  sli={"kind": "probe_success", "probe": "pull"}, objective=99.9)
    engine = SLIEngine([SLOTarget(slo, "east", (), 30.0)], clock=lambda: 1_700_000_000.0)
    board = ProbeBoard()
    failure = Observation(region="east", operation="pull", source="probe", success=False,
                          reason=Reason.SERVER_ERROR, duration_seconds=0.2,
                          time=1_699_999_990.0, detail="<script>alert('x')</script> & more")
    board.record(failure)
    engine.observe(failure)
    html = render_status_page(["east"], board.snapshot(), engine.evaluate(),
                              1_700_000_000.0, ready=True)
    page = Page()
    page.feed(html)
    assert "img" not in page.tags and "script" not in page.tags
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in html
    assert page.probes[("east", "pull")]["last-failure"] == (
        "server_error (10s ago) <script>alert('x')</script> & more")
    assert page.slos[("pulls", "east")]["slo"][0] == 'pulls <img src=x onerror="alert(1)">'


def test_a_page_without_slos_says_how_to_add_them() -> None:
    board = ProbeBoard()
    board.configure("east", "pull")
    html = render_status_page(["east"], board.snapshot(), [], 1_700_000_000.0, ready=False)
    page = Page()
    page.feed(html)
    assert 'id="no-slos"' in html and "docs/slos.md" in html
    assert page.probes[("east", "pull")]["outcome"] == "pending"
    assert page.probes[("east", "pull")]["last-run"] == "never"
    assert "waiting for the first run of every probe" in html


def _troubled_engine() -> tuple[SLIEngine, ProbeBoard]:
    slo = SLOSpec(name="pulls", sli={"kind": "probe_success", "probe": "pull"},
                  objective=99.9)
    now = 1_700_000_000.0
    engine = SLIEngine([SLOTarget(slo, r, (), 30.0) for r in ("calm", "down", "burning")],
                       clock=lambda: now)
    board = ProbeBoard()
    for region in ("calm", "down", "burning"):
        board.configure(region, "pull")
    for region, success in (("calm", True), ("down", False), ("burning", True)):
        board.record(Observation(region=region, operation="pull", source="probe",
                                 success=success, reason=None if success else Reason.CONNECT,
                                 duration_seconds=0.1, time=now - 10))
    # "burning": its last run passed, but half of the runs before it failed.
    for i in range(100):
        engine.observe(Observation(region="burning", operation="pull", source="probe",
                                   success=i % 2 == 0, reason=None if i % 2 == 0
                                   else Reason.SERVER_ERROR, duration_seconds=0.1,
                                   time=now - 60 + i * 0.5))
    return engine, board


def test_failing_and_burning_regions_come_first() -> None:
    engine, board = _troubled_engine()
    html = render_status_page(["calm", "burning", "down"], board.snapshot(),
                              engine.evaluate(), 1_700_000_000.0, ready=True)
    page = Page()
    page.feed(html)
    # Troubled regions in configuration order, then the calm one.
    assert page.sections == ["burning", "down", "calm"]
    assert 'data-region="burning" data-failing="0" data-burning="1"' in html
    assert 'data-region="down" data-failing="1" data-burning="0"' in html


def test_charts_are_drawn_once_per_ttl() -> None:
    engine, board = _troubled_engine()
    now = 1_700_000_000.0
    reads: list[float] = []
    ticks = [0.0]

    def history(at: float):  # type: ignore[no-untyped-def]
        reads.append(at)
        return engine.history(at)

    charts = StatusCharts(history, ttl=60, clock=lambda: ticks[0])
    first = charts.charts(["calm", "burning", "down"], now)
    assert set(first) == {"burning"}  # the only region whose SLO holds events
    assert png_size(first["burning"].burn_down) == (800, 300)
    assert png_size(first["burning"].burn_rate) == (800, 260)
    ticks[0] = 59.0
    assert charts.charts(["calm", "burning", "down"], now) == first
    assert len(reads) == 1  # reused: the engine was not read again
    ticks[0] = 60.0
    again = charts.charts(["calm", "burning", "down"], now + 60)
    assert len(reads) == 2 and set(again) == {"burning"}
    html = render_status_page(["calm", "burning", "down"], board.snapshot(),
                              engine.evaluate(), now, ready=True, charts=again)
    page = Page()
    page.feed(html)
    assert [png_size(i["src"]) for i in page.charts["burning"]] == [(800, 300), (800, 260)]
