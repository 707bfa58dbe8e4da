"""The SLO store (registry_slo.sli.store) and the engine's restart guarantees."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness.immutable import immutable

from registry_slo.sli.engine import COARSE_WIDTH, FINE_WIDTH, MAX_FAILED_FLUSHES, SLIEngine
from registry_slo.sli.store import STORE_FILE, SLOStore, StoreBatch, StoreError
from registry_slo.sli.windows import DAY, HOUR, MINUTE

from .helpers import T0, Clock, probe, settings


def counts(engine: SLIEngine) -> dict[str, tuple[float, float]]:
    return {f"{s.slo.name}/{s.region}": (s.period.bad, s.period.total)
            for s in engine.evaluate()}


def engine_at(path: Path, clock: Clock, **extra: Any) -> SLIEngine:
    engine = SLIEngine(settings(**extra).slo_targets(), path, clock=clock)
    engine.open()
    return engine


def test_a_restart_keeps_the_windows(tmp_path: Path) -> None:
    clock = Clock()
    engine = engine_at(tmp_path, clock)
    for step in range(100):
        clock.now = T0 + step * 30
        engine.observe(probe("east", "pull", success=step % 10 != 0))
    before = {s.slo.name + s.region: s.to_json() for s in engine.evaluate()}
    engine.close()
    assert (tmp_path / STORE_FILE).is_file()
    restarted = engine_at(tmp_path, clock)
    after = {s.slo.name + s.region: s.to_json() for s in restarted.evaluate()}
    assert after == before
    assert counts(restarted)["pull-availability/east"] == (10, 100)
    restarted.close()


def test_no_double_counting_when_batches_are_written_again(tmp_path: Path) -> None:
    clock = Clock()
    engine = engine_at(tmp_path, clock)
    for _ in range(5):
        engine.observe(probe("east", "pull", success=False))
    store = engine.store
    assert store is not None
    batch = engine._batch()  # what the next flush writes
    store.save(batch)
    store.save(batch)  # written twice (e.g. retried): absolute counts, not increments
    engine.flush()
    engine.flush()
    engine.close()
    restarted = engine_at(tmp_path, clock)
    assert counts(restarted)["pull-availability/east"] == (5, 5)
    # And counting goes on from there across a second restart.
    restarted.observe(probe("east", "pull"))
    restarted.close()
    again = engine_at(tmp_path, clock)
    assert counts(again)["pull-availability/east"] == (5, 6)
    again.close()


def test_a_crash_loses_at_most_what_was_not_flushed(tmp_path: Path) -> None:
    clock = Clock()
    engine = engine_at(tmp_path, clock)
    engine.observe(probe("east", "pull", success=False))
    engine.flush()
    engine.observe(probe("east", "pull", success=False))  # never flushed
    store = engine.store
    assert store is not None
    store.close()  # the process dies: no last flush
    restarted = engine_at(tmp_path, clock)
    assert counts(restarted)["pull-availability/east"] == (1, 1)
    restarted.close()


def test_a_killed_process_keeps_its_committed_batches(tmp_path: Path) -> None:
    # A real process killed with SIGKILL in the middle of its run.
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from helpers import Clock, probe, settings
from registry_slo.sli.engine import SLIEngine
engine = SLIEngine(settings().slo_targets(), __import__("pathlib").Path({str(tmp_path)!r}),
                   clock=Clock())
engine.open()
for _ in range(3):
    engine.observe(probe("east", "pull", success=False))
engine.flush()
engine.observe(probe("east", "pull"))
os.kill(os.getpid(), signal.SIGKILL)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == -9, result.stderr.decode()
    restarted = engine_at(tmp_path, Clock())
    assert counts(restarted)["pull-availability/east"] == (3, 3)
    restarted.close()


def test_one_exporter_per_state_dir(tmp_path: Path) -> None:
    engine = engine_at(tmp_path, Clock())
    with pytest.raises(StoreError, match="in use by registry-slo pid"):
        engine_at(tmp_path, Clock())
    engine.close()
    engine_at(tmp_path, Clock()).close()  # free again


def test_a_changed_sli_starts_over_and_removed_slos_are_forgotten(tmp_path: Path) -> None:
    clock = Clock()
    engine = engine_at(tmp_path, clock)
    engine.observe(probe("east", "pull", duration=3.0))
    engine.observe(probe("east", "auth"))
    engine.close()
    changed = settings()
    slos = [s.model_dump() for s in changed.slos]
    slos[1]["sli"]["threshold"] = 5.0  # pull-latency: another threshold
    del slos[2]  # auth: removed
    engine = engine_at(tmp_path, clock, slos=slos)
    now = counts(engine)
    assert now["pull-latency/east"] == (0, 0)
    assert now["pull-availability/east"] == (0, 1)  # unchanged SLI: kept
    assert "auth/east" not in now
    store = engine.store
    assert store is not None and store.rows("auth/east") == []
    engine.close()


def test_the_store_stays_bounded(tmp_path: Path) -> None:
    clock = Clock()
    engine = engine_at(tmp_path, clock)
    # A probe every minute for 5 days (a 30d period keeps hour buckets; minute buckets
    # are kept for 3 days).
    for minute in range(5 * DAY // MINUTE):
        clock.now = T0 + minute * MINUTE
        engine.observe(probe("east", "pull"))
        if minute % 600 == 0:
            engine.flush()
    engine.flush()
    store = engine.store
    assert store is not None
    rows = store.rows("pull-availability/east")
    fine = [r for r in rows if r[0] == FINE_WIDTH]
    coarse = [r for r in rows if r[0] == COARSE_WIDTH]
    assert len(fine) <= 3 * DAY // MINUTE + 2
    # The period (30d) still holds every run, in about 5 x 24 hour buckets.
    assert sum(r[3] for r in coarse) == 5 * DAY // MINUTE
    assert len(coarse) <= 5 * DAY // HOUR + 1
    assert min(r[1] for r in fine) * MINUTE > clock.now - 3 * DAY - 2 * MINUTE
    engine.close()


def test_a_failed_write_is_retried_with_the_next_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors: list[int] = []
    engine = SLIEngine(settings().slo_targets(), tmp_path, clock=Clock(),
                       on_store_error=lambda: errors.append(1))
    engine.open()
    engine.observe(probe("east", "pull", success=False))
    store = engine.store
    assert store is not None
    real_save = store.save

    def failing(batch: StoreBatch) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "save", failing)
    assert engine.flush() == 0
    assert errors == [1]
    monkeypatch.setattr(store, "save", real_save)
    assert engine.flush() > 0
    engine.close()
    restarted = engine_at(tmp_path, Clock())
    assert counts(restarted)["pull-availability/east"] == (1, 1)
    restarted.close()


async def test_a_store_that_stays_unwritable_ends_the_engines_run(tmp_path: Path) -> None:
    errors: list[int] = []
    engine = SLIEngine(settings().slo_targets(), tmp_path, flush_interval=0.1, clock=Clock(),
                       on_store_error=lambda: errors.append(1))
    engine.open()
    engine.observe(probe("east", "pull"))
    assert engine.flush() > 0
    engine.observe(probe("east", "pull", success=False))  # to be written, and not writable
    # The write-ahead log refuses writes (root included), through SQLite's open descriptor.
    with immutable(tmp_path / f"{STORE_FILE}-wal"), pytest.raises(
        StoreError, match=f"could not be written {MAX_FAILED_FLUSHES} times in a row "
                          r"\(last: disk I/O error\)"
    ):
        await asyncio.wait_for(engine.run(asyncio.Event()), 10)
    assert engine.store is None  # closed all the same
    assert len(errors) >= MAX_FAILED_FLUSHES
    restarted = engine_at(tmp_path, Clock())
    assert counts(restarted)["pull-availability/east"] == (0, 1)  # what was committed
    restarted.close()


def test_without_slos_or_state_dir_nothing_is_written(tmp_path: Path) -> None:
    empty = SLIEngine([], tmp_path / "a")
    empty.open()
    assert empty.store is None and not (tmp_path / "a").exists()
    memory = SLIEngine(settings().slo_targets(), None)
    memory.open()
    memory.observe(probe("east", "pull"))
    assert memory.flush() == 0
    memory.close()


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    SLOStore(tmp_path).close()
    with sqlite3.connect(tmp_path / STORE_FILE) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(StoreError, match="newer registry-slo"):
        SLOStore(tmp_path)
    # The lock was released: once fixed, the file opens again.
    with sqlite3.connect(tmp_path / STORE_FILE) as db:
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    SLOStore(tmp_path).close()


def test_the_database_is_in_wal_mode(tmp_path: Path) -> None:
    store = SLOStore(tmp_path)
    store.close()
    with sqlite3.connect(tmp_path / STORE_FILE) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_cursors_are_committed_with_the_counts_they_cover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_at(tmp_path, Clock())
    cursor = engine.cursor("ingest/east-log")
    assert cursor.read() is None
    engine.observe(probe("east", "pull", success=False))
    cursor.write("offset 1")
    assert cursor.read() is None  # staged, not committed
    store = engine.store
    assert store is not None
    real_save = store.save
    seen: list[StoreBatch] = []

    def failing(batch: StoreBatch) -> None:
        seen.append(batch)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "save", failing)
    assert engine.flush() == 0
    # One transaction: the cursor and the bucket it covers, or neither.
    assert seen[0].cursors == {"ingest/east-log": "offset 1"} and seen[0].rows
    assert cursor.read() is None
    engine.observe(probe("east", "pull", success=False))
    cursor.write("offset 2")  # newer than the failed one: it wins the retry
    monkeypatch.setattr(store, "save", real_save)
    assert engine.flush() > 0
    assert cursor.read() == "offset 2"
    engine.close()
    restarted = engine_at(tmp_path, Clock())
    assert restarted.cursor("ingest/east-log").read() == "offset 2"
    assert counts(restarted)["pull-availability/east"] == (2, 2)
    restarted.close()
