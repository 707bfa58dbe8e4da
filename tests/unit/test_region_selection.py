"""``serve --region``: an exporter serving some regions builds only their probes, SLO
targets and ingest sources (a cache's upstream client too, without probing it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry_slo.config import load_config
from registry_slo.exporter import Exporter

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "regions.yaml"


@pytest.mark.parametrize(("region", "probes"), [
    ("us-east", {"push", "pull", "auth", "heartbeat", "coverage", "rollback"}),
    ("eu-west", {"pull", "auth", "replication"}),
    ("ap-south-cache", {"pull", "auth", "cache"}),
])
async def test_one_region(region: str, probes: set[str]) -> None:
    settings = load_config(EXAMPLE)
    exporter = Exporter(settings, regions=[region])
    try:
        scheduled = list(exporter.scheduler.probes.values())
        assert {s.probe.region for s in scheduled} == {region}
        assert {s.probe.kind for s in scheduled} == probes
        assert {t.region for t in exporter.engine.targets} == {region}
        every = {t.slo.name for t in settings.slo_targets() if t.region == region}
        assert {t.slo.name for t in exporter.engine.targets} == every
        ingest = exporter.ingest.config
        sources = [*ingest.logs, *ingest.filesystems, *ingest.scrapes,
                   *ingest.notifications.endpoints]
        assert all(s.region == region for s in sources)
        assert len(sources) == sum(
            s.region == region for s in (*settings.ingest.logs, *settings.ingest.filesystems))
        if region == "ap-south-cache":
            # The cache probe pulls through the cache what it pushed upstream.
            assert exporter.states[region].upstream is exporter.states["us-east"]
    finally:
        await exporter._close_regions()


async def test_every_region_by_default() -> None:
    settings = load_config(EXAMPLE)
    exporter = Exporter(settings)
    try:
        assert {s.probe.region for s in exporter.scheduler.probes.values()} == {
            r.name for r in settings.regions}
        assert len(exporter.engine.targets) == len(settings.slo_targets())
    finally:
        await exporter._close_regions()
