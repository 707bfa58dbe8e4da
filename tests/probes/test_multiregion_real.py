"""Replication lag by heartbeats over a real `skopeo sync` mirror, and pull-through caches."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import require_binary

from registry_slo.config import Settings
from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.devenv.mirror import SkopeoSyncLoop
from registry_slo.oci import Reason, RegistryClient
from registry_slo.probes import (
    ColdCacheProbe,
    LagTracker,
    ProbeScheduler,
    PullProbe,
    build_probes,
    build_regions,
    execute,
)
from registry_slo.probes.heartbeat import read_heartbeat
from registry_slo.telemetry.metrics import ExporterMetrics

TAG = "registry-slo-heartbeat"
PERIOD = 2.0  # the sync loop's period
INTERVAL = 1.0  # heartbeat interval


def SyncLoop(primary: LocalRegistry, mirror: LocalRegistry) -> SkopeoSyncLoop:
    """Mirror the heartbeat tag from primary to mirror with `skopeo sync` every PERIOD."""
    require_binary("skopeo")
    return SkopeoSyncLoop(primary, mirror, "registry-slo/probe", TAG, PERIOD)


@pytest.fixture
def primary_and_mirror() -> Iterator[tuple[LocalRegistry, LocalRegistry]]:
    require_binary("docker-registry")
    with LocalRegistry() as primary, LocalRegistry() as mirror:
        yield primary, mirror


def settings_for(primary: LocalRegistry, mirror: LocalRegistry, mode: str = "both") -> Settings:
    return Settings.model_validate({
        "regions": [
            {"name": "primary", "url": primary.url, "probe": {"enabled": ["auth"]}},
            {"name": "mirror", "url": mirror.url, "replicates_from": "primary",
             "probe": {"enabled": ["auth"]}},
        ],
        "replication": {"mode": mode, "heartbeat_interval": f"{INTERVAL}s", "timeout": "1s",
                        "writer": "test-writer"},
    })


def lag_bound(loop: SkopeoSyncLoop) -> float:
    """The largest lag the mirror can show while replication works, given the sync times
    seen so far (on a loaded machine skopeo takes from 0.2 s to a few seconds): the newest
    heartbeat is up to one interval old (plus 10 % jitter and its push) when a sync starts,
    then the wait for the next sync, that sync's own time, and the reader's next poll
    (one interval plus jitter, and its read of at most the 1 s timeout)."""
    sync = max(loop.durations, default=0.0)
    beat = INTERVAL * 1.1
    return (beat + 0.2) + max(PERIOD, sync) + sync + (beat + 1.0)


async def sample_lag(tracker: LagTracker, seconds: float) -> list[float]:
    values = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        values.append(tracker.lag())
        await asyncio.sleep(0.25)
    return values


async def test_lag_bounded_grows_when_stopped_recovers(
    primary_and_mirror: tuple[LocalRegistry, LocalRegistry],
) -> None:
    primary, mirror = primary_and_mirror
    settings = settings_for(primary, mirror)
    states = build_regions(settings)
    metrics = ExporterMetrics()
    first_sights: list[float] = []
    probes, trackers = build_probes(settings, states, lambda _t, lag: first_sights.append(lag))
    assert {p.probe.kind for p in probes} >= {"heartbeat", "replication"}
    (tracker,) = trackers
    metrics.regions.track_replication(tracker.region, tracker.source_region, tracker.lag)
    scheduler = ProbeScheduler(probes, metrics.probes, first_run_within=0.1)
    loop = SyncLoop(primary, mirror)
    scheduler.start()
    loop.start()
    try:
        # Warm up until the mirror has shown a heartbeat.
        deadline = time.monotonic() + 20
        while tracker.newest is None:
            assert time.monotonic() < deadline, "no heartbeat ever reached the mirror"
            await asyncio.sleep(0.2)
        steady = await sample_lag(tracker, 8)
        bound = lag_bound(loop)
        assert max(steady) <= bound, (steady, loop.durations)
        assert tracker.writer == "test-writer"
        served = metrics.registry.get_sample_value(
            "registry_slo_replication_lag_seconds",
            {"region": "mirror", "source_region": "primary"},
        )
        assert served is not None and served <= bound

        loop.stop()
        # A sync that finished just before stop() is seen at the reader's next poll
        # (every INTERVAL, each read bounded by the 1 s timeout); growth starts after it.
        await asyncio.sleep(INTERVAL * 1.1 + 1.0 + 0.5)
        bound = lag_bound(loop)
        stalled = [tracker.lag()]
        deadline = time.monotonic() + bound + 30
        while stalled[-1] <= bound + 2:  # it keeps growing, well past what syncing allows
            assert time.monotonic() < deadline, stalled
            await asyncio.sleep(0.25)
            stalled.append(tracker.lag())
        assert all(b > a for a, b in itertools.pairwise(stalled)), stalled

        loop.start()
        deadline = time.monotonic() + 15
        while tracker.lag() > lag_bound(loop):
            assert time.monotonic() < deadline, f"lag did not recover: {tracker.lag():.1f}s"
            await asyncio.sleep(0.25)
    finally:
        loop.stop()
        scheduler.shutdown()
        for state in states.values():
            await state.aclose()
    assert first_sights and min(first_sights) >= 0
    # Hygiene: the writer deletes superseded heartbeats, so the source holds one.
    tags = httpx.get(f"{primary.url}/v2/registry-slo/probe/tags/list").json()["tags"]
    assert tags == [TAG]


def test_separate_writer_and_reader_processes_agree(
    primary_and_mirror: tuple[LocalRegistry, LocalRegistry], tmp_path: Path
) -> None:
    primary, mirror = primary_and_mirror
    procs = []
    urls = {}
    try:
        for mode in ("write", "read"):
            port = free_port()
            config = settings_for(primary, mirror, mode).model_dump(mode="json")
            config = {"listen": f"127.0.0.1:{port}", "log_format": "json",
                      "regions": config["regions"], "replication": config["replication"]}
            for region in config["regions"]:
                region.pop("probe")
                region["probe"] = {"enabled": ["auth"]}
                for key in ("auth", "tls", "debug_vars_url", "pull_through_cache_of"):
                    region.pop(key, None)
                if region["replicates_from"] is None:
                    region.pop("replicates_from")
            path = tmp_path / f"{mode}.yaml"
            path.write_text(yaml.safe_dump(config))
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "registry_slo", "serve", "--config", str(path)],
                stderr=(tmp_path / f"{mode}.log").open("wb")))
            urls[mode] = f"http://127.0.0.1:{port}"
        loop = SyncLoop(primary, mirror)
        loop.start()
        try:
            lag = None
            deadline = time.monotonic() + 30
            while lag is None or lag != lag:  # NaN until the first heartbeat is seen
                assert time.monotonic() < deadline, (tmp_path / "read.log").read_text()[-3000:]
                time.sleep(0.5)
                with contextlib.suppress(httpx.HTTPError):
                    lag = _lag(urls["read"])
            time.sleep(3 * INTERVAL + PERIOD)
            # Freeze the mirror, so the heartbeat the test reads is the one the reader
            # instance sees from its next poll on (every INTERVAL, reads bounded by 1 s).
            loop.stop()
            # The truth, read by the test itself: the age of the heartbeat on the mirror.
            manifest = httpx.get(
                f"{mirror.url}/v2/registry-slo/probe/manifests/{TAG}",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()
            written, writer = read_heartbeat(manifest)
            assert writer == "test-writer"
            deadline = time.monotonic() + 10 * INTERVAL
            while True:
                lag = _lag(urls["read"])
                truth = time.time() - written
                assert lag is not None
                if abs(lag - truth) <= 0.5:
                    break
                assert time.monotonic() < deadline, (lag, truth)
                time.sleep(0.1)
            # The writer instance reads nothing: it exports no lag series of its own.
            assert _lag(urls["write"]) is None
        finally:
            loop.stop()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def _lag(base: str) -> float | None:
    text = httpx.get(f"{base}/metrics").text
    for line in text.splitlines():
        if line.startswith("registry_slo_replication_lag_seconds{"):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_clock_offset_estimated_from_date_headers(
    primary_and_mirror: tuple[LocalRegistry, LocalRegistry],
) -> None:
    primary, _ = primary_and_mirror
    async with RegistryClient(primary.url) as client:
        for _ in range(30):
            await client.ping()
            await asyncio.sleep(0.05)
        assert client.clock.known
        assert abs(client.clock.estimate) < 1.0  # same machine, same clock
        assert not client.clock.certainly_beyond(1.0)


@pytest.fixture
def cache_pair() -> Iterator[tuple[LocalRegistry, LocalRegistry]]:
    require_binary("docker-registry")
    with (
        LocalRegistry() as upstream,
        LocalRegistry(proxy_remote_url=upstream.url, debug_metrics=True) as cache,
    ):
        yield upstream, cache


async def test_cache_warm_and_cold_then_upstream_outage(
    cache_pair: tuple[LocalRegistry, LocalRegistry],
) -> None:
    upstream, cache = cache_pair
    settings = Settings.model_validate({"regions": [
        {"name": "origin", "url": upstream.url, "probe": {"blob_size": "32KiB"}},
        {"name": "edge", "url": cache.url, "pull_through_cache_of": "origin",
         "debug_vars_url": f"{cache.debug_url}/debug/vars", "probe": {"blob_size": "32KiB"}},
    ]})
    states = build_regions(settings)
    metrics = ExporterMetrics()
    probes, _ = build_probes(settings, states, cache_counters=metrics.regions.cache_counters.update)
    assert sorted(p.probe.kind for p in probes if p.probe.region == "edge") == [
        "auth", "cache", "pull"]
    edge = states["edge"]
    warm, cold = PullProbe(edge), ColdCacheProbe(edge, metrics.regions.cache_counters.update)
    try:
        for _ in range(3):
            for probe in (warm, cold):
                result = await execute(probe, 10)
                assert result.success, (probe.kind, result.detail)
        # The cache's own counters: 3 cold manifests missed, warm ones hit.
        def counter(name: str, kind: str) -> float | None:
            return metrics.registry.get_sample_value(
                f"registry_slo_cache_{name}_total", {"region": "edge", "kind": kind})

        assert counter("misses", "manifest") == 4  # the canary once, each cold image once
        hits, requests = counter("hits", "manifest"), counter("requests", "manifest")
        assert hits is not None and requests is not None and 0 < hits <= requests
        assert counter("requests", "blob")
        # Cold-cache hygiene upstream: one tag, the previous image deleted.
        tags = httpx.get(f"{upstream.url}/v2/registry-slo/probe/tags/list").json()["tags"]
        assert sorted(tags) == ["canary", "registry-slo-cache-cold"]

        upstream.stop(cleanup=False)
        warm_result = await execute(warm, 10)
        cold_result = await execute(cold, 10)
        assert warm_result.success, warm_result.detail
        assert not cold_result.success and cold_result.reason is Reason.CONNECT
        assert cold_result.detail and "connection failed" in cold_result.detail
    finally:
        for state in states.values():
            await state.aclose()


def test_cache_region_config_rules() -> None:
    with pytest.raises(ValueError, match="refuses pushes"):
        Settings.model_validate({"regions": [
            {"name": "a", "url": "http://127.0.0.1:1"},
            {"name": "b", "url": "http://127.0.0.1:2", "pull_through_cache_of": "a",
             "probe": {"enabled": ["push"]}}]})
    with pytest.raises(ValueError, match="not another configured region"):
        Settings.model_validate({"regions": [
            {"name": "a", "url": "http://127.0.0.1:1", "replicates_from": "zz"}]})
    assert json.dumps(Settings().model_dump(mode="json")["replication"])
