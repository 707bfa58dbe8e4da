"""The exporter's SLI engine (registry_slo.sli.engine): counting, windows, burn rates."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from registry_slo.config import SLOTarget
from registry_slo.observation import Observation
from registry_slo.oci import Reason
from registry_slo.sli.engine import SLIEngine
from registry_slo.sli.windows import (
    DAY,
    HOUR,
    MINUTE,
    budget_remaining,
    burn_rate,
    error_budget,
)

from .helpers import T0, Clock, probe, settings, status_of


def test_targets_follow_the_configuration() -> None:
    targets = [(t.slo.name, t.region) for t in settings().slo_targets()]
    assert targets == [
        ("pull-availability", "east"), ("pull-availability", "west"),
        ("pull-latency", "east"), ("pull-latency", "west"),
        ("auth", "east"), ("freshness", "west"),
    ]
    assert SLOTarget(settings().slos[0], "east", (), 30.0).key == "pull-availability/east"


def test_probe_success_windows_burn_rates_and_budget() -> None:
    clock = Clock()
    engine = SLIEngine(settings().slo_targets(), clock=clock)
    # One run every 30 s for 2 hours; the runs of the last 10 minutes fail.
    for step in range(240):
        clock.now = T0 + step * 30
        engine.observe(probe("east", "pull", success=step < 220))
    clock.now = T0 + 239 * 30
    status = status_of(engine, "pull-availability", "east")
    budget = error_budget(0.999)
    five = status.window(5 * MINUTE)
    # (now - 5m, now] holds the last ten runs (all failed), give or take the part of
    # the first minute bucket that is outside the window.
    assert five.error_ratio == pytest.approx(1.0)
    assert five.burn_rate == pytest.approx(1 / budget)
    one_hour = status.window(HOUR)
    assert one_hour.total == pytest.approx(120, abs=1)
    assert one_hour.error_ratio == pytest.approx(20 / 120, rel=0.02)
    period = status.period
    assert (period.bad, period.total) == (20, 240)
    assert status.budget_remaining == pytest.approx(budget_remaining(20 / 240, 0.999))
    assert period.burn_rate == pytest.approx(burn_rate(20 / 240, 0.999))
    # 1h and 5m both burn far above 14.4: the fastest page row holds; the 6h row too
    # (6h ≈ 2h of data here, 30m window likewise).
    firing = {t.tier.name for t in status.tiers if t.firing}
    assert {"page-1h", "page-6h"} <= firing
    assert status.last_event == clock.now
    # Other regions and SLOs saw nothing.
    west = status_of(engine, "pull-availability", "west")
    assert west.period.total == 0 and west.budget_remaining is None
    assert west.window(5 * MINUTE).error_ratio is None
    assert not any(t.firing for t in west.tiers)


def test_windows_slide_past_old_events() -> None:
    clock = Clock()
    engine = SLIEngine(settings().slo_targets(), clock=clock)
    engine.observe(probe("east", "pull", success=False))
    clock.now = T0 + 10 * MINUTE
    status = status_of(engine, "pull-availability", "east")
    assert status.window(5 * MINUTE).total == 0
    assert status.window(30 * MINUTE).total == 1
    clock.now = T0 + 3 * DAY + 2 * HOUR
    status = status_of(engine, "pull-availability", "east")
    assert status.window(3 * DAY).total == 0
    assert status.period.total == 1  # 30d, in hour buckets


def test_latency_threshold_is_inclusive_and_failures_count_by_duration() -> None:
    engine = SLIEngine(settings().slo_targets(), clock=Clock())
    engine.observe(probe("east", "pull", duration=2.0))  # exactly the threshold: good
    engine.observe(probe("east", "pull", duration=2.001))  # bad
    engine.observe(probe("east", "pull", success=False, duration=0.01))  # fast failure: good
    engine.observe(probe("east", "pull", success=False, duration=10.0))  # timeout: bad
    status = status_of(engine, "pull-latency", "east")
    assert (status.period.bad, status.period.total) == (2, 4)
    availability = status_of(engine, "pull-availability", "east")
    assert (availability.period.bad, availability.period.total) == (2, 4)


def test_only_probe_results_of_the_slis_probe_count() -> None:
    engine = SLIEngine(settings().slo_targets(), clock=Clock())
    engine.observe(probe("east", "pull", success=False, source="access-log"))  # ingest
    engine.observe(probe("east", "push", success=False))
    engine.observe(probe("nowhere", "pull", success=False))
    engine.observe(probe("east", "auth", success=False))
    assert status_of(engine, "pull-availability", "east").period.total == 0
    auth = status_of(engine, "auth", "east")
    assert (auth.period.bad, auth.period.total) == (1, 1)
    assert auth.slo.period_seconds == 28 * DAY
    assert [w.name for w in auth.windows][-1] == "28d"


def test_replication_lag_is_sampled_as_a_fraction_of_time() -> None:
    clock = Clock()
    engine = SLIEngine(settings().slo_targets(), clock=clock)
    lag = {"value": math.nan}
    engine.track_lag("west", lambda: lag["value"])
    engine.sample_lag()  # no heartbeat seen yet: unknown counts as bad
    for value in (1.0, 30.0, 31.0, 5.0):
        clock.now += 15
        lag["value"] = value
        engine.sample_lag()
    status = status_of(engine, "freshness", "west")
    assert (status.period.bad, status.period.total) == (2, 5)
    # A second source: the region's lag is the worst of them.
    engine.track_lag("west", lambda: 100.0)
    clock.now += 15
    engine.sample_lag()
    assert status_of(engine, "freshness", "west").period.bad == 3


def test_a_region_without_lag_source_gets_no_samples() -> None:
    engine = SLIEngine(settings().slo_targets(), clock=Clock())
    engine.sample_lag()
    assert status_of(engine, "freshness", "west").period.total == 0


def test_json_has_every_window_and_the_alert_rows() -> None:
    engine = SLIEngine(settings().slo_targets(), clock=Clock())
    engine.observe(probe("east", "pull"))
    data = status_of(engine, "pull-latency", "east").to_json()
    assert data["slo"] == "pull-latency" and data["region"] == "east"
    assert data["sli"] == {"kind": "probe_latency", "probe": "pull", "threshold_seconds": 2.0}
    assert data["objective"] == 99 and data["objective_ratio"] == 0.99
    assert data["error_budget"] == pytest.approx(0.01)
    assert data["period"] == "30d" and data["period_seconds"] == 30 * DAY
    assert [w["window"] for w in data["windows"]] == [
        "5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
    assert all(w["error_ratio"] == 0.0 and w["burn_rate"] == 0.0 for w in data["windows"])
    assert data["error_budget_remaining"] == 1.0
    assert [a["name"] for a in data["alerts"]] == [
        "page-1h", "page-6h", "ticket-1d", "ticket-3d"]
    assert [a["factor"] for a in data["alerts"]] == [14.4, 6.0, 3.0, 1.0]
    assert data["last_update"] == T0


async def test_run_samples_flushes_and_closes(tmp_path: Path) -> None:
    engine = SLIEngine(settings().slo_targets(), tmp_path, flush_interval=0.1,
                       lag_sample_interval=0.05)
    engine.track_lag("west", lambda: 1.0)
    engine.open()
    stop = asyncio.Event()
    running = asyncio.create_task(engine.run(stop))
    engine.observe(probe("east", "pull"))
    await asyncio.sleep(0.4)
    store = engine.store
    assert store is not None
    assert store.rows("pull-availability/east")  # flushed while running
    stop.set()
    await running
    assert engine.store is None
    samples = status_of(engine, "freshness", "west").period.total
    assert samples >= 3
    reopened = SLIEngine(settings().slo_targets(), tmp_path)
    reopened.open()
    assert status_of(reopened, "freshness", "west").period.total == samples
    reopened.close()


# -- traffic SLIs: requests read by the ingest sources ---------------------------------

TRAFFIC = {
    "ingest": {"logs": [
        {"name": "east-log", "region": "east", "format": "distribution",
         "paths": ["/var/log/east.log"]},
        {"name": "west-log", "region": "west", "format": "distribution",
         "paths": ["/var/log/west.log"]},
    ]},
    "slos": [
        {"name": "pull-traffic", "objective": 99.9,
         "sli": {"kind": "traffic_success", "operations": ["pull_manifest", "pull_blob"]}},
        {"name": "manifest-latency", "objective": 99,
         "sli": {"kind": "traffic_latency", "operations": ["pull_manifest"],
                 "threshold": "500ms"}},
    ],
}


def request(region: str, operation: str, source: str, reason: Reason | None = None,
            duration: float = 0.1, timed: bool = True) -> Observation:
    return Observation(region=region, operation=operation, source=source,
                       success=reason is None, reason=reason, duration_seconds=duration,
                       time=T0, timed=timed)


def test_traffic_success_counts_the_registrys_failures_only() -> None:
    clock = Clock()
    engine = SLIEngine(settings(**TRAFFIC).slo_targets(), clock=clock)
    for reason in (None, None, Reason.SERVER_ERROR, Reason.RATE_LIMITED,
                   Reason.NOT_FOUND, Reason.AUTH, Reason.DENIED):
        engine.observe(request("east", "pull_blob", "east-log", reason))
    engine.observe(request("east", "pull_manifest", "east-log"))
    # Not this SLI's: another operation, the probe's own pulls, another region's source.
    engine.observe(request("east", "push_manifest", "east-log", Reason.SERVER_ERROR))
    engine.observe(probe("east", "pull", success=False))
    engine.observe(request("west", "pull_blob", "west-log", Reason.SERVER_ERROR))
    east = status_of(engine, "pull-traffic", "east").period
    assert (east.bad, east.total) == (2, 8)
    west = status_of(engine, "pull-traffic", "west").period
    assert (west.bad, west.total) == (1, 1)
    # A failure the source gives no reason for is counted by ingest as "protocol".
    engine.observe(Observation(region="east", operation="pull_blob", source="east-log",
                               success=False, reason=None, duration_seconds=0.1, time=T0))
    east = status_of(engine, "pull-traffic", "east").period
    assert (east.bad, east.total) == (2, 9)


def test_traffic_latency_counts_timed_requests() -> None:
    clock = Clock()
    engine = SLIEngine(settings(**TRAFFIC).slo_targets(), clock=clock)
    for duration in (0.1, 0.5, 0.51, 3.0):
        engine.observe(request("east", "pull_manifest", "east-log", duration=duration))
    engine.observe(request("east", "pull_manifest", "east-log", duration=0, timed=False))
    engine.observe(request("east", "pull_blob", "east-log", duration=9.0))
    period = status_of(engine, "manifest-latency", "east").period
    assert (period.bad, period.total) == (2, 4)


def test_traffic_sli_with_reasons_and_sources_of_its_own() -> None:
    slos = [{"name": "strict", "objective": 99,
             "sli": {"kind": "traffic_success", "operations": ["push_blob"],
                     "errors": ["server_error", "digest_mismatch"], "sources": ["west-log"]}}]
    engine = SLIEngine(settings(**{**TRAFFIC, "slos": slos}).slo_targets(), clock=Clock())
    assert [(t.region, t.sources) for t in engine.targets] == [("west", ("west-log",))]
    for reason in (Reason.DIGEST_MISMATCH, Reason.RATE_LIMITED, None):
        engine.observe(request("west", "push_blob", "west-log", reason))
    period = status_of(engine, "strict", "west").period
    assert (period.bad, period.total) == (1, 3)


def test_a_lag_not_read_yet_is_no_sample() -> None:
    """Before the reader first looks at the mirror, its lag is not known to be bad: a
    fresh exporter must not count (or page on) lag it has not read."""
    clock = Clock()
    engine = SLIEngine(settings().slo_targets(), clock=clock)
    lag: dict[str, float | None] = {"value": None}
    engine.track_lag("west", lambda: lag["value"])
    engine.sample_lag()
    assert status_of(engine, "freshness", "west").period.total == 0
    lag["value"] = math.nan  # read, and no heartbeat on the mirror: behind
    clock.now += 15
    engine.sample_lag()
    assert (status_of(engine, "freshness", "west").period.bad,
            status_of(engine, "freshness", "west").period.total) == (1, 1)
