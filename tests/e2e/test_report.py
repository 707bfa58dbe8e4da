"""``registry-slo report`` against a real Prometheus holding 35 days of backfilled series.

The test writes the exporter's series for one region in OpenMetrics (a pull probe run
every minute: its runs, its failures by reason, its duration histogram) from 27 October
to 1 December 2026, with two known outages in November (every run fails: 60 minutes on
10 November, reason ``timeout``; 30 minutes on 20 November, ``server_error``) and a known
latency shift (every tenth run takes 2.5 s from 15 to 22 November). ``promtool tsdb
create-blocks-from openmetrics`` turns it into blocks; a real Prometheus serves them with
the generated rules loaded. The November report's attainment, budget consumed, incidents
and October comparison are checked against figures the test counts from its own
synthetic runs, not from the report's code. Then ``report.html`` is loaded in headless
Chromium: no console message, a screenshot saved.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import require_binary
from harness.backfill import BUCKETS, ProbeRun, create_blocks, write_probe_series
from harness.prometheus import LocalPrometheus

from registry_slo.config import load_config
from registry_slo.generate import generate

START = datetime(2026, 10, 27, tzinfo=UTC).timestamp()
END = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
NOVEMBER = (datetime(2026, 11, 1, tzinfo=UTC).timestamp(), END)
OCTOBER = (datetime(2026, 10, 1, tzinfo=UTC).timestamp(), NOVEMBER[0])
OUTAGES = [  # (start, end, reason): every run in (start, end] fails
    (datetime(2026, 11, 10, 12, tzinfo=UTC).timestamp(),
     datetime(2026, 11, 10, 13, tzinfo=UTC).timestamp(), "timeout"),
    (datetime(2026, 11, 20, 3, tzinfo=UTC).timestamp(),
     datetime(2026, 11, 20, 3, 30, tzinfo=UTC).timestamp(), "server_error"),
]
SLOW = (datetime(2026, 11, 15, tzinfo=UTC).timestamp(),
        datetime(2026, 11, 22, tzinfo=UTC).timestamp())
STEP = 300.0
LONGEST_PAGE_SHORT_WINDOW = 1800.0  # the 6h/30m page row


def _runs() -> list[ProbeRun]:
    runs = []
    minute = 0
    at = START + 60
    while at <= END:
        failed = next((reason for s, e, reason in OUTAGES if s < at <= e), None)
        seconds = 10.0 if failed else 0.2
        if failed is None and SLOW[0] < at <= SLOW[1] and minute % 10 == 0:
            seconds = 2.5
        runs.append(ProbeRun(at, failed, seconds))
        minute += 1
        at += 60
    return runs


CONFIG = {
    "regions": [{"name": "r", "url": "http://127.0.0.1:5000",
                 "probe": {"enabled": ["pull"], "interval": "1m"}}],
    "prometheus": {"scrape_interval": "1m", "evaluation_interval": "1m"},
    "slos": [
        {"name": "pull-availability", "description": "Image pulls succeed",
         "sli": {"kind": "probe_success", "probe": "pull"}, "objective": 99.9},
        {"name": "pull-latency", "description": "Image pulls finish within 2s",
         "sli": {"kind": "probe_latency", "probe": "pull", "threshold": "2s"},
         "objective": 99},
    ],
}


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ProbeRun]]:
    promtool = require_binary("promtool")
    directory = tmp_path_factory.mktemp("backfill")
    runs = _runs()
    blocks = directory / "tsdb"
    create_blocks(promtool, write_probe_series(directory, {("r", "pull"): runs}, START, END),
                  blocks)
    return blocks, runs


def _expected(runs: list[ProbeRun], span: tuple[float, float]) -> dict[str, tuple[int, int]]:
    inside = [r for r in runs if span[0] < r.at <= span[1]]
    return {
        "pull-availability": (sum(r.failed is not None for r in inside), len(inside)),
        "pull-latency": (sum(r.seconds > 2.0 for r in inside), len(inside)),
    }


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, backfilled: tuple[Path, list[ProbeRun]],
) -> Iterator[tuple[str, Path]]:
    """A real Prometheus on the backfilled blocks with the generated rules loaded, and
    the configuration they were generated from."""
    directory = tmp_path_factory.mktemp("prometheus")
    config = directory / "regions.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    alerts = directory / "alerts"
    generate(load_config(config), alerts)
    storage = directory / "tsdb"
    shutil.copytree(backfilled[0], storage)
    with LocalPrometheus(rule_files=sorted((alerts / "rules").glob("*.yml")),
                         storage_dir=storage, retention="3650d", scrape_interval=60,
                         evaluation_interval=60, log_path=directory / "prometheus.log") as prom:
        yield prom.url, config


def _report(config: Path, url: str, out: Path, *span: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registry_slo", "report", "--config", str(config),
         "--prometheus", url, "--out", str(out), *span],
        capture_output=True, text=True, timeout=300)


def test_the_november_review(
    tmp_path: Path, backfilled: tuple[Path, list[ProbeRun]], prometheus: tuple[str, Path],
) -> None:
    _, runs = backfilled
    url, config = prometheus
    out = tmp_path / "review"
    done = _report(config, url, out, "--month", "2026-11",
                   "--prometheus-header", "X-Scope-OrgID: tenant-a")
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads((out / "report.json").read_text())
    results = {s["slo"]: s for s in document["slos"]}
    for name, (bad, total) in _expected(runs, NOVEMBER).items():
        result = results[name]
        assert result["total"] == pytest.approx(total, abs=0.01), name
        assert result["bad"] == pytest.approx(bad, abs=0.01), name
        assert result["attainment"] == pytest.approx(1 - bad / total, abs=1e-9)
        budget = (1 - result["objective"]) * total
        assert result["consumed"] == pytest.approx(bad / budget, rel=1e-9)
        assert result["coverage"] == 1.0
        assert result["gaps"] == []
    for name, (bad, total) in _expected(runs, OCTOBER).items():
        # October has data from the 27th only: the comparison counts what exists.
        assert results[name]["previous_attainment"] == pytest.approx(1 - bad / total, abs=1e-9)
    availability = results["pull-availability"]
    assert availability["status"] == "missed"  # 90 bad runs of 43,200 against 99.9%
    incidents = availability["incidents"]
    assert len(incidents) == len(OUTAGES)
    for incident, (start, end, reason) in zip(incidents, OUTAGES, strict=True):
        assert incident["severity"] == "page"
        assert abs(incident["start"] - start) <= STEP
        assert incident["end"] >= end  # the tickets that follow belong to it
        # Paged until the last page row's short window no longer sees the outage.
        length = end - start
        assert length - STEP <= incident["paged"] <= length + LONGEST_PAGE_SHORT_WINDOW + STEP
        assert incident["top_reason"] == reason
        assert incident["source"] == "recomputed"  # no ALERTS history in a backfill
        outage_bad = sum(1 for r in runs if start < r.at <= end)
        assert incident["bad"] == pytest.approx(outage_bad, abs=0.01)
    bad, total = _expected(runs, NOVEMBER)["pull-latency"]
    # The slow week (1,008 runs over 2 s) and the outages' 10 s runs, against 99%.
    assert results["pull-latency"]["status"] == ("missed" if 1 - bad / total < 0.99 else
                                                  "met")
    _check_health(document["health"], runs)
    _check_changes(document, runs)
    markdown = (out / "report.md").read_text()
    assert "## What changed against 2026-10" in markdown
    assert "| probe failures | 90 | 0 | +90 | worse |" in markdown
    assert "| pull-availability | r | 99.900% |" in markdown
    for chart in out.glob("charts/*.png"):
        assert chart.read_bytes().startswith(b"\x89PNG")
        assert chart.name in markdown
    _open_in_chromium(out / "report.html", tmp_path)


def _bucket(seconds: float) -> tuple[float, float]:
    bounds = [0.0, *(float(le) for le in BUCKETS if le != "+Inf")]
    for lower, upper in itertools.pairwise(bounds):
        if lower < seconds <= upper:
            return lower, upper
    raise AssertionError(seconds)


def _check_health(health: list[dict[str, Any]], runs: list[ProbeRun]) -> None:
    """Weekly pull latency percentiles in the bucket of the true percentile of the
    week's runs (Prometheus interpolates inside a bucket); failure reasons ranked."""
    (region,) = health
    weeks = region["weeks"]
    assert len(weeks) == 5  # four whole weeks and the 29th to the 1st
    for week in weeks:
        durations = sorted(r.seconds for r in runs if week["start"] < r.at <= week["end"])
        for q, reported in week["pull"].items():
            true = durations[math.ceil(float(q) * len(durations)) - 1]
            lower, upper = _bucket(true)
            assert lower <= reported <= upper, (week["start"], q, reported, true)
        assert set(week["push"].values()) == {None}  # no push probe: no data, not 0
    slow = next(w for w in weeks if w["start"] == SLOW[0])
    assert slow["pull"]["0.95"] > 2.0  # the slow week shows
    assert [reason for reason, _ in region["reasons"]] == ["timeout", "server_error"]
    assert [n for _, n in region["reasons"]] == pytest.approx([60, 30], abs=0.01)
    assert region["lag_p95"] is None
    assert region["storage_end"] is None


def _check_changes(document: dict[str, Any], runs: list[ProbeRun]) -> None:
    """Every figure beside October's: the same values as the sections that show them,
    October's from the test's own runs."""
    changes = {c["figure"]: c for c in document["changes"]}
    assert {c["region"] for c in document["changes"]} == {"r"}
    results = {s["slo"]: s for s in document["slos"]}
    for name, result in results.items():
        attainment = changes[f"{name} attainment"]
        assert attainment["now"] == result["attainment"]
        assert attainment["before"] == result["previous_attainment"]
        consumed = changes[f"{name} budget consumed"]
        assert (consumed["now"], consumed["before"]) == (result["consumed"],
                                                         result["previous_consumed"])
    # October (from the 27th) had no failure and no slow run: November is worse.
    assert changes["pull-availability attainment"]["verdict"] == "worse"
    failures = changes["probe failures"]
    assert (failures["now"], failures["before"]) == pytest.approx((90, 0), abs=0.01)
    assert failures["verdict"] == "worse" and failures["difference"] == pytest.approx(90)
    (health,) = document["health"]
    for span, side in ((NOVEMBER, "now"), (OCTOBER, "before")):
        durations = sorted(r.seconds for r in runs if span[0] < r.at <= span[1])
        for q in ("0.5", "0.95", "0.99"):
            reported = changes[f"pull p{round(float(q) * 100)}"][side]
            if side == "now":
                assert reported == health["pull"][q]
            true = durations[math.ceil(float(q) * len(durations)) - 1]
            lower, upper = _bucket(true)
            assert lower <= reported <= upper, (span, q, reported, true)
    # No push probe and no mirror in either month: not compared, not shown as 0.
    assert not {"push p95", "replication lag p95", "cache hit ratio"} & set(changes)


def test_spans_without_data_are_shown_and_never_counted_as_good(
    tmp_path: Path, prometheus: tuple[str, Path],
) -> None:
    url, config = prometheus
    # Half a day of data, then a day and a half after the series end (the exporter was
    # down, or retention was shorter than the range).
    done = _report(config, url, tmp_path / "partial", "--from", "2026-11-30T12:00:00Z",
                   "--to", "2026-12-02T00:00:00Z", "--previous", "none")
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads((tmp_path / "partial" / "report.json").read_text())
    for result in document["slos"]:
        assert result["coverage"] == pytest.approx(12 / 36)
        assert result["gaps"] == [[END, datetime(2026, 12, 2, tzinfo=UTC).timestamp()]]
        assert result["total"] == pytest.approx(720, abs=0.01)
        assert result["previous_attainment"] is None
    # No data at all: "no data", never 100 %.
    done = _report(config, url, tmp_path / "empty", "--month", "2026-09")
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads((tmp_path / "empty" / "report.json").read_text())
    assert {r["status"] for r in document["slos"]} == {"no data"}
    assert {r["attainment"] for r in document["slos"]} == {None}
    assert "pull-availability in r: no data" in done.stderr
    # The current month is reported up to now, not over a future without data.
    current = datetime.now(UTC).strftime("%Y-%m")
    done = _report(config, url, tmp_path / "current", "--month", current)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads((tmp_path / "current" / "report.json").read_text())
    assert document["span"]["label"] == f"{current} to date"
    assert document["span"]["end"] <= time.time()


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--prometheus", "http://127.0.0.1:1", "--month", "2026-11"], 1,
     "cannot reach Prometheus at http://127.0.0.1:1"),
    (["--month", "2999-01"], 1, "has not begun"),
    (["--month", "2026-13"], 2, "not a month"),
    (["--from", "2026-11-02", "--to", "2026-11-01"], 2, "is not after"),
    (["--last", "30d", "--step", "10s"], 2, "--step 10s must be at least 1m"),
    (["--last", "30d", "--prometheus-header", "no colon"], 2, "must be 'NAME: VALUE'"),
])
def test_bad_requests_get_a_clear_error(
    tmp_path: Path, prometheus: tuple[str, Path], args: list[str], code: int, says: str,
) -> None:
    url, config = prometheus
    done = subprocess.run(
        [sys.executable, "-m", "registry_slo", "report", "--config", str(config),
         "--prometheus", url, "--out", str(tmp_path / "out"), *args],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == code, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def _open_in_chromium(report: Path, tmp_path: Path) -> None:
    chromium = require_binary("chromium")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--enable-logging=stderr", "--v=0",
             f"--user-data-dir={tmp_path / 'chromium'}"]
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1280,2400",
         report.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG")
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    dom = subprocess.run([chromium, *flags, "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert "SLO review: 2026-11" in dom.stdout
    assert dom.stdout.count("data:image/png;base64,") == len(CONFIG["slos"])
