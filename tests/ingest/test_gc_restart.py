"""Garbage collection runs across exporter restarts, through the real tailer and its
checkpoints: a restart at any line of the collector's output counts every run, deletion
and summary exactly once; the time the source began watching survives restarts (the
overdue alert of a collector that never runs must not be reset by them); the exporter's
series a fresh start exposes; garbage collection is no traffic."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

from registry_slo.config import IngestConfig, Settings
from registry_slo.ingest import (
    CheckpointStore,
    FileTailer,
    IngestService,
    SourcePipeline,
    Tally,
)
from registry_slo.ingest.formats import DistributionGcParser
from registry_slo.telemetry.metrics import ExporterMetrics

from .conftest import FIXTURES

GC = FIXTURES / "gc"
T0 = 1_797_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def tailer(path: Path, checkpoint: Path, tally: Tally, clock: Clock) -> FileTailer:
    pipeline = SourcePipeline("gc", DistributionGcParser("east", "gc", clock), tally)
    return FileTailer([str(path)], pipeline, CheckpointStore(checkpoint),
                      read_from="beginning", checkpoint_interval=0)


def totals(tallies: list[Tally]) -> dict[str, object]:
    runs: dict[str, int] = {}
    deleted: dict[str, int] = {}
    for tally in tallies:
        for (_, result), n in tally.gc_runs.items():
            runs[result] = runs.get(result, 0) + n
        for (_, kind), n in tally.gc_deleted.items():
            deleted[kind] = deleted.get(kind, 0) + n
    lines = sum(t.counts["gc"].lines for t in tallies if "gc" in t.counts)
    return {"runs": runs, "deleted": deleted, "lines": lines}


@pytest.mark.parametrize("name", ["gc-json.log", "gc-text.log"])
def test_a_restart_at_any_line_counts_every_run_once(tmp_path: Path, name: str) -> None:
    data = (GC / name).read_bytes()
    cuts = [0] + [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    expected = json.loads((GC / "expected.json").read_text())[name]
    for cut in cuts:
        where = tmp_path / str(cut)
        where.mkdir()
        log, checkpoint = where / "gc.log", where / "gc.json"
        log.write_bytes(data[:cut])
        first, second = Tally(), Tally()
        before = tailer(log, checkpoint, first, Clock())
        before.poll()
        before.close()  # a clean stop: the checkpoint holds the run in progress
        with log.open("ab") as out:
            out.write(data[cut:])
        after = tailer(log, checkpoint, second, Clock(T0 + 60))
        after.poll()
        after.pipeline.settle(math.inf)
        after.close()
        got = totals([first, second])
        assert got["runs"] == expected["runs"], cut
        assert got["deleted"] == expected["deleted"], cut
        assert got["lines"] == data.count(b"\n"), cut


def test_without_the_saved_run_a_restart_would_count_wrong(tmp_path: Path) -> None:
    """The bite of the test above: a parser that forgets the run in progress loses the
    real run cut in its deletions (its deletions stay counted, its completion is not)."""
    data = (GC / "gc-json.log").read_bytes()
    cut = data.index(b"Deleting blob")
    cut = data.rindex(b"\n", 0, cut) + 1
    log = tmp_path / "gc.log"
    log.write_bytes(data[:cut])
    first, second = Tally(), Tally()
    before = tailer(log, tmp_path / "gc.json", first, Clock())
    before.poll()
    before.close()
    with log.open("ab") as out:
        out.write(data[cut:])
    saved = json.loads((tmp_path / "gc.json").read_text())
    assert saved["parser"]["run"]["phase"] == "sweeping"
    del saved["parser"]
    (tmp_path / "gc.json").write_text(json.dumps(saved))
    after = tailer(log, tmp_path / "gc.json", second, Clock(T0 + 60))
    after.poll()
    after.close()
    assert totals([first, second])["runs"] != {"dry_run": 2, "ok": 3, "failed": 3}


def test_watching_since_survives_restarts_before_any_run(tmp_path: Path) -> None:
    """No collector output yet: the last-success series holds the first start's time
    after a restart too, so RegistryGarbageCollectionOverdue is not reset by it."""
    log, checkpoint = tmp_path / "gc.log", tmp_path / "gc.json"
    first, second = Tally(), Tally()
    before = tailer(log, checkpoint, first, Clock(T0))
    before.poll()
    before.close()
    assert first.gc_last_success == {"east": T0}
    after = tailer(log, checkpoint, second, Clock(T0 + 86400))
    after.poll()
    assert second.gc_last_success == {"east": T0}
    # And the last success of a run read before the restart, likewise.
    log.write_bytes((GC / "gc-json.log").read_bytes())
    after.poll()
    after.close()
    success = second.gc_last_success["east"]
    third = Tally()
    again = tailer(log, checkpoint, third, Clock(T0 + 2 * 86400))
    again.poll()
    assert third.gc_last_success == {"east": success}
    assert third.gc_summary == second.gc_summary  # the last run's figures, restored


def test_an_unusable_saved_state_starts_afresh(tmp_path: Path) -> None:
    log, checkpoint = tmp_path / "gc.log", tmp_path / "gc.json"
    log.write_bytes(b"team/app\n")
    checkpoint.write_text(json.dumps({"version": 1, "files": {},
                                      "parser": {"version": 1, "since": "soon"}}))
    tally = Tally()
    tail = tailer(log, checkpoint, tally, Clock())
    tail.poll()
    assert tally.gc_last_success == {"east": T0}
    assert tally.counts["gc"].lines == 1


# -- the exporter's series -------------------------------------------------------------

def _ingest(tmp_path: Path, log: Path) -> IngestConfig:
    return IngestConfig.model_validate({
        "checkpoint_dir": str(tmp_path / "cp"), "poll_interval": 0.02,
        "logs": [{"name": "east-gc", "region": "east", "format": "distribution-gc",
                  "paths": [str(log)], "read_from": "beginning"}],
        "filesystems": [{"name": "east-storage", "region": "east", "path": str(tmp_path)}],
    })


async def test_the_exporter_serves_runs_and_no_traffic(tmp_path: Path) -> None:
    log = tmp_path / "gc.log"
    metrics = ExporterMetrics()
    service = IngestService(_ingest(tmp_path, log), metrics.ingest)
    get = metrics.registry.get_sample_value
    labels = {"region": "east", "source": "east-gc"}
    # At zero (and unknown) before the first line: increase() sees the first run.
    for result in ("ok", "dry_run", "failed"):
        assert get("registry_slo_gc_runs_total", {**labels, "result": result}) == 0
    assert get("registry_slo_gc_blobs_deleted_total", labels) == 0
    assert get("registry_slo_gc_manifests_deleted_total", labels) == 0
    assert math.isnan(get("registry_slo_gc_reclaimed_bytes", labels) or 0.0)
    assert get("registry_slo_ingest_lines_total", {"source": "east-gc"}) == 0
    names = {s.name for f in metrics.registry.collect() for s in f.samples
             if s.labels.get("source") == "east-gc"}
    assert not {n for n in names if n.startswith("registry_slo_registry_")}

    log.write_bytes((GC / "gc-json.log").read_bytes())
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    for _ in range(250):
        if get("registry_slo_ingest_lines_total", {"source": "east-gc"}) == 80:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert get("registry_slo_gc_runs_total", {**labels, "result": "ok"}) == 3
    assert get("registry_slo_gc_runs_total", {**labels, "result": "dry_run"}) == 2
    assert get("registry_slo_gc_runs_total", {**labels, "result": "failed"}) == 3
    assert get("registry_slo_gc_blobs_deleted_total", labels) == 4
    assert get("registry_slo_gc_manifests_deleted_total", labels) == 1
    assert get("registry_slo_gc_blobs_marked", labels) == 5
    assert get("registry_slo_gc_blobs_eligible", labels) == 0
    assert (get("registry_slo_gc_last_success_timestamp_seconds", labels) or 0) > 0
    assert get("registry_slo_ingest_observations_total", {"source": "east-gc"}) == 0
    assert get("registry_slo_ingest_ignored_total",
               {"source": "east-gc", "reason": "not_an_operation"}) == 74
    # The last successful run found nothing to delete: it reclaimed exactly nothing.
    # (The real run before it deleted long before this exporter read the storage: no
    # clean reading, NaN; test_gc_reclaim.py.)
    assert get("registry_slo_gc_reclaimed_bytes", labels) == 0.0


def test_garbage_collection_is_no_traffic_source() -> None:
    base = {
        "regions": [{"name": "east", "url": "http://127.0.0.1:5000"}],
        "ingest": {"logs": [
            {"name": "east-log", "region": "east", "format": "distribution",
             "paths": ["/var/log/registry.log"]},
            {"name": "east-gc", "region": "east", "format": "distribution-gc",
             "paths": ["/var/log/gc.log"]},
        ]},
        "slos": [{"name": "traffic", "sli": {"kind": "traffic_success",
                                             "operations": ["pull_manifest"]},
                  "objective": 99}],
    }
    (target,) = Settings.model_validate(base).slo_targets()
    assert target.sources == ("east-log",)
    named = json.loads(json.dumps(base))
    named["slos"][0]["sli"]["sources"] = ["east-gc"]
    with pytest.raises(ValueError, match="east-gc"):
        Settings.model_validate(named)
