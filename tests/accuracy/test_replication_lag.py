"""Replication lag against the true age of the newest replicated heartbeat.

Two real registries; a `skopeo sync` loop replicates the heartbeat tag from the primary
to the mirror every ``period`` seconds; the exporter's heartbeat writer and reader run
on a real scheduler. Independently, the test reads the mirror's heartbeat every 0.1 s:
at any moment the true lag is the age of the newest heartbeat the mirror holds.

The exporter reads the mirror once per heartbeat interval, so right after a sync its lag
is the one of before the sync until its next read: its value can be off by a whole sync
period for up to one interval. What must hold, for sync periods from 2 s to 60 s, is that
it is never staler than one heartbeat interval + 0.5 s: the heartbeat it reports the age
of was the mirror's newest at most that long ago, and is one the mirror really held.
"""

from __future__ import annotations

import asyncio
import bisect
import time

import httpx
import pytest
from conftest import require_binary

from registry_slo.config import Settings
from registry_slo.devenv import LocalRegistry
from registry_slo.devenv.mirror import SkopeoSyncLoop
from registry_slo.probes import ProbeScheduler, build_probes, build_regions
from registry_slo.probes.heartbeat import read_heartbeat
from registry_slo.telemetry.metrics import ExporterMetrics

from ._record import record

INTERVAL = 1.0  # heartbeat interval: the writer's and the reader's period
TAG = "registry-slo-heartbeat"
REPOSITORY = "registry-slo/probe"
MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json"


def settings_for(primary: LocalRegistry, mirror: LocalRegistry) -> Settings:
    return Settings.model_validate({
        "regions": [
            {"name": "primary", "url": primary.url, "probe": {"enabled": ["auth"]}},
            {"name": "mirror", "url": mirror.url, "replicates_from": "primary",
             "probe": {"enabled": ["auth"]}},
        ],
        "replication": {"heartbeat_interval": f"{INTERVAL}s", "timeout": "1s",
                        "writer": "accuracy"},
    })


class TruthReader:
    """Reads the mirror's heartbeat every 0.1 s: when each newer one was first seen."""

    def __init__(self, mirror: LocalRegistry) -> None:
        self.url = f"{mirror.url}/v2/{REPOSITORY}/manifests/{TAG}"
        self.seen: list[float] = []  # monotonic-free wall times the newer heartbeats appeared
        self.written: list[float] = []  # their write times

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                answer = await client.get(self.url, headers={"Accept": MANIFEST_TYPES})
                now = time.time()
                if answer.status_code == 200:
                    written, _ = read_heartbeat(answer.json())
                    if not self.written or written > self.written[-1]:
                        self.seen.append(now)
                        self.written.append(written)
                await asyncio.sleep(0.1)

    def lag(self, at: float) -> float | None:
        """The true lag at ``at``: the age of the newest heartbeat on the mirror then."""
        index = bisect.bisect_right(self.seen, at) - 1
        return None if index < 0 else at - self.written[index]

    def staleness(self, at: float, written: float) -> float:
        """How long before ``at`` a heartbeat newer than ``written`` reached the mirror
        (0 when none had)."""
        index = bisect.bisect_right(self.written, written + 1e-6)
        if index == len(self.seen) or self.seen[index] > at:
            return 0.0
        return at - self.seen[index]


@pytest.mark.parametrize("period", [2.0, 10.0, 60.0])
async def test_lag_follows_the_true_age_of_the_replicated_heartbeat(period: float) -> None:
    require_binary("docker-registry")
    require_binary("skopeo")
    with LocalRegistry() as primary, LocalRegistry() as mirror:
        settings = settings_for(primary, mirror)
        states = build_regions(settings)
        metrics = ExporterMetrics()
        probes, trackers = build_probes(settings, states, lambda _t, _lag: None)
        (tracker,) = trackers
        scheduler = ProbeScheduler(probes, metrics.probes, first_run_within=0.1)
        loop = SkopeoSyncLoop(primary, mirror, REPOSITORY, TAG, period)
        truth = TruthReader(mirror)
        reading = asyncio.create_task(truth.run())
        scheduler.start()
        samples: list[tuple[float, float, float, float]] = []  # at, true, reported, newest
        try:
            # Replicate only once the source holds a heartbeat, so the first sync has one.
            deadline = time.monotonic() + 20
            while httpx.head(f"{primary.url}/v2/{REPOSITORY}/manifests/{TAG}",
                             headers={"Accept": MANIFEST_TYPES}).status_code != 200:
                assert time.monotonic() < deadline, "the writer never wrote a heartbeat"
                await asyncio.sleep(0.1)
            loop.start()
            deadline = time.monotonic() + 30
            while tracker.newest is None:
                assert time.monotonic() < deadline, "no heartbeat ever reached the mirror"
                await asyncio.sleep(0.1)
            # A whole sync cycle and more: the lag grows to its peak and falls back.
            end = time.monotonic() + max(period + 5.0, 10.0)
            while time.monotonic() < end:
                now = time.time()
                true, newest = truth.lag(now), tracker.newest
                if true is not None and newest is not None:
                    samples.append((now, true, now - newest, newest))
                await asyncio.sleep(0.25)
        finally:
            reading.cancel()
            loop.stop()
            scheduler.shutdown()
            for state in states.values():
                await state.aclose()
    assert loop.syncs >= 2 and len(samples) > 20
    stale = [truth.staleness(at, newest) for at, _, _, newest in samples]
    errors = [reported - true for _, true, reported, _ in samples]
    record("replication_lag", period=period, samples=len(samples),
           max_true_lag=max(t for _, t, _, _ in samples), max_staleness=max(stale),
           max_value_error=max(map(abs, errors)),
           mean_abs_value_error=sum(map(abs, errors)) / len(errors), bound=INTERVAL + 0.5)
    # The lag really went through a sync cycle: it grew past the heartbeat interval.
    assert max(t for _, t, _, _ in samples) > min(period, INTERVAL + 1.0)
    # Every heartbeat the exporter reported on was one the mirror held.
    assert {newest for *_, newest in samples} <= set(truth.written)
    assert max(stale) <= INTERVAL + 0.5, [
        (round(t, 2), round(r, 2), round(s, 2))
        for (_, t, r, _), s in zip(samples, stale, strict=True)]
