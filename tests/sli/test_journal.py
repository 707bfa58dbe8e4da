"""Webhook event ids committed with the counts of their events (the engine's journal):
an answer waits for that commit, which is asked for at once (group commit), and the ids
come back after a restart, the newest ``capacity`` of them."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry_slo.sli.engine import SLIEngine

from .helpers import probe, settings, status_of

SOURCE = "notify/hooks"


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[SLIEngine]:
    # A flush interval far beyond the test: only an asked-for commit can come in time.
    engine = SLIEngine(settings().slo_targets(), tmp_path, flush_interval=3600)
    engine.open()
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    yield engine
    stop.set()
    await task


def _committed_ids(state_dir: Path) -> list[tuple[int, str]]:
    """What another reader of the file sees: the committed rows only."""
    db = sqlite3.connect(state_dir / "slo.sqlite3")
    try:
        return [(int(s), str(i)) for s, i in db.execute(
            "SELECT seq, id FROM seen WHERE source = ? ORDER BY seq", (SOURCE,))]
    finally:
        db.close()


async def test_committed_returns_once_the_ids_and_counts_are_in_the_file(
    running: SLIEngine, tmp_path: Path
) -> None:
    journal = running.journal(SOURCE, capacity=3)
    assert journal.restore() == []
    with journal.hold():
        running.observe(probe("east", "pull"))
        journal.remember("a")
        journal.remember("b")
    assert _committed_ids(tmp_path) == []
    assert await asyncio.wait_for(journal.committed(timeout=30), 30)
    assert _committed_ids(tmp_path) == [(0, "a"), (1, "b")]
    store = running.store
    assert store is not None and store.rows("pull-availability/east")


async def test_ids_come_back_after_a_restart_and_only_the_newest(tmp_path: Path) -> None:
    first = SLIEngine(settings().slo_targets(), tmp_path, flush_interval=3600)
    first.open()
    journal = first.journal(SOURCE, capacity=3)
    for event_id in ("a", "b"):
        journal.remember(event_id)
    first.close()
    second = SLIEngine(settings().slo_targets(), tmp_path, flush_interval=3600)
    second.open()
    again = second.journal(SOURCE, capacity=3)
    assert again.restore() == ["a", "b"]
    for event_id in ("c", "d"):
        again.remember(event_id)
    second.flush()
    assert _committed_ids(tmp_path) == [(1, "b"), (2, "c"), (3, "d")]
    assert second.journal(SOURCE, capacity=3).restore() == ["b", "c", "d"]
    second.close()


async def test_without_a_store_nothing_waits() -> None:
    engine = SLIEngine(settings().slo_targets(), None)
    journal = engine.journal(SOURCE, capacity=3)
    journal.remember("a")
    assert journal.restore() == []
    assert await asyncio.wait_for(journal.committed(timeout=0.1), 5)


async def test_a_failed_commit_answers_nothing_until_one_succeeds(
    running: SLIEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = running.store
    assert store is not None
    real_save = store.save
    broken = True

    def save(batch: object) -> None:
        if broken:
            raise sqlite3.OperationalError("disk I/O error")
        real_save(batch)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "save", save)
    journal = running.journal(SOURCE, capacity=10)
    with journal.hold():
        running.observe(probe("east", "pull"))
        journal.remember("a")
    assert not await journal.committed(timeout=0.5)
    assert _committed_ids(tmp_path) == []
    broken = False
    assert await asyncio.wait_for(journal.committed(timeout=30), 30)
    assert _committed_ids(tmp_path) == [(0, "a")]
    assert status_of(running, "pull-availability", "east").period.total == 1
