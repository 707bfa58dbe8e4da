"""The real garbage collector (Debian's docker-registry 2.8) on a real registry's storage
holding known garbage — a manifest deleted by digest, an untagged manifest — read by a
running ingest service: what the exporter reports (blobs marked and eligible, blobs and
manifests deleted, runs by result, the last success, bytes reclaimed) is what was
orphaned and what the collector removed, for dry and real runs, in the ``json`` and
``text`` logrus formatters."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import require_binary

from registry_slo.config import IngestConfig
from registry_slo.devenv import LocalRegistry
from registry_slo.ingest import IngestService
from registry_slo.ingest.formats import DistributionGcParser, GcReport, GcRunEnded, rfc3339
from registry_slo.ingest.formats._logrus import logrus_fields
from registry_slo.ingest.formats.gc import SETTLE
from registry_slo.ingest.reclaim import ReclaimMeter
from registry_slo.telemetry.metrics import ExporterMetrics

from .gc_storage import blob_digests, make_garbage, run_gc, stored_bytes

MiB = 1 << 20


def last_deletion(log: Path) -> float:
    """The logrus time of the log's last ``Deleting blob`` line."""
    times = []
    for line in log.read_text().splitlines():
        fields = logrus_fields(line)
        if fields is not None and fields.get("msg", "").startswith("Deleting blob: "):
            times.append(rfc3339(fields["time"]))
    return times[-1]


async def wait_for(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("formatter", ["json", "text"])
async def test_what_the_exporter_reports_is_what_was_orphaned(
    tmp_path: Path, formatter: str
) -> None:
    require_binary("docker-registry")
    registry = LocalRegistry(extra_config={"log": {"formatter": formatter}}).start()
    try:
        garbage = make_garbage(registry.url, layer_bytes=2 * MiB)
        registry.stop(cleanup=False)  # the collector wants the registry stopped
        config, storage = registry.config_path, registry.storage_dir
        log = tmp_path / "gc.log"
        ingest = IngestConfig.model_validate({
            "checkpoint_dir": str(tmp_path / "cp"), "poll_interval": 0.05,
            "logs": [{"name": "east-gc", "region": "east", "format": "distribution-gc",
                      "paths": [str(log)], "read_from": "beginning"}],
            "filesystems": [{"name": "east-storage", "region": "east",
                             "path": str(storage)}],
        })
        metrics = ExporterMetrics()
        get = metrics.registry.get_sample_value
        labels = {"region": "east", "source": "east-gc"}

        def value(name: str, **extra: str) -> float:
            found = get(name, {**labels, **extra})
            assert found is not None, name
            return found

        stop = asyncio.Event()
        task = asyncio.create_task(IngestService(ingest, metrics.ingest).run(stop))
        try:
            await wait_for(lambda: get("registry_slo_gc_last_success_timestamp_seconds",
                                       labels) is not None, "the first poll")
            since = value("registry_slo_gc_last_success_timestamp_seconds")
            assert abs(since - time.time()) < 30  # watching since now: no run yet

            # A dry run: the totals of its summary, nothing deleted.
            assert await asyncio.to_thread(run_gc, config, log, "--dry-run") == 0
            await wait_for(lambda: get("registry_slo_gc_blobs_eligible", labels) is not None,
                           "the dry run's summary")
            assert value("registry_slo_gc_blobs_marked") == len(garbage.marked)
            assert value("registry_slo_gc_blobs_eligible") == len(garbage.eligible)
            assert value("registry_slo_gc_manifests_eligible") == 0
            assert blob_digests(storage) == garbage.marked | garbage.eligible

            # A dry run with --delete-untagged, then the real one: its first line ends
            # the dry run (whose outcome was known).
            assert await asyncio.to_thread(
                run_gc, config, log, "--dry-run", "--delete-untagged") == 0
            before = stored_bytes(storage)
            assert await asyncio.to_thread(run_gc, config, log, "--delete-untagged") == 0
            reclaimed_on_disk = before - stored_bytes(storage)
            # The real run is over once quiet (its last deletion might still have
            # failed): SETTLE seconds after its last line.
            await wait_for(lambda: get("registry_slo_gc_runs_total",
                                       {**labels, "result": "ok"}) == 1, "the real run",
                           timeout=SETTLE + 20)
            await wait_for(lambda: not math.isnan(value("registry_slo_gc_reclaimed_bytes")),
                           "the reclaimed bytes")
            assert value("registry_slo_gc_runs_total", result="dry_run") == 2
            assert value("registry_slo_gc_blobs_deleted_total") == \
                len(garbage.eligible_untagged)
            assert value("registry_slo_gc_manifests_deleted_total") == \
                len(garbage.untagged_manifests)
            assert value("registry_slo_gc_blobs_marked") == len(garbage.marked_untagged)
            assert value("registry_slo_gc_blobs_eligible") == len(garbage.eligible_untagged)
            assert value("registry_slo_gc_manifests_eligible") == \
                len(garbage.untagged_manifests)
            # Completed at its last deletion line's logrus time.
            assert value("registry_slo_gc_last_success_timestamp_seconds") == \
                last_deletion(log)
            # Measured on the filesystem holding the storage (a shared /tmp: other
            # processes write there too, so only that it was measured).
            assert math.isfinite(value("registry_slo_gc_reclaimed_bytes"))

            # One with nothing left: over at its summary, it reclaimed exactly nothing.
            read_at = time.time()
            assert await asyncio.to_thread(run_gc, config, log) == 0
            await wait_for(lambda: get("registry_slo_gc_runs_total",
                                       {**labels, "result": "ok"}) == 2, "the last run")
            assert value("registry_slo_gc_reclaimed_bytes") == 0.0
            assert value("registry_slo_gc_blobs_eligible") == 0
            assert read_at <= value("registry_slo_gc_last_success_timestamp_seconds") \
                <= time.time()
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

        assert value("registry_slo_gc_runs_total", result="failed") == 0
        # What the collector said it deleted is gone from the storage, and no more.
        assert blob_digests(storage) == garbage.marked_untagged
        assert reclaimed_on_disk >= garbage.orphaned_bytes
    finally:
        registry.stop()


def test_the_reclaimed_bytes_of_a_real_run_are_the_bytes_it_removed(tmp_path: Path) -> None:
    """The storage directory's own byte count read once every 50ms while the real
    collector runs (nothing else writes to it): the figure is exactly what left."""
    require_binary("docker-registry")
    registry = LocalRegistry().start()
    try:
        garbage = make_garbage(registry.url, layer_bytes=MiB)
        registry.stop(cleanup=False)
        storage = registry.storage_dir
        reported: list[float] = []
        meter = ReclaimMeter(lambda: float(stored_bytes(storage)), reported.append)
        done = threading.Event()

        def read() -> None:
            while not done.is_set():
                meter.sample()
                time.sleep(0.05)

        reader = threading.Thread(target=read)
        reader.start()
        try:
            time.sleep(0.2)
            before = stored_bytes(storage)
            log = tmp_path / "gc.log"
            assert run_gc(registry.config_path, log, "--delete-untagged") == 0
            removed = before - stored_bytes(storage)
            parser = DistributionGcParser("east", "gc")
            for line in log.read_bytes().splitlines():
                if line.strip():
                    parser.parse(line)
            report = parser.settle(math.inf)
            assert isinstance(report, GcReport)
            (run,) = [f for f in report.facts if isinstance(f, GcRunEnded)]
            assert run.result == "ok" and run.deleted == 5 and run.deletions is not None
            meter.ended(run)
            deadline = time.monotonic() + 10
            while not reported and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            done.set()
            reader.join()
        assert reported == [float(removed)]
        assert removed >= garbage.orphaned_bytes
    finally:
        registry.stop()
